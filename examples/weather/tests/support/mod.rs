//! A stub of OpenWeatherMap speaking the 2.5 API's shapes, and the answers it gives, copied from
//! the real API's (trimmed of nothing the provider might read).

#![allow(dead_code)]

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockBuilder, ResponseTemplate};

/// The API key the tests' accounts hold: distinctive, so that a test can look for it.
pub const API_KEY: &str = "owm-key-3f9a1c07d2e84b6b9e55a1d0c4f7e2b8";
/// A second key, another account.
pub const OTHER_KEY: &str = "owm-key-0d4e2f6a8b1c3e5f7a9b0c2d4e6f8a1b";

pub fn account(key: &str) -> Value {
    json!({ "api_key": key })
}

/// `GET /data/2.5/weather?q=London&appid=…&units=metric`, as OpenWeatherMap answers it.
pub fn london_current() -> Value {
    json!({
        "coord": {"lon": -0.1257, "lat": 51.5085},
        "weather": [{"id": 804, "main": "Clouds", "description": "overcast clouds", "icon": "04d"}],
        "base": "stations",
        "main": {
            "temp": 12.34, "feels_like": 11.52, "temp_min": 11.1, "temp_max": 13.4,
            "pressure": 1012, "humidity": 78, "sea_level": 1012, "grnd_level": 1008
        },
        "visibility": 10000,
        "wind": {"speed": 4.63, "deg": 240, "gust": 7.2},
        "clouds": {"all": 100},
        "dt": 1732881600,
        "sys": {"type": 2, "id": 2075535, "country": "GB", "sunrise": 1732866011, "sunset": 1732895542},
        "timezone": 0,
        "id": 2643743,
        "name": "London",
        "cod": 200
    })
}

/// One three-hour step of `/data/2.5/forecast`.
fn step(dt: i64, temp: f64, main: &str, description: &str, dt_txt: &str) -> Value {
    json!({
        "dt": dt,
        "main": {
            "temp": temp, "feels_like": temp - 1.1, "temp_min": temp - 0.4, "temp_max": temp,
            "pressure": 1013, "sea_level": 1013, "grnd_level": 1009, "humidity": 80, "temp_kf": 0.3
        },
        "weather": [{"id": 500, "main": main, "description": description, "icon": "10d"}],
        "clouds": {"all": 100},
        "wind": {"speed": 5.1, "deg": 230, "gust": 9.8},
        "visibility": 10000,
        "pop": 0.4,
        "sys": {"pod": "d"},
        "dt_txt": dt_txt
    })
}

/// `GET /data/2.5/forecast?q=London&…&cnt=…`, three steps of it.
pub fn london_forecast() -> Value {
    json!({
        "cod": "200",
        "message": 0,
        "cnt": 3,
        "list": [
            step(1732892400, 11.2, "Rain", "light rain", "2024-11-29 15:00:00"),
            step(1732903200, 10.05, "Clouds", "broken clouds", "2024-11-29 18:00:00"),
            step(1732914000, 9.4, "Clear", "clear sky", "2024-11-29 21:00:00")
        ],
        "city": {
            "id": 2643743, "name": "London", "coord": {"lat": 51.5085, "lon": -0.1257},
            "country": "GB", "population": 1000000, "timezone": 0,
            "sunrise": 1732866011, "sunset": 1732895542
        }
    })
}

/// OpenWeatherMap's 401.
pub fn invalid_key() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({
        "cod": 401,
        "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info."
    }))
}

/// OpenWeatherMap's 404.
pub fn city_not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({"cod": "404", "message": "city not found"}))
}

/// OpenWeatherMap's 429.
pub fn too_many_requests() -> ResponseTemplate {
    ResponseTemplate::new(429).set_body_json(json!({
        "cod": 429,
        "message": "Your account is temporary blocked due to exceeding of requests limitation of your subscription type. Please choose the proper subscription https://openweathermap.org/price"
    }))
}

/// A gateway failing in front of the API.
pub fn bad_gateway() -> ResponseTemplate {
    ResponseTemplate::new(502).set_body_string("<html><body><h1>502 Bad Gateway</h1></body></html>")
}

/// `GET /data/2.5/weather` for `city` with `key`, in `units`: what the provider must send.
pub fn current_request(city: &str, key: &str, units: &str) -> MockBuilder {
    Mock::given(method("GET"))
        .and(path("/data/2.5/weather"))
        .and(query_param("q", city))
        .and(query_param("appid", key))
        .and(query_param("units", units))
}

/// `GET /data/2.5/forecast` for `city` with `key`, in `units`, `cnt` steps.
pub fn forecast_request(city: &str, key: &str, units: &str, cnt: u32) -> MockBuilder {
    Mock::given(method("GET"))
        .and(path("/data/2.5/forecast"))
        .and(query_param("q", city))
        .and(query_param("appid", key))
        .and(query_param("units", units))
        .and(query_param("cnt", cnt.to_string()))
}

/// The query of a request the stub received, as pairs in their order.
pub fn query_pairs(request: &wiremock::Request) -> Vec<(String, String)> {
    request
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
