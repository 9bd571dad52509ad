//! The `otel` feature: every span (each task's among them) exported over OTLP/gRPC, in batches
//! sent by a task on the tokio runtime.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing_subscriber::Layer as _;

use super::BoxedLayer;
use crate::config::ConfigError;

/// How long the exit waits for the collector to take the last spans. With the drain and the
/// result grace, a stop still fits in Kubernetes' default 30 s grace period.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(3);

/// The exporter's pipeline, kept to be shut down at exit.
pub(super) struct SpanExport {
    provider: SdkTracerProvider,
}

impl SpanExport {
    /// Starts the batch exporter to `endpoint` (read from `variable`) and returns the layer
    /// that feeds it. Needs a tokio runtime: the batches are sent by a task on it.
    pub(super) fn start(
        variable: &'static str,
        endpoint: &str,
        service_name: &str,
    ) -> Result<(Self, BoxedLayer), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            variable,
            value: endpoint.to_owned(),
            reason,
        };
        let tls = if endpoint.starts_with("https://") {
            true
        } else if endpoint.starts_with("http://") {
            false
        } else {
            return Err(invalid(
                "give http://host:port, or https://host:port for a collector behind TLS".into(),
            ));
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(invalid(
                "spans are exported by a task on the tokio runtime: install logging from within it"
                    .into(),
            ));
        }
        let builder = SpanExporter::builder().with_tonic().with_endpoint(endpoint);
        #[cfg(feature = "tls")]
        let builder = if tls {
            use opentelemetry_otlp::WithTonicConfig as _;
            builder.with_tls_config(tonic::transport::ClientTlsConfig::new().with_enabled_roots())
        } else {
            builder
        };
        #[cfg(not(feature = "tls"))]
        if tls {
            return Err(ConfigError::FeatureOff {
                feature: "tls",
                needed_by: format!("{variable}={endpoint}"),
            });
        }
        let exporter = builder.build().map_err(|e| invalid(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter, Tokio).build())
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_owned())
                    .build(),
            )
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("arbv-provider"))
            .boxed();
        Ok((Self { provider }, layer))
    }

    /// Sends the spans still buffered and stops the exporter, waiting at most
    /// [`SHUTDOWN_BOUND`].
    pub(super) async fn shutdown(self) {
        let provider = self.provider;
        let (done, finished) = tokio::sync::oneshot::channel();
        // `shutdown` blocks until the batch task, on this runtime, has sent the last batch. It
        // runs on a thread of its own: off the runtime's threads, so that a current-thread
        // runtime can run that task meanwhile; off the blocking pool, which the runtime waits
        // for when it is dropped, so a collector that hangs cannot hold the exit.
        let spawned = std::thread::Builder::new()
            .name("arbv-otel-shutdown".into())
            .spawn(move || {
                let _ = done.send(provider.shutdown());
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "the last spans are not exported: no thread to send them");
            return;
        }
        match tokio::time::timeout(SHUTDOWN_BOUND, finished).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => {
                tracing::warn!(%error, "the last spans could not be exported");
            }
            Ok(Err(_)) => tracing::warn!("the span exporter stopped without answering"),
            Err(_) => tracing::warn!(
                bound_s = SHUTDOWN_BOUND.as_secs_f64(),
                "the collector did not take the last spans in time; exiting without them"
            ),
        }
    }
}
