//! The provider as a process, the way it runs in production: a real binary configured from the
//! environment, a dev hub in this test on loopback, and Unix signals from outside.

#[path = "support/provider_process.rs"]
mod provider_process;

use std::collections::HashMap;
use std::time::Duration;

use arbv_provider::dev_hub::{DevHub, TaskState};
use arbv_tests::{TOKEN, eventually, start_hub};
use nix::sys::signal::Signal;
use provider_process::{PROVIDER, ProviderProcess};
use serde_json::{Value, json};

/// Waits until every task in `ids` has been given to a provider.
async fn wait_leased(hub: &DevHub, ids: &[String]) {
    let leased = eventually(Duration::from_secs(30), || async {
        ids.iter()
            .all(|id| hub.task(id).is_some_and(|t| t.state != TaskState::Queued))
    })
    .await;
    assert!(leased, "the provider took every task within 30 s");
}

fn states(hub: &DevHub, ids: &[String]) -> HashMap<String, TaskState> {
    ids.iter()
        .map(|id| (id.clone(), hub.task(id).expect("the task exists").state))
        .collect()
}

async fn result(hub: &DevHub, id: &str) -> Value {
    hub.wait_result(id, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no result for task {id} within 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_work_answers_the_tasks_in_flight_and_exits_0() {
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = ProviderProcess::start(
        &server,
        &[
            ("PROVIDER_CONCURRENCY", "4"),
            ("PROVIDER_DRAIN_TIMEOUT", "60s"),
        ],
    );
    let ids: Vec<String> = (0..4)
        .map(|_| hub.enqueue(PROVIDER, "sleep", json!({ "ms": 3000 }), None))
        .collect();
    wait_leased(&hub, &ids).await;
    let before = states(&hub, &ids);
    assert!(
        before.values().all(|s| *s == TaskState::Leased),
        "every task is still running when the signal is sent: {before:?}"
    );

    provider.signal(Signal::SIGTERM);
    // Generous: the drain allows 60 s; the actions need 3 s.
    let (status, output) = provider.exit(Duration::from_secs(90)).await;

    assert_eq!(status.code(), Some(0), "output:\n{}", output.join("\n"));
    for id in &ids {
        let envelope = result(&hub, id).await;
        assert_eq!(envelope["status"], "success", "{envelope}");
        assert_eq!(envelope["data"]["response"], json!({ "slept_ms": 3000 }));
        assert_eq!(
            hub.task(id).unwrap().deliveries,
            1,
            "answered once, by that process"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_during_the_drain_answers_shutdown_at_once_and_exits_non_zero() {
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = ProviderProcess::start(
        &server,
        &[
            ("PROVIDER_CONCURRENCY", "3"),
            ("PROVIDER_DRAIN_TIMEOUT", "300s"),
            ("TASK_EXECUTION_TIMEOUT", "900"),
        ],
    );
    let ids: Vec<String> = (0..3)
        .map(|_| hub.enqueue(PROVIDER, "sleep", json!({ "ms": 600_000 }), None))
        .collect();
    wait_leased(&hub, &ids).await;

    provider.signal(Signal::SIGTERM);
    provider
        .wait_for_output("shutting down", Duration::from_secs(30))
        .await;
    provider.signal(Signal::SIGTERM);
    // Far below the drain (300 s) and the actions (600 s, timeout 900 s): the second signal cuts
    // both short.
    let (status, output) = provider.exit(Duration::from_secs(60)).await;

    assert!(
        status.code().is_some_and(|code| code != 0),
        "a second signal is an exit with a non-zero code, not a clean one or a kill: {status:?}; output:\n{}",
        output.join("\n")
    );
    for id in &ids {
        let envelope = result(&hub, id).await;
        assert_eq!(envelope["status"], "error", "{envelope}");
        assert_eq!(
            envelope["data"]["response"]["error_code"], "SHUTDOWN",
            "{envelope}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_and_carry_no_token_payload_or_account() {
    const PAYLOAD_SECRET: &str = "payload-secret-7f3a";
    const ACCOUNT_SECRET: &str = "account-secret-91c2";
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider =
        ProviderProcess::start(&server, &[("LOG_FORMAT", "json"), ("RUST_LOG", "debug")]);
    let good_key = format!("{ACCOUNT_SECRET}-{}", "k".repeat(32));
    let ids = [
        hub.enqueue(PROVIDER, "echo", json!({ "message": PAYLOAD_SECRET }), None),
        hub.enqueue(
            PROVIDER,
            "echo",
            json!({ "message": 7, "extra": PAYLOAD_SECRET }),
            None,
        ),
        hub.enqueue(
            PROVIDER,
            "with_account",
            json!({ "note": PAYLOAD_SECRET }),
            Some(json!({ "api_key": good_key })),
        ),
        // Too short for the schema: refused, and the refusal names no value.
        hub.enqueue(
            PROVIDER,
            "with_account",
            json!({}),
            Some(json!({ "api_key": ACCOUNT_SECRET })),
        ),
        hub.enqueue(PROVIDER, "nope", json!({ "x": PAYLOAD_SECRET }), None),
    ];
    let mut statuses = Vec::new();
    for id in &ids {
        statuses.push(result(&hub, id).await["status"].clone());
    }
    assert_eq!(
        statuses,
        [
            json!("success"),
            json!("error"),
            json!("success"),
            json!("error"),
            json!("error")
        ]
    );

    provider.signal(Signal::SIGTERM);
    let (status, output) = provider.exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0));

    let mut debug_lines = 0;
    for line in output.iter().filter(|l| !l.trim().is_empty()) {
        let object: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(
            object.is_object(),
            "a log line that is not an object: {line}"
        );
        if object["level"] == "DEBUG" {
            debug_lines += 1;
        }
        for secret in [TOKEN, PAYLOAD_SECRET, ACCOUNT_SECRET] {
            assert!(!line.contains(secret), "{secret:?} reached the log: {line}");
        }
    }
    assert!(
        debug_lines >= ids.len(),
        "RUST_LOG=debug logs each task: {debug_lines} debug lines in\n{}",
        output.join("\n")
    );
    for id in &ids {
        assert!(
            output.iter().any(|l| l.contains(id.as_str())),
            "task {id} is logged"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_logged_without_the_token() {
    const WRONG_TOKEN: &str = "wrong-token-e8b1c4d2";
    let (_hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = ProviderProcess::start(
        &server,
        &[
            ("PROVIDER_AUTH_TOKEN", WRONG_TOKEN),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
        ],
    );
    provider
        .wait_for_output("refused the provider's token", Duration::from_secs(30))
        .await;
    provider.signal(Signal::SIGTERM);
    let (status, output) = provider.exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0));
    for line in output.iter().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(
            !line.contains(WRONG_TOKEN),
            "the token reached the log: {line}"
        );
        assert!(
            !line.contains(TOKEN),
            "the hub's token reached the log: {line}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_name_from_the_environment_is_the_name_served() {
    const RENAMED: &str = "renamed-by-env-3c1";
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = ProviderProcess::start(&server, &[("PROVIDER_NAME", RENAMED)]);
    let for_code_name = hub.enqueue(PROVIDER, "echo", json!({ "message": "a" }), None);
    let for_env_name = hub.enqueue(RENAMED, "echo", json!({ "message": "b" }), None);

    let envelope = result(&hub, &for_env_name).await;
    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(envelope["data"]["provider"], RENAMED);
    assert_eq!(envelope["data"]["response"], json!({ "echo": "b" }));

    provider.signal(Signal::SIGTERM);
    let (status, _) = provider.exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0));
    let untouched = hub.task(&for_code_name).unwrap();
    assert_eq!(
        (untouched.state, untouched.deliveries),
        (TaskState::Queued, 0),
        "the name in code is not polled once PROVIDER_NAME overrides it"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_execution_timeout_from_the_environment_cuts_the_action() {
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = ProviderProcess::start(&server, &[("TASK_EXECUTION_TIMEOUT", "0.5")]);
    let slow = hub.enqueue(PROVIDER, "sleep", json!({ "ms": 600_000 }), None);
    let quick = hub.enqueue(PROVIDER, "sleep", json!({ "ms": 1 }), None);

    let envelope = result(&hub, &slow).await;
    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(envelope["message"], "Task execution timed out after 0.5s");
    assert_eq!(envelope["data"]["response"]["timeout_s"], 0.5);
    assert_eq!(result(&hub, &quick).await["status"], "success");

    provider.signal(Signal::SIGTERM);
    let (status, _) = provider.exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0));
    server.stop().await;
}
