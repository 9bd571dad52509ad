//! The Graph API over HTTP: where it is, signing each call with the account's token (and
//! `appsecret_proof`), following pages, and turning Graph errors into answers.

use std::sync::Arc;
use std::time::Duration;

use arbv_provider::prelude::*;
use hmac::{Hmac, Mac};
use reqwest::Url;
use reqwest::header::HeaderMap;
use sha2::Sha256;

use crate::FacebookAccount;
use crate::usage::{BUSINESS_USAGE, DEFAULT_WAIT, FacebookRateLimitMonitor};

/// `FB_GRAPH_URL`'s default.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com";
/// `FB_GRAPH_VERSION`'s default.
pub const DEFAULT_GRAPH_VERSION: &str = "v21.0";
/// How long one call to the Graph API may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the Graph API is.
#[derive(Clone, Debug)]
pub struct GraphConfig {
    base: Url,
    version: String,
}

impl GraphConfig {
    /// `url` (`https://graph.facebook.com`, or a stub's) and `version` (`v21.0`).
    pub fn new(url: &str, version: &str) -> Result<Self, String> {
        let mut base = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err("an http(s) URL with a host is needed".into());
        }
        if base.query().is_some() || !base.username().is_empty() || base.password().is_some() {
            return Err("the URL takes no query and no credentials".into());
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let digits = version.strip_prefix('v').unwrap_or("");
        let valid = digits.split_once('.').is_some_and(|(major, minor)| {
            [major, minor]
                .iter()
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        });
        if !valid {
            return Err(format!("`{version}` is not a version such as v21.0"));
        }
        Ok(Self {
            base,
            version: version.to_owned(),
        })
    }

    /// `FB_GRAPH_URL` and `FB_GRAPH_VERSION`, with their defaults; an error names the variable.
    pub fn from_env() -> Result<Self, String> {
        let url = std::env::var("FB_GRAPH_URL").unwrap_or_else(|_| DEFAULT_GRAPH_URL.to_owned());
        let version =
            std::env::var("FB_GRAPH_VERSION").unwrap_or_else(|_| DEFAULT_GRAPH_VERSION.to_owned());
        Self::new(&url, DEFAULT_GRAPH_VERSION).map_err(|e| format!("FB_GRAPH_URL: {e}"))?;
        Self::new(&url, &version).map_err(|e| format!("FB_GRAPH_VERSION: {e}"))
    }

    /// `{base}/{version}/{path}`; `path`'s parts were checked by the payload's schema.
    pub fn url(&self, path: &str) -> Url {
        self.base
            .join(&format!("{}/{path}", self.version))
            .expect("a checked base URL joins a checked path")
    }

    /// True for a URL under the configured Graph URL: only those get the token.
    fn owns(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host() == self.base.host()
            && url.port_or_known_default() == self.base.port_or_known_default()
            && url.path().starts_with(self.base.path())
    }
}

