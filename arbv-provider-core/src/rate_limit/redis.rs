//! One budget shared by every process that names the same key, decided atomically on the
//! Redis server by a script: an exact sliding window kept in a sorted set, timed by Redis's
//! own clock so that machines with skewed clocks still share one window.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::{AttachedProviders, Decision, Figures, RateLimitMonitor, RateSpec};
use crate::redis_connection::LazyConnection;

/// Drops calls older than the window, counts the rest, and admits (recording the call) while
/// the count is under the limit. Returns {admitted, count, wait in µs}.
const SLIDING_WINDOW_SCRIPT: &str = r"
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window_us = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_us)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, now .. ':' .. ARGV[3])
  redis.call('PEXPIRE', key, math.ceil(window_us / 1000) + 1000)
  return {1, count + 1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, count, tonumber(oldest[2]) + window_us - now}
";

/// What the monitor answers while Redis cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisFailurePolicy {
    /// Refuse calls with a `limit` answer that asks to retry after this long: the safe choice
    /// when the budget protects a downstream quota. The default, with 1 s.
    FailClosed {
        /// The `wait_time` of the refusal.
        retry_after: Duration,
    },
    /// Admit calls as if there were no limit, with a warning in the log.
    FailOpen,
}

impl Default for RedisFailurePolicy {
    fn default() -> Self {
        RedisFailurePolicy::FailClosed {
            retry_after: Duration::from_secs(1),
        }
    }
}

/// Why a Redis monitor could not be made.
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis URL: {0}")]
pub struct RedisUrlError(pub(crate) String);

/// `rate` shared by every process and machine whose monitor names the same `key` on the same
/// Redis. The Python framework's `RedisRateLimitMonitor`, made atomic.
///
/// ```no_run
/// use arbv_provider_core::rate_limit::{RedisRateLimitMonitor, RateSpec};
/// let monitor = RedisRateLimitMonitor::new("redis://127.0.0.1:6379", "ads:insights", "200/h".parse().unwrap())
///     .unwrap()
///     .fail_open();
/// ```
pub struct RedisRateLimitMonitor {
    connection: LazyConnection,
    key: String,
    rate: RateSpec,
    policy: RedisFailurePolicy,
    script: redis::Script,
    down: AtomicBool,
    providers: AttachedProviders,
}

impl std::fmt::Debug for RedisRateLimitMonitor {
    // The URL may hold a password: only the key and the rate are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimitMonitor")
            .field("key", &self.key)
            .field("rate", &self.rate)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimitMonitor {
    /// A monitor of `rate` on `key` in the Redis at `url`. Connects on first use, and
    /// reconnects by itself.
    pub fn new(url: &str, key: impl Into<String>, rate: RateSpec) -> Result<Self, RedisUrlError> {
        Ok(Self {
            connection: LazyConnection::open(url)?,
            key: key.into(),
            rate,
            policy: RedisFailurePolicy::default(),
            script: redis::Script::new(SLIDING_WINDOW_SCRIPT),
            down: AtomicBool::new(false),
            providers: AttachedProviders::default(),
        })
    }

    /// Admits calls while Redis is unreachable (the default refuses them).
    pub fn fail_open(mut self) -> Self {
        self.policy = RedisFailurePolicy::FailOpen;
        self
    }

    /// Sets the policy while Redis is unreachable.
    pub fn with_failure_policy(mut self, policy: RedisFailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    async fn decide(&self, key: &str) -> Decision {
        let window_key = if key.is_empty() {
            self.key.clone()
        } else {
            format!("{}:{key}", self.key)
        };
        let mut figures = Figures::new();
        figures.insert("limit".into(), json!(self.rate.count));
        figures.insert("window_size".into(), json!(self.rate.period.as_secs_f64()));
        figures.insert("window_key".into(), json!(window_key));
        self.providers.add_to(&mut figures);
        let window_us = u64::try_from(self.rate.period.as_micros()).unwrap_or(u64::MAX);
        let answer = async {
            let mut connection = self.connection.get()?;
            let mut invocation = self.script.key(&window_key);
            invocation
                .arg(self.rate.count)
                .arg(window_us)
                .arg(rand::random::<u64>());
            let invocation = invocation.invoke_async::<(i64, i64, i64)>(&mut connection);
            match tokio::time::timeout(Duration::from_secs(2), invocation).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err("Redis did not answer within 2 s".to_owned()),
            }
        }
        .await;
        match answer {
            Ok((admitted, count, wait_us)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(key = %self.key, "Redis answers again: the shared rate limit is enforced again");
                }
                figures.insert("current_count".into(), json!(count));
                if admitted == 1 {
                    Decision::Admitted(figures)
                } else {
                    let wait = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0))
                        .max(Duration::from_millis(1));
                    Decision::Limited { wait, figures }
                }
            }
            Err(error) => self.unreachable(&error, figures),
        }
    }

    fn unreachable(&self, error: &str, mut figures: Figures) -> Decision {
        let policy = match self.policy {
            RedisFailurePolicy::FailOpen => "fail_open",
            RedisFailurePolicy::FailClosed { .. } => "fail_closed",
        };
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(key = %self.key, policy, "Redis is unreachable for the shared rate limit: {error}");
        }
        figures.insert(
            "error".into(),
            json!("the shared rate-limit store (Redis) is unreachable"),
        );
        figures.insert("policy".into(), json!(policy));
        match self.policy {
            RedisFailurePolicy::FailOpen => Decision::Admitted(figures),
            RedisFailurePolicy::FailClosed { retry_after } => Decision::Limited {
                wait: retry_after.max(Duration::from_millis(1)),
                figures,
            },
        }
    }
}

impl RateLimitMonitor for RedisRateLimitMonitor {
    fn check<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Decision> {
        Box::pin(self.decide(key))
    }

    fn describe(&self) -> Value {
        json!({
            "kind": "redis_sliding_window",
            "key": self.key,
            "limit": self.rate.count,
            "window_s": self.rate.period.as_secs_f64(),
            "on_redis_failure": match self.policy {
                RedisFailurePolicy::FailOpen => "fail_open",
                RedisFailurePolicy::FailClosed { .. } => "fail_closed",
            },
        })
    }

    fn attach(&self, provider: &str) {
        self.providers.attach(provider)
    }
}
