//! Every row of the envelope table (README, "What every task gets back"), end to end: a hand-written provider, the dev hub,
//! real gRPC on loopback. Each answer is checked field by field.

use std::time::Duration;

use arbv_provider::dev_hub::DevHub;
use arbv_tests::contract_hub::ContractHub;
use arbv_tests::{HandWritten, PROVIDER, RunningProvider, TOKEN, call, config, start_hub};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

async fn setup(
    zone: &str,
) -> (
    DevHub,
    arbv_provider::dev_hub::RunningServer,
    RunningProvider,
) {
    let (hub, server) = start_hub(Duration::from_secs(5)).await;
    let provider = RunningProvider::start(
        HandWritten,
        config(&server.url())
            .timezone(zone)
            .concurrency(4)
            .build()
            .unwrap(),
    );
    (hub, server, provider)
}

/// Checks the parts every envelope shares and returns its `response`.
fn common<'a>(
    envelope: &'a Value,
    status: &str,
    message: &str,
    action: &str,
    zone: &str,
) -> &'a Value {
    assert_eq!(envelope["status"], status, "{envelope:#}");
    assert_eq!(envelope["message"], message, "{envelope:#}");
    let data = &envelope["data"];
    assert_eq!(data["provider"], PROVIDER);
    assert_eq!(data["action"], action);
    assert_eq!(data["timezone"], zone);
    let now = DateTime::parse_from_rfc3339(data["now"].as_str().unwrap()).expect("now is RFC 3339");
    let now_utc = DateTime::parse_from_rfc3339(data["now_utc"].as_str().unwrap())
        .expect("now_utc is RFC 3339");
    assert_eq!(now, now_utc, "now and now_utc are one instant");
    assert!(data["now_utc"].as_str().unwrap().ends_with("+00:00"));
    let zone: chrono_tz::Tz = zone.parse().unwrap();
    let expected_offset = now_utc.with_timezone(&zone).format("%:z").to_string();
    assert!(
        data["now"].as_str().unwrap().ends_with(&expected_offset),
        "{} vs {expected_offset}",
        data["now"]
    );
    let age = Utc::now().signed_duration_since(now_utc.with_timezone(&Utc));
    assert!(
        age >= chrono::Duration::zero() && age < chrono::Duration::seconds(30),
        "stamped now: {age}"
    );
    let micros = data["now"].as_str().unwrap().split('.').nth(1).unwrap();
    assert_eq!(
        micros.find(['+', '-']),
        Some(6),
        "microsecond precision: {}",
        data["now"]
    );
    &data["response"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_envelope_table() {
    let zone = "Europe/Moscow";
    let (hub, server, provider) = setup(zone).await;

    // action ran: its message, else a default
    let e = call(&hub, "echo", json!({"message": "hi"}), None).await;
    assert_eq!(
        common(
            &e,
            "success",
            "Action 'echo' completed successfully",
            "echo",
            zone
        ),
        &json!({"echo": "hi"})
    );
    let e = call(&hub, "add", json!({"a": 2, "b": 3.5}), None).await;
    assert_eq!(
        common(&e, "success", "added", "add", zone),
        &json!({"sum": 5.5})
    );
    let e = call(&hub, "warn", json!({}), None).await;
    assert_eq!(
        common(&e, "warning", "partial data", "warn", zone),
        &json!({"rows": 3})
    );

    // action returned an error
    let e = call(&hub, "fail", json!({}), None).await;
    assert_eq!(
        common(
            &e,
            "error",
            "the upstream API refused the request",
            "fail",
            zone
        ),
        &json!({"error": "the upstream API refused the request", "error_code": "UPSTREAM_REFUSED", "details": {"http_status": 403}})
    );

    // unknown action
    let e = call(&hub, "nope", json!({}), None).await;
    let r = common(&e, "error", "Action 'nope' not found", "nope", zone);
    assert_eq!(
        r["available_actions"],
        json!([
            "echo",
            "add",
            "fail",
            "explode",
            "sleep",
            "slow",
            "blocking_sleep",
            "with_account",
            "warn"
        ])
    );

    // payload not JSON / not UTF-8
    let id = hub.enqueue_raw(
        PROVIDER,
        "echo",
        Bytes::from_static(b"{not json"),
        Bytes::new(),
    );
    let e = hub.wait_result(&id, Duration::from_secs(10)).await.unwrap();
    let r = common(&e, "error", "Failed to parse task data", "echo", zone);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("payload is not valid JSON"),
        "{r}"
    );
    let id = hub.enqueue_raw(
        PROVIDER,
        "echo",
        Bytes::from_static(b"\"\xff\xfe\""),
        Bytes::new(),
    );
    let e = hub.wait_result(&id, Duration::from_secs(10)).await.unwrap();
    let r = common(&e, "error", "Failed to parse task data", "echo", zone);
    assert!(r["error"].as_str().unwrap().contains("not UTF-8"), "{r}");
    let id = hub.enqueue_raw(
        PROVIDER,
        "with_account",
        Bytes::from_static(b"{}"),
        Bytes::from_static(b"[1,"),
    );
    let e = hub.wait_result(&id, Duration::from_secs(10)).await.unwrap();
    let r = common(
        &e,
        "error",
        "Failed to parse task data",
        "with_account",
        zone,
    );
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("account is not valid JSON"),
        "{r}"
    );

    // payload fails its schema: every error, with paths, the missing fields and the schema
    let e = call(&hub, "add", json!({"a": "two"}), None).await;
    let r = common(
        &e,
        "error",
        "Invalid payload: Missing required parameters: b; /a: \"two\" is not of type \"number\"",
        "add",
        zone,
    );
    assert_eq!(r["missing_params"], json!(["b"]));
    assert_eq!(
        r["errors"],
        json!([{"path": "/a", "message": "\"two\" is not of type \"number\""}, {"path": "/b", "message": "\"b\" is a required property"}])
    );
    assert_eq!(r["schema"]["required"], json!(["a", "b"]));
    let e = call(&hub, "echo", json!({"message": ""}), None).await;
    let r = common(
        &e,
        "error",
        "Invalid payload: /message: \"\" is shorter than 1 character",
        "echo",
        zone,
    );
    assert_eq!(r["errors"][0]["path"], "/message");

    // account missing / invalid; the invalid account's value stays out of the message
    let e = call(&hub, "with_account", json!({}), None).await;
    let r = common(
        &e,
        "error",
        "Account data is required but not provided",
        "with_account",
        zone,
    );
    assert_eq!(r["schema"]["required"], json!(["api_key"]));
    assert_eq!(r["missing_params"], json!([]));
    let e = call(
        &hub,
        "with_account",
        json!({}),
        Some(json!({"api_key": "short-secret"})),
    )
    .await;
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with("Invalid account: /api_key"),
        "{message}"
    );
    assert!(
        !e.to_string().contains("short-secret"),
        "the account's value stays out of the envelope: {e}"
    );
    let e = call(
        &hub,
        "with_account",
        json!({}),
        Some(json!({"api_key": "k".repeat(32)})),
    )
    .await;
    assert_eq!(
        common(
            &e,
            "success",
            "Action 'with_account' completed successfully",
            "with_account",
            zone
        )["key_len"],
        32
    );

    // over its execution timeout
    let e = call(&hub, "slow", json!({}), None).await;
    assert_eq!(
        common(
            &e,
            "error",
            "Task execution timed out after 0.2s",
            "slow",
            zone
        ),
        &json!({"timeout_s": 0.2})
    );

    // action panicked; the provider lives on
    let e = call(&hub, "explode", json!({}), None).await;
    assert_eq!(
        common(
            &e,
            "error",
            "Action panicked: kaboom in the action",
            "explode",
            zone
        ),
        &json!({"error": "kaboom in the action"})
    );
    let e = call(&hub, "echo", json!({"message": "still alive"}), None).await;
    assert_eq!(e["status"], "success");

    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_utc_now_and_now_utc_read_the_same_and_a_task_is_delivered_once() {
    let (hub, server, provider) = setup("UTC").await;
    let e = call(&hub, "echo", json!({"message": "x"}), None).await;
    assert_eq!(
        e["data"]["now"], e["data"]["now_utc"],
        "UTC stamps both the same"
    );
    let tasks = hub.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].deliveries, 1);
    provider.stop().await.unwrap();
    server.stop().await;
}

