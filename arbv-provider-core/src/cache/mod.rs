//! Caching actions' `success` answers (`#[action(cache = "10m")]`): an identical task within
//! the TTL is answered with the kept answer, without running the action or spending its rate
//! limit; identical tasks arriving together run the action once (single flight).
//!
//! Answers are kept in process ([`CacheBackend::in_process`], the default: a moka cache bounded
//! by bytes) or in Redis (`CacheBackend::redis`, with the `redis` feature, or
//! `cache = redis("10m")` on an action),
//! where every process of the provider shares them. A cache never turns a working action into a
//! failing one: a store that fails is skipped, and the action runs.
//!
//! Kept answers are dropped from code with a [`CacheHandle`] ([`Context::cache`],
//! [`Runtime::cache`]), and from the hub with the action's refresh flag
//! ([`CacheSpec::refresh`]).
//!
//! [`Context::cache`]: crate::Context::cache
//! [`Runtime::cache`]: crate::Runtime::cache

pub(crate) mod flight;
pub(crate) mod key;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::Config;
use crate::error::DefinitionError;
use crate::provider::{ActionSpec, CacheSpec, CacheStore};
use crate::response::ActionResponse;
use flight::Flights;
use key::KeyMaker;
use memory::MemoryStore;

#[cfg(feature = "redis")]
pub use crate::rate_limit::RedisUrlError;

/// Where a provider keeps its actions' answers (`#[provider(cache_backend = path)]`,
/// [`ProviderDef::cache_backend`](crate::ProviderDef::cache_backend)).
#[derive(Clone)]
pub struct CacheBackend {
    kind: BackendKind,
}

#[derive(Clone)]
enum BackendKind {
    InProcess {
        max_bytes: Option<u64>,
    },
    #[cfg(feature = "redis")]
    Redis(Arc<redis::RedisStore>),
}

impl std::fmt::Debug for CacheBackend {
    // A Redis URL may hold a password: only the kind is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            BackendKind::InProcess { max_bytes } => f
                .debug_struct("InProcess")
                .field("max_bytes", max_bytes)
                .finish(),
            #[cfg(feature = "redis")]
            BackendKind::Redis(_) => f.write_str("Redis"),
        }
    }
}

impl CacheBackend {
    /// In this process, bounded by `PROVIDER_CACHE_MAX_BYTES` (64 MiB by default) unless
    /// [`max_bytes`](Self::max_bytes) says otherwise. The default backend.
    pub fn in_process() -> Self {
        Self {
            kind: BackendKind::InProcess { max_bytes: None },
        }
    }

    /// Bounds an in-process backend to `bytes` of answers (the least used go first). No effect
    /// on a Redis backend, which Redis's own `maxmemory` bounds.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        match &mut self.kind {
            BackendKind::InProcess { max_bytes } => *max_bytes = Some(bytes),
            #[cfg(feature = "redis")]
            BackendKind::Redis(_) => {}
        }
        self
    }

    /// The Redis at `url`, shared by every process of the provider that names it. Connects
    /// on first use and reconnects by itself.
    #[cfg(feature = "redis")]
    pub fn redis(url: &str) -> Result<Self, RedisUrlError> {
        Ok(Self {
            kind: BackendKind::Redis(Arc::new(redis::RedisStore::open(url)?)),
        })
    }
}

/// Why an invalidation did nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The handle belongs to no running provider (a detached or hand-made [`Context`]).
    ///
    /// [`Context`]: crate::Context
    #[error(
        "this handle belongs to no running provider (a detached or hand-made context): there is no cache to invalidate"
    )]
    Detached,
    /// No action of that name has a cache.
    #[error("action '{0}' has no cache: the provider has no such action, or it declares none")]
    NotCached(String),
    /// The action's key function refused the input.
    #[error("the cache key could not be made: {0}")]
    Key(String),
    /// The store could not be reached (Redis down).
    #[error("the cache store is unreachable: {0}")]
    Unreachable(String),
}

/// An answer as it is kept.
#[derive(Clone, Debug)]
pub(crate) struct Kept {
    pub(crate) message: Option<String>,
    pub(crate) response: Value,
    pub(crate) stored_at: DateTime<Utc>,
}

