//! What an action may know about the task it runs: ids, time, deadline, cancellation.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable as _;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::cache::CacheHandle;
use crate::retry::{RetryPolicy, Transient};
use crate::timezone::Zone;
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
    timezone: Zone,
    deadline: Instant,
    cancellation: CancellationToken,
    cache: CacheHandle,
}

impl Context {
    /// A context for a task; the runtime builds one per task, and tests may build their own.
    pub fn new(
        task_id: impl Into<String>,
        action: Arc<str>,
        provider: Arc<str>,
        timezone: Zone,
        timeout: Duration,
    ) -> Self {
        Self::until(
            task_id.into(),
            action,
            provider,
            timezone,
            Instant::now() + timeout,
        )
    }

    /// A context for a task that must end by `deadline`.
    pub(crate) fn until(
        task_id: String,
        action: Arc<str>,
        provider: Arc<str>,
        timezone: Zone,
        deadline: Instant,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                task_id,
                action,
                provider,
                timezone,
                deadline,
                cancellation: CancellationToken::new(),
                cache: CacheHandle::detached(),
            }),
        }
    }

    /// A context for calling an action outside the runtime (unit tests, scripts).
    pub fn detached(action: &str) -> Self {
        Self::new(
            "local",
            Arc::from(action),
            Arc::from("local"),
            Zone::UTC,
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
    pub fn timezone(&self) -> &Zone {
        &self.inner.timezone
    }

    /// The current time in the provider's time zone.
    pub fn now(&self) -> DateTime<Zone> {
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

    /// Gives a context just made the provider's cache handle.
    pub(crate) fn with_cache(mut self, cache: &CacheHandle) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("a context just made is not shared yet")
            .cache = cache.clone();
        self
    }

    /// The provider's cached answers, to drop some after a change (an action that writes
    /// invalidates what a reading action kept). A context the runtime did not make (a
    /// [`detached`](Self::detached) one) has a handle that invalidates nothing and answers
    /// [`CacheError::Detached`](crate::CacheError::Detached).
    pub fn cache(&self) -> CacheHandle {
        self.inner.cache.clone()
    }

    pub(crate) fn cancel(&self) {
        self.inner.cancellation.cancel()
    }

    /// Runs `call` and, while it fails with a [transient](Transient) error, runs it again after
    /// a wait, as `policy` says: for one call of an action (an HTTP request), not the whole
    /// action. Returns the first success, or the last error once the tries run out, the error
    /// is not transient, or the next wait (at least the error's `Retry-After`) would end past
    /// the task's deadline. A task answered meanwhile (timeout, shutdown) drops the call where
    /// it is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use arbv_provider_core::{ActionError, Context};
    /// use arbv_provider_core::retry::RetryPolicy;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ctx = Context::detached("weather");
    /// let mut tries = 0;
    /// let policy = RetryPolicy::attempts(3).backoff(Duration::from_millis(1), Duration::from_millis(10));
    /// let answer = ctx
    ///     .retry(&policy, || {
    ///         tries += 1;
    ///         let this_try = tries;
    ///         async move {
    ///             if this_try < 3 {
    ///                 Err(ActionError::new("upstream 503").transient())
    ///             } else {
    ///                 Ok("sunny")
    ///             }
    ///         }
    ///     })
    ///     .await;
    /// assert_eq!(answer, Ok("sunny"));
    /// assert_eq!(tries, 3);
    /// # }
    /// ```
    pub async fn retry<T, E, F, Fut>(&self, policy: &RetryPolicy, call: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Transient,
    {
        let deadline = self.deadline();
        let mut failures = 0;
        call.retry(policy.schedule())
            .sleep(tokio::time::sleep)
            .when(|error: &E| error.is_transient())
            .adjust(|error, more| {
                more?;
                failures += 1;
                let ceiling = policy.ceiling(failures);
                let wait = crate::retry::pause(ceiling, error.retry_after_hint());
                (Instant::now() + wait < deadline).then_some(wait)
            })
            .await
    }
}
