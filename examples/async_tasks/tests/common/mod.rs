//! A local HTTP server for the fetch tests: answers after a delay, with a chosen status, or
//! failing a set number of times before answering; it counts the requests per path.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;

/// The body every successful route answers: 1,000 bytes.
pub const BODY_LEN: u64 = 1000;

fn body() -> String {
    "x".repeat(BODY_LEN as usize)
}

#[derive(Clone, Default)]
struct Hits(Arc<Mutex<HashMap<String, u32>>>);

impl Hits {
    fn count(&self, key: &str) -> u32 {
        let mut hits = self.0.lock().unwrap();
        let n = hits.entry(key.to_owned()).or_default();
        *n += 1;
        *n
    }
}

pub struct TestServer {
    pub address: SocketAddr,
    hits: Hits,
    authorizations: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Routes: `/delay/{ms}` answers 200 after `ms`; `/status/{code}` answers `code` at once;
    /// `/flaky/{failures}/{key}` answers 503 `failures` times for `key`, then 200;
    /// `/limited/{key}` answers 429 with `Retry-After: 1` once, then 200.
    pub async fn start() -> Self {
        let hits = Hits::default();
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route(
                "/delay/{ms}",
                get({
                    let authorizations = authorizations.clone();
                    move |Path(ms): Path<u64>, headers: HeaderMap| async move {
                        if let Some(value) = headers.get("authorization") {
                            authorizations
                                .lock()
                                .unwrap()
                                .push(value.to_str().unwrap().to_owned());
                        }
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        body()
                    }
                }),
            )
            .route(
                "/status/{code}",
                get(
                    |State(hits): State<Hits>, Path(code): Path<u16>| async move {
                        hits.count(&format!("status/{code}"));
                        (StatusCode::from_u16(code).unwrap(), "status")
                    },
                ),
            )
            .route(
                "/flaky/{failures}/{key}",
                get(
                    |State(hits): State<Hits>, Path((failures, key)): Path<(u32, String)>| async move {
                        if hits.count(&key) <= failures {
                            (StatusCode::SERVICE_UNAVAILABLE, "try again".to_owned())
                        } else {
                            (StatusCode::OK, body())
                        }
                    },
                ),
            )
            .route(
                "/limited/{key}",
                get(
                    |State(hits): State<Hits>, Path(key): Path<String>| async move {
                        if hits.count(&key) == 1 {
                            (
                                StatusCode::TOO_MANY_REQUESTS,
                                [("retry-after", "1")],
                                "slow down".to_owned(),
                            )
                        } else {
                            (StatusCode::OK, [("retry-after", "0")], body())
                        }
                    },
                ),
            )
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            address,
            hits,
            authorizations,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Requests received for `key` (`status/{code}`, or a flaky or limited route's key).
    pub fn hits(&self, key: &str) -> u32 {
        self.hits.0.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    /// The `Authorization` headers `/delay` received.
    pub fn authorizations(&self) -> Vec<String> {
        self.authorizations.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback URL where nothing listens.
pub fn refused_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/")
}
