//! The hub token never reaches a log line, at any level, even when the hub refuses it.
//! One test in its own binary, since it installs the global log subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbv_tests::{HandWritten, PROVIDER, RunningProvider, call, start_hub};
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_stays_out_of_every_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

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

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
