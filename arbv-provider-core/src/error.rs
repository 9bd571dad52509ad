//! The errors a provider can stop with. Tasks never stop a provider: only start-up can fail.

use crate::config::ConfigError;

/// A definition that cannot run: found when the provider starts.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// Two actions share a name.
    #[error("two actions are named '{0}': give one of them another name")]
    DuplicateAction(String),
    /// An action has an empty name.
    #[error("an action has an empty name")]
    EmptyActionName,
    /// A `per` field path is malformed.
    #[error("action '{action}': {reason}")]
    Per {
        /// The action.
        action: String,
        /// What is wrong.
        reason: String,
    },
    /// An action's cache cannot work: a key path or refresh field its schemas do not have, a
    /// zero TTL, a Redis cache without the `redis` feature or with a bad URL.
    #[error("action '{action}': cache: {reason}")]
    Cache {
        /// The action.
        action: String,
        /// What is wrong.
        reason: String,
    },
    /// A schema does not compile.
    #[error("the {part} schema of action '{action}' is not a valid JSON Schema: {reason}")]
    Schema {
        /// The action.
        action: String,
        /// `payload` or `account`.
        part: &'static str,
        /// What the schema compiler said.
        reason: String,
    },
}

/// Why a provider could not start or keep running.
///
/// Its `Debug` output is the readable message with its causes, because that is what
/// `fn main() -> Result<(), Error>` prints when the provider stops with an error.
#[derive(thiserror::Error)]
pub enum Error {
    /// The configuration is not usable.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The provider's definition is not usable.
    #[error("provider definition: {0}")]
    Definition(#[from] DefinitionError),
    /// The hub address could not be turned into a gRPC endpoint.
    #[error("hub endpoint {url}: {reason}")]
    Endpoint {
        /// The address.
        url: String,
        /// Why.
        reason: String,
    },
    /// A server (the dev hub) could not start.
    #[error("could not listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Installing the signal handlers failed.
    #[error("could not install the shutdown signal handlers: {0}")]
    Signal(std::io::Error),
    /// A second shutdown signal came during the drain: the actions still running were cut off
    /// and answered with `SHUTDOWN`, and the process should exit with an error.
    #[error(
        "a second shutdown signal cut the drain short: actions still running were stopped and answered with SHUTDOWN"
    )]
    ForcedShutdown,
    /// The worker stopped and cannot go on (its lanes kept panicking, or it ended on its own).
    #[error("the worker cannot go on: {0}")]
    WorkerFailed(String),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&error_chain(self))
    }
}

/// An error with its causes, for a log line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_the_message_main_prints() {
        let error = Error::ForcedShutdown;
        assert_eq!(format!("{error:?}"), error.to_string());
        let error = Error::Listen {
            addr: "127.0.0.1:1".into(),
            source: std::io::Error::other("in use"),
        };
        assert_eq!(
            format!("{error:?}"),
            "could not listen on 127.0.0.1:1: in use"
        );
    }
}
