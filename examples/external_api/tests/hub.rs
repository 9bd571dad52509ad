//! The external-API provider end to end: tasks from a dev hub over gRPC, the provider calling a
//! stub of the GitHub REST API. For each rule (headers, error mappings, GitHub's rate limits,
//! cache, retries, the provider's own quotas), what the hub got back and what the stub
//! received: path, query, headers, and how many requests.

mod support;

use std::time::Duration;

use arbv_provider::dev_hub::{DevHub, RunningServer};
use arbv_tests::{RunningProvider, config, start_hub};
use chrono::Utc;
use external_api::GitHub;
use serde_json::{Value, json};
use support::*;
use wiremock::{MockServer, ResponseTemplate};

const PROVIDER: &str = "external-api";

/// A dev hub, the provider serving it, and the API it calls.
struct Rig {
    hub: DevHub,
    server: RunningServer,
    provider: RunningProvider,
}

impl Rig {
    async fn start(api_url: &str) -> Self {
        let (hub, server) = start_hub(Duration::from_secs(2)).await;
        let github = GitHub::new(api_url).expect("a base URL");
        let provider = RunningProvider::start(github, config(&server.url()).build().unwrap());
        Self {
            hub,
            server,
            provider,
        }
    }

    /// Sends one task and waits for its envelope.
    async fn ask(&self, action: &str, payload: Value, token: &str) -> Value {
        let id = self
            .hub
            .enqueue(PROVIDER, action, payload, Some(account(token)));
        self.hub
            .wait_result(&id, Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("no answer to {action} within 60 s"))
    }

    async fn repo(&self, owner: &str, repo: &str, token: &str) -> Value {
        self.ask(
            "get_repo_info",
            json!({"owner": owner, "repo": repo}),
            token,
        )
        .await
    }

    async fn stop(self) {
        self.provider.stop().await.expect("a clean shutdown");
        self.server.stop().await;
    }
}

fn response(envelope: &Value) -> &Value {
    &envelope["data"]["response"]
}

#[tokio::test]
async fn repo_info_comes_back_with_every_header_github_requires() {
    let stub = MockServer::start().await;
    github_request("/repos/rust-lang/rust", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(rust_repo()))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let envelope = rig.repo("rust-lang", "rust", TOKEN).await;

    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(
        response(&envelope),
        &json!({
            "full_name": "rust-lang/rust",
            "description": "Empowering everyone to build reliable and efficient software.",
            "stars": 104512, "forks": 13605, "language": "Rust",
            "url": "https://github.com/rust-lang/rust"
        })
    );
    let requests = stub.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url.path(), "/repos/rust-lang/rust");
    assert_eq!(requests[0].url.query(), None);
    assert_eq!(
        requests[0].headers["authorization"],
        format!("Bearer {TOKEN}")
    );
    assert_eq!(requests[0].headers["accept"], "application/vnd.github+json");
    assert_eq!(requests[0].headers["x-github-api-version"], "2022-11-28");
    assert!(requests[0].headers.contains_key("user-agent"));
    rig.stop().await;
}

#[tokio::test]
async fn repo_info_is_cached_per_repository_and_account() {
    let stub = MockServer::start().await;
    github_request("/repos/rust-lang/rust", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(rust_repo()))
        .expect(1)
        .mount(&stub)
        .await;
    github_request("/repos/rust-lang/rust", OTHER_TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(rust_repo()))
        .expect(1)
        .mount(&stub)
        .await;
    github_request("/repos/rust-lang/cargo", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(rust_repo()))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let first = rig.repo("rust-lang", "rust", TOKEN).await;
    let again = rig.repo("rust-lang", "rust", TOKEN).await;
    let other_account = rig.repo("rust-lang", "rust", OTHER_TOKEN).await;
    let other_repo = rig.repo("rust-lang", "cargo", TOKEN).await;

    assert!(first["data"].get("cached").is_none(), "{first}");
    assert_eq!(again["data"]["cached"], true, "{again}");
    assert_eq!(response(&again), response(&first));
    assert!(other_account["data"].get("cached").is_none());
    assert!(other_repo["data"].get("cached").is_none());
    assert_eq!(stub.received_requests().await.unwrap().len(), 3);
    rig.stop().await;
}

