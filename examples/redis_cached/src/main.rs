//! The Redis-cached example as a process. `REDIS_URL` (default `redis://127.0.0.1:6379`) is
//! the Redis its cache uses, `CACHE_TTL` the seconds an answer is kept (default 300); the rest
//! is the usual provider configuration (`PROVIDER_AUTH_TOKEN`, `HUB_GRPC_URL`, ...).

use arbv_provider::Config;
use arbv_provider::prelude::*;
use arbv_provider::telemetry::init_logging;
use redis_cached::RedisCached;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().skip(1).any(|arg| arg == "--manifest") {
        println!(
            "{}",
            serde_json::to_string_pretty(&RedisCached::manifest())?
        );
        return Ok(());
    }
    let telemetry = init_logging("redis-cached")?;
    // `REDIS_URL` names the cache's Redis, as in the seed's example; the framework's own
    // `PROVIDER_REDIS_URL` is the fallback.
    let config = Config::from_lookup(|name| match name {
        "PROVIDER_REDIS_URL" => std::env::var("REDIS_URL")
            .or_else(|_| std::env::var(name))
            .ok(),
        _ => std::env::var(name).ok(),
    })?;
    let served = RedisCached::default().serve_with(config).await;
    telemetry.shutdown().await;
    Ok(served?)
}
