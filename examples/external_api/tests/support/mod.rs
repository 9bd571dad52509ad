//! A stub of the GitHub REST API speaking its shapes, and the answers it gives, copied from the
//! real API's (version 2022-11-28; long lists of URL templates trimmed).

#![allow(dead_code)]

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockBuilder, ResponseTemplate};

/// The token the tests' accounts hold: distinctive, so that a test can look for it.
pub const TOKEN: &str = "ghp_stubToken7Qx2Lk9Vb3Nm5Rt8Wy1Zc4Hd6Jf0Gs";
/// A second token, another account.
pub const OTHER_TOKEN: &str = "ghp_otherToken1Aa2Bb3Cc4Dd5Ee6Ff7Gg8Hh9Ii0";

pub fn account(token: &str) -> Value {
    json!({ "token": token })
}

fn owner(login: &str, id: u64, kind: &str) -> Value {
    json!({
        "login": login,
        "id": id,
        "node_id": "MDEyOk9yZ2FuaXphdGlvbjU0MzA5MDU=",
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": format!("https://api.github.com/users/{login}"),
        "html_url": format!("https://github.com/{login}"),
        "repos_url": format!("https://api.github.com/users/{login}/repos"),
        "type": kind,
        "site_admin": false
    })
}

/// `GET /repos/rust-lang/rust`, as GitHub answers it.
pub fn rust_repo() -> Value {
    let mut repo: Value = serde_json::from_str(RUST_REPO).expect("the fixture is JSON");
    repo["owner"] = owner("rust-lang", 5430905, "Organization");
    repo["organization"] = repo["owner"].clone();
    repo
}

const RUST_REPO: &str = r#"{
  "id": 724712,
  "node_id": "MDEwOlJlcG9zaXRvcnk3MjQ3MTI=",
  "name": "rust",
  "full_name": "rust-lang/rust",
  "private": false,
  "owner": null,
  "html_url": "https://github.com/rust-lang/rust",
  "description": "Empowering everyone to build reliable and efficient software.",
  "fork": false,
  "url": "https://api.github.com/repos/rust-lang/rust",
  "created_at": "2010-06-16T20:39:03Z",
  "updated_at": "2026-11-29T09:12:44Z",
  "pushed_at": "2026-11-29T09:10:02Z",
  "git_url": "git://github.com/rust-lang/rust.git",
  "ssh_url": "git@github.com:rust-lang/rust.git",
  "clone_url": "https://github.com/rust-lang/rust.git",
  "homepage": "https://www.rust-lang.org",
  "size": 1046784,
  "stargazers_count": 104512,
  "watchers_count": 104512,
  "language": "Rust",
  "has_issues": true,
  "has_projects": true,
  "has_downloads": true,
  "has_wiki": false,
  "has_pages": false,
  "has_discussions": false,
  "forks_count": 13605,
  "archived": false,
  "disabled": false,
  "open_issues_count": 10482,
  "license": {"key": "other", "name": "Other", "spdx_id": "NOASSERTION", "url": null, "node_id": "MDc6TGljZW5zZTA="},
  "allow_forking": true,
  "is_template": false,
  "topics": ["compiler", "language", "rust"],
  "visibility": "public",
  "forks": 13605,
  "open_issues": 10482,
  "watchers": 104512,
  "default_branch": "master",
  "permissions": {"admin": false, "maintain": false, "push": false, "triage": false, "pull": true},
  "organization": null,
  "network_count": 13605,
  "subscribers_count": 1482
}"#;

/// One repository of a search's `items`.
fn found(full_name: &str, stars: u64, language: Option<&str>) -> Value {
    let (login, name) = full_name.split_once('/').unwrap();
    json!({
        "id": 133442384,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMzM0NDIzODQ=",
        "name": name,
        "full_name": full_name,
        "private": false,
        "owner": owner(login, 20248544, "Organization"),
        "html_url": format!("https://github.com/{full_name}"),
        "description": "A runtime for writing reliable asynchronous applications with Rust.",
        "fork": false,
        "url": format!("https://api.github.com/repos/{full_name}"),
        "created_at": "2016-09-09T22:44:23Z",
        "updated_at": "2026-11-29T08:01:13Z",
        "pushed_at": "2026-11-28T21:40:55Z",
        "homepage": "https://tokio.rs",
        "size": 21342,
        "stargazers_count": stars,
        "watchers_count": stars,
        "language": language,
        "forks_count": 2650,
        "open_issues_count": 321,
        "default_branch": "master",
        "score": 1.0
    })
}

/// `GET /search/repositories?q=tokio+language:rust&per_page=…`, two results of it.
pub fn tokio_search(incomplete: bool) -> Value {
    json!({
        "total_count": 2817,
        "incomplete_results": incomplete,
        "items": [
            found("tokio-rs/tokio", 28734, Some("Rust")),
            found("tokio-rs/axum", 21466, Some("Rust"))
        ]
    })
}

/// GitHub's 401.
pub fn bad_credentials() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401"
    }))
}

/// GitHub's 404.
pub fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository",
        "status": "404"
    }))
}

/// GitHub's primary rate limit spent: `status` 403 or 429, the quota's headers, `reset` the
/// epoch second it comes back.
pub fn primary_limit(status: u16, reset: i64) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-ratelimit-limit", "5000")
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-used", "5000")
        .insert_header("x-ratelimit-reset", reset.to_string().as_str())
        .insert_header("x-ratelimit-resource", "core")
        .set_body_json(json!({
            "message": "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID 0F2E:3B4A:1C2D3E:4F5A6B:6749A1B2.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            "status": status.to_string()
        }))
}

/// GitHub's secondary rate limit: 403 with a body saying so, and `Retry-After` when given.
pub fn secondary_limit(retry_after: Option<&str>) -> ResponseTemplate {
    let template = ResponseTemplate::new(403).set_body_json(json!({
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0F2E:3B4A:1C2D3E:4F5A6B:6749A1B3.",
        "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        "status": "403"
    }));
    match retry_after {
        Some(seconds) => template.insert_header("retry-after", seconds),
        None => template,
    }
}

/// A 403 that is not a rate limit.
pub fn forbidden() -> ResponseTemplate {
    ResponseTemplate::new(403).set_body_json(json!({
        "message": "Resource not accessible by personal access token",
        "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository",
        "status": "403"
    }))
}

/// GitHub's 502 while it is having trouble.
pub fn server_error() -> ResponseTemplate {
    ResponseTemplate::new(502).set_body_json(json!({
        "message": "Server Error"
    }))
}

/// `GET {path}` with the token and every header GitHub requires.
pub fn github_request(at: &str, token: &str) -> MockBuilder {
    Mock::given(method("GET"))
        .and(path(at))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(wiremock::matchers::header_exists("user-agent"))
}

/// The query of a request the stub received, as pairs in their order.
pub fn query_pairs(request: &wiremock::Request) -> Vec<(String, String)> {
    request
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
