//! An action that declares retries, run by the dispatcher on tokio's paused clock: the waits
//! between tries, `Retry-After`, the deadline, attempt timeouts, what is not retried, the rate
//! limit taken again by every try, and the answer once the tries run out.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::*;
use crate::rate_limit::{RateSpec, in_process};
use crate::retry::RetryPolicy;

/// What the action does on one call.
enum Step {
    Fail(ActionError),
    Succeed,
    /// Never answers: only a timeout or shutdown ends the call.
    Hang,
    Panic,
    /// Input the action's types refuse.
    RefuseInput,
}

/// An upstream that answers calls from a script, and notes when each came and its context.
struct Upstream {
    steps: Mutex<VecDeque<Step>>,
    calls: Mutex<Vec<(Instant, Context)>>,
}

impl Upstream {
    fn calls(&self) -> Vec<(Instant, Context)> {
        self.calls.lock().unwrap().clone()
    }

    /// Time between one call and the next.
    fn gaps(&self) -> Vec<Duration> {
        self.calls()
            .windows(2)
            .map(|pair| pair[1].0 - pair[0].0)
            .collect()
    }
}

fn transient(message: &str) -> ActionError {
    ActionError::new(message).transient()
}

/// Three tries, waits of 200 ms doubling up to 5 s before jitter.
fn policy() -> RetryPolicy {
    RetryPolicy::attempts(3).backoff(Duration::from_millis(200), Duration::from_secs(5))
}

/// A dispatcher whose action `forecast` (timeout 30 s unless `declare` says otherwise) plays
/// `steps`, declared further by `declare`.
fn weather(
    steps: Vec<Step>,
    declare: impl FnOnce(&mut ActionDef<Upstream>),
) -> (Dispatcher, Arc<Upstream>) {
    let upstream = Arc::new(Upstream {
        steps: Mutex::new(steps.into()),
        calls: Mutex::default(),
    });
    let mut def = ProviderDef::<Upstream>::new("weather");
    let action = def.action("forecast", |this: Arc<Upstream>, call| async move {
        this.calls
            .lock()
            .unwrap()
            .push((Instant::now(), call.context().clone()));
        let step = this.steps.lock().unwrap().pop_front();
        match step.expect("a step for every call") {
            Step::Fail(error) => Ok(ActionResponse::from_error(error)),
            Step::Succeed => Ok(ActionResponse::success(json!({ "temperature_c": 21 }))),
            Step::Hang => std::future::pending().await,
            Step::Panic => panic!("upstream client bug"),
            Step::RefuseInput => Err(InvalidInput {
                part: InputPart::Payload,
                message: "invalid type: integer, expected a string".into(),
            }),
        }
    });
    action.timeout(Duration::from_secs(30));
    declare(action);
    let config = Config::builder().auth_token("t").build().unwrap();
    let dispatcher = Dispatcher::from_definition(upstream.clone(), def, &config).unwrap();
    (dispatcher, upstream)
}

/// The task's envelope, how its error was counted, and how long it took on the paused clock.
async fn forecast(dispatcher: &Dispatcher) -> (Value, Option<ErrorKind>, Duration) {
    forecast_until(dispatcher, &CancellationToken::new()).await
}

async fn forecast_until(
    dispatcher: &Dispatcher,
    interrupt: &CancellationToken,
) -> (Value, Option<ErrorKind>, Duration) {
    let started = Instant::now();
    let answered = dispatcher
        .dispatch(task("forecast", "{}", ""), interrupt)
        .await;
    let envelope = serde_json::from_str(&answered.done.result).unwrap();
    (envelope, answered.error, started.elapsed())
}

fn task(action: &str, payload: &str, account: &str) -> IncomingTask {
    IncomingTask {
        id: "t-1".into(),
        action: action.into(),
        payload: bytes::Bytes::from(payload.to_owned()),
        account: bytes::Bytes::from(account.to_owned()),
    }
}

