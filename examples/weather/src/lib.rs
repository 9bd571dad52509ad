//! The weather example provider: the [OpenWeatherMap](https://openweathermap.org/api) 2.5 API
//! behind two actions, with the quota handling a real deployment needs.
//!
//! - `get_current_weather {city, units = "metric"}` calls `GET {url}/data/2.5/weather` and
//!   answers `{city, temperature, feels_like, humidity, description, wind_speed, units}`. Its
//!   answers are kept 10 minutes per (city, units), shared by every account: the weather is
//!   public, and a second asker should not spend a quota on it.
//! - `get_forecast {city, units = "metric", days = 3}` calls `GET {url}/data/2.5/forecast` for
//!   `days × 8` three-hour steps and answers `{city, units, items: [{time, temperature,
//!   description}]}`.
//!
//! Both take the account `{"api_key": "…"}`, sent as `appid`, and share one budget of 60 calls
//! a minute per API key (the free tier's quota; the key is hashed in the budget's name). A 401
//! is answered `UNAUTHORIZED`, a 404 `CITY_NOT_FOUND`, a 429 `limit` with the `Retry-After` wait
//! (60 s without one); a 5xx or a connection that fails is tried three times in all, then
//! answered `UPSTREAM_UNAVAILABLE`.
//!
//! The base URL is `WEATHER_API_URL` (default `https://api.openweathermap.org`).

use std::fmt;
use std::time::Duration;

use arbv_provider::prelude::*;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

/// The variable holding the API's base URL.
pub const API_URL_VARIABLE: &str = "WEATHER_API_URL";
/// The real API.
pub const DEFAULT_API_URL: &str = "https://api.openweathermap.org";
/// How long one call may take in all; three tries and the waits between them fit the action's
/// 40 s timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait a 429 without `Retry-After` asks for.
pub const DEFAULT_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Three-hour steps in a day of forecast.
const STEPS_PER_DAY: u8 = 8;
/// How much of an upstream error body an error message quotes.
const QUOTED_BODY_BYTES: usize = 200;

/// The units of temperatures and wind speeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Units {
    /// °C and m/s.
    #[default]
    Metric,
    /// °F and mph.
    Imperial,
    /// Kelvin and m/s.
    Standard,
}

impl Units {
    /// The value of OpenWeatherMap's `units` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Units::Metric => "metric",
            Units::Imperial => "imperial",
            Units::Standard => "standard",
        }
    }
}

/// `get_current_weather`'s payload.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct CurrentWeatherRequest {
    /// The city as OpenWeatherMap's `q` takes it: `London`, `London,GB`, `Austin,TX,US`.
    #[schemars(length(min = 1, max = 200))]
    pub city: String,
    /// `metric` (°C, m/s), `imperial` (°F, mph) or `standard` (K, m/s).
    #[serde(default)]
    pub units: Units,
}

/// `get_forecast`'s payload.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct ForecastRequest {
    /// The city as OpenWeatherMap's `q` takes it.
    #[schemars(length(min = 1, max = 200))]
    pub city: String,
    /// `metric` (°C, m/s), `imperial` (°F, mph) or `standard` (K, m/s).
    #[serde(default)]
    pub units: Units,
    /// Days ahead, 1 to 5 (the free API's horizon), eight three-hour steps each.
    #[serde(default = "default_days")]
    #[schemars(range(min = 1, max = 5))]
    pub days: u8,
}

fn default_days() -> u8 {
    3
}

/// The account: an OpenWeatherMap API key.
#[derive(Clone, Deserialize, JsonSchema)]
pub struct WeatherAccount {
    /// The API key, sent as `appid`.
    #[schemars(length(min = 1))]
    pub api_key: String,
}

// Written by hand: the key never shows in a `Debug` output.
impl fmt::Debug for WeatherAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeatherAccount")
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// `get_current_weather`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurrentWeather {
    /// The city's name as OpenWeatherMap knows it.
    pub city: String,
    pub temperature: f64,
    pub feels_like: f64,
    /// Relative humidity, %.
    pub humidity: u32,
    pub description: String,
    pub wind_speed: f64,
    pub units: Units,
}

/// `get_forecast`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub city: String,
    pub units: Units,
    pub items: Vec<ForecastItem>,
}

/// One three-hour step of a forecast.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastItem {
    /// The step's time, RFC 3339 in UTC.
    pub time: String,
    pub temperature: f64,
    pub description: String,
}

/// The parts of OpenWeatherMap's answers that are read.
mod wire {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Current {
        pub name: String,
        pub main: Main,
        #[serde(default)]
        pub weather: Vec<Condition>,
        #[serde(default)]
        pub wind: Wind,
    }

    #[derive(Deserialize)]
    pub struct Main {
        pub temp: f64,
        #[serde(default)]
        pub feels_like: f64,
        #[serde(default)]
        pub humidity: u32,
    }

