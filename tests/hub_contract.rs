//! Hostile and unusual hubs: what the `SubmitTaskResult` answer holds, results a hub does not
//! take, results too large for it, and shutdown while the hub goes away. Exactly-once is
//! counted on the hub's side, from the contract hub's record of every result it took.
//!
//! And polling ahead: a lane asks for its next task while it submits the last one's answer,
//! unless the hub hands work back in its `SubmitTaskResult` answers. Checked from the hub's
//! side: when each `GetTask` arrives, how many results are in flight and how many tasks are out.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbv_provider::dev_hub::TaskState;
use arbv_provider_core::proto::hub_client::HubClient as RawClient;
use arbv_provider_core::proto::hub_server::Hub;
use arbv_provider_core::proto::{ProviderRequest, Task, TaskResult};
use arbv_provider_core::wire::{ACCEPT_HAND_BACK, HAND_BACK};
use arbv_tests::contract_hub::{ContractHub, NoTask, SubmitAnswer};
use arbv_tests::{
    HandWritten, PROVIDER, RunningProvider, TOKEN, config, eventually, serve_hub, start_hub,
};
use serde_json::{Value, json};
use tonic::Code;

fn envelope(result: &TaskResult) -> Value {
    serde_json::from_str(&result.result).expect("the result is an envelope")
}

fn push_echoes(hub: &ContractHub, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let id = format!("task-{i}");
            hub.push(&id, "echo", format!(r#"{{"message":"m{i}"}}"#), "");
            id
        })
        .collect()
}

