//! Graceful shutdown: the signals that begin it and cut it short, the tokens that carry each
//! stage to the worker, and how long each stage may take.
//!
//! On the first signal the worker stops taking tasks (`stop`); the actions in flight get the
//! drain timeout (`PROVIDER_DRAIN_TIMEOUT`), after which those still running are answered with
//! `SHUTDOWN` (`interrupt`); their answers get [`RESULT_GRACE`] to reach the hub, and are then
//! given up (`give_up`). A second signal interrupts at once and leaves [`FORCED_RESULT_GRACE`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::Stream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

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
    /// Begun when shutdown begins: no new task is taken.
    pub(crate) stop: Stage,
    /// Begun when the drain timeout runs out: running actions are stopped and answered.
    pub(crate) interrupt: Stage,
    /// Begun when even results can no longer wait for the hub.
    pub(crate) give_up: Stage,
}

/// One stage of shutdown, begun once with [`begin`](Self::begin): a flag, and a token for
/// those who await the stage. The lanes read the flag on every poll of every call to the hub;
/// the token's `is_cancelled` and its futures take a lock each time (two locks a poll).
#[derive(Clone, Debug, Default)]
pub(crate) struct Stage {
    begun: Arc<AtomicBool>,
    /// Cancelled only by `begin`, after the flag is set: [`StageWatch`] counts on that order.
    token: CancellationToken,
}

impl Stage {
    /// Begins the stage: wakes all who wait for it.
    pub(crate) fn begin(&self) {
        self.begun.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether the stage has begun, without a lock.
    pub(crate) fn has_begun(&self) -> bool {
        self.begun.load(Ordering::Acquire)
    }

    /// The token cancelled when the stage begins. Await it; never cancel it (see `begin`).
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// A future that resolves once the stage has begun, made to be kept and polled many times.
    pub(crate) fn watch(&self) -> StageWatch {
        StageWatch {
            begun: self.begun.clone(),
            waiting: Box::pin(self.token.clone().cancelled_owned()),
            registered: None,
        }
    }
}

/// Resolves once its [`Stage`] has begun. The first poll registers with the token (under its
/// lock); later polls from the same task read only the flag, which `begin` sets before the token
/// wakes the task. A poll from another task registers again.
pub(crate) struct StageWatch {
    begun: Arc<AtomicBool>,
    waiting: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The waker the token will wake.
    registered: Option<Waker>,
}

impl Future for StageWatch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.begun.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let this = &mut *self;
        match this.waiting.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(()),
            Poll::Pending => {
                this.registered = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
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
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;
    use crate::config::DEFAULT_DRAIN_TIMEOUT;

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes::default());
        (wakes.clone(), Waker::from(wakes))
    }

    fn poll(watch: &mut StageWatch, waker: &Waker) -> Poll<()> {
        Pin::new(watch).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_watch_polled_many_times_wakes_its_task_when_the_stage_begins() {
        let stage = Stage::default();
        let mut watch = stage.watch();
        let (wakes, waker) = waker();
        for _ in 0..3 {
            assert!(poll(&mut watch, &waker).is_pending());
        }
        assert!(!stage.has_begun());
        stage.begin();
        assert!(stage.has_begun());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut watch, &waker).is_ready());
        assert!(stage.token().is_cancelled());
    }

    #[test]
    fn a_watch_polled_from_another_task_wakes_that_one() {
        let stage = Stage::default();
        let mut watch = stage.watch();
        let (first, first_waker) = waker();
        let (second, second_waker) = waker();
        assert!(poll(&mut watch, &first_waker).is_pending());
        assert!(poll(&mut watch, &second_waker).is_pending());
        stage.begin();
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert!(poll(&mut watch, &second_waker).is_ready());
    }

    #[test]
    fn a_watch_made_or_first_polled_after_the_stage_began_is_ready() {
        let stage = Stage::default();
        let mut early = stage.watch();
        stage.begin();
        stage.begin();
        let (wakes, waker) = waker();
        assert!(poll(&mut early, &waker).is_ready());
        assert!(poll(&mut stage.watch(), &waker).is_ready());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_default_stop_fits_a_kubernetes_grace_period() {
        let stop = DEFAULT_DRAIN_TIMEOUT + RESULT_GRACE + STOP_POLL_GRACE + FINAL_STOP_BOUND;
        assert!(stop < Duration::from_secs(30), "{stop:?}");
    }
}
