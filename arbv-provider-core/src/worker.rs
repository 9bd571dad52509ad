//! The worker loop: `concurrency` lanes, each taking a task, running it and submitting its
//! answer. While the hub is idle or unreachable only one lane (the scout) polls; the others
//! sleep until the scout finds work, so an idle provider sends a bounded number of polls
//! whatever its concurrency.
//!
//! A lane asks for its next task while it submits the last one's answer (two calls in flight,
//! one task running), unless the hub hands work back in its `SubmitTaskResult` answers: then
//! the answer brings the next task and a poll beside it would only take a second one.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::ExponentialBackoff;
use tokio::sync::Notify;
use tonic::Code;
use tracing::{Instrument, Span};

use crate::dispatch::{Answered, Dispatcher};
use crate::error::Error;
use crate::fine_sleep::FineSleep;
use crate::hub_client::{EncodedResult, HubClient, HubError, SubmitFailure, reconnect_backoff};
use crate::metrics::readiness::Readiness;
use crate::metrics::{ErrorKind, Metrics, Poll, Source, Submit};
use crate::shutdown::{STOP_POLL_GRACE, Shutdown, StageWatch};
use crate::task::IncomingTask;
use crate::telemetry::Escaped;

/// The longest pause between retries of an unreachable hub, and of a result it did not take.
const RETRY_CAP: Duration = Duration::from_secs(5);
/// The longest pause between retries after the hub refused the token.
const AUTH_RETRY_CAP: Duration = Duration::from_secs(30);

/// How long after the hub last had work the scout's pauses stay at [`QUICK_PAUSE`]. Work stops
/// for a few milliseconds often: between bursts, or while the hub, the network or the machine
/// is held up, after which the tasks come all at once. A pause grown meanwhile would keep them
/// waiting for about as long again. At most ~40 polls more each time work stops.
const QUICK_WINDOW: Duration = Duration::from_millis(10);
/// The pause within [`QUICK_WINDOW`]: a fraction of the runtime timer's 1 ms grain, so it is
/// kept by [`FineSleep`] (tokio's timer would end it 1–2 ms later). Long enough that a poll,
/// which costs the provider and the hub ~40 µs of CPU each on a slow machine, stays a small
/// share of the time it waits.
const QUICK_PAUSE: Duration = Duration::from_micros(250);

/// Lane panics within [`LANE_PANIC_WINDOW`] after which the worker gives up: a bug that
/// panics this often would otherwise restart lanes in a loop.
const MAX_LANE_PANICS: usize = 10;
/// The window [`MAX_LANE_PANICS`] is counted in.
const LANE_PANIC_WINDOW: Duration = Duration::from_secs(60);

/// How far a result has been cut down to fit the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cut {
    /// As the action answered.
    Whole,
    /// Replaced by a small `RESULT_TOO_LARGE` answer, payload and account kept.
    Envelope,
    /// And the echoed payload and account replaced by `{"omitted_bytes": N}`.
    Inputs,
}

/// What a lane keeps from one poll to the next.
struct Lane {
    index: usize,
    /// Asks for tasks.
    poller: Poller,
    /// Submits answers, beside the poller's call when the lane polls ahead.
    submitter: Submitter,
    /// Pauses after the hub could not be reached; made at the first failure.
    failures: Option<ExponentialBackoff>,
    /// Pauses after the hub refused the token; made at the first refusal.
    auth_failures: Option<ExponentialBackoff>,
    /// True while this lane is the one that polls an idle or unreachable hub.
    is_scout: bool,
}

impl Lane {
    fn new(index: usize, hub: &HubClient, shutdown: &Shutdown) -> Self {
        Self {
            index,
            poller: Poller {
                hub: hub.clone(),
                stop: shutdown.stop.watch(),
            },
            submitter: Submitter {
                hub: hub.clone(),
                give_up: shutdown.give_up.watch(),
            },
            failures: None,
            auth_failures: None,
            is_scout: false,
        }
    }

