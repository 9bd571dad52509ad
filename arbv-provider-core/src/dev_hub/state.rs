//! The dev hub's tasks: queues by provider, leases, results and their waiters.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Notify, watch};

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
    /// Tasks answered.
    pub done: usize,
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
    provider: Arc<str>,
    action: String,
    payload: Bytes,
    account: Bytes,
    state: TaskState,
    deliveries: u32,
    enqueued: Instant,
    leased_at: Option<Instant>,
    latency: Option<Duration>,
    result: Option<Arc<str>>,
    done: watch::Sender<bool>,
}

#[derive(Default)]
struct Tasks {
    records: HashMap<Arc<str>, Record>,
    order: Vec<Arc<str>>,
    queues: HashMap<Arc<str>, VecDeque<Arc<str>>>,
    leased: HashSet<Arc<str>>,
    duplicates: u64,
}

/// A task handed to a provider.
pub(crate) struct Delivery {
    pub id: String,
    pub action: String,
    pub payload: Bytes,
    pub account: Bytes,
}

/// Why a result was not taken.
pub(crate) enum SubmitRefusal {
    UnknownTask,
    WrongProvider,
}

pub(crate) struct State {
    token: AuthToken,
    pub(crate) hold: Duration,
    lease: Duration,
    tasks: Mutex<Tasks>,
    waiting: Mutex<HashMap<Arc<str>, Arc<Notify>>>,
    get_task_calls: AtomicU64,
    submit_calls: AtomicU64,
    refused_tokens: AtomicU64,
}

impl State {
    pub(crate) fn new(token: AuthToken, hold: Duration, lease: Duration) -> Self {
        Self {
            token,
            hold,
            lease,
            tasks: Mutex::default(),
            waiting: Mutex::default(),
            get_task_calls: AtomicU64::new(0),
            submit_calls: AtomicU64::new(0),
            refused_tokens: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tasks> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters for a dev hub; keep serving.
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn token_ok(&self, token: &str) -> bool {
        let ok = self.token.expose() == token;
        if !ok {
            self.refused_tokens.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    pub(crate) fn count_get_task(&self) {
        self.get_task_calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_submit(&self) {
        self.submit_calls.fetch_add(1, Ordering::Relaxed);
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
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().to_string());
        let provider: Arc<str> = Arc::from(provider);
        {
            let mut tasks = self.lock();
            tasks.records.insert(
                id.clone(),
                Record {
                    provider: provider.clone(),
                    action: action.to_owned(),
                    payload,
                    account,
                    state: TaskState::Queued,
                    deliveries: 0,
                    enqueued: Instant::now(),
                    leased_at: None,
                    latency: None,
                    result: None,
                    done: watch::Sender::new(false),
                },
            );
            tasks.order.push(id.clone());
            tasks
                .queues
                .entry(provider.clone())
                .or_default()
                .push_back(id.clone());
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
            ..
        } = &mut *tasks;
        let queue = queues.get_mut(provider)?;
        while let Some(id) = queue.pop_front() {
            let Some(record) = records.get_mut(&id) else {
                continue;
            };
            if record.state != TaskState::Queued {
                continue;
            }
            record.state = TaskState::Leased;
            record.deliveries += 1;
            record.leased_at = Some(now);
            leased.insert(id.clone());
            return Some(Delivery {
                id: id.to_string(),
                action: record.action.clone(),
                payload: record.payload.clone(),
                account: record.account.clone(),
            });
        }
        None
    }

    /// Offers again the tasks whose lease ran out without a result.
    fn requeue_expired(&self, tasks: &mut Tasks, now: Instant) {
        if tasks.leased.is_empty() {
            return;
        }
        let lease = self.lease;
        let expired: Vec<Arc<str>> = tasks
            .leased
            .iter()
            .filter(|id| {
                tasks
                    .records
                    .get(*id)
                    .and_then(|r| r.leased_at)
                    .is_some_and(|at| now.duration_since(at) >= lease)
            })
            .cloned()
            .collect();
        for id in expired {
            tasks.leased.remove(&id);
            if let Some(record) = tasks.records.get_mut(&id) {
                record.state = TaskState::Queued;
                record.leased_at = None;
                let provider = record.provider.clone();
                tasks.queues.entry(provider).or_default().push_front(id);
            }
        }
    }

    pub(crate) fn complete(
        &self,
        id: &str,
        provider: &str,
        result: String,
    ) -> Result<(), SubmitRefusal> {
        let mut tasks = self.lock();
        let Tasks {
            records,
            leased,
            duplicates,
            ..
        } = &mut *tasks;
        let Some(record) = records.get_mut(id) else {
            return Err(SubmitRefusal::UnknownTask);
        };
        if &*record.provider != provider {
            return Err(SubmitRefusal::WrongProvider);
        }
        if record.state == TaskState::Done {
            *duplicates += 1;
            return Ok(());
        }
        record.state = TaskState::Done;
        record.latency = Some(record.enqueued.elapsed());
        record.result = Some(Arc::from(result));
        leased.remove(id);
        record.done.send_replace(true);
        Ok(())
    }

    pub(crate) async fn wait_result(&self, id: &str, timeout: Duration) -> Option<Value> {
        let mut done = {
            let tasks = self.lock();
            tasks.records.get(id)?.done.subscribe()
        };
        let _ = tokio::time::timeout(timeout, done.wait_for(|d| *d)).await;
        let tasks = self.lock();
        let result = tasks.records.get(id)?.result.clone()?;
        drop(tasks);
        serde_json::from_str(&result).ok()
    }

    pub(crate) fn task(&self, id: &str) -> Option<TaskInfo> {
        let tasks = self.lock();
        tasks.records.get_key_value(id).map(|(id, r)| info(id, r))
    }

    pub(crate) fn tasks(&self) -> Vec<TaskInfo> {
        let tasks = self.lock();
        tasks
            .order
            .iter()
            .filter_map(|id| tasks.records.get(id).map(|r| info(id, r)))
            .collect()
    }

    pub(crate) fn stats(&self) -> HubStats {
        let tasks = self.lock();
        let mut stats = HubStats {
            duplicate_results: tasks.duplicates,
            get_task_calls: self.get_task_calls.load(Ordering::Relaxed),
            submit_calls: self.submit_calls.load(Ordering::Relaxed),
            refused_tokens: self.refused_tokens.load(Ordering::Relaxed),
            ..HubStats::default()
        };
        for record in tasks.records.values() {
            match record.state {
                TaskState::Queued => stats.queued += 1,
                TaskState::Leased => stats.leased += 1,
                TaskState::Done => stats.done += 1,
            }
        }
        stats
    }
}

fn info(id: &str, record: &Record) -> TaskInfo {
    TaskInfo {
        id: id.to_owned(),
        provider: record.provider.to_string(),
        action: record.action.clone(),
        state: record.state,
        deliveries: record.deliveries,
        latency_s: record.latency.map(|l| l.as_secs_f64()),
        result: record
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok()),
    }
}
