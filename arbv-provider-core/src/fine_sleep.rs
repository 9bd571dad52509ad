//! Pauses shorter than the runtime timer's grain.
//!
//! tokio's timer counts whole milliseconds from the runtime's start: it rounds a sleep's end up
//! to the next millisecond and parks for whole milliseconds, so a sleep of 100 µs ends 1–2 ms
//! later. The scout's quick pauses between polls of a hub that answers "no task" at once are
//! meant to be a fraction of that. On Linux a timerfd keeps them, which tokio's reactor watches
//! beside the sockets; elsewhere, or when the kernel gives no timerfd, tokio's sleep does, at
//! its grain. Pauses of [`TIMER_GRAIN`] or more are tokio's: the grain is a small share of
//! them, and they follow tokio's clock, which tests pause and move by hand.

use std::time::Duration;

/// The grain of tokio's timer: shorter pauses are kept by the timerfd.
const TIMER_GRAIN: Duration = Duration::from_millis(1);

/// A sleep kept to the microsecond where the system allows. `&mut self` keeps a timer to one
/// waiter, which a timerfd needs (a second waiter could miss the expiry the first one read).
/// One per worker, for its scout: a descriptor per lane could take hundreds of descriptors from
/// the process's limit.
#[derive(Default)]
pub(crate) struct FineSleep {
    /// Made at the first pause under [`TIMER_GRAIN`]: a provider whose hub holds `GetTask` open
    /// never needs one. `Some(None)` when the kernel gave none, or it failed.
    #[cfg(target_os = "linux")]
    timer: Option<Option<timerfd::TimerFd>>,
}

impl FineSleep {
    /// Sleeps for `pause`: to the microsecond with a timerfd when it is under [`TIMER_GRAIN`],
    /// else on tokio's timer.
    pub(crate) async fn sleep(&mut self, pause: Duration) {
        #[cfg(target_os = "linux")]
        if pause < TIMER_GRAIN {
            // Nothing to wait for, and no timer to make (a hub that holds `GetTask` open is
            // asked again at once): a zero `it_value` would disarm the timer, not fire it.
            if pause.is_zero() {
                return;
            }
            let timer = self.timer.get_or_insert_with(|| {
                timerfd::TimerFd::new()
                    .inspect_err(|error| {
                        tracing::debug!(%error, "no timerfd: pauses under 1 ms fall back to the runtime's timer");
                    })
                    .ok()
            });
            if let Some(made) = timer {
                match made.sleep(pause).await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::debug!(%error, "the timerfd failed: pauses under 1 ms fall back to the runtime's timer");
                        *timer = None;
                    }
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(target_os = "linux")]
mod timerfd {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::time::Duration;

    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// A one-shot monotonic timer that the runtime's reactor watches.
    pub(super) struct TimerFd(AsyncFd<OwnedFd>);

    impl TimerFd {
        pub(super) fn new() -> io::Result<Self> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            // SAFETY: the `OwnedFd` is open, owned by the `AsyncFd` alone, and closed only when
            // the `AsyncFd` drops it: the descriptor stays the same file for its whole life.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(|refused| refused.into_parts().1)?;
            Ok(Self(fd))
        }

        /// Sleeps for `pause`, which is not zero.
        pub(super) async fn sleep(&self, pause: Duration) -> io::Result<()> {
            let until = Itimerspec {
                it_interval: Timespec::default(),
                it_value: Timespec::try_from(pause).map_err(|_| io::ErrorKind::InvalidInput)?,
            };
            // Arming resets the count of expiries: one left unread by a pause that was
            // cancelled (shutdown) does not end this one early.
            timerfd_settime(self.0.get_ref(), TimerfdTimerFlags::empty(), &until)?;
            loop {
                let mut ready = self.0.readable().await?;
                let mut expiries = [0u8; 8];
                match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut expiries)?)) {
                    Ok(read) => return read.map(drop),
                    // Readiness left from an earlier expiry: wait for this one.
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future as _;
    use std::time::Instant;

    #[tokio::test]
    async fn pauses_under_a_millisecond_last_as_long_as_asked_and_not_a_timer_tick() {
        let mut sleep = FineSleep::default();
        let pause = Duration::from_micros(100);
        let mut shortest = Duration::MAX;
        for _ in 0..20 {
            let started = Instant::now();
            sleep.sleep(pause).await;
            let took = started.elapsed();
            assert!(took >= pause, "{took:?}");
            shortest = shortest.min(took);
        }
        #[cfg(target_os = "linux")]
        assert!(
            matches!(sleep.timer, Some(Some(_))),
            "a timerfd on Linux, made at the first pause"
        );
        // The runtime's timer, parked alone here, ends such a pause a whole tick later.
        #[cfg(target_os = "linux")]
        assert!(shortest < Duration::from_millis(1), "{shortest:?}");
    }

    #[tokio::test]
    async fn a_cancelled_pause_does_not_end_the_next_one_early() {
        let mut sleep = FineSleep::default();
        let pause = Duration::from_micros(900);
        {
            // Armed, then dropped before it ends: its expiry comes while nobody waits.
            let mut cancelled = std::pin::pin!(sleep.sleep(pause));
            let polled =
                std::future::poll_fn(|cx| std::task::Poll::Ready(cancelled.as_mut().poll(cx)))
                    .await;
            assert!(polled.is_pending());
        }
        std::thread::sleep(Duration::from_millis(3));
        let started = Instant::now();
        sleep.sleep(pause).await;
        assert!(started.elapsed() >= pause, "{:?}", started.elapsed());
    }

    /// Under tokio's paused clock a pause of a millisecond or more takes no real time: it is
    /// tokio's, as the backoffs tests run on a paused clock rely on.
    #[tokio::test(start_paused = true)]
    async fn pauses_of_a_millisecond_or_more_follow_tokios_clock() {
        let mut sleep = FineSleep::default();
        let (real, virtual_clock) = (Instant::now(), tokio::time::Instant::now());
        sleep.sleep(Duration::from_secs(30)).await;
        assert!(virtual_clock.elapsed() >= Duration::from_secs(30));
        assert!(
            real.elapsed() < Duration::from_secs(10),
            "{:?}",
            real.elapsed()
        );
    }

    #[tokio::test]
    async fn a_zero_pause_returns_at_once() {
        let mut sleep = FineSleep::default();
        tokio::time::timeout(Duration::from_secs(5), sleep.sleep(Duration::ZERO))
            .await
            .expect("a zero pause does not wait for an expiry that never comes");
        #[cfg(target_os = "linux")]
        assert!(sleep.timer.is_none(), "a zero pause makes no timer");
    }
}
