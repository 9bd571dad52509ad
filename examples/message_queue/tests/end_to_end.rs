//! The provider through the dev hub over gRPC against the real RabbitMQ: thousands of messages
//! published and consumed with none lost or doubled; the broker cut off and back (through a
//! proxy of the test's own) without restarting the provider; no password in any log line or
//! envelope.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use arbv_provider::dev_hub::{DevHub, RunningServer};
use arbv_tests::{RunningProvider, TOKEN, config, eventually, loopback};
use common::*;
use message_queue::{AmqpUrl, MessageQueue};
use serde_json::{Value, json};

const PROVIDER: &str = "message-queue";

/// Every log line of this binary, at every level, the provider's and lapin's.
fn logs() -> &'static arbv_tests::logs::LogBuffer {
    arbv_tests::logs::global(tracing::Level::TRACE)
}

struct Harness {
    hub: DevHub,
    _server: RunningServer,
    provider: Option<RunningProvider>,
}

impl Harness {
    async fn start(amqp_url: &str) -> Self {
        // Thousands of answers are read after they all came: the hub keeps them all.
        let hub = DevHub::builder()
            .token(TOKEN)
            .hold(Duration::from_millis(200))
            .keep(20_000)
            .build();
        let server = hub.serve(loopback()).await.unwrap();
        let provider = MessageQueue::new(AmqpUrl::parse(amqp_url).unwrap());
        let running = RunningProvider::start(
            provider,
            config(&server.url()).concurrency(16).build().unwrap(),
        );
        Self {
            hub,
            _server: server,
            provider: Some(running),
        }
    }

    /// Enqueues every task at once, then waits for each envelope, in order.
    async fn call_all(&self, action: &str, payloads: Vec<Value>) -> Vec<Value> {
        let ids: Vec<String> = payloads
            .into_iter()
            .map(|payload| self.hub.enqueue(PROVIDER, action, payload, None))
            .collect();
        let mut envelopes = Vec::with_capacity(ids.len());
        for id in ids {
            envelopes.push(
                self.hub
                    .wait_result(&id, Duration::from_secs(120))
                    .await
                    .unwrap_or_else(|| panic!("no result for {action} {id} within 120 s")),
            );
        }
        envelopes
    }

    async fn call(&self, action: &str, payload: Value) -> Value {
        self.call_all(action, vec![payload]).await.remove(0)
    }

    async fn stop(mut self) {
        if let Some(provider) = self.provider.take() {
            provider.stop().await.unwrap();
        }
    }
}

fn response(envelope: &Value) -> &Value {
    &envelope["data"]["response"]
}

