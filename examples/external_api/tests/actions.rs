//! The actions called as plain methods against a stub of the GitHub REST API: one call each
//! (the retries, the cache and the rate limits are the runtime's, tested through the hub in
//! `hub.rs`). What each answer of the API becomes, and what each request carries.

mod support;

use std::time::Duration;

use arbv_provider::prelude::*;
use arbv_provider::retry::Transient;
use chrono::{TimeZone, Utc};
use external_api::{GitHub, GitHubAccount, RepoRequest, SearchRequest, limit_wait};
use reqwest::header::{HeaderMap, HeaderValue};
use support::*;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn repo(owner: &str, name: &str) -> RepoRequest {
    serde_json::from_value(json!({"owner": owner, "repo": name})).unwrap()
}

fn search(payload: Value) -> SearchRequest {
    serde_json::from_value(payload).unwrap()
}

fn token(token: &str) -> GitHubAccount {
    serde_json::from_value(account(token)).unwrap()
}

fn provider(stub: &MockServer) -> GitHub {
    GitHub::new(&stub.uri()).expect("the stub's URL is a base URL")
}

#[tokio::test]
async fn repo_info_is_read_from_the_answer_with_githubs_headers() {
    let stub = MockServer::start().await;
    github_request("/repos/rust-lang/rust", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(rust_repo()))
        .expect(1)
        .mount(&stub)
        .await;

    let answer = provider(&stub)
        .get_repo_info(repo("rust-lang", "rust"), token(TOKEN))
        .await
        .expect("a success");

    assert_eq!(answer.status(), Status::Success);
    assert_eq!(
        answer.response(),
        &json!({
            "full_name": "rust-lang/rust",
            "description": "Empowering everyone to build reliable and efficient software.",
            "stars": 104512, "forks": 13605, "language": "Rust",
            "url": "https://github.com/rust-lang/rust"
        })
    );
    let requests = stub.received_requests().await.unwrap();
    assert_eq!(requests[0].url.query(), None);
    let agent = requests[0].headers["user-agent"].to_str().unwrap();
    assert!(agent.starts_with("arbv-external-api/"), "{agent}");
}

#[tokio::test]
async fn a_repository_without_description_or_language_answers_nulls() {
    let stub = MockServer::start().await;
    let mut bare = rust_repo();
    bare["description"] = Value::Null;
    bare["language"] = Value::Null;
    github_request("/repos/rust-lang/rust", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(bare))
        .mount(&stub)
        .await;

    let answer = provider(&stub)
        .get_repo_info(repo("rust-lang", "rust"), token(TOKEN))
        .await
        .unwrap();

    assert_eq!(answer.response()["description"], Value::Null);
    assert_eq!(answer.response()["language"], Value::Null);
}

#[tokio::test]
async fn a_search_sends_its_query_and_page_size() {
    let stub = MockServer::start().await;
    github_request("/search/repositories", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(tokio_search(false)))
        .expect(2)
        .mount(&stub)
        .await;
    let github = provider(&stub);

    let default_page = github
        .search_repos(
            search(json!({"query": "tokio language:rust"})),
            token(TOKEN),
        )
        .await
        .unwrap();
    github
        .search_repos(
            search(json!({"query": "axum stars:>1000", "per_page": 100})),
            token(TOKEN),
        )
        .await
        .unwrap();

    assert_eq!(default_page.status(), Status::Success);
    assert_eq!(
        default_page.response(),
        &json!({
            "total_count": 2817,
            "items": [
                {"full_name": "tokio-rs/tokio", "stars": 28734, "url": "https://github.com/tokio-rs/tokio"},
                {"full_name": "tokio-rs/axum", "stars": 21466, "url": "https://github.com/tokio-rs/axum"}
            ]
        })
    );
    let queries: Vec<_> = stub
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(query_pairs)
        .collect();
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        queries,
        [
            vec![pair("q", "tokio language:rust"), pair("per_page", "10")],
            vec![pair("q", "axum stars:>1000"), pair("per_page", "100")]
        ]
    );
}

#[tokio::test]
async fn a_search_github_cut_short_is_a_warning() {
    let stub = MockServer::start().await;
    github_request("/search/repositories", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(tokio_search(true)))
        .mount(&stub)
        .await;

    let answer = provider(&stub)
        .search_repos(search(json!({"query": "tokio"})), token(TOKEN))
        .await
        .unwrap();

    assert_eq!(answer.status(), Status::Warning);
    assert_eq!(answer.response()["total_count"], 2817);
}

