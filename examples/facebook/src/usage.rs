//! `FacebookRateLimitMonitor`: refuses tasks for an id whose Facebook usage is near its quota,
//! from the usage headers of the Graph API's answers.
//!
//! Facebook reports how much of each quota a call used, in percent, on every answer:
//!
//! - `X-Business-Use-Case-Usage`: `{"<object id>": [{"type", "call_count", "total_cputime",
//!   "total_time", "estimated_time_to_regain_access" (minutes), …}]}`, per business object (a
//!   page, a business, an ad account by its number without `act_`);
//! - `X-Ad-Account-Usage`: `{"acc_id_util_pct", "reset_time_duration" (seconds), …}`, for the ad
//!   account the call named;
//! - `X-App-Usage`: `{"call_count", "total_cputime", "total_time"}`, for the whole app.
//!
//! Once one of those passes 90 % for an id, the id's next tasks are refused with `limit` until
//! the estimated regain time (60 s when Facebook gives none): a throttled call would fail anyway,
//! and calls made while throttled lengthen the throttle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arbv_provider::rate_limit::{
    AttachedProviders, Decision, Figures, RateLimitMonitor, value_digest,
};
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

/// Usage, in percent, past which an id's tasks are refused.
pub const THRESHOLD_PCT: f64 = 90.0;
/// The wait when Facebook says how much is used but not for how long.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// Ids remembered at most; past that, those no longer refused are forgotten.
const MAX_IDS: usize = 10_000;

/// The header names, lower case as `http` keeps them.
pub const BUSINESS_USAGE: &str = "x-business-use-case-usage";
pub const AD_ACCOUNT_USAGE: &str = "x-ad-account-usage";
pub const APP_USAGE: &str = "x-app-usage";

/// The monitor the provider feeds and its actions are checked by: one per process.
///
/// `#[action(rate_limit = path)]` builds the monitor from a function without the provider at
/// hand, so the provider cannot hand its own monitor over; both take this one. One per process is
/// also what the usage is: Facebook counts per app and per business object, not per provider.
pub fn usage_monitor() -> Arc<FacebookRateLimitMonitor> {
    static MONITOR: OnceLock<Arc<FacebookRateLimitMonitor>> = OnceLock::new();
    MONITOR.get_or_init(Default::default).clone()
}

/// What the monitor knows of one id.
#[derive(Debug, Default)]
struct IdState {
    /// The last usage Facebook reported, by header.
    usage: Map<String, Value>,
    /// Refused until then, and why.
    refused: Option<(Instant, &'static str)>,
}

#[derive(Debug, Default)]
struct State {
    /// By the digest of the id (`#` and 16 hex digits), which is how `per` keys name a value.
    ids: HashMap<String, IdState>,
    app: IdState,
}

/// Refuses an id's tasks while Facebook's usage headers say its quota is nearly spent. See the
/// module's documentation.
#[derive(Debug, Default)]
pub struct FacebookRateLimitMonitor {
    state: Mutex<State>,
    providers: AttachedProviders,
}

impl FacebookRateLimitMonitor {
    /// A monitor that knows no usage yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the usage headers of one answer to a call about `object_id` (a business, a page,
    /// `act_…`). Usage over the threshold refuses that id until the regain time; a refusal
    /// already running is never shortened by an answer that was in flight.
    pub fn observe(&self, object_id: &str, headers: &HeaderMap) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.ids.len() > MAX_IDS {
            state
                .ids
                .retain(|_, id| id.refused.is_some_and(|(until, _)| until > now));
        }
        if let Some(usage) = header_json(headers, BUSINESS_USAGE).and_then(|v| match v {
            Value::Object(by_id) => Some(by_id),
            _ => None,
        }) {
            for (id, entries) in usage {
                let wait = entries
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|entry| {
                        over_threshold(entry, &["call_count", "total_cputime", "total_time"])
                    })
                    .map(|entry| minutes(entry.get("estimated_time_to_regain_access")))
                    .max();
                // Facebook names an ad account by its number; tasks name it `act_<number>`.
                for name in [id.clone(), format!("act_{id}")] {
                    let record = state.ids.entry(value_digest(name.as_bytes())).or_default();
                    record
                        .usage
                        .insert("business_use_case".into(), entries.clone());
                    refuse(record, now, wait, "business_use_case");
                }
            }
        }
        if let Some(usage) = header_json(headers, AD_ACCOUNT_USAGE) {
            let wait = over_threshold(&usage, &["acc_id_util_pct"])
                .then(|| seconds(usage.get("reset_time_duration")));
            let record = state
                .ids
                .entry(value_digest(object_id.as_bytes()))
                .or_default();
            record.usage.insert("ad_account".into(), usage);
            refuse(record, now, wait, "ad_account");
        }
        if let Some(usage) = header_json(headers, APP_USAGE) {
            // The app's usage is a rolling hour with no regain estimate.
            let wait = over_threshold(&usage, &["call_count", "total_cputime", "total_time"])
                .then_some(DEFAULT_WAIT);
            state.app.usage.insert("app".into(), usage);
            refuse(&mut state.app, now, wait, "app");
        }
    }
}

