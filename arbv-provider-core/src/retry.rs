//! Retrying a call an action makes: [`Context::retry`](crate::Context::retry) runs it again
//! while it fails with an error that says it is transient ([`Transient`]), with exponential
//! backoff and equal jitter, within the task's deadline. Built on backon's retry loop and
//! exponential schedule; the jitter and `Retry-After` are applied on top.

use std::time::Duration;

use backon::{ExponentialBackoff, ExponentialBuilder};

/// An error that says whether trying again may succeed, and how long the other side asked to
/// wait first. [`ActionError`](crate::ActionError) implements it (see
/// [`ActionError::transient`](crate::ActionError::transient)); implement it for an error type
/// of your own to retry on it.
///
/// ```
/// use std::time::Duration;
/// use arbv_provider_core::retry::Transient;
///
/// enum ApiError { RateLimited { retry_after_s: u64 }, Unavailable, NotFound }
///
/// impl Transient for ApiError {
///     fn is_transient(&self) -> bool {
///         !matches!(self, ApiError::NotFound)
///     }
///     fn retry_after_hint(&self) -> Option<Duration> {
///         match self {
///             ApiError::RateLimited { retry_after_s } => Some(Duration::from_secs(*retry_after_s)),
///             _ => None,
///         }
///     }
/// }
/// ```
pub trait Transient {
    /// Whether the same call may succeed if tried again (a timeout, a 503, a dropped
    /// connection); `false` for an answer that will not change (a 404, a validation error).
    fn is_transient(&self) -> bool;

    /// How long the other side asked to wait before the next try (an HTTP `Retry-After`). The
    /// next try waits at least this long, or is not made when that would pass the deadline.
    fn retry_after_hint(&self) -> Option<Duration> {
        None
    }
}

/// How many times a call is tried and how long to wait between tries.
///
/// `attempts` counts the first try: `RetryPolicy::attempts(3)` tries at most three times and
/// waits at most twice. There is no unbounded policy. The wait after the `n`-th failure is
/// `first × 2^(n-1)`, at most `cap`, with equal jitter: between half of it and all of it,
/// never near zero. The defaults are 200 ms and 5 s.
///
/// ```
/// use std::time::Duration;
/// use arbv_provider_core::retry::RetryPolicy;
///
/// let policy = RetryPolicy::attempts(4).backoff(Duration::from_millis(100), Duration::from_secs(2));
/// assert_eq!(policy.max_attempts(), 4);
/// assert_eq!(policy.ceiling(1), Duration::from_millis(100));
/// assert_eq!(policy.ceiling(3), Duration::from_millis(400));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    first: Duration,
    cap: Duration,
}

/// The first wait when none is given.
pub const DEFAULT_FIRST_WAIT: Duration = Duration::from_millis(200);
/// The longest wait when none is given.
pub const DEFAULT_WAIT_CAP: Duration = Duration::from_secs(5);

impl RetryPolicy {
    /// At most `attempts` tries in all, the first one included; `0` counts as `1` (no retry).
    pub fn attempts(attempts: u32) -> Self {
        Self {
            attempts: attempts.max(1),
            first: DEFAULT_FIRST_WAIT,
            cap: DEFAULT_WAIT_CAP,
        }
    }

    /// The wait after the first failure, and the longest wait (at least `first`).
    pub fn backoff(mut self, first: Duration, cap: Duration) -> Self {
        self.first = first;
        self.cap = cap.max(first);
        self
    }

    /// Tries in all, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait after the first failure, before jitter.
    pub fn first_wait(&self) -> Duration {
        self.first
    }

    /// The longest wait, before jitter.
    pub fn wait_cap(&self) -> Duration {
        self.cap
    }

    /// The wait after the `failures`-th failure before jitter: `first × 2^(failures-1)`, at
    /// most the cap.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first
            .checked_mul(1 << doublings)
            .map_or(self.cap, |wait| wait.min(self.cap))
    }

    /// backon's schedule: one item per retry, so it ends the retries. Its delays are floats
    /// (200 ms, 400.000006 ms, …); the waits come from [`ceiling`](Self::ceiling) instead.
    pub(crate) fn schedule(&self) -> ExponentialBackoff {
        use backon::BackoffBuilder as _;
        ExponentialBuilder::default()
            .with_min_delay(self.first)
            .with_max_delay(self.cap)
            .with_factor(2.0)
            .with_max_times(self.attempts as usize - 1)
            .build()
    }
}