/// Each id answered once, and nothing else answered.
fn assert_exactly_once(hub: &ContractHub, ids: &[String]) {
    let results = hub.results();
    let answered: Vec<&str> = results.iter().map(|r| r.id.as_str()).collect();
    let unique: BTreeSet<&str> = answered.iter().copied().collect();
    let expected: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(
        answered.len(),
        ids.len(),
        "one result per task: {answered:?}"
    );
    assert_eq!(unique, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_echoes_the_submitted_task_gets_each_result_once() {
    for no_task in [NoTask::EmptyTask, NoTask::NotFound] {
        let hub = ContractHub::builder(TOKEN)
            .no_task(no_task)
            .submit_answer(SubmitAnswer::EchoSubmitted)
            .build();
        let ids = push_echoes(&hub, 40);
        let server = hub.serve().await;
        let runtime = arbv_provider::Runtime::new(
            HandWritten,
            config(&server.url()).concurrency(4).build().unwrap(),
        )
        .unwrap();
        let stats = runtime.metrics();
        let provider = RunningProvider::start_runtime(runtime);
        assert!(hub.wait_results(40, Duration::from_secs(30)).await);
        // A provider that ran the echoed task would submit it again at once, forever.
        assert!(
            !eventually(Duration::from_millis(500), || async {
                hub.submit_calls() > 40
            })
            .await,
            "no result was submitted twice"
        );
        provider.stop().await.unwrap();
        assert_exactly_once(&hub, &ids);
        assert_eq!(stats.snapshot().tasks_received(), 40, "each task ran once");
        for result in hub.results() {
            assert_eq!(envelope(&result)["status"], "success");
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_task_in_an_unannounced_answer_is_not_run() {
    let ghost = Task {
        id: "ghost".into(),
        action: "echo".into(),
        payload: br#"{"message":"never queued"}"#.to_vec().into(),
        account: Default::default(),
    };
    let hub = ContractHub::builder(TOKEN)
        .submit_answer(SubmitAnswer::Other(ghost))
        .build();
    let ids = push_echoes(&hub, 20);
    let server = hub.serve().await;
    let provider = RunningProvider::start(
        HandWritten,
        config(&server.url()).concurrency(2).build().unwrap(),
    );
    assert!(hub.wait_results(20, Duration::from_secs(30)).await);
    assert!(
        !eventually(Duration::from_millis(500), || async {
            hub.results_for("ghost") > 0
        })
        .await,
        "the task in the answer was not announced as handed back: it is not run"
    );
    provider.stop().await.unwrap();
    assert_exactly_once(&hub, &ids);
    server.stop().await;
}

/// A hub that hands out one task, then announces a hand-back in every `SubmitTaskResult`
/// answer and hands back the task just submitted.
#[derive(Clone, Default)]
struct HandsBackTheSameTask {
    given: Arc<AtomicBool>,
    results: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl Hub for HandsBackTheSameTask {
    async fn get_task(
        &self,
        _request: tonic::Request<ProviderRequest>,
    ) -> Result<tonic::Response<Task>, tonic::Status> {
        if self.given.swap(true, Ordering::SeqCst) {
            return Ok(tonic::Response::new(Task::default()));
        }
        Ok(tonic::Response::new(Task {
            id: "only".into(),
            action: "echo".into(),
            payload: br#"{"message":"once"}"#.to_vec().into(),
            account: Default::default(),
        }))
    }

    async fn submit_task_result(
        &self,
        request: tonic::Request<TaskResult>,
    ) -> Result<tonic::Response<Task>, tonic::Status> {
        assert!(
            request.metadata().get(ACCEPT_HAND_BACK).is_some(),
            "a running provider accepts hand-back"
        );
        let result = request.into_inner();
        self.results.lock().unwrap().push(result.id.clone());
        let mut answer = tonic::Response::new(Task {
            id: result.id,
            action: result.action,
            payload: result.payload.into_bytes().into(),
            account: Default::default(),
        });
        answer
            .metadata_mut()
            .insert(HAND_BACK, tonic::metadata::MetadataValue::from_static("1"));
        Ok(answer)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_back_task_with_the_id_just_submitted_is_not_run_again() {
    let hub = HandsBackTheSameTask::default();
    let (url, server) = serve_hub(hub.clone()).await;
    let provider = RunningProvider::start(HandWritten, config(&url).build().unwrap());
    assert!(
        eventually(Duration::from_secs(10), || async {
            !hub.results.lock().unwrap().is_empty()
        })
        .await
    );
    assert!(
        !eventually(Duration::from_millis(500), || async {
            hub.results.lock().unwrap().len() > 1
        })
        .await,
        "the task was answered once: {:?}",
        hub.results.lock().unwrap()
    );
    provider.stop().await.unwrap();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_hub_hands_back_only_to_a_client_that_asks() {
    let (hub, server) = start_hub(Duration::ZERO).await;
    let ids: BTreeSet<String> = (0..20)
        .map(|i| hub.enqueue(PROVIDER, "echo", json!({"message": i}), None))
        .collect();
    let mut client = RawClient::connect(server.url()).await.unwrap();
    let ask = || ProviderRequest {
        provider: PROVIDER.into(),
        auth_token: TOKEN.into(),
    };
    let answer = |task: &Task| TaskResult {
        id: task.id.clone(),
        provider: PROVIDER.into(),
        auth_token: TOKEN.into(),
        status: "success".into(),
        action: task.action.clone(),
        payload: "{}".into(),
        result: r#"{"status":"success","message":"ok","data":{}}"#.into(),
        account: "{}".into(),
    };
    // Like the Python framework: GetTask, SubmitTaskResult, the answer ignored.
    let mut handed_out = BTreeSet::new();
    loop {
        let task = client.get_task(ask()).await.unwrap().into_inner();
        if task.id.is_empty() {
            break;
        }
        assert!(handed_out.insert(task.id.clone()), "handed out once");
        let submitted = client.submit_task_result(answer(&task)).await.unwrap();
        assert!(submitted.metadata().get(HAND_BACK).is_none());
        assert!(
            submitted.into_inner().id.is_empty(),
            "no work in the answer"
        );
    }
    assert_eq!(handed_out, ids, "every task handed out through GetTask");
    let stats = hub.stats();
    assert_eq!(
        (stats.done, stats.leased, stats.queued),
        (20, 0, 0),
        "{stats:?}"
    );

    // A client that asks gets the next task in the answer, marked as handed back.
    let first = hub.enqueue(PROVIDER, "echo", json!({"message": "a"}), None);
    let second = hub.enqueue(PROVIDER, "echo", json!({"message": "b"}), None);
    let task = client.get_task(ask()).await.unwrap().into_inner();
    assert_eq!(task.id, first);
    let mut request = tonic::Request::new(answer(&task));
    request.metadata_mut().insert(
        ACCEPT_HAND_BACK,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    let submitted = client.submit_task_result(request).await.unwrap();
    assert_eq!(submitted.metadata().get(HAND_BACK).unwrap(), "1");
    assert_eq!(submitted.into_inner().id, second);
    assert_eq!(hub.task(&second).unwrap().state, TaskState::Leased);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_the_hub_does_not_take_are_retried_or_given_up_by_code() {
    let hub = ContractHub::builder(TOKEN).build();
    let cases = [
        ("transient-unavailable", Some((Code::Unavailable, 2))),
        ("transient-internal", Some((Code::Internal, 1))),
        ("transient-aborted", Some((Code::Aborted, 1))),
        ("token-rotated", Some((Code::Unauthenticated, 1))),
        ("final-not-found", Some((Code::NotFound, 5))),
        ("final-invalid", Some((Code::InvalidArgument, 5))),
        ("final-denied", Some((Code::PermissionDenied, 5))),
        ("taken", None),
    ];
    for (id, refusal) in cases {
        hub.push(id, "echo", format!(r#"{{"message":"{id}"}}"#), "");
        if let Some((code, times)) = refusal {
            hub.refuse_submits(id, code, times);
        }
    }
    let server = hub.serve().await;
    let runtime = arbv_provider::Runtime::new(
        HandWritten,
        config(&server.url()).concurrency(4).build().unwrap(),
    )
    .unwrap();
    let stats = runtime.metrics();
    let provider = RunningProvider::start_runtime(runtime);
    assert!(hub.wait_results(5, Duration::from_secs(30)).await);
    assert!(
        eventually(Duration::from_secs(10), || async {
            stats.snapshot().results.lost == 3
        })
        .await
    );
    provider.stop().await.unwrap();
    for (id, refusal) in cases {
        let final_refusal = matches!(
            refusal,
            Some((
                Code::NotFound | Code::InvalidArgument | Code::PermissionDenied,
                _
            ))
        );
        let refused = hub.refused().iter().filter(|(r, _)| r == id).count();
        if final_refusal {
            assert_eq!(hub.results_for(id), 0, "{id} is given up");
            assert_eq!(refused, 1, "{id} is given up at once, not retried");
        } else {
            assert_eq!(hub.results_for(id), 1, "{id} is taken once");
            assert_eq!(
                refused as u32,
                refusal.map_or(0, |(_, times)| times),
                "{id}"
            );
        }
    }
    assert_eq!(stats.snapshot().results.refused, 3);
    assert_eq!(
        stats.snapshot().results.taken,
        5,
        "NOT_FOUND is not counted as taken"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_too_large_for_a_default_hub_is_answered_with_one_small_error() {
    let hub = ContractHub::builder(TOKEN).build();
    let message = "x".repeat(2_500_000);
    hub.push("big", "echo", json!({ "message": message }).to_string(), "");
    let server = hub.serve().await;
    let started = Instant::now();
    let provider = RunningProvider::start(HandWritten, config(&server.url()).build().unwrap());
    assert!(hub.wait_results(1, Duration::from_secs(30)).await);
    // Far below any lease: the provider did not wait for the hub to give the task up.
    assert!(started.elapsed() < Duration::from_secs(30));
    provider.stop().await.unwrap();
    assert_eq!(hub.submit_calls(), 1, "one submit, the small answer");
    let result = &hub.results()[0];
    assert_eq!(result.status, "error");
    assert!(
        result.result.len() < 4096,
        "a small envelope: {} bytes",
        result.result.len()
    );
    let e = envelope(result);
    assert_eq!(e["status"], "error");
    assert_eq!(e["data"]["response"]["error_code"], "RESULT_TOO_LARGE");
    let bytes = e["data"]["response"]["details"]["bytes"].as_u64().unwrap();
    assert!(bytes > 5_000_000, "{bytes}");
    assert_eq!(
        e["data"]["response"]["details"]["limit"],
        4_194_304 - 65_536
    );
    assert!(e["message"].as_str().unwrap().contains("too large"), "{e}");
    assert_eq!(
        result.payload.len(),
        json!({ "message": message }).to_string().len(),
        "the payload still fits: it is echoed"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_too_large_to_echo_are_replaced_by_their_size() {
    let hub = ContractHub::builder(TOKEN).build();
    let payload = json!({ "message": "y".repeat(4_500_000) }).to_string();
    hub.push("huge-input", "no_such_action", payload.clone(), "");
    let server = hub.serve().await;
    // Read (under the task limit), but too large to repeat within the result limit.
    let provider = RunningProvider::start(
        HandWritten,
        config(&server.url())
            .max_task_bytes(8 * 1024 * 1024)
            .build()
            .unwrap(),
    );
    assert!(hub.wait_results(1, Duration::from_secs(30)).await);
    provider.stop().await.unwrap();
    let result = &hub.results()[0];
    let e = envelope(result);
    assert_eq!(e["data"]["response"]["error_code"], "RESULT_TOO_LARGE");
    let omitted: Value = serde_json::from_str(&result.payload).unwrap();
    assert_eq!(omitted, json!({ "omitted_bytes": payload.len() }));
    let account: Value = serde_json::from_str(&result.account).unwrap();
    assert_eq!(account, json!({ "omitted_bytes": 2 }));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_refuses_a_result_as_too_large_gets_the_small_answer() {
    let hub = ContractHub::builder(TOKEN).build();
    hub.push(
        "big",
        "echo",
        json!({ "message": "z".repeat(2_500_000) }).to_string(),
        "",
    );
    hub.push("refused-twice", "echo", r#"{"message":"small"}"#, "");
    hub.refuse_submits("refused-twice", Code::OutOfRange, 2);
    let server = hub.serve().await;
    // Our own limit is out of the way: the hub's 4 MiB receive limit refuses the result.
    let provider = RunningProvider::start(
        HandWritten,
        config(&server.url())
            .max_result_bytes(64 * 1024 * 1024)
            .build()
            .unwrap(),
    );
    assert!(hub.wait_results(2, Duration::from_secs(30)).await);
    provider.stop().await.unwrap();
    assert_eq!(hub.results_for("big"), 1);
    let big = hub.results().into_iter().find(|r| r.id == "big").unwrap();
    let e = envelope(&big);
    assert_eq!(e["data"]["response"]["error_code"], "RESULT_TOO_LARGE");
    assert!(
        e["data"]["response"]["details"]["hub_answer"].is_string(),
        "{e}"
    );
    // Refused as too large twice: first the small answer, then without the echoed inputs.
    let twice = hub
        .results()
        .into_iter()
        .find(|r| r.id == "refused-twice")
        .unwrap();
    assert_eq!(
        envelope(&twice)["data"]["response"]["error_code"],
        "RESULT_TOO_LARGE"
    );
    assert!(twice.payload.contains("omitted_bytes"), "{}", twice.payload);
    server.stop().await;
}

const POLL_AHEAD_LIMIT: Duration = Duration::from_secs(30);

/// A hub that answers each `SubmitTaskResult` after `submit_delay`, with an empty `Task`, as a
/// hub that knows nothing of hand-back does; it records what each `GetTask` found.
#[derive(Clone, Default)]
struct SlowSubmits {
    queue: Arc<Mutex<VecDeque<Task>>>,
    submit_delay: Duration,
    /// Tasks handed out whose results have not been answered yet.
    out: Arc<AtomicUsize>,
    most_out: Arc<AtomicUsize>,
    /// `GetTask` calls that arrived while a task was out: at concurrency 1, only a poll made
    /// before the last result was answered.
    polls_while_a_task_was_out: Arc<AtomicU64>,
    polls: Arc<AtomicU64>,
    results: Arc<Mutex<Vec<String>>>,
}

impl SlowSubmits {
    fn with_echoes(count: usize, submit_delay: Duration) -> (Self, Vec<String>) {
        let hub = Self {
            submit_delay,
            ..Self::default()
        };
        let ids: Vec<String> = (0..count).map(|i| format!("task-{i}")).collect();
        hub.queue.lock().unwrap().extend(ids.iter().map(|id| Task {
            id: id.clone(),
            action: "echo".into(),
            payload: format!(r#"{{"message":"{id}"}}"#).into_bytes().into(),
            account: Default::default(),
        }));
        (hub, ids)
    }
}

#[tonic::async_trait]
impl Hub for SlowSubmits {
    async fn get_task(
        &self,
        _request: tonic::Request<ProviderRequest>,
    ) -> Result<tonic::Response<Task>, tonic::Status> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        if self.out.load(Ordering::SeqCst) > 0 {
            self.polls_while_a_task_was_out
                .fetch_add(1, Ordering::SeqCst);
        }
        let Some(task) = self.queue.lock().unwrap().pop_front() else {
            return Ok(tonic::Response::new(Task::default()));
        };
        let out = self.out.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_out.fetch_max(out, Ordering::SeqCst);
        Ok(tonic::Response::new(task))
    }

    async fn submit_task_result(
        &self,
        request: tonic::Request<TaskResult>,
    ) -> Result<tonic::Response<Task>, tonic::Status> {
        tokio::time::sleep(self.submit_delay).await;
        self.results.lock().unwrap().push(request.into_inner().id);
        self.out.fetch_sub(1, Ordering::SeqCst);
        Ok(tonic::Response::new(Task::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_asks_for_its_next_task_while_it_submits_the_last() {
    let (hub, ids) = SlowSubmits::with_echoes(20, Duration::from_millis(40));
    let (url, server) = serve_hub(hub.clone()).await;
    let provider =
        RunningProvider::start(HandWritten, config(&url).concurrency(1).build().unwrap());
    assert!(
        eventually(POLL_AHEAD_LIMIT, || async {
            hub.results.lock().unwrap().len() == ids.len()
        })
        .await,
        "every task answered"
    );
    provider.stop().await.unwrap();
    server.abort();

    let results = hub.results.lock().unwrap().clone();
    assert_eq!(results.len(), ids.len(), "one result per task: {results:?}");
    assert_eq!(
        results.iter().collect::<BTreeSet<_>>(),
        ids.iter().collect::<BTreeSet<_>>()
    );
    // One poll beside each of the 20 submits, each while that task was still out (the one
    // beside the last found the queue empty); only the first poll and the scout's later ones
    // find nothing out.
    let beside = hub.polls_while_a_task_was_out.load(Ordering::SeqCst);
    assert!(
        beside >= ids.len() as u64,
        "{beside} of {} polls went out while a result was in flight",
        hub.polls.load(Ordering::SeqCst)
    );
    // At concurrency 1: the task being submitted and the one polled beside it, never more.
    assert_eq!(hub.most_out.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_hands_work_back_is_not_polled_beside_each_submit() {
    let (hub, server) = start_hub(Duration::ZERO).await;
    let ids: Vec<String> = (0..200)
        .map(|i| hub.enqueue(PROVIDER, "echo", json!({"message": i}), None))
        .collect();
    let provider = RunningProvider::start(
        HandWritten,
        config(&server.url()).concurrency(1).build().unwrap(),
    );
    for id in &ids {
        assert!(hub.wait_done(id, POLL_AHEAD_LIMIT).await, "{id} answered");
    }
    let polls = hub.stats().get_task_calls;
    provider.stop().await.unwrap();
    let stats = hub.stats();
    server.stop().await;
    assert_eq!(stats.done, ids.len());
    assert_eq!(stats.duplicate_results, 0);
    // The first poll, the one beside the first submit (whose answer brought the first
    // hand-back), then each task came in the answer to the last one's result; more once the
    // queue ran dry (the scout asks every 250 µs for 10 ms after work, ~40 polls at most),
    // where polling beside each submit would make one a task.
    assert!(polls <= 60, "{polls} polls for {} tasks", ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_polled_ahead_is_run_and_answered_when_shutdown_begins_meanwhile() {
    // Each result takes 400 ms to go in: the second task arrives while the first's is in
    // flight, and shutdown begins before that submit is answered.
    let (hub, ids) = SlowSubmits::with_echoes(2, Duration::from_millis(400));
    let (url, server) = serve_hub(hub.clone()).await;
    let provider =
        RunningProvider::start(HandWritten, config(&url).concurrency(1).build().unwrap());
    assert!(
        eventually(POLL_AHEAD_LIMIT, || async {
            hub.out.load(Ordering::SeqCst) == 2
        })
        .await,
        "the second task went out while the first's result was in flight"
    );
    provider.stop().await.unwrap();
    server.abort();
    let results = hub.results.lock().unwrap().clone();
    assert_eq!(results, ids, "both tasks answered once, in order");
    assert_eq!(hub.queue.lock().unwrap().len(), 0);
}
