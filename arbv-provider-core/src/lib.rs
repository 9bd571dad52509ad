//! The runtime of arbv-provider: configuration, the hub client, the worker loop, dispatch,
//! envelopes, validation and the dev hub. No macros live here: `#[provider]` in
//! `arbv-provider-macros` generates an impl of [`Provider`] that wires methods to this crate.
//!
//! Users depend on the `arbv-provider` facade, which re-exports what they need.

#![warn(missing_docs)]

pub mod config;
pub mod context;
pub mod dev_hub;
pub mod dispatch;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod hub_client;
pub mod provider;
pub mod rate_limit;
pub mod response;
pub mod secret;
pub mod serve;
pub mod shutdown;
pub mod task;
pub mod telemetry;
pub mod validation;
pub mod wire;
pub mod worker;

/// The messages and services generated from `proto/hub.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("_");
}

pub use config::{Config, ConfigBuilder, ConfigError};
pub use context::Context;
pub use envelope::{Envelope, Status};
pub use error::{DefinitionError, Error};
pub use provider::{ActionDef, ActionSpec, Call, InvalidInput, Provider, ProviderDef};
pub use response::{ActionError, ActionResponse, IntoResponse, Json};
pub use secret::AuthToken;
pub use serve::{Runtime, Serve, serve_until, serve_with};
