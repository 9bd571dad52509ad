//! What an action gives back: its data, an [`ActionError`], or an [`ActionResponse`] that
//! chooses the status itself. [`IntoActionResponse`] turns each of them into one answer.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::envelope::Status;

/// An error an action returns: a message for a person, an optional machine-readable code, and
/// optional details. In the envelope it becomes `{"error", "error_code", "details"}`.
///
/// Any `std::error::Error` converts into it with `?`, keeping its text.
///
/// ```
/// use arbv_provider_core::ActionError;
/// use serde_json::json;
/// let err = ActionError::new("ad account is disabled")
///     .with_code("ACCOUNT_DISABLED")
///     .with_details(json!({"account": "act_1"}));
/// assert_eq!(err.message(), "ad account is disabled");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ActionError {
    message: String,
    code: Option<String>,
    details: Value,
    transient: bool,
    retry_after: Option<Duration>,
}

impl ActionError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
            details: Value::Null,
            transient: false,
            retry_after: None,
        }
    }

    /// Marks the error as transient: trying the same call again may succeed (a timeout, a 503,
    /// a dropped connection). [`Context::retry`](crate::Context::retry) retries only such
    /// errors.
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    /// Marks the error as transient, and says the other side asked to wait `wait` before
    /// trying again (an HTTP `Retry-After`): the next try waits at least that long.
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.transient = true;
        self.retry_after = Some(wait);
        self
    }

    /// Adds a machine-readable code (`error_code` in the envelope).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Adds details (`details` in the envelope).
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).unwrap_or_else(|e| json!(e.to_string()));
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The code, if any.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The details (`null` when none were given).
    pub fn details(&self) -> &Value {
        &self.details
    }
}

impl crate::retry::Transient for ActionError {
    fn is_transient(&self) -> bool {
        self.transient
    }

    fn retry_after_hint(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ActionError {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(message)
    }
}

/// An answer whose status the action chooses: `success`, `error`, `limit` (with a wait time)
/// or `warning`.
///
/// ```
/// use arbv_provider_core::{ActionResponse, Status};
/// use serde_json::json;
/// use std::time::Duration;
/// let r = ActionResponse::warning("partial data", json!({"rows": 10}));
/// assert_eq!(r.status(), Status::Warning);
/// let r = ActionResponse::limit(Duration::from_secs(5));
/// assert_eq!(r.response()["wait_time"], 5.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ActionResponse {
    status: Status,
    message: Option<String>,
    response: Value,
    /// Whether the error it answers may pass when the action runs again: read by an action's
    /// declared retries, never sent.
    transient: bool,
    /// How long the error asked to wait before the next try; never sent either.
    retry_after: Option<Duration>,
}

impl ActionResponse {
    /// Success with this data and the default message.
    pub fn success(data: impl Serialize) -> Self {
        match serde_json::to_value(data) {
            Ok(response) => Self::with_status(Status::Success, None, response),
            Err(e) => unserialisable(&e),
        }
    }

    /// An error with this message.
    pub fn error(message: impl Into<String>) -> Self {
        Self::from_error(ActionError::new(message))
    }

    /// An error built from an [`ActionError`]. It keeps whether the error is
    /// [transient](ActionError::transient) and its [`Retry-After`](ActionError::retry_after),
    /// for the action's declared retries ([`ActionDef::retry`](crate::ActionDef::retry)); the
    /// envelope does not show them.
    pub fn from_error(error: ActionError) -> Self {
        let mut response = Map::new();
        response.insert("error".into(), Value::String(error.message.clone()));
        if let Some(code) = error.code {
            response.insert("error_code".into(), Value::String(code));
        }
        response.insert("details".into(), error.details);
        Self {
            transient: error.transient,
            retry_after: error.retry_after,
            ..Self::with_status(Status::Error, Some(error.message), Value::Object(response))
        }
    }

    /// A rate-limit answer: the hub should retry after `wait`. A zero wait is raised to 1 ms,
    /// since `wait_time` is always above zero.
    pub fn limit(wait: Duration) -> Self {
        Self::limit_with(wait, Map::new())
    }

    /// A rate-limit answer carrying the limiter's figures beside `wait_time`.
    pub fn limit_with(wait: Duration, mut figures: Map<String, Value>) -> Self {
        let wait_s = wait.as_secs_f64().max(0.001);
        figures.insert("wait_time".into(), json!(wait_s));
        Self::with_status(
            Status::Limit,
            Some(format!(
                "Rate limit exceeded. Please wait {} seconds",
                format_seconds(wait_s)
            )),
            Value::Object(figures),
        )
    }

    /// A warning with this message and data.
    pub fn warning(message: impl Into<String>, data: impl Serialize) -> Self {
        match serde_json::to_value(data) {
            Ok(response) => Self::with_status(Status::Warning, Some(message.into()), response),
            Err(e) => unserialisable(&e),
        }
    }

