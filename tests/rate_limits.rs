//! Rate limits end to end: the `rate_limit` example and a provider declaring every attribute
//! form, served through the dev hub over real gRPC.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arbv_provider::dev_hub::DevHub;
use arbv_provider::prelude::*;
use arbv_provider::rate_limit::{RateLimitMonitor, RateSpec, SlidingWindowRateLimitMonitor};
use arbv_tests::{RunningProvider, TOKEN, config, start_hub};
use rate_limit::RateLimited;

const EXAMPLE: &str = "rate-limit-provider";

async fn burst(
    hub: &DevHub,
    provider: &str,
    action: &str,
    n: usize,
    account: Option<Value>,
) -> Vec<Value> {
    let ids: Vec<String> = (0..n)
        .map(|_| hub.enqueue(provider, action, json!({}), account.clone()))
        .collect();
    let mut answers = Vec::new();
    for id in ids {
        answers.push(
            hub.wait_result(&id, Duration::from_secs(20))
                .await
                .expect("every task is answered"),
        );
    }
    answers
}

fn count(answers: &[Value], status: &str) -> usize {
    answers.iter().filter(|e| e["status"] == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_limits_by_provider_default_action_and_account() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(
        RateLimited,
        config(&server.url()).concurrency(8).build().unwrap(),
    );

    // A burst of 10 under the provider's "2/s": 2 go, 8 are told when to come back.
    let answers = burst(&hub, EXAMPLE, "default_action", 10, None).await;
    assert_eq!(
        (count(&answers, "success"), count(&answers, "limit")),
        (2, 8)
    );
    for e in answers.iter().filter(|e| e["status"] == "limit") {
        let r = &e["data"]["response"];
        let wait = r["wait_time"].as_f64().unwrap();
        assert!(wait > 0.0 && wait <= 1.0, "wait_time {wait}");
        assert_eq!(
            e["message"].as_str().unwrap(),
            format!(
                "Rate limit exceeded. Please wait {} seconds",
                arbv_provider_core::response::format_seconds(wait)
            )
        );
        assert_eq!(
            (
                r["limit"].as_u64(),
                r["current_count"].as_u64(),
                r["window_size"].as_f64()
            ),
            (Some(2), Some(2), Some(1.0))
        );
    }
    // Tasks run concurrently, so which two were admitted is not the enqueue order.
    for e in answers.iter().filter(|e| e["status"] == "success") {
        assert_eq!(e["data"]["response"], json!({"result": "default_action"}));
    }

    // fast_action has its own budget of 10/s.
    let answers = burst(&hub, EXAMPLE, "fast_action", 12, None).await;
    assert_eq!(
        (count(&answers, "success"), count(&answers, "limit")),
        (10, 2)
    );

    // unlimited_action is never limited.
    let answers = burst(&hub, EXAMPLE, "unlimited_action", 60, None).await;
    assert_eq!(count(&answers, "success"), 60);

    // per_account: 2 a minute for each account, independently.
    let a = burst(
        &hub,
        EXAMPLE,
        "per_account",
        3,
        Some(json!({"account_id": "acc-a"})),
    )
    .await;
    let b = burst(
        &hub,
        EXAMPLE,
        "per_account",
        2,
        Some(json!({"account_id": "acc-b"})),
    )
    .await;
    assert_eq!((count(&a, "success"), count(&a, "limit")), (2, 1));
    assert_eq!(count(&b, "success"), 2, "acc-b has its own budget");
    let limited = a.iter().find(|e| e["status"] == "limit").unwrap();
    assert_eq!(
        limited["data"]["response"]["key"],
        format!(
            "account.account_id={}",
            arbv_provider::rate_limit::value_digest(b"acc-a")
        )
    );
    let wait = limited["data"]["response"]["wait_time"].as_f64().unwrap();
    assert!(wait > 50.0 && wait <= 60.0, "{wait}");

    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_would_not_run_spend_no_budget() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(RateLimited, config(&server.url()).build().unwrap());
    // No account, a malformed account: refused before the limit is asked.
    for account in [None, Some(json!({"wrong": 1}))] {
        let answers = burst(&hub, EXAMPLE, "per_account", 3, account).await;
        assert_eq!(count(&answers, "error"), 3);
    }
    let answers = burst(
        &hub,
        EXAMPLE,
        "per_account",
        2,
        Some(json!({"account_id": "fresh"})),
    )
    .await;
    assert_eq!(count(&answers, "success"), 2, "the budget is whole");
    provider.stop().await.unwrap();
    server.stop().await;
}

static SHARED: LazyLock<Arc<SlidingWindowRateLimitMonitor>> = LazyLock::new(|| {
    Arc::new(SlidingWindowRateLimitMonitor::new(RateSpec::new(
        3,
        Duration::from_secs(60),
    )))
});

fn shared() -> Arc<SlidingWindowRateLimitMonitor> {
    SHARED.clone()
}

struct Forms;

#[provider(name = "forms")]
impl Forms {
    /// Waits for its budget rather than answering `limit`.
    #[action(rate_limit = "1/s", on_limit = "wait", timeout = "5s")]
    async fn patient(&self) -> Value {
        json!({"ok": true})
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

    /// 60 a minute on average, at most 3 at once.
    #[action(rate_limit = "60/m", burst = 3)]
    async fn bursty(&self) -> Value {
        json!({"ok": true})
    }

    /// Shares one budget with the other provider.
    #[action(rate_limit = shared)]
    async fn shared_a(&self) -> Value {
        json!({"ok": true})
    }

    /// Budget per payload field.
    #[action(rate_limit = "1/m", per = "payload.user.id")]
    async fn per_user(&self, payload: Value) -> Value {
        payload
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attribute_form_behaves_as_documented() {
    let hub = DevHub::builder()
        .token(TOKEN)
        .hold(Duration::from_secs(2))
        .build();
    let server = hub.serve(arbv_tests::loopback()).await.unwrap();
    let forms =
        RunningProvider::start(Forms, config(&server.url()).concurrency(4).build().unwrap());
    let other = RunningProvider::start(Other, config(&server.url()).build().unwrap());

    // on_limit = "wait": both run, the second after waiting for the budget.
    let answers = burst(&hub, "forms", "patient", 2, None).await;
    assert_eq!(count(&answers, "success"), 2);
    let answers = burst(&hub, "forms", "impatient", 2, None).await;
    assert_eq!(
        (count(&answers, "success"), count(&answers, "limit")),
        (1, 1),
        "a wait longer than the timeout answers limit"
    );

    // min_delay: the second call of a pair is refused with the time left.
    let answers = burst(&hub, "forms", "spaced", 2, None).await;
    assert_eq!(
        (count(&answers, "success"), count(&answers, "limit")),
        (1, 1)
    );
    let limited = answers.iter().find(|e| e["status"] == "limit").unwrap();
    assert_eq!(limited["data"]["response"]["min_delay"], 0.4);
    assert!(limited["data"]["response"]["wait_time"].as_f64().unwrap() <= 0.4);

    // burst = 3: three at once, then the rate.
    let answers = burst(&hub, "forms", "bursty", 5, None).await;
    assert_eq!(
        (count(&answers, "success"), count(&answers, "limit")),
        (3, 2)
    );
    let limited = answers.iter().find(|e| e["status"] == "limit").unwrap();
    assert_eq!(limited["data"]["response"]["is_critical"], true);
    assert_eq!(limited["data"]["response"]["call_usage"], 1.0);

    // One monitor shared by two providers: one budget of 3, and the figures name both.
    let a = burst(&hub, "forms", "shared_a", 2, None).await;
    let b = burst(&hub, "other", "shared_b", 2, None).await;
    assert_eq!(count(&a, "success") + count(&b, "success"), 3);
    let limited = b
        .iter()
        .find(|e| e["status"] == "limit")
        .expect("the fourth call is over the shared budget");
    assert_eq!(
        limited["data"]["response"]["providers"],
        json!(["forms", "other"])
    );

    // per = "payload.user.id": user 1 has one call in its budget, user 2 its own.
    let ids: Vec<(u32, String)> = [1, 1, 2]
        .iter()
        .map(|u| {
            (
                *u,
                hub.enqueue("forms", "per_user", json!({"user": {"id": u}}), None),
            )
        })
        .collect();
    let mut by_user: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for (user, id) in &ids {
        let status = hub.wait_result(id, Duration::from_secs(10)).await.unwrap()["status"].clone();
        by_user
            .entry(*user)
            .or_default()
            .push(status.as_str().unwrap().to_owned());
    }
    by_user.values_mut().for_each(|s| s.sort());
    assert_eq!(by_user[&1], ["limit", "success"]);
    assert_eq!(by_user[&2], ["success"]);

    forms.stop().await.unwrap();
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