    /// The hub answered: the next failure starts the backoff over.
    fn hub_answered(&mut self) {
        self.failures = None;
        self.auth_failures = None;
    }
}

/// A lane's `GetTask` side: its own client of the hub (each side has one, so that both can
/// be in flight at once) and its wait on shutdown.
struct Poller {
    hub: HubClient,
    /// Resolves once shutdown begins. Kept for the lane's life: it registers with the token
    /// once, and then reads a flag on each poll of each call.
    stop: StageWatch,
}

/// A lane's `SubmitTaskResult` side.
struct Submitter {
    hub: HubClient,
    /// Resolves once results can no longer wait for the hub (kept, as `stop` is).
    give_up: StageWatch,
}

/// What one `GetTask` brought, and how long the hub took to answer it.
struct Polled {
    answer: Result<Option<IncomingTask>, HubError>,
    took: Duration,
}

impl Polled {
    fn has_task(&self) -> bool {
        matches!(self.answer, Ok(Some(_)))
    }
}

/// Shared by the lanes of one worker.
pub(crate) struct Worker {
    hub: HubClient,
    dispatcher: Arc<Dispatcher>,
    shutdown: Shutdown,
    idle: IdlePauses,
    scout: AtomicBool,
    /// Set at the first task the hub hands back in a `SubmitTaskResult` answer: from then on
    /// lanes wait for that answer instead of polling beside it.
    hands_back: AtomicBool,
    /// The scout's pauses. Only the scout pauses, so the lock is never contended; it keeps the
    /// timer to one waiter all the same.
    sleep: tokio::sync::Mutex<FineSleep>,
    wake: Notify,
    readiness: Arc<Readiness>,
    max_result_bytes: usize,
}

impl Worker {
    /// A worker for `dispatcher`'s provider on `hub`.
    pub(crate) fn new(
        hub: HubClient,
        dispatcher: Arc<Dispatcher>,
        shutdown: Shutdown,
        idle_poll_cap: Duration,
        max_result_bytes: usize,
        readiness: Arc<Readiness>,
    ) -> Arc<Self> {
        Arc::new(Self {
            hub,
            dispatcher,
            shutdown,
            idle: IdlePauses::new(idle_poll_cap),
            scout: AtomicBool::new(false),
            hands_back: AtomicBool::new(false),
            sleep: tokio::sync::Mutex::default(),
            wake: Notify::new(),
            readiness,
            max_result_bytes,
        })
    }

    fn metrics(&self) -> &Metrics {
        self.dispatcher.metrics()
    }

    /// Runs `lanes` lanes until shutdown, then returns once each has answered its last task. A
    /// lane that panics outside an action is restarted; `Err` when lanes panic so often that
    /// the worker cannot go on.
    pub(crate) async fn run(self: Arc<Self>, lanes: usize) -> Result<(), Error> {
        let metrics = self.metrics().clone();
        metrics.set_worker_slots(lanes);
        supervise(lanes, &metrics, move |lane| self.clone().lane(lane)).await
    }

    /// One lane: unless it is the scout it sleeps while another lane polls an idle hub; it
    /// polls, then runs what came (and what the hub hands back) or pauses before polling again.
    async fn lane(self: Arc<Self>, index: usize) {
        let mut lane = Lane::new(index, &self.hub, &self.shutdown);
        // The answer to the poll made while the last result went in: a task in it runs even
        // when shutdown has begun since (the hub counts it as delivered).
        let mut ahead: Option<Polled> = None;
        loop {
            let polled = match ahead.take() {
                Some(polled) => polled,
                None if self.shutdown.stop.has_begun() => break,
                None => {
                    if !lane.is_scout && self.scout.load(Ordering::Acquire) {
                        if !self.sleep_until_work().await {
                            break;
                        }
                        continue;
                    }
                    let Some(polled) = Self::poll(&mut lane.poller).await else {
                        break;
                    };
                    polled
                }
            };
            self.count_poll(&mut lane, &polled);
            let pause = match polled.answer {
                Ok(Some(task)) => {
                    self.work_found(&mut lane);
                    ahead = self.run_chain(&mut lane, task).await;
                    continue;
                }
                Ok(None) => {
                    if !self.become_scout(&mut lane) {
                        continue;
                    }
                    self.idle.no_work(polled.took)
                }
                Err(error) => {
                    let delay = self.hub_failed(&mut lane, &error);
                    if !self.become_scout(&mut lane) {
                        continue;
                    }
                    delay
                }
            };
            if !self.pause(pause).await {
                break;
            }
        }
        if lane.is_scout {
            self.scout.store(false, Ordering::Release);
        }
        // Lanes asleep on `wake` see `stop` themselves; nothing more to hand over.
    }