/// The header's JSON, when it is there and is JSON.
fn header_json(headers: &HeaderMap, name: &str) -> Option<Value> {
    serde_json::from_slice(headers.get(name)?.as_bytes()).ok()
}

/// True when any of `fields` passes the threshold.
fn over_threshold(usage: &Value, fields: &[&str]) -> bool {
    fields
        .iter()
        .filter_map(|field| usage.get(*field).and_then(Value::as_f64))
        .any(|pct| pct > THRESHOLD_PCT)
}

/// A regain estimate in minutes; none or zero is the default wait.
fn minutes(value: Option<&Value>) -> Duration {
    match value.and_then(Value::as_f64) {
        Some(m) if m > 0.0 => Duration::from_secs_f64(m * 60.0),
        _ => DEFAULT_WAIT,
    }
}

/// A reset time in seconds; none or zero is the default wait.
fn seconds(value: Option<&Value>) -> Duration {
    match value.and_then(Value::as_f64) {
        Some(s) if s > 0.0 => Duration::from_secs_f64(s),
        _ => DEFAULT_WAIT,
    }
}

fn refuse(record: &mut IdState, now: Instant, wait: Option<Duration>, reason: &'static str) {
    if let Some(wait) = wait {
        let until = now + wait;
        if record.refused.is_none_or(|(current, _)| current < until) {
            record.refused = Some((until, reason));
        }
    }
}

impl RateLimitMonitor for FacebookRateLimitMonitor {
    /// `key` is a `per` key (`payload.page_id=#…`): the digest after `=` names the id. Without
    /// one (`""`), only the app's usage applies.
    fn check<'a>(&'a self, key: &'a str) -> futures_util::future::BoxFuture<'a, Decision> {
        let now = Instant::now();
        let digest = key.rsplit_once('=').map(|(_, digest)| digest);
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let id = digest.and_then(|digest| state.ids.get(digest));
        let mut figures = Figures::new();
        figures.insert("monitor".into(), json!("facebook_usage"));
        figures.insert("threshold_pct".into(), json!(THRESHOLD_PCT));
        let mut usage = state.app.usage.clone();
        if let Some(id) = id {
            usage.extend(id.usage.clone());
        }
        figures.insert("usage".into(), Value::Object(usage));
        self.providers.add_to(&mut figures);
        let refusal = [id.and_then(|id| id.refused), state.app.refused]
            .into_iter()
            .flatten()
            .filter(|(until, _)| *until > now)
            .max_by_key(|(until, _)| *until);
        let decision = match refusal {
            Some((until, reason)) => {
                figures.insert("reason".into(), json!(reason));
                Decision::Limited {
                    wait: until - now,
                    figures,
                }
            }
            None => Decision::Admitted(figures),
        };
        Box::pin(async move { decision })
    }

    fn describe(&self) -> Value {
        json!({
            "kind": "facebook_usage",
            "threshold_pct": THRESHOLD_PCT,
            "headers": ["X-Business-Use-Case-Usage", "X-Ad-Account-Usage", "X-App-Usage"],
        })
    }

