//! The hub token never reaches a log line, at any level, even when the hub refuses it.
//! One test in its own binary, since it installs the global log subscriber.

use std::time::Duration;

use arbv_tests::{HandWritten, PROVIDER, RunningProvider, call, start_hub};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_stays_out_of_every_log_line() {
    let captured = arbv_tests::logs::global(tracing::Level::TRACE);

    let (hub, server) = start_hub(Duration::ZERO).await;
    let wrong = "wrong-token-9f8e7d6c5b4a";
    let refused = RunningProvider::start(
        HandWritten,
        arbv_provider::Config::builder()
            .auth_token(wrong)
            .hub_url(server.url())
            .build()
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    refused.stop().await.unwrap();

    let right = RunningProvider::start(
        HandWritten,
        arbv_tests::config(&server.url()).build().unwrap(),
    );
    assert_eq!(
        call(&hub, "echo", json!({"message": "x"}), None).await["status"],
        "success"
    );
    right.stop().await.unwrap();
    server.stop().await;

    let logs = captured.text();
    assert!(
        logs.contains("refused the provider's token"),
        "the refusal is logged clearly:\n{logs}"
    );
    assert!(logs.contains(PROVIDER));
    assert!(
        !logs.contains(wrong),
        "the wrong token leaked into the logs"
    );
    assert!(
        !logs.contains(arbv_tests::TOKEN),
        "the token leaked into the logs"
    );
}
