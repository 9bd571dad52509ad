//! Hostile inputs end to end, through the dev hub over real gRPC with the basic example provider:
//! every task is answered once, with an answer of bounded size, in bounded time, and a hostile
//! task does not hold up the tasks beside it.

use std::time::{Duration, Instant};

use arbv_provider::dev_hub::{DevHub, TaskState};
use arbv_provider::prelude::*;
use arbv_tests::{RunningProvider, config, start_hub};
use basic::Basic;
use bytes::Bytes;

const PROVIDER: &str = "basic-provider";
/// Far above what these answers need, far below what an unbounded one would take.
const ANSWER_BYTES: usize = 64 * 1024;
/// Generous: the machine running the tests may be loaded.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

async fn answer(hub: &DevHub, id: &str) -> Value {
    hub.wait_result(id, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("task {id} is answered"))
}

/// `process_order` with `count` empty items: three missing fields each.
fn empty_items(count: usize) -> Bytes {
    let items = vec!["{}"; count].join(",");
    Bytes::from(format!(
        r#"{{"order_id":"o-1","items":[{items}],"customer":{{"name":"Ada","email":"a@example.com","address":{{"street":"s","city":"c","zip":"z"}}}}}}"#
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_schema_errors_is_answered_small_and_others_go_on() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(Basic, config(&server.url()).build().unwrap());
    // The provider is up once it answers.
    let warm = hub.enqueue(PROVIDER, "echo", json!({"message": "warm"}), None);
    answer(&hub, &warm).await;

    let items = 200_000;
    let sent = Instant::now();
    let hostile = hub.enqueue_raw(PROVIDER, "process_order", empty_items(items), Bytes::new());
    // Once the provider holds the hostile task, a small one goes beside it.
    let leased = arbv_tests::eventually(Duration::from_secs(10), || async {
        hub.task(&hostile)
            .is_some_and(|t| t.state != TaskState::Queued)
    })
    .await;
    assert!(leased, "the provider takes the hostile task");
    let echo_sent = Instant::now();
    let echo = hub.enqueue(PROVIDER, "echo", json!({"message": "beside"}), None);
    let e = answer(&hub, &echo).await;
    let echo_took = echo_sent.elapsed();
    assert_eq!(e["data"]["response"], json!({"echo": "beside"}));

    let e = answer(&hub, &hostile).await;
    let hostile_took = sent.elapsed();
    assert!(
        hostile_took < ANSWER_WITHIN,
        "answered after {hostile_took:?}"
    );
    let size = e.to_string().len();
    assert!(size < ANSWER_BYTES, "the answer holds {size} bytes");
    assert_eq!(e["status"], "error");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with("Invalid payload: Missing required parameters: items.0.price, items.0.product_id, items.0.quantity, items.1.price"),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(" and {} more", 3 * items - 10)),
        "{message}"
    );
    let r = &e["data"]["response"];
    let listed = r["errors"].as_array().unwrap().len();
    assert_eq!(listed, 100);
    assert_eq!(r["errors_omitted"], 3 * items - listed);
    assert_eq!(r["errors"][0]["path"], "/items/0/price");
    assert_eq!(r["missing_params"].as_array().unwrap().len(), 100);
    assert_eq!(r["missing_params_omitted"], 3 * items - 100);
    // The task beside it was not held up: answered promptly (a generous bound for a loaded
    // machine), well before a quadratic summary would have let the hostile one go.
    assert!(
        echo_took < Duration::from_secs(2),
        "the echo beside it took {echo_took:?} (the hostile task {hostile_took:?})"
    );

    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_input_counts_against_the_timeout() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let config = config(&server.url())
        .task_timeout(Duration::from_millis(1))
        .build()
        .unwrap();
    let provider = RunningProvider::start(Basic, config);
    let id = hub.enqueue_raw(
        PROVIDER,
        "process_order",
        empty_items(100_000),
        Bytes::new(),
    );
    let e = answer(&hub, &id).await;
    assert_eq!(e["message"], "Task execution timed out after 0.001s", "{e}");
    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_tasks_huge_names_and_deep_nesting_get_small_answers() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let limit = 256 * 1024;
    let config = config(&server.url()).max_task_bytes(limit).build().unwrap();
    let provider = RunningProvider::start(Basic, config);

    // Over PROVIDER_MAX_TASK_BYTES: answered, unread.
    let payload = Bytes::from(format!(r#"{{"message":"{}"}}"#, "x".repeat(limit)));
    let size = payload.len();
    let id = hub.enqueue_raw(PROVIDER, "echo", payload, Bytes::from_static(b"{}"));
    let e = answer(&hub, &id).await;
    assert_eq!(
        e["message"],
        format!("Task too large: {} bytes, limit {limit}", size + 2)
    );
    let r = &e["data"]["response"];
    assert_eq!(r["error_code"], "TASK_TOO_LARGE");
    assert_eq!(r["limit_bytes"], limit);
    assert!(e.to_string().len() < ANSWER_BYTES);
    // Just under the limit is read as usual.
    let message = "y".repeat(limit - 64);
    let id = hub.enqueue(PROVIDER, "echo", json!({ "message": message }), None);
    assert_eq!(answer(&hub, &id).await["data"]["response"]["echo"], message);

    // A megabyte of action name.
    let name = "n".repeat(1 << 20);
    let id = hub.enqueue(PROVIDER, &name, json!({}), None);
    let e = answer(&hub, &id).await;
    let size = e.to_string().len();
    assert!(size < 4096, "the answer holds {size} bytes");
    let message = e["message"].as_str().unwrap();
    assert!(message.starts_with("Action 'nnnn"), "{message}");
    assert!(
        message.ends_with(&format!("… ({} bytes in all)' not found", 1 << 20)),
        "{message}"
    );
    assert!(e["data"]["response"]["available_actions"].is_array());

    // 100 000 levels of nesting, in the payload and in the account.
    let deep = |depth: usize| Bytes::from(format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
    let id = hub.enqueue_raw(PROVIDER, "echo", deep(100_000), Bytes::new());
    let e = answer(&hub, &id).await;
    assert_eq!(e["message"], "Failed to parse task data");
    let error = e["data"]["response"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("payload is not valid JSON: recursion limit exceeded"),
        "{error}"
    );
    let id = hub.enqueue_raw(
        PROVIDER,
        "create_profile",
        Bytes::from_static(br#"{"username":"ada","profile":{}}"#),
        deep(100_000),
    );
    let e = answer(&hub, &id).await;
    let error = e["data"]["response"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("account is not valid JSON: recursion limit exceeded"),
        "{error}"
    );

    // The provider is still fine.
    let id = hub.enqueue(PROVIDER, "echo", json!({"message": "still here"}), None);
    assert_eq!(
        answer(&hub, &id).await["data"]["response"]["echo"],
        "still here"
    );
    provider.stop().await.unwrap();
    server.stop().await;
}