    /// Sleeps until the scout finds work (true) or the worker stops (false).
    async fn sleep_until_work(&self) -> bool {
        tokio::select! {
            () = self.wake.notified() => true,
            () = self.shutdown.stop.token().cancelled() => false,
        }
    }

    /// Asks the hub for a task. When shutdown begins while the call is in flight, its answer
    /// still gets [`STOP_POLL_GRACE`]: the hub may have handed out a task that is on its way,
    /// and a task the hub counts as delivered is not dropped. `None` once that grace is over.
    async fn poll(poller: &mut Poller) -> Option<Polled> {
        let asked = Instant::now();
        let call = poller.hub.get_task();
        tokio::pin!(call);
        let answer = tokio::select! {
            biased;
            answer = &mut call => answer,
            () = &mut poller.stop => {
                tokio::time::timeout(STOP_POLL_GRACE, call).await.ok()?
            }
        };
        Some(Polled {
            answer,
            took: asked.elapsed(),
        })
    }

    /// Counts a poll's answer; one that came at all shows the hub is up.
    fn count_poll(&self, lane: &mut Lane, polled: &Polled) {
        let counted = match polled.answer {
            Ok(Some(_)) => Poll::Task,
            Ok(None) => Poll::Empty,
            Err(_) => Poll::Error,
        };
        if polled.answer.is_ok() {
            self.hub_is_up();
            lane.hub_answered();
        }
        self.metrics().polled(counted);
    }

    /// Work is back: the lane stops scouting and wakes one sleeping lane, which wakes the next
    /// if it finds work too.
    fn work_found(&self, lane: &mut Lane) {
        self.idle.work_found();
        if lane.is_scout {
            lane.is_scout = false;
            self.scout.store(false, Ordering::Release);
        }
        self.wake.notify_one();
    }

    /// The pause after the hub refused the token (logged each time) or could not be reached
    /// (logged once until it answers again).
    fn hub_failed(&self, lane: &mut Lane, error: &HubError) -> Duration {
        if let HubError::Unauthenticated { .. } = error {
            self.readiness.hub_failed(true, error);
            let delay = next_delay(&mut lane.auth_failures, AUTH_RETRY_CAP);
            tracing::error!(
                lane = lane.index,
                retry_in_ms = delay.as_millis() as u64,
                "{}",
                Escaped(error)
            );
            return delay;
        }
        let delay = next_delay(&mut lane.failures, RETRY_CAP);
        if self.readiness.hub_failed(false, error) {
            tracing::warn!(
                lane = lane.index,
                "{}; retrying with backoff",
                Escaped(error)
            );
        } else {
            tracing::debug!(
                lane = lane.index,
                retry_in_ms = delay.as_millis() as u64,
                "{}",
                Escaped(error)
            );
        }
        delay
    }

    /// Whether the lane polls the idle or unreachable hub: it does when it already did, or when
    /// no other lane does; otherwise it goes back to sleep until there is work.
    fn become_scout(&self, lane: &mut Lane) -> bool {
        if !lane.is_scout {
            lane.is_scout = self
                .scout
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        }
        lane.is_scout
    }

