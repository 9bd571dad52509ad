//! The external-API example provider: the [GitHub REST API](https://docs.github.com/rest)
//! behind two actions, with GitHub's own rate limits turned into `limit` answers.
//!
//! - `get_repo_info {owner, repo}` calls `GET {url}/repos/{owner}/{repo}` and answers
//!   `{full_name, description, stars, forks, language, url}`. Its answers are kept 5 minutes per
//!   (owner, repo, account): what a token may see depends on the token.
//! - `search_repos {query, per_page = 10}` calls `GET {url}/search/repositories?q=…&per_page=…`
//!   and answers `{total_count, items: [{full_name, stars, url}]}`; a search GitHub cut short
//!   (`incomplete_results`) is answered `warning`.
//!
//! Every call carries `Authorization: Bearer {token}` (the account is `{"token": "…"}`),
//! `Accept: application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28` and a `User-Agent`.
//! A 401 is answered `UNAUTHORIZED`, a 404 `NOT_FOUND`; a 403 or 429 with
//! `x-ratelimit-remaining: 0` is a `limit` until `x-ratelimit-reset` (at least 1 s), one with
//! `Retry-After` a `limit` for that long, and a 429 (or a 403 saying "rate limit") with neither a
//! `limit` of 60 s, as GitHub's documentation asks; another 403 is `FORBIDDEN`. A 5xx or a
//! connection that fails is tried three times in all, then answered `UPSTREAM_UNAVAILABLE`.
//!
//! The provider also keeps within GitHub's quotas itself, per token (hashed in budget names):
//! 5,000 calls an hour for `get_repo_info`, 30 a minute for `search_repos`.
//!
//! The base URL is `GITHUB_API_URL` (default `https://api.github.com`; GitHub Enterprise Server:
//! `https://HOST/api/v3`).

use std::fmt;
use std::time::Duration;

use arbv_provider::prelude::*;
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

/// The variable holding the API's base URL.
pub const API_URL_VARIABLE: &str = "GITHUB_API_URL";
/// The real API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The REST API version the answers' shapes are read in.
pub const API_VERSION: &str = "2022-11-28";
/// How long one call may take in all; three tries and the waits between them fit the action's
/// 40 s timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait GitHub asks for after a secondary rate limit that names none.
pub const DEFAULT_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The shortest `limit` wait answered: a reset already past still needs a moment.
const SHORTEST_WAIT: Duration = Duration::from_secs(1);
/// How much of an upstream error body an error message quotes.
const QUOTED_BODY_BYTES: usize = 200;

/// `get_repo_info`'s payload.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct RepoRequest {
    /// The user or organisation: `rust-lang`.
    #[schemars(length(min = 1, max = 39), regex(pattern = r"^[A-Za-z0-9-]+$"))]
    pub owner: String,
    /// The repository: `rust`.
    #[schemars(
        length(min = 1, max = 100),
        regex(pattern = r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$")
    )]
    pub repo: String,
}

/// `search_repos`'s payload.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
pub struct SearchRequest {
    /// GitHub's search syntax: `tokio language:rust stars:>1000`.
    #[schemars(length(min = 1, max = 256))]
    pub query: String,
    /// Results on the page, 1 to 100.
    #[serde(default = "default_per_page")]
    #[schemars(range(min = 1, max = 100))]
    pub per_page: u8,
}

fn default_per_page() -> u8 {
    10
}

/// The account: a GitHub token (personal access token, or an app's installation token).
#[derive(Clone, Deserialize, JsonSchema)]
pub struct GitHubAccount {
    /// Sent as `Authorization: Bearer …`.
    #[schemars(length(min = 1))]
    pub token: String,
}

// Written by hand: the token never shows in a `Debug` output.
impl fmt::Debug for GitHubAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubAccount")
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `get_repo_info`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepoInfo {
    /// `owner/repo`, as GitHub spells it.
    pub full_name: String,
    pub description: Option<String>,
    pub stars: u64,
    pub forks: u64,
    /// The main language, if GitHub detected one.
    pub language: Option<String>,
    /// The repository's page.
    pub url: String,
}

/// `search_repos`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Matches in all, beyond this page.
    pub total_count: u64,
    pub items: Vec<RepoSummary>,
}

/// One repository found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepoSummary {
    pub full_name: String,
    pub stars: u64,
    pub url: String,
}

/// The parts of GitHub's answers that are read.
mod wire {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Repo {
        pub full_name: String,
        pub description: Option<String>,
        pub stargazers_count: u64,
        pub forks_count: u64,
        pub language: Option<String>,
        pub html_url: String,
    }

