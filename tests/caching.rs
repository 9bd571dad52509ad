//! Cached actions in a real provider, through the dev hub over gRPC: a hit does not run the
//! action (the calls are counted) nor spend its rate limit; identical tasks arriving together
//! run it once; another payload or account misses, key order does not; errors are not kept;
//! the refresh flag runs again and replaces; invalidation from an action and from the runtime.
//! With Redis: two provider processes share one cache, and a Redis killed mid-run leaves every
//! answer correct, with one warning per outage.

#[path = "support/provider_process.rs"]
mod provider_process;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arbv_provider::dev_hub::DevHub;
use arbv_provider::prelude::*;
use arbv_provider::rate_limit::{RateSpec, SlidingWindowRateLimitMonitor};
use arbv_provider::{CacheError, CacheKey, CacheSpec, CacheStore, ProviderDef, Runtime};
use arbv_tests::logs::LogBuffer;
use arbv_tests::services::PrivateRedis;
use arbv_tests::{PROVIDER, RunningProvider, call, config, start_hub};
use provider_process::ProviderProcess;

#[derive(Deserialize, JsonSchema)]
struct Ask {
    city: String,
    #[serde(default)]
    units: Option<String>,
    /// Runs the action again and keeps its new answer.
    #[serde(default)]
    #[expect(dead_code, reason = "the runtime reads it, not the action")]
    refresh: bool,
    /// How long the upstream takes.
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Deserialize, JsonSchema)]
struct Rename {
    city: String,
}

/// A weather provider whose upstream counts its calls (the test keeps the other handle); its
/// answers are kept in process, or in the Redis of `PROVIDER_REDIS_URL` when `IN_REDIS`.
#[derive(Default)]
struct Weather<const IN_REDIS: bool> {
    upstream_calls: Arc<AtomicUsize>,
}

impl<const IN_REDIS: bool> Weather<IN_REDIS> {
    async fn fetch(&self, ask: &Ask) -> Result<Value, ActionError> {
        let call = self.upstream_calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(ask.delay_ms)).await;
        if ask.city == "nowhere" {
            return Err(ActionError::new("no such city").with_code("NOT_FOUND"));
        }
        Ok(json!({ "city": ask.city, "units": ask.units, "call": call }))
    }
}

impl<const IN_REDIS: bool> Provider for Weather<IN_REDIS> {
    fn definition() -> ProviderDef<Self> {
        let mut def = ProviderDef::new(PROVIDER);
        let ten_minutes = Duration::from_secs(600);
        def.action("forecast", |this: Arc<Self>, mut call| async move {
            let ask: Ask = call.payload()?;
            Ok(this.fetch(&ask).await)
        })
        .payload::<Ask>()
        .cache(CacheSpec {
            store: if IN_REDIS {
                CacheStore::Redis
            } else {
                CacheStore::Provider
            },
            refresh: Some(Cow::Borrowed("refresh")),
            ..CacheSpec::new(ten_minutes)
        });
        def.action("by_city", |this: Arc<Self>, mut call| async move {
            let ask: Ask = call.payload()?;
            Ok(this.fetch(&ask).await)
        })
        .payload::<Ask>()
        .cache(CacheSpec {
            key: CacheKey::Paths(vec![Cow::Borrowed("payload.city")]),
            ..CacheSpec::new(ten_minutes)
        });
        def.action("quota", |this: Arc<Self>, mut call| async move {
            let ask: Ask = call.payload()?;
            Ok(this.fetch(&ask).await)
        })
        .payload::<Ask>()
        .rate_limit(SlidingWindowRateLimitMonitor::new(RateSpec::new(
            1,
            Duration::from_secs(3600),
        )))
        .cache(CacheSpec::new(ten_minutes));
        // Writes upstream, then drops what `forecast` kept for the city.
        def.action("rename", |_this, mut call| async move {
            let rename: Rename = call.payload()?;
            let removed = call
                .context()
                .cache()
                .invalidate("forecast", &json!({ "city": rename.city }), None)
                .await
                .map_err(|e| ActionError::new(e.to_string()));
            Ok(removed.map(|removed| json!({ "removed": removed })))
        })
        .payload::<Rename>();
        def
    }
}