    /// Sleeps `pause` before the next poll; false when the worker stops meanwhile.
    async fn pause(&self, pause: Duration) -> bool {
        let mut sleep = self.sleep.lock().await;
        tokio::select! {
            () = sleep.sleep(pause) => true,
            () = self.shutdown.stop.token().cancelled() => false,
        }
    }

    fn hub_is_up(&self) {
        if self.readiness.hub_answered() {
            tracing::info!("the hub answers again");
        }
    }

    /// Runs a task, submits its answer, and keeps going while the hub hands work back.
    /// Returns the answer to a poll made beside the last submit, for the lane to go on with.
    ///
    /// Until the hub has handed a task back, each submit has a poll beside it while no lane
    /// scouts an idle hub: at concurrency 1 a task then waits for one round trip instead of
    /// two. Once the hub has handed one back, the submit's answer brings the next task and the
    /// lane waits for it alone. A task polled beside a handed-back one (at the first hand-back,
    /// and in the other lanes' calls then in flight) is kept for after the chain, whose
    /// submits stop asking for more.
    ///
    /// The task runs in its span; the submit runs outside it, and enters it only to log.
    /// Inside it, every poll of the RPC would enter and leave the span: instructions spent on
    /// every task for lines that are almost never written.
    async fn run_chain(&self, lane: &mut Lane, first: IncomingTask) -> Option<Polled> {
        let mut next = Some(first);
        let mut source = Source::Poll;
        let mut kept: Option<Polled> = None;
        while let Some(task) = next.take() {
            self.metrics().received(source);
            source = Source::HandBack;
            let span = self.dispatcher.task_span(&task);
            let answered = async {
                // Its answer, whatever happens in there (see `Dispatcher::dispatch`).
                let answered = self
                    .dispatcher
                    .dispatch(task, self.shutdown.interrupt.token())
                    .await;
                tracing::debug!(
                    status = %answered.done.status,
                    elapsed_us = answered.took.as_micros() as u64,
                    "task answered"
                );
                answered
            }
            .instrument(span.clone())
            .await;
            // Not while a scout polls: the hub had no work a moment ago, and the lane would
            // only add a "no task" answer to the scout's.
            let poll_ahead = kept.is_none()
                && !self.hands_back.load(Ordering::Relaxed)
                && !self.scout.load(Ordering::Acquire)
                && !self.shutdown.stop.has_begun();
            if !poll_ahead {
                let take_more = kept.is_none();
                next = self
                    .submit_until_taken(&mut lane.submitter, answered, &span, take_more)
                    .await;
                continue;
            }
            let (handed_back, polled) = tokio::join!(
                self.submit_until_taken(&mut lane.submitter, answered, &span, true),
                Self::poll(&mut lane.poller),
            );
            let Some(handed_back) = handed_back else {
                return polled;
            };
            self.hands_back.store(true, Ordering::Relaxed);
            next = Some(handed_back);
            match polled {
                Some(polled) if polled.has_task() => kept = Some(polled),
                // "No task" or a failure beside a task in hand says nothing for the lane to act on.
                Some(polled) => self.count_poll(lane, &polled),
                None => {}
            }
        }
        kept
    }

    /// Submits `done`, retrying with backoff while the failure may pass. Gives up on a result
    /// the hub refuses for good, or when shutdown can wait no longer; both are logged and
    /// counted. A result too large for the hub is replaced by a small `RESULT_TOO_LARGE` answer.
    ///
    /// The answer's task, when `take_more` and the hub handed one back.
    async fn submit_until_taken(
        &self,
        submitter: &mut Submitter,
        mut answered: Answered,
        span: &Span,
        take_more: bool,
    ) -> Option<IncomingTask> {
        let next = self.submit(submitter, &mut answered, span, take_more).await;
        // Counted once its answer has left (taken or given up), with the status it left with.
        self.dispatcher.record(&answered);
        next
    }

