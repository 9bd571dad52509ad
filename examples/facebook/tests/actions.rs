//! The actions called as plain methods against a Graph API stub: the exact request each makes,
//! the answer it builds, and how it follows pages.

mod common;

use arbv_provider::prelude::*;
use common::*;
use facebook::{
    AdInsightsRequest, BusinessInfoRequest, Facebook, FacebookAccount, GraphConfig,
    PageInsightsRequest,
};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn provider(graph: &MockServer) -> Facebook {
    Facebook::new(GraphConfig::new(&graph.uri(), VERSION).unwrap()).unwrap()
}

fn typed_account() -> FacebookAccount {
    serde_json::from_value(account()).unwrap()
}

fn page_request(page_id: &str) -> PageInsightsRequest {
    serde_json::from_value(json!({
        "page_id": page_id,
        "metrics": ["page_impressions", "page_post_engagements"],
        "period": "day",
    }))
    .unwrap()
}

/// A page of page insights: both metrics, one value each, and a `next` link as Facebook writes
/// it (with its own copy of the token).
fn insights_page(day: u32, next: Option<String>) -> Value {
    let end_time = format!("2026-03-{day:02}T08:00:00+0000");
    let mut page = json!({
        "data": [
            {"name": "page_impressions", "period": "day", "title": "Daily Total Impressions",
             "description": "Daily: The number of times any content from your Page entered a person's screen.",
             "values": [{"value": 1000 + day, "end_time": end_time}], "id": "1/insights/page_impressions/day"},
            {"name": "page_post_engagements", "period": "day", "title": "Daily Post Engagements",
             "description": "Daily: The number of times people have engaged with your posts.",
             "values": [{"value": day, "end_time": end_time}], "id": "1/insights/page_post_engagements/day"},
        ],
        "paging": {"previous": "https://graph.facebook.com/v21.0/1/insights?access_token=FB_COPY&since=1"},
    });
    if let Some(next) = next {
        page["paging"]["next"] = json!(next);
    }
    page
}

#[tokio::test]
async fn business_info_asks_for_the_four_fields_signed_and_answers_them() {
    let graph = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/41000001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(business("41000001")))
        .expect(1)
        .mount(&graph)
        .await;
    let payload: BusinessInfoRequest =
        serde_json::from_value(json!({"business_id": "41000001"})).unwrap();
    let answer = provider(&graph)
        .get_business_info(payload, typed_account())
        .await
        .unwrap();
    assert_eq!(answer.status(), Status::Success);
    assert_eq!(answer.response(), &business("41000001"));
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(
        query(&requests[0]),
        signed(&[("fields", "id,name,verification_status,created_time")])
    );
}

#[tokio::test]
async fn without_an_app_secret_there_is_no_proof() {
    let graph = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/41000002"))
        .respond_with(ResponseTemplate::new(200).set_body_json(business("41000002")))
        .expect(1)
        .mount(&graph)
        .await;
    let payload: BusinessInfoRequest =
        serde_json::from_value(json!({"business_id": "41000002"})).unwrap();
    let account: FacebookAccount =
        serde_json::from_value(json!({"access_token": ACCESS_TOKEN})).unwrap();
    provider(&graph)
        .get_business_info(payload, account)
        .await
        .unwrap();
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(
        query(&requests[0]),
        vec![
            (
                "fields".to_owned(),
                "id,name,verification_status,created_time".to_owned()
            ),
            ("access_token".to_owned(), ACCESS_TOKEN.to_owned()),
        ]
    );
}