/// One store answers.
#[derive(Clone)]
enum Store {
    Memory(Arc<MemoryStore>),
    #[cfg(feature = "redis")]
    Redis(Arc<redis::RedisStore>),
}

impl Store {
    fn same(&self, other: &Store) -> bool {
        match (self, other) {
            (Store::Memory(a), Store::Memory(b)) => Arc::ptr_eq(a, b),
            #[cfg(feature = "redis")]
            (Store::Redis(a), Store::Redis(b)) => Arc::ptr_eq(a, b),
            #[cfg(feature = "redis")]
            _ => false,
        }
    }

    /// Drops every answer of `provider`'s actions; returns how many.
    #[cfg_attr(
        not(feature = "redis"),
        expect(unused_variables, reason = "only Redis keys name the provider")
    )]
    async fn remove_provider(&self, provider: &str) -> Result<u64, CacheError> {
        match self {
            // An in-process store belongs to one provider.
            Store::Memory(memory) => Ok(memory.remove_where(None).await),
            #[cfg(feature = "redis")]
            Store::Redis(redis) => redis
                .remove_prefixed(&format!("{REDIS_PREFIX}{provider}:"))
                .await
                .map_err(|e| CacheError::Unreachable(e.0)),
        }
    }
}

/// The prefix of every Redis key of the cache; `v1` is the layout of the value.
#[cfg(feature = "redis")]
const REDIS_PREFIX: &str = "arbv:cache:v1:";

/// What a lookup found.
pub(crate) enum Lookup {
    Hit(Kept),
    Miss,
    /// The store failed (it logged why); the task runs uncached.
    #[cfg_attr(
        not(feature = "redis"),
        expect(dead_code, reason = "the in-process store does not fail")
    )]
    Failed,
}

/// An action's cache, compiled when the provider starts.
pub(crate) struct ActionCache {
    #[cfg(feature = "redis")]
    provider: Arc<str>,
    action: Arc<str>,
    ttl: Duration,
    refresh: Option<String>,
    /// The answer's field a hit sets to `true`.
    pub(crate) hit_mark: Option<String>,
    key: KeyMaker,
    store: Store,
    /// Identical tasks running now.
    pub(crate) flights: Arc<Flights<ActionResponse>>,
}

impl ActionCache {
    /// The hash of the task's key; an `Err` is the key function's.
    pub(crate) fn key_of(
        &self,
        payload: &Value,
        account: Option<&Value>,
    ) -> Result<String, String> {
        self.key.hash(payload, account, self.refresh.as_deref())
    }

    /// True when the payload's refresh flag is `true`: the task skips the kept answer.
    pub(crate) fn refresh_requested(&self, payload: &Value) -> bool {
        self.refresh
            .as_deref()
            .is_some_and(|field| payload.get(field) == Some(&Value::Bool(true)))
    }

    #[cfg(feature = "redis")]
    fn redis_key(&self, hash: &str) -> String {
        format!("{REDIS_PREFIX}{}:{}:{hash}", self.provider, self.action)
    }

    pub(crate) async fn lookup(&self, hash: &str) -> Lookup {
        match &self.store {
            Store::Memory(memory) => match memory.get(&self.action, hash).await {
                Some(kept) => Lookup::Hit(kept),
                None => Lookup::Miss,
            },
            #[cfg(feature = "redis")]
            Store::Redis(redis) => match redis.get(&self.redis_key(hash)).await {
                Ok(Some(kept)) => Lookup::Hit(kept),
                Ok(None) => Lookup::Miss,
                Err(_) => Lookup::Failed,
            },
        }
    }

    /// Keeps a `success` answer for the action's TTL. A store that fails logs it and keeps
    /// nothing.
    pub(crate) async fn keep(&self, hash: &str, response: &ActionResponse) {
        let kept = Kept {
            message: response.message().map(str::to_owned),
            response: response.response().clone(),
            stored_at: Utc::now(),
        };
        match &self.store {
            Store::Memory(memory) => memory.put(&self.action, hash, kept, self.ttl).await,
            #[cfg(feature = "redis")]
            Store::Redis(redis) => {
                let _ = redis.put(&self.redis_key(hash), &kept, self.ttl).await;
            }
        }
    }

