//! A provider whose expensive lookup is kept in Redis by the framework's cache: the seed's
//! `redis_cached` example, where the Python one reads, writes and expires Redis keys by hand.
//!
//! - `get_user_data {user_id}`: a lookup taking about 100 ms, deterministic per id, answered
//!   `{user_id, name, email, fetched_at, cached}`. Kept in Redis for `CACHE_TTL` seconds
//!   (default 300) under the user's id: a repeat within that time is answered from Redis with
//!   `cached: true` and the first `fetched_at`, by whichever process of the provider gets it.
//! - `invalidate_user_cache {user_id}`: drops that user's kept answer, so that the next lookup
//!   runs again; answers `{user_id, invalidated}`.
//!
//! With Redis down, lookups still answer, uncached (the framework skips its cache, with one
//! warning per outage).

use std::time::Duration;

use arbv_provider::prelude::*;

/// The cache's TTL when `CACHE_TTL` is not set: 300 s.
pub const DEFAULT_CACHE_TTL: &str = "300s";

/// Which user.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct UserId {
    /// The user's id.
    #[schemars(range(min = 1))]
    pub user_id: u64,
}

/// What the lookup finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserData {
    /// The user's id.
    pub user_id: u64,
    /// The user's name.
    pub name: String,
    /// The user's email address.
    pub email: String,
    /// When the lookup ran (UTC, RFC 3339).
    pub fetched_at: String,
    /// `true` when the answer comes from the cache.
    pub cached: bool,
}

/// An invalidation's outcome.
#[derive(Debug, Serialize)]
pub struct Invalidated {
    /// The user's id.
    pub user_id: u64,
    /// Whether a kept answer was dropped.
    pub invalidated: bool,
}

/// The provider; it keeps nothing itself.
pub struct RedisCached {
    lookup_time: Duration,
}

impl Default for RedisCached {
    fn default() -> Self {
        Self {
            lookup_time: Duration::from_millis(100),
        }
    }
}

impl RedisCached {
    /// A provider whose lookups take `lookup_time`.
    pub fn with_lookup_time(lookup_time: Duration) -> Self {
        Self { lookup_time }
    }
}

#[provider(name = "redis-cached")]
impl RedisCached {
    /// Looks a user up (about 100 ms); kept in Redis for `CACHE_TTL` seconds.
    #[action(
        cache = redis("300s"),
        cache_ttl_env = "CACHE_TTL",
        cache_key = "payload.user_id",
        cache_mark = "cached"
    )]
    pub async fn get_user_data(&self, payload: UserId) -> UserData {
        tokio::time::sleep(self.lookup_time).await;
        let id = payload.user_id;
        UserData {
            user_id: id,
            name: format!("User {id}"),
            email: format!("user{id}@example.com"),
            fetched_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            cached: false,
        }
    }

    /// Drops a user's kept answer: the next `get_user_data` runs the lookup again.
    #[action]
    pub async fn invalidate_user_cache(
        &self,
        payload: UserId,
        ctx: &Context,
    ) -> Result<Invalidated, ActionError> {
        let key = json!({ "user_id": payload.user_id });
        let invalidated = ctx
            .cache()
            .invalidate("get_user_data", &key, None)
            .await
            .map_err(|error| {
                ActionError::new(format!("the cache could not be reached: {error}"))
                    .with_code("CACHE_UNAVAILABLE")
                    .transient()
            })?;
        Ok(Invalidated {
            user_id: payload.user_id,
            invalidated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_lookup_is_deterministic_per_user_and_not_cached_itself() {
        let provider = RedisCached::with_lookup_time(Duration::ZERO);
        let user = provider.get_user_data(UserId { user_id: 12 }).await;
        assert_eq!(
            (
                user.user_id,
                user.name.as_str(),
                user.email.as_str(),
                user.cached
            ),
            (12, "User 12", "user12@example.com", false)
        );
        assert!(chrono::DateTime::parse_from_rfc3339(&user.fetched_at).is_ok());
    }

    #[test]
    fn the_manifest_shows_the_redis_cache_keyed_by_user() {
        let manifest = RedisCached::manifest();
        let cache = &manifest["actions"][0]["cache"];
        assert_eq!(cache["store"], "redis");
        assert_eq!(cache["key"], json!(["payload.user_id"]));
        assert_eq!(cache["ttl_s"], 300.0);
        assert_eq!(cache["ttl_env"], "CACHE_TTL");
        assert_eq!(cache["hit_mark"], "cached");
        assert_eq!(manifest["actions"][1]["cache"], Value::Null);
    }

    #[tokio::test]
    async fn invalidating_outside_the_runtime_says_so() {
        let ctx = Context::detached("invalidate_user_cache");
        let error = RedisCached::default()
            .invalidate_user_cache(UserId { user_id: 1 }, &ctx)
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("CACHE_UNAVAILABLE"));
    }
}
