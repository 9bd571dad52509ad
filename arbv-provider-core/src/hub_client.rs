//! The provider's side of the wire contract: `GetTask` and `SubmitTaskResult` over one HTTP/2
//! connection, reconnected by tonic when the hub comes back.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::config::{Config, HubUrl};
use crate::dispatch::{CompletedTask, IncomingTask};
use crate::error::Error;
use crate::proto::hub_client::HubClient as RpcClient;
use crate::proto::{ProviderRequest, Task, TaskResult};
use crate::secret::AuthToken;

/// How long a `SubmitTaskResult` may take before it is tried again.
const SUBMIT_DEADLINE: Duration = Duration::from_secs(30);

/// What a hub's answer may hold beyond the task size limit (id, action name, framing), so that a
/// task over `PROVIDER_MAX_TASK_BYTES` still decodes and is answered `TASK_TOO_LARGE`. A message
/// over the sum cannot be decoded at all: its id is unknown, so it cannot be answered.
const DECODE_HEADROOM: usize = 64 * 1024 * 1024;

/// What went wrong talking to the hub. Never carries the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    /// The hub refused the token.
    #[error(
        "the hub refused the provider's token (UNAUTHENTICATED): check PROVIDER_AUTH_TOKEN for provider '{provider}'"
    )]
    Unauthenticated {
        /// The provider name the token was sent with.
        provider: String,
    },
    /// The hub could not be reached, or did not answer in time.
    #[error("the hub is unreachable: {0}")]
    Unavailable(String),
    /// The hub answered with another gRPC error.
    #[error("the hub answered {code:?}: {message}")]
    Rejected {
        /// The gRPC code.
        code: Code,
        /// The hub's message.
        message: String,
    },
}

impl HubError {
    fn from_status(status: &tonic::Status, provider: &str) -> Self {
        match status.code() {
            Code::Unauthenticated => HubError::Unauthenticated {
                provider: provider.to_owned(),
            },
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                HubError::Unavailable(status.message().to_owned())
            }
            code => HubError::Rejected {
                code,
                message: status.message().to_owned(),
            },
        }
    }
}

/// The backoff between attempts to reach the hub: exponential with jitter, from 100 ms to `max`,
/// forever.
pub fn reconnect_backoff(max: Duration) -> impl Iterator<Item = Duration> + Send {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// A client of one hub for one provider.
#[derive(Clone)]
pub struct HubClient {
    rpc: RpcClient<Channel>,
    provider: Arc<str>,
    token: AuthToken,
    poll_deadline: Duration,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("provider", &self.provider)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The gRPC endpoint for a hub address, with TLS for `https://`.
pub fn endpoint(url: &HubUrl) -> Result<Endpoint, Error> {
    let failed = |e: tonic::transport::Error| Error::Endpoint {
        url: url.to_string(),
        reason: e.to_string(),
    };
    let mut endpoint = Endpoint::from_shared(url.as_str().to_owned())
        .map_err(failed)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    if url.is_tls() {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_webpki_roots())
            .map_err(failed)?;
    }
    Ok(endpoint)
}

impl HubClient {
    /// A client over `channel` for `provider`.
    pub fn new(channel: Channel, provider: Arc<str>, config: &Config) -> Self {
        Self {
            rpc: RpcClient::new(channel)
                .max_decoding_message_size(config.max_task_bytes().saturating_add(DECODE_HEADROOM)),
            provider,
            token: config.auth_token().clone(),
            poll_deadline: config.poll_deadline(),
        }
    }

    /// Connects to the hub, retrying with backoff and jitter and logging each attempt, until it
    /// answers or `stop` is cancelled (then `None`).
    pub async fn connect(endpoint: &Endpoint, stop: &CancellationToken) -> Option<Channel> {
        let mut delays = reconnect_backoff(Duration::from_secs(10));
        let mut attempt = 1u32;
        loop {
            tracing::info!(hub = %endpoint.uri(), attempt, "connecting to the hub");
            let result = tokio::select! {
                result = endpoint.connect() => result,
                () = stop.cancelled() => return None,
            };
            match result {
                Ok(channel) => {
                    tracing::info!(hub = %endpoint.uri(), attempt, "connected to the hub");
                    return Some(channel);
                }
                Err(e) => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(
                        hub = %endpoint.uri(), attempt, retry_in_ms = delay.as_millis() as u64,
                        error = %error_chain(&e), "the hub is unreachable; retrying"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.cancelled() => return None,
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// The provider name this client speaks for.
    pub fn provider(&self) -> &Arc<str> {
        &self.provider
    }

    /// Asks for a task. `Ok(None)`: the hub has no work (empty id, or `NOT_FOUND`).
    pub async fn get_task(&self) -> Result<Option<IncomingTask>, HubError> {
        let mut request = tonic::Request::new(ProviderRequest {
            provider: self.provider.to_string(),
            auth_token: self.token.expose().to_owned(),
        });
        request.set_timeout(self.poll_deadline);
        let mut rpc = self.rpc.clone();
        let answer = tokio::time::timeout(
            self.poll_deadline + Duration::from_secs(1),
            rpc.get_task(request),
        )
        .await
        .map_err(|_| HubError::Unavailable("GetTask did not answer before its deadline".into()))?;
        self.read_answer(answer)
    }

    /// Submits a result. `Ok(Some(task))`: the hub answered with more work, which must be run.
    pub async fn submit(&self, done: &CompletedTask) -> Result<Option<IncomingTask>, HubError> {
        let request = TaskResult {
            id: done.id.clone(),
            provider: self.provider.to_string(),
            auth_token: self.token.expose().to_owned(),
            status: done.status.as_str().to_owned(),
            action: done.action.clone(),
            payload: done.payload.clone(),
            result: done.result.clone(),
            account: done.account.clone(),
        };
        // No `grpc-timeout` header here: a hub has nothing to hold a result for, and the header
        // costs a parse and a timer on both sides of every call (~4% of the provider's
        // instructions per task under load, measured with callgrind). Our own timer bounds it.
        let request = tonic::Request::new(request);
        let mut rpc = self.rpc.clone();
        let answer = tokio::time::timeout(SUBMIT_DEADLINE, rpc.submit_task_result(request))
            .await
            .map_err(|_| HubError::Unavailable("SubmitTaskResult did not answer in 30s".into()))?;
        self.read_answer(answer)
    }
}

impl HubClient {
    /// Both calls answer a `Task`: one with an empty id, or `NOT_FOUND`, means no work.
    fn read_answer(
        &self,
        answer: Result<tonic::Response<Task>, tonic::Status>,
    ) -> Result<Option<IncomingTask>, HubError> {
        match answer {
            Ok(task) => Ok(into_incoming(task.into_inner())),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(HubError::from_status(&status, &self.provider)),
        }
    }
}

fn into_incoming(task: Task) -> Option<IncomingTask> {
    if task.id.is_empty() {
        return None;
    }
    Some(IncomingTask {
        id: task.id,
        action: task.action,
        payload: task.payload,
        account: task.account,
    })
}

/// An error with its causes, for a log line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
