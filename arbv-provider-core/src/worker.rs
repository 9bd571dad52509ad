//! The worker loop: `concurrency` lanes, each taking a task, running it and submitting its
//! answer. While the hub is idle or unreachable only one lane (the scout) polls; the others
//! sleep until the scout finds work, so an idle provider sends a bounded number of polls
//! whatever its concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::dispatch::{CompletedTask, Dispatcher, IncomingTask};
use crate::hub_client::{HubClient, HubError, reconnect_backoff};
use crate::telemetry::Escaped;

/// The longest pause between retries of an unreachable hub, and of a result it did not take.
const RETRY_CAP: Duration = Duration::from_secs(5);
/// The longest pause between retries after the hub refused the token.
const AUTH_RETRY_CAP: Duration = Duration::from_secs(30);

/// How long a `GetTask` in flight when shutdown begins may still answer.
const STOP_POLL_GRACE: Duration = Duration::from_secs(1);

/// How a worker stops: `stop` ends polling; `interrupt` cuts actions still running when the
/// drain time is up; `give_up` ends retries of results the hub will not take.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    /// Cancelled when shutdown begins: no new task is taken.
    pub stop: CancellationToken,
    /// Cancelled when the drain timeout runs out: running actions are stopped and answered.
    pub interrupt: CancellationToken,
    /// Cancelled when even results can no longer wait for the hub.
    pub give_up: CancellationToken,
}

/// Counters a worker keeps; read them for logs, tests and benchmarks.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// `GetTask` calls made.
    pub polls: AtomicU64,
    /// Tasks run (from `GetTask` or from a `SubmitTaskResult` answer).
    pub tasks: AtomicU64,
    /// Results the hub took.
    pub submitted: AtomicU64,
    /// Results given up on (the hub rejected them for good, or shutdown could not wait longer).
    pub lost: AtomicU64,
}

/// Shared by the lanes of one worker.
pub struct Worker {
    hub: HubClient,
    dispatcher: Arc<Dispatcher>,
    shutdown: Shutdown,
    idle_poll_cap: Duration,
    scout: AtomicBool,
    wake: Notify,
    hub_down: AtomicBool,
    stats: Arc<WorkerStats>,
}

impl Worker {
    /// A worker for `dispatcher`'s provider on `hub`.
    pub fn new(
        hub: HubClient,
        dispatcher: Arc<Dispatcher>,
        shutdown: Shutdown,
        idle_poll_cap: Duration,
        stats: Arc<WorkerStats>,
    ) -> Arc<Self> {
        Arc::new(Self {
            hub,
            dispatcher,
            shutdown,
            idle_poll_cap,
            scout: AtomicBool::new(false),
            wake: Notify::new(),
            hub_down: AtomicBool::new(false),
            stats,
        })
    }

