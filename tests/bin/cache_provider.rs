//! A provider process for `tests/caching.rs`, declared as a user would: `cache = redis("10m")`
//! keeps its answers in the Redis at `PROVIDER_REDIS_URL`, so that two processes share them.
//! Each answer says which process ran the action, and how many times it has.

use std::sync::atomic::{AtomicUsize, Ordering};

use arbv_provider::prelude::*;

#[derive(Default)]
struct CacheProvider {
    runs: AtomicUsize,
}

#[derive(Deserialize, JsonSchema)]
struct City {
    city: String,
}

#[provider(name = "cache-test-provider")]
impl CacheProvider {
    #[action(cache = redis("10m"))]
    async fn forecast(&self, payload: City) -> Value {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        json!({
            "city": payload.city,
            "pid": std::process::id(),
            "run": run,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), arbv_provider::Error> {
    CacheProvider::default().serve().await
}
