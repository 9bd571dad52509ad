//! A provider process for `tests/caching.rs`: its cache backend is the Redis at
//! `PROVIDER_REDIS_URL`, so that two processes share their answers. Each answer says which
//! process ran the action, and how many times it has.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arbv_provider::prelude::*;
use arbv_provider::{CacheBackend, CacheSpec, ProviderDef};

#[derive(Default)]
struct CacheProvider {
    runs: AtomicUsize,
}

impl Provider for CacheProvider {
    fn definition() -> ProviderDef<Self> {
        let mut def = ProviderDef::<Self>::new("cache-test-provider");
        let url = std::env::var("PROVIDER_REDIS_URL")
            .unwrap_or_else(|_| arbv_provider::config::DEFAULT_REDIS_URL.to_owned());
        def.cache_backend(CacheBackend::redis(&url).expect("PROVIDER_REDIS_URL is a Redis URL"));
        def.action("forecast", |this, mut call| async move {
            let payload: Value = call.payload()?;
            let run = this.runs.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(ActionResponse::success(json!({
                "city": payload["city"],
                "pid": std::process::id(),
                "run": run,
            })))
        })
        .cache(CacheSpec::new(Duration::from_secs(600)));
        def
    }
}

#[tokio::main]
async fn main() -> Result<(), arbv_provider::Error> {
    CacheProvider::default().serve().await
}