/// Equal jitter: half of `ceiling` and a random part of the other half, so retries spread out
/// and none comes at once.
pub(crate) fn equal_jitter(ceiling: Duration) -> Duration {
    let half = ceiling / 2;
    let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(fastrand::u64(0..=spread))
}

/// The wait before the next try: the jittered ceiling, or longer when the error asked for it.
pub(crate) fn pause(ceiling: Duration, retry_after: Option<Duration>) -> Duration {
    let jittered = equal_jitter(ceiling);
    retry_after.map_or(jittered, |asked| asked.max(jittered))
}

/// What the `#[action]` macro converts an action's return value with, so that an error type of
/// the user's own that implements [`Transient`] keeps what it says when it becomes an
/// [`ActionError`](crate::ActionError): the blanket `From<E: std::error::Error>` conversion
/// cannot see the trait. Not public API; it may change in any release.
///
/// Autoref specialisation, which works on the concrete types of the generated code:
/// `(&output).__arbv_response_kind()` finds [`TransientResult`](__probe::TransientResult)'s
/// method on a `Result<T, E>` with `E: Transient` first, and
/// [`JsonValue`](__probe::JsonValue)'s on an action's plain `Value`; any other value takes one
/// more reference to reach [`AnyResponse`](__probe::AnyResponse)'s. The tag the method returns
/// then converts the value. [`__into_action_response!`](crate::__into_action_response) writes the
/// call.
#[doc(hidden)]
pub mod __probe {
    use serde_json::Value;

    use super::Transient;
    use crate::envelope::Status;
    use crate::response::{ActionError, ActionResponse, IntoActionResponse, Json};

    /// Chosen for `Result<T, E>` with `E: Transient`.
    pub trait TransientResult {
        fn __arbv_response_kind(&self) -> KeepsTransient {
            KeepsTransient
        }
    }

    impl<T, E: Transient> TransientResult for Result<T, E> {}

    /// Chosen for an action's plain `serde_json::Value` (wrapped as `Json` by the macro).
    pub trait JsonValue {
        fn __arbv_response_kind(&self) -> TakesValue {
            TakesValue
        }
    }

    impl JsonValue for Json<Value> {}

    /// Chosen for everything else.
    pub trait AnyResponse {
        fn __arbv_response_kind(&self) -> Converts {
            Converts
        }
    }

    impl<R> AnyResponse for &R {}

    /// Converts a `Result` whose error says whether it is transient, keeping what it says.
    pub struct KeepsTransient;

    impl KeepsTransient {
        pub fn into_response<T, E>(self, output: Result<T, E>) -> ActionResponse
        where
            E: Transient + Into<ActionError>,
            Result<T, E>: IntoActionResponse,
        {
            match output {
                Ok(value) => Ok::<T, E>(value).into_response(),
                Err(error) => ActionResponse::from_error(keep_transient(error)),
            }
        }
    }

    /// Takes a `Value` as the response as it is: what serialising it into a new `Value` (the
    /// generic path) would make, without the copy.
    pub struct TakesValue;

    impl TakesValue {
        pub fn into_response(self, output: Json<Value>) -> ActionResponse {
            ActionResponse::with_status(Status::Success, None, output.0)
        }
    }

    /// Converts as [`IntoActionResponse::into_response`] does.
    pub struct Converts;

    impl Converts {
        pub fn into_response<R: IntoActionResponse>(self, output: R) -> ActionResponse {
            output.into_response()
        }
    }

    /// `error` as an [`ActionError`], marked transient (with its `Retry-After`) when it says so.
    fn keep_transient<E: Transient + Into<ActionError>>(error: E) -> ActionError {
        let transient = error.is_transient();
        let retry_after = error.retry_after_hint();
        let converted: ActionError = error.into();
        match (transient, retry_after) {
            (false, _) => converted,
            (true, None) => converted.transient(),
            (true, Some(wait)) => converted.retry_after(wait),
        }
    }
}

