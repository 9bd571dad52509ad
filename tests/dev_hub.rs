//! The dev hub's own promises, spoken to by a raw gRPC client and its admin API: `GetTask` is
//! held until work arrives, or answered empty when the hold runs out; a duplicate result is
//! counted and ignored, the first one standing; `/stats` counts what happened.

use std::time::{Duration, Instant};

use arbv_provider_core::proto::hub_client::HubClient;
use arbv_provider_core::proto::{ProviderRequest, Task, TaskResult};
use arbv_tests::{PROVIDER, TOKEN, eventually, loopback, start_hub};
use serde_json::{Value, json};

fn ask(token: &str) -> ProviderRequest {
    ProviderRequest {
        provider: PROVIDER.into(),
        auth_token: token.into(),
    }
}

fn result(task: &Task, envelope: &Value) -> TaskResult {
    TaskResult {
        id: task.id.clone(),
        provider: PROVIDER.into(),
        auth_token: TOKEN.into(),
        status: envelope["status"].as_str().unwrap().into(),
        action: task.action.clone(),
        payload: "{}".into(),
        result: envelope.to_string(),
        account: "{}".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_task_is_held_until_work_arrives() {
    // A hold far longer than the test's bounds: only a wake-up on enqueue answers in time.
    let (hub, server) = start_hub(Duration::from_secs(60)).await;
    let client = HubClient::connect(server.url()).await.unwrap();
    let waiting = tokio::spawn({
        let mut client = client.clone();
        async move { client.get_task(ask(TOKEN)).await }
    });
    assert!(
        eventually(Duration::from_secs(10), || async {
            hub.stats().get_task_calls == 1
        })
        .await,
        "the call reaches the hub"
    );
    let enqueued = Instant::now();
    let id = hub.enqueue(PROVIDER, "echo", json!({"message": "late"}), None);
    let task = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the held call is answered when work arrives, not at the end of its hold")
        .unwrap()
        .expect("GetTask succeeds")
        .into_inner();
    assert_eq!(
        task.id, id,
        "the call was held open and given the task that arrived"
    );
    assert!(enqueued.elapsed() < Duration::from_secs(20));
    assert_eq!(hub.stats().get_task_calls, 1, "one call, held");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_task_without_work_is_answered_empty_when_the_hold_runs_out() {
    let hold = Duration::from_millis(700);
    let (hub, server) = start_hub(hold).await;
    let mut client = HubClient::connect(server.url()).await.unwrap();
    let asked = Instant::now();
    let task = client.get_task(ask(TOKEN)).await.unwrap().into_inner();
    let took = asked.elapsed();
    assert!(task.id.is_empty(), "no work: an empty Task");
    assert!(took >= hold, "held for the hold: answered after {took:?}");
    assert!(took < Duration::from_secs(20), "not held past it: {took:?}");
    // Work for another provider does not answer the call either.
    hub.enqueue("someone-else", "echo", json!({}), None);
    let asked = Instant::now();
    let task = client.get_task(ask(TOKEN)).await.unwrap().into_inner();
    assert!(task.id.is_empty());
    assert!(asked.elapsed() >= hold);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_result_is_counted_and_ignored_and_stats_count_every_call() {
    let (hub, server) = start_hub(Duration::ZERO).await;
    let admin = hub.serve_admin(loopback()).await.unwrap();
    let mut client = HubClient::connect(server.url()).await.unwrap();
    let id = hub.enqueue(PROVIDER, "echo", json!({"message": "once"}), None);
    let task = client.get_task(ask(TOKEN)).await.unwrap().into_inner();
    assert_eq!(task.id, id);

    let first = json!({"status": "success", "message": "first", "data": {"n": 1}});
    let second = json!({"status": "error", "message": "second", "data": {"n": 2}});
    client
        .submit_task_result(result(&task, &first))
        .await
        .expect("the result is taken");
    client
        .submit_task_result(result(&task, &second))
        .await
        .expect("a duplicate is answered without an error");
    assert_eq!(
        hub.wait_result(&id, Duration::ZERO).await,
        Some(first.clone()),
        "the first result stands"
    );
    let info = hub.task(&id).unwrap();
    assert_eq!((info.deliveries, info.result), (1, Some(first.clone())));

    // A refused token is counted; a task still queued shows in the counts.
    let refused = client.get_task(ask("wrong-token")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    hub.enqueue(PROVIDER, "echo", json!({"message": "waiting"}), None);

    let http = reqwest::Client::new();
    let base = format!("http://{}", admin.addr());
    let stats: Value = http
        .get(format!("{base}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        json!({
            "queued": 1,
            "leased": 0,
            "done": 1,
            "forgotten": 0,
            "get_task_calls": 2,
            "submit_calls": 2,
            "duplicate_results": 1,
            "refused_tokens": 1,
        })
    );
    let shown: Value = http
        .get(format!("{base}/tasks/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        shown["result"], first,
        "the admin API shows the first result"
    );
    admin.stop().await;
    server.stop().await;
}
