//! What an action may know about the task it runs: ids, time, deadline, cancellation.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The task an action is running, passed as `ctx: &Context`.
///
/// It is cancelled when the task runs out of time or the provider shuts down past its drain
/// timeout, so a long action can stop early with [`Context::cancelled`].
#[derive(Clone, Debug)]
pub struct Context {
    inner: Arc<ContextInner>,
}

#[derive(Debug)]
struct ContextInner {
    task_id: String,
    action: Arc<str>,
    provider: Arc<str>,
    timezone: Tz,
    deadline: Instant,
    cancellation: CancellationToken,
}

impl Context {
    /// A context for a task; the runtime builds one per task, and tests may build their own.
    pub fn new(
        task_id: impl Into<String>,
        action: Arc<str>,
        provider: Arc<str>,
        timezone: Tz,
        timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                task_id: task_id.into(),
                action,
                provider,
                timezone,
                deadline: Instant::now() + timeout,
                cancellation: CancellationToken::new(),
            }),
        }
    }

    /// A context for calling an action outside the runtime (unit tests, scripts).
    pub fn detached(action: &str) -> Self {
        Self::new(
            "local",
            Arc::from(action),
            Arc::from("local"),
            Tz::UTC,
            Duration::from_secs(3600),
        )
    }

    /// The hub's id of the task.
    pub fn task_id(&self) -> &str {
        &self.inner.task_id
    }

    /// The action's name.
    pub fn action(&self) -> &str {
        &self.inner.action
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.inner.provider
    }

    /// The provider's time zone.
    pub fn timezone(&self) -> Tz {
        self.inner.timezone
    }

    /// The current time in the provider's time zone.
    pub fn now(&self) -> DateTime<Tz> {
        Utc::now().with_timezone(&self.inner.timezone)
    }

    /// When the task runs out of time.
    pub fn deadline(&self) -> Instant {
        self.inner.deadline
    }

    /// Time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.inner
            .deadline
            .saturating_duration_since(Instant::now())
    }

    /// True once the task was cancelled (timeout or shutdown).
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancellation.is_cancelled()
    }

    /// Resolves when the task is cancelled.
    pub async fn cancelled(&self) {
        self.inner.cancellation.cancelled().await
    }

    pub(crate) fn cancel(&self) {
        self.inner.cancellation.cancel()
    }
}
