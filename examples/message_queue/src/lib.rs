//! The RabbitMQ example provider, `message-queue`:
//!
//! - `publish_message {queue, message, persistent = true}`: declares `queue` durable, publishes
//!   `message` on the default exchange and answers once the broker has confirmed it;
//! - `consume_message {queue, max 1..100 = 1, timeout_ms = 1000, auto_ack = true}`: up to `max`
//!   messages, waiting at most `timeout_ms` for the first when the queue is empty;
//! - `queue_info {queue}`: the queue's ready messages and consumers.
//!
//! One connection is shared by every task, with a channel of its own per task. The connection
//! is made at the first task and made again, lazily, by the first task after it was lost; while
//! the broker cannot be reached, tasks answer `error` `UNAVAILABLE` at once. Configured by
//! `AMQP_URL`, whose password never reaches a log line, an answer or a `Debug` output.

use std::sync::Arc;
use std::time::Duration;

use arbv_provider::prelude::*;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The broker when `AMQP_URL` is not set.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// How long connecting to the broker may take before the task is answered `UNAVAILABLE`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed connection, tasks are answered `UNAVAILABLE` without trying again for this
/// long, so that a dead broker costs each task nothing rather than a connection attempt each.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(500);
/// How long the broker may take to answer one step of a task (a channel, a publish and its
/// confirm, a lookup, the acknowledgements) before the task is answered `UNAVAILABLE` and the
/// connection is made anew: a network that drops packets leaves a connection that looks open.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest message body published, encoded.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// An AMQP URL whose password stays out of every output: its `Debug` and [`AmqpUrl::masked`]
/// replace the password with `***`.
#[derive(Clone)]
pub struct AmqpUrl {
    url: String,
    masked: String,
}

impl AmqpUrl {
    /// Parses `url` as lapin does; the error never quotes the URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let parsed: AMQPUri = url
            .parse()
            .map_err(|e| format!("AMQP_URL is not an AMQP URL: {e}"))?;
        let authority = &parsed.authority;
        let masked = format!(
            "{}://{}:***@{}:{}/{}",
            match parsed.scheme {
                lapin::uri::AMQPScheme::AMQP => "amqp",
                lapin::uri::AMQPScheme::AMQPS => "amqps",
            },
            authority.userinfo.username,
            authority.host,
            authority.port,
            parsed.vhost.replace('/', "%2f"),
        );
        Ok(Self {
            url: url.to_owned(),
            masked,
        })
    }

    /// `AMQP_URL`, or [`DEFAULT_AMQP_URL`].
    pub fn from_env() -> Result<Self, String> {
        Self::parse(&std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned()))
    }

    /// The URL with its password replaced by `***`.
    pub fn masked(&self) -> &str {
        &self.masked
    }
}

impl std::fmt::Debug for AmqpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AmqpUrl").field(&self.masked).finish()
    }
}

/// A queue's name: RabbitMQ's limit of 255 bytes, and no empty name (which would ask the
/// broker to name a new queue).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueueName(#[schemars(length(min = 1, max = 255))] pub String);

/// `publish_message`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PublishRequest {
    /// The queue, declared durable when missing.
    pub queue: QueueName,
    /// A string is published as it is (`text/plain`); anything else as JSON
    /// (`application/json`).
    pub message: Value,
    /// Delivery mode 2: the broker writes the message to disk.
    #[serde(default = "yes")]
    pub persistent: bool,
}

fn yes() -> bool {
    true
}

fn one() -> u16 {
    1
}

fn one_second() -> u64 {
    1000
}

/// `consume_message`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConsumeRequest {
    /// The queue; it must exist.
    pub queue: QueueName,
    /// At most this many messages.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub max: u16,
    /// How long to wait for a first message when the queue is empty.
    #[serde(default = "one_second")]
    #[schemars(range(min = 0, max = 60000))]
    pub timeout_ms: u64,
    /// `true`: the messages answered are removed from the queue. `false`: they are read and
    /// put back (they come again, marked `redelivered`).
    #[serde(default = "yes")]
    pub auto_ack: bool,
}

