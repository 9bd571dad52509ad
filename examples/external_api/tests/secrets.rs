//! The token travels only to GitHub: every log line of the process (at trace level, the HTTP
//! stack's included) and every envelope the hub gets, whatever GitHub answered, are free of it.
//! Its own binary: the log capture is the process's global subscriber.

mod support;

use std::time::Duration;

use arbv_tests::{RunningProvider, config, start_hub};
use chrono::Utc;
use external_api::GitHub;
use serde_json::json;
use support::*;
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn the_token_is_in_no_log_line_and_no_envelope() {
    let logs = arbv_tests::logs::global(tracing::Level::TRACE);
    let stub = MockServer::start().await;
    for (repo, answer) in [
        (
            "rust",
            ResponseTemplate::new(200).set_body_json(rust_repo()),
        ),
        ("nope", not_found()),
        ("denied", bad_credentials()),
        ("busy", server_error()),
        ("spent", primary_limit(403, Utc::now().timestamp() + 60)),
    ] {
        github_request(&format!("/repos/rust-lang/{repo}"), TOKEN)
            .respond_with(answer)
            .mount(&stub)
            .await;
    }
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(
        GitHub::new(&stub.uri()).unwrap(),
        config(&server.url()).build().unwrap(),
    );

    let mut envelopes = Vec::new();
    for repo in ["rust", "nope", "denied", "busy", "spent"] {
        let id = hub.enqueue(
            "external-api",
            "get_repo_info",
            json!({"owner": "rust-lang", "repo": repo}),
            Some(account(TOKEN)),
        );
        envelopes.push(hub.wait_result(&id, Duration::from_secs(60)).await.unwrap());
    }
    provider.stop().await.unwrap();
    server.stop().await;

    let statuses: Vec<_> = envelopes.iter().map(|e| e["status"].clone()).collect();
    assert_eq!(
        statuses,
        ["success", "error", "error", "error", "limit"].map(|s| json!(s))
    );
    for envelope in &envelopes {
        assert!(!envelope.to_string().contains(TOKEN), "{envelope}");
    }
    let text = logs.text();
    assert!(
        text.contains("GitHub answered"),
        "the capture holds the provider's lines"
    );
    assert!(
        !text.contains(TOKEN),
        "the token is in the logs:\n{}",
        logs.lines_with(&[TOKEN]).join("\n")
    );
}
