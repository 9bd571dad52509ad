//! Every form of `cache`, `cache_key`, `cache_refresh` and `retry` compiles, and the manifest
//! shows what was declared.
use arbv_provider::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Query {
    city: String,
    #[serde(default)]
    units: Option<String>,
    #[serde(default)]
    refresh: bool,
}

#[derive(Deserialize, JsonSchema)]
struct Account {
    api_key: String,
}

fn city_key(query: &Query) -> String {
    query.city.to_lowercase()
}

struct Weather;

#[provider]
impl Weather {
    #[action(cache = "10m")]
    async fn whole_input(&self, payload: Query, account: Account) -> Value {
        json!([payload.city, account.api_key.len()])
    }

    #[action(cache = "1h 30m", cache_key = "payload.city")]
    async fn one_path(&self, payload: Query) -> Value {
        json!(payload.units)
    }

    #[action(cache = "30s", cache_key = ["payload.city", "account.api_key"], cache_refresh = "refresh")]
    async fn two_paths(&self, payload: Query, account: Account) -> Result<Value, ActionError> {
        Ok(json!([payload.city, payload.refresh, account.api_key]))
    }

    #[action(cache = "5m", cache_key = city_key, cache_ttl_env = "WEATHER_CACHE_TTL", cache_mark = "cached")]
    fn by_function(&self, payload: Query) -> Value {
        json!(payload.city)
    }

    #[action(retry(attempts = 3))]
    async fn retried(&self) -> Result<Value, ActionError> {
        Err(ActionError::new("upstream 503").transient())
    }

    #[action(timeout = "30s", retry(attempts = 5, backoff = "100ms..2s", attempt_timeout = "3s"), cache = "1m")]
    async fn both(&self, payload: Query) -> Result<Value, ActionError> {
        Ok(json!(payload.city))
    }
}

fn main() {
    let manifest = Weather::manifest();
    let action = |name: &str| {
        manifest["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(action("whole_input")["cache"]["ttl_s"], 600.0);
    assert_eq!(action("whole_input")["cache"]["key"], "input");
    assert_eq!(action("one_path")["cache"]["ttl_s"], 5400.0);
    assert_eq!(action("two_paths")["cache"]["key"], json!(["payload.city", "account.api_key"]));
    assert_eq!(action("two_paths")["cache"]["refresh"], "refresh");
    assert_eq!(action("by_function")["cache"]["key"], "function");
    assert_eq!(action("by_function")["cache"]["ttl_env"], "WEATHER_CACHE_TTL");
    assert_eq!(action("by_function")["cache"]["hit_mark"], "cached");
    assert_eq!(action("retried")["retry"]["attempts"], 3);
    assert_eq!(action("retried")["cache"], Value::Null);
    let both = action("both");
    assert_eq!(both["retry"]["attempts"], 5);
    assert_eq!(both["retry"]["backoff_first_s"], 0.1);
    assert_eq!(both["retry"]["backoff_cap_s"], 2.0);
    assert_eq!(both["retry"]["attempt_timeout_s"], 3.0);
    assert_eq!(both["cache"]["ttl_s"], 60.0);
}
