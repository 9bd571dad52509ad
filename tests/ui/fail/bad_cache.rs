use arbv_provider::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Query {
    city: String,
}

fn city_key(query: &Query) -> String {
    query.city.clone()
}

struct Weather;

#[provider]
impl Weather {
    #[action(cache = "10 minutes please")]
    async fn malformed(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache = "0s")]
    async fn zero(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache = memcached("1m"))]
    async fn unknown_store(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache = 600)]
    async fn bare_number(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache = "10m")]
    async fn nothing_to_keep(&self, _payload: Query) {}

    #[action(cache_key = "payload.city")]
    async fn key_without_cache(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache = "10m", cache_key = "body.city")]
    async fn key_of_another_part(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache = "10m", cache_key = ["payload.city", "payload.city"])]
    async fn key_twice(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache = "10m", cache_key = [])]
    async fn empty_key(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache = "10m", cache_key = "account.api_key")]
    async fn account_key_without_account(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache = "10m", cache_key = city_key)]
    async fn key_function_without_payload(&self) -> Value {
        json!("Paris")
    }

    #[action(cache = "10m", cache_refresh = "options.refresh")]
    async fn nested_refresh(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache_ttl_env = "CACHE_TTL", cache_mark = "cached")]
    async fn ttl_and_mark_without_cache(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(cache = "10m", cache_ttl_env = "cache ttl", cache_mark = "meta.cached")]
    async fn malformed_ttl_env_and_mark(&self, payload: Query) -> Value {
        json!(payload.city)
    }
}

fn main() {}