#[tokio::test]
async fn searches_send_their_query_and_are_not_cached() {
    let stub = MockServer::start().await;
    github_request("/search/repositories", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(tokio_search(false)))
        .expect(3)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let first = rig
        .ask(
            "search_repos",
            json!({"query": "tokio language:rust"}),
            TOKEN,
        )
        .await;
    let again = rig
        .ask(
            "search_repos",
            json!({"query": "tokio language:rust"}),
            TOKEN,
        )
        .await;
    let large = rig
        .ask(
            "search_repos",
            json!({"query": "tokio", "per_page": 100}),
            TOKEN,
        )
        .await;

    for envelope in [&first, &again, &large] {
        assert_eq!(envelope["status"], "success", "{envelope}");
        assert!(envelope["data"].get("cached").is_none());
    }
    assert_eq!(response(&first)["total_count"], 2817);
    assert_eq!(
        response(&first)["items"][0],
        json!({"full_name": "tokio-rs/tokio", "stars": 28734, "url": "https://github.com/tokio-rs/tokio"})
    );
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let queries: Vec<_> = stub
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(query_pairs)
        .collect();
    assert_eq!(
        queries,
        [
            vec![pair("q", "tokio language:rust"), pair("per_page", "10")],
            vec![pair("q", "tokio language:rust"), pair("per_page", "10")],
            vec![pair("q", "tokio"), pair("per_page", "100")]
        ]
    );
    rig.stop().await;
}

#[tokio::test]
async fn bad_credentials_are_unauthorized_at_the_first_try() {
    let stub = MockServer::start().await;
    github_request("/repos/rust-lang/rust", TOKEN)
        .respond_with(bad_credentials())
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let envelope = rig.repo("rust-lang", "rust", TOKEN).await;

    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(response(&envelope)["error_code"], "UNAUTHORIZED");
    assert_eq!(response(&envelope)["details"]["attempts"], 1);
    assert!(!envelope.to_string().contains(TOKEN));
    rig.stop().await;
}

#[tokio::test]
async fn a_missing_repository_is_not_found_and_not_cached() {
    let stub = MockServer::start().await;
    github_request("/repos/rust-lang/nope", TOKEN)
        .respond_with(not_found())
        .expect(2)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    for _ in 0..2 {
        let envelope = rig.repo("rust-lang", "nope", TOKEN).await;
        assert_eq!(envelope["status"], "error", "{envelope}");
        assert_eq!(envelope["message"], "Not found: repository rust-lang/nope");
        assert_eq!(response(&envelope)["error_code"], "NOT_FOUND");
    }
    rig.stop().await;
}

#[tokio::test]
async fn a_403_that_is_no_rate_limit_is_forbidden() {
    let stub = MockServer::start().await;
    github_request("/repos/acme/private", TOKEN)
        .respond_with(forbidden())
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let envelope = rig.repo("acme", "private", TOKEN).await;

    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(response(&envelope)["error_code"], "FORBIDDEN");
    rig.stop().await;
}

#[tokio::test]
async fn a_spent_quota_is_a_limit_until_its_reset_on_403_and_429() {
    let stub = MockServer::start().await;
    let reset = Utc::now().timestamp() + 300;
    github_request("/repos/a/on-403", TOKEN)
        .respond_with(primary_limit(403, reset))
        .expect(1)
        .mount(&stub)
        .await;
    github_request("/search/repositories", TOKEN)
        .respond_with(primary_limit(429, reset))
        .expect(1)
        .mount(&stub)
        .await;
    // A reset already past still gets a wait.
    github_request("/repos/a/past-reset", TOKEN)
        .respond_with(primary_limit(403, Utc::now().timestamp() - 10))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let on_403 = rig.repo("a", "on-403", TOKEN).await;
    let on_429 = rig
        .ask("search_repos", json!({"query": "tokio"}), TOKEN)
        .await;
    let past = rig.repo("a", "past-reset", TOKEN).await;

    for envelope in [&on_403, &on_429] {
        assert_eq!(envelope["status"], "limit", "{envelope}");
        let wait = response(envelope)["wait_time"].as_f64().unwrap();
        assert!((280.0..=300.0).contains(&wait), "{envelope}");
        assert_eq!(response(envelope)["resource"], "core");
    }
    assert_eq!(past["status"], "limit", "{past}");
    assert_eq!(response(&past)["wait_time"], 1.0);
    rig.stop().await;
}

