//! The metrics and health server of a real provider, against both hubs over real gRPC: every
//! counter after a known mix of tasks, read in code and scraped over HTTP (parsed by a
//! Prometheus text parser, linted by promtool); `/readyz` through a hub that goes away and comes
//! back, a refused token, and a drain; the server's HTTP answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use arbv_provider::metrics::{ErrorKind, UNKNOWN_ACTION};
use arbv_provider::prelude::*;
use arbv_provider::{Metrics, Runtime};
use arbv_tests::hubs::{HubKind, TestHub};
use arbv_tests::promtool::{Promtool, assert_passed};
use arbv_tests::{PROVIDER, RunningProvider, config, eventually, loopback, on_both_hubs};

const LIMIT: Duration = Duration::from_secs(20);
const CONCURRENCY: usize = 4;

#[derive(Debug, Deserialize, JsonSchema)]
struct Echo {
    message: String,
}

/// One action per outcome the metrics tell apart.
struct Observed;

#[provider(name = "hand-written")]
impl Observed {
    #[action]
    async fn echo(&self, payload: Echo) -> Value {
        json!({ "echo": payload.message })
    }

    #[action(rate_limit = "1/h")]
    async fn scarce(&self) -> Value {
        json!({ "ok": true })
    }

    #[action(timeout = "100ms")]
    async fn slow(&self) -> Value {
        tokio::time::sleep(Duration::from_secs(30)).await;
        json!({})
    }

    #[action]
    async fn explode(&self) -> Value {
        panic!("kaboom")
    }

    #[action]
    async fn fail(&self) -> Result<Value, ActionError> {
        Err(ActionError::new("the upstream said no").with_code("UPSTREAM"))
    }

    #[action]
    async fn big(&self) -> Value {
        json!({ "blob": "x".repeat(64 * 1024) })
    }

    #[action]
    fn sleep(&self) -> Value {
        std::thread::sleep(Duration::from_millis(1500));
        json!({ "slept": true })
    }
}

fn runtime(hub: &TestHub) -> Runtime {
    let config = config(&hub.url())
        .concurrency(CONCURRENCY)
        .max_task_bytes(1024)
        .metrics_addr(loopback())
        .build()
        .unwrap();
    Runtime::new(Observed, config).unwrap()
}

/// A provider serving its metrics; returns it, its metrics and the server's address.
async fn start(hub: &TestHub) -> (RunningProvider, Metrics, SocketAddr) {
    let mut runtime = runtime(hub);
    let addr = runtime
        .serve_metrics()
        .await
        .expect("the metrics server starts")
        .expect("an address is configured");
    let metrics = runtime.metrics();
    (RunningProvider::start_runtime(runtime), metrics, addr)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("http://{addr}{path}"))
        .await
        .expect("the metrics server answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The samples of a scrape, parsed by a Prometheus text parser: `name{labels}` → value, with
/// the labels sorted and the `provider` label left out (it is the same on every line).
fn parse(text: &str) -> BTreeMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a valid scrape");
    let mut samples = BTreeMap::new();
    for sample in scrape.samples {
        let labels: BTreeMap<_, _> = sample
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "provider")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let key = format!("{}{{{}}}", sample.metric, labels.join(","));
        let value = match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(buckets) => {
                for bucket in buckets {
                    samples.insert(format!("{key}[le={}]", bucket.less_than), bucket.count);
                }
                continue;
            }
            prometheus_parse::Value::Summary(_) => panic!("no summaries: {key}"),
        };
        samples.insert(key, value);
    }
    samples
}

