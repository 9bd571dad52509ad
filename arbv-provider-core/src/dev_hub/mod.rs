//! A real hub for local development and tests: it implements the wire contract (`proto/hub.proto`),
//! checks tokens, routes tasks by provider name, holds `GetTask` open until work arrives, and
//! re-delivers a task whose result never came. In process, or standalone with `arbv hub`.

mod admin;
mod grpc;
mod metrics;
mod state;
mod unsent;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::state::State;
pub use self::state::{HubStats, TaskInfo, TaskState};
use crate::error::Error;
use crate::secret::AuthToken;

/// How long `GetTask` is held open while there is no work, by default.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(10);
/// How long a task given to a provider may go without a result before it is offered again.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);
/// How many answered tasks a hub remembers by default; older answers are forgotten.
pub const DEFAULT_KEEP: usize = 10_000;

/// The dev hub's state. Clones share it, so a hub can be stopped and served again (a restart)
/// without losing its tasks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use arbv_provider_core::dev_hub::DevHub;
/// use serde_json::json;
/// let hub = DevHub::builder().token("dev-token").build();
/// let running = hub.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
/// let id = hub.enqueue("my-provider", "echo", json!({"message": "hi"}), None);
/// assert_eq!(hub.task(&id).unwrap().action, "echo");
/// running.stop().await;
/// # }
/// ```
#[derive(Clone)]
pub struct DevHub {
    state: Arc<State>,
    admin_token: Option<AuthToken>,
}

impl std::fmt::Debug for DevHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevHub")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Builds a [`DevHub`].
#[derive(Debug)]
pub struct DevHubBuilder {
    token: AuthToken,
    admin_token: Option<AuthToken>,
    hold: Duration,
    hand_back: bool,
    lease: Duration,
    keep: usize,
}

impl DevHubBuilder {
    /// The token providers must send (default `dev-token`).
    pub fn token(mut self, token: impl Into<AuthToken>) -> Self {
        self.token = token.into();
        self
    }

    /// The token every admin API request must carry as `Authorization: Bearer <token>`; without
    /// it (the default) the admin API is open to anyone who reaches it. An empty token is no
    /// token.
    pub fn admin_token(mut self, token: impl Into<AuthToken>) -> Self {
        self.admin_token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }

    /// How many answered tasks to remember (default [`DEFAULT_KEEP`], at least 1). Beyond
    /// that the oldest answers are forgotten: their results can no longer be read. Tasks
    /// waiting or given out are never forgotten.
    pub fn keep(mut self, keep: usize) -> Self {
        self.keep = keep;
        self
    }

    /// How long `GetTask` waits for work before answering "no task"; zero answers at once.
    pub fn hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// Whether `SubmitTaskResult` answers a client that asks for it with the next waiting task
    /// (default true). With false the hub behaves as one that never hands work back: every
    /// task costs a `GetTask` and a `SubmitTaskResult`, as against a hub that is not ours.
    pub fn hand_back(mut self, hand_back: bool) -> Self {
        self.hand_back = hand_back;
        self
    }

    /// How long a task given out may go without a result before it is offered again.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The hub, not yet listening.
    pub fn build(self) -> DevHub {
        DevHub {
            state: Arc::new(State::new(
                self.token,
                self.hold,
                self.hand_back,
                self.lease,
                self.keep,
            )),
            admin_token: self.admin_token,
        }
    }
}

impl DevHub {
    /// Starts a builder: token `dev-token`, no admin token, hold 10 s, work handed back, lease
    /// 5 min, keep 10,000 answered tasks.
    pub fn builder() -> DevHubBuilder {
        DevHubBuilder {
            token: AuthToken::new("dev-token"),
            admin_token: None,
            hold: DEFAULT_HOLD,
            hand_back: true,
            lease: DEFAULT_LEASE,
            keep: DEFAULT_KEEP,
        }
    }

    /// Serves the gRPC `Hub` service on `addr` (`127.0.0.1:0` picks a free port).
    pub async fn serve(&self, addr: SocketAddr) -> Result<RunningServer, Error> {
        let listener = bind(addr, "gRPC").await?;
        Ok(grpc::spawn(
            self.state.clone(),
            listener,
            tonic::transport::Server::builder(),
        ))
    }

