// README.md is a symlink to the workspace README, so the packaged crate carries it.
#![doc = include_str!("../README.md")]

pub use arbv_provider_core::{
    ActionDef, ActionError, ActionResponse, ActionSpec, AuthToken, CacheBackend, CacheError,
    CacheHandle, CacheKey, CacheKeyFn, CacheSpec, CacheStore, Call, CompletedTask, Config,
    ConfigBuilder, ConfigError, Context, DefinitionError, Envelope, Error, IncomingTask, InputPart,
    IntoActionResponse, InvalidInput, Json, LimitSetting, Metrics, MetricsSnapshot, OnLimit,
    Provider, ProviderDef, RetrySpec, Runtime, Serve, Status, UnknownZone, Zone, ZoneOffset,
    serve_until, serve_with,
};
pub use arbv_provider_core::{
    cache, config, envelope, metrics, prometheus, rate_limit, retry, shutdown, telemetry,
    validation,
};

#[cfg(feature = "dev-hub")]
pub use arbv_provider_core::dev_hub;
pub use arbv_provider_macros::{action, provider};

/// Everything a provider file needs: `use arbv_provider::prelude::*;`.
pub mod prelude {
    pub use crate::{
        ActionError, ActionResponse, Config, Context, Provider, Serve, Status, action, provider,
    };
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{Value, json};
}

pub use schemars;
pub use serde;
pub use serde_json;

/// What the macros' generated code reaches for, and nothing else: every path in the expansion
/// goes through here (see `arbv-provider-macros/src/render.rs`). Not public API: it may change in
/// any release.
#[doc(hidden)]
pub mod __private {
    pub use arbv_provider_core::__into_action_response;
    pub use arbv_provider_core::IntoActionResponse;
    pub use arbv_provider_core::rate_limit::{RateSpec, in_process as in_process_monitor};
    pub use arbv_provider_core::retry::__probe;
    pub use arbv_provider_core::retry::RetryPolicy;
    pub use arbv_provider_core::{CacheSpec, Call, Json, OnLimit, Provider, ProviderDef};
    pub use core::option::Option::{self, None, Some};
    pub use core::result::Result::Ok;
    pub use core::time::Duration;
    pub use std::sync::Arc;

    /// `cache = redis("…")`: a cache kept in Redis, which needs the `redis` feature.
    #[cfg(feature = "redis")]
    pub fn cache_in_redis(spec: CacheSpec) -> CacheSpec {
        spec.in_redis()
    }
}