fn within(wait: Duration, ceiling_ms: u64) -> bool {
    let ceiling = Duration::from_millis(ceiling_ms);
    wait >= ceiling / 2 && wait <= ceiling
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_after_equal_jitter_waits() {
    for _ in 0..50 {
        let steps = vec![
            Step::Fail(transient("upstream 503")),
            Step::Fail(transient("upstream 503")),
            Step::Succeed,
        ];
        let (dispatcher, upstream) = weather(steps, |a| {
            a.retry(policy());
        });
        let (envelope, error, _) = forecast(&dispatcher).await;
        assert_eq!(envelope["status"], "success", "{envelope}");
        assert_eq!(
            envelope["data"]["response"],
            json!({ "temperature_c": 21 }),
            "a success after retries is just the success"
        );
        assert_eq!(error, None);
        let gaps = upstream.gaps();
        assert_eq!(gaps.len(), 2, "three calls");
        assert!(within(gaps[0], 200) && within(gaps[1], 400), "{gaps:?}");
        assert_eq!(
            dispatcher
                .metrics()
                .snapshot()
                .action("forecast")
                .unwrap()
                .retries,
            2
        );
    }
}

#[tokio::test(start_paused = true)]
async fn each_try_has_a_context_of_its_own_with_the_time_left() {
    let steps = vec![Step::Fail(transient("upstream 503")), Step::Succeed];
    let (dispatcher, upstream) = weather(steps, |a| {
        a.retry(policy());
    });
    let started = Instant::now();
    forecast(&dispatcher).await;
    let calls = upstream.calls();
    let task_deadline = started + Duration::from_secs(30);
    assert!(calls.iter().all(|(_, ctx)| ctx.deadline() == task_deadline));
    assert!(!calls[0].1.is_cancelled() && !calls[1].1.is_cancelled());

    let steps = vec![Step::Fail(transient("upstream 503")), Step::Succeed];
    let (dispatcher, upstream) = weather(steps, |a| {
        a.retry_with_attempt_timeout(policy(), Duration::from_secs(2));
    });
    forecast(&dispatcher).await;
    for (called, ctx) in upstream.calls() {
        assert_eq!(ctx.deadline(), called + Duration::from_secs(2));
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_a_floor_for_the_wait() {
    let slow_down = ActionError::new("upstream 429").retry_after(Duration::from_secs(3));
    let (dispatcher, upstream) = weather(vec![Step::Fail(slow_down), Step::Succeed], |a| {
        a.retry(policy());
    });
    let (envelope, _, _) = forecast(&dispatcher).await;
    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(upstream.gaps(), [Duration::from_secs(3)]);
}

#[tokio::test(start_paused = true)]
async fn no_wait_ends_past_the_deadline() {
    let slow_down = ActionError::new("upstream 429").retry_after(Duration::from_secs(5));
    let (dispatcher, upstream) = weather(vec![Step::Fail(slow_down), Step::Succeed], |a| {
        a.timeout(Duration::from_secs(1)).retry(policy());
    });
    let (envelope, error, took) = forecast(&dispatcher).await;
    assert_eq!(envelope["status"], "error", "{envelope}");
    assert_eq!(envelope["message"], "upstream 429");
    assert_eq!(
        envelope["data"]["response"]["details"],
        json!({ "attempts": 1 })
    );
    assert_eq!(
        (error, took),
        (Some(ErrorKind::ActionError), Duration::ZERO)
    );
    assert_eq!(upstream.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_try_that_overruns_its_attempt_timeout_is_stopped_and_retried() {
    let (dispatcher, upstream) = weather(vec![Step::Hang, Step::Succeed], |a| {
        a.retry_with_attempt_timeout(policy(), Duration::from_secs(1));
    });
    let (envelope, error, _) = forecast(&dispatcher).await;
    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(error, None);
    let calls = upstream.calls();
    assert!(calls[0].1.is_cancelled(), "the overrun try's context");
    let gap = upstream.gaps()[0];
    assert!(
        gap >= Duration::from_millis(1100) && gap <= Duration::from_millis(1200),
        "one second, then the first wait: {gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn tries_that_all_overrun_answer_the_last_timeout_with_the_attempts() {
    let steps = vec![Step::Hang, Step::Hang, Step::Hang];
    let (dispatcher, _) = weather(steps, |a| {
        a.retry_with_attempt_timeout(policy(), Duration::from_millis(1500));
    });
    let (envelope, error, _) = forecast(&dispatcher).await;
    assert_eq!(envelope["message"], "attempt 3 timed out after 1.5s");
    assert_eq!(
        envelope["data"]["response"],
        json!({
            "error": "attempt 3 timed out after 1.5s",
            "error_code": "ATTEMPT_TIMEOUT",
            "details": { "attempt_timeout_s": 1.5, "attempts": 3 },
        })
    );
    assert_eq!(error, Some(ErrorKind::Timeout));
}

#[tokio::test(start_paused = true)]
async fn the_tasks_own_timeout_still_ends_the_tries() {
    let steps = vec![Step::Fail(transient("upstream 503")), Step::Hang];
    let (dispatcher, upstream) = weather(steps, |a| {
        a.timeout(Duration::from_secs(2)).retry(policy());
    });
    let (envelope, error, took) = forecast(&dispatcher).await;
    assert_eq!(envelope["message"], "Task execution timed out after 2s");
    assert_eq!(
        (error, took),
        (Some(ErrorKind::Timeout), Duration::from_secs(2))
    );
    assert!(upstream.calls()[1].1.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn when_the_tries_run_out_the_last_error_carries_their_number() {
    let last = transient("still 503")
        .with_code("UPSTREAM_DOWN")
        .with_details(json!({ "city": "Oslo" }));
    let steps = vec![
        Step::Fail(transient("upstream 503")),
        Step::Fail(transient("upstream 503")),
        Step::Fail(last),
        Step::Succeed,
    ];
    let (dispatcher, upstream) = weather(steps, |a| {
        a.retry(policy());
    });
    let (envelope, error, _) = forecast(&dispatcher).await;
    assert_eq!(envelope["message"], "still 503");
    assert_eq!(
        envelope["data"]["response"],
        json!({
            "error": "still 503",
            "error_code": "UPSTREAM_DOWN",
            "details": { "city": "Oslo", "attempts": 3 },
        })
    );
    assert_eq!(error, Some(ErrorKind::ActionError));
    assert_eq!(upstream.calls().len(), 3, "attempts count the first try");
}

#[tokio::test(start_paused = true)]
async fn errors_not_transient_panics_and_refused_input_are_tried_once() {
    let not_found = ActionError::new("no such city").with_code("NOT_FOUND");
    let cases = [
        (Step::Fail(not_found), ErrorKind::ActionError),
        (Step::Panic, ErrorKind::Panic),
        (Step::RefuseInput, ErrorKind::InvalidPayload),
    ];
    for (step, kind) in cases {
        let (dispatcher, upstream) = weather(vec![step, Step::Succeed], |a| {
            a.retry(policy());
        });
        let (envelope, error, took) = forecast(&dispatcher).await;
        assert_eq!(envelope["status"], "error", "{envelope}");
        assert_eq!((error, took), (Some(kind), Duration::ZERO));
        assert_eq!(upstream.calls().len(), 1, "{kind}");
        if kind == ErrorKind::ActionError {
            assert_eq!(
                envelope["data"]["response"]["details"],
                json!({ "attempts": 1 })
            );
        }
        assert_eq!(
            dispatcher
                .metrics()
                .snapshot()
                .action("forecast")
                .unwrap()
                .retries,
            0
        );
    }
}

#[tokio::test(start_paused = true)]
async fn each_try_takes_the_rate_limit_budget_again() {
    let steps = vec![
        Step::Fail(transient("upstream 503")),
        Step::Fail(transient("upstream 503")),
        Step::Succeed,
    ];
    let (dispatcher, upstream) = weather(steps, |a| {
        a.rate_limit(in_process(
            Some(RateSpec::new(2, Duration::from_secs(60))),
            None,
            None,
        ))
        .retry(policy());
    });
    let (envelope, error, _) = forecast(&dispatcher).await;
    assert_eq!(envelope["status"], "limit", "{envelope}");
    assert_eq!(error, None);
    assert!(envelope["data"]["response"]["wait_time"].as_f64().unwrap() > 0.0);
    assert_eq!(upstream.calls().len(), 2, "the third try was refused");
    let figures = dispatcher.metrics().snapshot();
    let figures = figures.action("forecast").unwrap();
    assert_eq!(
        (figures.admitted, figures.limited, figures.retries),
        (2, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_a_wait_between_tries() {
    let slow_down = ActionError::new("upstream 429").retry_after(Duration::from_secs(10));
    let (dispatcher, upstream) = weather(vec![Step::Fail(slow_down), Step::Succeed], |a| {
        a.retry(policy());
    });
    let interrupt = CancellationToken::new();
    let shut_down = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        interrupt.cancel();
    };
    let ((envelope, error, took), ()) =
        tokio::join!(forecast_until(&dispatcher, &interrupt), shut_down);
    assert_eq!(envelope["data"]["response"]["error_code"], "SHUTDOWN");
    assert_eq!(
        (error, took),
        (Some(ErrorKind::Shutdown), Duration::from_secs(1))
    );
    assert_eq!(upstream.calls().len(), 1);
}

#[test]
fn attempts_go_into_the_details_whatever_their_shape() {
    let details = |given: Value| {
        let response = ActionResponse::from_error(ActionError::new("e").with_details(given));
        with_attempts(response, 2).response()["details"].clone()
    };
    assert_eq!(details(Value::Null), json!({ "attempts": 2 }));
    assert_eq!(details(json!({ "a": 1 })), json!({ "a": 1, "attempts": 2 }));
    assert_eq!(details(json!([1])), json!({ "value": [1], "attempts": 2 }));
    let success = ActionResponse::success(json!({ "details": null }));
    assert_eq!(with_attempts(success.clone(), 2), success);
    let own = ActionResponse::with_status(Status::Error, None, json!("down"));
    assert_eq!(with_attempts(own.clone(), 2), own);
}
