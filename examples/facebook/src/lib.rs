//! The Facebook Graph API example provider, `facebook`:
//!
//! - `get_business_info {business_id}`: a business's id, name, verification status and
//!   creation time;
//! - `get_page_insights {page_id, metrics, period, since?, until?}`: a page's insights by metric,
//!   following `paging.next` (at most 10 pages);
//! - `get_ad_insights {ad_account_id, date_preset, fields}`: an ad account's insights rows,
//!   following pages; 200 an hour per ad account.
//!
//! Every call carries the account's `access_token`, and `appsecret_proof` when the account
//! has an `app_secret`. Graph errors become answers (see [`graph`]), and the
//! [`FacebookRateLimitMonitor`] refuses an id's tasks while Facebook's usage headers say its
//! quota is nearly spent. Configured by `FB_GRAPH_URL` and `FB_GRAPH_VERSION`.

pub mod graph;
pub mod usage;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arbv_provider::prelude::*;
use arbv_provider::rate_limit::{AllOf, RateSpec, SlidingWindowRateLimitMonitor};
use arbv_provider::schemars::{Schema, SchemaGenerator, json_schema};
use chrono::NaiveDate;
use reqwest::Url;

pub use graph::{Graph, GraphConfig, appsecret_proof};
pub use usage::{FacebookRateLimitMonitor, usage_monitor};

/// Pages followed at most for one task.
pub const MAX_PAGES: usize = 10;

/// The account: a Graph API access token and, when the app requires it, the app secret that
/// signs every call (`appsecret_proof`).
#[derive(Deserialize, JsonSchema)]
pub struct FacebookAccount {
    /// A user, page or system-user access token.
    #[schemars(length(min = 1))]
    pub access_token: String,
    /// The app's secret; every call then carries `appsecret_proof`.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub app_secret: Option<String>,
}

impl std::fmt::Debug for FacebookAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacebookAccount")
            .field("access_token", &"[redacted]")
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// `get_business_info`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct BusinessInfoRequest {
    /// The business's id.
    #[schemars(regex(pattern = r"^[0-9]{1,32}$"))]
    pub business_id: String,
}

/// The period of page insights.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum Period {
    #[default]
    #[serde(rename = "day")]
    Day,
    #[serde(rename = "week")]
    Week,
    #[serde(rename = "days_28")]
    Days28,
}

impl Period {
    fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Days28 => "days_28",
        }
    }
}

/// A calendar day, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(pub NaiveDate);

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(Day)
            .map_err(|e| {
                serde::de::Error::custom(format!("`{text}` is not a date (YYYY-MM-DD): {e}"))
            })
    }
}

impl JsonSchema for Day {
    fn schema_name() -> Cow<'static, str> {
        "Day".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date",
            "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        })
    }
}

/// `get_page_insights`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PageInsightsRequest {
    /// The page's id.
    #[schemars(regex(pattern = r"^[0-9]{1,32}$"))]
    pub page_id: String,
    /// Metric names, such as `page_impressions` or `page_post_engagements`.
    #[schemars(
        length(min = 1, max = 100),
        inner(regex(pattern = r"^[a-z0-9_]{1,100}$"))
    )]
    pub metrics: Vec<String>,
    #[serde(default)]
    pub period: Period,
    /// The first day.
    #[serde(default)]
    pub since: Option<Day>,
    /// The last day.
    #[serde(default)]
    pub until: Option<Day>,
}

/// Facebook's `date_preset` values.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DatePreset {
    Today,
    Yesterday,
    ThisMonth,
    LastMonth,
    ThisQuarter,
    Maximum,
    DataMaximum,
    #[serde(rename = "last_3d")]
    Last3d,
    #[default]
    #[serde(rename = "last_7d")]
    Last7d,
    #[serde(rename = "last_14d")]
    Last14d,
    #[serde(rename = "last_28d")]
    Last28d,
    #[serde(rename = "last_30d")]
    Last30d,
    #[serde(rename = "last_90d")]
    Last90d,
    LastWeekMonSun,
    LastWeekSunSat,
    LastQuarter,
    LastYear,
    ThisWeekMonToday,
    ThisWeekSunToday,
    ThisYear,
}