    async fn submit(
        &self,
        submitter: &mut Submitter,
        answered: &mut Answered,
        span: &Span,
        take_more: bool,
    ) -> Option<IncomingTask> {
        let mut cut = Cut::Whole;
        let mut encoded = self.hub.encode(&answered.done);
        if encoded.len() > self.max_result_bytes {
            (cut, encoded) = span.in_scope(|| self.cut_down(answered, cut, encoded.len(), None));
        }
        let (mut delays, mut auth_delays) = (None, None);
        loop {
            // Once shutdown begins a lane takes no more work, from any source.
            let accept_hand_back = take_more && !self.shutdown.stop.has_begun();
            let sent = tokio::select! {
                biased;
                sent = submitter.hub.submit(&answered.done, &encoded, accept_hand_back) => sent,
                () = &mut submitter.give_up => {
                    span.in_scope(|| self.give_up("shutdown could not wait longer for the hub to take it"));
                    return None;
                }
            };
            let error = match sent {
                Ok(next) => {
                    self.hub_is_up();
                    self.metrics().submitted(Submit::Taken);
                    return next;
                }
                Err(error) => error,
            };
            let failure = error.submit_failure();
            match failure {
                SubmitFailure::Transient => {
                    self.readiness.hub_failed(false, &error);
                }
                SubmitFailure::Unauthenticated => {
                    self.readiness.hub_failed(true, &error);
                }
                SubmitFailure::Final | SubmitFailure::TooLarge => self.hub_is_up(),
            }
            let delay = match failure {
                SubmitFailure::TooLarge if cut < Cut::Inputs => {
                    self.metrics().submitted(Submit::Retried);
                    (cut, encoded) = span.in_scope(|| {
                        self.cut_down(answered, cut, encoded.len(), Some(error.to_string()))
                    });
                    continue;
                }
                SubmitFailure::TooLarge if error.code() == Some(Code::OutOfRange) => {
                    span.in_scope(|| self.refused(&error));
                    return None;
                }
                SubmitFailure::Final => {
                    span.in_scope(|| self.refused(&error));
                    return None;
                }
                SubmitFailure::Transient | SubmitFailure::TooLarge => {
                    next_delay(&mut delays, RETRY_CAP)
                }
                SubmitFailure::Unauthenticated => next_delay(&mut auth_delays, AUTH_RETRY_CAP),
            };
            self.metrics().submitted(Submit::Retried);
            span.in_scope(|| {
                tracing::warn!(
                    retry_in_ms = delay.as_millis() as u64,
                    "result not taken: {}; keeping it and retrying",
                    Escaped(&error)
                );
            });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = &mut submitter.give_up => {
                    span.in_scope(|| self.give_up("shutdown could not wait longer for the hub to take it"));
                    return None;
                }
            }
        }
    }

    /// Cuts `done` one step further down: first to a small `RESULT_TOO_LARGE` answer, then
    /// (when that is still too large, or the hub refused it too) without the echoed inputs.
    /// Returns how far it is cut, and the answer encoded anew.
    fn cut_down(
        &self,
        answered: &mut Answered,
        cut: Cut,
        size: usize,
        hub_answer: Option<String>,
    ) -> (Cut, EncodedResult) {
        let done = &mut answered.done;
        if cut == Cut::Whole {
            answered.error = Some(ErrorKind::ResultTooLarge);
            tracing::error!(
                bytes = size,
                limit = self.max_result_bytes,
                hub_answer = hub_answer.as_deref().unwrap_or(""),
                "the result is too large for the hub; answering RESULT_TOO_LARGE instead"
            );
            *done = self.dispatcher.result_too_large(
                done,
                size,
                self.max_result_bytes,
                hub_answer.clone(),
            );
            // The inputs are kept while they fit; a hub that still refuses gets them cut next.
            let encoded = self.hub.encode(done);
            if encoded.len() <= self.max_result_bytes {
                return (Cut::Envelope, encoded);
            }
        }
        tracing::warn!(
            payload_bytes = done.payload.len(),
            account_bytes = done.account.len(),
            "the task's own payload and account are too large to echo; sending {{\"omitted_bytes\": N}} in their place"
        );
        done.omit_inputs();
        (Cut::Inputs, self.hub.encode(done))
    }

    fn refused(&self, error: &HubError) {
        self.metrics().submitted(Submit::Lost);
        self.metrics().refused();
        tracing::error!(
            code = ?error.code(),
            "the hub refused this result for good ({}); giving it up", Escaped(&error)
        );
    }

    fn give_up(&self, reason: &str) {
        self.metrics().submitted(Submit::Lost);
        tracing::error!("result given up: {reason}");
    }
}