    #[derive(Deserialize)]
    pub struct Search {
        pub total_count: u64,
        #[serde(default)]
        pub incomplete_results: bool,
        pub items: Vec<Found>,
    }

    #[derive(Deserialize)]
    pub struct Found {
        pub full_name: String,
        pub stargazers_count: u64,
        pub html_url: String,
    }

    /// `{"message": "Bad credentials", "documentation_url": "…", "status": "401"}`
    #[derive(Deserialize)]
    pub struct Error {
        pub message: String,
    }
}

/// What the provider cannot start without.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{API_URL_VARIABLE}: `{url}` is not an http or https base URL: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("the HTTP client cannot be built: {0}")]
    Client(#[source] reqwest::Error),
}

/// What one call to GitHub came back with, when it is not an error.
enum Reply<T> {
    Answer(T),
    /// GitHub's rate limit, as the `limit` answer the hub gets.
    Limited(ActionResponse),
}

/// The GitHub provider: one HTTP client (its connections reused by every task) and the API's
/// base URL.
#[derive(Clone, Debug)]
pub struct GitHub {
    client: reqwest::Client,
    base: Url,
}

impl GitHub {
    /// A provider calling the API at `base_url` (`https://api.github.com`, or a stub).
    pub fn new(base_url: &str) -> Result<Self, SetupError> {
        let bad = |reason: &str| SetupError::BaseUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(base_url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad("the scheme must be http or https"));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "X-GitHub-Api-Version",
            HeaderValue::from_static(API_VERSION),
        );
        // GitHub refuses calls without a User-Agent. Redirects (a renamed repository's 301) are
        // followed; reqwest drops the token on one to another host.
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("arbv-external-api/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(SetupError::Client)?;
        Ok(Self { client, base })
    }

    /// A provider calling the API at `GITHUB_API_URL`, by default the real one.
    pub fn from_env() -> Result<Self, SetupError> {
        let url = std::env::var(API_URL_VARIABLE).unwrap_or_else(|_| DEFAULT_API_URL.to_owned());
        Self::new(&url)
    }

    /// `{base}/{segments…}`, each segment escaped, keeping a path the base URL has.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the URL can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// `GET` with the token and GitHub's headers, the answer's status mapped to what the hub
    /// gets; `what` names the thing asked for in a 404's message.
    async fn get<T: DeserializeOwned>(
        &self,
        url: Url,
        query: &[(&str, String)],
        account: &GitHubAccount,
        what: &str,
    ) -> Result<Reply<T>, ActionError> {
        let response = self
            .client
            .get(url.clone())
            .query(query)
            .bearer_auth(&account.token)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        tracing::debug!(
            path = url.path(),
            status = status.as_u16(),
            "GitHub answered"
        );
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map(Reply::Answer)
                .map_err(|e| {
                    ActionError::new(format!(
                        "GitHub's answer is not what the REST API returns: {e}"
                    ))
                    .with_code("UPSTREAM_INVALID_ANSWER")
                    .with_details(json!({ "http_status": status.as_u16() }))
                });
        }
        refusal(status, &headers, &body, what, &account.token, Utc::now())
    }
}

// GitHub's primary quota: 5,000 calls an hour per token, whatever the endpoint; searches have a
// quota of their own.
#[provider(name = "external-api", rate_limit = "5000/h")]
impl GitHub {
    /// A repository's name, description, stars, forks, language and page. Kept 5 minutes per
    /// (owner, repo, account); GitHub's 5xx and connection failures are tried three times in all.
    #[action(
        per = "account.token",
        cache = "5m",
        retry(attempts = 3, backoff = "500ms..5s"),
        timeout = "40s"
    )]
    pub async fn get_repo_info(
        &self,
        payload: RepoRequest,
        account: GitHubAccount,
    ) -> Result<ActionResponse, ActionError> {
        let url = self.endpoint(&["repos", &payload.owner, &payload.repo]);
        let what = format!("repository {}/{}", payload.owner, payload.repo);
        let repo: wire::Repo = match self.get(url, &[], &account, &what).await? {
            Reply::Answer(repo) => repo,
            Reply::Limited(limit) => return Ok(limit),
        };
        Ok(ActionResponse::success(RepoInfo {
            full_name: repo.full_name,
            description: repo.description,
            stars: repo.stargazers_count,
            forks: repo.forks_count,
            language: repo.language,
            url: repo.html_url,
        }))
    }

    /// Repositories matching a search, best match first; GitHub's 5xx and connection failures
    /// are tried three times in all. A search GitHub cut short is answered `warning`.
    #[action(
        rate_limit = "30/m",
        per = "account.token",
        retry(attempts = 3, backoff = "500ms..5s"),
        timeout = "40s"
    )]
    pub async fn search_repos(
        &self,
        payload: SearchRequest,
        account: GitHubAccount,
    ) -> Result<ActionResponse, ActionError> {
        let url = self.endpoint(&["search", "repositories"]);
        let query = [
            ("q", payload.query.clone()),
            ("per_page", payload.per_page.to_string()),
        ];
        let search: wire::Search = match self.get(url, &query, &account, "search").await? {
            Reply::Answer(search) => search,
            Reply::Limited(limit) => return Ok(limit),
        };
        let results = SearchResults {
            total_count: search.total_count,
            items: search
                .items
                .into_iter()
                .map(|found| RepoSummary {
                    full_name: found.full_name,
                    stars: found.stargazers_count,
                    url: found.html_url,
                })
                .collect(),
        };
        Ok(if search.incomplete_results {
            ActionResponse::warning(
                "GitHub's search timed out: the results may be incomplete",
                results,
            )
        } else {
            ActionResponse::success(results)
        })
    }
}

