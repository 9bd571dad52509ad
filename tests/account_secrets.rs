//! Secrets in hostile or careless input, end to end: a budget keyed by an account field shows a
//! digest, never the value, in the `limit` envelope, in Redis and in the logs; an account that
//! does not deserialise is answered without quoting it. One binary of its own, since it
//! installs the global log subscriber.

use std::sync::OnceLock;
use std::time::Duration;

use arbv_provider::dev_hub::DevHub;
use arbv_provider::rate_limit::{
    RateSpec, RedisRateLimitMonitor, SlidingWindowRateLimitMonitor, value_digest,
};
use arbv_provider::{ActionResponse, Provider, ProviderDef};
use arbv_tests::services::redis_url;
use arbv_tests::{RunningProvider, config, start_hub};
use serde::Deserialize;
use serde_json::{Value, json};

const PROVIDER: &str = "hostile";

#[derive(Deserialize, schemars::JsonSchema)]
struct KeyedAccount {
    #[allow(dead_code)]
    api_key: String,
}

/// What the `typed` action wants, while the task's schema (none) lets anything through: the
/// path where serde, not the schema, refuses the account.
#[derive(Deserialize)]
struct Typed {
    #[allow(dead_code)]
    api_key: u64,
}

/// The Redis and key prefix of the `per_key_redis` action, when a Redis answers.
static REDIS: OnceLock<Option<(String, String)>> = OnceLock::new();

fn redis() -> Option<(String, String)> {
    REDIS
        .get_or_init(|| {
            redis_url().map(|url| {
                let prefix = format!("arbv:test:hostile:{}", uuid_like());
                (url, prefix)
            })
        })
        .clone()
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

struct Hostile;

impl Provider for Hostile {
    fn definition() -> ProviderDef<Self> {
        let mut def = ProviderDef::new(PROVIDER);
        def.action("per_key", |_this, _call| async move {
            Ok(ActionResponse::success(json!({ "ok": true })))
        })
        .account::<KeyedAccount>()
        .rate_limit(SlidingWindowRateLimitMonitor::new(RateSpec::new(
            1,
            Duration::from_secs(60),
        )))
        .per("account.api_key");
        if let Some((url, prefix)) = redis() {
            def.action("per_key_redis", |_this, _call| async move {
                Ok(ActionResponse::success(json!({ "ok": true })))
            })
            .account::<KeyedAccount>()
            .rate_limit(
                RedisRateLimitMonitor::new(&url, prefix, RateSpec::new(1, Duration::from_secs(60)))
                    .unwrap(),
            )
            .per("account.api_key");
        }
        def.action("typed", |_this, mut call| async move {
            let _account: Typed = call.account()?;
            Ok(ActionResponse::success(json!({ "ok": true })))
        });
        def
    }
}

/// Every log line of this binary, at every level, from the first test that asks.
fn logs() -> String {
    arbv_tests::logs::global(tracing::Level::TRACE).text()
}

async fn answers(hub: &DevHub, action: &str, account: &Value, n: usize) -> Vec<Value> {
    let ids: Vec<String> = (0..n)
        .map(|_| hub.enqueue(PROVIDER, action, json!({}), Some(account.clone())))
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

fn assert_nowhere(secret: &str, envelopes: &[Value]) {
    for envelope in envelopes {
        assert!(
            !envelope.to_string().contains(secret),
            "the secret is in an envelope: {envelope}"
        );
    }
    assert!(!logs().contains(secret), "the secret is in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_keyed_by_an_account_secret_shows_its_digest() {
    logs();
    let secret = "sk_live_51HkeyedBudgetSecret0000000000";
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = RunningProvider::start(
        Hostile,
        config(&server.url()).concurrency(2).build().unwrap(),
    );
    let envelopes = answers(&hub, "per_key", &json!({ "api_key": secret }), 2).await;
    let limited: Vec<&Value> = envelopes
        .iter()
        .filter(|e| e["status"] == "limit")
        .collect();
    assert_eq!(limited.len(), 1, "{envelopes:?}");
    let key = &limited[0]["data"]["response"]["key"];
    assert_eq!(
        key,
        &json!(format!(
            "account.api_key={}",
            value_digest(secret.as_bytes())
        ))
    );
    // Another value is another budget.
    let other = answers(
        &hub,
        "per_key",
        &json!({ "api_key": "sk_live_another_one_000000000000000" }),
        1,
    )
    .await;
    assert_eq!(other[0]["status"], "success");

    provider.stop().await.unwrap();
    server.stop().await;
    assert_nowhere(secret, &envelopes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_serde_refuses_is_answered_without_its_values() {
    logs();
    let secret = "sk_live_51HtypedAccountSecret000000000";
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = RunningProvider::start(Hostile, config(&server.url()).build().unwrap());
    let envelopes = answers(&hub, "typed", &json!({ "api_key": secret }), 1).await;
    let e = &envelopes[0];
    assert_eq!(e["status"], "error", "{e}");
    assert_eq!(
        e["message"], "Invalid account: /api_key: invalid type: string, expected u64",
        "{e}"
    );
    assert_eq!(
        e["data"]["response"]["errors"][0]["message"],
        "/api_key: invalid type: string, expected u64"
    );
    let nested = answers(&hub, "typed", &json!({ "api_key": 1, secret: true }), 1).await;
    assert_eq!(
        nested[0]["status"], "success",
        "unknown fields are ignored: {nested:?}"
    );
    let whole = answers(&hub, "typed", &json!(secret), 1).await;
    assert_eq!(
        whole[0]["message"],
        "Invalid account: invalid type: string, expected struct Typed"
    );
    provider.stop().await.unwrap();
    server.stop().await;
    assert_nowhere(secret, &[envelopes, nested, whole].concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_budget_keyed_by_an_account_secret_stores_its_digest() {
    logs();
    let Some((url, prefix)) = redis() else {
        return;
    };
    let secret = "sk_live_51HredisBudgetSecret00000000000";
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = RunningProvider::start(
        Hostile,
        config(&server.url()).concurrency(2).build().unwrap(),
    );
    let envelopes = answers(&hub, "per_key_redis", &json!({ "api_key": secret }), 2).await;
    let limited: Vec<&Value> = envelopes
        .iter()
        .filter(|e| e["status"] == "limit")
        .collect();
    assert_eq!(limited.len(), 1, "{envelopes:?}");
    let digest_key = format!("account.api_key={}", value_digest(secret.as_bytes()));
    let figures = &limited[0]["data"]["response"];
    assert_eq!(figures["key"], json!(digest_key));
    assert_eq!(
        figures["window_key"],
        json!(format!("{prefix}:{digest_key}"))
    );

    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let stored: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut redis)
        .unwrap();
    assert_eq!(stored, [format!("{prefix}:{digest_key}")]);
    let _: () = redis::cmd("DEL").arg(&stored).query(&mut redis).unwrap();

    provider.stop().await.unwrap();
    server.stop().await;
    assert_nowhere(secret, &envelopes);
}
