//! The provider's side of the wire contract: `GetTask` and `SubmitTaskResult` over one HTTP/2
//! connection, reconnected by tonic when the hub comes back.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::config::Config;
use crate::error::error_chain;
use crate::proto::hub_client::HubClient as RpcClient;
use crate::proto::{ProviderRequest, Task, TaskResult};
use crate::secret::AuthToken;
use crate::task::{CompletedTask, IncomingTask};
use crate::wire::{ACCEPT_HAND_BACK, HAND_BACK, hand_back_flag_raised, raise_hand_back_flag};

/// How long a `SubmitTaskResult` may take before it is tried again.
const SUBMIT_DEADLINE: Duration = Duration::from_secs(30);

/// What a hub's answer may hold beyond the task size limit (id, action name, framing), so that a
/// task over `PROVIDER_MAX_TASK_BYTES` still decodes and is answered `TASK_TOO_LARGE`. A message
/// over the sum cannot be decoded at all: its id is unknown, so it cannot be answered.
const DECODE_HEADROOM: usize = 64 * 1024 * 1024;

/// What went wrong talking to the hub. Never carries the token.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum HubError {
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

/// What to do with a result the hub answered with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubmitFailure {
    /// The hub or the network may take it later: keep it and retry with backoff.
    Transient,
    /// The token was refused: retry with the longer auth backoff (the token may be rotated).
    Unauthenticated,
    /// The hub found it too large: replace it with a small `RESULT_TOO_LARGE` answer.
    TooLarge,
    /// The hub will give the same answer however often it is asked: give the result up.
    Final,
}

impl HubError {
    /// The gRPC code the hub answered, when it answered one.
    pub(crate) fn code(&self) -> Option<Code> {
        match self {
            HubError::Unauthenticated { .. } => Some(Code::Unauthenticated),
            HubError::Unavailable(_) => None,
            HubError::Rejected { code, .. } => Some(*code),
        }
    }

    /// How a `SubmitTaskResult` that failed with this error is handled.
    pub(crate) fn submit_failure(&self) -> SubmitFailure {
        match self {
            HubError::Unauthenticated { .. } => SubmitFailure::Unauthenticated,
            HubError::Unavailable(_) => SubmitFailure::Transient,
            HubError::Rejected { code, .. } => match code {
                Code::ResourceExhausted | Code::OutOfRange => SubmitFailure::TooLarge,
                Code::Aborted | Code::Internal | Code::Unknown | Code::Cancelled => {
                    SubmitFailure::Transient
                }
                Code::Unavailable | Code::DeadlineExceeded => SubmitFailure::Transient,
                Code::Unauthenticated => SubmitFailure::Unauthenticated,
                _ => SubmitFailure::Final,
            },
        }
    }

    fn from_status(status: &tonic::Status, provider: &str) -> Self {
        // A transport failure (a refused TLS certificate, a reset connection) comes as a bare
        // "transport error" whose reason is in the source chain: keep it for the log line.
        let message = match std::error::Error::source(status) {
            Some(cause) => format!("{}: {}", status.message(), error_chain(cause)),
            None => status.message().to_owned(),
        };
        match status.code() {
            Code::Unauthenticated => HubError::Unauthenticated {
                provider: provider.to_owned(),
            },
            Code::Unavailable | Code::DeadlineExceeded => HubError::Unavailable(message),
            code => HubError::Rejected { code, message },
        }
    }
}