    #[derive(Deserialize)]
    pub struct Condition {
        pub description: String,
    }

    #[derive(Default, Deserialize)]
    pub struct Wind {
        pub speed: f64,
    }

    #[derive(Deserialize)]
    pub struct Forecast {
        pub list: Vec<Step>,
        pub city: City,
    }

    #[derive(Deserialize)]
    pub struct Step {
        pub dt: i64,
        pub main: StepMain,
        #[serde(default)]
        pub weather: Vec<Condition>,
    }

    #[derive(Deserialize)]
    pub struct StepMain {
        pub temp: f64,
    }

    #[derive(Deserialize)]
    pub struct City {
        pub name: String,
    }

    /// `{"cod": 401, "message": "Invalid API key. …"}`
    #[derive(Deserialize)]
    pub struct Error {
        pub message: String,
    }
}

/// The first condition's description, or none.
fn description(conditions: Vec<wire::Condition>) -> String {
    conditions
        .into_iter()
        .next()
        .map(|c| c.description)
        .unwrap_or_default()
}

/// What the provider cannot start without.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{API_URL_VARIABLE}: `{url}` is not an http or https base URL: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("the HTTP client cannot be built: {0}")]
    Client(#[source] reqwest::Error),
}

/// What one call to OpenWeatherMap came back with, when it is not an error.
enum Reply<T> {
    Answer(T),
    /// A 429: the hub should try again after this wait.
    Limited(Duration),
}

/// The weather provider: one HTTP client (its connections reused by every task) and the API's
/// base URL.
#[derive(Clone, Debug)]
pub struct Weather {
    client: reqwest::Client,
    base: Url,
}

impl Weather {
    /// A provider calling the API at `base_url` (`https://api.openweathermap.org`, or a stub).
    pub fn new(base_url: &str) -> Result<Self, SetupError> {
        let bad = |reason: &str| SetupError::BaseUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(base_url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad("the scheme must be http or https"));
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("arbv-weather/", env!("CARGO_PKG_VERSION")))
            // The API key travels in the query: a redirect would hand it to another address.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(SetupError::Client)?;
        Ok(Self { client, base })
    }

    /// A provider calling the API at `WEATHER_API_URL`, by default the real one.
    pub fn from_env() -> Result<Self, SetupError> {
        let url = std::env::var(API_URL_VARIABLE).unwrap_or_else(|_| DEFAULT_API_URL.to_owned());
        Self::new(&url)
    }

    /// `{base}/data/2.5/{endpoint}`, keeping a path the base URL has.
    fn endpoint(&self, endpoint: &str) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the URL can be a base")
            .pop_if_empty()
            .extend(["data", "2.5", endpoint]);
        url
    }

    /// `GET {base}/data/2.5/{endpoint}?q={city}&appid={key}&units={units}` and the extra
    /// parameters, with the answer's status mapped to what the hub gets.
    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        city: &str,
        units: Units,
        account: &WeatherAccount,
        extra: &[(&str, String)],
    ) -> Result<Reply<T>, ActionError> {
        let url = self.endpoint(endpoint);
        let mut query = vec![
            ("q", city.to_owned()),
            ("appid", account.api_key.clone()),
            ("units", units.as_str().to_owned()),
        ];
        query.extend(extra.iter().cloned());
        let response = self
            .client
            .get(url.clone())
            .query(&query)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        tracing::debug!(
            path = url.path(),
            status = status.as_u16(),
            "OpenWeatherMap answered"
        );
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map(Reply::Answer)
                .map_err(|e| {
                    ActionError::new(format!(
                        "OpenWeatherMap's answer is not what the 2.5 API returns: {e}"
                    ))
                    .with_code("UPSTREAM_INVALID_ANSWER")
                    .with_details(json!({ "http_status": status.as_u16() }))
                });
        }
        refusal(status, &headers, &body, city, &account.api_key)
    }
}