    async fn remove(&self, hash: &str) -> Result<bool, CacheError> {
        match &self.store {
            Store::Memory(memory) => Ok(memory.remove(&self.action, hash).await),
            #[cfg(feature = "redis")]
            Store::Redis(redis) => redis
                .remove(&self.redis_key(hash))
                .await
                .map_err(|e| CacheError::Unreachable(e.0)),
        }
    }

    async fn remove_all(&self) -> Result<u64, CacheError> {
        match &self.store {
            Store::Memory(memory) => Ok(memory.remove_where(Some(&self.action)).await),
            #[cfg(feature = "redis")]
            Store::Redis(redis) => redis
                .remove_prefixed(&format!("{REDIS_PREFIX}{}:{}:", self.provider, self.action))
                .await
                .map_err(|e| CacheError::Unreachable(e.0)),
        }
    }
}

/// Drops kept answers of a running provider: one task's, an action's, or all of them.
/// From an action with [`Context::cache`](crate::Context::cache), from outside with
/// [`Runtime::cache`](crate::Runtime::cache). Cheap to clone.
///
/// An answer being computed while its key is invalidated is still kept when it lands.
#[derive(Clone, Default)]
pub struct CacheHandle {
    caches: Option<Arc<Caches>>,
}

impl std::fmt::Debug for CacheHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.caches {
            None => f.write_str("CacheHandle(detached)"),
            Some(caches) => f
                .debug_struct("CacheHandle")
                .field("provider", &caches.provider)
                .field("actions", &caches.actions.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Every cached action of a provider, and the stores they use.
pub(crate) struct Caches {
    provider: Arc<str>,
    actions: HashMap<String, Arc<ActionCache>>,
    stores: Vec<Store>,
}

impl CacheHandle {
    /// A handle that belongs to no provider: every call answers [`CacheError::Detached`].
    pub fn detached() -> Self {
        Self::default()
    }

    /// True when the handle belongs to a provider with cached actions.
    pub(crate) fn is_attached(&self) -> bool {
        self.caches.is_some()
    }

    fn caches(&self) -> Result<&Caches, CacheError> {
        self.caches.as_deref().ok_or(CacheError::Detached)
    }

    fn action(&self, action: &str) -> Result<&ActionCache, CacheError> {
        self.caches()?
            .actions
            .get(action)
            .map(Arc::as_ref)
            .ok_or_else(|| CacheError::NotCached(action.to_owned()))
    }

    /// Drops the answer a task of `action` with this payload and account would get (the same
    /// key: the refresh field and key order do not count). True if one was kept.
    pub async fn invalidate(
        &self,
        action: &str,
        payload: &Value,
        account: Option<&Value>,
    ) -> Result<bool, CacheError> {
        let cache = self.action(action)?;
        let hash = cache.key_of(payload, account).map_err(CacheError::Key)?;
        cache.remove(&hash).await
    }

    /// Drops every answer of `action`; returns how many there were.
    pub async fn invalidate_action(&self, action: &str) -> Result<u64, CacheError> {
        self.action(action)?.remove_all().await
    }

    /// Drops every answer of every action of the provider; returns how many there were.
    pub async fn invalidate_all(&self) -> Result<u64, CacheError> {
        let caches = self.caches()?;
        let mut removed = 0;
        for store in &caches.stores {
            removed += store.remove_provider(&caches.provider).await?;
        }
        Ok(removed)
    }
}

/// Builds the caches of a provider's actions as it starts, creating each store once.
pub(crate) struct CacheBuilder<'a> {
    provider: Arc<str>,
    backend: CacheBackend,
    config: &'a Config,
    memory: Option<Arc<MemoryStore>>,
    #[cfg(feature = "redis")]
    redis: Option<Arc<redis::RedisStore>>,
    actions: HashMap<String, Arc<ActionCache>>,
}

impl<'a> CacheBuilder<'a> {
    pub(crate) fn new(
        provider: Arc<str>,
        backend: Option<CacheBackend>,
        config: &'a Config,
    ) -> Self {
        Self {
            provider,
            backend: backend.unwrap_or_else(CacheBackend::in_process),
            config,
            memory: None,
            #[cfg(feature = "redis")]
            redis: None,
            actions: HashMap::new(),
        }
    }