#[tokio::test]
async fn bad_credentials_are_unauthorized() {
    let stub = MockServer::start().await;
    github_request("/repos/rust-lang/rust", TOKEN)
        .respond_with(bad_credentials())
        .mount(&stub)
        .await;

    let error = provider(&stub)
        .get_repo_info(repo("rust-lang", "rust"), token(TOKEN))
        .await
        .expect_err("a 401 is an error");

    assert_eq!(error.code(), Some("UNAUTHORIZED"));
    assert_eq!(error.message(), "GitHub refused the token: Bad credentials");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_missing_repository_is_not_found() {
    let stub = MockServer::start().await;
    github_request("/repos/rust-lang/nope", TOKEN)
        .respond_with(not_found())
        .mount(&stub)
        .await;

    let error = provider(&stub)
        .get_repo_info(repo("rust-lang", "nope"), token(TOKEN))
        .await
        .expect_err("a 404 is an error");

    assert_eq!(error.code(), Some("NOT_FOUND"));
    assert_eq!(error.message(), "Not found: repository rust-lang/nope");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_403_that_is_no_rate_limit_is_forbidden() {
    let stub = MockServer::start().await;
    github_request("/repos/acme/private", TOKEN)
        .respond_with(forbidden())
        .mount(&stub)
        .await;

    let error = provider(&stub)
        .get_repo_info(repo("acme", "private"), token(TOKEN))
        .await
        .expect_err("a 403 is an error");

    assert_eq!(error.code(), Some("FORBIDDEN"));
    assert!(
        error.message().contains("Resource not accessible"),
        "{error}"
    );
}

#[tokio::test]
async fn rate_limits_are_limit_answers() {
    let stub = MockServer::start().await;
    let reset = Utc::now().timestamp() + 120;
    github_request("/repos/a/primary", TOKEN)
        .respond_with(primary_limit(403, reset))
        .mount(&stub)
        .await;
    github_request("/repos/a/secondary", TOKEN)
        .respond_with(secondary_limit(Some("30")))
        .mount(&stub)
        .await;
    github_request("/repos/a/unsaid", TOKEN)
        .respond_with(secondary_limit(None))
        .mount(&stub)
        .await;
    github_request("/repos/a/bare429", TOKEN)
        .respond_with(ResponseTemplate::new(429))
        .mount(&stub)
        .await;
    let github = provider(&stub);
    let wait = |answer: &ActionResponse| answer.response()["wait_time"].as_f64().unwrap();

    let primary = github
        .get_repo_info(repo("a", "primary"), token(TOKEN))
        .await
        .unwrap();
    let secondary = github
        .get_repo_info(repo("a", "secondary"), token(TOKEN))
        .await
        .unwrap();
    let unsaid = github
        .get_repo_info(repo("a", "unsaid"), token(TOKEN))
        .await
        .unwrap();
    let bare = github
        .get_repo_info(repo("a", "bare429"), token(TOKEN))
        .await
        .unwrap();

    for answer in [&primary, &secondary, &unsaid, &bare] {
        assert_eq!(answer.status(), Status::Limit, "{:?}", answer.response());
    }
    assert!(
        (115.0..=120.0).contains(&wait(&primary)),
        "{}",
        wait(&primary)
    );
    assert_eq!(primary.response()["resource"], "core");
    assert_eq!(primary.response()["http_status"], 403);
    assert_eq!(wait(&secondary), 30.0);
    assert_eq!(wait(&unsaid), 60.0);
    assert_eq!(wait(&bare), 60.0);
}

#[test]
fn the_wait_is_until_the_reset_or_retry_after_and_at_least_a_second() {
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
    let headers = |pairs: &[(&'static str, &str)]| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    };
    let reset = |seconds: i64| (now.timestamp() + seconds).to_string();

    assert_eq!(
        limit_wait(
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset(90))
            ]),
            now
        ),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        limit_wait(
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset(-30))
            ]),
            now
        ),
        Some(Duration::from_secs(1)),
        "a reset already past"
    );
    assert_eq!(
        limit_wait(
            &headers(&[
                ("x-ratelimit-remaining", "12"),
                ("x-ratelimit-reset", &reset(90))
            ]),
            now
        ),
        None,
        "calls remain: no rate limit"
    );
    assert_eq!(
        limit_wait(&headers(&[("retry-after", "45")]), now),
        Some(Duration::from_secs(45))
    );
    assert_eq!(
        limit_wait(
            &headers(&[
                ("retry-after", "45"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset(90))
            ]),
            now
        ),
        Some(Duration::from_secs(90)),
        "both: the longer"
    );
    assert_eq!(limit_wait(&HeaderMap::new(), now), None);
}

#[tokio::test]
async fn a_server_error_is_transient_and_unavailable() {
    let stub = MockServer::start().await;
    Mock::given(path("/repos/rust-lang/rust"))
        .respond_with(server_error())
        .expect(1)
        .mount(&stub)
        .await;

    let error = provider(&stub)
        .get_repo_info(repo("rust-lang", "rust"), token(TOKEN))
        .await
        .expect_err("a 502 is an error");

    assert_eq!(error.code(), Some("UPSTREAM_UNAVAILABLE"));
    assert!(error.is_transient(), "the runtime retries it");
    assert_eq!(error.details()["http_status"], 502);
}

#[tokio::test]
async fn a_connection_that_fails_is_transient() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);

    let error = GitHub::new(&url)
        .unwrap()
        .get_repo_info(repo("rust-lang", "rust"), token(TOKEN))
        .await
        .expect_err("nothing listens");

    assert_eq!(error.code(), Some("UPSTREAM_UNAVAILABLE"));
    assert!(error.is_transient());
    assert!(
        error.message().starts_with("GitHub could not be reached"),
        "{error}"
    );
}

#[tokio::test]
async fn an_enterprise_base_path_is_kept() {
    let stub = MockServer::start().await;
    github_request("/api/v3/repos/acme/web.site", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(rust_repo()))
        .expect(1)
        .mount(&stub)
        .await;

    GitHub::new(&format!("{}/api/v3", stub.uri()))
        .unwrap()
        .get_repo_info(repo("acme", "web.site"), token(TOKEN))
        .await
        .unwrap();
}

#[test]
fn the_account_debug_hides_the_token() {
    assert!(!format!("{:?}", token(TOKEN)).contains(TOKEN));
}

#[test]
fn a_base_url_that_is_not_http_is_refused_naming_the_variable() {
    let error = GitHub::new("file:///etc").unwrap_err().to_string();
    assert!(
        error.starts_with("GITHUB_API_URL: `file:///etc`"),
        "{error}"
    );
}
