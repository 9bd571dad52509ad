//! Rate limits: the [`RateLimitMonitor`] trait and the built-in monitors, under the Python
//! framework's names. A monitor answers "go" or "wait this long", with its figures; the runtime
//! asks it before an action runs, and an action can ask it before each outside call.

mod clock;
mod monitors;
#[cfg(feature = "redis")]
mod redis;
mod sliding_window;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbv_provider_grammar::{PerPath, PerPathError, PerSource};
use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub use self::clock::TokioClock;
pub use self::monitors::{AdvancedRateLimitMonitor, NoRateLimitMonitor, TimeBasedRateLimitMonitor};
#[cfg(feature = "redis")]
pub use self::redis::RedisUrlError;
#[cfg(feature = "redis")]
pub use self::redis::{RedisFailurePolicy, RedisRateLimitMonitor};
pub use self::sliding_window::SlidingWindowRateLimitMonitor;
pub use arbv_provider_grammar::{RateSpec, RateSpecError};

/// A monitor's figures: `wait_time` aside, what it counts (`current_count`, `limit`, …).
pub type Figures = Map<String, Value>;

/// A monitor's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Go: the call was counted.
    Admitted(Figures),
    /// Not now: try again after `wait`.
    Limited {
        /// How long until a call would be admitted (always above zero).
        wait: Duration,
        /// The monitor's figures.
        figures: Figures,
    },
}

impl Decision {
    /// True for [`Decision::Admitted`].
    pub fn is_admitted(&self) -> bool {
        matches!(self, Decision::Admitted(_))
    }
}

/// Decides whether a call may go now. Implement it for a monitor of your own.
///
/// `key` names a budget: `""` for the monitor's one budget, or a value such as an ad account's
/// id when the action declares `per = "account.ad_account_id"`. An admitted call spends budget.
///
/// ```
/// use arbv_provider_core::rate_limit::{Decision, RateLimitMonitor};
/// use futures_util::future::BoxFuture;
/// use serde_json::{json, Map, Value};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// /// Admits the first `n` calls ever, then nothing.
/// struct FirstN(u32, AtomicU32);
///
/// impl RateLimitMonitor for FirstN {
///     fn check<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Decision> {
///         let used = self.1.fetch_add(1, Ordering::Relaxed);
///         let mut figures = Map::new();
///         figures.insert("used".into(), json!(used));
///         Box::pin(async move {
///             if used < self.0 { Decision::Admitted(figures) }
///             else { Decision::Limited { wait: Duration::from_secs(3600), figures } }
///         })
///     }
///     fn describe(&self) -> Value { json!({"kind": "first_n", "n": self.0}) }
/// }
/// ```
pub trait RateLimitMonitor: Send + Sync + 'static {
    /// Decides one call under `key`, counting it when admitted.
    fn check<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Decision>;

    /// What it enforces, for the manifest.
    fn describe(&self) -> Value;

    /// Told once for each provider that uses it, so a shared monitor can report them.
    fn attach(&self, _provider: &str) {}
}

impl<M: RateLimitMonitor + ?Sized> RateLimitMonitor for Arc<M> {
    fn check<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Decision> {
        (**self).check(key)
    }

    fn describe(&self) -> Value {
        (**self).describe()
    }

    fn attach(&self, provider: &str) {
        (**self).attach(provider)
    }
}

/// Anything that can guard an action: a monitor, or an `Arc` of one (shared).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a rate-limit monitor",
    note = "`rate_limit = path` wants a function that returns a `RateLimitMonitor` (or an `Arc` of one)"
)]
pub trait IntoMonitor {
    /// The monitor, shareable.
    fn into_monitor(self) -> Arc<dyn RateLimitMonitor>;
}

impl<M: RateLimitMonitor> IntoMonitor for M {
    fn into_monitor(self) -> Arc<dyn RateLimitMonitor> {
        Arc::new(self)
    }
}

