//! `Context::retry` in a real provider, through the dev hub over gRPC: an action whose upstream
//! fails twice with a transient error answers `success` after two waits within the policy's
//! bounds; an error that is not transient is answered at once; a `Retry-After` is waited for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arbv_provider::prelude::*;
use arbv_provider::retry::RetryPolicy;
use arbv_tests::{RunningProvider, call, config, start_hub};

/// An upstream that fails `failures` times, then answers: what each try gets.
#[derive(Default)]
struct Flaky {
    calls: AtomicUsize,
}

impl Flaky {
    async fn fetch(&self, failures: usize, failure: ActionError) -> Result<Value, ActionError> {
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

#[derive(Default)]
struct Weather {
    upstream: Flaky,
}

#[provider(name = "hand-written")]
impl Weather {
    #[action]
    async fn forecast(&self, payload: Ask, ctx: &Context) -> Result<Value, ActionError> {
        let failure = match payload.failure.as_str() {
            "unavailable" => ActionError::new("upstream 503").transient(),
            "rate_limited" => ActionError::new("upstream 429").retry_after(Duration::from_secs(1)),
            _ => ActionError::new("no such city").with_code("NOT_FOUND"),
        };
        let policy =
            RetryPolicy::attempts(3).backoff(Duration::from_millis(200), Duration::from_secs(2));
        ctx.retry(&policy, || {
            self.upstream.fetch(payload.failures, failure.clone())
        })
        .await
    }
}

async fn forecast(failures: usize, failure: &str) -> (Value, usize, Duration) {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let weather = Weather::default();
    let runtime = arbv_provider::Runtime::new(weather, config(&server.url()).build().unwrap());
    let provider = RunningProvider::start_runtime(runtime.unwrap());
    let started = Instant::now();
    let envelope = call(
        &hub,
        "forecast",
        json!({ "failures": failures, "failure": failure }),
        None,
    )
    .await;
    let took = started.elapsed();
    provider.stop().await.unwrap();
    let calls = envelope["data"]["response"]["calls"]
        .as_u64()
        .map_or(0, |c| c as usize);
    (envelope, calls, took)
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
