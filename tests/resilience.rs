//! The runtime under real conditions: a wrong token, a hub that comes up late or restarts,
//! shutdown with tasks in flight, a thousand tasks at once, an idle hub, results the hub refuses
//! or took without the provider hearing, and a hub that is not ours. All over real gRPC on
//! loopback. The scenarios named `…::dev_hub` / `…::contract_hub` run once against each hub,
//! behind the recording proxy of `arbv_tests::hubs`, and count exactly-once on the test's side.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arbv_provider::dev_hub::{DevHub, TaskState};
use arbv_provider_core::Metrics;
use arbv_provider_core::proto::hub_server::Hub;
use arbv_provider_core::proto::{ProviderRequest, Task, TaskResult};
use arbv_tests::contract_hub::{ContractHub, NoTask};
use arbv_tests::hubs::{HubKind, TestHub};
use arbv_tests::{
    HandWritten, PROVIDER, RunningProvider, TOKEN, call, config, eventually, on_both_hubs,
    serve_hub, start_hub,
};
use serde_json::{Value, json};

/// How long a test waits for what should happen in well under a second.
const LIMIT: Duration = Duration::from_secs(20);

/// A provider of the test hub with `concurrency` lanes, and its counters.
fn provider_of(hub: &TestHub, concurrency: usize) -> (RunningProvider, Metrics) {
    let runtime = arbv_provider::Runtime::new(
        HandWritten,
        config(&hub.url()).concurrency(concurrency).build().unwrap(),
    )
    .unwrap();
    let stats = runtime.metrics();
    (RunningProvider::start_runtime(runtime), stats)
}

on_both_hubs!(a_hub_restart_mid_run_loses_no_result);
async fn a_hub_restart_mid_run_loses_no_result(kind: HubKind) {
    let mut hub = TestHub::start(kind).await;
    let (provider, stats) = provider_of(&hub, 4);
    let before = hub.enqueue("echo", json!({"message": "before"}));
    assert!(hub.wait_taken(std::slice::from_ref(&before), LIMIT).await);

    // A task in flight while the hub goes away: its result must wait for the hub.
    let in_flight = hub.enqueue("sleep", json!({"ms": 300}));
    assert!(eventually(LIMIT, || async { hub.handed_out().contains(&in_flight) }).await);
    hub.stop().await;
    // Work queued while the hub is down; the hub keeps its tasks over the restart.
    let queued: Vec<String> = (0..5)
        .map(|i| hub.enqueue("echo", json!({"message": format!("during {i}")})))
        .collect();
    // The outage outlasts the action: its result is ready while there is no hub to take it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restarted = tokio::time::Instant::now();
    hub.restart().await;

    let mut all = vec![before, in_flight.clone()];
    all.extend(queued.iter().cloned());
    assert!(hub.wait_taken(&all, LIMIT).await, "{:?}", hub.submits());
    provider.stop().await.unwrap();
    hub.assert_answered_once(&all);
    let sent = hub.submits_of(&in_flight);
    assert!(
        sent.iter()
            .filter(|s| s.answer.is_ok())
            .all(|s| s.at >= restarted),
        "the in-flight result was kept until the hub came back: {sent:?}"
    );
    assert_eq!(
        hub.taken_envelope(&in_flight).unwrap()["data"]["response"],
        json!({"slept_ms": 300})
    );
    for (i, id) in queued.iter().enumerate() {
        let e = hub.taken_envelope(id).unwrap();
        assert_eq!(e["data"]["response"]["echo"], format!("during {i}"));
    }
    assert_eq!(
        (
            stats.snapshot().results.taken,
            stats.snapshot().results.lost
        ),
        (7, 0)
    );
}

on_both_hubs!(shutdown_answers_the_tasks_in_flight_and_takes_no_more);
async fn shutdown_answers_the_tasks_in_flight_and_takes_no_more(kind: HubKind) {
    let hub = TestHub::start(kind).await;
    let (provider, stats) = provider_of(&hub, 8);
    let ids: Vec<String> = (0..8)
        .map(|_| hub.enqueue("sleep", json!({"ms": 1500})))
        .collect();
    assert!(eventually(LIMIT, || async { hub.handed_out().len() == 8 }).await);
    let later = hub.enqueue("echo", json!({"message": "after shutdown began"}));
    provider
        .stop()
        .await
        .expect("serve returns Ok after draining");
    // Every task in flight answered once; the one queued during the drain never handed out,
    // not even back in a submit answer.
    hub.assert_answered_once(&ids);
    assert!(!hub.handed_out().contains(&later));
    for id in &ids {
        assert_eq!(hub.taken_envelope(id).unwrap()["status"], "success");
    }
    assert_eq!(
        (
            stats.snapshot().results.taken,
            stats.snapshot().results.lost
        ),
        (8, 0)
    );
}

