//! Retries in a real provider, through the dev hub over gRPC, both ways: `Context::retry` for
//! one call an action makes, and retries declared on the action (`ActionDef::retry`, what
//! `#[action(retry(..))]` declares), which run the whole action again. An action whose upstream
//! fails twice with a transient error answers `success` after two waits within the policy's
//! bounds; an error that is not transient is answered at once; a `Retry-After` is waited for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arbv_provider::prelude::*;
use arbv_provider::retry::{RetryPolicy, Transient};
use arbv_provider::{MetricsSnapshot, ProviderDef};
use arbv_tests::{PROVIDER, RunningProvider, call, config, start_hub};

/// An upstream that fails `failures` times, then answers: what each try gets. The calls are
/// counted in a counter the test keeps.
#[derive(Default)]
struct Flaky {
    calls: Arc<AtomicUsize>,
}

impl Flaky {
    async fn fetch<E>(&self, failures: usize, failure: E) -> Result<Value, E> {
        let this_call = self.calls.fetch_add(1, Ordering::SeqCst);
        if this_call < failures {
            Err(failure)
        } else {
            Ok(json!({ "temperature_c": 21, "calls": this_call + 1 }))
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Ask {
    /// How many times the upstream fails before it answers.
    failures: usize,
    /// `unavailable` (transient), `not_found` (not), or `rate_limited` (transient, Retry-After 1 s).
    failure: String,
}

/// The upstream's failure that the payload names, as an `ActionError`.
fn failure(name: &str) -> ActionError {
    match name {
        "unavailable" => ActionError::new("upstream 503").transient(),
        "rate_limited" => ActionError::new("upstream 429").retry_after(Duration::from_secs(1)),
        // A message that would forge a log line of its own if written as it is.
        "forged" => ActionError::new("upstream 503\nINFO forged line").transient(),
        _ => ActionError::new("no such city").with_code("NOT_FOUND"),
    }
}

#[derive(Default)]
struct Weather {
    upstream: Flaky,
}

#[provider(name = "hand-written")]
impl Weather {
    #[action]
    async fn forecast(&self, payload: Ask, ctx: &Context) -> Result<Value, ActionError> {
        let failure = failure(&payload.failure);
        let policy =
            RetryPolicy::attempts(3).backoff(Duration::from_millis(200), Duration::from_secs(2));
        ctx.retry(&policy, || {
            self.upstream.fetch(payload.failures, failure.clone())
        })
        .await
    }
}

/// What a task came back with, and what it cost.
struct Run {
    envelope: Value,
    /// Calls the upstream got.
    calls: usize,
    took: Duration,
    metrics: MetricsSnapshot,
    /// `/metrics` as the provider renders it.
    rendered: String,
}

/// Runs one task of `action` on `provider`, whose upstream counts its calls in `calls`.
async fn run<P: Provider>(
    provider: P,
    calls: Arc<AtomicUsize>,
    action: &str,
    failures: usize,
    failure: &str,
) -> Run {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let runtime = arbv_provider::Runtime::new(provider, config(&server.url()).build().unwrap());
    let runtime = runtime.unwrap();
    let metrics = runtime.metrics();
    let running = RunningProvider::start_runtime(runtime);
    let started = Instant::now();
    let envelope = call(
        &hub,
        action,
        json!({ "failures": failures, "failure": failure }),
        None,
    )
    .await;
    let took = started.elapsed();
    running.stop().await.unwrap();
    Run {
        envelope,
        calls: calls.load(Ordering::SeqCst),
        took,
        metrics: metrics.snapshot(),
        rendered: metrics.render(),
    }
}

async fn forecast(failures: usize, failure: &str) -> (Value, usize, Duration) {
    let weather = Weather::default();
    let calls = weather.upstream.calls.clone();
    let run = run(weather, calls, "forecast", failures, failure).await;
    (run.envelope, run.calls, run.took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_transient_failures_then_success_after_two_bounded_waits() {
    let (envelope, calls, took) = forecast(2, "unavailable").await;
    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(calls, 3, "the third try answered");
    // Waits of 100..200 ms, then 200..400 ms; the rest is the hub round trip.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_that_is_not_transient_is_answered_after_one_try() {
    let (envelope, _, took) = forecast(1, "not_found").await;
    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(envelope["data"]["response"]["error_code"], "NOT_FOUND");
    assert!(took < Duration::from_millis(1500), "no waits: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let (envelope, calls, took) = forecast(1, "rate_limited").await;
    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(calls, 2);
    assert!(
        took >= Duration::from_secs(1),
        "waited the 1 s asked: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tries_run_out_and_the_last_error_is_answered() {
    let (envelope, _, _) = forecast(5, "unavailable").await;
    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(envelope["message"], "upstream 503");
}

/// An error type of the provider's own, as thiserror writes one, that says which failures are
/// transient.
#[derive(Debug)]
enum UpstreamError {
    Unavailable,
    NotFound,
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpstreamError::Unavailable => "upstream 503",
            UpstreamError::NotFound => "no such city",
        })
    }
}

impl std::error::Error for UpstreamError {}

impl Transient for UpstreamError {
    fn is_transient(&self) -> bool {
        matches!(self, UpstreamError::Unavailable)
    }
}

/// Retries declared on the actions with `#[action(retry(..))]`: `forecast` runs again on a
/// transient `ActionError`; `forecast_own_error` returns an error type of its own, whose
/// `Transient` impl the macro's conversion keeps.
#[derive(Default)]
struct DeclaredRetries {
    upstream: Flaky,
}

// Three tries, waits of 200 ms doubling up to 2 s before jitter: 100..200 ms, then 200..400 ms.
#[provider(name = "hand-written")]
impl DeclaredRetries {
    #[action(retry(attempts = 3, backoff = "200ms..2s"))]
    async fn forecast(&self, payload: Ask) -> Result<Value, ActionError> {
        self.upstream
            .fetch(payload.failures, failure(&payload.failure))
            .await
    }

    #[action(retry(attempts = 3, backoff = "200ms..2s"))]
    async fn forecast_own_error(&self, payload: Ask) -> Result<Value, UpstreamError> {
        let failure = match payload.failure.as_str() {
            "unavailable" => UpstreamError::Unavailable,
            _ => UpstreamError::NotFound,
        };
        self.upstream.fetch(payload.failures, failure).await
    }
}

/// The same declaration written by hand against the builder, with a handler that converts an
/// error type of its own as the macro does.
#[derive(Default)]
struct BuilderRetries {
    upstream: Flaky,
}

impl Provider for BuilderRetries {
    fn definition() -> ProviderDef<Self> {
        let mut def = ProviderDef::new(PROVIDER);
        def.action(
            "forecast_own_error",
            |this: Arc<Self>, mut call| async move {
                let ask: Ask = call.payload()?;
                let failure = match ask.failure.as_str() {
                    "unavailable" => UpstreamError::Unavailable,
                    _ => UpstreamError::NotFound,
                };
                let output = this.upstream.fetch(ask.failures, failure).await;
                Ok(arbv_provider::__private::__into_action_response!(output))
            },
        )
        .payload::<Ask>()
        .retry(
            RetryPolicy::attempts(3).backoff(Duration::from_millis(200), Duration::from_secs(2)),
        );
        def
    }
}

async fn declared(action: &str, failures: usize, failure: &str) -> Run {
    let provider = DeclaredRetries::default();
    let calls = provider.upstream.calls.clone();
    run(provider, calls, action, failures, failure).await
}

/// `arbv_action_retries_total` of `action` as `/metrics` serves it.
fn retries_served(run: &Run, action: &str) -> Option<u64> {
    let series =
        format!("arbv_action_retries_total{{action=\"{action}\",provider=\"{PROVIDER}\"}} ");
    run.rendered
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map(|count| count.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_retry_answers_success_after_two_transient_failures_and_two_bounded_waits() {
    let run = declared("forecast", 2, "unavailable").await;
    assert_eq!(run.envelope["status"], "success", "{}", run.envelope);
    assert_eq!(
        run.envelope["data"]["response"],
        json!({ "temperature_c": 21, "calls": 3 }),
        "the third try's success, as it is"
    );
    assert_eq!(run.calls, 3);
    // Waits of 100..200 ms, then 200..400 ms; the rest is the hub round trip.
    assert!(run.took >= Duration::from_millis(300), "{:?}", run.took);
    assert!(run.took < Duration::from_secs(5), "{:?}", run.took);
    assert_eq!(run.metrics.action("forecast").unwrap().retries, 2);
    assert_eq!(retries_served(&run, "forecast"), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_retry_answers_an_error_that_is_not_transient_after_one_try() {
    let run = declared("forecast", 1, "not_found").await;
    assert_eq!(run.envelope["status"], "error", "{}", run.envelope);
    assert_eq!(
        run.envelope["data"]["response"],
        json!({ "error": "no such city", "error_code": "NOT_FOUND", "details": { "attempts": 1 } })
    );
    assert_eq!(run.calls, 1);
    assert_eq!(retries_served(&run, "forecast"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_retry_waits_for_retry_after() {
    let run = declared("forecast", 1, "rate_limited").await;
    assert_eq!(run.envelope["status"], "success", "{}", run.envelope);
    assert_eq!(run.calls, 2);
    assert!(
        run.took >= Duration::from_secs(1),
        "waited the 1 s asked: {:?}",
        run.took
    );
    assert!(run.took < Duration::from_secs(6), "{:?}", run.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_tries_run_out_and_the_last_error_carries_their_number() {
    let run = declared("forecast", 5, "unavailable").await;
    assert_eq!(run.envelope["status"], "error", "{}", run.envelope);
    assert_eq!(run.envelope["message"], "upstream 503");
    assert_eq!(
        run.envelope["data"]["response"]["details"],
        json!({ "attempts": 3 })
    );
    assert_eq!(run.calls, 3);
    assert_eq!(retries_served(&run, "forecast"), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_type_of_ones_own_that_says_it_is_transient_is_retried() {
    let retried = declared("forecast_own_error", 2, "unavailable").await;
    assert_eq!(
        retried.envelope["status"], "success",
        "{}",
        retried.envelope
    );
    assert_eq!(retried.calls, 3);
    assert_eq!(retries_served(&retried, "forecast_own_error"), Some(2));
    let once = declared("forecast_own_error", 1, "not_found").await;
    assert_eq!(
        once.envelope["message"], "no such city",
        "{}",
        once.envelope
    );
    assert_eq!(once.calls, 1);
    let provider = BuilderRetries::default();
    let calls = provider.upstream.calls.clone();
    let built = run(provider, calls, "forecast_own_error", 2, "unavailable").await;
    assert_eq!(built.envelope["status"], "success", "{}", built.envelope);
    assert_eq!(built.calls, 3);
}

#[test]
fn the_manifest_shows_the_declared_retry() {
    let manifest = DeclaredRetries::manifest();
    assert_eq!(
        manifest["actions"][0]["retry"],
        json!({
            "attempts": 3,
            "backoff_first_s": 0.2,
            "backoff_cap_s": 2.0,
            "attempt_timeout_s": null,
        })
    );
}

/// Each retry is logged at `warn`, with the attempt, the wait and the error escaped. Checked
/// through this binary's global subscriber: a thread's own subscriber can miss events whose
/// callsites other tests' threads register at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_retry_is_logged_at_warn_with_the_error_escaped() {
    let logs = arbv_tests::logs::global(tracing::Level::INFO);
    let run = declared("forecast", 1, "forged").await;
    assert_eq!(run.envelope["status"], "success", "{}", run.envelope);
    let escaped = r"upstream 503\nINFO forged line";
    let lines = logs.lines_with(&[escaped]);
    assert_eq!(lines.len(), 1, "{}", logs.text());
    for part in ["WARN", "attempt=1", "attempts=3", "wait="] {
        assert!(lines[0].contains(part), "{part} in {}", lines[0]);
    }
    assert!(
        !logs
            .text()
            .lines()
            .any(|line| line.starts_with("INFO forged line")),
        "no line forged: {}",
        logs.text()
    );
}
