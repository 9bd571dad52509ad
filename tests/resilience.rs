//! The runtime under real conditions: a wrong token, a hub that comes up late or restarts,
//! shutdown with tasks in flight, a thousand tasks at once, an idle hub, and a hub that is not
//! ours. All over real gRPC on loopback.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbv_provider::dev_hub::{DevHub, TaskState};
use arbv_provider_core::proto::hub_server::{Hub, HubServer};
use arbv_provider_core::proto::{ProviderRequest, Task, TaskResult};
use arbv_tests::{
    HandWritten, PROVIDER, RunningProvider, TOKEN, call, config, eventually, loopback, start_hub,
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_with_backoff_not_a_hot_loop() {
    let (hub, server) = start_hub(Duration::ZERO).await;
    let provider = RunningProvider::start(
        HandWritten,
        arbv_provider::Config::builder()
            .auth_token("not-the-token")
            .hub_url(server.url())
            .concurrency(8)
            .build()
            .unwrap(),
    );
    let id = hub.enqueue(PROVIDER, "echo", json!({"message": "x"}), None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = hub.stats();
    assert!(stats.refused_tokens >= 2, "it keeps trying: {stats:?}");
    // Each of the 8 lanes asks once at start; then one lane retries with backoff from 100 ms
    // doubling (about 5 attempts in 2 s). A hot loop would make thousands.
    assert!(stats.refused_tokens <= 20, "it backs off: {stats:?}");
    assert_eq!(
        hub.task(&id).unwrap().state,
        TaskState::Queued,
        "no task is given to a refused token"
    );
    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_is_not_up_at_start_is_reached_when_it_comes_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let provider = RunningProvider::start(
        HandWritten,
        config(&format!("http://{port}")).build().unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let hub = DevHub::builder().token(TOKEN).build();
    let server = hub.serve(port).await.unwrap();
    let e = call(&hub, "echo", json!({"message": "late"}), None).await;
    assert_eq!(e["data"]["response"], json!({"echo": "late"}));
    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restart_mid_run_loses_no_result() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let addr = server.addr();
    let provider = RunningProvider::start(
        HandWritten,
        config(&server.url()).concurrency(4).build().unwrap(),
    );
    assert_eq!(
        call(&hub, "echo", json!({"message": "before"}), None).await["status"],
        "success"
    );

    // A task in flight while the hub goes away: its result must wait and be delivered later.
    let in_flight = hub.enqueue(PROVIDER, "sleep", json!({"ms": 600}), None);
    assert!(
        eventually(Duration::from_secs(5), || async {
            hub.task(&in_flight).unwrap().state == TaskState::Leased
        })
        .await
    );
    server.stop().await;
    // Work queued while the hub is down.
    let queued: Vec<String> = (0..5)
        .map(|i| {
            hub.enqueue(
                PROVIDER,
                "echo",
                json!({"message": format!("during {i}")}),
                None,
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        hub.task(&in_flight).unwrap().state,
        TaskState::Leased,
        "the hub was down: no result yet"
    );

    let server = hub
        .serve(addr)
        .await
        .expect("the hub comes back on the same address");
    let e = hub
        .wait_result(&in_flight, Duration::from_secs(20))
        .await
        .expect("the kept result arrives");
    assert_eq!(e["data"]["response"], json!({"slept_ms": 600}));
    for (i, id) in queued.iter().enumerate() {
        let e = hub
            .wait_result(id, Duration::from_secs(20))
            .await
            .expect("queued work is done");
        assert_eq!(e["data"]["response"]["echo"], format!("during {i}"));
    }
    let stats = hub.stats();
    assert_eq!((stats.done, stats.duplicate_results), (7, 0), "{stats:?}");
    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_tasks_in_flight_and_submits_their_results() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(
        HandWritten,
        config(&server.url()).concurrency(8).build().unwrap(),
    );
    let ids: Vec<String> = (0..8)
        .map(|_| hub.enqueue(PROVIDER, "sleep", json!({"ms": 700}), None))
        .collect();
    assert!(eventually(Duration::from_secs(5), || async { hub.stats().leased == 8 }).await);
    let later = hub.enqueue(
        PROVIDER,
        "echo",
        json!({"message": "after shutdown began"}),
        None,
    );
    provider
        .stop()
        .await
        .expect("serve returns Ok after draining");
    for id in &ids {
        let task = hub.task(id).unwrap();
        assert_eq!(task.state, TaskState::Done);
        assert_eq!(task.result.unwrap()["status"], "success");
    }
    // The task queued during the drain was either run (handed back with a result) or left queued.
    let later = hub.task(&later).unwrap();
    assert!(
        later.state == TaskState::Done
            || (later.state == TaskState::Queued && later.deliveries == 0),
        "{later:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_timeout_answers_actions_that_would_not_finish() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(
        HandWritten,
        config(&server.url())
            .drain_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let id = hub.enqueue(PROVIDER, "sleep", json!({"ms": 15_000}), None);
    assert!(
        eventually(Duration::from_secs(5), || async {
            hub.task(&id).unwrap().state == TaskState::Leased
        })
        .await
    );
    provider.stop().await.unwrap();
    let e = hub
        .task(&id)
        .unwrap()
        .result
        .expect("an answer even for the interrupted task");
    assert_eq!(e["status"], "error");
    assert_eq!(
        e["message"],
        "Task interrupted: the provider shut down before the action finished"
    );
    assert_eq!(e["data"]["response"]["error_code"], "SHUTDOWN");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_at_concurrency_eight_give_a_thousand_results() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let runtime = arbv_provider::Runtime::new(
        HandWritten,
        config(&server.url()).concurrency(8).build().unwrap(),
    )
    .unwrap();
    let worker_stats = runtime.stats();
    let provider = RunningProvider::start_runtime(runtime);
    let ids: Vec<String> = (0..1000)
        .map(|i| hub.enqueue(PROVIDER, "echo", json!({"message": format!("m{i}")}), None))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let e = hub
            .wait_result(id, Duration::from_secs(60))
            .await
            .expect("every task is answered");
        assert_eq!(
            e["data"]["response"]["echo"],
            format!("m{i}"),
            "each answer is its own task's"
        );
    }
    let stats = hub.stats();
    assert_eq!(
        (
            stats.done,
            stats.queued,
            stats.leased,
            stats.duplicate_results
        ),
        (1000, 0, 0, 0),
        "{stats:?}"
    );
    assert!(
        hub.tasks().iter().all(|t| t.deliveries == 1),
        "no task was delivered twice"
    );
    assert_eq!(stats.submit_calls, 1000, "one submission each");
    let tasks_run = worker_stats
        .tasks
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(tasks_run, 1000);
    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_provider_polls_a_bounded_number_of_times_whatever_its_concurrency() {
    // A hub that answers "no task" at once: the worst case for polling.
    let (hub, server) = start_hub(Duration::ZERO).await;
    let provider = RunningProvider::start(
        HandWritten,
        config(&server.url()).concurrency(32).build().unwrap(),
    );
    assert_eq!(
        call(&hub, "echo", json!({"message": "wake"}), None).await["status"],
        "success"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = hub.stats().get_task_calls;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polls = hub.stats().get_task_calls - before;
    // The idle pause is capped at 50 ms: at most 20 polls a second from one scout, not 32 lanes.
    assert!(polls <= 45, "{polls} polls in 2 s while idle");
    assert!(polls >= 10, "the scout keeps polling: {polls}");
    // And work is picked up promptly after the idle spell.
    assert_eq!(
        call(&hub, "echo", json!({"message": "again"}), None).await["status"],
        "success"
    );
    provider.stop().await.unwrap();
    server.stop().await;
}

/// A hub written here against the generated service trait, independent of the dev hub: it
/// answers `NOT_FOUND` when it has no work and never hands work back with a result.
#[derive(Default, Clone)]
struct MinimalHub {
    queue: Arc<Mutex<VecDeque<Task>>>,
    results: Arc<Mutex<Vec<TaskResult>>>,
}

#[tonic::async_trait]
impl Hub for MinimalHub {
    async fn get_task(
        &self,
        request: tonic::Request<ProviderRequest>,
    ) -> Result<tonic::Response<Task>, tonic::Status> {
        let request = request.into_inner();
        if request.auth_token != TOKEN {
            return Err(tonic::Status::unauthenticated("bad token"));
        }
        match self.queue.lock().unwrap().pop_front() {
            Some(task) => Ok(tonic::Response::new(task)),
            None => Err(tonic::Status::not_found("no task")),
        }
    }

    async fn submit_task_result(
        &self,
        request: tonic::Request<TaskResult>,
    ) -> Result<tonic::Response<Task>, tonic::Status> {
        self.results.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(Task::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_against_any_hub_that_implements_the_contract() {
    let hub = MinimalHub::default();
    let tasks = [
        ("t1", "echo", r#"{"message":"hi"}"#, ""),
        (
            "t2",
            "with_account",
            "{}",
            r#"{"api_key":"0123456789abcdef0123456789abcdef"}"#,
        ),
        ("t3", "nope", "{}", ""),
        ("t4", "echo", "oops", ""),
    ];
    for (id, action, payload, account) in tasks {
        hub.queue.lock().unwrap().push_back(Task {
            id: id.into(),
            action: action.into(),
            payload: payload.as_bytes().to_vec().into(),
            account: account.as_bytes().to_vec().into(),
        });
    }
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(HubServer::new(hub.clone()))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    let provider = RunningProvider::start(HandWritten, config(&format!("{addr}")).build().unwrap());
    assert!(
        eventually(Duration::from_secs(10), || async {
            hub.results.lock().unwrap().len() == 4
        })
        .await
    );
    provider.stop().await.unwrap();
    let mut results = hub.results.lock().unwrap().clone();
    results.sort_by(|a, b| a.id.cmp(&b.id));
    let expect = [
        ("t1", "success", r#"{"message":"hi"}"#, "{}"),
        (
            "t2",
            "success",
            "{}",
            r#"{"api_key":"0123456789abcdef0123456789abcdef"}"#,
        ),
        ("t3", "error", "{}", "{}"),
        ("t4", "error", "oops", "{}"),
    ];
    for (result, (id, status, payload, account)) in results.iter().zip(expect) {
        assert_eq!(result.id, id);
        assert_eq!(result.provider, PROVIDER);
        assert_eq!(result.auth_token, TOKEN);
        assert_eq!(result.status, status);
        assert_eq!(result.payload, payload);
        assert_eq!(result.account, account);
        let envelope: Value = serde_json::from_str(&result.result).unwrap();
        assert_eq!(
            envelope["status"], status,
            "the status field matches the envelope's"
        );
        assert_eq!(envelope["data"]["action"], result.action);
    }
    server.abort();
}
