//! The dev hub's HTTP JSON admin API, for `arbv send` and for people with curl, and its
//! Prometheus metrics.

use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{DevHub, RunningServer};

/// The longest `?wait=` a request may ask for.
const MAX_WAIT: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct NewTask {
    provider: String,
    action: String,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    account: Option<Value>,
}

#[derive(Deserialize)]
struct WaitQuery {
    wait: Option<f64>,
}

pub(super) fn spawn(hub: DevHub, listener: TcpListener) -> RunningServer {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let stop = CancellationToken::new();
    let app = Router::new()
        .route("/tasks", post(enqueue).get(list))
        .route("/tasks/{id}", get(show))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(
            hub.clone(),
            require_admin_token,
        ))
        .with_state(hub);
    let signal = stop.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::error!(error = %e, "dev hub admin server failed");
        }
    });
    tracing::info!(%addr, "dev hub serving the admin API");
    RunningServer { addr, stop, task }
}

/// With an admin token set, lets through only requests that carry it as a bearer token.
async fn require_admin_token(State(hub): State<DevHub>, request: Request, next: Next) -> Response {
    if let Some(expected) = &hub.admin_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        if !given.is_some_and(|given| expected.matches(given)) {
            let mut refusal = error(
                StatusCode::UNAUTHORIZED,
                "this dev hub's admin API needs its admin token: send `Authorization: Bearer <token>` \
                 (arbv send/tasks: --admin-token or ARBV_ADMIN_TOKEN)",
            );
            refusal.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return refusal;
        }
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

async fn enqueue(State(hub): State<DevHub>, Json(task): Json<NewTask>) -> Response {
    if task.provider.trim().is_empty() || task.action.trim().is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`provider` and `action` must not be empty",
        );
    }
    let payload = task.payload.unwrap_or_else(|| json!({}));
    let account = task.account.filter(|a| !a.is_null());
    let id = hub.enqueue(&task.provider, &task.action, payload, account);
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn show(
    State(hub): State<DevHub>,
    Path(id): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Response {
    if let Some(wait) = query.wait {
        let Ok(wait) = Duration::try_from_secs_f64(wait) else {
            return error(
                StatusCode::BAD_REQUEST,
                "`wait` is a number of seconds, 0 or more",
            );
        };
        hub.wait_result(&id, wait.min(MAX_WAIT)).await;
    }
    match hub.task(&id) {
        Some(info) => Json(info).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            &format!(
                "no task with id '{id}': it was never queued here, or it was answered and then \
                 forgotten (this hub keeps the last {} answers)",
                hub.state.keep()
            ),
        ),
    }
}

async fn list(State(hub): State<DevHub>) -> Response {
    Json(hub.tasks()).into_response()
}

async fn stats(State(hub): State<DevHub>) -> Response {
    Json(hub.stats()).into_response()
}

async fn metrics(State(hub): State<DevHub>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::TEXT_FORMAT)],
        hub.metrics(),
    )
        .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