on_both_hubs!(every_counter_is_exact_after_a_known_mix_of_tasks);
async fn every_counter_is_exact_after_a_known_mix_of_tasks(kind: HubKind) {
    let hub = TestHub::start(kind).await;
    let (provider, metrics, addr) = start(&hub).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(hub.enqueue("echo", json!({ "message": format!("m{i}") })));
    }
    for _ in 0..2 {
        ids.push(hub.enqueue("echo", json!({ "wrong": 1 })));
    }
    ids.push(hub.enqueue("echo", json!({ "message": "x".repeat(2000) })));
    // Two names the provider does not have: one series between them.
    ids.push(hub.enqueue("no_such_action", json!({})));
    ids.push(hub.enqueue("evil\"} 1\nforged_total 9", json!({})));
    for _ in 0..3 {
        ids.push(hub.enqueue("scarce", json!({})));
    }
    ids.push(hub.enqueue("slow", json!({})));
    ids.push(hub.enqueue("explode", json!({})));
    ids.push(hub.enqueue("fail", json!({})));
    ids.push(hub.enqueue("sleep", json!({})));
    let answered = ids.len() as u64;
    assert!(hub.wait_taken(&ids, LIMIT).await, "every task answered");
    // A result is counted once the hub has taken it, a moment after the hub has it.
    assert!(
        eventually(LIMIT, || async {
            metrics.snapshot().total().answered() == answered
        })
        .await
    );

    let snapshot = metrics.snapshot();
    let action = |name: &str| snapshot.action(name).unwrap().clone();
    let echo = action("echo");
    assert_eq!((echo.tasks.success, echo.tasks.error), (3, 3));
    assert_eq!(echo.errors_of(ErrorKind::InvalidPayload), 2);
    assert_eq!(echo.errors_of(ErrorKind::BadTask), 1, "the task over 1 KiB");
    assert_eq!(echo.errors_total(), 3);
    let unknown = action(UNKNOWN_ACTION);
    assert_eq!(unknown.tasks.error, 2);
    assert_eq!(unknown.errors_of(ErrorKind::UnknownAction), 2);
    let scarce = action("scarce");
    assert_eq!((scarce.tasks.success, scarce.tasks.limit), (1, 2));
    assert_eq!((scarce.admitted, scarce.limited), (1, 2));
    assert_eq!(scarce.errors_total(), 0, "a limited task is not an error");
    assert_eq!(action("slow").errors_of(ErrorKind::Timeout), 1);
    assert_eq!(action("explode").errors_of(ErrorKind::Panic), 1);
    assert_eq!(action("fail").errors_of(ErrorKind::ActionError), 1);
    let sleep = action("sleep");
    assert_eq!(sleep.tasks.success, 1);
    assert!(
        sleep.mean_duration().unwrap() >= Duration::from_millis(1500),
        "{sleep:?}"
    );
    assert_eq!(snapshot.total().answered(), answered);
    assert_eq!(snapshot.total().errors_total(), 8);
    assert_eq!(snapshot.tasks_received(), answered);
    assert_eq!(snapshot.received_by_poll, snapshot.polls.task);
    assert_eq!(snapshot.polls.error, 0);
    assert_eq!(
        (
            snapshot.results.taken,
            snapshot.results.retried,
            snapshot.results.lost
        ),
        (answered, 0, 0)
    );
    assert_eq!(snapshot.in_flight, 0);
    assert_eq!(snapshot.worker_slots, CONCURRENCY as u64);
    assert!(snapshot.hub_connected);

    let (status, content_type, text) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("forged"), "hub strings never become labels");
    if let Some(promtool) = Promtool::find() {
        assert_passed("the provider's /metrics", &promtool.check_metrics(&text));
    }
    let samples = parse(&text);
    let sample = |key: &str| -> f64 {
        *samples
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not in the scrape:\n{text}"))
    };
    let expected_tasks = [
        ("echo", "success", 3),
        ("echo", "error", 3),
        ("echo", "limit", 0),
        ("echo", "warning", 0),
        (UNKNOWN_ACTION, "error", 2),
        ("scarce", "success", 1),
        ("scarce", "limit", 2),
        ("slow", "error", 1),
        ("explode", "error", 1),
        ("fail", "error", 1),
        ("sleep", "success", 1),
    ];
    for (action, status, count) in expected_tasks {
        assert_eq!(
            sample(&format!(
                "arbv_tasks_total{{action={action},status={status}}}"
            )),
            f64::from(count),
            "{action} {status}"
        );
        assert_eq!(
            sample(&format!(
                "arbv_task_duration_seconds_count{{action={action},status={status}}}"
            )),
            f64::from(count),
            "{action} {status}: one observation a task"
        );
        assert_eq!(
            sample(&format!(
                "arbv_task_duration_seconds{{action={action},status={status}}}[le=inf]"
            )),
            f64::from(count),
            "{action} {status}: the +Inf bucket"
        );
    }
    let task_series = samples
        .keys()
        .filter(|k| k.starts_with("arbv_tasks_total{"))
        .count();
    assert_eq!(
        task_series,
        8 * 4,
        "seven actions and <unknown>, four statuses"
    );
    let expected_errors = [
        ("echo", "invalid_payload", 2),
        ("echo", "bad_task", 1),
        ("echo", "timeout", 0),
        (UNKNOWN_ACTION, "unknown_action", 2),
        ("slow", "timeout", 1),
        ("explode", "panic", 1),
        ("fail", "action_error", 1),
        ("sleep", "shutdown", 0),
        ("sleep", "result_too_large", 0),
    ];
    for (action, kind, count) in expected_errors {
        assert_eq!(
            sample(&format!(
                "arbv_task_errors_total{{action={action},kind={kind}}}"
            )),
            f64::from(count),
            "{action} {kind}"
        );
    }
    let error_sum: f64 = samples
        .iter()
        .filter(|(k, _)| k.starts_with("arbv_task_errors_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(error_sum, 8.0);
    // The sleep took 1.5 s: in the 2.5 s bucket, not the 1 s one.
    assert_eq!(
        sample("arbv_task_duration_seconds{action=sleep,status=success}[le=1]"),
        0.0
    );
    assert_eq!(
        sample("arbv_task_duration_seconds{action=sleep,status=success}[le=2.5]"),
        1.0
    );
    assert_eq!(
        sample("arbv_rate_limit_decisions_total{action=scarce,decision=admitted}"),
        1.0
    );
    assert_eq!(
        sample("arbv_rate_limit_decisions_total{action=scarce,decision=limited}"),
        2.0
    );
    assert!(
        !samples.contains_key("arbv_rate_limit_decisions_total{action=echo,decision=admitted}"),
        "no decisions on an action without a limit"
    );
    assert_eq!(
        sample("arbv_results_submitted_total{outcome=taken}"),
        answered as f64
    );
    assert_eq!(sample("arbv_results_submitted_total{outcome=retried}"), 0.0);
    assert_eq!(sample("arbv_results_submitted_total{outcome=lost}"), 0.0);
    assert_eq!(sample("arbv_hub_polls_total{result=error}"), 0.0);
    assert_eq!(
        sample("arbv_hub_polls_total{result=task}")
            + sample("arbv_tasks_received_total{source=hand_back}"),
        answered as f64
    );
    assert_eq!(sample("arbv_tasks_in_flight{}"), 0.0);
    assert_eq!(sample("arbv_worker_slots{}"), CONCURRENCY as f64);
    assert_eq!(sample("arbv_hub_connected{}"), 1.0);
    assert_eq!(
        sample(&format!(
            "arbv_build_info{{version={}}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    assert!(sample("process_resident_memory_bytes{}") > 0.0);
    assert!(
        text.lines()
            .filter(|l| l.starts_with("arbv_tasks_total{"))
            .all(|l| l.contains(&format!("provider=\"{PROVIDER}\""))),
        "every series carries the provider label"
    );
    provider.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_too_large_and_a_task_cut_off_by_shutdown_are_counted_by_kind() {
    let hub = TestHub::start(HubKind::Dev).await;
    let config = config(&hub.url())
        .max_result_bytes(16 * 1024)
        .drain_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let runtime = Runtime::new(Observed, config).unwrap();
    let metrics = runtime.metrics();
    let provider = RunningProvider::start_runtime(runtime);
    let big = hub.enqueue("big", json!({}));
    assert!(hub.wait_taken(std::slice::from_ref(&big), LIMIT).await);
    assert_eq!(hub.taken_envelope(&big).unwrap()["status"], "error");
    let sleeping = hub.enqueue("sleep", json!({}));
    assert!(eventually(LIMIT, || async { hub.handed_out().contains(&sleeping) }).await);
    provider.stop().await.unwrap();
    let snapshot = metrics.snapshot();
    let big = snapshot.action("big").unwrap();
    assert_eq!(
        (big.tasks.success, big.tasks.error),
        (0, 1),
        "counted as sent"
    );
    assert_eq!(big.errors_of(ErrorKind::ResultTooLarge), 1);
    let sleep = snapshot.action("sleep").unwrap();
    assert_eq!(sleep.errors_of(ErrorKind::Shutdown), 1);
    assert_eq!(snapshot.results.taken, 2);
}

async fn readyz(addr: SocketAddr) -> (u16, Value) {
    let (status, content_type, body) = get(addr, "/readyz").await;
    assert_eq!(content_type, "application/json");
    (status, serde_json::from_str(&body).expect("a JSON body"))
}

/// Waits until `/readyz` answers `status`; returns its body.
async fn readyz_becomes(addr: SocketAddr, status: u16, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (now, body) = readyz(addr).await;
        if now == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz did not become {status} in {within:?}: {now} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn reasons(body: &Value) -> Vec<&str> {
    body["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect()
}

on_both_hubs!(readyz_follows_the_hub_away_and_back_and_the_drain);
async fn readyz_follows_the_hub_away_and_back_and_the_drain(kind: HubKind) {
    let mut hub = TestHub::start(kind).await;
    let (provider, metrics, addr) = start(&hub).await;
    assert_eq!(get(addr, "/livez").await.0, 200);
    let body = readyz_becomes(addr, 200, LIMIT).await;
    assert_eq!(body["status"], "ready");
    // Idle, with a hub that answers "no task": still ready several poll intervals later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(readyz(addr).await.0, 200);

    let ready_line = format!("arbv_ready{{provider=\"{PROVIDER}\"}}");
    assert!(
        get(addr, "/metrics")
            .await
            .2
            .contains(&format!("{ready_line} 1"))
    );

    hub.stop().await;
    let body = readyz_becomes(addr, 503, Duration::from_secs(5)).await;
    assert_eq!(reasons(&body), ["hub_unreachable"], "{body}");
    assert!(
        get(addr, "/metrics")
            .await
            .2
            .contains(&format!("{ready_line} 0"))
    );
    assert!(!body["reasons"][0]["message"].as_str().unwrap().is_empty());
    assert!(!metrics.snapshot().hub_connected);
    assert_eq!(get(addr, "/livez").await.0, 200, "alive without a hub");

    hub.restart().await;
    readyz_becomes(addr, 200, Duration::from_secs(15)).await;
    assert!(metrics.snapshot().hub_connected);

    let id = hub.enqueue("sleep", json!({}));
    assert!(eventually(LIMIT, || async { hub.handed_out().contains(&id) }).await);
    provider.signal();
    let body = readyz_becomes(addr, 503, Duration::from_secs(5)).await;
    assert_eq!(reasons(&body), ["draining"], "{body}");
    provider.wait().await.unwrap();
    assert!(hub.wait_taken(&[id], LIMIT).await, "the drain answered it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_when_the_hub_refuses_the_token() {
    let hub = TestHub::start(HubKind::Dev).await;
    let config = config(&hub.url())
        .auth_token("not-the-token")
        .metrics_addr(loopback())
        .build()
        .unwrap();
    let mut runtime = Runtime::new(Observed, config).unwrap();
    let addr = runtime.serve_metrics().await.unwrap().unwrap();
    let provider = RunningProvider::start_runtime(runtime);
    let body = readyz_becomes(addr, 503, LIMIT).await;
    let body = if reasons(&body) == ["connecting"] {
        eventually(LIMIT, || async {
            reasons(&readyz(addr).await.1) != ["connecting"]
        })
        .await;
        readyz(addr).await.1
    } else {
        body
    };
    assert_eq!(reasons(&body), ["token_refused"], "{body}");
    assert!(
        !body.to_string().contains("not-the-token"),
        "the token stays secret: {body}"
    );
    provider.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_why_the_hub_cannot_be_reached_from_the_start() {
    let closed = std::net::TcpListener::bind(loopback()).unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = config(&url).metrics_addr(loopback()).build().unwrap();
    let mut runtime = Runtime::new(Observed, config).unwrap();
    let addr = runtime.serve_metrics().await.unwrap().unwrap();
    let provider = RunningProvider::start_runtime(runtime);
    let deadline = tokio::time::Instant::now() + LIMIT;
    let body = loop {
        let (status, body) = readyz(addr).await;
        assert_eq!(status, 503, "{body}");
        if reasons(&body) == ["hub_unreachable"] {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let message = body["reasons"][0]["message"].as_str().unwrap();
    assert!(message.contains("onnect"), "says how: {message}");
    provider.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_only_its_three_routes() {
    let hub = TestHub::start(HubKind::Dev).await;
    let (provider, _metrics, addr) = start(&hub).await;
    assert_eq!(get(addr, "/").await.0, 404);
    assert_eq!(get(addr, "/metrics/extra").await.0, 404);
    let posted = reqwest::Client::new()
        .post(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 405);
    assert_eq!(posted.headers()["allow"], "GET, HEAD");
    let (status, content_type, body) = get(addr, "/livez").await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (200, "text/plain; charset=utf-8", "ok\n")
    );
    provider.stop().await.unwrap();
    assert!(
        reqwest::get(format!("http://{addr}/livez")).await.is_err(),
        "the server stops with the provider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_address_fails_at_start_naming_it() {
    let taken = std::net::TcpListener::bind(loopback()).unwrap();
    let addr = taken.local_addr().unwrap();
    let config = config("http://127.0.0.1:1")
        .metrics_addr(addr)
        .build()
        .unwrap();
    let mut runtime = Runtime::new(Observed, config).unwrap();
    let error = runtime.serve_metrics().await.unwrap_err();
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_your_own_are_served_with_ours_and_off_means_zeros() {
    let hub = TestHub::start(HubKind::Dev).await;
    let mut runtime = runtime(&hub);
    let own =
        arbv_provider::prometheus::IntCounter::new("upstream_calls_total", "Calls to upstream.")
            .unwrap();
    runtime
        .metrics()
        .registry()
        .register(Box::new(own.clone()))
        .unwrap();
    own.inc_by(5);
    let addr = runtime.serve_metrics().await.unwrap().unwrap();
    let text = get(addr, "/metrics").await.2;
    assert!(text.contains("upstream_calls_total 5"), "{text}");

    let off = arbv_provider::Config::builder()
        .auth_token("t")
        .metrics(false)
        .build()
        .unwrap();
    let runtime = Runtime::new(Observed, off).unwrap();
    let done = runtime
        .run_task(arbv_provider::IncomingTask {
            id: "1".into(),
            action: "echo".into(),
            payload: r#"{"message":"hi"}"#.into(),
            ..Default::default()
        })
        .await;
    assert_eq!(done.status, Status::Success);
    assert_eq!(runtime.metrics().snapshot().total().answered(), 0);
    assert!(!runtime.metrics().render().contains("arbv_tasks_total"));
}