/// Extra calls on every monitor.
pub trait RateLimitMonitorExt: RateLimitMonitor {
    /// Waits until a call under `key` is admitted, at most `max_wait`; `Err` carries the last
    /// refusal when that is not enough.
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        max_wait: Duration,
    ) -> BoxFuture<'a, Result<Figures, Decision>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + max_wait;
            loop {
                match self.check(key).await {
                    Decision::Admitted(figures) => return Ok(figures),
                    Decision::Limited { wait, figures } => {
                        if tokio::time::Instant::now() + wait > deadline {
                            return Err(Decision::Limited { wait, figures });
                        }
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        })
    }

    /// Acquires (waiting at most `max_wait`), then runs `request`: the Python framework's
    /// `make_safe_request`. Guards a call to an outside API from inside an action.
    fn make_safe_request<'a, F, Fut, T>(
        &'a self,
        key: &'a str,
        max_wait: Duration,
        request: F,
    ) -> BoxFuture<'a, Result<T, Decision>>
    where
        F: FnOnce() -> Fut + Send + 'a,
        Fut: std::future::Future<Output = T> + Send + 'a,
        T: Send + 'a,
    {
        Box::pin(async move {
            self.acquire(key, max_wait).await?;
            Ok(request().await)
        })
    }
}

impl<M: RateLimitMonitor + ?Sized> RateLimitMonitorExt for M {}

/// The providers a shared monitor serves, reported in its figures once there are two or more.
#[derive(Debug, Default)]
pub struct AttachedProviders(Mutex<BTreeSet<String>>);

impl AttachedProviders {
    /// Records a provider.
    pub fn attach(&self, provider: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(provider.to_owned());
    }

    /// Adds `providers` to `figures` when the monitor is shared by several providers.
    pub fn add_to(&self, figures: &mut Figures) {
        let providers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if providers.len() > 1 {
            figures.insert(
                "providers".into(),
                json!(providers.iter().collect::<Vec<_>>()),
            );
        }
    }
}

/// Several monitors that must all admit a call. They are asked in order and the first refusal
/// answers; a monitor asked before it has counted the call, so the combination errs on the
/// side of admitting fewer calls, never more.
pub struct AllOf(Vec<Arc<dyn RateLimitMonitor>>);

impl AllOf {
    /// All of `monitors`, in this order.
    pub fn new(monitors: Vec<Arc<dyn RateLimitMonitor>>) -> Self {
        Self(monitors)
    }
}

impl RateLimitMonitor for AllOf {
    fn check<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let mut all = Figures::new();
            for monitor in &self.0 {
                match monitor.check(key).await {
                    Decision::Admitted(figures) => all.extend(figures),
                    limited => return limited,
                }
            }
            Decision::Admitted(all)
        })
    }

    fn describe(&self) -> Value {
        json!({ "kind": "all_of", "monitors": self.0.iter().map(|m| m.describe()).collect::<Vec<_>>() })
    }

    fn attach(&self, provider: &str) {
        for monitor in &self.0 {
            monitor.attach(provider);
        }
    }
}

/// The in-process monitor for what an attribute declares: `rate_limit = "N/period"` alone is
/// an exact sliding window; with `burst` it is a token bucket; `min_delay` spaces calls, alone
/// or on top of either.
pub fn in_process(
    rate: Option<RateSpec>,
    burst: Option<u32>,
    min_delay: Option<Duration>,
) -> Arc<dyn RateLimitMonitor> {
    let main: Option<Arc<dyn RateLimitMonitor>> = match (rate, burst) {
        (Some(rate), Some(burst)) => Some(Arc::new(AdvancedRateLimitMonitor::new(rate, burst))),
        (Some(rate), None) => Some(Arc::new(SlidingWindowRateLimitMonitor::new(rate))),
        // A burst alone refines the provider's default rate; on its own it means "burst per second".
        (None, Some(burst)) => Some(Arc::new(AdvancedRateLimitMonitor::new(
            RateSpec::new(burst.max(1), Duration::from_secs(1)),
            burst,
        ))),
        (None, None) => None,
    };
    let spacing: Option<Arc<dyn RateLimitMonitor>> =
        min_delay.map(|d| Arc::new(TimeBasedRateLimitMonitor::new(d)) as Arc<dyn RateLimitMonitor>);
    match (spacing, main) {
        (Some(spacing), Some(main)) => Arc::new(AllOf::new(vec![spacing, main])),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => Arc::new(NoRateLimitMonitor),
    }
}

/// Which budget a task spends: `per = "account.ad_account_id"` or `per = "payload.user.id"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerKey {
    path: PerPath,
}

impl PerKey {
    /// Parses `account.<field>[.<field>…]` or `payload.<field>[.<field>…]`, the grammar
    /// `#[action(per = "...")]` checks at compile time.
    pub fn parse(text: &str) -> Result<Self, PerPathError> {
        PerPath::parse(text).map(|path| Self { path })
    }