    /// Runs `lanes` lanes until shutdown, then returns once each has answered its last task.
    pub async fn run(self: Arc<Self>, lanes: usize) {
        let mut set = tokio::task::JoinSet::new();
        for lane in 0..lanes {
            set.spawn(self.clone().lane(lane));
        }
        while let Some(joined) = set.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "a worker lane ended abnormally");
            }
        }
    }

    async fn lane(self: Arc<Self>, lane: usize) {
        let mut idle_pause = Duration::ZERO;
        let mut failures = reconnect_backoff(RETRY_CAP);
        let mut auth_failures = reconnect_backoff(AUTH_RETRY_CAP);
        let mut is_scout = false;
        loop {
            if self.shutdown.stop.is_cancelled() {
                break;
            }
            if !is_scout && self.scout.load(Ordering::Acquire) {
                // Someone is already polling the idle or unreachable hub: sleep until work.
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = self.shutdown.stop.cancelled() => break,
                }
                continue;
            }
            self.stats.polls.fetch_add(1, Ordering::Relaxed);
            let asked = std::time::Instant::now();
            let call = self.hub.get_task();
            tokio::pin!(call);
            let polled = tokio::select! {
                biased;
                polled = &mut call => polled,
                () = self.shutdown.stop.cancelled() => {
                    // The hub may have handed out a task that is on its way: give the answer a
                    // moment rather than drop a task the hub counts as delivered.
                    match tokio::time::timeout(STOP_POLL_GRACE, call).await {
                        Ok(polled) => polled,
                        Err(_) => break,
                    }
                }
            };
            if polled.is_ok() {
                self.hub_is_up();
                failures = reconnect_backoff(RETRY_CAP);
                auth_failures = reconnect_backoff(AUTH_RETRY_CAP);
            }
            let pause = match polled {
                Ok(Some(task)) => {
                    idle_pause = Duration::ZERO;
                    if is_scout {
                        is_scout = false;
                        self.scout.store(false, Ordering::Release);
                    }
                    // Work is back: wake one sleeping lane, which wakes the next if it finds work too.
                    self.wake.notify_one();
                    self.run_chain(task).await;
                    continue;
                }
                Ok(None) => {
                    if asked.elapsed() >= self.idle_poll_cap {
                        // The hub held the call open until it had nothing: it long-polls, so
                        // ask again at once.
                        idle_pause = Duration::ZERO;
                    } else {
                        idle_pause =
                            (idle_pause * 2).clamp(Duration::from_millis(1), self.idle_poll_cap);
                    }
                    idle_pause
                }
                Err(error @ HubError::Unauthenticated { .. }) => {
                    let delay = auth_failures.next().unwrap_or(AUTH_RETRY_CAP);
                    tracing::error!(
                        lane,
                        retry_in_ms = delay.as_millis() as u64,
                        "{}",
                        Escaped(&error)
                    );
                    delay
                }
                Err(error) => {
                    let delay = failures.next().unwrap_or(RETRY_CAP);
                    if !self.hub_down.swap(true, Ordering::AcqRel) {
                        tracing::warn!(lane, "{}; retrying with backoff", Escaped(&error));
                    } else {
                        tracing::debug!(
                            lane,
                            retry_in_ms = delay.as_millis() as u64,
                            "{}",
                            Escaped(&error)
                        );
                    }
                    delay
                }
            };
            if !is_scout {
                if self
                    .scout
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    is_scout = true;
                } else {
                    continue;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.shutdown.stop.cancelled() => break,
            }
        }
        if is_scout {
            self.scout.store(false, Ordering::Release);
        }
        // Lanes asleep on `wake` see `stop` themselves; nothing more to hand over.
    }

    fn hub_is_up(&self) {
        if self.hub_down.swap(false, Ordering::AcqRel) {
            tracing::info!("the hub answers again");
        }
    }

    /// Runs a task, submits its answer, and keeps going while the hub answers with more work.
    async fn run_chain(&self, first: IncomingTask) {
        let mut next = Some(first);
        while let Some(task) = next.take() {
            self.stats.tasks.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let done = self
                .dispatcher
                .dispatch(task, &self.shutdown.interrupt)
                .await;
            tracing::debug!(
                task_id = %Escaped(&done.id), action = %Escaped(&done.action), status = %done.status,
                elapsed_us = started.elapsed().as_micros() as u64, "task answered"
            );
            next = self.submit_until_taken(&done).await;
        }
    }

    /// Submits `done`, retrying with backoff until the hub takes it. Gives up only on a result
    /// the hub rejects for good, or when shutdown can wait no longer.
    async fn submit_until_taken(&self, done: &CompletedTask) -> Option<IncomingTask> {
        let mut delays = reconnect_backoff(RETRY_CAP);
        let mut rejections = 0u32;
        loop {
            let error = match self.hub.submit(done).await {
                Ok(next) => {
                    self.stats.submitted.fetch_add(1, Ordering::Relaxed);
                    return next;
                }
                Err(error) => error,
            };
            if let HubError::Rejected { .. } = error {
                rejections += 1;
                if rejections >= 5 {
                    self.stats.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(task_id = %Escaped(&done.id), action = %Escaped(&done.action), "{}; the hub rejected this result 5 times, giving up on it", Escaped(&error));
                    return None;
                }
            }
            let delay = delays.next().unwrap_or(RETRY_CAP);
            tracing::warn!(task_id = %Escaped(&done.id), retry_in_ms = delay.as_millis() as u64, "result not taken: {}; keeping it and retrying", Escaped(&error));
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.shutdown.give_up.cancelled() => {
                    self.stats.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(task_id = %Escaped(&done.id), action = %Escaped(&done.action), "shutting down while the hub does not take this result: it is lost");
                    return None;
                }
            }
        }
    }
}