/// The `TaskResult` around the envelope, as a hub that records what it is sent receives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_echoes_payload_and_account_and_the_status() {
    let hub = ContractHub::builder(TOKEN).build();
    // Payloads and accounts as the hub sent them, spacing and key order included.
    let key = "0123456789abcdef0123456789abcdef";
    let with_account = format!(r#"{{ "api_key" : "{key}", "z": 1, "a": [ 2 ] }}"#);
    let tasks = [
        ("ok", "echo", r#"{ "message" : "x",  "extra": null }"#, ""),
        ("warned", "warn", "{}", ""),
        (
            "failed",
            "fail",
            r#"{"b": 1, "a": 2}"#,
            r#"{"note": "unused"}"#,
        ),
        ("accounted", "with_account", "{}", with_account.as_str()),
        ("unknown", "nope", "[1, 2]", ""),
    ];
    for (id, action, payload, account) in tasks {
        hub.push(id, action, payload, account);
    }
    let server = hub.serve().await;
    let provider = RunningProvider::start(HandWritten, config(&server.url()).build().unwrap());
    assert!(hub.wait_results(tasks.len(), Duration::from_secs(20)).await);
    provider.stop().await.unwrap();
    server.stop().await;

    let results = hub.results();
    assert_eq!(results.len(), tasks.len(), "one result each");
    let mut statuses = Vec::new();
    for (id, action, payload, account) in tasks {
        let result = results.iter().find(|r| r.id == id).unwrap();
        assert_eq!(result.action, action);
        assert_eq!(result.payload, payload, "{id}: the payload as sent");
        let expected_account = if account.is_empty() { "{}" } else { account };
        assert_eq!(
            result.account, expected_account,
            "{id}: the account as sent"
        );
        let envelope: Value = serde_json::from_str(&result.result).unwrap();
        assert_eq!(
            result.status, envelope["status"],
            "{id}: the envelope's status"
        );
        statuses.push(result.status.clone());
    }
    assert_eq!(
        statuses,
        ["success", "warning", "error", "success", "error"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_action_does_not_stall_the_others() {
    let (hub, server) = start_hub(Duration::from_secs(5)).await;
    let provider = RunningProvider::start(
        HandWritten,
        config(&server.url()).concurrency(2).build().unwrap(),
    );
    // 5 s: the echo beside it has that long to be answered, however loaded the machine.
    let blocking = hub.enqueue(PROVIDER, "blocking_sleep", json!({"ms": 5000}), None);
    assert!(
        arbv_tests::eventually(Duration::from_secs(5), || async {
            hub.task(&blocking).unwrap().state == arbv_provider::dev_hub::TaskState::Leased
        })
        .await
    );
    let e = call(&hub, "echo", json!({"message": "meanwhile"}), None).await;
    assert_eq!(e["status"], "success");
    assert_eq!(
        hub.task(&blocking).unwrap().state,
        arbv_provider::dev_hub::TaskState::Leased,
        "the echo was answered while the blocking action still ran"
    );
    let e = hub
        .wait_result(&blocking, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(e["data"]["response"], json!({"slept_ms": 5000}));
    provider.stop().await.unwrap();
    server.stop().await;
}