/// A call that got no answer: retried.
fn unreachable(error: reqwest::Error) -> ActionError {
    let error = error.without_url();
    let mut message = format!("GitHub could not be reached: {error}");
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
    what: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Reply<T>, ActionError> {
    let upstream = upstream_message(body, token);
    if matches!(
        status,
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        let asked = limit_wait(headers, now);
        let says_limit = status == StatusCode::TOO_MANY_REQUESTS
            || upstream.to_lowercase().contains("rate limit");
        if asked.is_some() || says_limit {
            let wait = asked.unwrap_or(DEFAULT_LIMIT_WAIT);
            return Ok(Reply::Limited(upstream_limit(wait, status, headers)));
        }
    }
    let details = json!({ "http_status": status.as_u16(), "upstream_message": upstream });
    let error = match status {
        StatusCode::UNAUTHORIZED => {
            ActionError::new(format!("GitHub refused the token: {upstream}"))
                .with_code("UNAUTHORIZED")
        }
        StatusCode::FORBIDDEN => {
            ActionError::new(format!("GitHub refused access: {upstream}")).with_code("FORBIDDEN")
        }
        StatusCode::NOT_FOUND => {
            ActionError::new(format!("Not found: {what}")).with_code("NOT_FOUND")
        }
        status if status.is_server_error() => {
            let error = ActionError::new(format!("GitHub is unavailable: HTTP {status}"))
                .with_code("UPSTREAM_UNAVAILABLE");
            // A Retry-After on a 5xx is the least wait before the next try.
            match retry_after(headers, now) {
                Some(wait) => error.retry_after(wait),
                None => error.transient(),
            }
        }
        status => ActionError::new(format!(
            "GitHub refused the request: HTTP {status}: {upstream}"
        ))
        .with_code("UPSTREAM_REJECTED"),
    };
    Err(error.with_details(details))
}

/// The `limit` answer to GitHub's rate limit, with what GitHub said about it.
fn upstream_limit(wait: Duration, status: StatusCode, headers: &HeaderMap) -> ActionResponse {
    let mut figures = serde_json::Map::new();
    figures.insert("upstream".into(), json!("github"));
    figures.insert("http_status".into(), json!(status.as_u16()));
    if let Some(resource) = header(headers, "x-ratelimit-resource") {
        figures.insert("resource".into(), json!(resource));
    }
    ActionResponse::limit_with(wait, figures)
}

/// How long GitHub asks to wait: `Retry-After`, or until `x-ratelimit-reset` when
/// `x-ratelimit-remaining` is 0; the longer of the two when both are given; at least 1 s.
pub fn limit_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let until_reset = (header(headers, "x-ratelimit-remaining") == Some("0"))
        .then(|| header(headers, "x-ratelimit-reset")?.parse::<i64>().ok())
        .flatten()
        .map(|reset| {
            let millis = reset.saturating_mul(1000) - now.timestamp_millis();
            Duration::from_millis(u64::try_from(millis).unwrap_or(0)).max(SHORTEST_WAIT)
        });
    match (retry_after(headers, now), until_reset) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The wait a `Retry-After` header asks for, in seconds or as an HTTP date, at least 1 s.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = header(headers, RETRY_AFTER.as_str())?;
    let seconds = match value.parse::<u64>() {
        Ok(seconds) => seconds,
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value).ok()?;
            u64::try_from((at.with_timezone(&Utc) - now).num_seconds()).unwrap_or(0)
        }
    };
    Some(Duration::from_secs(seconds).max(SHORTEST_WAIT))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// GitHub's `message`, or the start of the body; never the token, should it be repeated.
fn upstream_message(body: &[u8], token: &str) -> String {
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
    text.replace(token, "<redacted>")
}
