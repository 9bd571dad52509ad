//! The weather provider end to end: tasks from a dev hub over gRPC, the provider calling a stub
//! of OpenWeatherMap. For each rule (error mappings, cache, retries, rate limit), what the hub
//! got back and what the stub received: path, query, and how many requests.

mod support;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arbv_provider::dev_hub::{DevHub, RunningServer};
use arbv_tests::{RunningProvider, config, start_hub};
use serde_json::{Value, json};
use support::*;
use weather::Weather;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PROVIDER: &str = "weather";

/// A dev hub, the weather provider serving it, and the API it calls.
struct Rig {
    hub: DevHub,
    server: RunningServer,
    provider: RunningProvider,
}

impl Rig {
    async fn start(api_url: &str) -> Self {
        let (hub, server) = start_hub(Duration::from_secs(2)).await;
        let weather = Weather::new(api_url).expect("a base URL");
        let provider = RunningProvider::start(weather, config(&server.url()).build().unwrap());
        Self {
            hub,
            server,
            provider,
        }
    }

    /// Sends one task and waits for its envelope.
    async fn ask(&self, action: &str, payload: Value, key: &str) -> Value {
        let id = self
            .hub
            .enqueue(PROVIDER, action, payload, Some(account(key)));
        self.hub
            .wait_result(&id, Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("no answer to {action} within 60 s"))
    }

    async fn stop(self) {
        self.provider.stop().await.expect("a clean shutdown");
        self.server.stop().await;
    }
}

fn response(envelope: &Value) -> &Value {
    &envelope["data"]["response"]
}

#[tokio::test]
async fn current_weather_comes_back_through_the_hub() {
    let stub = MockServer::start().await;
    current_request("London", API_KEY, "metric")
        .respond_with(ResponseTemplate::new(200).set_body_json(london_current()))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let envelope = rig
        .ask("get_current_weather", json!({"city": "London"}), API_KEY)
        .await;

    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(
        response(&envelope),
        &json!({
            "city": "London", "temperature": 12.34, "feels_like": 11.52, "humidity": 78,
            "description": "overcast clouds", "wind_speed": 4.63, "units": "metric"
        })
    );
    let requests = stub.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url.path(), "/data/2.5/weather");
    assert_eq!(
        requests[0].url.query(),
        Some(format!("q=London&appid={API_KEY}&units=metric").as_str())
    );
    rig.stop().await;
}

#[tokio::test]
async fn current_weather_is_cached_per_city_and_units_for_every_account() {
    let stub = MockServer::start().await;
    current_request("London", API_KEY, "metric")
        .respond_with(ResponseTemplate::new(200).set_body_json(london_current()))
        .expect(1)
        .mount(&stub)
        .await;
    current_request("London", API_KEY, "imperial")
        .respond_with(ResponseTemplate::new(200).set_body_json(london_current()))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let first = rig
        .ask("get_current_weather", json!({"city": "London"}), API_KEY)
        .await;
    // The default written out, another case, another account: the same question.
    let explicit = rig
        .ask(
            "get_current_weather",
            json!({"city": "london", "units": "metric"}),
            OTHER_KEY,
        )
        .await;
    let imperial = rig
        .ask(
            "get_current_weather",
            json!({"city": "London", "units": "imperial"}),
            API_KEY,
        )
        .await;

    assert_eq!(first["status"], "success");
    assert!(first["data"].get("cached").is_none(), "{first}");
    assert_eq!(explicit["status"], "success");
    assert_eq!(explicit["data"]["cached"], true, "{explicit}");
    assert_eq!(response(&explicit), response(&first));
    assert!(imperial["data"].get("cached").is_none(), "{imperial}");
    assert_eq!(response(&imperial)["units"], "imperial");
    // One request per (city, units), none with the other account's key.
    let requests = stub.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| query_pairs(r).contains(&("appid".to_owned(), API_KEY.to_owned())))
    );
    rig.stop().await;
}

#[tokio::test]
async fn forecasts_are_not_cached() {
    let stub = MockServer::start().await;
    forecast_request("London", API_KEY, "metric", 24)
        .respond_with(ResponseTemplate::new(200).set_body_json(london_forecast()))
        .expect(2)
        .mount(&stub)
        .await;
    forecast_request("London", API_KEY, "metric", 8)
        .respond_with(ResponseTemplate::new(200).set_body_json(london_forecast()))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let mut answers = Vec::new();
    for payload in [
        json!({"city": "London"}),
        json!({"city": "London", "units": "metric", "days": 3}),
        json!({"city": "London", "days": 1}),
    ] {
        answers.push(rig.ask("get_forecast", payload, API_KEY).await);
    }

    for envelope in &answers {
        assert_eq!(envelope["status"], "success", "{envelope}");
        assert_eq!(response(envelope)["city"], "London");
        assert_eq!(
            response(envelope)["items"][0]["time"],
            "2024-11-29T15:00:00Z"
        );
    }
    let paths: Vec<_> = stub
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(paths, ["/data/2.5/forecast"; 3]);
    rig.stop().await;
}

#[tokio::test]
async fn a_refused_key_is_unauthorized_at_the_first_try() {
    let stub = MockServer::start().await;
    current_request("London", API_KEY, "metric")
        .respond_with(invalid_key())
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let envelope = rig
        .ask("get_current_weather", json!({"city": "London"}), API_KEY)
        .await;

    assert_eq!(envelope["status"], "error");
    assert_eq!(response(&envelope)["error_code"], "UNAUTHORIZED");
    assert_eq!(response(&envelope)["details"]["attempts"], 1);
    assert!(!envelope.to_string().contains(API_KEY));
    rig.stop().await;
}