on_both_hubs!(a_thousand_tasks_at_concurrency_eight_are_each_answered_once);
async fn a_thousand_tasks_at_concurrency_eight_are_each_answered_once(kind: HubKind) {
    let hub = TestHub::start(kind).await;
    let (provider, stats) = provider_of(&hub, 8);
    let ids: Vec<String> = (0..1000)
        .map(|i| hub.enqueue("echo", json!({"message": format!("m{i}")})))
        .collect();
    let all_taken = hub.wait_taken(&ids, Duration::from_secs(120)).await;
    provider.stop().await.unwrap();
    assert!(all_taken, "{} results taken", hub.submits().len());
    hub.assert_answered_once(&ids);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            hub.taken_envelope(id).unwrap()["data"]["response"]["echo"],
            format!("m{i}"),
            "each answer is its own task's"
        );
    }
    assert_eq!(
        (
            stats.snapshot().tasks_received(),
            stats.snapshot().results.taken,
            stats.snapshot().results.lost
        ),
        (1000, 1000, 0)
    );
}

on_both_hubs!(an_idle_provider_polls_a_bounded_number_of_times_whatever_its_concurrency);
async fn an_idle_provider_polls_a_bounded_number_of_times_whatever_its_concurrency(kind: HubKind) {
    // A hub that answers "no task" at once: the worst case for polling.
    let hub = TestHub::start_answering_at_once(kind).await;
    let (provider, _) = provider_of(&hub, 32);
    let wake = hub.enqueue("echo", json!({"message": "wake"}));
    assert!(hub.wait_taken(&[wake], LIMIT).await);
    // Let the lanes that were busy go back to sleep, then watch two idle seconds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = hub.get_task_calls();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polls = hub.get_task_calls() - before;
    // The idle pause is capped at 50 ms: at most 20 polls a second from one scout, not 32 lanes.
    assert!(polls <= 45, "{polls} polls in 2 s while idle");
    assert!(polls >= 10, "the scout keeps polling: {polls}");
    // And work is picked up after the idle spell.
    let again = hub.enqueue("echo", json!({"message": "again"}));
    assert!(hub.wait_taken(&[again], LIMIT).await);
    provider.stop().await.unwrap();
}