/// `queue_info`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueueInfoRequest {
    /// The queue; it must exist.
    pub queue: QueueName,
}

/// The broker connection every task shares.
struct Link {
    connection: Option<Arc<Connection>>,
    last_failure: Option<Instant>,
}

/// The RabbitMQ provider.
pub struct MessageQueue {
    url: AmqpUrl,
    link: Mutex<Link>,
}

impl MessageQueue {
    /// A provider for the broker at `url`; it connects at its first task.
    pub fn new(url: AmqpUrl) -> Self {
        Self {
            url,
            link: Mutex::new(Link {
                connection: None,
                last_failure: None,
            }),
        }
    }

    /// The shared connection, made (again) when there is none or it was lost.
    async fn connection(&self) -> Result<Arc<Connection>, ActionError> {
        let mut link = self.link.lock().await;
        if let Some(connection) = &link.connection {
            if connection.status().connected() {
                return Ok(connection.clone());
            }
            tracing::warn!(broker = %self.url.masked(), "the broker connection was lost");
            link.connection = None;
        }
        if let Some(failed) = link.last_failure
            && failed.elapsed() < RECONNECT_PAUSE
        {
            return Err(unavailable(format!(
                "the broker at {} cannot be reached",
                self.url.masked()
            )));
        }
        let properties =
            ConnectionProperties::default().with_connection_name("message-queue".into());
        let connecting = Connection::connect(&self.url.url, properties);
        let failure = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(connection)) => {
                tracing::info!(broker = %self.url.masked(), "connected to the broker");
                let connection = Arc::new(connection);
                link.connection = Some(connection.clone());
                link.last_failure = None;
                return Ok(connection);
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {CONNECT_TIMEOUT:?}"),
        };
        link.last_failure = Some(Instant::now());
        tracing::warn!(broker = %self.url.masked(), error = %failure, "cannot connect to the broker");
        Err(unavailable(format!(
            "cannot connect to the broker at {}: {failure}",
            self.url.masked()
        )))
    }

    /// A channel of the task's own; dropping it closes it.
    async fn channel(&self) -> Result<Channel, ActionError> {
        let connection = self.connection().await?;
        self.bounded("opening a channel", async {
            connection
                .create_channel()
                .await
                .map_err(|e| broker_error(e, "opening a channel"))
        })
        .await
    }

    /// `work` on the broker within [`BROKER_TIMEOUT`]: a broker that stops answering is
    /// answered `UNAVAILABLE` rather than holding the task to its timeout, and the shared
    /// connection is dropped so that the next task makes a new one.
    async fn bounded<T>(
        &self,
        doing: &str,
        work: impl Future<Output = Result<T, ActionError>>,
    ) -> Result<T, ActionError> {
        match tokio::time::timeout(BROKER_TIMEOUT, work).await {
            Ok(done) => done,
            Err(_) => {
                self.link.lock().await.connection = None;
                tracing::warn!(broker = %self.url.masked(), doing, "the broker did not answer in time: the connection will be made anew");
                Err(unavailable(format!(
                    "the broker did not answer within {}s while {doing}",
                    BROKER_TIMEOUT.as_secs()
                )))
            }
        }
    }
}

/// The broker cannot be reached or dropped the connection: worth trying again later.
fn unavailable(message: impl Into<String>) -> ActionError {
    ActionError::new(message)
        .with_code("UNAVAILABLE")
        .transient()
}

