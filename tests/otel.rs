//! The `otel` feature end to end: the test provider's process, started with
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, runs tasks from a dev hub and exports its spans over OTLP/gRPC
//! to a collector written here (the OTLP trace service on loopback). The spans reach it when the
//! provider exits: the exporter sends what it has buffered as `serve()` returns.

#[path = "support/provider_process.rs"]
mod provider_process;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbv_provider::dev_hub::DevHub;
use arbv_tests::{loopback, start_hub};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use provider_process::{PROVIDER, ProviderProcess};
use serde_json::json;
use tonic::transport::server::TcpIncoming;

/// An OTLP collector that keeps every export request it receives.
#[derive(Clone, Default)]
struct Collector {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A span as the collector received it.
#[derive(Debug)]
struct ReceivedSpan {
    service_name: Option<String>,
    name: String,
    attributes: BTreeMap<String, String>,
    events: Vec<String>,
}

impl Collector {
    /// Serves on loopback until the returned sender is dropped or used.
    async fn start(&self) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async move {
                    let _ = stopped.await;
                })
                .await
                .expect("the collector serves");
        });
        (addr, stop)
    }

    fn spans(&self) -> Vec<ReceivedSpan> {
        let mut spans = Vec::new();
        for request in self.requests.lock().unwrap().iter() {
            for resource_spans in &request.resource_spans {
                let service_name = resource_spans
                    .resource
                    .as_ref()
                    .and_then(|r| strings(&r.attributes).remove("service.name"));
                for scope_spans in &resource_spans.scope_spans {
                    for span in &scope_spans.spans {
                        spans.push(ReceivedSpan {
                            service_name: service_name.clone(),
                            name: span.name.clone(),
                            attributes: strings(&span.attributes),
                            events: span.events.iter().map(|e| e.name.clone()).collect(),
                        });
                    }
                }
            }
        }
        spans
    }
}

/// The attributes whose values are strings.
fn strings(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some((kv.key.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

/// Enqueues each action once, waits for every answer and returns (id, action) pairs.
async fn run(hub: &DevHub, actions: &[&str]) -> BTreeSet<(String, String)> {
    let mut tasks = BTreeSet::new();
    for action in actions {
        let payload = if *action == "echo" {
            json!({ "message": "hi" })
        } else {
            json!({})
        };
        let id = hub.enqueue(PROVIDER, action, payload, None);
        let envelope = hub
            .wait_result(&id, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("no answer to {action} within 30 s"));
        assert_eq!(envelope["status"], "success", "{action}: {envelope}");
        tasks.insert((id, (*action).to_owned()));
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_spans_of_a_provider_run_reach_an_otlp_collector() {
    let collector = Collector::default();
    let (addr, stop_collector) = collector.start().await;
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let endpoint = format!("http://{addr}");
    let provider = ProviderProcess::start(
        &server,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("LOG_FORMAT", "json"),
        ],
    );
    let enqueued = run(&hub, &["echo", "echo", "log_async", "log_blocking"]).await;
    let output = provider.stop().await;
    server.stop().await;
    let _ = stop_collector.send(());

    let spans = collector.spans();
    let tasks: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.name == "task").collect();
    let received: BTreeSet<(String, String)> = tasks
        .iter()
        .map(|s| {
            (
                s.attributes["task_id"].clone(),
                s.attributes["action"].clone(),
            )
        })
        .collect();
    assert_eq!(
        received,
        enqueued,
        "one task span per task, with its id and action; received {spans:#?}\nprovider output:\n{}",
        output.join("\n")
    );
    assert_eq!(
        tasks.len(),
        enqueued.len(),
        "no task exported twice: {tasks:#?}"
    );
    for span in &tasks {
        assert_eq!(span.attributes["provider"], PROVIDER, "{span:?}");
        assert_eq!(
            span.service_name.as_deref(),
            Some(PROVIDER),
            "service.name is the provider's name by default: {span:?}"
        );
    }
    // A line an action logs is an event of its task's span.
    for (action, line) in [
        ("log_async", "inside the async action"),
        ("log_blocking", "inside the blocking action"),
    ] {
        let span = tasks
            .iter()
            .find(|s| s.attributes["action"] == action)
            .unwrap();
        assert!(span.events.iter().any(|e| e == line), "{span:?}");
    }
    assert!(
        !output.iter().any(|l| l.contains("\"level\":\"WARN\"")),
        "no export trouble reported:\n{}",
        output.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_service_name_names_the_service_instead_of_the_provider() {
    let collector = Collector::default();
    let (addr, stop_collector) = collector.start().await;
    let (hub, server) = start_hub(Duration::from_millis(200)).await;
    let endpoint = format!("http://{addr}");
    let provider = ProviderProcess::start(
        &server,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "billing-spans"),
        ],
    );
    let enqueued = run(&hub, &["echo"]).await;
    provider.stop().await;
    server.stop().await;
    let _ = stop_collector.send(());

    let spans = collector.spans();
    let task = spans
        .iter()
        .find(|s| s.name == "task")
        .unwrap_or_else(|| panic!("a task span: {spans:#?}"));
    let (id, _) = enqueued.first().unwrap();
    assert_eq!(&task.attributes["task_id"], id);
    assert_eq!(task.service_name.as_deref(), Some("billing-spans"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_not_a_url_stops_the_provider_at_start() {
    let (_hub, server) = start_hub(Duration::from_millis(200)).await;
    let provider = ProviderProcess::start(
        &server,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
    );
    let (status, output) = provider.exit(Duration::from_secs(30)).await;
    let output = output.join("\n");
    assert!(
        status.code().is_some_and(|code| code != 0),
        "{status:?}\n{output}"
    );
    assert!(
        output.contains("OTEL_EXPORTER_OTLP_ENDPOINT=\"collector:4317\" is not valid"),
        "{output}"
    );
    server.stop().await;
}
