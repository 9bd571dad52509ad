//! The dev hub's tasks: queues by provider, leases, results and their waiters.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;
// tokio's clock, so tests can pause it and move leases on without sleeping.
use tokio::time::Instant;
use uuid::Uuid;

use super::metrics::{HubMetrics, Snapshot};
use crate::secret::AuthToken;

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting for its provider.
    Queued,
    /// Given to a provider; no result yet.
    Leased,
    /// Answered.
    Done,
}

/// A task as the dev hub sees it.
#[derive(Clone, Debug, Serialize)]
pub struct TaskInfo {
    /// Its id.
    pub id: String,
    /// The provider it is for.
    pub provider: String,
    /// The action.
    pub action: String,
    /// Its state.
    pub state: TaskState,
    /// How many times it was given to a provider.
    pub deliveries: u32,
    /// Seconds from enqueue to its first delivery, once given out: the part of `latency_s`
    /// the task spent waiting for a provider to ask.
    pub wait_s: Option<f64>,
    /// Seconds from enqueue to result, once answered.
    pub latency_s: Option<f64>,
    /// The result envelope, once answered.
    pub result: Option<Value>,
}

/// Counters of a dev hub.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HubStats {
    /// Tasks waiting.
    pub queued: usize,
    /// Tasks given out, not answered.
    pub leased: usize,
    /// Tasks answered, including those forgotten since.
    pub done: usize,
    /// Answered tasks no longer kept (beyond the hub's `keep`); `done - forgotten` are kept.
    pub forgotten: usize,
    /// `GetTask` calls received.
    pub get_task_calls: u64,
    /// `SubmitTaskResult` calls received.
    pub submit_calls: u64,
    /// Results for tasks already answered (kept out; the first result stands).
    pub duplicate_results: u64,
    /// Calls refused for a wrong token.
    pub refused_tokens: u64,
}

struct Record {
    /// Its place in enqueue order (the key in `Tasks::order`).
    seq: u64,
    provider: Arc<str>,
    action: String,
    payload: Bytes,
    account: Bytes,
    state: TaskState,
    deliveries: u32,
    enqueued: Instant,
    leased_at: Option<Instant>,
    /// From enqueue to the first delivery.
    wait: Option<Duration>,
    latency: Option<Duration>,
    result: Option<Arc<String>>,
    /// Wakes those waiting for the result; made only for tasks someone waits on.
    done: Option<Arc<Notify>>,
}

/// The tasks of one provider waiting to be given out.
#[derive(Default)]
struct Queue {
    /// Ids in the order they are offered; an id whose task is no longer queued (answered by a
    /// late result) is skipped when reached.
    ids: VecDeque<TaskId>,
    /// How many of `ids` are queued: the provider's queue depth.
    waiting: usize,
}

#[derive(Default)]
struct Tasks {
    records: BTreeMap<TaskId, Record>,
    /// Ids in enqueue order; a map so forgetting a task does not shift the others.
    order: BTreeMap<u64, TaskId>,
    next_seq: u64,
    queues: HashMap<Arc<str>, Queue>,
    leased: BTreeSet<TaskId>,
    /// Answered tasks still kept, oldest answer first: the next to forget is at the front.
    finished: VecDeque<TaskId>,
    /// No lease runs out before this instant, so taking a task skips the expiry scan until
    /// then (the scan is over every leased task).
    next_expiry: Option<Instant>,
    /// Running counts, so `/stats` and `/metrics` never scan the tasks. Answers, duplicates
    /// and forgotten tasks are counted by the hub's metrics, also under this lock.
    queued: usize,
    leased_count: usize,
}

impl Tasks {
    /// Forgets the oldest answers until at most `keep` are kept.
    fn forget_beyond(&mut self, keep: usize, forgotten: &prometheus::IntCounter) {
        while self.finished.len() > keep {
            let Some(id) = self.finished.pop_front() else {
                break;
            };
            if let Some(record) = self.records.remove(&id) {
                self.order.remove(&record.seq);
                forgotten.inc();
            }
        }
    }

    /// Puts a leased task back first in its queue; a task not leased stays as it is.
    fn offer_again(&mut self, id: TaskId) {
        let Some(record) = self.records.get_mut(&id) else {
            self.leased.remove(&id);
            return;
        };
        if record.state != TaskState::Leased {
            return;
        }
        record.state = TaskState::Queued;
        record.leased_at = None;
        let provider = record.provider.clone();
        self.leased.remove(&id);
        self.leased_count -= 1;
        self.queued += 1;
        let queue = self.queues.entry(provider).or_default();
        queue.ids.push_front(id);
        queue.waiting += 1;
    }

