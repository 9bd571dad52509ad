//! The process signals that begin a graceful shutdown, and cut it short when they come again.

use futures_util::Stream;

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