/// A hub and a provider, with the count of its upstream's calls.
struct Running {
    hub: DevHub,
    provider: RunningProvider,
    upstream_calls: Arc<AtomicUsize>,
    cache: arbv_provider::CacheHandle,
    metrics: arbv_provider::Metrics,
    _server: arbv_provider::dev_hub::RunningServer,
}

impl Running {
    fn calls(&self) -> usize {
        self.upstream_calls.load(Ordering::SeqCst)
    }

    async fn call(&self, action: &str, payload: Value, account: Option<Value>) -> Value {
        call(&self.hub, action, payload, account).await
    }

    /// Sends a task whose payload and account are this JSON text as written.
    async fn call_raw(&self, action: &str, payload: &str, account: &str) -> Value {
        let id = self.hub.enqueue_raw(
            PROVIDER,
            action,
            payload.to_owned().into(),
            account.to_owned().into(),
        );
        self.hub
            .wait_result(&id, Duration::from_secs(20))
            .await
            .expect("a result within 20 s")
    }

    async fn stop(self) {
        self.provider.stop().await.unwrap();
    }
}

/// Starts a hub and `Weather<IN_REDIS>` with the test configuration as `configure` changes it.
async fn start<const IN_REDIS: bool>(
    configure: impl FnOnce(arbv_provider::ConfigBuilder) -> arbv_provider::ConfigBuilder,
) -> Running {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let config = configure(config(&server.url()).concurrency(64))
        .build()
        .unwrap();
    let weather = Weather::<IN_REDIS>::default();
    let upstream_calls = weather.upstream_calls.clone();
    let runtime = Runtime::new(weather, config).expect("the provider compiles");
    let cache = runtime.cache();
    let metrics = runtime.metrics();
    Running {
        hub,
        provider: RunningProvider::start_runtime(runtime),
        upstream_calls,
        cache,
        metrics,
        _server: server,
    }
}

async fn in_process() -> Running {
    start::<false>(|config| config).await
}

fn response(envelope: &Value) -> &Value {
    &envelope["data"]["response"]
}

fn is_hit(envelope: &Value) -> bool {
    envelope["data"]["cached"] == true
}

#[tokio::test]
async fn a_hit_is_answered_without_running_the_action_and_is_marked() {
    let weather = in_process().await;
    let first = weather
        .call("forecast", json!({"city": "Oslo"}), None)
        .await;
    assert_eq!(first["status"], "success", "{first}");
    assert!(
        first["data"].get("cached").is_none(),
        "a miss carries no mark: {first}"
    );
    assert!(first["data"].get("cached_at").is_none());
    let second = weather
        .call("forecast", json!({"city": "Oslo"}), None)
        .await;
    assert_eq!(weather.calls(), 1, "the second task ran nothing");
    assert_eq!(second["status"], "success");
    assert!(is_hit(&second), "{second}");
    assert_eq!(response(&second), response(&first));
    assert_eq!(second["message"], first["message"]);
    let cached_at = chrono::DateTime::parse_from_rfc3339(
        second["data"]["cached_at"]
            .as_str()
            .expect("cached_at with a hit"),
    )
    .unwrap();
    assert_eq!(
        cached_at.offset().local_minus_utc(),
        0,
        "cached_at is in UTC"
    );
    let now =
        chrono::DateTime::parse_from_rfc3339(second["data"]["now_utc"].as_str().unwrap()).unwrap();
    assert!(
        cached_at <= now,
        "the envelope's time is the answer's, after the keeping"
    );
    for field in ["provider", "action", "timezone", "now"] {
        assert!(second["data"][field].is_string(), "{field}: {second}");
    }
    let figures = weather.metrics.snapshot();
    let forecast = figures.action("forecast").unwrap();
    assert_eq!((forecast.cache_hits, forecast.cache_misses), (1, 1));
    assert!(weather.metrics.render().contains(
        r#"arbv_cache_requests_total{action="forecast",provider="hand-written",result="hit"} 1"#
    ));
    weather.stop().await;
}

