//! The concurrent-fetch example provider, `async-tasks`:
//!
//! - `fetch_multiple_urls {urls [1..20], timeout_ms = 5000}`: every URL fetched at once, each
//!   under `timeout_ms`; one entry per URL, in the order given: `{url, status, bytes,
//!   elapsed_ms}`, or `{url, error}` (with `status` when the server answered 4xx or 5xx). The
//!   answer is `success` when all succeed, `warning` when some fail, `error` when all fail;
//! - `fetch_with_retry {url, attempts 1..5 = 3}`: one URL, tried again with `ctx.retry` while it
//!   fails transiently (5xx, 429, no connection, a timeout); a 4xx is answered at once.
//!
//! A password in a URL (`https://user:password@host/`) is shown as `***` in every answer and
//! log line.

use std::time::Duration;

use arbv_provider::prelude::*;
use arbv_provider::retry::RetryPolicy;
use futures_util::future::join_all;
use reqwest::{StatusCode, Url};
use tokio::time::Instant;

/// How long one try of `fetch_with_retry` may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

fn five_seconds() -> u64 {
    5000
}

fn three() -> u32 {
    3
}

/// `fetch_multiple_urls`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FetchManyRequest {
    /// `http` or `https` URLs, fetched all at once.
    #[schemars(length(min = 1, max = 20), inner(length(min = 1, max = 2048)))]
    pub urls: Vec<String>,
    /// Each fetch's limit, from sending the request to the body's last byte.
    #[serde(default = "five_seconds")]
    #[schemars(range(min = 1, max = 60000))]
    pub timeout_ms: u64,
}

/// `fetch_with_retry`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FetchRetryRequest {
    /// An `http` or `https` URL.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// Tries in all, the first one included.
    #[serde(default = "three")]
    #[schemars(range(min = 1, max = 5))]
    pub attempts: u32,
}

/// The provider: one HTTP client (rustls, its own connection pool) for every task.
pub struct AsyncTasks {
    client: reqwest::Client,
    retry_backoff: (Duration, Duration),
}

impl AsyncTasks {
    /// A provider whose retries wait 200 ms after the first failure, at most 2 s.
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("arbv-async-tasks/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
        Ok(Self {
            client,
            retry_backoff: (Duration::from_millis(200), Duration::from_secs(2)),
        })
    }

    /// The same provider, waiting `first`, at most `cap`, between tries.
    pub fn with_retry_backoff(mut self, first: Duration, cap: Duration) -> Self {
        self.retry_backoff = (first, cap);
        self
    }
}

/// A URL as answered and logged: its password replaced by `***`.
pub fn masked(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// Parses an `http`/`https` URL; the error shows the URL masked, or not at all.
fn parse(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(format!(
            "{}: only http and https are fetched, not {other}",
            masked(&parsed)
        )),
    }
}

/// What one fetch gave.
enum Fetched {
    /// The server answered; the body was read to its end.
    Answered { status: StatusCode, bytes: u64 },
    /// No answer: no connection, a timeout, a broken body.
    Failed(String),
}

/// A reqwest error without its URL (which may carry a password), with its causes.
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl AsyncTasks {
    /// GETs `url` and reads its body to the end, counting its bytes, under `limit`; with a
    /// 429's `Retry-After` in seconds.
    async fn fetch(&self, url: &Url, limit: Duration) -> (Fetched, Option<Duration>) {
        let exchange = async {
            let mut response = self.client.get(url.clone()).send().await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let mut bytes = 0u64;
            while let Some(chunk) = response.chunk().await? {
                bytes += chunk.len() as u64;
            }
            Ok::<_, reqwest::Error>((Fetched::Answered { status, bytes }, retry_after))
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(Ok(answered)) => answered,
            Ok(Err(error)) => (Fetched::Failed(describe(error)), None),
            Err(_) => (
                Fetched::Failed(format!("timed out after {} ms", limit.as_millis())),
                None,
            ),
        }
    }

    /// One entry of `fetch_multiple_urls`, and whether it succeeded.
    async fn entry(&self, url: &str, limit: Duration) -> (Value, bool) {
        let url = match parse(url) {
            Ok(url) => url,
            Err(error) => return (json!({ "url": mask_text(url), "error": error }), false),
        };
        let shown = masked(&url);
        let started = Instant::now();
        let (fetched, _) = self.fetch(&url, limit).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match fetched {
            Fetched::Answered { status, bytes } if !is_failure(status) => {
                tracing::debug!(url = %shown, status = status.as_u16(), bytes, elapsed_ms, "fetched");
                let entry = json!({
                    "url": shown, "status": status.as_u16(), "bytes": bytes, "elapsed_ms": elapsed_ms,
                });
                (entry, true)
            }
            Fetched::Answered { status, .. } => {
                tracing::debug!(url = %shown, status = status.as_u16(), elapsed_ms, "fetch failed");
                let entry = json!({
                    "url": shown, "error": format!("HTTP {status}"), "status": status.as_u16(),
                    "elapsed_ms": elapsed_ms,
                });
                (entry, false)
            }
            Fetched::Failed(error) => {
                tracing::debug!(url = %shown, error = %error, elapsed_ms, "fetch failed");
                (
                    json!({ "url": shown, "error": error, "elapsed_ms": elapsed_ms }),
                    false,
                )
            }
        }
    }
}

