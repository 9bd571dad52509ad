//! The runtime under real conditions: a wrong token, a hub that comes up late or restarts,
//! shutdown with tasks in flight, a thousand tasks at once, an idle hub, and a hub that is not
//! ours. All over real gRPC on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arbv_provider::dev_hub::{DevHub, TaskState};
use arbv_provider_core::proto::hub_server::{Hub, HubServer};
use arbv_provider_core::proto::{ProviderRequest, Task, TaskResult};
use arbv_tests::contract_hub::{ContractHub, NoTask};
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
    // Once shutdown begins a lane takes no more work, not even handed back with a result.
    let later = hub.task(&later).unwrap();
    assert_eq!(
        (later.state, later.deliveries),
        (TaskState::Queued, 0),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_against_any_hub_that_implements_the_contract() {
    let hub = ContractHub::builder(TOKEN)
        .no_task(NoTask::NotFound)
        .build();
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
        hub.push(id, action, payload, account);
    }
    let server = hub.serve().await;
    let provider = RunningProvider::start(
        HandWritten,
        config(&format!("{}", server.addr())).build().unwrap(),
    );
    assert!(hub.wait_results(4, Duration::from_secs(10)).await);
    provider.stop().await.unwrap();
    let mut results = hub.results();
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
    assert_eq!(hub.results().len(), 4, "one result each");
    server.stop().await;
}

fn sleeps(hub: &ContractHub, count: usize, ms: u64) -> Vec<String> {
    (0..count)
        .map(|i| {
            let id = format!("sleep-{i}");
            hub.push(&id, "sleep", format!(r#"{{"ms":{ms}}}"#), "");
            id
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_cuts_the_drain_short_and_serve_fails() {
    let hub = ContractHub::builder(TOKEN).build();
    let ids = sleeps(&hub, 4, 15_000);
    let server = hub.serve().await;
    let runtime = arbv_provider::Runtime::new(
        HandWritten,
        config(&server.url()).concurrency(4).build().unwrap(),
    )
    .unwrap();
    let stats = runtime.stats();
    let provider = RunningProvider::start_runtime(runtime);
    assert!(
        eventually(Duration::from_secs(10), || async {
            stats.tasks.load(Ordering::Relaxed) == 4
        })
        .await
    );
    provider.signal();
    assert!(
        !eventually(Duration::from_millis(300), || async {
            provider.is_finished()
        })
        .await,
        "the first signal drains: the 15 s actions keep running"
    );
    let second = Instant::now();
    provider.signal();
    let ended = provider.wait().await;
    assert!(
        matches!(ended, Err(arbv_provider::Error::ForcedShutdown)),
        "{ended:?}"
    );
    // Without the second signal the stop would take the 10 s drain at least.
    assert!(
        second.elapsed() < Duration::from_secs(8),
        "{:?}",
        second.elapsed()
    );
    for id in &ids {
        assert_eq!(hub.results_for(id), 1, "{id} answered once");
    }
    for result in hub.results() {
        let e: Value = serde_json::from_str(&result.result).unwrap();
        assert_eq!(e["data"]["response"]["error_code"], "SHUTDOWN", "{e}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_goes_away_at_the_signal_does_not_hold_the_stop() {
    let hub = ContractHub::builder(TOKEN).build();
    sleeps(&hub, 1, 200);
    let server = hub.serve().await;
    let runtime = arbv_provider::Runtime::new(
        HandWritten,
        config(&server.url())
            .drain_timeout(Duration::from_millis(500))
            .build()
            .unwrap(),
    )
    .unwrap();
    let stats = runtime.stats();
    let provider = RunningProvider::start_runtime(runtime);
    assert!(
        eventually(Duration::from_secs(10), || async {
            stats.tasks.load(Ordering::Relaxed) == 1
        })
        .await
    );
    server.stop().await;
    let signalled = Instant::now();
    provider
        .stop()
        .await
        .expect("a drain that ran its course is Ok");
    // drain 0.5 s + result grace 5 s + final bound 1 s, with room for a loaded machine.
    assert!(
        signalled.elapsed() < Duration::from_secs(15),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(
        stats.lost.load(Ordering::Relaxed),
        1,
        "the result is given up, and logged"
    );
    assert_eq!(hub.results().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_is_not_held_by_the_connect_loop_or_a_held_poll() {
    // A hub that is not there: the provider is in its connect loop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let provider = RunningProvider::start(
        HandWritten,
        config(&format!("http://{port}")).build().unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    provider.stop().await.unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );

    // A hub that holds GetTask open for 60 s: the stop waits at most the poll grace.
    let (hub, server) = start_hub(Duration::from_secs(60)).await;
    let provider = RunningProvider::start(HandWritten, config(&server.url()).build().unwrap());
    assert!(
        eventually(Duration::from_secs(10), || async {
            hub.stats().get_task_calls >= 1
        })
        .await
    );
    let signalled = Instant::now();
    provider.stop().await.unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "{:?}",
        signalled.elapsed()
    );
    server.stop().await;
}

/// A hub that hands out one task and then never answers `SubmitTaskResult`.
#[derive(Clone, Default)]
struct NeverTakesResults {
    given: Arc<AtomicBool>,
}

#[tonic::async_trait]
impl Hub for NeverTakesResults {
    async fn get_task(
        &self,
        _request: tonic::Request<ProviderRequest>,
    ) -> Result<tonic::Response<Task>, tonic::Status> {
        if self.given.swap(true, Ordering::SeqCst) {
            return Ok(tonic::Response::new(Task::default()));
        }
        Ok(tonic::Response::new(Task {
            id: "stuck".into(),
            action: "echo".into(),
            payload: br#"{"message":"never taken"}"#.to_vec().into(),
            account: Default::default(),
        }))
    }

    async fn submit_task_result(
        &self,
        _request: tonic::Request<TaskResult>,
    ) -> Result<tonic::Response<Task>, tonic::Status> {
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_the_hub_never_answers_is_cut_at_the_stop_bound() {
    let hub = NeverTakesResults::default();
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(HubServer::new(hub.clone()))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    let runtime = arbv_provider::Runtime::new(
        HandWritten,
        config(&format!("http://{addr}"))
            .drain_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
    .unwrap();
    let stats = runtime.stats();
    let provider = RunningProvider::start_runtime(runtime);
    assert!(
        eventually(Duration::from_secs(10), || async {
            hub.given.load(Ordering::SeqCst) && stats.tasks.load(Ordering::Relaxed) == 1
        })
        .await
    );
    let signalled = Instant::now();
    provider.stop().await.unwrap();
    // The submit would wait 30 s for its answer; the stop gives up on it after drain 0.3 s +
    // result grace 5 s (+ 1 s final bound).
    assert!(
        signalled.elapsed() < Duration::from_secs(15),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(stats.lost.load(Ordering::Relaxed), 1);
    server.abort();
}
