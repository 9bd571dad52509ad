//! The database example as a process: `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), `DATABASE_MAX_CONNECTIONS` (16) and
//! `DATABASE_ACQUIRE_TIMEOUT` (2 s); the hub and the runtime are configured as for every
//! provider. The migrations run before the first task is taken.

use arbv_provider::prelude::*;
use arbv_provider::telemetry::init_logging;
use database::{Database, DatabaseConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().skip(1).any(|arg| arg == "--manifest") {
        println!("{}", serde_json::to_string_pretty(&Database::manifest())?);
        return Ok(());
    }
    let telemetry = init_logging("database")?;
    // Both configurations first: a bad variable stops the start before the database is waited for.
    let config = Config::from_env()?;
    let database = DatabaseConfig::from_env()?;
    let provider = tokio::select! {
        provider = Database::connect(&database) => provider?,
        () = terminated() => {
            tracing::info!("stopped while waiting for the database");
            telemetry.shutdown().await;
            return Ok(());
        }
    };
    let served = arbv_provider::serve_with(provider, config).await;
    telemetry.shutdown().await;
    Ok(served?)
}

/// SIGINT or SIGTERM, while the runtime's own handlers are not installed yet.
async fn terminated() {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm.recv() => {}
    }
}
