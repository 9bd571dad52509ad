//! Running a provider: connect, work, and on a signal drain and exit.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tracing::Instrument;

use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::endpoint::endpoint;
use crate::error::Error;
use crate::hub_client::HubClient;
use crate::metrics::Metrics;
use crate::metrics::readiness::Readiness;
use crate::metrics::server::MetricsServer;
use crate::provider::Provider;
use crate::shutdown::{FINAL_STOP_BOUND, FORCED_RESULT_GRACE, RESULT_GRACE, Shutdown};
use crate::task::{CompletedTask, IncomingTask};
use crate::worker::Worker;

/// A provider ready to run: its action table compiled, its configuration checked.
pub struct Runtime {
    dispatcher: Arc<Dispatcher>,
    config: Config,
    shutdown: Shutdown,
    readiness: Arc<Readiness>,
    metrics_server: Option<MetricsServer>,
}

impl Runtime {
    /// Compiles `provider`'s actions against `config`.
    pub fn new<P: Provider>(provider: P, config: Config) -> Result<Self, Error> {
        let dispatcher = Dispatcher::new(provider, &config)?;
        let shutdown = Shutdown::default();
        let readiness = Arc::new(Readiness::new(
            shutdown.stop.token().clone(),
            dispatcher.metrics().clone(),
        ));
        dispatcher
            .metrics()
            .watch_readiness(Arc::downgrade(&readiness));
        Ok(Self {
            dispatcher: Arc::new(dispatcher),
            config,
            shutdown,
            readiness,
            metrics_server: None,
        })
    }

    /// The provider's metrics, live while it runs: read them with
    /// [`snapshot`](Metrics::snapshot), render them, or register metrics of your own.
    pub fn metrics(&self) -> Metrics {
        self.dispatcher.metrics().clone()
    }

    /// The provider's cached answers, to drop some from outside its actions (an admin
    /// endpoint, a webhook of the upstream). Detached when no action caches.
    pub fn cache(&self) -> crate::cache::CacheHandle {
        self.dispatcher.cache().clone()
    }

    /// Starts serving `/metrics`, `/livez` and `/readyz` on the configured
    /// [`metrics_addr`](Config::metrics_addr) now, and returns the address it listens on (with
    /// the port the system chose for port 0). [`run_until`](Self::run_until) starts it by
    /// itself; call this first to learn the address, or to fail early when it is taken.
    /// `None` when no address is configured.
    pub async fn serve_metrics(&mut self) -> Result<Option<SocketAddr>, Error> {
        if self.metrics_server.is_none() {
            let Some(addr) = self.config.metrics_addr() else {
                return Ok(None);
            };
            let server = MetricsServer::start(addr, self.metrics(), self.readiness.clone()).await?;
            self.metrics_server = Some(server);
        }
        Ok(self.metrics_server.as_ref().map(MetricsServer::addr))
    }