/// Consumes through the hub, eight tasks of up to 100 messages at a time, until a round
/// brings nothing; every message as its `n`.
async fn drain(h: &Harness, queue: &str) -> Vec<u64> {
    let mut received = Vec::new();
    loop {
        let round = h
            .call_all(
                "consume_message",
                vec![json!({"queue": queue, "max": 100, "timeout_ms": 300}); 8],
            )
            .await;
        let before = received.len();
        for envelope in &round {
            assert_eq!(envelope["status"], "success", "{envelope}");
            for entry in response(envelope)["messages"].as_array().unwrap() {
                received.push(entry["message"]["n"].as_u64().unwrap());
            }
        }
        if received.len() == before {
            return received;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_messages_go_through_the_hub_and_none_is_lost_or_doubled() {
    let Some(url) = broker_url() else { return };
    let h = Harness::start(&url).await;
    let queue = unique_queue("thousands");
    const COUNT: u64 = 3000;
    let published = h
        .call_all(
            "publish_message",
            (0..COUNT)
                .map(|n| json!({"queue": queue, "message": {"n": n, "body": format!("message {n}")}}))
                .collect(),
        )
        .await;
    for envelope in &published {
        assert_eq!(envelope["status"], "success", "{envelope}");
        assert_eq!(
            response(envelope),
            &json!({"queue": queue, "confirmed": true})
        );
    }
    let info = h.call("queue_info", json!({"queue": queue})).await;
    assert_eq!(
        response(&info),
        &json!({"queue": queue, "messages": COUNT, "consumers": 0})
    );

    let received = drain(&h, &queue).await;
    assert_eq!(received.len() as u64, COUNT, "each message once");
    let distinct: BTreeSet<u64> = received.iter().copied().collect();
    assert_eq!(distinct, (0..COUNT).collect::<BTreeSet<u64>>());
    let info = h.call("queue_info", json!({"queue": queue})).await;
    assert_eq!(response(&info)["messages"], 0);
    h.stop().await;
    delete_queues(&url, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_broker_is_cut_off_tasks_are_unavailable_and_it_comes_back_without_a_restart() {
    let Some(url) = broker_url() else { return };
    let proxy = BrokerProxy::start(broker_address(&url)).await;
    let h = Harness::start(&through(&url, proxy.address)).await;
    let queue = unique_queue("cut");
    let publish = |n: u64| json!({"queue": queue, "message": {"n": n}});
    let mut confirmed = BTreeSet::new();

    for n in 0..50 {
        let envelope = h.call("publish_message", publish(n)).await;
        assert_eq!(envelope["status"], "success", "{envelope}");
        confirmed.insert(n);
    }

    proxy.cut();
    for (n, envelope) in h
        .call_all("publish_message", (100..140).map(publish).collect())
        .await
        .into_iter()
        .enumerate()
    {
        // A task already past the cut's moment may still succeed; none may hang or crash.
        if envelope["status"] == "success" {
            confirmed.insert(100 + n as u64);
        } else {
            assert_eq!(envelope["status"], "error", "{envelope}");
            assert_eq!(
                response(&envelope)["error_code"],
                "UNAVAILABLE",
                "{envelope}"
            );
        }
    }
    for action in ["publish_message", "queue_info", "consume_message"] {
        let payload = if action == "publish_message" {
            publish(999)
        } else {
            json!({"queue": queue})
        };
        let envelope = h.call(action, payload).await;
        assert_eq!(envelope["status"], "error", "{action}: {envelope}");
        assert_eq!(
            response(&envelope)["error_code"],
            "UNAVAILABLE",
            "{action}: {envelope}"
        );
    }

    proxy.restore();
    let mut next = 200;
    let back = eventually(Duration::from_secs(20), || {
        next += 1;
        let payload = publish(next);
        let h = &h;
        async move { h.call("publish_message", payload).await["status"] == "success" }
    })
    .await;
    assert!(back, "the provider reconnects once the broker is back");
    confirmed.insert(next);
    for n in 300..350 {
        let envelope = h.call("publish_message", publish(n)).await;
        assert_eq!(envelope["status"], "success", "{envelope}");
        confirmed.insert(n);
    }

    // Every confirmed message is in the queue, whatever happened in between.
    let received: BTreeSet<u64> = drain(&h, &queue).await.into_iter().collect();
    assert!(
        confirmed.is_subset(&received),
        "confirmed but missing: {:?}",
        confirmed.difference(&received).collect::<Vec<_>>()
    );
    h.stop().await;
    delete_queues(&url, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_password_is_in_no_envelope_and_no_log_line() {
    logs();
    let Some(url) = broker_url() else { return };
    const PASSWORD: &str = "wr0ng-pa55-7c1d93";
    let address = broker_address(&url);
    let h = Harness::start(&format!("amqp://guest:{PASSWORD}@{address}/%2f")).await;
    let queue = unique_queue("refused");
    let envelope = h
        .call("publish_message", json!({"queue": queue, "message": "x"}))
        .await;
    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(response(&envelope)["error_code"], "UNAVAILABLE");
    assert!(
        envelope["message"].as_str().unwrap().contains("guest:***@"),
        "{envelope}"
    );
    assert!(!envelope.to_string().contains(PASSWORD), "{envelope}");
    h.stop().await;
    let text = logs().text();
    assert!(
        text.contains("cannot connect to the broker"),
        "the provider's logs are captured"
    );
    assert!(!text.contains(PASSWORD), "the password is in the logs");
}