/// `__into_action_response!(output)`: the action's return value `output` as an
/// [`ActionResponse`](crate::ActionResponse), as
/// [`into_response`](crate::IntoActionResponse::into_response) makes it, except that a `Result`
/// whose error type implements [`Transient`](crate::retry::Transient) keeps what the error
/// says. For the `#[action]` macro's generated code; not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __into_action_response {
    ($output:expr) => {{
        #[allow(unused_imports)]
        use $crate::retry::__probe::{AnyResponse as _, JsonValue as _, TransientResult as _};
        let output = $output;
        (&output).__arbv_response_kind().into_response(output)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_value_is_taken_as_the_generic_path_would_make_it() {
        use crate::response::{IntoActionResponse, Json};
        let value =
            serde_json::json!({ "echo": "hi", "n": [1, 2.5, null], "nested": { "b": true } });
        let taken = crate::__into_action_response!(Json(value.clone()));
        let converted = Json(value.clone()).into_response();
        assert_eq!(taken.status(), converted.status());
        assert_eq!(taken.response(), converted.response());
        assert_eq!(taken.response(), &value);
    }

    #[test]
    fn attempts_count_the_first_try_and_the_schedule_doubles_to_the_cap() {
        let policy = RetryPolicy::attempts(6)
            .backoff(Duration::from_millis(200), Duration::from_millis(1000));
        assert_eq!(policy.schedule().count(), 5, "six tries wait five times");
        let ceilings: Vec<Duration> = (1..=5).map(|failures| policy.ceiling(failures)).collect();
        assert_eq!(
            ceilings,
            [200, 400, 800, 1000, 1000].map(Duration::from_millis)
        );
        assert_eq!(RetryPolicy::attempts(1).schedule().count(), 0);
        assert_eq!(RetryPolicy::attempts(0).max_attempts(), 1);
        assert_eq!(
            RetryPolicy::attempts(40).ceiling(40),
            DEFAULT_WAIT_CAP,
            "no overflow"
        );
    }

    #[test]
    fn equal_jitter_is_never_below_half_nor_above_the_ceiling() {
        let ceiling = Duration::from_millis(800);
        let mut low = Duration::MAX;
        for _ in 0..10_000 {
            let wait = equal_jitter(ceiling);
            assert!(wait >= ceiling / 2 && wait <= ceiling, "{wait:?}");
            low = low.min(wait);
        }
        assert!(
            low < Duration::from_millis(450),
            "the lower half is used: {low:?}"
        );
    }

    #[test]
    fn retry_after_is_a_floor() {
        let asked = Duration::from_secs(3);
        assert!(pause(Duration::from_millis(100), Some(asked)) == asked);
        let wait = pause(Duration::from_secs(10), Some(Duration::from_millis(1)));
        assert!(wait >= Duration::from_secs(5));
    }

    /// What a [`Context::retry`] run did: how many calls, how long it took (paused clock).
    async fn run(
        ctx: &crate::Context,
        policy: RetryPolicy,
        answers: Vec<Result<&'static str, crate::ActionError>>,
    ) -> (Result<&'static str, crate::ActionError>, usize, Duration) {
        let answers = std::sync::Mutex::new(answers.into_iter());
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        let answer = ctx
            .retry(&policy, || {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let next = answers.lock().unwrap().next().expect("an answer per call");
                async move { next }
            })
            .await;
        (answer, calls.into_inner(), started.elapsed())
    }

    fn flaky() -> crate::ActionError {
        crate::ActionError::new("upstream 503").transient()
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::attempts(3).backoff(Duration::from_millis(200), Duration::from_secs(5))
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_retried_after_jittered_waits_within_bounds() {
        let ctx = crate::Context::detached("weather");
        let (answer, calls, took) = run(
            &ctx,
            policy(),
            vec![Err(flaky()), Err(flaky()), Ok("sunny")],
        )
        .await;
        assert_eq!((answer, calls), (Ok("sunny"), 3));
        // Waits of 200 ms and 400 ms before jitter: 100..200 ms, then 200..400 ms.
        assert!(
            took >= Duration::from_millis(300) && took <= Duration::from_millis(600),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tries_stop_at_the_attempts_and_the_last_error_is_the_answer() {
        let ctx = crate::Context::detached("weather");
        let last = crate::ActionError::new("still 503").transient();
        let (answer, calls, _) = run(
            &ctx,
            policy(),
            vec![Err(flaky()), Err(flaky()), Err(last.clone())],
        )
        .await;
        assert_eq!(
            (answer, calls),
            (Err(last), 3),
            "three tries in all, the first included"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_that_is_not_transient_is_not_retried() {
        let ctx = crate::Context::detached("weather");
        let not_found = crate::ActionError::new("no such city").with_code("NOT_FOUND");
        let (answer, calls, took) = run(&ctx, policy(), vec![Err(not_found.clone())]).await;
        assert_eq!((answer, calls, took), (Err(not_found), 1, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_for_at_least() {
        let ctx = crate::Context::detached("weather");
        let slow_down = crate::ActionError::new("429").retry_after(Duration::from_secs(3));
        let (answer, calls, took) = run(&ctx, policy(), vec![Err(slow_down), Ok("sunny")]).await;
        assert_eq!((answer, calls), (Ok("sunny"), 2));
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_millis(3010),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_wait_runs_past_the_deadline() {
        let ctx = crate::Context::new(
            "t",
            std::sync::Arc::from("weather"),
            std::sync::Arc::from("p"),
            crate::Zone::UTC,
            Duration::from_secs(1),
        );
        let slow_down = crate::ActionError::new("429").retry_after(Duration::from_secs(5));
        let (answer, calls, took) = run(&ctx, policy(), vec![Err(slow_down.clone())]).await;
        assert_eq!((answer, calls, took), (Err(slow_down), 1, Duration::ZERO));
    }
    /// An error type of a user's own, as thiserror writes it, that says when it is transient.
    #[derive(Debug, thiserror::Error)]
    enum UpstreamError {
        #[error("upstream 503")]
        Unavailable,
        #[error("upstream 429")]
        RateLimited,
        #[error("no such city")]
        NotFound,
    }

    impl Transient for UpstreamError {
        fn is_transient(&self) -> bool {
            !matches!(self, UpstreamError::NotFound)
        }

        fn retry_after_hint(&self) -> Option<Duration> {
            matches!(self, UpstreamError::RateLimited).then_some(Duration::from_secs(2))
        }
    }

    /// An error type that says nothing about being transient.
    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct DiskFull;

    fn flags(response: &crate::ActionResponse) -> (crate::Status, bool, Option<Duration>) {
        (
            response.status(),
            response.is_transient(),
            response.retry_after(),
        )
    }

    #[test]
    fn the_probe_keeps_what_an_error_type_of_ones_own_says() {
        use crate::Status;
        let unavailable: Result<u32, UpstreamError> = Err(UpstreamError::Unavailable);
        let response = crate::__into_action_response!(unavailable);
        assert_eq!(flags(&response), (Status::Error, true, None));
        assert_eq!(response.message(), Some("upstream 503"));
        let limited: Result<u32, UpstreamError> = Err(UpstreamError::RateLimited);
        assert_eq!(
            flags(&crate::__into_action_response!(limited)),
            (Status::Error, true, Some(Duration::from_secs(2)))
        );
        let not_found: Result<u32, UpstreamError> = Err(UpstreamError::NotFound);
        assert_eq!(
            flags(&crate::__into_action_response!(not_found)),
            (Status::Error, false, None)
        );
        let fine: Result<u32, UpstreamError> = Ok(7);
        let response = crate::__into_action_response!(fine);
        assert_eq!(flags(&response), (Status::Success, false, None));
        assert_eq!(response.response(), &serde_json::json!(7));
        let chosen: Result<crate::ActionResponse, UpstreamError> = Err(UpstreamError::Unavailable);
        assert!(crate::__into_action_response!(chosen).is_transient());
    }

    #[test]
    fn the_probe_converts_everything_else_as_into_response_does() {
        use crate::{ActionError, ActionResponse, IntoActionResponse, Json};
        let same = |a: ActionResponse, b: ActionResponse| assert_eq!(a, b);
        let slow_down = || -> Result<u32, ActionError> {
            Err(ActionError::new("429").retry_after(Duration::from_secs(1)))
        };
        let response = crate::__into_action_response!(slow_down());
        assert_eq!(response.retry_after(), Some(Duration::from_secs(1)));
        same(response, slow_down().into_response());
        let plain = || -> Result<u32, ActionError> { Err(ActionError::new("no").with_code("E")) };
        same(
            crate::__into_action_response!(plain()),
            plain().into_response(),
        );
        let disk = || -> Result<u32, DiskFull> { Err(DiskFull) };
        let response = crate::__into_action_response!(disk());
        assert_eq!(flags(&response), (crate::Status::Error, false, None));
        same(response, disk().into_response());
        same(
            crate::__into_action_response!(Json(vec![1, 2])),
            Json(vec![1, 2]).into_response(),
        );
        let warning = ActionResponse::warning("partial", serde_json::json!({"rows": 1}));
        same(crate::__into_action_response!(warning.clone()), warning);
    }
}
