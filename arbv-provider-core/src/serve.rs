//! Running a provider: connect, work, and on a signal drain and exit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::endpoint::endpoint;
use crate::error::Error;
use crate::hub_client::HubClient;
use crate::provider::Provider;
use crate::worker::{Shutdown, Worker, WorkerStats};

/// How long results may still wait for the hub after the drain timeout cut the actions.
const SUBMIT_GRACE: Duration = Duration::from_secs(10);

/// A provider ready to run: its action table compiled, its configuration checked.
pub struct Runtime {
    dispatcher: Arc<Dispatcher>,
    config: Config,
    stats: Arc<WorkerStats>,
}

impl Runtime {
    /// Compiles `provider`'s actions against `config`.
    pub fn new<P: Provider>(provider: P, config: Config) -> Result<Self, Error> {
        let dispatcher = Dispatcher::new(provider, &config)?;
        Ok(Self {
            dispatcher: Arc::new(dispatcher),
            config,
            stats: Arc::default(),
        })
    }

    /// The worker's counters (polls, tasks, results), live while it runs.
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    /// The compiled action table.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// Runs until `signal` resolves, then stops taking tasks, lets those in flight finish
    /// (within the drain timeout), submits their answers and returns.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let Runtime {
            dispatcher,
            config,
            stats,
        } = self;
        let shutdown = Shutdown::default();
        let provider = dispatcher.provider_name().clone();
        let actions: Vec<String> = dispatcher.specs().map(|s| s.name.to_string()).collect();
        tracing::info!(
            provider = %provider, hub = %config.hub_url(), concurrency = config.concurrency(),
            timezone = %config.timezone().name(), actions = ?actions, "provider starting"
        );
        let endpoint = endpoint(&config)?;
        let stop = shutdown.stop.clone();
        let worker = async {
            let Some(channel) = HubClient::connect(&endpoint, &stop).await else {
                return;
            };
            let hub = HubClient::new(channel, provider.clone(), &config);
            Worker::new(
                hub,
                dispatcher,
                shutdown.clone(),
                config.idle_poll_cap(),
                stats,
            )
            .run(config.concurrency())
            .await;
        };
        tokio::pin!(worker);
        tokio::select! {
            () = &mut worker => return Ok(()),
            () = signal => {}
        }
        tracing::info!(provider = %provider, drain_timeout_s = config.drain_timeout().as_secs_f64(), "shutting down: no new tasks; finishing those in flight");
        shutdown.stop.cancel();
        if tokio::time::timeout(config.drain_timeout(), &mut worker)
            .await
            .is_err()
        {
            tracing::warn!(provider = %provider, "drain timeout reached: interrupting the actions still running");
            shutdown.interrupt.cancel();
            if tokio::time::timeout(SUBMIT_GRACE, &mut worker)
                .await
                .is_err()
            {
                shutdown.give_up.cancel();
                worker.await;
            }
        }
        tracing::info!(provider = %provider, "provider stopped");
        Ok(())
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

/// Serves `provider` with `config` until SIGINT or SIGTERM.
pub async fn serve_with<P: Provider>(provider: P, config: Config) -> Result<(), Error> {
    let runtime = Runtime::new(provider, config)?;
    // Installing the handlers first makes a bad environment fail at start, not at the signal.
    let (tx, rx) = tokio::sync::oneshot::channel::<std::io::Error>();
    let signal = async move {
        if let Err(e) = crate::shutdown::signal().await {
            let _ = tx.send(e);
        }
    };
    let result = runtime.run_until(signal).await;
    if let Ok(e) = rx.await {
        return Err(Error::Signal(e));
    }
    result
}

/// `.serve()` and friends on every provider.
pub trait Serve: Provider {
    /// Reads [`Config::from_env`], installs logging, and serves until SIGINT or SIGTERM.
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
            crate::telemetry::init_logging();
            let config = Config::from_env()?;
            serve_with(self, config).await
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