/// A lapin error as an answer: the broker's refusals by their reply code, a lost connection
/// as `UNAVAILABLE`.
fn broker_error(error: lapin::Error, doing: &str) -> ActionError {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => {
            let message = format!("{doing}: {}", amqp.get_message());
            match amqp.get_id() {
                404 => ActionError::new(message).with_code("NOT_FOUND"),
                403 => ActionError::new(message).with_code("ACCESS_REFUSED"),
                // A queue that exists with other arguments (durable, exclusive, ...).
                406 => ActionError::new(message).with_code("CONFLICT"),
                405 => ActionError::new(message).with_code("RESOURCE_LOCKED"),
                // Connection-level: forced close, node going down, resource alarms.
                320 | 506 | 541 => unavailable(message),
                code => ActionError::new(message)
                    .with_code("BROKER_ERROR")
                    .with_details(json!({ "reply_code": code })),
            }
        }
        _ => unavailable(format!("{doing}: {error}")),
    }
}

/// The body and content type a message is published with.
fn encode(message: &Value) -> Result<(Vec<u8>, &'static str), ActionError> {
    let (body, content_type) = match message {
        Value::String(text) => (text.as_bytes().to_vec(), "text/plain"),
        other => (
            serde_json::to_vec(other).unwrap_or_default(),
            "application/json",
        ),
    };
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(ActionError::new(format!(
            "the message is {} bytes; at most {MAX_MESSAGE_BYTES} are published",
            body.len()
        ))
        .with_code("INVALID_PARAMETER"));
    }
    Ok((body, content_type))
}

/// A delivered message as answered: JSON when it says it is JSON, text when it is UTF-8, and
/// otherwise its bytes.
fn decode(delivery: &lapin::message::Delivery) -> Value {
    let json_typed = delivery
        .properties
        .content_type()
        .as_ref()
        .is_some_and(|t| t.as_str() == "application/json");
    let message = if json_typed {
        serde_json::from_slice(&delivery.data).ok()
    } else {
        None
    };
    let message = message.unwrap_or_else(|| match std::str::from_utf8(&delivery.data) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => json!({ "bytes": delivery.data }),
    });
    json!({ "message": message, "redelivered": delivery.redelivered })
}

