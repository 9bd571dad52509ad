//! The actions called as plain methods against a stub of OpenWeatherMap: one call each (the
//! retries, the cache and the rate limit are the runtime's, tested through the hub in
//! `hub.rs`). What each answer of the API becomes, and what each request carries.

mod support;

use std::time::Duration;

use arbv_provider::prelude::*;
use arbv_provider::retry::Transient;
use chrono::{TimeZone, Utc};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use support::*;
use weather::{
    CurrentWeatherRequest, ForecastRequest, Units, Weather, WeatherAccount, current_weather_key,
    retry_after,
};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn current(payload: Value) -> CurrentWeatherRequest {
    serde_json::from_value(payload).expect("a valid payload")
}

fn forecast(payload: Value) -> ForecastRequest {
    serde_json::from_value(payload).expect("a valid payload")
}

fn key(api_key: &str) -> WeatherAccount {
    serde_json::from_value(account(api_key)).unwrap()
}

async fn provider(stub: &MockServer) -> Weather {
    Weather::new(&stub.uri()).expect("the stub's URL is a base URL")
}

#[tokio::test]
async fn current_weather_is_read_from_the_answer_in_metric_by_default() {
    let stub = MockServer::start().await;
    current_request("London", API_KEY, "metric")
        .respond_with(ResponseTemplate::new(200).set_body_json(london_current()))
        .expect(1)
        .mount(&stub)
        .await;

    let answer = provider(&stub)
        .await
        .get_current_weather(current(json!({"city": "London"})), key(API_KEY))
        .await
        .expect("a success");

    assert_eq!(answer.status(), Status::Success);
    assert_eq!(
        answer.response(),
        &json!({
            "city": "London", "temperature": 12.34, "feels_like": 11.52, "humidity": 78,
            "description": "overcast clouds", "wind_speed": 4.63, "units": "metric"
        })
    );
    let requests = stub.received_requests().await.unwrap();
    assert_eq!(
        query_pairs(&requests[0]),
        [
            ("q".to_owned(), "London".to_owned()),
            ("appid".to_owned(), API_KEY.to_owned()),
            ("units".to_owned(), "metric".to_owned())
        ]
    );
    assert!(
        requests[0].headers.get("user-agent").is_some(),
        "a User-Agent is sent"
    );
}

#[tokio::test]
async fn the_units_asked_for_are_sent_and_answered() {
    let stub = MockServer::start().await;
    current_request("Austin,TX,US", API_KEY, "imperial")
        .respond_with(ResponseTemplate::new(200).set_body_json(london_current()))
        .expect(1)
        .mount(&stub)
        .await;

    let answer = provider(&stub)
        .await
        .get_current_weather(
            current(json!({"city": "Austin,TX,US", "units": "imperial"})),
            key(API_KEY),
        )
        .await
        .unwrap();

    assert_eq!(answer.response()["units"], "imperial");
}

#[tokio::test]
async fn a_forecast_asks_eight_steps_a_day_and_answers_utc_times() {
    let stub = MockServer::start().await;
    forecast_request("London", API_KEY, "metric", 24)
        .respond_with(ResponseTemplate::new(200).set_body_json(london_forecast()))
        .expect(1)
        .mount(&stub)
        .await;
    forecast_request("London", API_KEY, "standard", 40)
        .respond_with(ResponseTemplate::new(200).set_body_json(london_forecast()))
        .expect(1)
        .mount(&stub)
        .await;
    let weather = provider(&stub).await;

    let three_days = weather
        .get_forecast(forecast(json!({"city": "London"})), key(API_KEY))
        .await
        .unwrap();
    let five_days = weather
        .get_forecast(
            forecast(json!({"city": "London", "units": "standard", "days": 5})),
            key(API_KEY),
        )
        .await
        .unwrap();

    assert_eq!(
        three_days.response(),
        &json!({
            "city": "London",
            "units": "metric",
            "items": [
                {"time": "2024-11-29T15:00:00Z", "temperature": 11.2, "description": "light rain"},
                {"time": "2024-11-29T18:00:00Z", "temperature": 10.05, "description": "broken clouds"},
                {"time": "2024-11-29T21:00:00Z", "temperature": 9.4, "description": "clear sky"}
            ]
        })
    );
    assert_eq!(five_days.response()["units"], "standard");
}

#[tokio::test]
async fn a_refused_key_is_unauthorized_and_never_quoted() {
    let stub = MockServer::start().await;
    current_request("London", API_KEY, "metric")
        .respond_with(invalid_key())
        .expect(1)
        .mount(&stub)
        .await;

    let error = provider(&stub)
        .await
        .get_current_weather(current(json!({"city": "London"})), key(API_KEY))
        .await
        .expect_err("a 401 is an error");

    assert_eq!(error.code(), Some("UNAUTHORIZED"));
    assert!(!error.is_transient());
    assert!(error.message().contains("Invalid API key"), "{error}");
    assert!(!format!("{error:?}").contains(API_KEY));
    assert_eq!(error.details()["http_status"], 401);
}

