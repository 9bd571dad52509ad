//! Blocking actions (plain `fn`) end to end: they do not stall a current-thread runtime, at most
//! the provider's concurrency of them hold a thread, a task answered before its action got a
//! thread never starts it, and one that never returns does not keep the runtime from being
//! dropped. One binary of its own, since it installs the global log subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::Duration;

use arbv_provider::dev_hub::TaskState;
use arbv_provider::{ActionResponse, Provider, ProviderDef};
use arbv_tests::{RunningProvider, config, eventually, start_hub};
use serde::Deserialize;
use serde_json::{Value, json};

const PROVIDER: &str = "blocky";

/// A door blocking actions wait at, and what they did there.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    opened: Condvar,
}

#[derive(Default, Clone, Copy, Debug)]
struct GateState {
    open: bool,
    started: usize,
    running: usize,
    most_running: usize,
    finished: usize,
}

impl Gate {
    fn pass(&self) {
        let mut state = self.state.lock().unwrap();
        state.started += 1;
        state.running += 1;
        state.most_running = state.most_running.max(state.running);
        while !state.open {
            state = self.opened.wait(state).unwrap();
        }
        state.running -= 1;
        state.finished += 1;
    }

    fn open(&self) {
        self.state.lock().unwrap().open = true;
        self.opened.notify_all();
    }

    fn seen(&self) -> GateState {
        *self.state.lock().unwrap()
    }
}

/// Opens its gate when dropped, also when a test fails: a runtime dropped while a blocking
/// action waits at a closed gate would wait with it.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Gates by name, one set per test (the tests of this binary run in parallel).
fn gate(name: &str) -> Arc<Gate> {
    static GATES: LazyLock<Mutex<HashMap<String, Arc<Gate>>>> = LazyLock::new(Mutex::default);
    GATES
        .lock()
        .unwrap()
        .entry(name.to_owned())
        .or_default()
        .clone()
}

#[derive(Deserialize, schemars::JsonSchema)]
struct AtGate {
    gate: String,
}

struct Blocky;

impl Provider for Blocky {
    fn definition() -> ProviderDef<Self> {
        let mut def = ProviderDef::new(PROVIDER);
        let wait_at_gate = |_this, mut call: arbv_provider::Call| {
            let p: AtGate = call.payload()?;
            gate(&p.gate).pass();
            Ok(ActionResponse::success(json!({ "passed": p.gate })))
        };
        def.blocking_action("patient", wait_at_gate)
            .payload::<AtGate>()
            .timeout(Duration::from_secs(60));
        def.blocking_action("held", wait_at_gate)
            .payload::<AtGate>()
            .timeout(Duration::from_secs(5));
        def.blocking_action("hasty", wait_at_gate)
            .payload::<AtGate>()
            .timeout(Duration::from_millis(500));
        def.action("echo", |_this, _call| async move {
            Ok(ActionResponse::success(json!({ "echo": true })))
        });
        def
    }
}

/// Every log line of this binary, from the first test that asks.
fn logs() -> &'static arbv_tests::logs::LogBuffer {
    arbv_tests::logs::global(tracing::Level::DEBUG)
}

fn log_lines_with(words: &[&str]) -> Vec<String> {
    logs().lines_with(words)
}

#[tokio::test(flavor = "current_thread")]
async fn a_blocking_action_does_not_stall_a_current_thread_runtime() {
    logs();
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = RunningProvider::start(
        Blocky,
        config(&server.url()).concurrency(2).build().unwrap(),
    );
    let door = gate("current-thread");
    let _open_at_the_end = OpenOnDrop(door.clone());
    // Were the action run on this runtime's one thread, nothing here would run again until the
    // door opens: this opens it after a minute so that such a failure ends, and shows below.
    let unstick = door.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        unstick.open();
    });

    let blocking = hub.enqueue(PROVIDER, "patient", json!({"gate": "current-thread"}), None);
    assert!(
        eventually(Duration::from_secs(30), || async {
            door.seen().started == 1
        })
        .await,
        "the blocking action starts"
    );
    let echo_id = hub.enqueue(PROVIDER, "echo", json!({}), None);
    let answer = hub
        .wait_result(&echo_id, Duration::from_secs(30))
        .await
        .expect("the echo is answered while the blocking action waits");
    assert_eq!(answer["status"], "success", "{answer}");
    assert_eq!(
        door.seen().finished,
        0,
        "the echo was answered while the blocking action still ran on its own thread"
    );
    assert_eq!(hub.task(&blocking).unwrap().state, TaskState::Leased);

    door.open();
    let done = hub
        .wait_result(&blocking, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done["status"], "success", "{done}");
    provider.stop().await.unwrap();
    server.stop().await;
}