    /// Runs one task in process, with no hub, and returns the answer the worker would submit.
    ///
    /// The task takes the path of one from `GetTask`: its action is found by name, its payload
    /// and account are parsed and checked against the action's schemas, its rate limit admits it
    /// (spending budget as in production), the action runs under its timeout with its panic
    /// caught, and every outcome becomes the envelope the README's table prescribes. For unit
    /// tests of what a provider answers (not only what a method returns), benchmarks and fuzzing.
    ///
    /// ```
    /// use arbv_provider_core::{Config, Envelope, IncomingTask, Json, Provider, ProviderDef};
    /// use arbv_provider_core::{Runtime, Status};
    /// use serde_json::{Value, json};
    ///
    /// struct Demo;
    ///
    /// impl Provider for Demo {
    ///     fn definition() -> ProviderDef<Self> {
    ///         let mut def = ProviderDef::new("demo");
    ///         def.action("echo", |_this, mut call| async move {
    ///             Ok(Json(call.payload::<Value>()?))
    ///         });
    ///         def
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let config = Config::builder().auth_token("unused").build().unwrap();
    /// let runtime = Runtime::new(Demo, config).unwrap();
    /// let task = IncomingTask {
    ///     action: "echo".into(),
    ///     payload: r#"{"message": "hi"}"#.into(),
    ///     ..IncomingTask::default()
    /// };
    /// let done = runtime.run_task(task).await;
    /// assert_eq!(done.status, Status::Success);
    /// let envelope: Envelope = serde_json::from_str(&done.result).unwrap();
    /// assert_eq!(envelope.data.response, json!({"message": "hi"}));
    /// # }
    /// ```
    pub fn run_task(&self, task: IncomingTask) -> impl Future<Output = CompletedTask> + Send + '_ {
        let span = self.dispatcher.task_span(&task);
        async move {
            let answered = self
                .dispatcher
                .dispatch(task, self.shutdown.interrupt.token())
                .await;
            self.dispatcher.record(&answered);
            answered.done
        }
        .instrument(span)
    }

    /// Runs until `signal` resolves, then stops taking tasks, lets those in flight finish
    /// (within the drain timeout), submits their answers and returns.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> Result<(), Error> {
        self.run_until_signals(futures_util::stream::once(signal))
            .await
    }

    /// Runs until the first item of `signals`, then drains as [`run_until`](Self::run_until)
    /// does. A second item cuts the drain short: actions still running are answered with
    /// `SHUTDOWN`, their answers get [`FORCED_RESULT_GRACE`] to go out, and the result is
    /// [`Error::ForcedShutdown`]. A stream that ends sends no more signals.
    ///
    /// After the first signal this returns within the drain timeout + [`RESULT_GRACE`] +
    /// [`FINAL_STOP_BOUND`], whatever the hub does.
    pub async fn run_until_signals(
        mut self,
        signals: impl Stream<Item = ()> + Send,
    ) -> Result<(), Error> {
        self.serve_metrics().await?;
        let Runtime {
            dispatcher,
            config,
            shutdown,
            readiness,
            metrics_server: _serving_until_return,
        } = self;
        let provider = dispatcher.provider_name().clone();
        let actions: Vec<String> = dispatcher.specs().map(|s| s.name.to_string()).collect();
        tracing::info!(
            provider = %provider, hub = %config.hub_url(), concurrency = config.concurrency(),
            timezone = %config.timezone().name(), actions = ?actions, "provider starting"
        );
        let endpoint = endpoint(&config)?;
        let stop = shutdown.stop.token().clone();
        let worker = async {
            let unreachable = |error: &str| {
                readiness.hub_failed(false, &error);
            };
            let Some(connection) = HubClient::connect(&endpoint, &stop, unreachable).await else {
                return Ok(());
            };
            readiness.connected();
            let hub = HubClient::new(connection, provider.clone(), &config);
            Worker::new(
                hub,
                dispatcher,
                shutdown.clone(),
                config.idle_poll_cap(),
                config.max_result_bytes(),
                readiness,
            )
            .run(config.concurrency())
            .await
        };
        let mut worker = pin!(worker);
        let mut signals = pin!(signals.chain(futures_util::stream::pending()));
        tokio::select! {
            ended = &mut worker => {
                ended?;
                return Err(Error::WorkerFailed("the worker stopped before any shutdown signal".into()));
            }
            _ = signals.next() => {}
        }
        tracing::info!(provider = %provider, drain_timeout_s = config.drain_timeout().as_secs_f64(), "shutting down: no new tasks; finishing those in flight");
        shutdown.stop.begin();
        let forced = match until(worker.as_mut(), config.drain_timeout(), &mut signals).await {
            StageEnd::Finished(ended) => {
                tracing::info!(provider = %provider, "provider stopped");
                return ended;
            }
            StageEnd::TimedOut => {
                tracing::warn!(provider = %provider, "drain timeout reached: interrupting the actions still running");
                shutdown.interrupt.begin();
                match until(worker.as_mut(), RESULT_GRACE, &mut signals).await {
                    StageEnd::Finished(ended) => {
                        tracing::info!(provider = %provider, "provider stopped");
                        return ended;
                    }
                    StageEnd::TimedOut => false,
                    StageEnd::Signalled => true,
                }
            }
            StageEnd::Signalled => true,
        };
        if forced {
            tracing::warn!(provider = %provider, "second shutdown signal: interrupting the actions still running");
            shutdown.interrupt.begin();
            if tokio::time::timeout(FORCED_RESULT_GRACE, worker.as_mut())
                .await
                .is_ok()
            {
                return Err(Error::ForcedShutdown);
            }
        }
        shutdown.give_up.begin();
        if tokio::time::timeout(FINAL_STOP_BOUND, worker.as_mut())
            .await
            .is_err()
        {
            tracing::error!(provider = %provider, "the worker did not let go in time; dropping it");
        }
        if forced {
            return Err(Error::ForcedShutdown);
        }
        tracing::info!(provider = %provider, "provider stopped");
        Ok(())
    }
}