/// `appsecret_proof`: the hex HMAC-SHA256 of the access token keyed by the app secret.
pub fn appsecret_proof(access_token: &str, app_secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC takes a key of any size");
    mac.update(access_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A Graph call's failure: an error answer, or a `limit` answer.
#[derive(Debug)]
pub enum Failure {
    Error(ActionError),
    Limit(ActionResponse),
}

/// Pages read, and whether more were left when the cap stopped it.
pub struct Pages {
    pub bodies: Vec<Value>,
    pub truncated: bool,
}

/// The Graph API client of one provider.
pub struct Graph {
    http: reqwest::Client,
    config: GraphConfig,
    usage: Arc<FacebookRateLimitMonitor>,
}

impl Graph {
    /// One connection pool for the provider, calls bounded by [`CALL_TIMEOUT`]; every answer's
    /// usage headers go to `usage`.
    pub fn new(config: GraphConfig, usage: Arc<FacebookRateLimitMonitor>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .user_agent(concat!("arbv-facebook-example/", env!("CARGO_PKG_VERSION")))
            // A redirect would carry the token wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Self {
            http,
            config,
            usage,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    /// One GET about `object_id`, signed for `account`.
    pub async fn get(
        &self,
        url: Url,
        object_id: &str,
        account: &FacebookAccount,
    ) -> Result<Value, Failure> {
        let url = sign(url, account);
        tracing::debug!(path = url.path(), "Graph API call");
        let answer = self.http.get(url).send().await.map_err(|e| {
            let cause = e.without_url().to_string();
            Failure::Error(
                ActionError::new(format!("The Graph API could not be reached: {cause}"))
                    .with_code("UPSTREAM_UNAVAILABLE")
                    .transient(),
            )
        })?;
        let status = answer.status();
        let headers = answer.headers().clone();
        self.usage.observe(object_id, &headers);
        let body = answer.bytes().await.map_err(|e| {
            Failure::Error(
                ActionError::new(format!(
                    "The Graph API's answer was cut short: {}",
                    e.without_url()
                ))
                .with_code("UPSTREAM_UNAVAILABLE")
                .transient(),
            )
        })?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            return json.ok_or_else(|| {
                Failure::Error(
                    ActionError::new("The Graph API answered with something that is not JSON")
                        .with_code("UPSTREAM_INVALID_ANSWER")
                        .with_details(json!({ "http_status": status.as_u16() })),
                )
            });
        }
        Err(graph_failure(
            status.as_u16(),
            json.as_ref(),
            &headers,
            object_id,
            account,
        ))
    }

    /// GETs `first`, then each `paging.next` under the Graph URL, at most `max_pages` in all;
    /// `more` says whether a page is worth following (a time series ends in empty pages).
    pub async fn pages(
        &self,
        first: Url,
        object_id: &str,
        account: &FacebookAccount,
        max_pages: usize,
        more: impl Fn(&Value, &Url) -> bool,
    ) -> Result<Pages, Failure> {
        let mut bodies = Vec::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let body = self.get(url, object_id, account).await?;
            let following = body
                .pointer("/paging/next")
                .and_then(Value::as_str)
                .and_then(|text| Url::parse(text).ok())
                .filter(|url| more(&body, url));
            bodies.push(body);
            let Some(url) = following else { break };
            if !self.config.owns(&url) {
                // Never log the URL itself: Facebook's next links carry the token.
                tracing::warn!(
                    host = url.host_str().unwrap_or(""),
                    "paging.next points outside FB_GRAPH_URL; not followed"
                );
                return Ok(Pages {
                    bodies,
                    truncated: true,
                });
            }
            if bodies.len() == max_pages {
                return Ok(Pages {
                    bodies,
                    truncated: true,
                });
            }
            next = Some(url);
        }
        Ok(Pages {
            bodies,
            truncated: false,
        })
    }
}

/// `url` with the account's `access_token` and `appsecret_proof`, in place of any it had (a
/// `paging.next` link carries Facebook's copy).
fn sign(mut url: Url, account: &FacebookAccount) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "access_token" && name != "appsecret_proof")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        query.extend_pairs(kept);
        query.append_pair("access_token", &account.access_token);
        if let Some(secret) = &account.app_secret {
            query.append_pair(
                "appsecret_proof",
                &appsecret_proof(&account.access_token, secret),
            );
        }
    }
    url
}

/// The Graph error codes that mean a rate limit: app, user, page, custom and business use case.
fn is_throttle(code: i64) -> bool {
    matches!(code, 4 | 17 | 32 | 613 | 80000..=80014)
}