#[tokio::test]
async fn an_unknown_city_is_named_in_the_error() {
    let stub = MockServer::start().await;
    current_request("Atlantis", API_KEY, "metric")
        .respond_with(city_not_found())
        .expect(1)
        .mount(&stub)
        .await;

    let error = provider(&stub)
        .await
        .get_current_weather(current(json!({"city": "Atlantis"})), key(API_KEY))
        .await
        .expect_err("a 404 is an error");

    assert_eq!(error.code(), Some("CITY_NOT_FOUND"));
    assert_eq!(error.message(), "City not found: Atlantis");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_429_is_a_limit_for_its_retry_after_or_a_minute() {
    let stub = MockServer::start().await;
    current_request("London", API_KEY, "metric")
        .respond_with(too_many_requests().insert_header("Retry-After", "17"))
        .expect(1)
        .mount(&stub)
        .await;
    forecast_request("London", API_KEY, "metric", 24)
        .respond_with(too_many_requests())
        .expect(1)
        .mount(&stub)
        .await;
    let weather = provider(&stub).await;

    let with_header = weather
        .get_current_weather(current(json!({"city": "London"})), key(API_KEY))
        .await
        .unwrap();
    let without = weather
        .get_forecast(forecast(json!({"city": "London"})), key(API_KEY))
        .await
        .unwrap();

    assert_eq!(with_header.status(), Status::Limit);
    assert_eq!(with_header.response()["wait_time"], 17.0);
    assert_eq!(with_header.response()["upstream"], "openweathermap");
    assert_eq!(without.status(), Status::Limit);
    assert_eq!(without.response()["wait_time"], 60.0);
}

#[test]
fn retry_after_is_read_in_seconds_or_as_a_date_and_is_at_least_a_second() {
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
    let header = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    };
    assert_eq!(
        retry_after(&header("120"), now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        retry_after(&header("Sun, 29 Nov 2026 12:01:30 GMT"), now),
        Some(Duration::from_secs(90))
    );
    assert_eq!(retry_after(&header("0"), now), Some(Duration::from_secs(1)));
    assert_eq!(
        retry_after(&header("Sun, 29 Nov 2026 11:00:00 GMT"), now),
        Some(Duration::from_secs(1))
    );
    assert_eq!(retry_after(&header("soon"), now), None);
    assert_eq!(retry_after(&HeaderMap::new(), now), None);
}

#[tokio::test]
async fn a_server_error_is_transient_and_unavailable() {
    let stub = MockServer::start().await;
    Mock::given(path("/data/2.5/weather"))
        .respond_with(bad_gateway())
        .expect(1)
        .mount(&stub)
        .await;

    let error = provider(&stub)
        .await
        .get_current_weather(current(json!({"city": "London"})), key(API_KEY))
        .await
        .expect_err("a 502 is an error");

    assert_eq!(error.code(), Some("UPSTREAM_UNAVAILABLE"));
    assert!(error.is_transient(), "the runtime retries it");
    assert_eq!(error.details()["http_status"], 502);
}

#[tokio::test]
async fn a_connection_that_fails_is_transient_and_does_not_show_the_url() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);

    let error = Weather::new(&url)
        .unwrap()
        .get_current_weather(current(json!({"city": "London"})), key(API_KEY))
        .await
        .expect_err("nothing listens");

    assert_eq!(error.code(), Some("UPSTREAM_UNAVAILABLE"));
    assert!(error.is_transient());
    assert!(
        error
            .message()
            .starts_with("OpenWeatherMap could not be reached"),
        "{error}"
    );
    assert!(!error.message().contains(API_KEY), "{error}");
    assert!(!error.message().contains("appid"), "{error}");
}

#[tokio::test]
async fn an_answer_of_another_shape_is_an_error_that_is_not_retried() {
    let stub = MockServer::start().await;
    Mock::given(path("/data/2.5/weather"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"cod": 200})))
        .mount(&stub)
        .await;

    let error = provider(&stub)
        .await
        .get_current_weather(current(json!({"city": "London"})), key(API_KEY))
        .await
        .expect_err("no `main`");

    assert_eq!(error.code(), Some("UPSTREAM_INVALID_ANSWER"));
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it() {
    let stub = MockServer::start().await;
    Mock::given(path("/owm/data/2.5/weather"))
        .respond_with(ResponseTemplate::new(200).set_body_json(london_current()))
        .expect(1)
        .mount(&stub)
        .await;

    let answer = Weather::new(&format!("{}/owm/", stub.uri()))
        .unwrap()
        .get_current_weather(current(json!({"city": "London"})), key(API_KEY))
        .await
        .unwrap();

    assert_eq!(answer.response()["city"], "London");
}

#[test]
fn the_cache_key_fills_in_the_default_units_and_ignores_case() {
    let bare = current(json!({"city": "London"}));
    let explicit = current(json!({"city": " london ", "units": "metric"}));
    let imperial = current(json!({"city": "London", "units": "imperial"}));
    assert_eq!(current_weather_key(&bare), current_weather_key(&explicit));
    assert_ne!(current_weather_key(&bare), current_weather_key(&imperial));
    assert_eq!(current_weather_key(&imperial).1, Units::Imperial);
}

#[test]
fn a_base_url_that_is_not_http_is_refused_naming_the_variable() {
    let error = Weather::new("ftp://example.com").unwrap_err().to_string();
    assert!(
        error.starts_with("WEATHER_API_URL: `ftp://example.com`"),
        "{error}"
    );
    assert!(Weather::new("not a url").is_err());
}

#[test]
fn the_account_debug_hides_the_key() {
    assert!(!format!("{:?}", key(API_KEY)).contains(API_KEY));
}
