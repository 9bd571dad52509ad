//! Rate limits: the `rate_limit` example and a provider declaring every attribute form.
//!
//! Exact admission counts are checked in process, through `Runtime::run_task`, on tokio's paused
//! clock (the monitors read tokio's clock): a burst is decided at one instant, however loaded
//! the machine, and time moves only when the test says. Each form is then served again through
//! the dev hub over real gRPC, where a burst takes wall time: there the bounds are derived from
//! how long the burst took (a sliding window of N per period admits at most N for each period
//! the burst touched), so a slow run admits more without failing, while a limit that admits
//! everything still fails unless the burst took several periods.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arbv_provider::dev_hub::DevHub;
use arbv_provider::prelude::*;
use arbv_provider::rate_limit::{RateLimitMonitor, RateSpec, SlidingWindowRateLimitMonitor};
use arbv_provider::{IncomingTask, Runtime};
use arbv_tests::{RunningProvider, TOKEN, config, start_hub};
use futures_util::future::join_all;
use rate_limit::RateLimited;

const EXAMPLE: &str = "rate-limit-provider";

/// A burst's answers and how long it took, from the first enqueue to the last answer: every
/// admission decision of the burst fell within `span`.
struct Burst {
    answers: Vec<Value>,
    span: Duration,
}

impl Burst {
    fn count(&self, status: &str) -> usize {
        count(&self.answers, status)
    }

    fn limited(&self) -> impl Iterator<Item = &Value> {
        self.answers.iter().filter(|e| e["status"] == "limit")
    }

    /// Asserts `success` within `[least, most]` and every other answer `limit`.
    #[track_caller]
    fn assert_admitted(&self, least: usize, most: usize, what: &str) {
        let admitted = self.count("success");
        assert!(
            (least..=most).contains(&admitted),
            "{what}: {admitted} admitted of {} in {:?}, expected {least}..={most}",
            self.answers.len(),
            self.span
        );
        assert_eq!(
            admitted + self.count("limit"),
            self.answers.len(),
            "{what}: only success and limit answers"
        );
    }
}

/// At most `count` in any window of `period`: over `span`, `count` for each period touched.
fn window_bound(count: usize, period: Duration, span: Duration) -> usize {
    count * (1 + (span.as_nanos() / period.as_nanos()) as usize)
}

/// A bucket of `burst` refilled once per `refill`: the burst, and one more per refill begun.
fn bucket_bound(burst: usize, refill: Duration, span: Duration) -> usize {
    burst + span.as_nanos().div_ceil(refill.as_nanos()) as usize
}

async fn burst(
    hub: &DevHub,
    provider: &str,
    action: &str,
    payloads: &[Value],
    account: Option<Value>,
) -> Burst {
    let started = std::time::Instant::now();
    let ids: Vec<String> = payloads
        .iter()
        .map(|payload| hub.enqueue(provider, action, payload.clone(), account.clone()))
        .collect();
    let mut answers = Vec::new();
    for id in ids {
        answers.push(
            hub.wait_result(&id, Duration::from_secs(20))
                .await
                .expect("every task is answered"),
        );
    }
    Burst {
        answers,
        span: started.elapsed(),
    }
}

fn empty(n: usize) -> Vec<Value> {
    vec![json!({}); n]
}

fn count(answers: &[Value], status: &str) -> usize {
    answers.iter().filter(|e| e["status"] == status).count()
}

fn statuses(answers: &[Value]) -> (usize, usize) {
    (count(answers, "success"), count(answers, "limit"))
}

/// A provider ready to run tasks in process.
fn in_process<P: Provider>(provider: P) -> Runtime {
    let config = Config::builder().auth_token(TOKEN).build().unwrap();
    Runtime::new(provider, config).expect("the provider compiles")
}

