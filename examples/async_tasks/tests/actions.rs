//! The actions called as plain methods against local HTTP servers: the fetches overlap, each
//! entry's shape, the answer's status as all, some or none succeed, and the retries.

mod common;

use std::time::{Duration, Instant};

use arbv_provider::prelude::*;
use arbv_provider::retry::Transient;
use async_tasks::*;
use common::*;

fn provider() -> AsyncTasks {
    AsyncTasks::new()
        .unwrap()
        .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
}

async fn fetch_many(urls: Vec<String>, timeout_ms: u64) -> ActionResponse {
    match provider()
        .fetch_multiple_urls(FetchManyRequest { urls, timeout_ms })
        .await
    {
        Ok(answer) => answer,
        Err(error) => ActionResponse::from_error(error),
    }
}

async fn fetch_retry(url: String, attempts: u32) -> Result<Value, ActionError> {
    provider()
        .fetch_with_retry(
            FetchRetryRequest { url, attempts },
            &Context::detached("fetch_with_retry"),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_urls_of_300_ms_each_are_fetched_at_once() {
    let server = TestServer::start().await;
    const N: usize = 10;
    let urls: Vec<String> = (0..N).map(|_| server.url("/delay/300")).collect();
    let started = Instant::now();
    let answer = fetch_many(urls.clone(), 5000).await;
    let elapsed = started.elapsed();
    assert_eq!(answer.status(), Status::Success, "{:?}", answer.response());
    let results = answer.response()["results"].as_array().unwrap();
    assert_eq!(results.len(), N);
    for (entry, url) in results.iter().zip(&urls) {
        assert_eq!(entry["url"], url.as_str());
        assert_eq!(entry["status"], 200);
        assert_eq!(entry["bytes"], BODY_LEN);
        assert!(entry["elapsed_ms"].as_u64().unwrap() >= 300, "{entry}");
    }
    // One after another they would take N × 300 ms; at once, about 300 ms. The bound is
    // generous: it tells overlap from sequence, not fast from slow.
    assert!(
        elapsed < Duration::from_millis(300 * N as u64 / 2),
        "{N} fetches of 300 ms took {elapsed:?}: they did not overlap"
    );
}

#[tokio::test]
async fn some_failures_are_a_warning_with_one_entry_per_url_in_order() {
    let server = TestServer::start().await;
    let urls = vec![
        server.url("/delay/0"),
        server.url("/status/503"),
        server.url("/status/404"),
        refused_url(),
        server.url("/delay/3000"),
        "ftp://example.com/file".to_owned(),
        server.url("/status/204"),
    ];
    let answer = fetch_many(urls.clone(), 500).await;
    assert_eq!(answer.status(), Status::Warning);
    assert_eq!(answer.message(), Some("5 of 7 URLs failed"));
    let results = answer.response()["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], 200);
    assert_eq!(results[0]["bytes"], BODY_LEN);
    assert_eq!(results[1]["status"], 503);
    assert_eq!(results[1]["error"], "HTTP 503 Service Unavailable");
    assert_eq!(results[2]["status"], 404);
    assert!(results[2]["error"].is_string());
    assert!(results[3]["status"].is_null());
    assert!(
        results[3]["error"].as_str().unwrap().contains("connect"),
        "{}",
        results[3]
    );
    assert_eq!(results[4]["error"], "timed out after 500 ms");
    assert!(
        results[5]["error"]
            .as_str()
            .unwrap()
            .contains("only http and https")
    );
    assert_eq!(results[6]["status"], 204);
    assert_eq!(results[6]["bytes"], 0);
    for (entry, url) in results.iter().zip(&urls) {
        assert_eq!(entry["url"], url.as_str(), "in the order given");
    }
}

#[tokio::test]
async fn all_failing_is_an_error_that_still_lists_each_url() {
    let server = TestServer::start().await;
    let answer = fetch_many(
        vec![
            server.url("/status/500"),
            refused_url(),
            server.url("/status/403"),
        ],
        1000,
    )
    .await;
    assert_eq!(answer.status(), Status::Error);
    assert_eq!(answer.response()["error_code"], "ALL_FAILED");
    let results = answer.response()["details"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["status"], 500);
    assert_eq!(results[2]["status"], 403);
}

#[tokio::test]
async fn a_password_in_a_url_is_sent_but_never_answered() {
    let server = TestServer::start().await;
    let address = server.address;
    let url = format!("http://reader:s3cret-Pa55@{address}/delay/0");
    let answer = fetch_many(
        vec![
            url.clone(),
            format!("http://reader:s3cret-Pa55@{}", &refused_url()[7..]),
        ],
        1000,
    )
    .await;
    assert_eq!(answer.status(), Status::Warning);
    let text = answer.response().to_string();
    assert!(!text.contains("s3cret-Pa55"), "{text}");
    assert_eq!(
        answer.response()["results"][0]["url"],
        format!("http://reader:***@{address}/delay/0")
    );
    // Basic auth from the URL reached the server.
    assert_eq!(server.authorizations().len(), 1);

    let error = fetch_retry(format!("http://reader:s3cret-Pa55@{address}/status/404"), 3)
        .await
        .unwrap_err();
    assert!(
        !error.message().contains("s3cret-Pa55"),
        "{}",
        error.message()
    );
    assert!(!error.details().to_string().contains("s3cret-Pa55"));
}

#[tokio::test]
async fn a_5xx_is_retried_until_it_succeeds() {
    let server = TestServer::start().await;
    let answer = fetch_retry(server.url("/flaky/2/a"), 3).await.unwrap();
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["bytes"], BODY_LEN);
    assert_eq!(answer["attempts"], 3);
    assert_eq!(server.hits("a"), 3);
}

#[tokio::test]
async fn the_tries_run_out_with_the_last_error() {
    let server = TestServer::start().await;
    let error = fetch_retry(server.url("/flaky/5/b"), 2).await.unwrap_err();
    assert_eq!(error.code(), Some("UPSTREAM_ERROR"));
    assert_eq!(error.details()["status"], 503);
    assert_eq!(error.details()["attempts"], 2);
    assert_eq!(server.hits("b"), 2);

    let error = fetch_retry(refused_url(), 3).await.unwrap_err();
    assert_eq!(error.code(), Some("UNAVAILABLE"));
    assert_eq!(error.details()["attempts"], 3);
}

#[tokio::test]
async fn a_4xx_is_answered_after_one_try() {
    let server = TestServer::start().await;
    let error = fetch_retry(server.url("/status/404"), 5).await.unwrap_err();
    assert_eq!(error.code(), Some("HTTP_CLIENT_ERROR"));
    assert!(!error.is_transient());
    assert_eq!(error.details()["attempts"], 1);
    assert_eq!(server.hits("status/404"), 1);
}

#[tokio::test]
async fn a_429_waits_its_retry_after() {
    let server = TestServer::start().await;
    let started = Instant::now();
    let answer = fetch_retry(server.url("/limited/c"), 2).await.unwrap();
    assert_eq!(answer["attempts"], 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 is a floor"
    );
}
