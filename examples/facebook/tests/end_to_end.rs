//! The provider through the dev hub over gRPC, against a Graph API stub: for each error
//! mapping, retry rule and monitor rule, the answer and what the stub received (path, query,
//! number of requests); the secrets in no envelope and no log line.

mod common;

use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// Every log line of this binary, at every level, the provider's and its libraries'.
fn logs() -> &'static arbv_tests::logs::LogBuffer {
    arbv_tests::logs::global(tracing::Level::TRACE)
}

fn business_task(id: &str) -> Value {
    json!({ "business_id": id })
}

fn response(envelope: &Value) -> &Value {
    &envelope["data"]["response"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_info_is_answered_from_one_signed_call_and_no_secret_is_logged() {
    logs();
    let h = Harness::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/71000001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(business("71000001")))
        .expect(1)
        .mount(&h.graph)
        .await;
    let envelope = h.call("get_business_info", business_task("71000001")).await;
    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(response(&envelope), &business("71000001"));
    let requests = h.requests().await;
    assert_eq!(requests[0].url.path(), "/v21.0/71000001");
    assert_eq!(
        query(&requests[0]),
        signed(&[("fields", "id,name,verification_status,created_time")])
    );
    h.stop().await;
    let text = logs().text();
    assert!(
        text.contains("Graph API call"),
        "the provider's logs are captured"
    );
    assert_no_secret(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_190_is_oauth_token_invalid_after_one_call() {
    let h = Harness::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/71000002"))
        .respond_with(ResponseTemplate::new(400).set_body_json(graph_error(
            190,
            "Error validating access token: Session has expired on Sunday, 29-Nov-26 10:00:00 PST.",
            "AZx4fGq8Lb1",
        )))
        .expect(1)
        .mount(&h.graph)
        .await;
    let envelope = h.call("get_business_info", business_task("71000002")).await;
    assert_eq!(envelope["status"], "error", "{envelope}");
    let answer = response(&envelope);
    assert_eq!(answer["error_code"], "OAUTH_TOKEN_INVALID");
    assert_eq!(answer["details"]["fbtrace_id"], "AZx4fGq8Lb1");
    assert_eq!(answer["details"]["graph_code"], 190);
    assert_eq!(answer["details"]["attempts"], 1, "not retried");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_codes_are_limits_waiting_the_regain_time_for_that_id() {
    let h = Harness::start().await;
    for (n, code) in [4, 17, 32, 613, 80000, 80004, 80014]
        .into_iter()
        .enumerate()
    {
        let id = format!("7200000{n}");
        Mock::given(method("GET"))
            .and(path(format!("/v21.0/{id}")))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(graph_error(
                        code,
                        "(#80001) There have been too many calls to this Page account.",
                        "BTrace9",
                    ))
                    .insert_header(
                        "x-business-use-case-usage",
                        business_usage(&id, "pages", 100, 3).as_str(),
                    ),
            )
            .expect(1)
            .mount(&h.graph)
            .await;
        let envelope = h.call("get_business_info", business_task(&id)).await;
        assert_eq!(envelope["status"], "limit", "code {code}: {envelope}");
        assert_eq!(
            response(&envelope)["wait_time"],
            180.0,
            "code {code}: 3 minutes"
        );
        assert_eq!(response(&envelope)["graph_code"], code);
        assert_eq!(response(&envelope)["fbtrace_id"], "BTrace9");
    }
    // No usage for that id, or none at all: 60 s.
    Mock::given(method("GET"))
        .and(path("/v21.0/72000100"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(graph_error(
                    4,
                    "(#4) Application request limit reached",
                    "T1",
                ))
                .insert_header(
                    "x-business-use-case-usage",
                    business_usage("99", "pages", 10, 9).as_str(),
                ),
        )
        .expect(1)
        .mount(&h.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v21.0/72000101"))
        .respond_with(ResponseTemplate::new(403).set_body_json(graph_error(
            17,
            "(#17) User request limit reached",
            "T2",
        )))
        .expect(1)
        .mount(&h.graph)
        .await;
    for id in ["72000100", "72000101"] {
        let envelope = h.call("get_business_info", business_task(id)).await;
        assert_eq!(envelope["status"], "limit", "{envelope}");
        assert_eq!(response(&envelope)["wait_time"], 60.0);
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_100_is_invalid_parameter_with_facebooks_message() {
    let h = Harness::start().await;
    let message =
        "(#100) Tried accessing nonexisting field (verification_status) on node type (Page)";
    Mock::given(method("GET"))
        .and(path("/v21.0/73000001"))
        .respond_with(ResponseTemplate::new(400).set_body_json(graph_error(100, message, "CTrace")))
        .expect(1)
        .mount(&h.graph)
        .await;
    let envelope = h.call("get_business_info", business_task("73000001")).await;
    assert_eq!(envelope["status"], "error");
    assert_eq!(envelope["message"], message);
    assert_eq!(response(&envelope)["error_code"], "INVALID_PARAMETER");
    assert_eq!(response(&envelope)["details"]["fbtrace_id"], "CTrace");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_5xx_and_codes_1_and_2_are_tried_three_times_then_answered_as_errors() {
    let h = Harness::start().await;
    let cases = [
        (
            "74000001",
            500,
            graph_error(1, "An unknown error has occurred.", "D1"),
        ),
        (
            "74000002",
            500,
            graph_error(
                2,
                "An unexpected error has occurred. Please retry your request later.",
                "D2",
            ),
        ),
        (
            "74000003",
            503,
            json!({"error": {"message": "Service temporarily unavailable", "code": 9999, "fbtrace_id": "D3"}}),
        ),
        (
            "74000004",
            400,
            graph_error(
                2,
                "An unexpected error has occurred. Please retry your request later.",
                "D4",
            ),
        ),
    ];
    for (id, status, body) in &cases {
        Mock::given(method("GET"))
            .and(path(format!("/v21.0/{id}")))
            .respond_with(ResponseTemplate::new(*status).set_body_json(body))
            .expect(3)
            .mount(&h.graph)
            .await;
    }
    for (id, _, body) in &cases {
        let envelope = h.call("get_business_info", business_task(id)).await;
        assert_eq!(envelope["status"], "error", "{envelope}");
        let answer = response(&envelope);
        assert_eq!(answer["error_code"], "UPSTREAM_UNAVAILABLE");
        assert_eq!(answer["details"]["attempts"], 3);
        assert_eq!(answer["details"]["fbtrace_id"], body["error"]["fbtrace_id"]);
    }
    let requests = h.requests().await;
    for (id, _, _) in &cases {
        let calls: Vec<_> = requests
            .iter()
            .filter(|r| r.url.path() == format!("/v21.0/{id}"))
            .collect();
        assert_eq!(calls.len(), 3, "{id}");
        for call in calls {
            assert_eq!(
                query(call),
                signed(&[("fields", "id,name,verification_status,created_time")])
            );
        }
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_then_an_answer_is_a_success_after_two_calls() {
    let h = Harness::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/74000010"))
        .respond_with(ResponseTemplate::new(500).set_body_json(graph_error(
            1,
            "An unknown error has occurred.",
            "E1",
        )))
        .up_to_n_times(1)
        .expect(1)
        .mount(&h.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v21.0/74000010"))
        .respond_with(ResponseTemplate::new(200).set_body_json(business("74000010")))
        .expect(1)
        .mount(&h.graph)
        .await;
    let envelope = h.call("get_business_info", business_task("74000010")).await;
    assert_eq!(envelope["status"], "success", "{envelope}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_usage_past_90_percent_refuses_that_ids_next_task_without_a_call() {
    let h = Harness::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/75000001"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(business("75000001"))
                .insert_header(
                    "x-business-use-case-usage",
                    business_usage("75000001", "pages", 95, 5).as_str(),
                ),
        )
        .expect(1)
        .mount(&h.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v21.0/75000002"))
        .respond_with(ResponseTemplate::new(200).set_body_json(business("75000002")))
        .expect(1)
        .mount(&h.graph)
        .await;
    let first = h.call("get_business_info", business_task("75000001")).await;
    assert_eq!(first["status"], "success");
    let refused = h.call("get_business_info", business_task("75000001")).await;
    assert_eq!(refused["status"], "limit", "{refused}");
    let answer = response(&refused);
    let wait = answer["wait_time"].as_f64().unwrap();
    assert!(wait > 290.0 && wait <= 300.0, "five minutes: {wait}");
    assert_eq!(answer["reason"], "business_use_case");
    assert_eq!(answer["usage"]["business_use_case"][0]["call_count"], 95);
    let other = h.call("get_business_info", business_task("75000002")).await;
    assert_eq!(other["status"], "success", "another id is not refused");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_account_usage_past_90_percent_refuses_that_accounts_next_task() {
    let h = Harness::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/act_76000001/insights"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(
                    json!({"data": [{"impressions": "10", "clicks": "1", "spend": "0.5",
                    "date_start": "2026-11-22", "date_stop": "2026-11-28"}],
                    "paging": {"cursors": {"before": "MAZDZD", "after": "MAZDZD"}}}),
                )
                .insert_header(
                    "x-ad-account-usage",
                    json!({"acc_id_util_pct": 92.3, "reset_time_duration": 240,
                    "ads_api_access_tier": "standard_access"})
                    .to_string()
                    .as_str(),
                ),
        )
        .expect(1)
        .mount(&h.graph)
        .await;
    let task = json!({"ad_account_id": "act_76000001", "date_preset": "last_7d"});
    let first = h.call("get_ad_insights", task.clone()).await;
    assert_eq!(first["status"], "success", "{first}");
    assert_eq!(response(&first)["rows"][0]["impressions"], "10");
    let refused = h.call("get_ad_insights", task).await;
    assert_eq!(refused["status"], "limit", "{refused}");
    assert_eq!(response(&refused)["reason"], "ad_account");
    assert_eq!(
        response(&refused)["usage"]["ad_account"]["acc_id_util_pct"],
        92.3
    );
    let wait = response(&refused)["wait_time"].as_f64().unwrap();
    assert!(wait > 230.0 && wait <= 240.0, "{wait}");
    let requests = h.requests().await;
    assert_eq!(
        query(&requests[0]),
        signed(&[
            ("fields", "impressions,clicks,spend"),
            ("date_preset", "last_7d")
        ])
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_insights_are_limited_to_200_an_hour_per_ad_account() {
    let h = Harness::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/act_77000001/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [], "paging": {}})))
        .expect(200)
        .mount(&h.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v21.0/act_77000002/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(1)
        .mount(&h.graph)
        .await;
    let ids: Vec<String> = (0..201)
        .map(|_| {
            h.hub.enqueue(
                "facebook",
                "get_ad_insights",
                json!({"ad_account_id": "act_77000001"}),
                Some(account()),
            )
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for id in &ids {
        let envelope = h
            .hub
            .wait_result(id, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        assert_no_secret(&envelope.to_string());
        *statuses
            .entry(envelope["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(statuses.get("success"), Some(&200), "{statuses:?}");
    assert_eq!(statuses.get("limit"), Some(&1), "{statuses:?}");
    let other = h
        .call("get_ad_insights", json!({"ad_account_id": "act_77000002"}))
        .await;
    assert_eq!(
        other["status"], "success",
        "another ad account has its own budget"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ad_account_id_or_empty_metrics_never_reach_facebook() {
    let h = Harness::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(0)
        .mount(&h.graph)
        .await;
    let envelope = h
        .call("get_ad_insights", json!({"ad_account_id": "76000001"}))
        .await;
    assert_eq!(envelope["status"], "error");
    assert!(
        envelope["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid payload"),
        "{envelope}"
    );
    let envelope = h
        .call("get_page_insights", json!({"page_id": "1", "metrics": []}))
        .await;
    assert!(
        envelope["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid payload"),
        "{envelope}"
    );
    let envelope = h
        .call(
            "get_page_insights",
            json!({"page_id": "1", "metrics": ["page_impressions"], "period": "month"}),
        )
        .await;
    assert!(
        envelope["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid payload"),
        "{envelope}"
    );
    let envelope = h
        .call_with(
            "get_business_info",
            business_task("1"),
            Some(json!({"app_secret": APP_SECRET})),
        )
        .await;
    assert!(
        envelope["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid account"),
        "{envelope}"
    );
    h.stop().await;
}
