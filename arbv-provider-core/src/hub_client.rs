//! The provider's side of the wire contract: `GetTask` and `SubmitTaskResult` over one HTTP/2
//! connection ([`HubConnection`]), made again when the hub comes back.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::client::Grpc;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::metadata::AsciiMetadataValue;

use crate::config::Config;
use crate::error::error_chain;
use crate::hub_connection::{HubConnection, HubTarget};
use crate::proto::Task;
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

/// The RPCs' paths, as the hub's service (`service Hub` in `proto/hub.proto`) names them.
const GET_TASK: &str = "/Hub/GetTask";
const SUBMIT_TASK_RESULT: &str = "/Hub/SubmitTaskResult";

/// A client of one hub for one provider.
///
/// Requests are encoded here, once, and sent as bytes: the `ProviderRequest` of `GetTask` never
/// changes, so it is encoded when the client is made; a `TaskResult` is encoded once per answer
/// and the same bytes serve every retry. The generated client would copy each string into a
/// new message per call, then encode it.
///
/// Each lane works with a clone of its own: calls then take no clone of the connection each,
/// and the clone's timers are set again for each call rather than made anew.
#[derive(Clone)]
pub(crate) struct HubClient {
    rpc: Grpc<HubConnection>,
    provider: Arc<str>,
    token: AuthToken,
    /// The encoded `ProviderRequest`: the provider's name and token.
    get_task_request: Bytes,
    /// The `grpc-timeout` header of `GetTask`, written once.
    poll_timeout: AsciiMetadataValue,
    poll_deadline: Duration,
    poll_timer: CallTimer,
    submit_timer: CallTimer,
}

/// Bounds a call: made at the first call, moved for each next one (moving a registered timer
/// later is a store, where a new one locks the timer wheel twice). A clone starts without one:
/// a timer serves one lane.
#[derive(Default)]
struct CallTimer(Option<Pin<Box<Sleep>>>);

impl Clone for CallTimer {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl CallTimer {
    /// The timer, set to fire at `deadline`.
    fn until(&mut self, deadline: tokio::time::Instant) -> Pin<&mut Sleep> {
        let timer = self
            .0
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        timer.as_mut().reset(deadline);
        timer.as_mut()
    }
}

/// A `TaskResult`, encoded (see [`HubClient::encode`]).
#[derive(Clone, Debug)]
pub(crate) struct EncodedResult(Bytes);

impl EncodedResult {
    /// Its size on the wire: what a hub's message size limit is measured against.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// The codec of both RPCs: the request goes out as the bytes it was encoded to, the answer (a
/// `Task`) is decoded by prost.
///
/// Its buffers are sized for the call instead of tonic's default 8 KiB for each direction of
/// every call: the request's is its exact size, and the answer's starts at
/// [`ANSWER_BUFFER_BYTES`] and grows to a larger task's size when its length arrives. Buffers
/// this small come from the allocator's per-thread cache; 8 KiB ones do not, and cost several
/// times as much to take and give back, four times for every task.
#[derive(Clone, Copy)]
struct PreEncoded {
    request_bytes: usize,
}

/// What the buffer an answer is read into starts at: an empty `Task`, or a small one, fits.
const ANSWER_BUFFER_BYTES: usize = 1024;
/// The gRPC message header before a request's bytes: compression flag and length.
const MESSAGE_HEADER_BYTES: usize = 5;

impl PreEncoded {
    /// The codec for a call sending `request`.
    fn of(request: &Bytes) -> Self {
        Self {
            request_bytes: request.len(),
        }
    }

    fn buffer(bytes: usize) -> BufferSettings {
        BufferSettings::new(bytes, YIELD_THRESHOLD_BYTES)
    }
}

/// tonic's default: it only matters to streams, which these calls are not.
const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = Task;
    type Encoder = PreEncoded;
    type Decoder = tonic_prost::ProstDecoder<Task>;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::new(Self::buffer(ANSWER_BUFFER_BYTES))
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        Self::buffer(MESSAGE_HEADER_BYTES + self.request_bytes)
    }
}