    /// Serves the gRPC `Hub` service over TLS on `addr`: `tls` holds the hub's certificate and,
    /// for mTLS, the CA its clients' certificates must chain to. Providers reach it at
    /// `https://` and a name its certificate holds (or set `HUB_TLS_SERVER_NAME`). Needs the
    /// `tls` feature too.
    #[cfg(feature = "tls")]
    pub async fn serve_tls(
        &self,
        addr: SocketAddr,
        tls: tonic::transport::ServerTlsConfig,
    ) -> Result<RunningServer, Error> {
        let server = tonic::transport::Server::builder()
            .tls_config(tls)
            .map_err(|e| Error::Listen {
                addr: addr.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "the TLS settings cannot be used: {}",
                        crate::error::error_chain(&e)
                    ),
                ),
            })?;
        let listener = bind(addr, "gRPC").await?;
        Ok(grpc::spawn(self.state.clone(), listener, server))
    }

    /// Serves the HTTP JSON admin API on `addr`: `POST /tasks`, `GET /tasks/{id}?wait=SECONDS`,
    /// `GET /tasks`, `GET /stats`, and [`GET /metrics`](Self::metrics) in the Prometheus text
    /// format. With an [admin token](DevHubBuilder::admin_token), a request without it is
    /// answered 401.
    pub async fn serve_admin(&self, addr: SocketAddr) -> Result<RunningServer, Error> {
        let listener = bind(addr, "admin HTTP").await?;
        Ok(admin::spawn(self.clone(), listener))
    }

    /// Queues a task for `provider` and returns its id.
    pub fn enqueue(
        &self,
        provider: &str,
        action: &str,
        payload: Value,
        account: Option<Value>,
    ) -> String {
        let payload = Bytes::from(payload.to_string());
        let account = account.map_or_else(Bytes::new, |a| Bytes::from(a.to_string()));
        self.enqueue_raw(provider, action, payload, account)
    }

    /// Queues a task with payload and account bytes as given (even when they are not JSON).
    pub fn enqueue_raw(
        &self,
        provider: &str,
        action: &str,
        payload: Bytes,
        account: Bytes,
    ) -> String {
        self.state.enqueue(provider, action, payload, account)
    }

    /// Waits up to `timeout` for the task's result envelope.
    pub async fn wait_result(&self, id: &str, timeout: Duration) -> Option<Value> {
        self.state.wait_result(id, timeout).await
    }

    /// Waits up to `timeout` for the task's result; true once it has one. Cheaper than
    /// [`wait_result`](Self::wait_result), which parses the envelope: for load generators.
    pub async fn wait_done(&self, id: &str, timeout: Duration) -> bool {
        matches!(self.state.wait_done(id, timeout).await, Some(Some(_)))
    }

    /// One task and its state; `None` for an unknown id or a forgotten answer.
    pub fn task(&self, id: &str) -> Option<TaskInfo> {
        self.state.task(id)
    }

    /// Every task still kept (all but answers forgotten beyond `keep`), oldest first.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.state.tasks()
    }

    /// Counters: tasks by state, calls, duplicate results. Kept as running counts, so reading
    /// them costs the same however many tasks there are.
    pub fn stats(&self) -> HubStats {
        self.state.stats()
    }

    /// The hub's metrics in the Prometheus text format, as `GET /metrics` serves them: queue
    /// depth by provider, tasks by state, enqueue-to-result latency, and the counters of
    /// [`stats`](Self::stats). Each hub has a registry of its own.
    pub fn metrics(&self) -> String {
        self.state.metrics_text()
    }
}

async fn bind(addr: SocketAddr, listener: &str) -> Result<TcpListener, Error> {
    let bound = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen {
            addr: addr.to_string(),
            source,
        })?;
    if !addr.ip().is_loopback() {
        let addr = bound.local_addr().unwrap_or(addr);
        tracing::warn!(
            %addr,
            "the dev hub's {listener} listener is reachable from other machines: it has no TLS, \
             so tokens travel in clear; it is a development hub, not for production"
        );
    }
    Ok(bound)
}

/// A server of the dev hub that is listening.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, for a provider's `hub_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops listening and closes its connections; the hub's tasks are kept.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Resolves when the server ends.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
