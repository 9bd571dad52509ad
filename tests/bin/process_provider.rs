//! A provider process for the process tests (`tests/process.rs`, `tests/logging.rs`,
//! `tests/otel.rs`): actions that take as long as the task says, need an account, log or panic,
//! so shutdown, time-outs and logs can be watched from outside. Configured from the environment
//! like any provider.

use std::time::Duration;

use arbv_provider::prelude::*;

/// `sleep`'s payload.
#[derive(Deserialize, JsonSchema)]
struct Sleep {
    /// How long the action runs.
    ms: u64,
}

/// `echo`'s payload.
#[derive(Deserialize, JsonSchema)]
struct Echo {
    #[schemars(length(min = 1))]
    message: String,
}

/// `with_account`'s account.
#[derive(Deserialize, JsonSchema)]
struct ApiAccount {
    #[schemars(length(min = 32))]
    api_key: String,
}

struct ProcessProvider;

#[provider(name = "process-test-provider")]
impl ProcessProvider {
    /// Runs for `ms` milliseconds; its timeout is `TASK_EXECUTION_TIMEOUT`'s.
    #[action]
    async fn sleep(&self, payload: Sleep) -> Value {
        tokio::time::sleep(Duration::from_millis(payload.ms)).await;
        json!({ "slept_ms": payload.ms })
    }

    /// Echo back the message.
    #[action]
    async fn echo(&self, payload: Echo) -> Value {
        json!({ "echo": payload.message })
    }

    /// Needs an account; answers with the key's length, never the key.
    #[action]
    async fn with_account(&self, account: ApiAccount) -> Value {
        json!({ "key_len": account.api_key.len() })
    }

    /// Logs a line from inside an async action.
    #[action]
    async fn log_async(&self) -> Value {
        tracing::info!("inside the async action");
        json!({ "logged": true })
    }

    /// Logs a line from inside a blocking action, on its own thread.
    #[action]
    fn log_blocking(&self) -> Value {
        tracing::info!("inside the blocking action");
        json!({ "logged": true })
    }

    /// Panics in an async action.
    #[action]
    async fn explode(&self) -> Value {
        panic!("kaboom in the async action")
    }

    /// Panics in a blocking action.
    #[action]
    fn explode_blocking(&self) -> Value {
        panic!("kaboom in the blocking action")
    }
}

#[tokio::main]
async fn main() -> Result<(), arbv_provider::Error> {
    ProcessProvider.serve().await
}
