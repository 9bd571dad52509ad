//! Without `redis`: an action that caches in Redis stops the provider at start with an error
//! that names the feature, instead of running uncached.

use std::time::Duration;

use arbv_provider::{
    ActionResponse, CacheSpec, CacheStore, Config, Provider, ProviderDef, Runtime,
};

struct Weather;

impl Provider for Weather {
    fn definition() -> ProviderDef<Self> {
        let mut def = ProviderDef::new("weather");
        def.action("forecast", |_this, _call| async move {
            Ok(ActionResponse::success("sunny"))
        })
        .cache(CacheSpec {
            store: CacheStore::Redis,
            ..CacheSpec::new(Duration::from_secs(600))
        });
        def
    }
}

fn main() {
    let config = Config::builder().auth_token("token").build().unwrap();
    let message = Runtime::new(Weather, config)
        .err()
        .expect("a Redis cache without the redis feature is refused")
        .to_string();
    assert!(
        message.contains("forecast") && message.contains("enable the `redis` feature"),
        "{message}"
    );
}
