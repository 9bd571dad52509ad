//! What a provider counts: tasks by action and status, errors by kind, how long tasks take, polls,
//! results, rate-limit decisions, the hub connection. Served in the Prometheus text format on
//! `PROVIDER_METRICS_ADDR` with `/livez` and `/readyz`, and read in code through
//! [`Metrics::snapshot`].
//!
//! Every series is created when the provider starts, from declared names only: recording a task
//! is a few atomic additions on handles made in advance, with no label lookup. A task whose
//! action the provider does not have is counted under [`UNKNOWN_ACTION`].

mod figures;
pub(crate) mod readiness;
pub(crate) mod server;

use std::sync::Arc;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::envelope::Status;

pub use figures::{ActionFigures, MetricsSnapshot, PollFigures, ResultFigures, StatusFigures};

/// The `action` label of tasks that name an action the provider does not have: one fixed value,
/// so a hub cannot grow the number of series.
pub const UNKNOWN_ACTION: &str = "<unknown>";

/// Upper bounds of the `arbv_task_duration_seconds` buckets: from a millisecond (an in-memory
/// action) to five minutes (the longest timeouts people set).
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// The content type of the Prometheus text format, version 0.0.4, as [`render`] writes it.
pub(crate) const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of `registry` in the Prometheus text format.
pub(crate) fn render(registry: &Registry) -> String {
    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("the text encoder writes any registry")
}

/// A count as a gauge's value.
pub(crate) fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Why a task was answered with an error: the `kind` label of `arbv_task_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The task names an action the provider does not have.
    UnknownAction,
    /// The task could not be read at all: too large, or its payload or account is not JSON.
    BadTask,
    /// The payload does not fit the action's schema or types.
    InvalidPayload,
    /// The account is missing or does not fit the action's schema or types.
    InvalidAccount,
    /// The action ran out of time.
    Timeout,
    /// The action panicked.
    Panic,
    /// The action answered with an error of its own.
    ActionError,
    /// Shutdown's drain time ran out while the action ran.
    Shutdown,
    /// The answer was too large for the hub and was replaced by `RESULT_TOO_LARGE`.
    ResultTooLarge,
}

impl ErrorKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::UnknownAction,
        ErrorKind::BadTask,
        ErrorKind::InvalidPayload,
        ErrorKind::InvalidAccount,
        ErrorKind::Timeout,
        ErrorKind::Panic,
        ErrorKind::ActionError,
        ErrorKind::Shutdown,
        ErrorKind::ResultTooLarge,
    ];

    /// The label value: `unknown_action`, `bad_task`, `invalid_payload`, …
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnknownAction => "unknown_action",
            ErrorKind::BadTask => "bad_task",
            ErrorKind::InvalidPayload => "invalid_payload",
            ErrorKind::InvalidAccount => "invalid_account",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Panic => "panic",
            ErrorKind::ActionError => "action_error",
            ErrorKind::Shutdown => "shutdown",
            ErrorKind::ResultTooLarge => "result_too_large",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const STATUSES: [Status; 4] = [
    Status::Success,
    Status::Error,
    Status::Limit,
    Status::Warning,
];

fn status_index(status: Status) -> usize {
    match status {
        Status::Success => 0,
        Status::Error => 1,
        Status::Limit => 2,
        Status::Warning => 3,
    }
}

/// What a `GetTask` call brought: the `result` label of `arbv_hub_polls_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Poll {
    Task,
    Empty,
    Error,
}

/// What became of one attempt to submit a result: the `outcome` label of
/// `arbv_results_submitted_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Submit {
    /// The hub took it.
    Taken,
    /// The hub did not take it; it is kept and sent again.
    Retried,
    /// Given up: the hub refused it for good, or shutdown could not wait.
    Lost,
}

/// How a task reached the provider: the `source` label of `arbv_tasks_received_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// An answer to `GetTask`.
    Poll,
    /// Handed back in the answer to a submitted result.
    HandBack,
}

/// The provider's metrics: cheap to clone, shared by the worker, dispatch and the server.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    provider: Arc<str>,
    /// `None` when recording is off (`PROVIDER_METRICS=off`).
    series: Option<Series>,
}

/// The handles of every series, made when the provider starts.
struct Series {
    /// The declared actions, in declaration order, then [`UNKNOWN_ACTION`].
    actions: Vec<ActionSeries>,
    polls: [IntCounter; 3],
    received: [IntCounter; 2],
    results: [IntCounter; 3],
    refused: IntCounter,
    lane_restarts: IntCounter,
    in_flight: IntGauge,
    worker_slots: IntGauge,
    hub_connected: IntGauge,
}