#[tokio::test]
async fn an_unknown_city_is_city_not_found_and_not_cached() {
    let stub = MockServer::start().await;
    forecast_request("Atlantis", API_KEY, "metric", 24)
        .respond_with(city_not_found())
        .expect(1)
        .mount(&stub)
        .await;
    current_request("Atlantis", API_KEY, "metric")
        .respond_with(city_not_found())
        .expect(2)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let forecast = rig
        .ask("get_forecast", json!({"city": "Atlantis"}), API_KEY)
        .await;
    let current = rig
        .ask("get_current_weather", json!({"city": "Atlantis"}), API_KEY)
        .await;
    let again = rig
        .ask("get_current_weather", json!({"city": "Atlantis"}), API_KEY)
        .await;

    for envelope in [&forecast, &current, &again] {
        assert_eq!(envelope["status"], "error", "{envelope}");
        assert_eq!(envelope["message"], "City not found: Atlantis");
        assert_eq!(response(envelope)["error_code"], "CITY_NOT_FOUND");
    }
    rig.stop().await;
}

#[tokio::test]
async fn a_429_is_answered_limit_with_its_wait_and_not_retried() {
    let stub = MockServer::start().await;
    current_request("London", API_KEY, "metric")
        .respond_with(too_many_requests().insert_header("Retry-After", "42"))
        .expect(1)
        .mount(&stub)
        .await;
    forecast_request("London", API_KEY, "metric", 24)
        .respond_with(too_many_requests())
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let with_header = rig
        .ask("get_current_weather", json!({"city": "London"}), API_KEY)
        .await;
    let without = rig
        .ask("get_forecast", json!({"city": "London"}), API_KEY)
        .await;

    assert_eq!(with_header["status"], "limit", "{with_header}");
    assert_eq!(response(&with_header)["wait_time"], 42.0);
    assert_eq!(without["status"], "limit", "{without}");
    assert_eq!(response(&without)["wait_time"], 60.0);
    rig.stop().await;
}

#[tokio::test]
async fn a_server_error_is_tried_three_times_then_unavailable() {
    let stub = MockServer::start().await;
    current_request("London", API_KEY, "metric")
        .respond_with(bad_gateway())
        .expect(3)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let envelope = rig
        .ask("get_current_weather", json!({"city": "London"}), API_KEY)
        .await;

    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(response(&envelope)["error_code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(response(&envelope)["details"]["attempts"], 3);
    assert_eq!(response(&envelope)["details"]["http_status"], 502);
    rig.stop().await;
}

#[tokio::test]
async fn a_server_error_that_passes_is_answered_by_the_retry() {
    let stub = MockServer::start().await;
    forecast_request("London", API_KEY, "metric", 24)
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .with_priority(1)
        .mount(&stub)
        .await;
    forecast_request("London", API_KEY, "metric", 24)
        .respond_with(ResponseTemplate::new(200).set_body_json(london_forecast()))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let envelope = rig
        .ask("get_forecast", json!({"city": "London"}), API_KEY)
        .await;

    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(response(&envelope)["items"].as_array().unwrap().len(), 3);
    rig.stop().await;
}

/// A server that accepts connections and closes them at once, counting them.
fn slamming_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(connection);
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_dropped_connection_is_tried_three_times_then_unavailable() {
    let (url, accepted) = slamming_server();
    let rig = Rig::start(&url).await;

    let envelope = rig
        .ask("get_current_weather", json!({"city": "London"}), API_KEY)
        .await;

    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(response(&envelope)["error_code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(response(&envelope)["details"]["attempts"], 3);
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert!(!envelope.to_string().contains(API_KEY), "{envelope}");
    rig.stop().await;
}

#[tokio::test]
async fn sixty_calls_a_minute_per_key_across_both_actions() {
    let stub = MockServer::start().await;
    Mock::given(path("/data/2.5/forecast"))
        .respond_with(ResponseTemplate::new(200).set_body_json(london_forecast()))
        .expect(60)
        .mount(&stub)
        .await;
    Mock::given(path("/data/2.5/weather"))
        .respond_with(ResponseTemplate::new(200).set_body_json(london_current()))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    // 59 forecasts and one current weather spend the key's minute.
    let mut ids = Vec::new();
    for n in 0..59 {
        let payload = json!({"city": format!("City {n}")});
        ids.push(
            rig.hub
                .enqueue(PROVIDER, "get_forecast", payload, Some(account(API_KEY))),
        );
    }
    for id in ids {
        let envelope = rig
            .hub
            .wait_result(&id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(envelope["status"], "success", "{envelope}");
    }
    let sixtieth = rig
        .ask("get_current_weather", json!({"city": "Paris"}), API_KEY)
        .await;
    let over = rig
        .ask("get_current_weather", json!({"city": "Rome"}), API_KEY)
        .await;
    let other_key = rig
        .ask("get_forecast", json!({"city": "Rome"}), OTHER_KEY)
        .await;
    // A cached answer spends nothing.
    let cached = rig
        .ask("get_current_weather", json!({"city": "Paris"}), API_KEY)
        .await;

    assert_eq!(sixtieth["status"], "success", "{sixtieth}");
    assert_eq!(over["status"], "limit", "{over}");
    let wait = response(&over)["wait_time"].as_f64().unwrap();
    assert!(wait > 0.0 && wait <= 60.0, "{over}");
    let budget = response(&over)["key"].as_str().unwrap();
    assert!(budget.starts_with("account.api_key=#"), "{over}");
    assert!(!over.to_string().contains(API_KEY), "{over}");
    assert_eq!(other_key["status"], "success", "{other_key}");
    assert_eq!(cached["status"], "success", "{cached}");
    assert_eq!(cached["data"]["cached"], true);
    rig.stop().await;
}
