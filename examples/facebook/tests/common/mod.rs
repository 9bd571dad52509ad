//! What the Facebook tests share: a Graph API stub speaking Facebook's shapes, the account, and
//! what the stub was asked.

#![allow(dead_code)]

use std::time::Duration;

use arbv_provider::dev_hub::{DevHub, RunningServer};
use arbv_tests::{RunningProvider, config, start_hub};
use facebook::{Facebook, GraphConfig};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::{MockServer, Request};

pub const ACCESS_TOKEN: &str = "EAAGm0PX4ZCpsBAtest-token-7f3a9c";
pub const APP_SECRET: &str = "app-secret-1b2c3d4e5f";
pub const VERSION: &str = "v21.0";

/// The account of the tests, with its app secret.
pub fn account() -> Value {
    json!({ "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET })
}

/// `appsecret_proof` computed here, not by the provider: HMAC-SHA256 of the token keyed by the
/// secret, in lower-case hex.
pub fn expected_proof() -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(ACCESS_TOKEN.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A request's query, as pairs in order.
pub fn query(request: &Request) -> Vec<(String, String)> {
    request
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `pairs`, then the token and the proof every call ends with.
pub fn signed(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.push(("access_token".into(), ACCESS_TOKEN.into()));
    all.push(("appsecret_proof".into(), expected_proof()));
    all
}

/// A Graph error body as Facebook sends it.
pub fn graph_error(code: i64, message: &str, trace: &str) -> Value {
    json!({"error": {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "error_subcode": 2446079,
        "is_transient": false,
        "fbtrace_id": trace,
    }})
}

/// A business node as `?fields=id,name,verification_status,created_time` returns it.
pub fn business(id: &str) -> Value {
    json!({
        "id": id,
        "name": "Acme Widgets Ltd",
        "verification_status": "verified",
        "created_time": "2019-04-02T10:15:30+0000",
    })
}

/// `X-Business-Use-Case-Usage` for one id.
pub fn business_usage(id: &str, kind: &str, call_count: u32, regain_minutes: u32) -> String {
    json!({ id: [{
        "type": kind,
        "call_count": call_count,
        "total_cputime": 12,
        "total_time": 15,
        "estimated_time_to_regain_access": regain_minutes,
        "ads_api_access_tier": "standard_access",
    }]})
    .to_string()
}

/// A dev hub, the Graph stub, and the provider between them.
pub struct Harness {
    pub hub: DevHub,
    pub server: RunningServer,
    pub graph: MockServer,
    provider: Option<RunningProvider>,
}

impl Harness {
    pub async fn start() -> Self {
        let graph = MockServer::start().await;
        let (hub, server) = start_hub(Duration::from_millis(500)).await;
        let provider = Facebook::new(GraphConfig::new(&graph.uri(), VERSION).unwrap()).unwrap();
        let running = RunningProvider::start(provider, config(&server.url()).build().unwrap());
        Self {
            hub,
            server,
            graph,
            provider: Some(running),
        }
    }

    /// Sends a task with the test account and waits for its envelope.
    pub async fn call(&self, action: &str, payload: Value) -> Value {
        self.call_with(action, payload, Some(account())).await
    }

    pub async fn call_with(&self, action: &str, payload: Value, account: Option<Value>) -> Value {
        let id = self.hub.enqueue("facebook", action, payload, account);
        let envelope = self
            .hub
            .wait_result(&id, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("no result for {action} within 30 s"));
        assert_no_secret(&envelope.to_string());
        envelope
    }

    /// The requests the stub got.
    pub async fn requests(&self) -> Vec<Request> {
        self.graph.received_requests().await.unwrap_or_default()
    }

    pub async fn stop(mut self) {
        if let Some(provider) = self.provider.take() {
            provider.stop().await.unwrap();
        }
        self.graph.verify().await;
    }
}

/// Neither secret, nor the proof, appears in `text`.
#[track_caller]
pub fn assert_no_secret(text: &str) {
    for secret in [ACCESS_TOKEN, APP_SECRET, &expected_proof()] {
        assert!(!text.contains(secret), "a secret leaked into: {text}");
    }
}