struct ActionSeries {
    name: Arc<str>,
    tasks: [IntCounter; 4],
    durations: [Histogram; 4],
    errors: [IntCounter; 9],
    /// `[admitted, limited]`, for an action under a rate limit.
    decisions: Option<[IntCounter; 2]>,
    /// Tries after the first, for an action that declares retries.
    retries: Option<IntCounter>,
    /// `[hit, miss, error]`, for an action that caches its answers.
    cache: Option<[IntCounter; 3]>,
}

/// An action as the metrics see it: its name, whether a rate limit decides on its tasks,
/// whether it declares retries, and whether it caches its answers.
pub(crate) struct ActionLabel<'a> {
    pub(crate) name: &'a str,
    pub(crate) limited: bool,
    pub(crate) retried: bool,
    pub(crate) cached: bool,
}

/// What a cache lookup found: the `result` label of `arbv_cache_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheLookup {
    Hit,
    Miss,
    /// The store failed (Redis unreachable); the task ran uncached.
    Error,
}

/// Which action's series a task is counted in: an index into the declared actions, or the one
/// past them for an unknown action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ActionSlot(pub(crate) usize);

impl Metrics {
    /// The metrics of `provider` with `actions`; with `recording` off, only the registry (for
    /// metrics of the user's own) and no series of ours.
    pub(crate) fn new(provider: &str, actions: &[ActionLabel<'_>], recording: bool) -> Self {
        let registry = Registry::new();
        let series = recording.then(|| Series::register(&registry, provider, actions));
        Self {
            inner: Arc::new(Inner {
                registry,
                provider: Arc::from(provider),
                series,
            }),
        }
    }

    /// The registry every series is in. Register metrics of your own here (their names should
    /// not start with `arbv_`) and they are served on `/metrics` with ours.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Every metric in the Prometheus text format (version 0.0.4), as `/metrics` serves it.
    pub fn render(&self) -> String {
        render(&self.inner.registry)
    }

    /// The figures as they stand: tasks, errors and mean duration by action, polls, results.
    /// All zero when recording is off.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.inner
            .series
            .as_ref()
            .map(Series::snapshot)
            .unwrap_or_default()
    }

    /// Adds `arbv_ready`, which follows `readiness` (unless recording is off).
    pub(crate) fn watch_readiness(&self, readiness: std::sync::Weak<readiness::Readiness>) {
        if self.inner.series.is_some() {
            let gauge = readiness::ReadyGauge::new(&self.inner.provider, readiness);
            self.inner
                .registry
                .register(Box::new(gauge))
                .expect("arbv_ready is registered once");
        }
    }

    fn series(&self) -> Option<&Series> {
        self.inner.series.as_ref()
    }

    /// A task was answered: counts it by status, its error kind if any, and its duration.
    pub(crate) fn task_answered(
        &self,
        slot: ActionSlot,
        status: Status,
        error: Option<ErrorKind>,
        took: Duration,
    ) {
        let Some(series) = self.series() else { return };
        let action = &series.actions[slot.0];
        let status = status_index(status);
        action.tasks[status].inc();
        action.durations[status].observe(took.as_secs_f64());
        if let Some(kind) = error {
            action.errors[kind.index()].inc();
        }
    }

    /// A rate limit admitted (`true`) or refused a task of the action in `slot`.
    pub(crate) fn rate_limit_decided(&self, slot: ActionSlot, admitted: bool) {
        let Some(series) = self.series() else { return };
        if let Some(decisions) = &series.actions[slot.0].decisions {
            decisions[usize::from(!admitted)].inc();
        }
    }

    /// The action in `slot` runs again after a transient failure.
    pub(crate) fn action_retried(&self, slot: ActionSlot) {
        let Some(series) = self.series() else { return };
        if let Some(retries) = &series.actions[slot.0].retries {
            retries.inc();
        }
    }

    /// A cached action's task looked its answer up.
    pub(crate) fn cache_looked_up(&self, slot: ActionSlot, lookup: CacheLookup) {
        let Some(series) = self.series() else { return };
        if let Some(cache) = &series.actions[slot.0].cache {
            cache[lookup as usize].inc();
        }
    }