/// A Graph error answer as an answer of ours.
fn graph_failure(
    http_status: u16,
    body: Option<&Value>,
    headers: &HeaderMap,
    object_id: &str,
    account: &FacebookAccount,
) -> Failure {
    let error = body.and_then(|b| b.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let code = field("code").as_i64();
    let message = redact(field("message").as_str().unwrap_or("no message"), account);
    let details = json!({
        "http_status": http_status,
        "graph_code": field("code"),
        "graph_subcode": field("error_subcode"),
        "type": field("type"),
        "fbtrace_id": field("fbtrace_id"),
    });
    match code {
        Some(190) => Failure::Error(
            ActionError::new(format!("The access token is invalid: {message}"))
                .with_code("OAUTH_TOKEN_INVALID")
                .with_details(details),
        ),
        Some(code) if is_throttle(code) => {
            let wait = regain_wait(headers, object_id).unwrap_or(DEFAULT_WAIT);
            let mut figures = serde_json::Map::new();
            figures.insert("graph_code".into(), json!(code));
            figures.insert("fbtrace_id".into(), field("fbtrace_id"));
            figures.insert("graph_message".into(), json!(message));
            Failure::Limit(ActionResponse::limit_with(wait, figures))
        }
        Some(100) => Failure::Error(
            ActionError::new(message)
                .with_code("INVALID_PARAMETER")
                .with_details(details),
        ),
        Some(1 | 2) => Failure::Error(
            ActionError::new(format!("The Graph API is unavailable: {message}"))
                .with_code("UPSTREAM_UNAVAILABLE")
                .with_details(details)
                .transient(),
        ),
        _ if http_status >= 500 => Failure::Error(
            ActionError::new(format!(
                "The Graph API failed with HTTP {http_status}: {message}"
            ))
            .with_code("UPSTREAM_UNAVAILABLE")
            .with_details(details)
            .transient(),
        ),
        _ => Failure::Error(
            ActionError::new(format!("The Graph API refused the call: {message}"))
                .with_code("GRAPH_ERROR")
                .with_details(details),
        ),
    }
}

/// `estimated_time_to_regain_access` (minutes) for `object_id` in `X-Business-Use-Case-Usage`,
/// the longest of its entries, when above zero. Ad accounts are listed by number, without `act_`.
fn regain_wait(headers: &HeaderMap, object_id: &str) -> Option<Duration> {
    let usage: Value = serde_json::from_slice(headers.get(BUSINESS_USAGE)?.as_bytes()).ok()?;
    let id = object_id.strip_prefix("act_").unwrap_or(object_id);
    let minutes = usage
        .get(id)?
        .as_array()?
        .iter()
        .filter_map(|entry| entry.get("estimated_time_to_regain_access")?.as_f64())
        .fold(0.0, f64::max);
    (minutes > 0.0).then(|| Duration::from_secs_f64(minutes * 60.0))
}

/// `text` without the account's secrets, should Facebook ever quote them.
fn redact(text: &str, account: &FacebookAccount) -> String {
    let mut text = text.replace(&account.access_token, "[redacted]");
    if let Some(secret) = account.app_secret.as_deref().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appsecret_proof_is_the_hmac_sha256_of_the_token() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            appsecret_proof("what do ya want for nothing?", "Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn configuration_is_checked() {
        let config = GraphConfig::new("https://graph.facebook.com", "v21.0").unwrap();
        assert_eq!(
            config.url("123/insights").as_str(),
            "https://graph.facebook.com/v21.0/123/insights"
        );
        let under_a_path = GraphConfig::new("http://127.0.0.1:9/graph", "v19.0").unwrap();
        assert_eq!(
            under_a_path.url("1").as_str(),
            "http://127.0.0.1:9/graph/v19.0/1"
        );
        assert!(
            under_a_path.owns(&Url::parse("http://127.0.0.1:9/graph/v19.0/1?after=x").unwrap())
        );
        assert!(!under_a_path.owns(&Url::parse("http://127.0.0.1:10/graph/v19.0/1").unwrap()));
        assert!(!under_a_path.owns(&Url::parse("https://127.0.0.1:9/graph/v19.0/1").unwrap()));
        assert!(!under_a_path.owns(&Url::parse("http://127.0.0.1:9/other/v19.0/1").unwrap()));
        assert!(GraphConfig::new("ftp://x", "v21.0").is_err());
        assert!(GraphConfig::new("https://graph.facebook.com", "21").is_err());
        assert!(GraphConfig::new("https://graph.facebook.com", "v21.0/../x").is_err());
    }

    #[test]
    fn signing_replaces_the_token_a_next_link_carries() {
        let account = FacebookAccount {
            access_token: "EAAtoken".into(),
            app_secret: Some("s3cret".into()),
        };
        let next = Url::parse(
            "https://graph.facebook.com/v21.0/1/insights?access_token=OLD&appsecret_proof=OLD&after=QVFI",
        )
        .unwrap();
        let signed = sign(next, &account);
        let pairs: Vec<(String, String)> = signed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("after".into(), "QVFI".into()),
                ("access_token".into(), "EAAtoken".into()),
                (
                    "appsecret_proof".into(),
                    appsecret_proof("EAAtoken", "s3cret")
                ),
            ]
        );
    }
}
