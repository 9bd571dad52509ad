//! The figures of [`Metrics::snapshot`](super::Metrics::snapshot): what `/metrics` serves, as
//! plain numbers for tests and for a provider that reports somewhere else.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ErrorKind;

/// The provider's figures at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// By action name, in name order; tasks naming an action the provider does not have are
    /// under [`UNKNOWN_ACTION`](super::UNKNOWN_ACTION).
    pub actions: BTreeMap<String, ActionFigures>,
    /// `GetTask` calls.
    pub polls: PollFigures,
    /// Tasks taken from `GetTask` answers.
    pub received_by_poll: u64,
    /// Tasks handed back in the answer to a submitted result.
    pub received_handed_back: u64,
    /// Attempts to submit results.
    pub results: ResultFigures,
    /// Tasks being run now.
    pub in_flight: u64,
    /// Tasks the provider runs at once at most.
    pub worker_slots: u64,
    /// Whether the hub answered the last call.
    pub hub_connected: bool,
    /// Worker lanes restarted after a panic outside an action.
    pub lane_restarts: u64,
}

impl MetricsSnapshot {
    /// The figures of one action (or of [`UNKNOWN_ACTION`](super::UNKNOWN_ACTION)).
    pub fn action(&self, name: &str) -> Option<&ActionFigures> {
        self.actions.get(name)
    }

    /// All actions together: requests, errors and mean duration of the whole provider.
    pub fn total(&self) -> ActionFigures {
        self.actions
            .values()
            .fold(ActionFigures::default(), |mut sum, action| {
                sum.tasks.success += action.tasks.success;
                sum.tasks.error += action.tasks.error;
                sum.tasks.limit += action.tasks.limit;
                sum.tasks.warning += action.tasks.warning;
                for (&kind, &count) in &action.errors {
                    *sum.errors.entry(kind).or_default() += count;
                }
                sum.admitted += action.admitted;
                sum.limited += action.limited;
                sum.retries += action.retries;
                sum.cache_hits += action.cache_hits;
                sum.cache_misses += action.cache_misses;
                sum.cache_errors += action.cache_errors;
                sum.total_duration += action.total_duration;
                sum
            })
    }

    /// Tasks taken, from polls and hand-backs.
    pub fn tasks_received(&self) -> u64 {
        self.received_by_poll + self.received_handed_back
    }
}

/// One action's figures.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ActionFigures {
    /// Tasks answered, by status.
    pub tasks: StatusFigures,
    /// Tasks answered with an error, by kind (kinds never seen are absent).
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Tasks a rate limit let run.
    pub admitted: u64,
    /// Tasks a rate limit refused.
    pub limited: u64,
    /// Tries after the first, for an action that declares retries.
    pub retries: u64,
    /// Tasks of a cached action answered from the cache.
    pub cache_hits: u64,
    /// Tasks of a cached action that found no kept answer.
    pub cache_misses: u64,
    /// Tasks of a cached action whose lookup failed (the store unreachable).
    pub cache_errors: u64,
    /// The time all answered tasks took, taking to envelope.
    pub total_duration: Duration,
}

impl ActionFigures {
    /// Tasks answered (requests, in the seed's words).
    pub fn answered(&self) -> u64 {
        self.tasks.total()
    }

    /// Tasks answered with an error of `kind`.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors.get(&kind).copied().unwrap_or(0)
    }

    /// Tasks answered with an error, of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The mean time from taking a task to its envelope; `None` before the first task.
    pub fn mean_duration(&self) -> Option<Duration> {
        let answered = u32::try_from(self.answered()).ok().filter(|&n| n > 0)?;
        Some(self.total_duration / answered)
    }
}

/// Tasks by envelope status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusFigures {
    /// `success`
    pub success: u64,
    /// `error`
    pub error: u64,
    /// `limit`
    pub limit: u64,
    /// `warning`
    pub warning: u64,
}

impl StatusFigures {
    pub(super) fn from_counts([success, error, limit, warning]: [u64; 4]) -> Self {
        Self {
            success,
            error,
            limit,
            warning,
        }
    }

    /// Every status together.
    pub fn total(&self) -> u64 {
        self.success + self.error + self.limit + self.warning
    }
}

/// `GetTask` calls by what they brought.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollFigures {
    /// A task.
    pub task: u64,
    /// No task.
    pub empty: u64,
    /// An error (the hub unreachable, the token refused, …).
    pub error: u64,
}

impl PollFigures {
    /// Every call.
    pub fn total(&self) -> u64 {
        self.task + self.empty + self.error
    }
}

/// Attempts to submit results, by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResultFigures {
    /// Taken by the hub.
    pub taken: u64,
    /// Not taken, kept and sent again.
    pub retried: u64,
    /// Given up.
    pub lost: u64,
    /// Of those lost, the ones the hub refused for good.
    pub refused: u64,
}
