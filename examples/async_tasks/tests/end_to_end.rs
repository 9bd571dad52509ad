//! The provider through the dev hub over gRPC, against a local HTTP server: the envelopes of
//! all, some and no fetches succeeding, the fetches overlapping, the retries, the schema's
//! bounds, and no password in any envelope or log line.

mod common;

use std::time::{Duration, Instant};

use arbv_provider::dev_hub::{DevHub, RunningServer};
use arbv_tests::{RunningProvider, config, start_hub};
use async_tasks::AsyncTasks;
use common::*;
use serde_json::{Value, json};

const PASSWORD: &str = "hub-s3cret-9f2e";

/// Every log line of this binary, at every level, the provider's and its libraries'.
fn logs() -> &'static arbv_tests::logs::LogBuffer {
    arbv_tests::logs::global(tracing::Level::TRACE)
}

struct Harness {
    hub: DevHub,
    _server: RunningServer,
    provider: Option<RunningProvider>,
}

impl Harness {
    async fn start() -> Self {
        let (hub, server) = start_hub(Duration::from_millis(200)).await;
        let provider = AsyncTasks::new()
            .unwrap()
            .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(50));
        let running = RunningProvider::start(provider, config(&server.url()).build().unwrap());
        Self {
            hub,
            _server: server,
            provider: Some(running),
        }
    }

    async fn call(&self, action: &str, payload: Value) -> Value {
        let id = self.hub.enqueue("async-tasks", action, payload, None);
        let envelope = self
            .hub
            .wait_result(&id, Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("no result for {action} within 60 s"));
        assert!(!envelope.to_string().contains(PASSWORD), "{envelope}");
        envelope
    }

    async fn stop(mut self) {
        if let Some(provider) = self.provider.take() {
            provider.stop().await.unwrap();
        }
    }
}

fn response(envelope: &Value) -> &Value {
    &envelope["data"]["response"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_urls_of_300_ms_answer_in_well_under_six_seconds() {
    let server = TestServer::start().await;
    let h = Harness::start().await;
    let urls: Vec<String> = (0..20).map(|_| server.url("/delay/300")).collect();
    let started = Instant::now();
    let envelope = h
        .call(
            "fetch_multiple_urls",
            json!({"urls": urls, "timeout_ms": 5000}),
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(envelope["status"], "success", "{envelope}");
    let results = response(&envelope)["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    assert!(results.iter().all(|entry| entry["status"] == 200));
    assert!(
        elapsed < Duration::from_millis(20 * 300 / 2),
        "20 fetches of 300 ms took {elapsed:?} through the hub: they did not overlap"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_warning_and_error_envelopes() {
    let server = TestServer::start().await;
    let h = Harness::start().await;
    let envelope = h
        .call(
            "fetch_multiple_urls",
            json!({"urls": [server.url("/delay/0"), server.url("/status/502")]}),
        )
        .await;
    assert_eq!(envelope["status"], "warning", "{envelope}");
    assert_eq!(envelope["message"], "1 of 2 URLs failed");
    assert_eq!(response(&envelope)["results"][1]["status"], 502);

    let envelope = h
        .call(
            "fetch_multiple_urls",
            json!({"urls": [server.url("/status/500"), refused_url()], "timeout_ms": 1000}),
        )
        .await;
    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(response(&envelope)["error_code"], "ALL_FAILED");
    assert_eq!(
        response(&envelope)["details"]["results"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_with_retry_retries_a_5xx_and_not_a_4xx() {
    let server = TestServer::start().await;
    let h = Harness::start().await;
    let envelope = h
        .call(
            "fetch_with_retry",
            json!({"url": server.url("/flaky/1/e2e")}),
        )
        .await;
    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(response(&envelope)["attempts"], 2);
    assert_eq!(server.hits("e2e"), 2);

    let envelope = h
        .call(
            "fetch_with_retry",
            json!({"url": server.url("/status/410"), "attempts": 5}),
        )
        .await;
    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(response(&envelope)["error_code"], "HTTP_CLIENT_ERROR");
    assert_eq!(server.hits("status/410"), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_outside_the_schema_are_refused_before_any_fetch() {
    let server = TestServer::start().await;
    let h = Harness::start().await;
    let url = server.url("/status/200");
    for (action, payload) in [
        ("fetch_multiple_urls", json!({"urls": []})),
        (
            "fetch_multiple_urls",
            json!({"urls": vec![url.clone(); 21]}),
        ),
        (
            "fetch_multiple_urls",
            json!({"urls": [url.clone()], "timeout_ms": 0}),
        ),
        (
            "fetch_with_retry",
            json!({"url": url.clone(), "attempts": 0}),
        ),
        (
            "fetch_with_retry",
            json!({"url": url.clone(), "attempts": 6}),
        ),
    ] {
        let envelope = h.call(action, payload.clone()).await;
        assert_eq!(envelope["status"], "error", "{payload}: {envelope}");
    }
    assert_eq!(server.hits("status/200"), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_a_url_is_in_no_envelope_and_no_log_line() {
    logs();
    let server = TestServer::start().await;
    let h = Harness::start().await;
    let address = server.address;
    let with_password = |path: &str| format!("http://user:{PASSWORD}@{address}{path}");
    let envelope = h
        .call(
            "fetch_multiple_urls",
            json!({"urls": [with_password("/delay/0"), with_password("/status/500")]}),
        )
        .await;
    assert_eq!(envelope["status"], "warning", "{envelope}");
    assert_eq!(
        response(&envelope)["results"][0]["url"],
        format!("http://user:***@{address}/delay/0")
    );
    let envelope = h
        .call(
            "fetch_with_retry",
            json!({"url": with_password("/flaky/9/pw"), "attempts": 2}),
        )
        .await;
    assert_eq!(envelope["status"], "error", "{envelope}");
    h.stop().await;
    let text = logs().text();
    assert!(
        text.contains("fetch failed"),
        "the provider's logs are captured"
    );
    assert!(!text.contains(PASSWORD), "the password is in the logs");
}
