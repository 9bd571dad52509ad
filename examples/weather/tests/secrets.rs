//! The API key travels only to OpenWeatherMap: every log line of the process (at trace level,
//! the HTTP stack's included) and every envelope the hub gets, whatever happened upstream,
//! are free of it. Its own binary: the log capture is the process's global subscriber.

mod support;

use std::time::Duration;

use arbv_tests::{RunningProvider, config, start_hub};
use serde_json::json;
use support::*;
use weather::Weather;
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn the_api_key_is_in_no_log_line_and_no_envelope() {
    let logs = arbv_tests::logs::global(tracing::Level::TRACE);
    let stub = MockServer::start().await;
    current_request("London", API_KEY, "metric")
        .respond_with(ResponseTemplate::new(200).set_body_json(london_current()))
        .mount(&stub)
        .await;
    current_request("Atlantis", API_KEY, "metric")
        .respond_with(city_not_found())
        .mount(&stub)
        .await;
    current_request("Oslo", API_KEY, "metric")
        .respond_with(invalid_key())
        .mount(&stub)
        .await;
    current_request("Lima", API_KEY, "metric")
        .respond_with(bad_gateway())
        .mount(&stub)
        .await;
    forecast_request("Lima", API_KEY, "metric", 24)
        .respond_with(too_many_requests())
        .mount(&stub)
        .await;
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(
        Weather::new(&stub.uri()).unwrap(),
        config(&server.url()).build().unwrap(),
    );

    let mut envelopes = Vec::new();
    for (action, city) in [
        ("get_current_weather", "London"),
        ("get_current_weather", "Atlantis"),
        ("get_current_weather", "Oslo"),
        ("get_current_weather", "Lima"),
        ("get_forecast", "Lima"),
    ] {
        let id = hub.enqueue(
            "weather",
            action,
            json!({"city": city}),
            Some(account(API_KEY)),
        );
        envelopes.push(hub.wait_result(&id, Duration::from_secs(60)).await.unwrap());
    }
    provider.stop().await.unwrap();
    server.stop().await;

    let statuses: Vec<_> = envelopes.iter().map(|e| e["status"].clone()).collect();
    assert_eq!(
        statuses,
        ["success", "error", "error", "error", "limit"].map(|s| json!(s))
    );
    for envelope in &envelopes {
        assert!(!envelope.to_string().contains(API_KEY), "{envelope}");
    }
    let text = logs.text();
    assert!(
        text.contains("OpenWeatherMap answered"),
        "the capture holds the provider's lines"
    );
    assert!(
        !text.contains(API_KEY),
        "the key is in the logs:\n{}",
        logs.lines_with(&[API_KEY]).join("\n")
    );
}