    /// The compiled cache of the action `spec` declares, if it declares one.
    pub(crate) fn action(
        &mut self,
        spec: &ActionSpec,
    ) -> Result<Option<Arc<ActionCache>>, DefinitionError> {
        let Some(cache) = &spec.cache else {
            return Ok(None);
        };
        let invalid = |reason: String| DefinitionError::Cache {
            action: spec.name.to_string(),
            reason,
        };
        let ttl = ttl_of(cache, |var| std::env::var(var).ok()).map_err(invalid)?;
        let key = KeyMaker::compile(&cache.key).map_err(invalid)?;
        check_fields(spec, cache, &key).map_err(invalid)?;
        let store = self.store(cache.store).map_err(invalid)?;
        let compiled = Arc::new(ActionCache {
            #[cfg(feature = "redis")]
            provider: self.provider.clone(),
            action: Arc::from(spec.name.as_ref()),
            ttl,
            refresh: cache.refresh.as_deref().map(str::to_owned),
            hit_mark: cache.hit_mark.as_deref().map(str::to_owned),
            key,
            store,
            flights: Arc::default(),
        });
        self.actions.insert(spec.name.to_string(), compiled.clone());
        Ok(Some(compiled))
    }

    fn store(&mut self, wanted: CacheStore) -> Result<Store, String> {
        match (&self.backend.kind, wanted) {
            #[cfg(feature = "redis")]
            (BackendKind::Redis(redis), _) => Ok(Store::Redis(redis.clone())),
            (BackendKind::InProcess { max_bytes }, CacheStore::Provider) => {
                let max_bytes = max_bytes.unwrap_or(self.config.cache_max_bytes());
                let memory = self
                    .memory
                    .get_or_insert_with(|| Arc::new(MemoryStore::new(max_bytes)));
                Ok(Store::Memory(memory.clone()))
            }
            #[cfg(feature = "redis")]
            (BackendKind::InProcess { .. }, CacheStore::Redis) => {
                if let Some(redis) = &self.redis {
                    return Ok(Store::Redis(redis.clone()));
                }
                let redis = redis::RedisStore::open(self.config.redis_url().expose())
                    .map_err(|e| format!("{e} (PROVIDER_REDIS_URL)"))?;
                let redis = Arc::new(redis);
                self.redis = Some(redis.clone());
                Ok(Store::Redis(redis))
            }
            #[cfg(not(feature = "redis"))]
            (BackendKind::InProcess { .. }, CacheStore::Redis) => Err(
                "it caches in Redis, but this build has no Redis support: enable the `redis` feature of arbv-provider".into(),
            ),
        }
    }

    /// The handle over every cached action; detached when there is none.
    pub(crate) fn finish(self) -> CacheHandle {
        if self.actions.is_empty() {
            return CacheHandle::detached();
        }
        let mut stores: Vec<Store> = Vec::new();
        for cache in self.actions.values() {
            if !stores.iter().any(|s| s.same(&cache.store)) {
                stores.push(cache.store.clone());
            }
        }
        CacheHandle {
            caches: Some(Arc::new(Caches {
                provider: self.provider,
                actions: self.actions,
                stores,
            })),
        }
    }
}

/// The TTL of `cache`: its environment variable's value when that is set, else the declared
/// one; zero is refused either way.
fn ttl_of(cache: &CacheSpec, lookup: impl Fn(&str) -> Option<String>) -> Result<Duration, String> {
    use arbv_provider_grammar::{Bare, parse_duration};
    let set = cache.ttl_env.as_deref().and_then(|var| {
        lookup(var)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (var, v))
    });
    let Some((var, value)) = set else {
        if cache.ttl.is_zero() {
            return Err("the cache's TTL is zero: give a duration".into());
        }
        return Ok(cache.ttl);
    };
    match parse_duration(&value, Bare::Seconds) {
        Ok(ttl) if ttl.is_zero() => Err(format!(
            "{var}={value:?} sets the cache's TTL to zero: give a duration above zero"
        )),
        Ok(ttl) => Ok(ttl),
        Err(error) => Err(format!("{var}={value:?} is not a cache TTL: {error}")),
    }
}