#[tokio::test]
async fn page_insights_follow_next_with_our_token_and_merge_the_metrics() {
    let graph = MockServer::start().await;
    let next = |after: &str| {
        format!(
            "{}/v21.0/52000001/insights?access_token=FB_COPY&metric=page_impressions%2Cpage_post_engagements&period=day&since=1772841600&until={after}",
            graph.uri()
        )
    };
    Mock::given(method("GET"))
        .and(path("/v21.0/52000001/insights"))
        .and(query_param("until", "1773014400"))
        .respond_with(ResponseTemplate::new(200).set_body_json(insights_page(3, None)))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v21.0/52000001/insights"))
        .and(query_param("until", "1772928000"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(insights_page(2, Some(next("1773014400")))),
        )
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v21.0/52000001/insights"))
        .and(query_param("period", "day"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(insights_page(1, Some(next("1772928000")))),
        )
        .expect(1)
        .mount(&graph)
        .await;
    let answer = provider(&graph)
        .get_page_insights(page_request("52000001"), typed_account())
        .await
        .unwrap();
    assert_eq!(answer.status(), Status::Success, "{:?}", answer);
    let response = answer.response();
    assert_eq!(response["page_id"], "52000001");
    assert_eq!(response["pages"], 3);
    assert_eq!(response["truncated"], false);
    assert_eq!(
        response["metrics"]["page_impressions"],
        json!([
            {"end_time": "2026-03-01T08:00:00+0000", "value": 1001},
            {"end_time": "2026-03-02T08:00:00+0000", "value": 1002},
            {"end_time": "2026-03-03T08:00:00+0000", "value": 1003},
        ])
    );
    assert_eq!(response["metrics"]["page_post_engagements"][2]["value"], 3);
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(
        query(&requests[0]),
        signed(&[
            ("metric", "page_impressions,page_post_engagements"),
            ("period", "day")
        ])
    );
    // The next link's own token is replaced by the account's, with the proof.
    assert_eq!(
        query(&requests[1]),
        signed(&[
            ("metric", "page_impressions,page_post_engagements"),
            ("period", "day"),
            ("since", "1772841600"),
            ("until", "1772928000"),
        ])
    );
}

#[tokio::test]
async fn at_most_ten_pages_are_read() {
    let graph = MockServer::start().await;
    let next = format!("{}/v21.0/52000002/insights?after=more", graph.uri());
    Mock::given(method("GET"))
        .and(path("/v21.0/52000002/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(insights_page(1, Some(next))))
        .expect(10)
        .mount(&graph)
        .await;
    let answer = provider(&graph)
        .get_page_insights(page_request("52000002"), typed_account())
        .await
        .unwrap();
    assert_eq!(answer.response()["pages"], 10);
    assert_eq!(answer.response()["truncated"], true);
    assert_eq!(
        answer.response()["metrics"]["page_impressions"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
}

#[tokio::test]
async fn an_empty_page_ends_a_time_series() {
    let graph = MockServer::start().await;
    let next = format!("{}/v21.0/52000003/insights?after=more", graph.uri());
    let mut empty = insights_page(1, Some(next.clone()));
    for series in empty["data"].as_array_mut().unwrap() {
        series["values"] = json!([]);
    }
    Mock::given(method("GET"))
        .and(path("/v21.0/52000003/insights"))
        .and(query_param("after", "more"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v21.0/52000003/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(insights_page(1, Some(next))))
        .expect(1)
        .mount(&graph)
        .await;
    let answer = provider(&graph)
        .get_page_insights(page_request("52000003"), typed_account())
        .await
        .unwrap();
    assert_eq!(answer.response()["pages"], 2);
    assert_eq!(answer.response()["truncated"], false);
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let graph = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(insights_page(2, None)))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let next = format!(
        "{}/v21.0/52000004/insights?access_token=FB_COPY&after=x",
        elsewhere.uri()
    );
    Mock::given(method("GET"))
        .and(path("/v21.0/52000004/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(insights_page(1, Some(next))))
        .expect(1)
        .mount(&graph)
        .await;
    let answer = provider(&graph)
        .get_page_insights(page_request("52000004"), typed_account())
        .await
        .unwrap();
    assert_eq!(answer.response()["pages"], 1);
    assert_eq!(answer.response()["truncated"], true);
}

#[tokio::test]
async fn since_and_until_are_sent_and_their_order_is_checked() {
    let graph = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v21.0/52000005/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(insights_page(1, None)))
        .expect(1)
        .mount(&graph)
        .await;
    let facebook = provider(&graph);
    let request = |since: &str, until: &str| -> PageInsightsRequest {
        serde_json::from_value(
            json!({"page_id": "52000005", "metrics": ["page_impressions"],
            "period": "days_28", "since": since, "until": until}),
        )
        .unwrap()
    };
    let error = facebook
        .get_page_insights(request("2026-03-10", "2026-03-01"), typed_account())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("INVALID_PARAMETER"));
    facebook
        .get_page_insights(request("2026-03-01", "2026-03-10"), typed_account())
        .await
        .unwrap();
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(
        query(&requests[0]),
        signed(&[
            ("metric", "page_impressions"),
            ("period", "days_28"),
            ("since", "2026-03-01"),
            ("until", "2026-03-10"),
        ])
    );
    assert!(
        serde_json::from_value::<PageInsightsRequest>(json!({"page_id": "1", "metrics": ["a"],
            "since": "2026-02-30"}))
        .is_err()
    );
}

#[tokio::test]
async fn ad_insights_follow_cursor_pages_and_answer_the_rows() {
    let graph = MockServer::start().await;
    let row = |day: &str, impressions: &str| {
        json!({"impressions": impressions, "clicks": "12", "spend": "3.41",
               "date_start": day, "date_stop": day, "account_id": "63000001"})
    };
    let next = format!(
        "{}/v21.0/act_63000001/insights?access_token=FB_COPY&fields=impressions%2Cclicks%2Cspend&date_preset=last_7d&limit=25&after=MjQZD",
        graph.uri()
    );
    Mock::given(method("GET"))
        .and(path("/v21.0/act_63000001/insights"))
        .and(query_param("after", "MjQZD"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [row("2026-03-02", "2200")],
            "paging": {"cursors": {"before": "MjQZD", "after": "MjUZD"}},
        })))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v21.0/act_63000001/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [row("2026-03-01", "2100")],
            "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}, "next": next},
        })))
        .expect(1)
        .mount(&graph)
        .await;
    let payload: AdInsightsRequest =
        serde_json::from_value(json!({"ad_account_id": "act_63000001"})).unwrap();
    let answer = provider(&graph)
        .get_ad_insights(payload, typed_account())
        .await
        .unwrap();
    assert_eq!(answer.response()["ad_account_id"], "act_63000001");
    assert_eq!(
        answer.response()["rows"],
        json!([row("2026-03-01", "2100"), row("2026-03-02", "2200")])
    );
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(
        query(&requests[0]),
        signed(&[
            ("fields", "impressions,clicks,spend"),
            ("date_preset", "last_7d")
        ])
    );
    assert_eq!(requests[1].url.path(), "/v21.0/act_63000001/insights");
}

