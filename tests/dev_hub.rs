//! The dev hub's own promises, spoken to by a raw gRPC client and its admin API: `GetTask` is
//! held until work arrives, or answered empty when the hold runs out; a task that arrives as a
//! held caller goes away is offered again at once, not after its lease; a duplicate result is
//! counted and ignored, the first one standing; `/stats` counts what happened, and `/metrics`
//! says the same in the Prometheus text format.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arbv_provider::dev_hub::{DevHub, TaskState};
use arbv_provider_core::proto::hub_client::HubClient;
use arbv_provider_core::proto::{ProviderRequest, Task, TaskResult};
use arbv_tests::promtool::{Promtool, assert_passed};
use arbv_tests::{PROVIDER, RunningProvider, TOKEN, config, eventually, loopback, start_hub};
use basic::Basic;
use prometheus_parse::{Scrape, Value as Sample};
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

// The hub and this test share one thread, so the test decides what the hub sees first: the
// held caller's connection is closed, then a task arrives and wakes the held call, all while
// the hub cannot run. Without care, the woken call takes the task for a caller who is gone and
// it stays leased until its lease (five minutes) runs out.
#[tokio::test(flavor = "current_thread")]
async fn a_task_that_wakes_a_call_whose_caller_has_gone_is_offered_again_at_once() {
    let (hub, server) = start_hub(Duration::from_secs(60)).await;
    let url = server.url();
    let (go, gone) = tokio::sync::oneshot::channel::<()>();
    // The caller runs on a thread of its own, so it can leave while the hub's thread is held.
    let caller = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut client = HubClient::connect(url).await.unwrap();
            tokio::select! {
                answer = client.get_task(ask(TOKEN)) => panic!("answered while held: {answer:?}"),
                _ = gone => {}
            }
        });
    });
    assert!(
        eventually(Duration::from_secs(10), || async {
            hub.stats().get_task_calls == 1
        })
        .await,
        "the call reaches the hub and is held"
    );
    go.send(()).unwrap();
    caller.join().unwrap();
    // Long enough for the closed connection to reach the hub's socket.
    std::thread::sleep(Duration::from_millis(100));
    let id = hub.enqueue(PROVIDER, "echo", json!({"message": "hi"}), None);

    let mut client = HubClient::connect(server.url()).await.unwrap();
    let task = tokio::time::timeout(Duration::from_secs(20), client.get_task(ask(TOKEN)))
        .await
        .expect("the task is not left with the caller that went away")
        .unwrap()
        .into_inner();
    assert_eq!(task.id, id);
    let info = hub.task(&id).unwrap();
    assert_eq!(info.state, TaskState::Leased);
    assert_eq!(
        info.deliveries, 1,
        "the answer that never left is not counted"
    );
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
    let (wait, latency) = (shown["wait_s"].as_f64(), shown["latency_s"].as_f64());
    assert!(
        matches!((wait, latency), (Some(w), Some(l)) if 0.0 <= w && w <= l),
        "the wait for a provider is part of the latency: {shown}"
    );
    admin.stop().await;
    server.stop().await;
}