/// The scout's pauses between polls of a hub that has no work. They grow with the time since
/// the first "no task" after a lane last found work, and start short again whichever lane found
/// it: a lane that becomes the scout does not bring a long pause of its own.
struct IdlePauses {
    /// When the quiet began, in nanoseconds after `epoch` (never 0); 0 while there is work.
    quiet_since: AtomicU64,
    /// tokio's clock, which tests can pause.
    epoch: tokio::time::Instant,
    cap: Duration,
}

impl IdlePauses {
    fn new(cap: Duration) -> Self {
        Self {
            quiet_since: AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
            cap,
        }
    }

    /// A lane found work.
    fn work_found(&self) {
        // Read first: a store on every task would bounce the line between cores.
        if self.quiet_since.load(Ordering::Relaxed) != 0 {
            self.quiet_since.store(0, Ordering::Relaxed);
        }
    }

    /// The scout's pause after the hub answered "no task" to a call that took `took`.
    fn no_work(&self, took: Duration) -> Duration {
        let elapsed = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        let now = elapsed + 1;
        let quiet =
            match self
                .quiet_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => Duration::ZERO,
                Err(since) => Duration::from_nanos(now.saturating_sub(since)),
            };
        idle_pause(quiet, took, self.cap)
    }
}

/// The scout's pause after a "no task" that came `quiet` after the first one since work was
/// last found: none when the hub held the call open until it had nothing (it long-polls, so
/// ask again at once); else [`QUICK_PAUSE`] within [`QUICK_WINDOW`], then half the quiet so far,
/// up to `cap`. Each poll then comes at most 1.5 × the quiet before it, so the tasks that end a
/// lull wait at most half as long as the lull, and an idle hub is asked ever more rarely, down
/// to once a `cap`.
fn idle_pause(quiet: Duration, took: Duration, cap: Duration) -> Duration {
    if took >= cap {
        return Duration::ZERO;
    }
    if quiet < QUICK_WINDOW {
        return QUICK_PAUSE;
    }
    (quiet / 2).max(QUICK_PAUSE).min(cap)
}

/// The next pause of a backoff made at its first use: most tasks never need one.
fn next_delay(backoff: &mut Option<ExponentialBackoff>, cap: Duration) -> Duration {
    backoff
        .get_or_insert_with(|| reconnect_backoff(cap))
        .next()
        .unwrap_or(cap)
}