    /// One more task is running; the returned guard counts it out when dropped.
    pub(crate) fn task_started(&self) -> InFlight<'_> {
        if let Some(series) = self.series() {
            series.in_flight.inc();
        }
        InFlight(self)
    }

    pub(crate) fn polled(&self, poll: Poll) {
        if let Some(series) = self.series() {
            series.polls[poll as usize].inc();
        }
    }

    pub(crate) fn received(&self, source: Source) {
        if let Some(series) = self.series() {
            series.received[source as usize].inc();
        }
    }

    pub(crate) fn submitted(&self, outcome: Submit) {
        if let Some(series) = self.series() {
            series.results[outcome as usize].inc();
        }
    }

    /// A result the hub refused for good (counted as lost too).
    pub(crate) fn refused(&self) {
        if let Some(series) = self.series() {
            series.refused.inc();
        }
    }

    pub(crate) fn lane_restarted(&self) {
        if let Some(series) = self.series() {
            series.lane_restarts.inc();
        }
    }

    pub(crate) fn set_worker_slots(&self, slots: usize) {
        if let Some(series) = self.series() {
            series.worker_slots.set(gauge_value(slots));
        }
    }

    pub(crate) fn set_hub_connected(&self, connected: bool) {
        if let Some(series) = self.series() {
            series.hub_connected.set(i64::from(connected));
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("recording", &self.inner.series.is_some())
            .finish_non_exhaustive()
    }
}

/// A running task, counted in `arbv_tasks_in_flight` until dropped.
pub(crate) struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(series) = self.0.series() {
            series.in_flight.dec();
        }
    }
}