/// A 4xx or 5xx: the server answered, but not with the resource.
fn is_failure(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

/// A URL that does not parse, with anything between `://` and `@` hidden.
fn mask_text(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// A failed try of `fetch_with_retry`: transient for 5xx, 429 and no answer.
fn attempt_error(url: &str, fetched: Fetched, retry_after: Option<Duration>) -> ActionError {
    match fetched {
        Fetched::Answered { status, .. } => {
            let error = ActionError::new(format!("{url} answered HTTP {status}"))
                .with_details(json!({ "url": url, "status": status.as_u16() }));
            if status == StatusCode::TOO_MANY_REQUESTS {
                let error = error.with_code("RATE_LIMITED");
                match retry_after {
                    Some(wait) => error.retry_after(wait),
                    None => error.transient(),
                }
            } else if status.is_server_error() {
                error.with_code("UPSTREAM_ERROR").transient()
            } else {
                error.with_code("HTTP_CLIENT_ERROR")
            }
        }
        Fetched::Failed(error) => ActionError::new(format!("{url}: {error}"))
            .with_code("UNAVAILABLE")
            .with_details(json!({ "url": url }))
            .transient(),
    }
}

#[provider(name = "async-tasks")]
impl AsyncTasks {
    /// Every URL at once, each under `timeout_ms`: `{results: [{url, status, bytes,
    /// elapsed_ms} | {url, error}]}`; `warning` when some fail, `error` when all do.
    #[action(timeout = "90s")]
    pub async fn fetch_multiple_urls(
        &self,
        payload: FetchManyRequest,
    ) -> Result<ActionResponse, ActionError> {
        let limit = Duration::from_millis(payload.timeout_ms);
        let entries = join_all(payload.urls.iter().map(|url| self.entry(url, limit))).await;
        let failed = entries.iter().filter(|(_, ok)| !ok).count();
        let total = entries.len();
        let results: Vec<Value> = entries.into_iter().map(|(entry, _)| entry).collect();
        if failed == 0 {
            Ok(ActionResponse::success(json!({ "results": results })))
        } else if failed < total {
            Ok(ActionResponse::warning(
                format!("{failed} of {total} URLs failed"),
                json!({ "results": results }),
            ))
        } else {
            Err(ActionError::new(format!("all {total} URLs failed"))
                .with_code("ALL_FAILED")
                .with_details(json!({ "results": results })))
        }
    }

    /// One URL, tried up to `attempts` times while it fails transiently: `{url, status, bytes,
    /// elapsed_ms, attempts}`.
    #[action(timeout = "2m")]
    pub async fn fetch_with_retry(
        &self,
        payload: FetchRetryRequest,
        ctx: &Context,
    ) -> Result<Value, ActionError> {
        let url =
            parse(&payload.url).map_err(|e| ActionError::new(e).with_code("INVALID_PARAMETER"))?;
        let shown = masked(&url);
        let (first, cap) = self.retry_backoff;
        let policy = RetryPolicy::attempts(payload.attempts).backoff(first, cap);
        let started = Instant::now();
        let tries = std::sync::atomic::AtomicU32::new(0);
        let outcome = ctx
            .retry(&policy, || async {
                let attempt = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let (fetched, retry_after) = self.fetch(&url, ATTEMPT_TIMEOUT).await;
                match fetched {
                    Fetched::Answered { status, bytes } if !is_failure(status) => {
                        Ok((status, bytes))
                    }
                    fetched => {
                        let error = attempt_error(&shown, fetched, retry_after);
                        tracing::info!(url = %shown, attempt, error = %error.message(), "fetch failed");
                        Err(error)
                    }
                }
            })
            .await;
        let attempts = tries.load(std::sync::atomic::Ordering::Relaxed);
        match outcome {
            Ok((status, bytes)) => Ok(json!({
                "url": shown,
                "status": status.as_u16(),
                "bytes": bytes,
                "elapsed_ms": started.elapsed().as_millis() as u64,
                "attempts": attempts,
            })),
            Err(error) => {
                let mut details = error.details().clone();
                if let Value::Object(fields) = &mut details {
                    fields.insert("attempts".into(), json!(attempts));
                }
                Err(error.with_details(details))
            }
        }
    }
}