/// Runs `lanes` lanes made by `lane`, restarting one that panics, until all have returned.
/// `Err` once more than [`MAX_LANE_PANICS`] panics fall in [`LANE_PANIC_WINDOW`].
async fn supervise<F, Fut>(lanes: usize, metrics: &Metrics, lane: F) -> Result<(), Error>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let mut lane_of = HashMap::with_capacity(lanes);
    for index in 0..lanes {
        lane_of.insert(set.spawn(lane(index)).id(), index);
    }
    let mut panics = VecDeque::new();
    while let Some(joined) = set.join_next_with_id().await {
        let failure = match joined {
            Ok((id, ())) => {
                lane_of.remove(&id);
                continue;
            }
            Err(failure) => failure,
        };
        let index = lane_of.remove(&failure.id()).unwrap_or_default();
        let now = Instant::now();
        panics.push_back(now);
        while panics
            .front()
            .is_some_and(|at| now.duration_since(*at) > LANE_PANIC_WINDOW)
        {
            panics.pop_front();
        }
        if panics.len() > MAX_LANE_PANICS {
            tracing::error!(lane = index, error = %failure, "a worker lane panicked again; the worker cannot go on");
            return Err(Error::WorkerFailed(format!(
                "worker lanes panicked {} times within {}s (last: {failure})",
                panics.len(),
                LANE_PANIC_WINDOW.as_secs()
            )));
        }
        tracing::error!(lane = index, error = %failure, "a worker lane panicked outside an action; restarting it");
        metrics.lane_restarted();
        lane_of.insert(set.spawn(lane(index)).id(), index);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn test_metrics() -> Metrics {
        Metrics::new("test", &[], true)
    }

    #[tokio::test]
    async fn a_lane_that_panics_is_restarted_in_its_place() {
        let metrics = test_metrics();
        let started = Arc::new(Mutex::new(Vec::new()));
        let record = started.clone();
        let ended = supervise(3, &metrics, move |lane| {
            let first_run_of_lane_1 = {
                let mut started = record.lock().unwrap();
                started.push(lane);
                lane == 1 && started.iter().filter(|l| **l == 1).count() == 1
            };
            async move {
                assert!(!first_run_of_lane_1, "lane 1 fails once");
            }
        })
        .await;
        assert!(ended.is_ok(), "{ended:?}");
        let mut started = started.lock().unwrap().clone();
        started.sort_unstable();
        assert_eq!(started, [0, 1, 1, 2]);
        assert_eq!(metrics.snapshot().lane_restarts, 1);
    }

    #[tokio::test]
    async fn lanes_that_keep_panicking_end_the_worker_with_an_error() {
        let metrics = test_metrics();
        let ended = supervise(2, &metrics, |_lane| async { panic!("a bug in a lane") }).await;
        let error = ended.unwrap_err();
        assert!(matches!(error, Error::WorkerFailed(_)), "{error}");
        assert!(error.to_string().contains("panicked"), "{error}");
        assert_eq!(metrics.snapshot().lane_restarts, MAX_LANE_PANICS as u64);
    }

    #[test]
    fn pauses_stay_short_for_a_while_after_work_then_grow_with_the_quiet_up_to_the_cap() {
        let cap = Duration::from_millis(50);
        let answered_at_once = Duration::from_micros(300);
        let pauses: Vec<u64> = [0, 1, 5, 9, 10, 16, 40, 99, 100, 10_000]
            .into_iter()
            .map(|quiet_ms| {
                let quiet = Duration::from_millis(quiet_ms);
                idle_pause(quiet, answered_at_once, cap).as_micros() as u64
            })
            .collect();
        let micros = [
            250, 250, 250, 250, 5_000, 8_000, 20_000, 49_500, 50_000, 50_000,
        ];
        assert_eq!(pauses, micros);
        // A hub that held the call until it had nothing is asked again at once.
        assert_eq!(idle_pause(Duration::from_secs(1), cap, cap), Duration::ZERO);
        // The smallest cap allowed holds too.
        let small_cap = crate::config::MIN_IDLE_POLL_CAP;
        assert_eq!(
            idle_pause(Duration::from_millis(30), answered_at_once, small_cap),
            small_cap
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_scouts_pauses_start_short_again_when_any_lane_finds_work() {
        let idle = IdlePauses::new(Duration::from_millis(50));
        let answered_at_once = Duration::from_micros(300);
        assert_eq!(idle.no_work(answered_at_once), QUICK_PAUSE);
        tokio::time::advance(Duration::from_millis(8)).await;
        assert_eq!(idle.no_work(answered_at_once), QUICK_PAUSE);
        tokio::time::advance(Duration::from_millis(12)).await;
        assert_eq!(idle.no_work(answered_at_once), Duration::from_millis(10));
        // Another lane found work (the scout itself found none): the next scout starts over.
        idle.work_found();
        tokio::time::advance(Duration::from_millis(30)).await;
        assert_eq!(idle.no_work(answered_at_once), QUICK_PAUSE);
    }
}