on_both_hubs!(a_result_whose_answer_was_lost_is_sent_once_more_and_the_provider_goes_on);
async fn a_result_whose_answer_was_lost_is_sent_once_more_and_the_provider_goes_on(kind: HubKind) {
    let hub = TestHub::start(kind).await;
    // The hub takes the first submit, and the provider never hears so: it sends it again.
    let twice = hub.enqueue("echo", json!({"message": "once"}));
    hub.lose_next_answer(&twice);
    let (provider, stats) = provider_of(&hub, 2);
    assert!(
        hub.wait_submits(LIMIT, |submits| submits
            .iter()
            .filter(|s| s.id == twice)
            .count()
            == 2)
            .await,
        "{:?}",
        hub.submits()
    );
    let after: Vec<String> = (0..3)
        .map(|i| hub.enqueue("echo", json!({"message": format!("after {i}")})))
        .collect();
    assert!(hub.wait_taken(&after, LIMIT).await);
    assert!(!provider.is_finished(), "the provider goes on");
    provider.stop().await.unwrap();

    let sent = hub.submits_of(&twice);
    assert_eq!(sent.len(), 2, "sent again once, not in a loop: {sent:?}");
    assert!(sent.iter().all(|s| s.answer.is_ok()), "{sent:?}");
    assert_eq!(
        sent[0].result, sent[1].result,
        "the same result, not a rerun"
    );
    assert_eq!(
        hub.handed_out().iter().filter(|id| **id == twice).count(),
        1
    );
    if let Some(dev) = hub.dev_hub() {
        // The dev hub keeps the first result and counts the second as a duplicate.
        let first: Value = serde_json::from_str(&sent[0].result).unwrap();
        assert_eq!(dev.task(&twice).unwrap().result, Some(first));
        assert_eq!(dev.stats().duplicate_results, 1);
    }
    assert_eq!(
        (
            stats.snapshot().tasks_received(),
            stats.snapshot().results.taken,
            stats.snapshot().results.lost
        ),
        (4, 4, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_for_a_task_the_dev_hub_forgot_is_refused_once_and_given_up() {
    // A dev hub keeps its tasks in memory: after a restart it knows none of them, and answers
    // NOT_FOUND for a result still in flight. That is final: given up, counted, not retried.
    let mut hub = TestHub::start(HubKind::Dev).await;
    let (provider, stats) = provider_of(&hub, 2);
    let in_flight = hub.enqueue("sleep", json!({"ms": 1000}));
    assert!(eventually(LIMIT, || async { hub.handed_out().contains(&in_flight) }).await);
    hub.restart_forgetting().await;
    assert!(eventually(LIMIT, || async { stats.snapshot().results.refused == 1 }).await);
    let next = hub.enqueue("echo", json!({"message": "next"}));
    assert!(hub.wait_taken(&[next], LIMIT).await, "the provider goes on");
    provider.stop().await.unwrap();
    let sent: Vec<_> = hub.submits_of(&in_flight);
    let refused: Vec<_> = sent
        .iter()
        .filter(|s| s.answer == Err(tonic::Code::NotFound))
        .collect();
    assert_eq!(refused.len(), 1, "refused once, not retried: {sent:?}");
    assert!(sent.iter().all(|s| s.answer.is_err()), "{sent:?}");
    assert_eq!(
        (
            stats.snapshot().results.lost,
            stats.snapshot().results.refused
        ),
        (1, 1)
    );
}

/// Moves tokio's paused clock on by `total`, a millisecond at a time. Left to itself the paused
/// clock jumps to the next timer whenever every task waits, and a task waiting on a loopback
/// answer the kernel has not delivered yet waits too: the jump could fire a call's timeout. In
/// steps, such a wait costs a millisecond, and the timers fire in order, within a millisecond.
async fn run_clock_for(total: Duration) {
    let step = Duration::from_millis(1);
    let mut passed = Duration::ZERO;
    while passed < total {
        tokio::time::advance(step).await;
        passed += step;
    }
}

/// A wrong token, for ten minutes on tokio's paused clock, over real gRPC on loopback: the
/// provider's backoff runs to its cap in seconds.
async fn a_wrong_token_is_retried_with_growing_pauses_up_to_the_cap(kind: HubKind) {
    const LANES: usize = 8;
    let hub = TestHub::start(kind).await;
    let id = hub.enqueue("echo", json!({"message": "x"}));
    let provider = RunningProvider::start(
        HandWritten,
        arbv_provider::Config::builder()
            .auth_token("not-the-token")
            .hub_url(hub.url())
            .concurrency(LANES)
            .build()
            .unwrap(),
    );
    run_clock_for(Duration::from_secs(600)).await;
    let refused = hub.refused_polls();
    assert!(
        hub.handed_out().is_empty(),
        "no task is given to a refused token ({id})"
    );
    provider.stop().await.unwrap();

    // Each lane asks once at start; then one lane retries, after pauses from 100 ms doubling up
    // to the 30 s cap, with jitter of up to as much again. A hot loop would make thousands.
    let first = refused[0];
    let burst = refused
        .iter()
        .take_while(|at| at.duration_since(first) < Duration::from_millis(100))
        .count();
    assert!(burst <= LANES, "{burst} refusals at start");
    let pauses: Vec<Duration> = refused[burst - 1..]
        .windows(2)
        .map(|pair| pair[1].duration_since(pair[0]))
        .collect();
    let cap = Duration::from_secs(30);
    // The clock moves in millisecond steps: a timer fires up to a step late, over many pauses.
    const CLOCK_STEPS: Duration = Duration::from_millis(50);
    let at_cap = pauses
        .iter()
        .position(|pause| *pause >= cap)
        .unwrap_or_else(|| panic!("the pauses reach the 30 s cap: {pauses:?}"));
    assert!(
        pauses[0] >= Duration::from_millis(100) && pauses[0] < Duration::from_secs(1),
        "the first retry comes soon: {pauses:?}"
    );
    assert!(
        pauses[..at_cap].windows(2).all(|pair| pair[1] > pair[0]),
        "the pauses grow: {pauses:?}"
    );
    assert!(
        pauses[at_cap..]
            .iter()
            .all(|pause| *pause >= cap && *pause <= cap * 2 + CLOCK_STEPS),
        "then stay at the cap (30 s, jitter up to 60 s), and retries go on: {pauses:?}"
    );
    assert!(
        pauses.len() - at_cap >= 5,
        "ten minutes see several retries at the cap: {pauses:?}"
    );
}

mod a_wrong_token_is_retried_with_growing_pauses_up_to_the_cap {
    use arbv_tests::hubs::HubKind;

    #[tokio::test(start_paused = true)]
    async fn dev_hub() {
        super::a_wrong_token_is_retried_with_growing_pauses_up_to_the_cap(HubKind::Dev).await;
    }

    #[tokio::test(start_paused = true)]
    async fn contract_hub() {
        super::a_wrong_token_is_retried_with_growing_pauses_up_to_the_cap(HubKind::Contract).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_is_not_up_at_start_is_reached_when_it_comes_up() {
    // No hub on the port yet: whatever connects there is hung up on at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap();
    let provider = RunningProvider::start(
        HandWritten,
        config(&format!("http://{port}")).build().unwrap(),
    );
    // Observed, not slept on: the provider tries, is refused, and tries again.
    for attempt in 1..=2 {
        let (socket, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
            .await
            .unwrap_or_else(|_| panic!("connection attempt {attempt} never came"))
            .unwrap();
        drop(socket);
    }
    drop(listener);
    let hub = DevHub::builder().token(TOKEN).build();
    let server = hub.serve(port).await.unwrap();
    let e = call(&hub, "echo", json!({"message": "late"}), None).await;
    assert_eq!(e["data"]["response"], json!({"echo": "late"}));
    provider.stop().await.unwrap();
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

/// Eight lanes share one connection. When the hub restarts, the lanes whose calls fail meanwhile
/// do not each make one: the first makes it, the others take it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lanes_share_one_connection_and_one_replaces_it_after_a_restart() {
    let hub = ContractHub::builder(TOKEN).build();
    let server = hub.serve().await;
    let addr = server.addr();
    let provider = RunningProvider::start(
        HandWritten,
        config(&format!("{addr}")).concurrency(8).build().unwrap(),
    );
    let first = sleeps(&hub, 16, 20);
    assert!(hub.wait_results(first.len(), LIMIT).await);
    assert_eq!(hub.connections(), 1, "eight lanes, one connection");

    server.stop().await;
    // Long enough for every lane to find the hub gone and back off at least once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = hub.serve_on(addr).await;
    for i in 0..16 {
        hub.push(&format!("after-{i}"), "echo", r#"{"message":"back"}"#, "");
    }
    assert!(hub.wait_results(first.len() + 16, LIMIT).await);
    provider.stop().await.unwrap();
    assert_eq!(
        hub.connections(),
        2,
        "one new connection for the eight lanes after the restart"
    );
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
    let stats = runtime.metrics();
    let provider = RunningProvider::start_runtime(runtime);
    assert!(
        eventually(Duration::from_secs(10), || async {
            stats.snapshot().tasks_received() == 4
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
    let stats = runtime.metrics();
    let provider = RunningProvider::start_runtime(runtime);
    assert!(
        eventually(Duration::from_secs(10), || async {
            stats.snapshot().tasks_received() == 1
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
        stats.snapshot().results.lost,
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

/// A "hub" that takes the connection and never answers anything: not the HTTP/2 settings, not
/// the `grpc-timeout` of `GetTask`. The provider's own deadline ends each poll, and it goes on
/// polling.
#[tokio::test]
async fn a_poll_the_hub_never_answers_ends_at_the_poll_deadline() {
    let captured = arbv_tests::logs::LogBuffer::default();
    let _logs = captured.capture_thread(tracing::Level::DEBUG);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let provider = RunningProvider::start(
        HandWritten,
        config(&format!("http://{addr}"))
            .concurrency(1)
            .poll_deadline(Duration::from_millis(500))
            .build()
            .unwrap(),
    );
    let ended_at_deadline = || {
        captured
            .lines_with(&["GetTask did not answer within its deadline of 500ms"])
            .len()
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            ended_at_deadline() >= 2
        })
        .await,
        "each poll ends at its deadline and the next one goes out:\n{}",
        captured.text()
    );
    assert!(started.elapsed() >= Duration::from_millis(1000));
    provider.stop().await.unwrap();
    silent.abort();
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
    let (url, server) = serve_hub(hub.clone()).await;
    let runtime = arbv_provider::Runtime::new(
        HandWritten,
        config(&url)
            .drain_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
    .unwrap();
    let stats = runtime.metrics();
    let provider = RunningProvider::start_runtime(runtime);
    assert!(
        eventually(Duration::from_secs(10), || async {
            hub.given.load(Ordering::SeqCst) && stats.snapshot().tasks_received() == 1
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
    assert_eq!(stats.snapshot().results.lost, 1);
    server.abort();
}