/// The value of the sample `name{labels}` (a counter, a gauge, or untyped as `_sum` and
/// `_count` are); it must be there exactly once.
#[track_caller]
fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .filter_map(|s| match s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?} once in the scrape");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_a_real_provider_did_in_the_prometheus_text_format() {
    let admin_token = "admin-token-7f0c2a91";
    let hub = DevHub::builder()
        .token(TOKEN)
        .admin_token(admin_token)
        .hold(Duration::from_millis(200))
        .keep(3)
        .build();
    let server = hub.serve(loopback()).await.unwrap();
    let admin = hub.serve_admin(loopback()).await.unwrap();
    let basic = "basic-provider";
    let unserved = "nobody-serves-this";
    // Four answers (one for an action `basic` does not have) with three kept: one forgotten.
    hub.enqueue(basic, "echo", json!({"message": "hi"}), None);
    hub.enqueue(basic, "add_numbers", json!({"a": 1, "b": 2}), None);
    hub.enqueue(basic, "greet", json!({"name": "Ada"}), None);
    hub.enqueue(basic, "no_such_action", json!({}), None);
    hub.enqueue(unserved, "echo", json!({"message": "waits"}), None);
    hub.enqueue(unserved, "echo", json!({"message": "waits too"}), None);

    let provider = RunningProvider::start(Basic, config(&server.url()).build().unwrap());
    assert!(
        eventually(Duration::from_secs(20), || async { hub.stats().done == 4 }).await,
        "basic answers its four tasks: {:?}",
        hub.stats()
    );
    provider.stop().await.unwrap();

    // A refused token and a duplicate result, from a raw client, after the provider is gone.
    let mut client = HubClient::connect(server.url()).await.unwrap();
    let refused = client
        .get_task(ProviderRequest {
            provider: basic.into(),
            auth_token: "wrong-token".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let answered = hub
        .tasks()
        .into_iter()
        .find(|t| t.state == TaskState::Done)
        .expect("an answer is kept");
    client
        .submit_task_result(TaskResult {
            id: answered.id.clone(),
            provider: basic.into(),
            auth_token: TOKEN.into(),
            status: "success".into(),
            action: answered.action.clone(),
            payload: "{}".into(),
            result: json!({"status": "success", "message": "again", "data": {}}).to_string(),
            account: "{}".into(),
        })
        .await
        .expect("a duplicate is answered without an error");

    let http = reqwest::Client::new();
    let url = format!("http://{}/metrics", admin.addr());
    let without_token = http.get(&url).send().await.unwrap();
    assert_eq!(
        without_token.status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "/metrics is behind the admin token like the rest of the admin API"
    );
    let response = http
        .get(&url)
        .bearer_auth(admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let stats = hub.stats();

    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let families: BTreeMap<&str, &str> = scrape
        .docs
        .iter()
        .map(|(name, help)| (name.as_str(), help.as_str()))
        .collect();
    assert_eq!(
        families.keys().copied().collect::<Vec<_>>(),
        [
            "arbv_hub_duplicate_results_total",
            "arbv_hub_get_task_calls_total",
            "arbv_hub_queue_depth",
            "arbv_hub_refused_tokens_total",
            "arbv_hub_result_latency_seconds",
            "arbv_hub_results_total",
            "arbv_hub_submit_calls_total",
            "arbv_hub_tasks",
            "arbv_hub_tasks_enqueued_total",
            "arbv_hub_tasks_forgotten_total",
        ],
        "every metric has its HELP, and there are no others:\n{text}"
    );
    assert!(families.values().all(|help| !help.trim().is_empty()));

    // Each provider a task was queued for, and no other label value: no task id, and not the
    // provider name a refused call claimed.
    assert_eq!(
        sample(&scrape, "arbv_hub_queue_depth", &[("provider", basic)]),
        0.0
    );
    assert_eq!(
        sample(&scrape, "arbv_hub_queue_depth", &[("provider", unserved)]),
        2.0
    );
    assert_eq!(
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == "arbv_hub_queue_depth")
            .count(),
        2
    );
    for (state, held) in [("queued", 2.0), ("leased", 0.0), ("done", 3.0)] {
        assert_eq!(
            sample(&scrape, "arbv_hub_tasks", &[("state", state)]),
            held,
            "{state}"
        );
    }
    let counters = [
        ("arbv_hub_tasks_enqueued_total", 6.0),
        ("arbv_hub_results_total", 4.0),
        ("arbv_hub_tasks_forgotten_total", 1.0),
        ("arbv_hub_duplicate_results_total", 1.0),
        ("arbv_hub_submit_calls_total", 5.0),
        ("arbv_hub_refused_tokens_total", 1.0),
    ];
    for (name, expected) in counters {
        assert_eq!(sample(&scrape, name, &[]), expected, "{name}");
    }
    // The provider's polls are as many as it made; the metric and `/stats` share one count.
    let polls = sample(&scrape, "arbv_hub_get_task_calls_total", &[]);
    assert!(
        polls >= 2.0,
        "the provider's polls and the refused one: {polls}"
    );
    assert_eq!(polls, stats.get_task_calls as f64);
    assert_eq!(
        (
            stats.done,
            stats.forgotten,
            stats.duplicate_results,
            stats.submit_calls
        ),
        (4, 1, 1, 5)
    );

    // One observation per first result, each under a minute on loopback.
    let latency = "arbv_hub_result_latency_seconds";
    assert_eq!(sample(&scrape, &format!("{latency}_count"), &[]), 4.0);
    let sum = sample(&scrape, &format!("{latency}_sum"), &[]);
    assert!(sum > 0.0 && sum < 4.0 * 20.0, "{sum}");
    let buckets = scrape
        .samples
        .iter()
        .find_map(|s| match &s.value {
            Sample::Histogram(buckets) if s.metric == latency => Some(buckets.clone()),
            _ => None,
        })
        .expect("the latency histogram's buckets");
    let bounds: Vec<f64> = buckets.iter().map(|b| b.less_than).collect();
    assert_eq!(
        bounds,
        [
            0.001,
            0.0025,
            0.005,
            0.01,
            0.025,
            0.05,
            0.1,
            0.25,
            0.5,
            1.0,
            2.5,
            5.0,
            10.0,
            30.0,
            60.0,
            f64::INFINITY
        ]
    );
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    assert_eq!(buckets[buckets.len() - 2].count, 4.0, "all within a minute");
    assert_eq!(buckets[buckets.len() - 1].count, 4.0);

    if let Some(promtool) = Promtool::find() {
        assert_passed("the dev hub's /metrics", &promtool.check_metrics(&text));
    }
    admin.stop().await;
    server.stop().await;
}

/// Submits a result for `task` asking for a hand-back; returns the answer's task when the hub
/// marked it as handed back.
async fn submit_asking_for_more(
    client: &mut HubClient<tonic::transport::Channel>,
    task: &Task,
) -> Option<Task> {
    use arbv_provider_core::wire::{
        ACCEPT_HAND_BACK, HAND_BACK, hand_back_flag_raised, raise_hand_back_flag,
    };
    let envelope = json!({"status": "success", "message": "done", "data": {}});
    let mut request = tonic::Request::new(result(task, &envelope));
    raise_hand_back_flag(request.metadata_mut(), ACCEPT_HAND_BACK);
    let answer = client.submit_task_result(request).await.unwrap();
    let handed_back = hand_back_flag_raised(answer.metadata(), HAND_BACK);
    let next = answer.into_inner();
    if handed_back {
        Some(next)
    } else {
        assert!(
            next.id.is_empty(),
            "an answer not marked as a hand-back carries no task"
        );
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_task_is_handed_back_only_by_a_hub_that_does_it() {
    for hand_back in [true, false] {
        let hub = DevHub::builder()
            .token(TOKEN)
            .hold(Duration::ZERO)
            .hand_back(hand_back)
            .build();
        let server = hub.serve(loopback()).await.unwrap();
        let mut client = HubClient::connect(server.url()).await.unwrap();
        let first = hub.enqueue(PROVIDER, "echo", json!({"message": "one"}), None);
        let second = hub.enqueue(PROVIDER, "echo", json!({"message": "two"}), None);
        let task = client.get_task(ask(TOKEN)).await.unwrap().into_inner();
        assert_eq!(task.id, first);
        let next = submit_asking_for_more(&mut client, &task).await;
        if hand_back {
            assert_eq!(
                next.map(|t| t.id),
                Some(second),
                "handed back with the result"
            );
            assert_eq!(hub.stats().get_task_calls, 1);
        } else {
            assert!(next.is_none(), "hand_back(false): no task in the answer");
            assert_eq!(
                hub.task(&second).unwrap().state,
                TaskState::Queued,
                "still waiting"
            );
            let polled = client.get_task(ask(TOKEN)).await.unwrap().into_inner();
            assert_eq!(polled.id, second, "the next task comes from GetTask");
        }
        server.stop().await;
    }
}
