//! The actions called as plain methods against the real RabbitMQ: what each answers, what the
//! queue holds afterwards, and the broker's refusals as error codes.

mod common;

use std::time::Duration;

use arbv_provider::prelude::*;
use arbv_provider::retry::Transient;
use common::*;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use message_queue::*;

fn provider(url: &str) -> MessageQueue {
    MessageQueue::new(AmqpUrl::parse(url).unwrap())
}

async fn publish(mq: &MessageQueue, queue: &str, message: Value) -> Result<Value, ActionError> {
    mq.publish_message(
        PublishRequest {
            queue: QueueName(queue.to_owned()),
            message,
            persistent: true,
        },
        &Context::detached("publish_message"),
    )
    .await
}

async fn consume(
    mq: &MessageQueue,
    queue: &str,
    max: u16,
    timeout_ms: u64,
    auto_ack: bool,
) -> Result<Value, ActionError> {
    mq.consume_message(ConsumeRequest {
        queue: QueueName(queue.to_owned()),
        max,
        timeout_ms,
        auto_ack,
    })
    .await
}

async fn depth(mq: &MessageQueue, queue: &str) -> u64 {
    let info = mq
        .queue_info(QueueInfoRequest {
            queue: QueueName(queue.to_owned()),
        })
        .await
        .unwrap();
    info["messages"].as_u64().unwrap()
}

fn messages(answer: &Value) -> Vec<Value> {
    answer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["message"].clone())
        .collect()
}

#[tokio::test]
async fn a_published_message_is_confirmed_counted_and_consumed_once() {
    let Some(url) = broker_url() else { return };
    let mq = provider(&url);
    let queue = unique_queue("roundtrip");
    let answer = publish(&mq, &queue, json!({"order": 17, "lines": ["a", "b"]}))
        .await
        .unwrap();
    assert_eq!(answer, json!({"queue": queue, "confirmed": true}));
    publish(&mq, &queue, json!("plain text")).await.unwrap();
    let info = mq
        .queue_info(QueueInfoRequest {
            queue: QueueName(queue.clone()),
        })
        .await
        .unwrap();
    assert_eq!(info, json!({"queue": queue, "messages": 2, "consumers": 0}));

    let answer = consume(&mq, &queue, 10, 1000, true).await.unwrap();
    assert_eq!(answer["queue"], queue.as_str());
    assert_eq!(
        messages(&answer),
        vec![
            json!({"order": 17, "lines": ["a", "b"]}),
            json!("plain text")
        ],
        "JSON comes back as JSON, a string as the string, in order"
    );
    assert_eq!(answer["messages"][0]["redelivered"], false);
    assert_eq!(depth(&mq, &queue).await, 0, "auto_ack removed them");
    delete_queues(&url, &[&queue]).await;
}

#[tokio::test]
async fn max_bounds_what_one_call_takes() {
    let Some(url) = broker_url() else { return };
    let mq = provider(&url);
    let queue = unique_queue("max");
    for n in 0..5 {
        publish(&mq, &queue, json!(n)).await.unwrap();
    }
    let first = consume(&mq, &queue, 3, 1000, true).await.unwrap();
    assert_eq!(messages(&first), vec![json!(0), json!(1), json!(2)]);
    assert_eq!(depth(&mq, &queue).await, 2);
    let rest = consume(&mq, &queue, 100, 1000, true).await.unwrap();
    assert_eq!(messages(&rest), vec![json!(3), json!(4)]);
    delete_queues(&url, &[&queue]).await;
}

#[tokio::test]
async fn without_auto_ack_the_messages_stay_in_the_queue_and_come_back_redelivered() {
    let Some(url) = broker_url() else { return };
    let mq = provider(&url);
    let queue = unique_queue("peek");
    publish(&mq, &queue, json!("keep me")).await.unwrap();
    let peeked = consume(&mq, &queue, 5, 1000, false).await.unwrap();
    assert_eq!(messages(&peeked), vec![json!("keep me")]);
    assert_eq!(depth(&mq, &queue).await, 1, "put back");
    let taken = consume(&mq, &queue, 5, 1000, true).await.unwrap();
    assert_eq!(messages(&taken), vec![json!("keep me")]);
    assert_eq!(taken["messages"][0]["redelivered"], true);
    assert_eq!(depth(&mq, &queue).await, 0);
    delete_queues(&url, &[&queue]).await;
}