/// Runs `payloads` through `action` at once, each a task of its own, and returns the envelopes.
async fn dispatch_all(
    runtime: &Runtime,
    action: &str,
    payloads: &[Value],
    account: Option<&Value>,
) -> Vec<Value> {
    let tasks = payloads.iter().enumerate().map(|(i, payload)| {
        runtime.run_task(IncomingTask {
            id: format!("task-{i}"),
            action: action.to_owned(),
            payload: payload.to_string().into(),
            account: account.map(|a| a.to_string().into()).unwrap_or_default(),
        })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|done| serde_json::from_str(&done.result).expect("the result is JSON"))
        .collect()
}

/// The message of a `limit` answer that says to wait `wait` seconds.
fn limit_message(wait: f64) -> String {
    let answer = ActionResponse::limit(Duration::from_secs_f64(wait));
    answer
        .message()
        .expect("a limit answer has a message")
        .to_owned()
}

/// Checks a `limit` answer of the example's `"2/s"` default, refused at the instant the window
/// filled (so `wait_time` is the whole window).
#[track_caller]
fn assert_default_limit(e: &Value, wait: f64) {
    let r = &e["data"]["response"];
    assert_eq!(r["wait_time"].as_f64(), Some(wait), "{e}");
    assert_eq!(e["message"].as_str().unwrap(), limit_message(wait));
    assert_eq!(
        (
            r["limit"].as_u64(),
            r["current_count"].as_u64(),
            r["window_size"].as_f64()
        ),
        (Some(2), Some(2), Some(1.0))
    );
}

#[tokio::test(start_paused = true)]
async fn in_process_the_example_admits_exactly_each_budget() {
    let example = in_process(RateLimited);

    // A burst of 10 under the provider's "2/s": 2 go, 8 are told to come back in 1 s.
    let answers = dispatch_all(&example, "default_action", &empty(10), None).await;
    assert_eq!(statuses(&answers), (2, 8));
    for e in answers.iter().filter(|e| e["status"] == "limit") {
        assert_default_limit(e, 1.0);
    }
    for e in answers.iter().filter(|e| e["status"] == "success") {
        assert_eq!(e["data"]["response"]["result"], "default_action");
        assert_eq!(e["data"]["response"]["pid"], std::process::id());
    }
    // 0.6 s on, the window is still full, and the wait is what is left of it.
    tokio::time::advance(Duration::from_millis(600)).await;
    let answers = dispatch_all(&example, "default_action", &empty(1), None).await;
    assert_default_limit(&answers[0], 0.4);
    // The window has slid past the first two: two more go.
    tokio::time::advance(Duration::from_millis(400)).await;
    let answers = dispatch_all(&example, "default_action", &empty(3), None).await;
    assert_eq!(statuses(&answers), (2, 1));

    // fast_action has its own budget of 10/s; unlimited_action none.
    let answers = dispatch_all(&example, "fast_action", &empty(12), None).await;
    assert_eq!(statuses(&answers), (10, 2));
    let answers = dispatch_all(&example, "unlimited_action", &empty(60), None).await;
    assert_eq!(statuses(&answers), (60, 0));

    // per_account: 2 a minute for each account, independently.
    let acc_a = json!({"account_id": "acc-a"});
    let a = dispatch_all(&example, "per_account", &empty(3), Some(&acc_a)).await;
    let b = dispatch_all(
        &example,
        "per_account",
        &empty(2),
        Some(&json!({"account_id": "acc-b"})),
    )
    .await;
    assert_eq!(statuses(&a), (2, 1));
    assert_eq!(statuses(&b), (2, 0), "acc-b has its own budget");
    let limited = &a.iter().find(|e| e["status"] == "limit").unwrap()["data"]["response"];
    assert_eq!(
        limited["key"],
        format!(
            "account.account_id={}",
            arbv_provider::rate_limit::value_digest(b"acc-a")
        )
    );
    assert_eq!(limited["wait_time"], 60.0);
    tokio::time::advance(Duration::from_secs(60)).await;
    let a = dispatch_all(&example, "per_account", &empty(3), Some(&acc_a)).await;
    assert_eq!(statuses(&a), (2, 1), "a minute on, acc-a's budget is whole");
}

static SHARED: LazyLock<Arc<SlidingWindowRateLimitMonitor>> = LazyLock::new(|| {
    Arc::new(SlidingWindowRateLimitMonitor::new(RateSpec::new(
        3,
        Duration::from_secs(60),
    )))
});

/// One monitor for `One::shared_a` and `Other::shared_b`; only the end-to-end test uses them.
fn shared() -> Arc<SlidingWindowRateLimitMonitor> {
    SHARED.clone()
}

/// Every attribute form, on monitors of its own (so each test builds fresh budgets).
struct Forms {
    /// When the provider was made, on tokio's clock: `patient` answers when it started after it.
    origin: tokio::time::Instant,
}

impl Forms {
    fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

#[provider(name = "forms")]
impl Forms {
    /// Waits for its budget rather than answering `limit`; answers when it was admitted.
    #[action(rate_limit = "1/s", on_limit = "wait", timeout = "5s")]
    async fn patient(&self) -> Value {
        json!({"started_s": self.origin.elapsed().as_secs_f64()})
    }

    /// Waits, but its timeout is shorter than the wait.
    #[action(rate_limit = "1/m", on_limit = "wait", timeout = "300ms")]
    async fn impatient(&self) -> Value {
        json!({"ok": true})
    }

    /// At least 400 ms between calls.
    #[action(min_delay = "400ms")]
    async fn spaced(&self) -> Value {
        json!({"ok": true})
    }

    /// At least 1 s between calls, and at most 2 a minute.
    #[action(rate_limit = "2/m", min_delay = "1s")]
    async fn paced(&self) -> Value {
        json!({"ok": true})
    }

    /// 60 a minute on average, at most 3 at once.
    #[action(rate_limit = "60/m", burst = 3)]
    async fn bursty(&self) -> Value {
        json!({"ok": true})
    }

    /// Budget per payload field.
    #[action(rate_limit = "1/m", per = "payload.user.id")]
    async fn per_user(&self, payload: Value) -> Value {
        payload
    }
}

struct One;

#[provider(name = "one")]
impl One {
    /// Shares one budget with the other provider.
    #[action(rate_limit = shared)]
    async fn shared_a(&self) -> Value {
        json!({"ok": true})
    }
}

struct Other;

#[provider(name = "other")]
impl Other {
    #[action(rate_limit = shared)]
    async fn shared_b(&self) -> Value {
        json!({"ok": true})
    }
}

fn started(answers: &[Value]) -> Vec<f64> {
    let mut started: Vec<f64> = answers
        .iter()
        .map(|e| {
            e["data"]["response"]["started_s"]
                .as_f64()
                .unwrap_or_else(|| panic!("a patient task ran: {e}"))
        })
        .collect();
    started.sort_by(f64::total_cmp);
    started
}

fn user_payloads(users: &[u32]) -> Vec<Value> {
    users.iter().map(|u| json!({"user": {"id": u}})).collect()
}

#[track_caller]
fn wait_time(e: &Value) -> f64 {
    e["data"]["response"]["wait_time"].as_f64().unwrap()
}

#[tokio::test(start_paused = true)]
async fn in_process_every_attribute_form_admits_exactly_its_budget() {
    let forms = in_process(Forms::new());

    // on_limit = "wait": all three run, each as the window lets it, 1 s apart to the instant.
    let answers = dispatch_all(&forms, "patient", &empty(3), None).await;
    assert_eq!(statuses(&answers), (3, 0));
    let started = started(&answers);
    for pair in started.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((0.999_999..1.01).contains(&gap), "admitted {gap} s apart");
    }

    // A wait longer than the timeout answers limit at once, with the full wait.
    let answers = dispatch_all(&forms, "impatient", &empty(2), None).await;
    assert_eq!(statuses(&answers), (1, 1));
    let limited = answers.iter().find(|e| e["status"] == "limit").unwrap();
    assert_eq!(wait_time(limited), 60.0);

    // min_delay: the second of a pair is refused with the time left; after it, one more goes.
    let answers = dispatch_all(&forms, "spaced", &empty(2), None).await;
    assert_eq!(statuses(&answers), (1, 1));
    let limited = answers.iter().find(|e| e["status"] == "limit").unwrap();
    assert_eq!(limited["data"]["response"]["min_delay"], 0.4);
    assert!((wait_time(limited) - 0.4).abs() < 1e-3, "{limited}");
    tokio::time::advance(Duration::from_millis(400)).await;
    let answers = dispatch_all(&forms, "spaced", &empty(2), None).await;
    assert_eq!(statuses(&answers), (1, 1));

    // min_delay with a rate: both apply. The spacing refuses the second of a pair; once spaced,
    // the rate refuses the third in the minute.
    let answers = dispatch_all(&forms, "paced", &empty(2), None).await;
    assert_eq!(statuses(&answers), (1, 1));
    let limited = answers.iter().find(|e| e["status"] == "limit").unwrap();
    assert_eq!(limited["data"]["response"]["min_delay"], 1.0);
    assert!((wait_time(limited) - 1.0).abs() < 1e-3, "{limited}");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        statuses(&dispatch_all(&forms, "paced", &empty(1), None).await),
        (1, 0)
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let answers = dispatch_all(&forms, "paced", &empty(1), None).await;
    assert_eq!(statuses(&answers), (0, 1), "spaced, but the rate is spent");
    let r = &answers[0]["data"]["response"];
    assert_eq!(
        (r["limit"].as_u64(), r["current_count"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(wait_time(&answers[0]), 58.0);

    // burst = 3: three at once, then one a second.
    let answers = dispatch_all(&forms, "bursty", &empty(5), None).await;
    assert_eq!(statuses(&answers), (3, 2));
    let limited = answers.iter().find(|e| e["status"] == "limit").unwrap();
    assert_eq!(limited["data"]["response"]["is_critical"], true);
    assert_eq!(limited["data"]["response"]["call_usage"], 1.0);
    tokio::time::advance(Duration::from_secs(1)).await;
    let answers = dispatch_all(&forms, "bursty", &empty(2), None).await;
    assert_eq!(statuses(&answers), (1, 1), "one refilled in a second");

    // per = "payload.user.id": user 1 has one call in its budget, user 2 its own.
    let answers = dispatch_all(&forms, "per_user", &user_payloads(&[1, 1, 2]), None).await;
    assert_eq!(statuses(&answers[..2]), (1, 1), "user 1");
    assert_eq!(statuses(&answers[2..]), (1, 0), "user 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_limits_by_provider_default_action_and_account() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(
        RateLimited,
        config(&server.url()).concurrency(8).build().unwrap(),
    );

    // A burst of 10 under the provider's "2/s": 2 go if it is decided within a second.
    let second = Duration::from_secs(1);
    let answers = burst(&hub, EXAMPLE, "default_action", &empty(10), None).await;
    answers.assert_admitted(2, window_bound(2, second, answers.span), "2/s");
    for e in answers.limited() {
        let r = &e["data"]["response"];
        let wait = r["wait_time"].as_f64().unwrap();
        assert!(wait > 0.0 && wait <= 1.0, "wait_time {wait}");
        assert_eq!(e["message"].as_str().unwrap(), limit_message(wait));
        assert_eq!(
            (r["limit"].as_u64(), r["current_count"].as_u64()),
            (Some(2), Some(2))
        );
    }
    // Tasks run concurrently, so which two were admitted is not the enqueue order.
    for e in answers.answers.iter().filter(|e| e["status"] == "success") {
        assert_eq!(e["data"]["response"]["result"], "default_action");
    }

    // fast_action has its own budget of 10/s.
    let answers = burst(&hub, EXAMPLE, "fast_action", &empty(12), None).await;
    answers.assert_admitted(10, window_bound(10, second, answers.span), "10/s");

    // unlimited_action is never limited.
    let answers = burst(&hub, EXAMPLE, "unlimited_action", &empty(60), None).await;
    assert_eq!(answers.count("success"), 60);

    // per_account: 2 a minute for each account, independently (a burst takes well under one).
    let a = burst(
        &hub,
        EXAMPLE,
        "per_account",
        &empty(3),
        Some(json!({"account_id": "acc-a"})),
    )
    .await;
    let b = burst(
        &hub,
        EXAMPLE,
        "per_account",
        &empty(2),
        Some(json!({"account_id": "acc-b"})),
    )
    .await;
    let minute = Duration::from_secs(60);
    a.assert_admitted(2, window_bound(2, minute, a.span), "2/m for acc-a");
    b.assert_admitted(2, 2, "acc-b has its own budget");
    let limited = a.limited().next().unwrap();
    assert_eq!(
        limited["data"]["response"]["key"],
        format!(
            "account.account_id={}",
            arbv_provider::rate_limit::value_digest(b"acc-a")
        )
    );
    let wait = wait_time(limited);
    assert!(wait > 40.0 && wait <= 60.0, "{wait}");

    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_would_not_run_spend_no_budget() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(RateLimited, config(&server.url()).build().unwrap());
    // No account, a malformed account: refused before the limit is asked.
    for account in [None, Some(json!({"wrong": 1}))] {
        let answers = burst(&hub, EXAMPLE, "per_account", &empty(3), account).await;
        assert_eq!(answers.count("error"), 3);
    }
    let answers = burst(
        &hub,
        EXAMPLE,
        "per_account",
        &empty(2),
        Some(json!({"account_id": "fresh"})),
    )
    .await;
    assert_eq!(answers.count("success"), 2, "the budget is whole");
    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attribute_form_behaves_as_documented() {
    let hub = DevHub::builder()
        .token(TOKEN)
        .hold(Duration::from_secs(2))
        .build();
    let server = hub.serve(arbv_tests::loopback()).await.unwrap();
    let forms = RunningProvider::start(
        Forms::new(),
        config(&server.url()).concurrency(4).build().unwrap(),
    );
    let one = RunningProvider::start(One, config(&server.url()).build().unwrap());
    let other = RunningProvider::start(Other, config(&server.url()).build().unwrap());

    // on_limit = "wait": all run, admitted at least a second apart. Each start is read in the
    // action, a moment after its admission: 100 ms of slack for that moment on a loaded machine.
    let answers = burst(&hub, "forms", "patient", &empty(3), None).await;
    answers.assert_admitted(3, 3, "patient");
    let started = started(&answers.answers);
    for pair in started.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= 0.9, "admitted {gap} s apart under 1/s");
    }
    let answers = burst(&hub, "forms", "impatient", &empty(2), None).await;
    answers.assert_admitted(1, 1, "a wait longer than the timeout answers limit");

    // min_delay: one per 400 ms.
    let delay = Duration::from_millis(400);
    let answers = burst(&hub, "forms", "spaced", &empty(2), None).await;
    answers.assert_admitted(1, bucket_bound(1, delay, answers.span), "min_delay");
    for limited in answers.limited() {
        assert_eq!(limited["data"]["response"]["min_delay"], 0.4);
        assert!(wait_time(limited) <= 0.4);
    }

    // min_delay with a rate: one per second, and never more than 2 in the minute.
    let answers = burst(&hub, "forms", "paced", &empty(3), None).await;
    let most = bucket_bound(1, Duration::from_secs(1), answers.span).min(2);
    answers.assert_admitted(1, most, "min_delay 1s and 2/m");

    // burst = 3: three at once, then one a second.
    let answers = burst(&hub, "forms", "bursty", &empty(5), None).await;
    let most = bucket_bound(3, Duration::from_secs(1), answers.span);
    answers.assert_admitted(3, most, "60/m, burst 3");
    for limited in answers.limited() {
        assert_eq!(limited["data"]["response"]["is_critical"], true);
        assert_eq!(limited["data"]["response"]["call_usage"], 1.0);
    }

    // One monitor shared by two providers: one budget of 3, and the figures name both.
    let a = burst(&hub, "one", "shared_a", &empty(2), None).await;
    let b = burst(&hub, "other", "shared_b", &empty(2), None).await;
    assert_eq!(a.count("success") + b.count("success"), 3);
    let limited = b
        .limited()
        .next()
        .expect("the fourth call is over the shared budget");
    assert_eq!(
        limited["data"]["response"]["providers"],
        json!(["one", "other"])
    );

    // per = "payload.user.id": user 1 has one call in its budget, user 2 its own.
    let answers = burst(&hub, "forms", "per_user", &user_payloads(&[1, 1, 2]), None).await;
    assert_eq!(statuses(&answers.answers[..2]), (1, 1), "user 1");
    assert_eq!(statuses(&answers.answers[2..]), (1, 0), "user 2");

    forms.stop().await.unwrap();
    one.stop().await.unwrap();
    other.stop().await.unwrap();
    server.stop().await;
}

#[test]
fn the_manifest_shows_each_limit() {
    let manifest = RateLimited::manifest();
    let actions = manifest["actions"].as_array().unwrap();
    let limit_of =
        |name: &str| actions.iter().find(|a| a["name"] == name).unwrap()["rate_limit"].clone();
    assert_eq!(limit_of("default_action")["kind"], "sliding_window");
    assert_eq!(limit_of("default_action")["limit"], 2);
    assert_eq!(limit_of("fast_action")["limit"], 10);
    assert_eq!(limit_of("unlimited_action"), Value::Null);
    assert_eq!(limit_of("shared_action")["kind"], "redis_sliding_window");
    assert_eq!(
        actions.iter().find(|a| a["name"] == "per_account").unwrap()["per"],
        "account.account_id"
    );
    let _: &dyn RateLimitMonitor = &*shared();
}