#[tokio::test]
async fn no_connection_is_a_transient_error_that_names_no_url() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let facebook = Facebook::new(GraphConfig::new(&url, VERSION).unwrap()).unwrap();
    let payload: BusinessInfoRequest =
        serde_json::from_value(json!({"business_id": "41000003"})).unwrap();
    let error = facebook
        .get_business_info(payload, typed_account())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("UPSTREAM_UNAVAILABLE"));
    assert!(arbv_provider::retry::Transient::is_transient(&error));
    assert!(!error.message().contains("41000003"), "{}", error.message());
    assert_no_secret(&format!("{error:?}"));
}

#[tokio::test]
async fn page_insights_do_not_follow_next_past_until() {
    let graph = MockServer::start().await;
    // 2026-03-08 00:00 UTC: the day after `until`.
    let next = format!(
        "{}/v21.0/52000006/insights?metric=page_impressions&period=day&since=1772928000&until=1773532800",
        graph.uri()
    );
    Mock::given(method("GET"))
        .and(path("/v21.0/52000006/insights"))
        .respond_with(ResponseTemplate::new(200).set_body_json(insights_page(1, Some(next))))
        .expect(1)
        .mount(&graph)
        .await;
    let payload: PageInsightsRequest = serde_json::from_value(json!({"page_id": "52000006",
        "metrics": ["page_impressions"], "since": "2026-03-01", "until": "2026-03-07"}))
    .unwrap();
    let answer = provider(&graph)
        .get_page_insights(payload, typed_account())
        .await
        .unwrap();
    assert_eq!(answer.response()["pages"], 1);
    assert_eq!(answer.response()["truncated"], false);
}