impl DatePreset {
    /// As Facebook spells it.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

fn default_fields() -> Vec<String> {
    ["impressions", "clicks", "spend"]
        .map(String::from)
        .to_vec()
}

/// `get_ad_insights`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AdInsightsRequest {
    /// The ad account, `act_<number>`.
    #[schemars(regex(pattern = r"^act_[0-9]{1,32}$"))]
    pub ad_account_id: String,
    #[serde(default)]
    pub date_preset: DatePreset,
    /// Insights fields, such as `impressions`, `clicks`, `spend`, `cpc`.
    #[serde(default = "default_fields")]
    #[schemars(
        length(min = 1, max = 100),
        inner(regex(pattern = r"^[a-z0-9_]{1,100}$"))
    )]
    pub fields: Vec<String>,
}

/// `get_ad_insights`'s budget: Facebook's usage first (a refusal spends nothing), then 200 an
/// hour, both per ad account (`per = "payload.ad_account_id"`).
pub fn ad_account_limit() -> AllOf {
    AllOf::new(vec![
        usage_monitor(),
        Arc::new(SlidingWindowRateLimitMonitor::new(RateSpec::new(
            200,
            Duration::from_secs(3600),
        ))),
    ])
}

/// The Facebook Graph API provider.
pub struct Facebook {
    graph: Graph,
}

impl Facebook {
    /// A provider calling the Graph API `config` names, feeding [`usage_monitor`].
    pub fn new(config: GraphConfig) -> Result<Self, String> {
        Ok(Self {
            graph: Graph::new(config, usage_monitor())?,
        })
    }
}

/// An error about the payload, answered before any call.
fn invalid(message: impl Into<String>) -> ActionError {
    ActionError::new(message).with_code("INVALID_PARAMETER")
}