/// Appends a protobuf string field: nothing for an empty string (proto3), else its key, its
/// length and its bytes.
fn put_string(buf: &mut BytesMut, tag: u32, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(value.len() as u64, buf);
    buf.put_slice(value);
}

/// The encoded size of a protobuf string field.
fn string_len(tag: u32, value: &[u8]) -> usize {
    if value.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(value.len() as u64) + value.len()
    }
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
    /// A client over `connection` for `provider`.
    pub(crate) fn new(connection: HubConnection, provider: Arc<str>, config: &Config) -> Self {
        let token = config.auth_token().clone();
        // `ProviderRequest`: provider = 1, auth_token = 2.
        let mut request = BytesMut::new();
        put_string(&mut request, 1, provider.as_bytes());
        put_string(&mut request, 2, token.expose().as_bytes());
        let mut timeout = tonic::Request::new(());
        timeout.set_timeout(config.poll_deadline());
        let poll_timeout = timeout
            .metadata()
            .get("grpc-timeout")
            .cloned()
            .expect("set_timeout writes a grpc-timeout header");
        Self {
            rpc: Grpc::new(connection)
                .max_decoding_message_size(config.max_task_bytes().saturating_add(DECODE_HEADROOM)),
            provider,
            token,
            get_task_request: request.freeze(),
            poll_timeout,
            poll_deadline: config.poll_deadline(),
            poll_timer: CallTimer::default(),
            submit_timer: CallTimer::default(),
        }
    }

    /// Connects to the hub, retrying with backoff and jitter and logging each attempt, until it
    /// answers or `stop` is cancelled (then `None`). `failed` hears each failed attempt.
    pub(crate) async fn connect(
        target: &HubTarget,
        stop: &CancellationToken,
        failed: impl Fn(&str),
    ) -> Option<HubConnection> {
        let mut delays = reconnect_backoff(Duration::from_secs(10));
        let mut attempt = 1u32;
        loop {
            tracing::info!(hub = %target, attempt, "connecting to the hub");
            let result = tokio::select! {
                result = HubConnection::open(target.clone()) => result,
                () = stop.cancelled() => return None,
            };
            match result {
                Ok(connection) => {
                    tracing::info!(hub = %target, attempt, "connected to the hub");
                    return Some(connection);
                }
                Err(e) => {
                    failed(&error_chain(&e));
                    let delay = delays.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(
                        hub = %target, attempt, retry_in_ms = delay.as_millis() as u64,
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
    pub(crate) async fn get_task(&mut self) -> Result<Option<IncomingTask>, HubError> {
        let mut request = tonic::Request::new(self.get_task_request.clone());
        // The `grpc-timeout` header tells a hub that holds the call how long it may; the
        // lane's own timer ends the call there if the hub does not.
        request
            .metadata_mut()
            .insert("grpc-timeout", self.poll_timeout.clone());
        let timer = self
            .poll_timer
            .until(tokio::time::Instant::now() + self.poll_deadline);
        let answer = tokio::select! {
            biased;
            answer = call(&mut self.rpc, GET_TASK, request) => answer,
            () = timer => {
                return Err(HubError::Unavailable(format!(
                    "GetTask did not answer within its deadline of {:?}",
                    self.poll_deadline
                )));
            }
        };
        self.read_answer(answer)
    }

    /// `done` as the `TaskResult` that [`submit`](Self::submit) sends: encoded once, whatever
    /// the number of tries.
    pub(crate) fn encode(&self, done: &CompletedTask) -> EncodedResult {
        // `TaskResult`: id = 1, provider = 2, auth_token = 3, status = 4, action = 5,
        // payload = 6, result = 7, account = 8.
        let fields: [&[u8]; 8] = [
            done.id.as_bytes(),
            self.provider.as_bytes(),
            self.token.expose().as_bytes(),
            done.status.as_str().as_bytes(),
            done.action.as_bytes(),
            done.payload.as_bytes(),
            done.result.as_bytes(),
            done.account.as_bytes(),
        ];
        let len = (1..)
            .zip(fields)
            .map(|(tag, value)| string_len(tag, value))
            .sum();
        let mut buf = BytesMut::with_capacity(len);
        for (tag, value) in (1..).zip(fields) {
            put_string(&mut buf, tag, value);
        }
        EncodedResult(buf.freeze())
    }

    /// Submits a result. With `accept_hand_back` the request says the provider will run a task
    /// handed back in the answer; `Ok(Some(task))` only when the hub marked its answer as one
    /// (see [`HAND_BACK`]) and the task is not the one just submitted. Any other answer is
    /// ignored, as the Python framework does.
    pub(crate) async fn submit(
        &mut self,
        done: &CompletedTask,
        encoded: &EncodedResult,
        accept_hand_back: bool,
    ) -> Result<Option<IncomingTask>, HubError> {
        // No `grpc-timeout` header here: a hub has nothing to hold a result for, and the header
        // costs a parse and a timer on both sides of every call (~4% of the provider's
        // instructions per task under load, measured with callgrind). Our own timer bounds it.
        let mut request = tonic::Request::new(encoded.0.clone());
        if accept_hand_back {
            raise_hand_back_flag(request.metadata_mut(), ACCEPT_HAND_BACK);
        }
        let timer = self
            .submit_timer
            .until(tokio::time::Instant::now() + SUBMIT_DEADLINE);
        let answer = tokio::select! {
            biased;
            answer = call(&mut self.rpc, SUBMIT_TASK_RESULT, request) => answer,
            () = timer => {
                return Err(HubError::Unavailable("SubmitTaskResult did not answer in 30s".into()));
            }
        };
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

/// One unary call of `path` with a pre-encoded request.
async fn call(
    rpc: &mut Grpc<HubConnection>,
    path: &'static str,
    request: tonic::Request<Bytes>,
) -> Result<tonic::Response<Task>, tonic::Status> {
    // The connection's only failure to be ready: it broke and no new one could be made, an
    // `UNAVAILABLE` status that says why.
    rpc.ready().await.map_err(tonic::Status::from_error)?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    let codec = PreEncoded::of(request.get_ref());
    rpc.unary(request, path, codec).await
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
    use crate::proto::TaskResult;

    /// A client for provider `provider` with token `a-token`, connected to a listener that
    /// never answers.
    async fn client_of_provider() -> (HubClient, Config) {
        let port = crate::hub_connection::silent_listener().await;
        let config = Config::builder()
            .auth_token("a-token")
            .hub_url(format!("127.0.0.1:{port}"))
            .build()
            .unwrap();
        let target = crate::endpoint::endpoint(&config).unwrap();
        let connection = HubConnection::open(target).await.unwrap();
        (
            HubClient::new(connection, Arc::from("provider"), &config),
            config,
        )
    }

    #[tokio::test]
    async fn a_result_is_encoded_as_the_task_result_message() {
        let (client, _) = client_of_provider().await;
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
            let expected = TaskResult {
                id: done.id.clone(),
                provider: "provider".into(),
                auth_token: "a-token".into(),
                status: "success".into(),
                action: done.action.clone(),
                payload,
                result,
                account: done.account.clone(),
            };
            let encoded = client.encode(&done);
            assert_eq!(encoded.len(), expected.encoded_len());
            assert_eq!(TaskResult::decode(encoded.0.clone()).unwrap(), expected);
        }
    }

    #[tokio::test]
    async fn the_get_task_request_is_the_provider_request_message() {
        let (client, config) = client_of_provider().await;
        let expected = crate::proto::ProviderRequest {
            provider: "provider".into(),
            auth_token: "a-token".into(),
        };
        assert_eq!(
            crate::proto::ProviderRequest::decode(client.get_task_request.clone()).unwrap(),
            expected
        );
        let mut with_timeout = tonic::Request::new(());
        with_timeout.set_timeout(config.poll_deadline());
        assert_eq!(
            Some(&client.poll_timeout),
            with_timeout.metadata().get("grpc-timeout")
        );
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