#[tokio::test]
async fn fifty_identical_tasks_arriving_together_make_one_call() {
    let weather = in_process().await;
    let ids: Vec<String> = (0..50)
        .map(|_| {
            weather.hub.enqueue(
                PROVIDER,
                "forecast",
                json!({"city": "Rome", "delay_ms": 500}),
                None,
            )
        })
        .collect();
    for id in &ids {
        let envelope = weather
            .hub
            .wait_result(id, Duration::from_secs(20))
            .await
            .expect("every task is answered");
        assert_eq!(envelope["status"], "success", "{envelope}");
        assert_eq!(response(&envelope)["call"], 1, "{envelope}");
    }
    assert_eq!(weather.calls(), 1);
    let forecast = weather
        .metrics
        .snapshot()
        .action("forecast")
        .unwrap()
        .clone();
    assert_eq!(forecast.cache_hits + forecast.cache_misses, 50);
    assert!(
        forecast.cache_misses > 1,
        "tasks arrived while the first ran, and waited for its answer: {forecast:?}"
    );
    weather.stop().await;
}

#[tokio::test]
async fn another_payload_or_account_misses_and_key_order_does_not() {
    let weather = in_process().await;
    let account = r#"{"api_key": "k-1", "region": "eu"}"#;
    let first = weather
        .call_raw("forecast", r#"{"city": "Oslo", "units": "c"}"#, account)
        .await;
    assert!(!is_hit(&first));
    // The same task with its keys in another order: a hit.
    let reordered = weather
        .call_raw(
            "forecast",
            r#"{"units": "c", "city": "Oslo"}"#,
            r#"{"region": "eu", "api_key": "k-1"}"#,
        )
        .await;
    assert!(is_hit(&reordered), "{reordered}");
    assert_eq!(weather.calls(), 1);
    // Another payload, another account, no account: each runs.
    let other_units = weather
        .call_raw("forecast", r#"{"city": "Oslo", "units": "f"}"#, account)
        .await;
    let other_account = weather
        .call_raw(
            "forecast",
            r#"{"city": "Oslo", "units": "c"}"#,
            r#"{"api_key": "k-2", "region": "eu"}"#,
        )
        .await;
    let no_account = weather
        .call_raw("forecast", r#"{"city": "Oslo", "units": "c"}"#, "")
        .await;
    for envelope in [&other_units, &other_account, &no_account] {
        assert_eq!(envelope["status"], "success");
        assert!(!is_hit(envelope), "{envelope}");
    }
    assert_eq!(weather.calls(), 4);
    // `by_city` keys on the city alone.
    weather
        .call("by_city", json!({"city": "Oslo", "units": "c"}), None)
        .await;
    let by_city = weather
        .call(
            "by_city",
            json!({"city": "Oslo", "units": "f"}),
            Some(json!({"k": 1})),
        )
        .await;
    assert!(is_hit(&by_city), "{by_city}");
    assert_eq!(weather.calls(), 5);
    weather.stop().await;
}

#[tokio::test]
async fn errors_are_not_kept() {
    let weather = in_process().await;
    for _ in 0..3 {
        let envelope = weather
            .call("forecast", json!({"city": "nowhere"}), None)
            .await;
        assert_eq!(envelope["status"], "error");
        assert!(!is_hit(&envelope));
    }
    assert_eq!(weather.calls(), 3);
    weather.stop().await;
}

#[tokio::test]
async fn a_hit_spends_no_rate_limit_budget() {
    let weather = in_process().await;
    let first = weather.call("quota", json!({"city": "Oslo"}), None).await;
    assert_eq!(first["status"], "success");
    for _ in 0..3 {
        let again = weather.call("quota", json!({"city": "Oslo"}), None).await;
        assert_eq!(again["status"], "success", "a hit is not limited: {again}");
        assert!(is_hit(&again));
    }
    // The budget of one call an hour is spent by the first task alone.
    let other = weather.call("quota", json!({"city": "Rome"}), None).await;
    assert_eq!(other["status"], "limit", "{other}");
    assert_eq!(weather.calls(), 1);
    weather.stop().await;
}

#[tokio::test]
async fn the_refresh_flag_runs_the_action_again_and_replaces_the_kept_answer() {
    let weather = in_process().await;
    weather
        .call("forecast", json!({"city": "Oslo"}), None)
        .await;
    let refreshed = weather
        .call("forecast", json!({"city": "Oslo", "refresh": true}), None)
        .await;
    assert!(!is_hit(&refreshed), "{refreshed}");
    assert_eq!(response(&refreshed)["call"], 2);
    let after = weather
        .call("forecast", json!({"city": "Oslo"}), None)
        .await;
    assert!(is_hit(&after));
    assert_eq!(
        response(&after)["call"],
        2,
        "the refreshed answer replaced the first"
    );
    // `refresh: false` is an ordinary lookup.
    let plain = weather
        .call("forecast", json!({"city": "Oslo", "refresh": false}), None)
        .await;
    assert!(is_hit(&plain));
    assert_eq!(weather.calls(), 2);
    weather.stop().await;
}

#[tokio::test]
async fn kept_answers_are_dropped_from_an_action_and_from_the_runtime() {
    let weather = in_process().await;
    weather
        .call("forecast", json!({"city": "Oslo"}), None)
        .await;
    weather
        .call("forecast", json!({"city": "Rome"}), None)
        .await;
    let renamed = weather.call("rename", json!({"city": "Oslo"}), None).await;
    assert_eq!(response(&renamed)["removed"], true, "{renamed}");
    let renamed = weather.call("rename", json!({"city": "Oslo"}), None).await;
    assert_eq!(response(&renamed)["removed"], false, "nothing left to drop");
    let oslo = weather
        .call("forecast", json!({"city": "Oslo"}), None)
        .await;
    assert!(!is_hit(&oslo), "Oslo runs again");
    let rome = weather
        .call("forecast", json!({"city": "Rome"}), None)
        .await;
    assert!(is_hit(&rome), "Rome is still kept");
    assert_eq!(weather.calls(), 3);

    // From outside the actions: a key (key order and refresh flag do not count), an action, all.
    let removed = weather
        .cache
        .invalidate("forecast", &json!({"refresh": true, "city": "Rome"}), None)
        .await
        .unwrap();
    assert!(removed);
    weather.call("by_city", json!({"city": "Oslo"}), None).await;
    assert_eq!(
        weather.cache.invalidate_action("forecast").await.unwrap(),
        1
    );
    assert_eq!(
        weather.cache.invalidate_all().await.unwrap(),
        1,
        "by_city's"
    );
    let calls = weather.calls();
    weather.call("by_city", json!({"city": "Oslo"}), None).await;
    weather
        .call("forecast", json!({"city": "Oslo"}), None)
        .await;
    assert_eq!(weather.calls(), calls + 2);
    assert!(matches!(
        weather.cache.invalidate_action("rename").await,
        Err(CacheError::NotCached(name)) if name == "rename"
    ));
    assert!(matches!(
        arbv_provider::Context::detached("forecast")
            .cache()
            .invalidate_all()
            .await,
        Err(CacheError::Detached)
    ));
    weather.stop().await;
}

#[tokio::test]
async fn a_key_path_or_refresh_field_the_payload_does_not_have_stops_the_start() {
    struct Misnamed;
    impl Provider for Misnamed {
        fn definition() -> ProviderDef<Self> {
            let mut def = ProviderDef::new("misnamed");
            def.action("forecast", |_this, _call| async move {
                Ok(ActionResponse::success(json!({})))
            })
            .payload::<Ask>()
            .cache(CacheSpec {
                key: CacheKey::Paths(vec![Cow::Borrowed("payload.town")]),
                ..CacheSpec::new(Duration::from_secs(60))
            });
            def
        }
    }
    let config = arbv_provider::Config::builder()
        .auth_token("t")
        .build()
        .unwrap();
    let error = Runtime::new(Misnamed, config)
        .err()
        .expect("refused at start");
    let message = error.to_string();
    assert!(
        message.contains("forecast") && message.contains("payload.town"),
        "{message}"
    );
}

const REDIS_DOWN: &str = "Redis is unreachable for the answer cache";
const REDIS_BACK: &str = "Redis answers again: the answer cache is used again";

/// Calls `forecast` until an answer comes from the cache again (Redis is tried once a second
/// while it is down), checking every answer on the way.
async fn until_hit(weather: &Running, city: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let envelope = weather
            .call("forecast", json!({ "city": city }), None)
            .await;
        assert_eq!(envelope["status"], "success", "{envelope}");
        assert_eq!(response(&envelope)["city"], city);
        if is_hit(&envelope) {
            return envelope;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no hit within 20 s of Redis's return"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// A current-thread runtime: the subscriber set for this thread sees the provider's logs.
#[tokio::test]
async fn a_redis_killed_mid_run_leaves_answers_correct_and_warns_once_per_outage() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let logs = LogBuffer::default();
    let _capture = logs.capture_thread(tracing::Level::INFO);
    let url = redis.url();
    let weather = start::<true>(|config| config.redis_url(url)).await;
    weather
        .call("forecast", json!({"city": "Oslo"}), None)
        .await;
    assert!(is_hit(
        &weather
            .call("forecast", json!({"city": "Oslo"}), None)
            .await
    ));
    assert_eq!(weather.calls(), 1);

    for outage in 1..=2 {
        redis.stop();
        let before = weather.calls();
        for _ in 0..4 {
            let envelope = weather
                .call("forecast", json!({"city": "Oslo"}), None)
                .await;
            assert_eq!(
                envelope["status"], "success",
                "the cache never fails a task: {envelope}"
            );
            assert_eq!(response(&envelope)["city"], "Oslo");
            assert!(!is_hit(&envelope));
        }
        assert_eq!(
            weather.calls(),
            before + 4,
            "every task ran while Redis was gone"
        );
        assert_eq!(
            logs.lines_with(&["WARN", REDIS_DOWN]).len(),
            outage,
            "one warning per outage, not one per task:\n{}",
            logs.text()
        );
        assert!(
            weather
                .metrics
                .snapshot()
                .action("forecast")
                .unwrap()
                .cache_errors
                > 0
        );

        // Back, and empty: answers are kept and found again.
        redis.resume();
        until_hit(&weather, "Oslo").await;
        assert_eq!(logs.lines_with(&["INFO", REDIS_BACK]).len(), outage);
    }
    weather.stop().await;
}

#[tokio::test]
async fn two_provider_processes_share_one_redis_cache() {
    let Some(url) = arbv_tests::services::redis_url() else {
        return;
    };
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    // A name of this run's own, so that keys left by another run are not found.
    let name = format!(
        "cache-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let env = [
        ("PROVIDER_NAME", name.as_str()),
        ("PROVIDER_REDIS_URL", url.as_str()),
    ];
    let program = env!("CARGO_BIN_EXE_cache-provider");
    let ask = |hub: &DevHub| hub.enqueue(&name, "forecast", json!({"city": "Oslo"}), None);

    let first_process = ProviderProcess::start_program(program, &server, &env);
    let first = hub
        .wait_result(&ask(&hub), Duration::from_secs(20))
        .await
        .expect("the first process answers");
    assert_eq!(first["status"], "success", "{first}");
    assert!(!is_hit(&first));
    first_process.stop().await;

    // The key is where every process looks: `arbv:cache:v1:{provider}:{action}:{hash}`.
    let mut connection = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("arbv:cache:v1:{name}:forecast:*"))
        .query(&mut connection)
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let hash = keys[0].rsplit(':').next().unwrap();
    assert_eq!(hash.len(), 64);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query(&mut connection)
        .unwrap();
    assert!(
        (590..=600).contains(&ttl),
        "SET EX with the action's TTL: {ttl}"
    );
    let stored: String = redis::cmd("GET")
        .arg(&keys[0])
        .query(&mut connection)
        .unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["v"], 1);
    assert_eq!(stored["response"], first["data"]["response"]);

    let second_process = ProviderProcess::start_program(program, &server, &env);
    let second = hub
        .wait_result(&ask(&hub), Duration::from_secs(20))
        .await
        .expect("the second process answers");
    assert!(is_hit(&second), "{second}");
    assert_eq!(
        second["data"]["response"]["pid"], first["data"]["response"]["pid"],
        "the answer the first process kept"
    );
    second_process.stop().await;
    let _: () = redis::cmd("DEL")
        .arg(&keys[0])
        .query(&mut connection)
        .unwrap();
}

/// Keys declared with `#[action(cache_key = ..)]`: a function of the typed payload, and paths.
#[derive(Default)]
struct Declared {
    calls: Arc<AtomicUsize>,
}

/// The key of `by_function`: the city whatever its case, and the units with their default.
fn city_and_units(payload: &Ask) -> (String, String) {
    (
        payload.city.to_lowercase(),
        payload.units.clone().unwrap_or_else(|| "metric".to_owned()),
    )
}

#[provider(name = "hand-written")]
impl Declared {
    #[action(cache = "10m", cache_key = city_and_units)]
    async fn by_function(&self, payload: Ask) -> Value {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        json!({ "city": payload.city, "call": call })
    }

    #[action(cache = "10m", cache_key = "payload.city")]
    fn by_path(&self, payload: Ask) -> Value {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        json!({ "units": payload.units, "call": call })
    }
}

#[tokio::test]
async fn keys_declared_on_the_action_decide_what_is_identical() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let declared = Declared::default();
    let calls = declared.calls.clone();
    let runtime = Runtime::new(declared, config(&server.url()).build().unwrap())
        .expect("the provider compiles");
    let provider = RunningProvider::start_runtime(runtime);
    let ask = |action: &'static str, payload: Value| {
        let hub = &hub;
        async move { call(hub, action, payload, None).await }
    };
    let first = ask("by_function", json!({"city": "Oslo"})).await;
    assert!(!is_hit(&first), "{first}");
    let same = ask("by_function", json!({"city": "OSLO", "units": "metric"})).await;
    assert!(is_hit(&same), "same city and units once defaulted: {same}");
    let other = ask("by_function", json!({"city": "oslo", "units": "imperial"})).await;
    assert!(!is_hit(&other), "{other}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let first = ask("by_path", json!({"city": "Bergen", "units": "metric"})).await;
    let same = ask("by_path", json!({"city": "Bergen", "units": "imperial"})).await;
    assert!(
        is_hit(&same),
        "only payload.city is the key: the kept answer, with the first task's units: {same}"
    );
    assert_eq!(response(&same), response(&first));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    provider.stop().await.unwrap();
}

/// A cached action that also retries, whose upstream fails once with a transient error.
#[derive(Default)]
struct FlakyOnce {
    calls: Arc<AtomicUsize>,
}

#[provider(name = "hand-written")]
impl FlakyOnce {
    #[action(cache = "10m", retry(attempts = 3, backoff = "10ms..20ms"))]
    async fn forecast(&self, payload: Ask) -> Result<Value, ActionError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(ActionError::new("upstream 503").transient());
        }
        Ok(json!({ "city": payload.city }))
    }
}