impl Series {
    fn register(registry: &Registry, provider: &str, actions: &[ActionLabel<'_>]) -> Self {
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("provider", provider);
        let tasks = valid(IntCounterVec::new(
            opts(
                "arbv_tasks_total",
                "Tasks answered, by action and envelope status.",
            ),
            &["action", "status"],
        ));
        let errors = valid(IntCounterVec::new(
            opts(
                "arbv_task_errors_total",
                "Tasks answered with an error, by action and kind.",
            ),
            &["action", "kind"],
        ));
        let durations = valid(HistogramVec::new(
            HistogramOpts::from(opts(
                "arbv_task_duration_seconds",
                "Time from taking a task to its envelope, by action and status.",
            ))
            .buckets(DURATION_BUCKETS.to_vec()),
            &["action", "status"],
        ));
        let decisions = valid(IntCounterVec::new(
            opts(
                "arbv_rate_limit_decisions_total",
                "Rate-limit decisions on tasks about to run, by action: admitted or limited.",
            ),
            &["action", "decision"],
        ));
        let retries = valid(IntCounterVec::new(
            opts(
                "arbv_action_retries_total",
                "Tries after the first, by action, for actions that declare retries.",
            ),
            &["action"],
        ));
        let cache = valid(IntCounterVec::new(
            opts(
                "arbv_cache_requests_total",
                "Cache lookups of cached actions' tasks, by action and result: hit, miss, or error (the store failed).",
            ),
            &["action", "result"],
        ));
        let polls = valid(IntCounterVec::new(
            opts(
                "arbv_hub_polls_total",
                "GetTask calls, by what they brought: a task, no task, or an error.",
            ),
            &["result"],
        ));
        let received = valid(IntCounterVec::new(
            opts(
                "arbv_tasks_received_total",
                "Tasks taken, by source: a GetTask answer, or handed back with a result's answer.",
            ),
            &["source"],
        ));
        let results = valid(IntCounterVec::new(
            opts(
                "arbv_results_submitted_total",
                "Attempts to submit a result, by outcome: taken, retried (kept and sent again) or lost.",
            ),
            &["outcome"],
        ));
        let refused = valid(IntCounter::with_opts(opts(
            "arbv_results_refused_total",
            "Results the hub refused for good (also counted as lost).",
        )));
        let lane_restarts = valid(IntCounter::with_opts(opts(
            "arbv_worker_lane_restarts_total",
            "Worker lanes restarted after a panic outside an action.",
        )));
        let in_flight = valid(IntGauge::with_opts(opts(
            "arbv_tasks_in_flight",
            "Tasks being run now.",
        )));
        let worker_slots = valid(IntGauge::with_opts(opts(
            "arbv_worker_slots",
            "Tasks the provider runs at once at most (PROVIDER_CONCURRENCY).",
        )));
        let hub_connected = valid(IntGauge::with_opts(opts(
            "arbv_hub_connected",
            "1 while the hub answers the provider's calls, else 0.",
        )));
        let build_info = valid(IntGaugeVec::new(
            Opts::new(
                "arbv_build_info",
                "The arbv-provider version this provider is built with; always 1.",
            ),
            &["version"],
        ));
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let mut named: Vec<(&str, bool, bool, bool)> = actions
            .iter()
            .map(|a| (a.name, a.limited, a.retried, a.cached))
            .collect();
        named.push((UNKNOWN_ACTION, false, false, false));
        let actions = named
            .into_iter()
            .map(|(name, limited, retried, cached)| ActionSeries {
                name: Arc::from(name),
                tasks: STATUSES.map(|s| tasks.with_label_values(&[name, s.as_str()])),
                durations: STATUSES.map(|s| durations.with_label_values(&[name, s.as_str()])),
                errors: ErrorKind::ALL.map(|k| errors.with_label_values(&[name, k.as_str()])),
                decisions: limited.then(|| {
                    ["admitted", "limited"].map(|d| decisions.with_label_values(&[name, d]))
                }),
                retries: retried.then(|| retries.with_label_values(&[name])),
                cache: cached
                    .then(|| ["hit", "miss", "error"].map(|r| cache.with_label_values(&[name, r]))),
            })
            .collect();
        let series = Series {
            actions,
            polls: ["task", "empty", "error"].map(|r| polls.with_label_values(&[r])),
            received: ["poll", "hand_back"].map(|s| received.with_label_values(&[s])),
            results: ["taken", "retried", "lost"].map(|o| results.with_label_values(&[o])),
            refused: refused.clone(),
            lane_restarts: lane_restarts.clone(),
            in_flight: in_flight.clone(),
            worker_slots: worker_slots.clone(),
            hub_connected: hub_connected.clone(),
        };
        let collectors: [Box<dyn Collector>; 15] = [
            Box::new(tasks),
            Box::new(cache),
            Box::new(errors),
            Box::new(durations),
            Box::new(decisions),
            Box::new(retries),
            Box::new(polls),
            Box::new(received),
            Box::new(results),
            Box::new(refused),
            Box::new(lane_restarts),
            Box::new(in_flight),
            Box::new(worker_slots),
            Box::new(hub_connected),
            Box::new(build_info),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("a new registry holds each name once");
        }
        register_process_metrics(registry);
        series
    }

    fn snapshot(&self) -> MetricsSnapshot {
        let actions = self
            .actions
            .iter()
            .map(|action| {
                let figures = ActionFigures {
                    tasks: StatusFigures::from_counts(action.tasks.each_ref().map(|c| c.get())),
                    errors: ErrorKind::ALL
                        .iter()
                        .map(|&kind| (kind, action.errors[kind.index()].get()))
                        .filter(|&(_, count)| count > 0)
                        .collect(),
                    admitted: action.decisions.as_ref().map_or(0, |d| d[0].get()),
                    limited: action.decisions.as_ref().map_or(0, |d| d[1].get()),
                    retries: action.retries.as_ref().map_or(0, IntCounter::get),
                    cache_hits: action.cache.as_ref().map_or(0, |c| c[0].get()),
                    cache_misses: action.cache.as_ref().map_or(0, |c| c[1].get()),
                    cache_errors: action.cache.as_ref().map_or(0, |c| c[2].get()),
                    total_duration: Duration::from_secs_f64(
                        action
                            .durations
                            .iter()
                            .map(Histogram::get_sample_sum)
                            .sum::<f64>()
                            .max(0.0),
                    ),
                };
                (action.name.to_string(), figures)
            })
            .collect();
        let [task, empty, error] = self.polls.each_ref().map(|c| c.get());
        let [poll, hand_back] = self.received.each_ref().map(|c| c.get());
        let [taken, retried, lost] = self.results.each_ref().map(|c| c.get());
        MetricsSnapshot {
            actions,
            polls: PollFigures { task, empty, error },
            received_by_poll: poll,
            received_handed_back: hand_back,
            results: ResultFigures {
                taken,
                retried,
                lost,
                refused: self.refused.get(),
            },
            in_flight: u64::try_from(self.in_flight.get()).unwrap_or(0),
            worker_slots: u64::try_from(self.worker_slots.get()).unwrap_or(0),
            hub_connected: self.hub_connected.get() == 1,
            lane_restarts: self.lane_restarts.get(),
        }
    }
}

/// A metric made from the names and labels above, which are valid.
fn valid<T>(made: prometheus::Result<T>) -> T {
    made.expect("the metric names and labels of this module are valid")
}

/// The standard `process_*` metrics (CPU seconds, resident memory, open files, start time),
/// where the platform has them.
fn register_process_metrics(registry: &Registry) {
    #[cfg(target_os = "linux")]
    {
        let collector = prometheus::process_collector::ProcessCollector::for_self();
        registry
            .register(Box::new(collector))
            .expect("a new registry holds the process metrics once");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = registry;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(recording: bool) -> Metrics {
        let actions = [
            ActionLabel {
                name: "echo",
                limited: false,
                retried: false,
                cached: false,
            },
            ActionLabel {
                name: "ads",
                limited: true,
                retried: true,
                cached: true,
            },
        ];
        Metrics::new("demo", &actions, recording)
    }

    #[test]
    fn every_series_exists_from_the_start_with_help_and_buckets() {
        let text = metrics(true).render();
        for name in [
            "arbv_tasks_total",
            "arbv_task_errors_total",
            "arbv_task_duration_seconds",
            "arbv_rate_limit_decisions_total",
            "arbv_action_retries_total",
            "arbv_cache_requests_total",
            "arbv_hub_polls_total",
            "arbv_results_submitted_total",
            "arbv_tasks_in_flight",
            "arbv_worker_slots",
            "arbv_hub_connected",
            "arbv_build_info",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}\n{text}");
        }
        assert!(text.contains("# TYPE arbv_task_duration_seconds histogram"));
        assert!(
            text.contains(
                r#"arbv_tasks_total{action="<unknown>",provider="demo",status="error"} 0"#
            )
        );
        assert!(text.contains(
            r#"arbv_rate_limit_decisions_total{action="ads",decision="limited",provider="demo"} 0"#
        ));
        assert!(!text.contains(r#"arbv_rate_limit_decisions_total{action="echo""#));
        assert!(text.contains(r#"arbv_action_retries_total{action="ads",provider="demo"} 0"#));
        assert!(!text.contains(r#"arbv_action_retries_total{action="echo""#));
        assert!(
            text.contains(
                r#"arbv_cache_requests_total{action="ads",provider="demo",result="hit"} 0"#
            )
        );
        assert!(!text.contains(r#"arbv_cache_requests_total{action="echo""#));
        let buckets = text
            .lines()
            .filter(|l| {
                l.starts_with(r#"arbv_task_duration_seconds_bucket{action="echo""#)
                    && l.contains(r#"status="success""#)
            })
            .count();
        assert_eq!(buckets, DURATION_BUCKETS.len() + 1, "and +Inf");
    }

    #[test]
    fn a_task_counts_once_by_status_kind_and_duration() {
        let metrics = metrics(true);
        {
            let _running = metrics.task_started();
            assert_eq!(metrics.snapshot().in_flight, 1);
        }
        metrics.task_answered(
            ActionSlot(0),
            Status::Success,
            None,
            Duration::from_millis(3),
        );
        metrics.task_answered(
            ActionSlot(2),
            Status::Error,
            Some(ErrorKind::UnknownAction),
            Duration::from_millis(1),
        );
        metrics.rate_limit_decided(ActionSlot(1), false);
        metrics.rate_limit_decided(ActionSlot(0), true);
        metrics.action_retried(ActionSlot(1));
        metrics.action_retried(ActionSlot(0));
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.in_flight, 0);
        let echo = snapshot.action("echo").unwrap();
        assert_eq!((echo.answered(), echo.tasks.success), (1, 1));
        assert_eq!(echo.mean_duration(), Some(Duration::from_millis(3)));
        assert_eq!(
            (echo.admitted, echo.limited),
            (0, 0),
            "no limit, no decisions"
        );
        let unknown = snapshot.action(UNKNOWN_ACTION).unwrap();
        assert_eq!(unknown.errors_of(ErrorKind::UnknownAction), 1);
        assert_eq!(snapshot.action("ads").unwrap().limited, 1);
        assert_eq!(
            (snapshot.action("ads").unwrap().retries, echo.retries),
            (1, 0),
            "only an action that declares retries counts them"
        );
        assert_eq!(snapshot.total().answered(), 2);
        assert_eq!(snapshot.total().errors_total(), 1);
    }

    #[test]
    fn off_records_nothing_and_serves_only_what_the_user_registers() {
        let metrics = metrics(false);
        metrics.task_answered(
            ActionSlot(0),
            Status::Success,
            None,
            Duration::from_millis(3),
        );
        metrics.polled(Poll::Task);
        assert_eq!(metrics.snapshot(), MetricsSnapshot::default());
        assert!(!metrics.render().contains("arbv_"));
        let own = IntCounter::new("own_total", "Mine.").unwrap();
        metrics.registry().register(Box::new(own.clone())).unwrap();
        own.inc();
        assert!(metrics.render().contains("own_total 1"));
    }

    #[test]
    fn error_kinds_are_the_labels_the_issue_names() {
        let labels: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            labels,
            [
                "unknown_action",
                "bad_task",
                "invalid_payload",
                "invalid_account",
                "timeout",
                "panic",
                "action_error",
                "shutdown",
                "result_too_large"
            ]
        );
        for (index, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), index);
        }
    }
}
