//! The runtime of arbv-provider: configuration, the hub client, the worker loop, dispatch,
//! envelopes, validation, and with its features TLS (`tls`, on by default), Redis rate limits
//! (`redis`) and the dev hub (`dev-hub`). No macros live here: `#[provider]` in
//! `arbv-provider-macros` generates an impl of [`Provider`] that wires methods to this crate.
//!
//! Users depend on the `arbv-provider` facade, which re-exports what they need.
//!
//! The public API: a provider ([`Provider`], [`ProviderDef`] and what an action returns),
//! running it ([`Serve`], [`Runtime`], [`Config`]), a task run in process without a hub
//! ([`Runtime::run_task`]), and the modules below. The worker, the hub client and dispatch are
//! the crate's own.

#![warn(missing_docs)]

pub mod cache;
pub mod config;
mod context;
#[cfg(feature = "dev-hub")]
pub mod dev_hub;
mod dispatch;
mod endpoint;
pub mod envelope;
mod error;
mod fine_sleep;
mod hub_client;
mod hub_connection;
pub mod metrics;
mod provider;
pub mod rate_limit;
#[cfg(feature = "redis")]
mod redis_connection;
mod response;
pub mod retry;
mod secret;
mod serve;
pub mod shutdown;
mod task;
pub mod telemetry;
mod timezone;
pub mod validation;
pub mod wire;
mod worker;

/// The messages and services generated from `proto/hub.proto`: the client always, the server
/// (`hub_server`) with the `dev-hub` feature.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("_");
}

pub use cache::{CacheBackend, CacheError, CacheHandle};
pub use config::{Config, ConfigBuilder, ConfigError};
pub use context::Context;
pub use envelope::{Envelope, Status};
pub use error::{DefinitionError, Error};
pub use metrics::{Metrics, MetricsSnapshot};
/// The `prometheus` crate [`Metrics::registry`] comes from: register metrics of your own with
/// this version of it.
pub use prometheus;
pub use provider::{
    ActionDef, ActionSpec, CacheKey, CacheKeyFn, CacheSpec, CacheStore, Call, InputPart,
    InvalidInput, LimitSetting, OnLimit, Provider, ProviderDef, RetrySpec,
};
pub use response::{ActionError, ActionResponse, IntoActionResponse, Json};
pub use secret::AuthToken;
pub use serve::{Runtime, Serve, serve_until, serve_with};
pub use task::{CompletedTask, IncomingTask};
pub use timezone::{UnknownZone, Zone, ZoneOffset};