arbv_tests::on_both_hubs!(a_cached_action_that_retries_works_on_a_hub_that_does_only_the_contract);
async fn a_cached_action_that_retries_works_on_a_hub_that_does_only_the_contract(
    kind: arbv_tests::hubs::HubKind,
) {
    let hub = arbv_tests::hubs::TestHub::start(kind).await;
    let provider = FlakyOnce::default();
    let calls = provider.calls.clone();
    let runtime = Runtime::new(provider, config(&hub.url()).build().unwrap()).unwrap();
    let running = RunningProvider::start_runtime(runtime);
    let mut envelopes = Vec::new();
    for _ in 0..2 {
        let id = hub.enqueue("forecast", json!({"city": "Oslo"}));
        assert!(
            hub.wait_taken(std::slice::from_ref(&id), Duration::from_secs(20))
                .await
        );
        envelopes.push(hub.taken_envelope(&id).expect("a result taken"));
    }
    assert_eq!(envelopes[0]["status"], "success", "{}", envelopes[0]);
    assert!(!is_hit(&envelopes[0]), "{}", envelopes[0]);
    assert!(is_hit(&envelopes[1]), "{}", envelopes[1]);
    assert_eq!(response(&envelopes[1]), &json!({"city": "Oslo"}));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one retry, then a hit");
    running.stop().await.unwrap();
}