// A transient failure (HTTP 5xx, Graph codes 1 and 2, no connection) runs the action again, at
// most three tries in all: a paged action starts over from its first page.
#[provider(name = "facebook")]
impl Facebook {
    /// A business's id, name, verification status and creation time.
    #[action(
        rate_limit = usage_monitor,
        per = "payload.business_id",
        retry(attempts = 3, backoff = "500ms..5s")
    )]
    pub async fn get_business_info(
        &self,
        payload: BusinessInfoRequest,
        account: FacebookAccount,
    ) -> Result<ActionResponse, ActionError> {
        let mut url = self.graph.config().url(&payload.business_id);
        url.query_pairs_mut()
            .append_pair("fields", "id,name,verification_status,created_time");
        let body = match self.graph.get(url, &payload.business_id, &account).await {
            Ok(body) => body,
            Err(failure) => return answer_failure(failure),
        };
        let field = |name: &str| body.get(name).cloned().unwrap_or(Value::Null);
        Ok(ActionResponse::success(json!({
            "id": field("id"),
            "name": field("name"),
            "verification_status": field("verification_status"),
            "created_time": field("created_time"),
        })))
    }

    /// A page's insights, by metric: `{page_id, metrics: {name: [{end_time, value}]}}`.
    #[action(
        rate_limit = usage_monitor,
        per = "payload.page_id",
        timeout = "2m",
        retry(attempts = 3, backoff = "500ms..5s")
    )]
    pub async fn get_page_insights(
        &self,
        payload: PageInsightsRequest,
        account: FacebookAccount,
    ) -> Result<ActionResponse, ActionError> {
        if let (Some(since), Some(until)) = (payload.since, payload.until)
            && since > until
        {
            return Err(invalid("`since` is after `until`"));
        }
        let mut url = self
            .graph
            .config()
            .url(&format!("{}/insights", payload.page_id));
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("metric", &payload.metrics.join(","));
            query.append_pair("period", payload.period.as_str());
            if let Some(since) = payload.since {
                query.append_pair("since", &since.0.to_string());
            }
            if let Some(until) = payload.until {
                query.append_pair("until", &until.0.to_string());
            }
        }
        // Page insights are a time series: `next` always points at the following period, so
        // stop at an empty page and never past `until`.
        let until = payload.until.map(|day| day_after(day.0));
        let more = |body: &Value, next: &Url| has_values(body) && !starts_after(next, until);
        let pages = match self
            .graph
            .pages(url, &payload.page_id, &account, MAX_PAGES, more)
            .await
        {
            Ok(pages) => pages,
            Err(failure) => return answer_failure(failure),
        };
        let mut metrics: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for body in &pages.bodies {
            for series in body
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(name) = series.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let points = metrics.entry(name.to_owned()).or_default();
                for point in series
                    .get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    points.push(json!({
                        "end_time": point.get("end_time").cloned().unwrap_or(Value::Null),
                        "value": point.get("value").cloned().unwrap_or(Value::Null),
                    }));
                }
            }
        }
        Ok(ActionResponse::success(json!({
            "page_id": payload.page_id,
            "period": payload.period.as_str(),
            "metrics": metrics,
            "pages": pages.bodies.len(),
            "truncated": pages.truncated,
        })))
    }

    /// An ad account's insights rows: `{ad_account_id, rows: [...]}`.
    #[action(
        rate_limit = ad_account_limit,
        per = "payload.ad_account_id",
        timeout = "2m",
        retry(attempts = 3, backoff = "500ms..5s")
    )]
    pub async fn get_ad_insights(
        &self,
        payload: AdInsightsRequest,
        account: FacebookAccount,
    ) -> Result<ActionResponse, ActionError> {
        let mut url = self
            .graph
            .config()
            .url(&format!("{}/insights", payload.ad_account_id));
        url.query_pairs_mut()
            .append_pair("fields", &payload.fields.join(","))
            .append_pair("date_preset", &payload.date_preset.as_str());
        let pages = match self
            .graph
            .pages(url, &payload.ad_account_id, &account, MAX_PAGES, |_, _| {
                true
            })
            .await
        {
            Ok(pages) => pages,
            Err(failure) => return answer_failure(failure),
        };
        let rows: Vec<Value> = pages
            .bodies
            .iter()
            .flat_map(|body| {
                body.get("data")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        Ok(ActionResponse::success(json!({
            "ad_account_id": payload.ad_account_id,
            "date_preset": payload.date_preset.as_str(),
            "rows": rows,
            "pages": pages.bodies.len(),
            "truncated": pages.truncated,
        })))
    }
}

/// A limit is an answer; an error stays an `Err`, so that whether it is transient reaches the
/// action's declared retries.
fn answer_failure(failure: graph::Failure) -> Result<ActionResponse, ActionError> {
    match failure {
        graph::Failure::Error(error) => Err(error),
        graph::Failure::Limit(limit) => Ok(limit),
    }
}

/// True when some metric of an insights page has a value.
fn has_values(body: &Value) -> bool {
    body.get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|series| {
            series
                .get("values")
                .and_then(Value::as_array)
                .is_some_and(|values| !values.is_empty())
        })
}

/// Midnight UTC after `day`, in Unix seconds.
fn day_after(day: NaiveDate) -> i64 {
    day.succ_opt()
        .unwrap_or(day)
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(i64::MAX)
}

/// True when a `next` link's `since` (Unix seconds, as Facebook writes it) is at or past `until`.
fn starts_after(next: &Url, until: Option<i64>) -> bool {
    let Some(until) = until else { return false };
    next.query_pairs()
        .find(|(name, _)| name == "since")
        .and_then(|(_, value)| value.parse::<i64>().ok())
        .is_some_and(|since| since >= until)
}