/// How a stage of the shutdown ended.
enum StageEnd {
    /// The worker returned.
    Finished(Result<(), Error>),
    /// The stage's time ran out.
    TimedOut,
    /// Another shutdown signal came.
    Signalled,
}

/// Waits for the worker for at most `limit`, or until the next signal.
async fn until(
    worker: impl Future<Output = Result<(), Error>>,
    limit: Duration,
    signals: &mut (impl Stream<Item = ()> + Unpin),
) -> StageEnd {
    tokio::select! {
        ended = worker => StageEnd::Finished(ended),
        () = tokio::time::sleep(limit) => StageEnd::TimedOut,
        _ = signals.next() => StageEnd::Signalled,
    }
}

/// Serves `provider` with `config` until `signal` resolves.
pub async fn serve_until<P: Provider>(
    provider: P,
    config: Config,
    signal: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    Runtime::new(provider, config)?.run_until(signal).await
}

/// Serves `provider` with `config` until SIGINT or SIGTERM; a second one during the drain
/// cuts it short and ends in [`Error::ForcedShutdown`].
pub async fn serve_with<P: Provider>(provider: P, config: Config) -> Result<(), Error> {
    let runtime = Runtime::new(provider, config)?;
    // Installing the handlers first makes a bad environment fail at start, not at the signal.
    let signals = crate::shutdown::signals().map_err(Error::Signal)?;
    runtime.run_until_signals(signals).await
}

/// `.serve()` and friends on every provider.
pub trait Serve: Provider {
    /// Installs logging ([`init_logging`](crate::telemetry::init_logging)), reads
    /// [`Config::from_env`], and serves until SIGINT or SIGTERM; then flushes the log file and
    /// exports the last spans.
    ///
    /// Started with `--manifest`, the process prints the provider's manifest (JSON) and exits
    /// instead: no hub and no token are needed.
    fn serve(self) -> impl Future<Output = Result<(), Error>> + Send {
        async move {
            if std::env::args().skip(1).any(|arg| arg == "--manifest") {
                let manifest =
                    serde_json::to_string_pretty(&Self::manifest()).expect("a manifest is JSON");
                println!("{manifest}");
                return Ok(());
            }
            let telemetry = crate::telemetry::init_logging(&served_name::<Self>())?;
            let served = async { serve_with(self, Config::from_env()?).await }.await;
            telemetry.shutdown().await;
            served
        }
    }

    /// Serves with an explicit configuration until SIGINT or SIGTERM.
    fn serve_with(self, config: Config) -> impl Future<Output = Result<(), Error>> + Send {
        serve_with(self, config)
    }

    /// Serves with an explicit configuration until `signal` resolves (for embedding and tests).
    fn serve_until(
        self,
        config: Config,
        signal: impl Future<Output = ()> + Send,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        serve_until(self, config, signal)
    }
}

impl<P: Provider> Serve for P {}

/// The name `P` serves under: `PROVIDER_NAME`, or the name in its code.
fn served_name<P: Provider>() -> String {
    std::env::var(crate::config::env::PROVIDER_NAME)
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| P::definition().name().to_owned())
}