#[tokio::test]
async fn an_empty_queue_answers_no_messages_after_the_timeout() {
    let Some(url) = broker_url() else { return };
    let mq = provider(&url);
    let queue = unique_queue("empty");
    publish(&mq, &queue, json!("x")).await.unwrap();
    consume(&mq, &queue, 1, 0, true).await.unwrap();
    let answer = consume(&mq, &queue, 10, 200, true).await.unwrap();
    assert_eq!(answer, json!({"queue": queue, "messages": []}));
    assert_eq!(
        mq.queue_info(QueueInfoRequest {
            queue: QueueName(queue.clone())
        })
        .await
        .unwrap()["consumers"],
        0,
        "the waiting consumer was cancelled"
    );
    delete_queues(&url, &[&queue]).await;
}

#[tokio::test]
async fn a_message_published_while_waiting_is_answered() {
    let Some(url) = broker_url() else { return };
    let mq = std::sync::Arc::new(provider(&url));
    let queue = unique_queue("wait");
    publish(&mq, &queue, json!("first")).await.unwrap();
    consume(&mq, &queue, 1, 0, true).await.unwrap();
    let waiting = tokio::spawn({
        let mq = mq.clone();
        let queue = queue.clone();
        async move { consume(&mq, &queue, 10, 10_000, true).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish(&mq, &queue, json!("late")).await.unwrap();
    let answer = waiting.await.unwrap().unwrap();
    assert_eq!(messages(&answer), vec![json!("late")]);
    assert_eq!(depth(&mq, &queue).await, 0);
    delete_queues(&url, &[&queue]).await;
}

#[tokio::test]
async fn a_missing_queue_is_not_found_and_a_mismatched_one_a_conflict() {
    let Some(url) = broker_url() else { return };
    let mq = provider(&url);
    let missing = unique_queue("missing");
    let error = consume(&mq, &missing, 1, 100, true).await.unwrap_err();
    assert_eq!(error.code(), Some("NOT_FOUND"), "{}", error.message());
    let error = mq
        .queue_info(QueueInfoRequest {
            queue: QueueName(missing.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("NOT_FOUND"));

    // A queue declared elsewhere as not durable: publishing declares it durable.
    let transient = unique_queue("transient");
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            transient.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let error = publish(&mq, &transient, json!("x")).await.unwrap_err();
    assert_eq!(error.code(), Some("CONFLICT"), "{}", error.message());
    assert!(!error.is_transient());
    // The connection survives a channel's error: the next task is served.
    let other = unique_queue("after-conflict");
    publish(&mq, &other, json!("fine")).await.unwrap();
    connection.close(200, "OK".into()).await.unwrap();
    delete_queues(&url, &[&transient, &other]).await;
}

#[tokio::test]
async fn an_unreachable_broker_is_unavailable_at_once() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mq = provider(&format!("amqp://guest:s3cret-pw@127.0.0.1:{port}/%2f"));
    for _ in 0..3 {
        let error = publish(&mq, "any", json!("x")).await.unwrap_err();
        assert_eq!(error.code(), Some("UNAVAILABLE"));
        assert!(error.is_transient());
        assert!(
            !error.message().contains("s3cret-pw"),
            "{}",
            error.message()
        );
        assert!(error.message().contains("guest:***@127.0.0.1"));
    }
}

#[test]
fn the_url_password_is_masked_in_debug() {
    let url = AmqpUrl::parse("amqp://app:pa55w0rd@broker.internal:5673/orders").unwrap();
    assert_eq!(url.masked(), "amqp://app:***@broker.internal:5673/orders");
    assert!(!format!("{url:?}").contains("pa55w0rd"));
    let error = AmqpUrl::parse("http://app:pa55w0rd@x").unwrap_err();
    assert!(!error.contains("pa55w0rd"), "{error}");
}