#[tokio::test]
async fn a_secondary_limit_waits_for_retry_after_or_a_minute() {
    let stub = MockServer::start().await;
    github_request("/repos/a/told", TOKEN)
        .respond_with(secondary_limit(Some("45")))
        .expect(1)
        .mount(&stub)
        .await;
    github_request("/repos/a/untold", TOKEN)
        .respond_with(secondary_limit(None))
        .expect(1)
        .mount(&stub)
        .await;
    github_request("/search/repositories", TOKEN)
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let told = rig.repo("a", "told", TOKEN).await;
    let untold = rig.repo("a", "untold", TOKEN).await;
    let search = rig
        .ask("search_repos", json!({"query": "tokio"}), TOKEN)
        .await;

    assert_eq!(told["status"], "limit", "{told}");
    assert_eq!(response(&told)["wait_time"], 45.0);
    assert_eq!(untold["status"], "limit", "{untold}");
    assert_eq!(response(&untold)["wait_time"], 60.0);
    assert_eq!(search["status"], "limit", "{search}");
    assert_eq!(response(&search)["wait_time"], 7.0);
    rig.stop().await;
}

#[tokio::test]
async fn a_server_error_is_tried_three_times_then_unavailable() {
    let stub = MockServer::start().await;
    github_request("/repos/rust-lang/rust", TOKEN)
        .respond_with(server_error())
        .expect(3)
        .mount(&stub)
        .await;
    github_request("/search/repositories", TOKEN)
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let repo = rig.repo("rust-lang", "rust", TOKEN).await;
    let search = rig
        .ask("search_repos", json!({"query": "tokio"}), TOKEN)
        .await;

    for envelope in [&repo, &search] {
        assert_eq!(envelope["status"], "error", "{envelope}");
        assert_eq!(response(envelope)["error_code"], "UPSTREAM_UNAVAILABLE");
        assert_eq!(response(envelope)["details"]["attempts"], 3);
    }
    rig.stop().await;
}

#[tokio::test]
async fn a_server_error_that_passes_is_answered_and_then_cached() {
    let stub = MockServer::start().await;
    github_request("/repos/rust-lang/rust", TOKEN)
        .respond_with(server_error())
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&stub)
        .await;
    github_request("/repos/rust-lang/rust", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(rust_repo()))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let first = rig.repo("rust-lang", "rust", TOKEN).await;
    let cached = rig.repo("rust-lang", "rust", TOKEN).await;

    assert_eq!(first["status"], "success", "{first}");
    assert_eq!(cached["data"]["cached"], true, "{cached}");
    rig.stop().await;
}

#[tokio::test]
async fn a_repository_name_that_is_no_path_segment_never_reaches_github() {
    let stub = MockServer::start().await;
    let rig = Rig::start(&stub.uri()).await;

    for (owner, repo) in [
        ("rust-lang", ".."),
        ("..", "rust"),
        ("a/b", "c"),
        ("a", "b?c"),
    ] {
        let envelope = rig.repo(owner, repo, TOKEN).await;
        assert_eq!(envelope["status"], "error", "{envelope}");
        let message = envelope["message"].as_str().unwrap();
        assert!(message.starts_with("Invalid payload"), "{envelope}");
    }
    assert!(stub.received_requests().await.unwrap().is_empty());
    rig.stop().await;
}

#[tokio::test]
async fn thirty_searches_a_minute_per_token() {
    let stub = MockServer::start().await;
    github_request("/search/repositories", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(tokio_search(false)))
        .expect(30)
        .mount(&stub)
        .await;
    github_request("/search/repositories", OTHER_TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(tokio_search(false)))
        .expect(1)
        .mount(&stub)
        .await;
    github_request("/repos/rust-lang/rust", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(rust_repo()))
        .expect(1)
        .mount(&stub)
        .await;
    let rig = Rig::start(&stub.uri()).await;

    let ids: Vec<_> = (0..30)
        .map(|n| {
            rig.hub.enqueue(
                PROVIDER,
                "search_repos",
                json!({"query": format!("topic:{n}")}),
                Some(account(TOKEN)),
            )
        })
        .collect();
    for id in ids {
        let envelope = rig
            .hub
            .wait_result(&id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(envelope["status"], "success", "{envelope}");
    }
    let over = rig
        .ask("search_repos", json!({"query": "one more"}), TOKEN)
        .await;
    let other_token = rig
        .ask("search_repos", json!({"query": "one more"}), OTHER_TOKEN)
        .await;
    // Repositories have the token's hourly budget, apart from searches.
    let repo = rig.repo("rust-lang", "rust", TOKEN).await;

    assert_eq!(over["status"], "limit", "{over}");
    let budget = response(&over)["key"].as_str().unwrap();
    assert!(budget.starts_with("account.token=#"), "{over}");
    assert!(!over.to_string().contains(TOKEN), "{over}");
    assert_eq!(other_token["status"], "success", "{other_token}");
    assert_eq!(repo["status"], "success", "{repo}");
    rig.stop().await;
}
