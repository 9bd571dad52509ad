//! The dev hub's Prometheus metrics, served as text on its admin API's `GET /metrics`.
//!
//! Each hub has a registry of its own (never the process-wide one), so two hubs in one process,
//! as in tests, count apart. The counters are the hub's own counts (its `/stats` reads them);
//! the gauges are set from the hub's running counts at each scrape, under the lock that keeps
//! those counts, so one scrape shows one moment.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

use crate::metrics::{gauge_value, render};

/// Enqueue-to-result latency buckets, in seconds: from 1 ms (a result on loopback) to a minute
/// (a slow action, or a task that waited for its provider to come up).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

pub(crate) struct HubMetrics {
    registry: Registry,
    pub(crate) get_task_calls: IntCounter,
    pub(crate) submit_calls: IntCounter,
    pub(crate) refused_tokens: IntCounter,
    pub(crate) enqueued: IntCounter,
    pub(crate) results: IntCounter,
    pub(crate) duplicate_results: IntCounter,
    pub(crate) forgotten: IntCounter,
    pub(crate) result_latency: Histogram,
    queued: IntGauge,
    leased: IntGauge,
    kept_done: IntGauge,
    queue_depth: IntGaugeVec,
}

/// The hub's holdings at one moment, for the gauges.
pub(crate) struct Snapshot<'a> {
    pub(crate) queued: usize,
    pub(crate) leased: usize,
    /// Answered tasks still kept.
    pub(crate) kept_done: usize,
    /// Tasks waiting, by provider, for every provider a task was ever queued for.
    pub(crate) queue_depth: Vec<(&'a str, usize)>,
}

impl HubMetrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let counter = IntCounter::new(name, help).expect("a valid counter name and help");
            registry
                .register(Box::new(counter.clone()))
                .expect("each metric is registered once");
            counter
        };
        let get_task_calls = counter(
            "arbv_hub_get_task_calls_total",
            "GetTask calls received, refused ones included.",
        );
        let submit_calls = counter(
            "arbv_hub_submit_calls_total",
            "SubmitTaskResult calls received, refused ones included.",
        );
        let refused_tokens = counter(
            "arbv_hub_refused_tokens_total",
            "GetTask and SubmitTaskResult calls refused for a wrong token.",
        );
        let enqueued = counter("arbv_hub_tasks_enqueued_total", "Tasks queued on this hub.");
        let results = counter(
            "arbv_hub_results_total",
            "Results taken: the first result of each task.",
        );
        let duplicate_results = counter(
            "arbv_hub_duplicate_results_total",
            "Results for tasks already answered, kept out (the first result stands).",
        );
        let forgotten = counter(
            "arbv_hub_tasks_forgotten_total",
            "Answered tasks no longer kept (beyond the hub's keep); their results cannot be read.",
        );
        let result_latency = Histogram::with_opts(
            HistogramOpts::new(
                "arbv_hub_result_latency_seconds",
                "Seconds from a task's enqueue to its first result taken.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid histogram options");
        registry
            .register(Box::new(result_latency.clone()))
            .expect("each metric is registered once");
        let tasks = IntGaugeVec::new(
            Opts::new(
                "arbv_hub_tasks",
                "Tasks the hub holds, by state: queued (waiting for a provider), leased (given \
                 out, no result yet), done (answered and still kept).",
            ),
            &["state"],
        )
        .expect("valid gauge options");
        registry
            .register(Box::new(tasks.clone()))
            .expect("each metric is registered once");
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "arbv_hub_queue_depth",
                "Tasks waiting for each provider a task was queued for.",
            ),
            &["provider"],
        )
        .expect("valid gauge options");
        registry
            .register(Box::new(queue_depth.clone()))
            .expect("each metric is registered once");
        Self {
            get_task_calls,
            submit_calls,
            refused_tokens,
            enqueued,
            results,
            duplicate_results,
            forgotten,
            result_latency,
            queued: tasks.with_label_values(&["queued"]),
            leased: tasks.with_label_values(&["leased"]),
            kept_done: tasks.with_label_values(&["done"]),
            queue_depth,
            registry,
        }
    }

    /// The metrics in the Prometheus text format, with the gauges set from `now`.
    pub(crate) fn render(&self, now: Snapshot<'_>) -> String {
        self.queued.set(gauge_value(now.queued));
        self.leased.set(gauge_value(now.leased));
        self.kept_done.set(gauge_value(now.kept_done));
        for (provider, waiting) in now.queue_depth {
            self.queue_depth
                .with_label_values(&[provider])
                .set(gauge_value(waiting));
        }
        render(&self.registry)
    }
}
