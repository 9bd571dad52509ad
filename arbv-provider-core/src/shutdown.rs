//! Graceful shutdown: the signals that begin it and cut it short, the tokens that carry each
//! stage to the worker, and how long each stage may take.
//!
//! On the first signal the worker stops taking tasks (`stop`); the actions in flight get the
//! drain timeout (`PROVIDER_DRAIN_TIMEOUT`), after which those still running are answered with
//! `SHUTDOWN` (`interrupt`); their answers get [`RESULT_GRACE`] to reach the hub, and are then
//! given up (`give_up`). A second signal interrupts at once and leaves [`FORCED_RESULT_GRACE`].

use std::time::Duration;

use futures_util::Stream;
use tokio_util::sync::CancellationToken;

/// How long a `GetTask` in flight when shutdown begins may still answer; its task is run.
pub const STOP_POLL_GRACE: Duration = Duration::from_secs(1);
/// How long results may still wait for the hub after the drain timeout cut the actions.
pub const RESULT_GRACE: Duration = Duration::from_secs(5);
/// How long results may still wait for the hub after a second signal cut the actions.
pub const FORCED_RESULT_GRACE: Duration = Duration::from_secs(2);
/// How long the worker may take to let go once results are given up; then it is dropped, so
/// nothing holds a stop past drain + result grace + this.
pub const FINAL_STOP_BOUND: Duration = Duration::from_secs(1);

/// How a worker stops: `stop` ends polling; `interrupt` cuts actions still running when the
/// drain time is up; `give_up` ends retries of results the hub will not take.
#[derive(Clone, Debug, Default)]
pub(crate) struct Shutdown {
    /// Cancelled when shutdown begins: no new task is taken.
    pub(crate) stop: CancellationToken,
    /// Cancelled when the drain timeout runs out: running actions are stopped and answered.
    pub(crate) interrupt: CancellationToken,
    /// Cancelled when even results can no longer wait for the hub.
    pub(crate) give_up: CancellationToken,
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
pub async fn signal() -> Result<(), std::io::Error> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Every SIGINT or SIGTERM from now on, one item each: the first begins the drain, the second
/// cuts it short. The handlers are installed before this returns, so a failure shows at start.
pub fn signals() -> Result<impl Stream<Item = ()> + Send + 'static, std::io::Error> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        );
        Ok(futures_util::stream::unfold(
            handlers,
            |(mut interrupt, mut terminate)| async move {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                Some(((), (interrupt, terminate)))
            },
        ))
    }
    #[cfg(not(unix))]
    {
        Ok(futures_util::stream::unfold((), |()| async {
            match tokio::signal::ctrl_c().await {
                Ok(()) => Some(((), ())),
                Err(_) => None,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_DRAIN_TIMEOUT;

    #[test]
    fn the_default_stop_fits_a_kubernetes_grace_period() {
        let stop = DEFAULT_DRAIN_TIMEOUT + RESULT_GRACE + STOP_POLL_GRACE + FINAL_STOP_BOUND;
        assert!(stop < Duration::from_secs(30), "{stop:?}");
    }
}