/// The backoff between attempts to reach the hub: exponential with jitter, from 100 ms to `max`,
/// forever.
pub(crate) fn reconnect_backoff(max: Duration) -> ExponentialBackoff {
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
pub(crate) struct HubClient {
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

impl HubClient {
    /// A client over `channel` for `provider`.
    pub(crate) fn new(channel: Channel, provider: Arc<str>, config: &Config) -> Self {
        Self {
            rpc: RpcClient::new(channel)
                .max_decoding_message_size(config.max_task_bytes().saturating_add(DECODE_HEADROOM)),
            provider,
            token: config.auth_token().clone(),
            poll_deadline: config.poll_deadline(),
        }
    }

    /// Connects to the hub, retrying with backoff and jitter and logging each attempt, until it
    /// answers or `stop` is cancelled (then `None`). `failed` hears each failed attempt.
    pub(crate) async fn connect(
        endpoint: &Endpoint,
        stop: &CancellationToken,
        failed: impl Fn(&str),
    ) -> Option<Channel> {
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
                    failed(&error_chain(&e));
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

    /// Asks for a task. `Ok(None)`: the hub has no work (empty id, or `NOT_FOUND`).
    pub(crate) async fn get_task(&self) -> Result<Option<IncomingTask>, HubError> {
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

    /// The encoded size of the `TaskResult` that [`submit`](Self::submit) sends for `done`: what
    /// a hub's message size limit is measured against.
    pub(crate) fn encoded_len(&self, done: &CompletedTask) -> usize {
        use prost::encoding::{encoded_len_varint, key_len};
        // Proto3 leaves an empty string out; any other is its key, its length, its bytes.
        let field = |tag: u32, value: &str| {
            if value.is_empty() {
                0
            } else {
                key_len(tag) + encoded_len_varint(value.len() as u64) + value.len()
            }
        };
        field(1, &done.id)
            + field(2, &self.provider)
            + field(3, self.token.expose())
            + field(4, done.status.as_str())
            + field(5, &done.action)
            + field(6, &done.payload)
            + field(7, &done.result)
            + field(8, &done.account)
    }

    /// Submits a result. With `accept_hand_back` the request says the provider will run a task
    /// handed back in the answer; `Ok(Some(task))` only when the hub marked its answer as one
    /// (see [`HAND_BACK`]) and the task is not the one just submitted. Any other answer is
    /// ignored, as the Python framework does.
    pub(crate) async fn submit(
        &self,
        done: &CompletedTask,
        accept_hand_back: bool,
    ) -> Result<Option<IncomingTask>, HubError> {
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
        let mut request = tonic::Request::new(request);
        if accept_hand_back {
            raise_hand_back_flag(request.metadata_mut(), ACCEPT_HAND_BACK);
        }
        let mut rpc = self.rpc.clone();
        let answer = tokio::time::timeout(SUBMIT_DEADLINE, rpc.submit_task_result(request))
            .await
            .map_err(|_| HubError::Unavailable("SubmitTaskResult did not answer in 30s".into()))?;
        let answer = answer.map_err(|status| HubError::from_status(&status, &self.provider))?;
        if !accept_hand_back || !hand_back_flag_raised(answer.metadata(), HAND_BACK) {
            return Ok(None);
        }
        let next = into_incoming(answer.into_inner());
        if next.as_ref().is_some_and(|task| task.id == done.id) {
            tracing::warn!(task_id = %crate::telemetry::Escaped(&done.id), "the hub handed back the task just submitted; not running it again");
            return Ok(None);
        }
        Ok(next)
    }
}

impl HubClient {
    /// `GetTask` answers a `Task`: one with an empty id, or `NOT_FOUND`, means no work.
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

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::envelope::Status;

    #[tokio::test]
    async fn encoded_len_is_the_length_of_the_message_sent() {
        let config = Config::builder()
            .auth_token("a-token")
            .hub_url("127.0.0.1:1")
            .build()
            .unwrap();
        let channel = crate::endpoint::endpoint(&config).unwrap().connect_lazy();
        let client = HubClient::new(channel, Arc::from("provider"), &config);
        for (payload, result) in [
            (String::new(), String::new()),
            ("{}".to_owned(), "x".repeat(200)),
            ("p".repeat(70_000), "r".repeat(3_000_000)),
        ] {
            let done = CompletedTask {
                id: "task-1".into(),
                action: "echo".into(),
                status: Status::Success,
                payload: payload.clone(),
                account: "{}".into(),
                result: result.clone(),
            };
            let sent = TaskResult {
                id: done.id.clone(),
                provider: "provider".into(),
                auth_token: "a-token".into(),
                status: "success".into(),
                action: done.action.clone(),
                payload,
                result,
                account: done.account.clone(),
            };
            assert_eq!(client.encoded_len(&done), sent.encoded_len());
        }
    }

    #[test]
    fn submit_failures_by_code() {
        let rejected = |code| HubError::Rejected {
            code,
            message: String::new(),
        };
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::Internal,
            Code::Unknown,
            Code::Cancelled,
        ] {
            assert_eq!(rejected(code).submit_failure(), SubmitFailure::Transient);
        }
        for code in [Code::ResourceExhausted, Code::OutOfRange] {
            assert_eq!(rejected(code).submit_failure(), SubmitFailure::TooLarge);
        }
        for code in [
            Code::NotFound,
            Code::InvalidArgument,
            Code::PermissionDenied,
            Code::FailedPrecondition,
            Code::AlreadyExists,
            Code::Unimplemented,
            Code::DataLoss,
        ] {
            assert_eq!(rejected(code).submit_failure(), SubmitFailure::Final);
        }
        assert_eq!(
            HubError::from_status(&tonic::Status::unauthenticated("no"), "p").submit_failure(),
            SubmitFailure::Unauthenticated
        );
        assert_eq!(
            HubError::Unavailable("down".into()).submit_failure(),
            SubmitFailure::Transient
        );
    }
}