    /// Counts a task of `provider` leaving its queue (given out, or answered while queued).
    fn dequeued(&mut self, provider: &str) {
        self.queued -= 1;
        if let Some(queue) = self.queues.get_mut(provider) {
            queue.waiting -= 1;
        }
    }
}

/// A task's id. The hub makes them (random UUIDs), so they are kept as 16 bytes, in B-trees:
/// a hub that grows never rehashes or moves its tasks, which a hash map does all at once with
/// the lock held (a stall of milliseconds at tens of thousands of tasks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TaskId(Uuid);

impl TaskId {
    fn random() -> Self {
        // Random bytes from the thread's generator: `new_v4` asks the kernel for each id.
        Self(uuid::Builder::from_random_bytes(rand::random()).into_uuid())
    }

    /// The id a caller sent, if it is in the one form this hub gives ids out in (hyphenated,
    /// lower case): a provider must send an id back unchanged, and another form of the same
    /// UUID is not the same id to a hub that compares strings.
    fn parse(id: &str) -> Option<Self> {
        if id.len() != 36 || id.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        Uuid::try_parse(id).ok().map(Self)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// A task handed to a provider.
pub(crate) struct Delivery {
    pub id: String,
    pub action: String,
    pub payload: Bytes,
    pub account: Bytes,
    pub lease: Lease,
}

/// Which task was given out, and which of its deliveries it was: what [`State::release`]
/// needs to take back a delivery that never reached its caller, and nothing later.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lease {
    id: TaskId,
    delivery: u32,
}

/// Why a result was not taken.
pub(crate) enum SubmitRefusal {
    UnknownTask,
    WrongProvider,
}

pub(crate) struct State {
    token: AuthToken,
    pub(crate) hold: Duration,
    /// Whether a result's answer may carry the next task to a client that asks for one.
    pub(crate) hand_back: bool,
    lease: Duration,
    keep: usize,
    tasks: Mutex<Tasks>,
    waiting: Mutex<HashMap<Arc<str>, Arc<Notify>>>,
    metrics: HubMetrics,
}

impl State {
    /// `keep`: how many answered tasks to remember (at least one).
    pub(crate) fn new(
        token: AuthToken,
        hold: Duration,
        hand_back: bool,
        lease: Duration,
        keep: usize,
    ) -> Self {
        Self {
            token,
            hold,
            hand_back,
            lease,
            keep: keep.max(1),
            tasks: Mutex::default(),
            waiting: Mutex::default(),
            metrics: HubMetrics::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tasks> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters for a dev hub; keep serving.
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn token_ok(&self, token: &str) -> bool {
        let ok = self.token.matches(token);
        if !ok {
            self.metrics.refused_tokens.inc();
        }
        ok
    }

    /// How many answered tasks are remembered.
    pub(crate) fn keep(&self) -> usize {
        self.keep
    }

    pub(crate) fn count_get_task(&self) {
        self.metrics.get_task_calls.inc();
    }

    pub(crate) fn count_submit(&self) {
        self.metrics.submit_calls.inc();
    }

    /// The signal that wakes `GetTask` calls of `provider` waiting for work.
    pub(crate) fn notifier(&self, provider: &str) -> Arc<Notify> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(notify) = waiting.get(provider) {
            return notify.clone();
        }
        waiting.entry(Arc::from(provider)).or_default().clone()
    }

    pub(crate) fn enqueue(
        &self,
        provider: &str,
        action: &str,
        payload: Bytes,
        account: Bytes,
    ) -> String {
        let id = TaskId::random();
        let provider: Arc<str> = Arc::from(provider);
        {
            let mut tasks = self.lock();
            let seq = tasks.next_seq;
            tasks.next_seq += 1;
            tasks.records.insert(
                id,
                Record {
                    seq,
                    provider: provider.clone(),
                    action: action.to_owned(),
                    payload,
                    account,
                    state: TaskState::Queued,
                    deliveries: 0,
                    enqueued: Instant::now(),
                    leased_at: None,
                    wait: None,
                    latency: None,
                    result: None,
                    done: None,
                },
            );
            tasks.order.insert(seq, id);
            tasks.queued += 1;
            let queue = tasks.queues.entry(provider.clone()).or_default();
            queue.ids.push_back(id);
            queue.waiting += 1;
            self.metrics.enqueued.inc();
        }
        self.notifier(&provider).notify_one();
        id.to_string()
    }

    /// Gives the next task of `provider` to the caller, if there is one.
    pub(crate) fn take_next(&self, provider: &str) -> Option<Delivery> {
        let now = Instant::now();
        let mut tasks = self.lock();
        self.requeue_expired(&mut tasks, now);
        let Tasks {
            records,
            queues,
            leased,
            next_expiry,
            queued,
            leased_count,
            ..
        } = &mut *tasks;
        let queue = queues.get_mut(provider)?;
        while let Some(id) = queue.ids.pop_front() {
            let Some(record) = records.get_mut(&id) else {
                continue;
            };
            if record.state != TaskState::Queued {
                continue;
            }
            record.state = TaskState::Leased;
            *queued -= 1;
            queue.waiting -= 1;
            *leased_count += 1;
            record.deliveries += 1;
            record.leased_at = Some(now);
            record
                .wait
                .get_or_insert_with(|| now.duration_since(record.enqueued));
            leased.insert(id);
            // Later leases run out later: an expiry already set stays the earliest.
            next_expiry.get_or_insert(now + self.lease);
            return Some(Delivery {
                id: id.to_string(),
                action: record.action.clone(),
                payload: record.payload.clone(),
                account: record.account.clone(),
                lease: Lease {
                    id,
                    delivery: record.deliveries,
                },
            });
        }
        None
    }

    /// Offers again the tasks whose lease ran out without a result.
    fn requeue_expired(&self, tasks: &mut Tasks, now: Instant) {
        if tasks.next_expiry.is_none_or(|at| at > now) {
            return;
        }
        let lease = self.lease;
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        for id in &tasks.leased {
            let Some(at) = tasks.records.get(id).and_then(|r| r.leased_at) else {
                continue;
            };
            if now.duration_since(at) >= lease {
                expired.push(*id);
            } else {
                next = Some(next.map_or(at + lease, |n| n.min(at + lease)));
            }
        }
        tasks.next_expiry = next;
        for id in expired {
            tasks.offer_again(id);
        }
    }

    /// Offers again at once, first in its queue, a task whose answer never left the hub
    /// (its caller had gone): it need not wait out its lease. The delivery is not counted.
    /// Nothing happens to a task that has moved on since: answered, or given out again.
    pub(crate) fn release(&self, lease: Lease) {
        let provider = {
            let mut tasks = self.lock();
            let Some(record) = tasks.records.get_mut(&lease.id) else {
                return;
            };
            if record.state != TaskState::Leased || record.deliveries != lease.delivery {
                return;
            }
            record.deliveries -= 1;
            if record.deliveries == 0 {
                record.wait = None;
            }
            let provider = record.provider.clone();
            tasks.offer_again(lease.id);
            provider
        };
        self.notifier(&provider).notify_one();
    }

    pub(crate) fn complete(
        &self,
        id: &str,
        provider: &str,
        result: String,
    ) -> Result<(), SubmitRefusal> {
        let Some(id) = TaskId::parse(id) else {
            return Err(SubmitRefusal::UnknownTask);
        };
        let waiters = {
            let mut tasks = self.lock();
            let Some(record) = tasks.records.get_mut(&id) else {
                return Err(SubmitRefusal::UnknownTask);
            };
            if &*record.provider != provider {
                return Err(SubmitRefusal::WrongProvider);
            }
            let was = record.state;
            if was == TaskState::Done {
                self.metrics.duplicate_results.inc();
                return Ok(());
            }
            let latency = record.enqueued.elapsed();
            record.state = TaskState::Done;
            record.latency = Some(latency);
            record.result = Some(Arc::new(result));
            let waiters = record.done.take();
            let provider = record.provider.clone();
            // A late result for a task offered again after its lease ran out still counts.
            match was {
                TaskState::Queued => tasks.dequeued(&provider),
                TaskState::Leased => tasks.leased_count -= 1,
                TaskState::Done => {}
            }
            self.metrics.results.inc();
            self.metrics.result_latency.observe(latency.as_secs_f64());
            tasks.leased.remove(&id);
            tasks.finished.push_back(id);
            tasks.forget_beyond(self.keep, &self.metrics.forgotten);
            waiters
        };
        if let Some(waiters) = waiters {
            waiters.notify_waiters();
        }
        Ok(())
    }

    /// The task's result, if it has one; `None` inside for a task not answered yet.
    fn result_of(&self, id: &str) -> Option<Option<Arc<String>>> {
        let id = TaskId::parse(id)?;
        self.lock().records.get(&id).map(|r| r.result.clone())
    }

    /// Waits up to `timeout` for the task's result. `None`: no such task.
    pub(crate) async fn wait_done(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Option<Option<Arc<String>>> {
        let notify = {
            let id = TaskId::parse(id)?;
            let mut tasks = self.lock();
            let record = tasks.records.get_mut(&id)?;
            if let Some(result) = &record.result {
                return Some(Some(result.clone()));
            }
            record.done.get_or_insert_with(Default::default).clone()
        };
        let notified = notify.notified();
        tokio::pin!(notified);
        // Registered before the second look, so a result that lands in between still wakes us.
        notified.as_mut().enable();
        if let Some(Some(result)) = self.result_of(id) {
            return Some(Some(result));
        }
        let _ = tokio::time::timeout(timeout, notified).await;
        self.result_of(id)
    }

    pub(crate) async fn wait_result(&self, id: &str, timeout: Duration) -> Option<Value> {
        let result = self.wait_done(id, timeout).await??;
        serde_json::from_str(&result).ok()
    }

    pub(crate) fn task(&self, id: &str) -> Option<TaskInfo> {
        let id = TaskId::parse(id)?;
        self.lock().records.get(&id).map(|r| info(id, r))
    }

    pub(crate) fn tasks(&self) -> Vec<TaskInfo> {
        let tasks = self.lock();
        tasks
            .order
            .values()
            .filter_map(|&id| tasks.records.get(&id).map(|r| info(id, r)))
            .collect()
    }

    pub(crate) fn stats(&self) -> HubStats {
        let tasks = self.lock();
        let metrics = &self.metrics;
        HubStats {
            queued: tasks.queued,
            leased: tasks.leased_count,
            done: count(metrics.results.get()),
            forgotten: count(metrics.forgotten.get()),
            duplicate_results: metrics.duplicate_results.get(),
            get_task_calls: metrics.get_task_calls.get(),
            submit_calls: metrics.submit_calls.get(),
            refused_tokens: metrics.refused_tokens.get(),
        }
    }

    /// The hub's metrics in the Prometheus text format.
    pub(crate) fn metrics_text(&self) -> String {
        let tasks = self.lock();
        self.metrics.render(Snapshot {
            queued: tasks.queued,
            leased: tasks.leased_count,
            kept_done: tasks.finished.len(),
            queue_depth: tasks
                .queues
                .iter()
                .map(|(provider, queue)| (&**provider, queue.waiting))
                .collect(),
        })
    }
}

/// A count kept as a metric (`u64`), as a number of tasks.
fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn info(id: TaskId, record: &Record) -> TaskInfo {
    TaskInfo {
        id: id.to_string(),
        provider: record.provider.to_string(),
        action: record.action.clone(),
        state: record.state,
        deliveries: record.deliveries,
        wait_s: record.wait.map(|w| w.as_secs_f64()),
        latency_s: record.latency.map(|l| l.as_secs_f64()),
        result: record
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lease: Duration) -> State {
        State::new(AuthToken::new("t"), Duration::ZERO, true, lease, usize::MAX)
    }

    fn enqueue(state: &State, provider: &str) -> String {
        state.enqueue(provider, "echo", Bytes::from_static(b"{}"), Bytes::new())
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_delivery_is_offered_first_and_a_later_one_is_not_taken_back() {
        let lease = Duration::from_millis(400);
        let state = state(lease);
        let a = enqueue(&state, "p");
        let b = enqueue(&state, "p");
        tokio::time::advance(Duration::from_millis(5)).await;
        let first = state.take_next("p").unwrap();
        assert_eq!(first.id, a);
        state.release(first.lease);
        let info = state.task(&a).unwrap();
        assert_eq!((info.state, info.deliveries), (TaskState::Queued, 0));
        assert_eq!(info.wait_s, None, "never given out: no wait yet");
        assert_eq!(state.stats().queued, 2);
        assert_eq!(state.stats().leased, 0);

        let again = state.take_next("p").unwrap();
        assert_eq!(again.id, a, "back first in its queue, before b");
        tokio::time::advance(lease).await;
        let after_expiry = state.take_next("p").unwrap();
        assert_eq!(after_expiry.id, a, "its lease ran out: offered again");
        state.release(again.lease);
        assert_eq!(
            state.task(&a).unwrap().deliveries,
            2,
            "an old delivery does not take back the one given out since"
        );
        assert_eq!(state.take_next("p").unwrap().id, b);
        state.complete(&a, "p", "{}".into()).ok().unwrap();
        state.release(after_expiry.lease);
        assert_eq!(state.task(&a).unwrap().state, TaskState::Done);
        assert!(state.take_next("p").is_none());
        assert_eq!(state.stats().leased, 1, "b");
    }

    #[tokio::test(start_paused = true)]
    async fn every_lease_that_runs_out_is_offered_again_and_only_those() {
        let lease = Duration::from_millis(400);
        let state = state(lease);
        // One queue per provider, so each take below can only return its own task.
        let a = enqueue(&state, "p1");
        let b = enqueue(&state, "p2");
        assert_eq!(state.take_next("p1").unwrap().id, a);
        tokio::time::advance(lease / 2).await;
        assert_eq!(state.take_next("p2").unwrap().id, b);
        tokio::time::advance(lease / 2 - Duration::from_millis(1)).await;
        assert!(
            state.take_next("p1").is_none(),
            "a's lease has 1 ms left: not offered yet"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        // The scan that offers `a` again (its lease just ran out) must not offer `b`, whose
        // lease has half its time left, nor forget it.
        assert_eq!(state.take_next("p1").unwrap().id, a);
        assert!(state.take_next("p2").is_none(), "b's lease still runs");
        assert_eq!(state.task(&a).unwrap().deliveries, 2);
        tokio::time::advance(lease / 2).await;
        assert_eq!(state.take_next("p2").unwrap().id, b, "b's lease ran out");

        state.complete(&a, "p1", "{}".into()).ok().unwrap();
        tokio::time::advance(lease * 2).await;
        assert!(
            state.take_next("p1").is_none(),
            "an answered task is not offered again"
        );
        assert_eq!(state.take_next("p2").unwrap().id, b);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_from_enqueue_to_the_first_delivery_and_stays_when_offered_again() {
        let lease = Duration::from_millis(400);
        let state = state(lease);
        let a = enqueue(&state, "p1");
        assert_eq!(state.task(&a).unwrap().wait_s, None, "not given out yet");
        tokio::time::advance(Duration::from_millis(5)).await;
        state.take_next("p1").unwrap();
        assert_eq!(state.task(&a).unwrap().wait_s, Some(0.005));
        tokio::time::advance(lease).await;
        state.take_next("p1").unwrap();
        state.complete(&a, "p1", "{}".into()).ok().unwrap();
        let info = state.task(&a).unwrap();
        assert_eq!((info.deliveries, info.wait_s), (2, Some(0.005)));
        assert_eq!(info.latency_s, Some(0.405));
    }

    fn answer(state: &State, provider: &str) -> String {
        let id = state.take_next(provider).unwrap().id;
        state
            .complete(&id, provider, format!(r#"{{"id":"{id}"}}"#))
            .ok()
            .unwrap();
        id
    }

    fn counts(state: &State) -> (usize, usize, usize, usize) {
        let s = state.stats();
        (s.queued, s.leased, s.done, s.forgotten)
    }

    #[test]
    fn the_oldest_answers_are_forgotten_first_and_waiting_work_never() {
        let state = State::new(
            AuthToken::new("t"),
            Duration::ZERO,
            true,
            Duration::from_secs(60),
            2,
        );
        let ids: Vec<String> = (0..6).map(|_| enqueue(&state, "p")).collect();
        // Answered out of enqueue order: 1 then 0 then 2; the answer order decides.
        let leased: Vec<String> = (0..3).map(|_| state.take_next("p").unwrap().id).collect();
        assert_eq!(leased, ids[..3]);
        for i in [1, 0, 2] {
            state.complete(&ids[i], "p", "{}".into()).ok().unwrap();
        }
        assert!(
            state.task(&ids[1]).is_none(),
            "the first answered is forgotten"
        );
        assert!(state.task(&ids[0]).is_some() && state.task(&ids[2]).is_some());
        assert_eq!(counts(&state), (3, 0, 3, 1));

        // A leased task and queued ones stay, however many answers come after.
        let held = state.take_next("p").unwrap().id;
        assert_eq!(held, ids[3]);
        let fifth = answer(&state, "p");
        let sixth = answer(&state, "p");
        assert_eq!(counts(&state), (0, 1, 5, 3));
        let kept: Vec<String> = state.tasks().into_iter().map(|t| t.id).collect();
        assert_eq!(
            kept,
            [held.clone(), fifth, sixth],
            "enqueue order, forgotten ones out"
        );
        assert_eq!(state.task(&held).unwrap().state, TaskState::Leased);
        assert!(matches!(
            state.complete(&ids[1], "p", "{}".into()),
            Err(SubmitRefusal::UnknownTask)
        ));
        state.complete(&held, "p", "{}".into()).ok().unwrap();
        assert_eq!(counts(&state), (0, 0, 6, 4));
        assert_eq!(state.tasks().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn counters_match_the_records_through_requeues_duplicates_and_forgetting() {
        let lease = Duration::from_millis(200);
        let state = State::new(AuthToken::new("t"), Duration::ZERO, true, lease, 3);
        let ids: Vec<String> = (0..8).map(|_| enqueue(&state, "p")).collect();
        let expiring = [
            state.take_next("p").unwrap().id,
            state.take_next("p").unwrap().id,
        ];
        assert_eq!(counts(&state), (6, 2, 0, 0));
        tokio::time::advance(lease).await;
        // Both leases ran out: both are queued again, one is taken, and a late result for
        // the other (queued again, not leased) still counts once.
        let again = state.take_next("p").unwrap().id;
        assert_eq!(counts(&state), (7, 1, 0, 0));
        let late = expiring.iter().find(|id| **id != again).unwrap();
        assert_eq!(state.task(late).unwrap().state, TaskState::Queued);
        state.complete(late, "p", "{}".into()).ok().unwrap();
        assert_eq!(counts(&state), (6, 1, 1, 0));
        state.complete(late, "p", "{}".into()).ok().unwrap();
        assert_eq!(state.stats().duplicate_results, 1);
        while state.take_next("p").is_some() {}
        for id in ids.iter().filter(|id| *id != late) {
            state.complete(id, "p", "{}".into()).ok().unwrap();
        }
        assert_eq!(counts(&state), (0, 0, 8, 5));
        assert_eq!(state.tasks().len(), 3, "only `keep` answers are kept");
        assert!(
            matches!(
                state.complete(late, "p", "{}".into()),
                Err(SubmitRefusal::UnknownTask)
            ),
            "a result for a forgotten task is refused, not counted"
        );
        assert_eq!(counts(&state), (0, 0, 8, 5));
        assert_eq!(state.stats().duplicate_results, 1);
    }

    /// The line of `name` in the metrics text, without its value.
    fn metric(state: &State, name: &str) -> String {
        let text = state.metrics_text();
        let line = text
            .lines()
            .find(|line| line.rsplit_once(' ').is_some_and(|(n, _)| n == name))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"));
        line.rsplit_once(' ').unwrap().1.to_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn metrics_follow_leases_late_results_and_latency_buckets() {
        let lease = Duration::from_millis(200);
        let state = State::new(AuthToken::new("t"), Duration::ZERO, true, lease, 1);
        let a = enqueue(&state, "p");
        enqueue(&state, "p");
        enqueue(&state, "q");
        let depth = |provider: &str| {
            metric(
                &state,
                &format!("arbv_hub_queue_depth{{provider=\"{provider}\"}}"),
            )
        };
        assert_eq!((depth("p"), depth("q")), ("2".into(), "1".into()));
        assert_eq!(state.take_next("p").unwrap().id, a);
        assert_eq!(depth("p"), "1");
        assert_eq!(metric(&state, r#"arbv_hub_tasks{state="leased"}"#), "1");

        // The lease runs out: `a` waits again, then its late result takes it out of the queue.
        tokio::time::advance(lease).await;
        assert!(state.take_next("q").is_some());
        assert_eq!(depth("p"), "2");
        state.complete(&a, "p", "{}".into()).ok().unwrap();
        assert_eq!(depth("p"), "1");
        assert_eq!(metric(&state, r#"arbv_hub_tasks{state="queued"}"#), "1");
        assert_eq!(metric(&state, r#"arbv_hub_tasks{state="done"}"#), "1");

        // 200 ms from enqueue to result: in the 0.25 s bucket, not the 0.1 s one.
        let bucket = |le: &str| {
            metric(
                &state,
                &format!("arbv_hub_result_latency_seconds_bucket{{le=\"{le}\"}}"),
            )
        };
        assert_eq!((bucket("0.1"), bucket("0.25")), ("0".into(), "1".into()));

        // A second answer with keep = 1 forgets the first; a duplicate is counted apart.
        let c = enqueue(&state, "r");
        assert_eq!(state.take_next("r").unwrap().id, c);
        tokio::time::advance(Duration::from_millis(3)).await;
        state.complete(&c, "r", "{}".into()).ok().unwrap();
        state.complete(&c, "r", "{}".into()).ok().unwrap();
        assert_eq!(
            (bucket("0.0025"), bucket("0.005")),
            ("0".into(), "1".into())
        );
        assert_eq!(metric(&state, "arbv_hub_result_latency_seconds_count"), "2");
        assert_eq!(metric(&state, "arbv_hub_results_total"), "2");
        assert_eq!(metric(&state, "arbv_hub_tasks_forgotten_total"), "1");
        assert_eq!(metric(&state, "arbv_hub_duplicate_results_total"), "1");
        assert_eq!(metric(&state, r#"arbv_hub_tasks{state="done"}"#), "1");
        assert_eq!(metric(&state, "arbv_hub_tasks_enqueued_total"), "4");
        assert_eq!(
            (depth("p"), depth("q"), depth("r")),
            ("1".into(), "0".into(), "0".into())
        );
    }

    #[test]
    fn a_task_is_known_by_the_id_it_was_given_out_with_and_by_no_other_form() {
        let state = state(Duration::from_secs(60));
        let id = enqueue(&state, "p");
        assert_eq!(state.take_next("p").unwrap().id, id);
        let uuid = uuid::Uuid::try_parse(&id).unwrap();
        for other in [
            id.to_uppercase(),
            uuid.simple().to_string(),
            uuid.braced().to_string(),
            uuid.urn().to_string(),
            format!(" {id}"),
            id[..35].to_owned(),
            String::new(),
            "not-an-id".to_owned(),
        ] {
            assert!(state.task(&other).is_none(), "{other:?}");
            assert!(
                matches!(
                    state.complete(&other, "p", "{}".into()),
                    Err(SubmitRefusal::UnknownTask)
                ),
                "{other:?}"
            );
        }
        state.complete(&id, "p", "{}".into()).ok().unwrap();
        assert_eq!(state.task(&id).unwrap().state, TaskState::Done);
    }

    #[test]
    fn token_checks_refuse_wrong_empty_and_prefix_tokens() {
        let state = State::new(
            AuthToken::new("secret-token"),
            Duration::ZERO,
            true,
            Duration::ZERO,
            1,
        );
        assert!(state.token_ok("secret-token"));
        for wrong in [
            "",
            "secret",
            "secret-token2",
            "secret-tokeN",
            "Secret-token",
            " secret-token",
        ] {
            assert!(!state.token_ok(wrong), "{wrong:?} must be refused");
        }
        assert_eq!(state.stats().refused_tokens, 6);
    }

    #[tokio::test]
    async fn wait_done_wakes_on_the_result_and_knows_unknown_tasks() {
        let state = Arc::new(state(Duration::from_secs(60)));
        let id = enqueue(&state, "p");
        state.take_next("p").unwrap();
        assert!(state.wait_done("nope", Duration::ZERO).await.is_none());
        assert_eq!(state.wait_done(&id, Duration::ZERO).await, Some(None));
        let answering = {
            let (state, id) = (state.clone(), id.clone());
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                state.complete(&id, "p", r#"{"ok":1}"#.into()).ok().unwrap();
            })
        };
        let result = state.wait_done(&id, Duration::from_secs(30)).await;
        answering.await.unwrap();
        assert_eq!(
            result.flatten().as_deref().map(String::as_str),
            Some(r#"{"ok":1}"#)
        );
        assert_eq!(
            state.wait_result(&id, Duration::ZERO).await,
            Some(serde_json::json!({"ok": 1}))
        );
    }
}