    /// The budget key for a task: the field's path as written and a digest of its value,
    /// `account.ad_account_id=#3c5e0b7a9d21f4e8` (see [`value_digest`]). The value is hashed
    /// whatever it is, so an account's secret never reaches a limit envelope, a Redis key or a
    /// log, and a key is short however long the value. A missing field is its own budget
    /// (`…=<none>`).
    pub fn key(&self, payload: &Value, account: Option<&Value>) -> String {
        let root = match self.path.source() {
            PerSource::Payload => Some(payload),
            PerSource::Account => account,
        };
        let fields = self.path.fields();
        let digest = match root.and_then(|r| fields.iter().try_fold(r, |v, field| v.get(field))) {
            Some(Value::String(s)) => value_digest(s.as_bytes()),
            Some(Value::Null) | None => "<none>".to_owned(),
            Some(other) => value_digest(other.to_string().as_bytes()),
        };
        format!("{}={digest}", self.path)
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        self.path.as_str()
    }
}

/// `#` and the first 16 hex digits (64 bits) of the SHA-256 of `value`: how a budget key names
/// a task's value. It is the same in every process, so a Redis budget keyed by it is shared
/// across machines; it hides the value, but a value an attacker can guess (a short numeric
/// id) can be confirmed by hashing the guess. Pass keys built with it to
/// [`RateLimitMonitor::check`] when an action keys a budget by a secret itself.
pub fn value_digest(value: &[u8]) -> String {
    let digest = Sha256::digest(value);
    let mut text = String::with_capacity(17);
    text.push('#');
    for byte in &digest[..8] {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn make_safe_request_waits_for_the_budget_then_calls() {
        let monitor = SlidingWindowRateLimitMonitor::new(RateSpec::new(1, Duration::from_secs(2)));
        let start = tokio::time::Instant::now();
        assert_eq!(
            monitor
                .make_safe_request("", Duration::from_secs(5), || async { 1 })
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            monitor
                .make_safe_request("", Duration::from_secs(5), || async { 2 })
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(2),
            "the second call waited for the window"
        );
        let refused = monitor
            .make_safe_request("", Duration::from_millis(100), || async { 3 })
            .await;
        assert!(
            matches!(refused, Err(Decision::Limited { .. })),
            "a wait past max_wait is refused"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn all_of_needs_every_monitor() {
        let both = AllOf::new(vec![
            Arc::new(TimeBasedRateLimitMonitor::new(Duration::from_secs(1))),
            Arc::new(SlidingWindowRateLimitMonitor::new(RateSpec::new(
                2,
                Duration::from_secs(60),
            ))),
        ]);
        assert!(both.check("").await.is_admitted());
        assert!(
            !both.check("").await.is_admitted(),
            "too soon for the spacing"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(both.check("").await.is_admitted());
        tokio::time::advance(Duration::from_secs(1)).await;
        let Decision::Limited { wait, figures } = both.check("").await else {
            panic!("window full")
        };
        assert_eq!(figures["current_count"], 2);
        assert_eq!(wait, Duration::from_secs(58));
    }

    #[test]
    fn per_keys_name_the_field_and_hash_its_value() {
        let per = PerKey::parse("account.owner.id").unwrap();
        let account = json!({"owner": {"id": 7}});
        assert_eq!(
            per.key(&json!({}), Some(&account)),
            format!("account.owner.id={}", value_digest(b"7"))
        );
        assert_eq!(per.key(&json!({}), None), "account.owner.id=<none>");
        let per = PerKey::parse("payload.user").unwrap();
        let ada = per.key(&json!({"user": "ada"}), None);
        assert_eq!(ada, format!("payload.user={}", value_digest(b"ada")));
        assert_ne!(ada, per.key(&json!({"user": "bob"}), None));
        assert!(PerKey::parse("account").is_err());
        assert!(PerKey::parse("headers.x").is_err());
    }

    #[test]
    fn a_value_never_appears_in_its_key_and_keys_stay_short() {
        // SHA-256("abc"), a published test vector, cut to 64 bits.
        assert_eq!(value_digest(b"abc"), "#ba7816bf8f01cfea");
        let per = PerKey::parse("account.api_key").unwrap();
        let secret = format!("sk_live_{}", "9".repeat(10_000));
        let key = per.key(&json!({}), Some(&json!({"api_key": secret})));
        assert!(!key.contains("sk_live"), "{key}");
        assert_eq!(key.len(), "account.api_key=#".len() + 16, "{key}");
    }
}