// The quota counts every call of a key, whatever the endpoint: one provider-wide budget, split
// per key by each action's `per`.
#[provider(name = "weather", rate_limit = "60/m")]
impl Weather {
    /// Current weather in a city. Kept 10 minutes per (city, units) for every account;
    /// OpenWeatherMap's 5xx and connection failures are tried three times in all.
    #[action(
        per = "account.api_key",
        cache = "10m",
        cache_key = current_weather_key,
        retry(attempts = 3, backoff = "500ms..5s"),
        timeout = "40s"
    )]
    pub async fn get_current_weather(
        &self,
        payload: CurrentWeatherRequest,
        account: WeatherAccount,
    ) -> Result<ActionResponse, ActionError> {
        let current: wire::Current = match self
            .get("weather", &payload.city, payload.units, &account, &[])
            .await?
        {
            Reply::Answer(current) => current,
            Reply::Limited(wait) => return Ok(upstream_limit(wait)),
        };
        Ok(ActionResponse::success(CurrentWeather {
            city: current.name,
            temperature: current.main.temp,
            feels_like: current.main.feels_like,
            humidity: current.main.humidity,
            description: description(current.weather),
            wind_speed: current.wind.speed,
            units: payload.units,
        }))
    }

    /// The forecast for the next 1 to 5 days in three-hour steps; 5xx and connection failures
    /// are tried three times in all.
    #[action(
        per = "account.api_key",
        retry(attempts = 3, backoff = "500ms..5s"),
        timeout = "40s"
    )]
    pub async fn get_forecast(
        &self,
        payload: ForecastRequest,
        account: WeatherAccount,
    ) -> Result<ActionResponse, ActionError> {
        let steps = u32::from(payload.days) * u32::from(STEPS_PER_DAY);
        let forecast: wire::Forecast = match self
            .get(
                "forecast",
                &payload.city,
                payload.units,
                &account,
                &[("cnt", steps.to_string())],
            )
            .await?
        {
            Reply::Answer(forecast) => forecast,
            Reply::Limited(wait) => return Ok(upstream_limit(wait)),
        };
        let items = forecast
            .list
            .into_iter()
            .map(|step| ForecastItem {
                time: DateTime::from_timestamp(step.dt, 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
                temperature: step.main.temp,
                description: description(step.weather),
            })
            .collect();
        Ok(ActionResponse::success(Forecast {
            city: forecast.city.name,
            units: payload.units,
            items,
        }))
    }
}

/// The cache key of `get_current_weather`: the city as OpenWeatherMap reads it (case and
/// surrounding spaces do not matter) and the units with their default filled in, so `{city}` and
/// `{city, units: "metric"}` share an answer. No account: the weather is the same for all.
pub fn current_weather_key(payload: &CurrentWeatherRequest) -> (String, Units) {
    (payload.city.trim().to_lowercase(), payload.units)
}

/// The `limit` answer to OpenWeatherMap's 429.
fn upstream_limit(wait: Duration) -> ActionResponse {
    let mut figures = serde_json::Map::new();
    figures.insert("upstream".into(), json!("openweathermap"));
    figures.insert("http_status".into(), json!(429));
    ActionResponse::limit_with(wait, figures)
}

/// A call that got no answer: retried. reqwest's message names the URL, whose query holds the
/// API key, so the URL is left out.
fn unreachable(error: reqwest::Error) -> ActionError {
    let error = error.without_url();
    let mut message = format!("OpenWeatherMap could not be reached: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    ActionError::new(message)
        .with_code("UPSTREAM_UNAVAILABLE")
        .transient()
}

/// What an answer other than 2xx means for the task.
fn refusal<T>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    city: &str,
    api_key: &str,
) -> Result<Reply<T>, ActionError> {
    let upstream = upstream_message(body, api_key);
    let details = json!({ "http_status": status.as_u16(), "upstream_message": upstream });
    let error = match status {
        StatusCode::TOO_MANY_REQUESTS => {
            return Ok(Reply::Limited(
                retry_after(headers, Utc::now()).unwrap_or(DEFAULT_LIMIT_WAIT),
            ));
        }
        StatusCode::UNAUTHORIZED => {
            ActionError::new(format!("OpenWeatherMap refused the API key: {upstream}"))
                .with_code("UNAUTHORIZED")
        }
        StatusCode::NOT_FOUND => {
            ActionError::new(format!("City not found: {city}")).with_code("CITY_NOT_FOUND")
        }
        status if status.is_server_error() => {
            ActionError::new(format!("OpenWeatherMap is unavailable: HTTP {status}"))
                .with_code("UPSTREAM_UNAVAILABLE")
                .transient()
        }
        status => ActionError::new(format!(
            "OpenWeatherMap refused the request: HTTP {status}: {upstream}"
        ))
        .with_code("UPSTREAM_REJECTED"),
    };
    Err(error.with_details(details))
}

/// OpenWeatherMap's `message`, or the start of the body; never the API key, should the API
/// repeat it.
fn upstream_message(body: &[u8], api_key: &str) -> String {
    let text = match serde_json::from_slice::<wire::Error>(body) {
        Ok(error) => error.message,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let mut end = text.len().min(QUOTED_BODY_BYTES);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].trim().to_owned()
        }
    };
    text.replace(api_key, "<redacted>")
}

/// The wait a `Retry-After` header asks for, in seconds or as an HTTP date, at least 1 s.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let seconds = match value.parse::<u64>() {
        Ok(seconds) => seconds,
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value).ok()?;
            u64::try_from((at.with_timezone(&Utc) - now).num_seconds()).unwrap_or(0)
        }
    };
    Some(Duration::from_secs(seconds.max(1)))
}