    fn attach(&self, provider: &str) {
        self.providers.attach(provider);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, Value)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(&value.to_string()).unwrap());
        }
        map
    }

    fn key(path: &str, id: &str) -> String {
        format!("{path}={}", value_digest(id.as_bytes()))
    }

    #[tokio::test(start_paused = true)]
    async fn business_usage_over_90_refuses_that_id_until_the_regain_time() {
        let monitor = FacebookRateLimitMonitor::new();
        monitor.observe(
            "1001",
            &headers(&[(
                BUSINESS_USAGE,
                json!({"1001": [{"type": "pages", "call_count": 95, "total_cputime": 20,
                                  "total_time": 30, "estimated_time_to_regain_access": 7}],
                       "1002": [{"type": "pages", "call_count": 40, "total_cputime": 10,
                                  "total_time": 10, "estimated_time_to_regain_access": 0}]}),
            )]),
        );
        let Decision::Limited { wait, figures } =
            monitor.check(&key("payload.page_id", "1001")).await
        else {
            panic!("1001 is at 95 %")
        };
        assert_eq!(wait, Duration::from_secs(7 * 60));
        assert_eq!(figures["reason"], "business_use_case");
        assert_eq!(figures["usage"]["business_use_case"][0]["call_count"], 95);
        let Decision::Admitted(figures) = monitor.check(&key("payload.page_id", "1002")).await
        else {
            panic!("1002 is at 40 %")
        };
        assert_eq!(figures["usage"]["business_use_case"][0]["call_count"], 40);
        tokio::time::advance(Duration::from_secs(7 * 60)).await;
        assert!(
            monitor
                .check(&key("payload.page_id", "1001"))
                .await
                .is_admitted()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cpu_or_total_time_count_too_and_ad_accounts_match_without_act() {
        let monitor = FacebookRateLimitMonitor::new();
        monitor.observe(
            "act_77",
            &headers(&[(
                BUSINESS_USAGE,
                json!({"77": [{"type": "ads_insights", "call_count": 10, "total_cputime": 91,
                                "total_time": 5, "estimated_time_to_regain_access": 0}]}),
            )]),
        );
        let Decision::Limited { wait, .. } =
            monitor.check(&key("payload.ad_account_id", "act_77")).await
        else {
            panic!("CPU time at 91 %")
        };
        assert_eq!(wait, DEFAULT_WAIT, "no estimate: the default wait");
        monitor.observe(
            "2",
            &headers(&[(
                BUSINESS_USAGE,
                json!({"2": [{"type": "pages", "call_count": 1, "total_cputime": 1, "total_time": 90.5,
                               "estimated_time_to_regain_access": 2}]}),
            )]),
        );
        assert!(
            !monitor
                .check(&key("payload.page_id", "2"))
                .await
                .is_admitted()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn exactly_90_is_not_past_it() {
        let monitor = FacebookRateLimitMonitor::new();
        monitor.observe(
            "5",
            &headers(&[(
                BUSINESS_USAGE,
                json!({"5": [{"call_count": 90, "total_cputime": 90, "total_time": 90}]}),
            )]),
        );
        assert!(
            monitor
                .check(&key("payload.page_id", "5"))
                .await
                .is_admitted()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ad_account_usage_refuses_the_account_for_its_reset_time() {
        let monitor = FacebookRateLimitMonitor::new();
        monitor.observe(
            "act_9",
            &headers(&[(
                AD_ACCOUNT_USAGE,
                json!({"acc_id_util_pct": 93.5, "reset_time_duration": 120, "ads_api_access_tier": "standard_access"}),
            )]),
        );
        let Decision::Limited { wait, figures } =
            monitor.check(&key("payload.ad_account_id", "act_9")).await
        else {
            panic!("93.5 %")
        };
        assert_eq!(wait, Duration::from_secs(120));
        assert_eq!(figures["reason"], "ad_account");
        assert_eq!(figures["usage"]["ad_account"]["acc_id_util_pct"], 93.5);
        assert!(
            monitor
                .check(&key("payload.ad_account_id", "act_8"))
                .await
                .is_admitted()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn app_usage_refuses_every_id_and_shows_in_every_figure() {
        let monitor = FacebookRateLimitMonitor::new();
        monitor.observe(
            "1",
            &headers(&[(
                APP_USAGE,
                json!({"call_count": 12, "total_cputime": 3, "total_time": 4}),
            )]),
        );
        let Decision::Admitted(figures) = monitor.check("").await else {
            panic!("12 %")
        };
        assert_eq!(figures["usage"]["app"]["call_count"], 12);
        monitor.observe(
            "1",
            &headers(&[(
                APP_USAGE,
                json!({"call_count": 99, "total_cputime": 3, "total_time": 4}),
            )]),
        );
        for k in ["", &key("payload.page_id", "anything")] {
            let Decision::Limited { wait, figures } = monitor.check(k).await else {
                panic!("the app is at 99 %")
            };
            assert_eq!(wait, DEFAULT_WAIT);
            assert_eq!(figures["reason"], "app");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_reading_does_not_shorten_a_refusal_and_bad_headers_are_ignored() {
        let monitor = FacebookRateLimitMonitor::new();
        let busy = json!({"3": [{"call_count": 100, "estimated_time_to_regain_access": 10}]});
        monitor.observe("3", &headers(&[(BUSINESS_USAGE, busy)]));
        let calm = json!({"3": [{"call_count": 5, "estimated_time_to_regain_access": 0}]});
        monitor.observe("3", &headers(&[(BUSINESS_USAGE, calm)]));
        let mut garbage = HeaderMap::new();
        garbage.insert(BUSINESS_USAGE, HeaderValue::from_static("{not json"));
        garbage.insert(APP_USAGE, HeaderValue::from_static("[]"));
        monitor.observe("3", &garbage);
        let Decision::Limited { wait, .. } = monitor.check(&key("payload.page_id", "3")).await
        else {
            panic!("still refused")
        };
        assert_eq!(wait, Duration::from_secs(600));
    }
}