    /// Any status, message and response.
    pub fn with_status(status: Status, message: Option<String>, response: Value) -> Self {
        Self {
            status,
            message,
            response,
            transient: false,
            retry_after: None,
        }
    }

    /// Replaces the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The message, if one was set.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The envelope's `response`.
    pub fn response(&self) -> &Value {
        &self.response
    }

    /// The envelope's `response`, to change in place.
    pub(crate) fn response_mut(&mut self) -> &mut Value {
        &mut self.response
    }

    /// True for an error that says running the action again may succeed: one made by
    /// [`from_error`](Self::from_error) from a [transient](ActionError::transient) error.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// How long the error asked to wait before the action runs again, if it did
    /// ([`ActionError::retry_after`]).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Splits into status, message and response.
    pub fn into_parts(self) -> (Status, Option<String>, Value) {
        (self.status, self.message, self.response)
    }
}

/// Seconds for a person: `1`, `0.25`, `12.5`.
pub(crate) fn format_seconds(seconds: f64) -> String {
    let rounded = (seconds * 1000.0).round() / 1000.0;
    let text = format!("{rounded:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn unserialisable(error: &serde_json::Error) -> ActionResponse {
    ActionResponse::from_error(
        ActionError::new(format!(
            "The action's result could not be serialised to JSON: {error}"
        ))
        .with_code("UNSERIALISABLE_RESULT"),
    )
}

/// Turns what an action returns into its answer.
///
/// Named for the [`ActionResponse`] it makes, apart from the HTTP frameworks' `IntoResponse`
/// (axum's, which the dev hub uses), so that both can be imported side by side.
///
/// Implemented for `Result<T, E>` where `T: Serialize` and `E: Into<ActionError>`, for
/// [`ActionResponse`] and `Result<ActionResponse, E>`, and for [`Json<T>`]. The `#[action]` macro
/// wraps a plain `T: Serialize` return value in [`Json`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an action's return type",
    label = "the action returns this",
    note = "return a `T: Serialize`, `Result<T, E>` with `T: Serialize` and `E: Into<ActionError>`, or `ActionResponse`"
)]
pub trait IntoActionResponse {
    /// The answer.
    fn into_response(self) -> ActionResponse;
}

/// Serialises any `T: Serialize` as a success.
#[derive(Clone, Debug)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoActionResponse for Json<T> {
    fn into_response(self) -> ActionResponse {
        ActionResponse::success(self.0)
    }
}

impl IntoActionResponse for ActionResponse {
    fn into_response(self) -> ActionResponse {
        self
    }
}

impl<T: Serialize, E: Into<ActionError>> IntoActionResponse for Result<T, E> {
    fn into_response(self) -> ActionResponse {
        match self {
            Ok(data) => ActionResponse::success(data),
            Err(error) => ActionResponse::from_error(error.into()),
        }
    }
}

impl<E: Into<ActionError>> IntoActionResponse for Result<ActionResponse, E> {
    fn into_response(self) -> ActionResponse {
        match self {
            Ok(response) => response,
            Err(error) => ActionResponse::from_error(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn errors_keep_their_causes() {
        let err: ActionError = Outer(std::io::Error::other("inner")).into();
        assert_eq!(err.message(), "outer: inner");
    }

    #[test]
    fn error_response_shape() {
        let r = Err::<Value, _>(ActionError::new("boom").with_code("E1")).into_response();
        assert_eq!(r.status(), Status::Error);
        assert_eq!(r.message(), Some("boom"));
        assert_eq!(
            r.response(),
            &json!({"error": "boom", "error_code": "E1", "details": null})
        );
    }

    #[test]
    fn limit_wait_is_positive_and_readable() {
        let r = ActionResponse::limit(Duration::ZERO);
        assert!(r.response()["wait_time"].as_f64().unwrap() > 0.0);
        let r = ActionResponse::limit(Duration::from_millis(1500));
        assert_eq!(
            r.message(),
            Some("Rate limit exceeded. Please wait 1.5 seconds")
        );
    }
    #[test]
    fn an_error_response_keeps_whether_it_is_transient_but_does_not_show_it() {
        let slow_down = ActionError::new("429").retry_after(Duration::from_secs(3));
        let r = Err::<Value, _>(slow_down).into_response();
        assert!(r.is_transient());
        assert_eq!(r.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(
            r.response(),
            &json!({"error": "429", "details": null}),
            "the envelope's shape is unchanged"
        );
        let r = Err::<ActionResponse, _>(ActionError::new("503").transient()).into_response();
        assert_eq!((r.is_transient(), r.retry_after()), (true, None));
        let r = ActionResponse::error("no such city");
        assert_eq!((r.is_transient(), r.retry_after()), (false, None));
        assert!(!ActionResponse::success(1).is_transient());
    }
}