async fn answer(hub: &arbv_provider::dev_hub::DevHub, id: &str) -> Value {
    hub.wait_result(id, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("task {id} is answered within 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_threads_are_bounded_and_an_answered_task_never_starts() {
    logs();
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = RunningProvider::start(
        Blocky,
        config(&server.url()).concurrency(2).build().unwrap(),
    );
    let door = gate("bound");
    let _open_at_the_end = OpenOnDrop(door.clone());

    // Two actions start and outlive their 5 s timeout: their threads keep both slots.
    let stuck: Vec<String> = (0..2)
        .map(|_| hub.enqueue(PROVIDER, "held", json!({"gate": "bound"}), None))
        .collect();
    assert!(
        eventually(Duration::from_secs(4), || async {
            door.seen().started == 2
        })
        .await,
        "both start within their timeout: {:?}",
        door.seen()
    );
    for id in &stuck {
        let e = answer(&hub, id).await;
        assert_eq!(e["message"], "Task execution timed out after 5s", "{e}");
    }
    // The lanes are free again, the threads are not: two more tasks wait for a thread, are
    // answered at their deadline, and their actions never start.
    let waiting: Vec<String> = (0..2)
        .map(|_| hub.enqueue(PROVIDER, "hasty", json!({"gate": "bound"}), None))
        .collect();
    for id in &waiting {
        let e = answer(&hub, id).await;
        assert_eq!(e["message"], "Task execution timed out after 0.5s", "{e}");
    }
    let seen = door.seen();
    assert_eq!(
        (seen.started, seen.most_running),
        (2, 2),
        "no third thread: {seen:?}"
    );
    for id in &stuck {
        assert_eq!(
            log_lines_with(&["WARN", id, "held", "outlived its task"]).len(),
            1,
            "a warning names the task whose thread outlived it"
        );
    }
    assert!(
        !log_lines_with(&["WARN", "waits for a thread", "hasty"]).is_empty(),
        "a task that waits for a held slot says so"
    );

    // Once the stuck actions return, their slots serve new tasks.
    door.open();
    assert!(
        eventually(Duration::from_secs(30), || async {
            door.seen().finished == 2
        })
        .await
    );
    for id in &stuck {
        assert!(
            eventually(Duration::from_secs(10), || async {
                log_lines_with(&["WARN", id, "returned after its task was answered"]).len() == 1
            })
            .await,
            "the late return of {id} is logged"
        );
    }
    let e = answer(
        &hub,
        &hub.enqueue(PROVIDER, "hasty", json!({"gate": "bound"}), None),
    )
    .await;
    assert_eq!(e["status"], "success", "{e}");
    assert_eq!(door.seen().started, 3);

    provider.stop().await.unwrap();
    server.stop().await;
}

#[test]
fn a_blocking_action_that_never_returns_does_not_hold_the_exit() {
    logs();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let interrupted = runtime.block_on(async {
            let (hub, server) = start_hub(Duration::from_millis(200)).await;
            let provider = RunningProvider::start(
                Blocky,
                config(&server.url())
                    .drain_timeout(Duration::from_millis(300))
                    .build()
                    .unwrap(),
            );
            let door = gate("never-opened");
            let id = hub.enqueue(PROVIDER, "patient", json!({"gate": "never-opened"}), None);
            assert!(
                eventually(Duration::from_secs(30), || async {
                    door.seen().started == 1
                })
                .await
            );
            provider.stop().await.unwrap();
            let envelope = answer(&hub, &id).await;
            server.stop().await;
            envelope
        });
        // tokio's blocking pool would make this wait for the action, that is forever.
        drop(runtime);
        done.send(interrupted).unwrap();
    });
    let interrupted = finished
        .recv_timeout(Duration::from_secs(120))
        .expect("serve returned and the runtime was dropped while the action still blocks");
    assert_eq!(
        interrupted["data"]["response"]["error_code"], "SHUTDOWN",
        "{interrupted}"
    );
    assert_eq!(gate("never-opened").seen().finished, 0);
}
