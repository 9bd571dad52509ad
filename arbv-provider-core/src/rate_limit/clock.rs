//! The clock the in-process monitors read: tokio's, so tests can pause and advance it.

use std::time::Duration;

use governor::clock::Clock;
use tokio::time::Instant;

/// Time since the clock was made, read from tokio's clock (which `tokio::time::pause` controls).
#[derive(Clone, Debug)]
pub struct TokioClock {
    origin: Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}