/// The key's paths and the refresh field must name fields the schemas have, where they say.
fn check_fields(spec: &ActionSpec, cache: &CacheSpec, key: &KeyMaker) -> Result<(), String> {
    use arbv_provider_grammar::PerSource;
    for path in key.paths() {
        let (schema, part) = match path.source() {
            PerSource::Payload => (&spec.payload_schema, "payload"),
            PerSource::Account => (&spec.account_schema, "account"),
        };
        if let Some(schema) = schema
            && !schema_has(schema, path.fields())
        {
            return Err(format!(
                "cache_key '{path}': the {part} schema has no such field"
            ));
        }
    }
    if let (Some(field), Some(schema)) = (&cache.refresh, &spec.payload_schema)
        && !schema_has(schema, std::slice::from_ref(&field.to_string()))
    {
        return Err(format!(
            "cache_refresh '{field}': the payload schema has no such field"
        ));
    }
    Ok(())
}

/// False only when a schema along `fields` lists its `properties` and the next field is not
/// one of them; a schema that says nothing of its properties allows anything.
fn schema_has(root: &Value, fields: &[String]) -> bool {
    let mut schema = root;
    for field in fields {
        schema = resolve(root, schema);
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return true;
        };
        match properties.get(field) {
            Some(next) => schema = next,
            None => return false,
        }
    }
    true
}

/// Follows local `$ref`s (`#/$defs/…`, `#/definitions/…`), a few deep.
fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(target) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|pointer| root.pointer(pointer))
        else {
            break;
        };
        schema = target;
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::ttl_of;

    #[test]
    fn the_ttl_comes_from_its_variable_when_set() {
        let spec =
            crate::CacheSpec::new(std::time::Duration::from_secs(300)).ttl_from_env("CACHE_TTL");
        let with = |value: Option<&str>| {
            let value = value.map(str::to_owned);
            ttl_of(&spec, move |var| {
                assert_eq!(var, "CACHE_TTL");
                value.clone()
            })
        };
        assert_eq!(with(None), Ok(std::time::Duration::from_secs(300)));
        assert_eq!(with(Some(" ")), Ok(std::time::Duration::from_secs(300)));
        assert_eq!(with(Some("60")), Ok(std::time::Duration::from_secs(60)));
        assert_eq!(with(Some("1.5m")), Ok(std::time::Duration::from_secs(90)));
        assert!(
            with(Some("0"))
                .unwrap_err()
                .contains("CACHE_TTL=\"0\" sets the cache's TTL to zero")
        );
        assert!(
            with(Some("soon"))
                .unwrap_err()
                .contains("CACHE_TTL=\"soon\" is not a cache TTL")
        );
        let undeclared = crate::CacheSpec::new(std::time::Duration::from_secs(300));
        assert_eq!(
            ttl_of(&undeclared, |_| Some("60".into())),
            Ok(std::time::Duration::from_secs(300)),
            "only a declared variable is read"
        );
    }

    use serde_json::json;

    use super::*;

    #[test]
    fn fields_are_looked_up_through_refs_and_unknown_shapes_pass() {
        let schema = json!({
            "type": "object",
            "properties": {"city": {"type": "string"}, "opts": {"$ref": "#/$defs/Opts"}},
            "$defs": {"Opts": {"type": "object", "properties": {"units": {"type": "string"}}}}
        });
        let has = |path: &[&str]| {
            schema_has(
                &schema,
                &path.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        assert!(has(&["city"]));
        assert!(has(&["opts", "units"]));
        assert!(!has(&["town"]));
        assert!(!has(&["opts", "days"]));
        // `city` is a string: nothing is known below it.
        assert!(has(&["city", "x"]));
        assert!(schema_has(&json!({}), &["anything".to_owned()]));
    }
}