#[provider(name = "message-queue")]
impl MessageQueue {
    /// Declares the queue durable, publishes the message on the default exchange and waits
    /// for the broker's confirm: `{queue, confirmed: true}` means the broker has it.
    #[action(timeout = "30s")]
    pub async fn publish_message(
        &self,
        payload: PublishRequest,
        ctx: &Context,
    ) -> Result<Value, ActionError> {
        let queue = payload.queue.0;
        let (body, content_type) = encode(&payload.message)?;
        let channel = self.channel().await?;
        let confirmation = self
            .bounded("publishing", async {
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| broker_error(e, "enabling publisher confirms"))?;
                channel
                    .queue_declare(
                        queue.as_str().into(),
                        QueueDeclareOptions {
                            durable: true,
                            ..QueueDeclareOptions::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| broker_error(e, "declaring the queue"))?;
                // The task id as message id: a consumer can drop the copy a retried task publishes.
                let properties = BasicProperties::default()
                    .with_content_type(content_type.into())
                    .with_delivery_mode(if payload.persistent { 2 } else { 1 })
                    .with_message_id(ctx.task_id().into());
                channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        &body,
                        properties,
                    )
                    .await
                    .map_err(|e| broker_error(e, "publishing"))?
                    .await
                    .map_err(|e| broker_error(e, "waiting for the publisher confirm"))
            })
            .await?;
        match confirmation {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(_)) => {
                return Err(ActionError::new("the broker could not route the message")
                    .with_code("UNROUTABLE"));
            }
            Confirmation::Nack(_) | Confirmation::NotRequested => {
                return Err(ActionError::new("the broker did not accept the message")
                    .with_code("NOT_CONFIRMED")
                    .transient());
            }
        }
        let _ = channel.close(200, "OK".into()).await;
        Ok(json!({ "queue": queue, "confirmed": true }))
    }

    /// Up to `max` messages: those the queue holds now, or, when it is empty, the first to
    /// arrive within `timeout_ms`. `{queue, messages: [{message, redelivered}]}`.
    #[action(timeout = "90s")]
    pub async fn consume_message(&self, payload: ConsumeRequest) -> Result<Value, ActionError> {
        let queue = payload.queue.0;
        let max = usize::from(payload.max);
        let deadline = Instant::now() + Duration::from_millis(payload.timeout_ms);
        let channel = self.channel().await?;
        let mut deliveries = self
            .bounded("taking messages", take_ready(&channel, &queue, max))
            .await?;
        if deliveries.is_empty()
            && let Some(first) = wait_for_one(&channel, &queue, deadline).await?
        {
            deliveries.push(first);
            let more = self
                .bounded("taking messages", take_ready(&channel, &queue, max - 1))
                .await?;
            deliveries.extend(more);
        }
        self.bounded("acknowledging", async {
            // Each tag on its own: a `multiple` ack could take a message this task never answered.
            for delivery in &deliveries {
                let settled = if payload.auto_ack {
                    channel
                        .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
                        .await
                } else {
                    channel
                        .basic_nack(
                            delivery.delivery_tag,
                            BasicNackOptions {
                                multiple: false,
                                requeue: true,
                            },
                        )
                        .await
                };
                settled.map_err(|e| broker_error(e, "acknowledging"))?;
            }
            // The broker handles the channel's frames in order: once it has closed the channel, it
            // has handled the acks. Were the connection lost first, the messages go back to the
            // queue and the task answers UNAVAILABLE: nothing is answered and lost.
            channel
                .close(200, "OK".into())
                .await
                .map_err(|e| broker_error(e, "closing the channel"))
        })
        .await?;
        let messages: Vec<Value> = deliveries.iter().map(decode).collect();
        Ok(json!({ "queue": queue, "messages": messages }))
    }

    /// The queue's ready messages and consumers: `{queue, messages, consumers}`.
    #[action(timeout = "30s")]
    pub async fn queue_info(&self, payload: QueueInfoRequest) -> Result<Value, ActionError> {
        let queue = payload.queue.0;
        let channel = self.channel().await?;
        let declared = self
            .bounded("looking the queue up", async {
                channel
                    .queue_declare(
                        queue.as_str().into(),
                        QueueDeclareOptions::default().passive(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| broker_error(e, "looking the queue up"))
            })
            .await?;
        let _ = channel.close(200, "OK".into()).await;
        Ok(json!({
            "queue": queue,
            "messages": declared.message_count(),
            "consumers": declared.consumer_count(),
        }))
    }
}

/// Up to `max` of the messages the queue holds now, unacknowledged.
async fn take_ready(
    channel: &Channel,
    queue: &str,
    max: usize,
) -> Result<Vec<lapin::message::Delivery>, ActionError> {
    let mut deliveries = Vec::new();
    while deliveries.len() < max {
        let got = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await
            .map_err(|e| broker_error(e, "reading the queue"))?;
        let Some(got) = got else { break };
        deliveries.push(got.delivery);
        if got.message_count == 0 {
            break;
        }
    }
    Ok(deliveries)
}

/// The first message to arrive before `deadline`, through a consumer the broker gives one
/// message at most (prefetch 1), cancelled before returning.
async fn wait_for_one(
    channel: &Channel,
    queue: &str,
    deadline: Instant,
) -> Result<Option<lapin::message::Delivery>, ActionError> {
    if Instant::now() >= deadline {
        return Ok(None);
    }
    channel
        .basic_qos(1, BasicQosOptions::default())
        .await
        .map_err(|e| broker_error(e, "setting the prefetch"))?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| broker_error(e, "consuming"))?;
    let first = tokio::time::timeout_at(deadline, consumer.next()).await;
    channel
        .basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await
        .map_err(|e| broker_error(e, "cancelling the consumer"))?;
    match first {
        Ok(Some(Ok(delivery))) => Ok(Some(delivery)),
        Ok(Some(Err(error))) => Err(broker_error(error, "consuming")),
        Ok(None) => Err(unavailable("the broker ended the consumer")),
        Err(_) => Ok(None),
    }
}
