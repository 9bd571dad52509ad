//! The rate-limit example provider. Its actions are a contract other checks rely on; each
//! answers `{"result": "<action name>", "pid": <the serving process's id>}` (the pid shows
//! which process served a task when several share a budget):
//!
//! - `default_action`: the provider-wide default, `"2/s"`;
//! - `fast_action`: `"10/s"`;
//! - `unlimited_action`: `rate_limit = none`;
//! - `per_account`: `"2/m"` for each `account.account_id`;
//! - `shared_action`: one Redis budget on key `arbv:example:shared`, `SHARED_LIMIT` (default
//!   `"20/m"`) across every process, Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`).

use std::sync::OnceLock;

use arbv_provider::prelude::*;
use arbv_provider::rate_limit::{RateSpec, RedisRateLimitMonitor};

/// The Redis key every process of this example shares.
pub const SHARED_KEY: &str = "arbv:example:shared";

/// `per_account`'s account.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LimitedAccount {
    /// The budget this task spends.
    pub account_id: String,
}

/// Where the shared budget lives and how large it is.
#[derive(Clone, Debug)]
pub struct SharedBudget {
    /// The Redis URL.
    pub redis_url: String,
    /// The budget.
    pub rate: RateSpec,
}

static SHARED: OnceLock<SharedBudget> = OnceLock::new();

impl SharedBudget {
    /// Reads `REDIS_URL` and `SHARED_LIMIT`; a bad value is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        let redis_url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let limit = std::env::var("SHARED_LIMIT").unwrap_or_else(|_| "20/m".to_owned());
        let rate = limit.parse().map_err(|e| format!("SHARED_LIMIT: {e}"))?;
        RedisRateLimitMonitor::new(&redis_url, SHARED_KEY, rate)
            .map_err(|e| format!("REDIS_URL: {e}"))?;
        Ok(Self { redis_url, rate })
    }

    /// Makes this the budget of `shared_action` in this process (first call wins).
    pub fn install(self) {
        let _ = SHARED.set(self);
    }
}

/// `shared_action`'s monitor: built once per provider definition from the installed budget.
pub fn shared_limit() -> RedisRateLimitMonitor {
    let budget = SHARED
        .get_or_init(|| SharedBudget::from_env().expect("REDIS_URL and SHARED_LIMIT are valid"));
    RedisRateLimitMonitor::new(&budget.redis_url, SHARED_KEY, budget.rate)
        .expect("the Redis URL was checked")
}

/// An action's answer: its name and the id of the process that ran it.
fn answer(action: &str) -> Value {
    json!({ "result": action, "pid": std::process::id() })
}

/// The rate-limit example provider.
#[derive(Debug, Default)]
pub struct RateLimited;

#[provider(name = "rate-limit-provider", rate_limit = "2/s")]
impl RateLimited {
    /// Limited by the provider-wide default: 2 a second.
    #[action]
    pub async fn default_action(&self) -> Value {
        answer("default_action")
    }

    /// 10 a second.
    #[action(rate_limit = "10/s")]
    pub async fn fast_action(&self) -> Value {
        answer("fast_action")
    }

    /// Never limited.
    #[action(rate_limit = none)]
    pub async fn unlimited_action(&self) -> Value {
        answer("unlimited_action")
    }

    /// 2 a minute for each account.
    #[action(rate_limit = "2/m", per = "account.account_id")]
    pub async fn per_account(&self, account: LimitedAccount) -> Value {
        let _ = account;
        answer("per_account")
    }

    /// One budget shared through Redis by every process running this provider.
    #[action(rate_limit = shared_limit)]
    pub async fn shared_action(&self) -> Value {
        answer("shared_action")
    }
}
