//! The app's usage refuses every task of the process: its own test binary, since the usage
//! monitor is one per process.

mod common;

use common::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_usage_past_90_percent_refuses_every_id_for_a_minute() {
    let h = Harness::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/81000001"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(business("81000001"))
                .insert_header(
                    "x-app-usage",
                    json!({"call_count": 96, "total_cputime": 20, "total_time": 33})
                        .to_string()
                        .as_str(),
                ),
        )
        .expect(1)
        .mount(&h.graph)
        .await;
    let first = h
        .call("get_business_info", json!({"business_id": "81000001"}))
        .await;
    assert_eq!(first["status"], "success");
    for (action, payload) in [
        ("get_business_info", json!({"business_id": "81000002"})),
        (
            "get_page_insights",
            json!({"page_id": "81000003", "metrics": ["page_impressions"]}),
        ),
        ("get_ad_insights", json!({"ad_account_id": "act_81000004"})),
    ] {
        let refused = h.call(action, payload).await;
        assert_eq!(refused["status"], "limit", "{refused}");
        let answer = &refused["data"]["response"];
        assert_eq!(answer["reason"], "app");
        assert_eq!(answer["usage"]["app"]["call_count"], 96);
        let wait = answer["wait_time"].as_f64().unwrap();
        assert!(wait > 50.0 && wait <= 60.0, "{wait}");
    }
    h.stop().await;
}
