//! The result envelope every task is answered with, whatever happened (the README's envelope table).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outcome of a task, as the hub reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The action ran and returned its data.
    Success,
    /// The task failed: bad input, an error from the action, a timeout, a panic.
    Error,
    /// A rate limit refused the task; `response.wait_time` says when to try again.
    Limit,
    /// The action ran but wants the hub to notice something.
    Warning,
}

impl Status {
    /// The status as written on the wire: `success`, `error`, `limit` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Limit => "limit",
            Status::Warning => "warning",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"status", "message", "data": {provider, action, timezone, now, now_utc, response}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The outcome.
    pub status: Status,
    /// A sentence for a person; never empty.
    pub message: String,
    /// Where and when, and the action's data or the error's details.
    pub data: EnvelopeData,
}

/// The `data` member of an [`Envelope`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeData {
    /// The provider's name.
    pub provider: String,
    /// The task's action, as the hub named it.
    pub action: String,
    /// The provider's IANA time zone.
    pub timezone: String,
    /// RFC 3339 with microseconds, in the provider's time zone.
    pub now: String,
    /// The same instant in UTC (`+00:00`).
    pub now_utc: String,
    /// The action's data, or the error's details.
    pub response: Value,
    /// `true` when the answer was kept from an earlier run of the action (a cache hit); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    /// When a cached answer was kept: RFC 3339 in UTC; present only with `cached`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_at: Option<String>,
}

impl Envelope {
    /// Builds an envelope stamped with the current time in `timezone`.
    pub fn new(
        status: Status,
        message: impl Into<String>,
        provider: &str,
        action: &str,
        timezone: Tz,
        response: Value,
    ) -> Self {
        Self::at(
            Utc::now(),
            status,
            message,
            provider,
            action,
            timezone,
            response,
        )
    }

    /// Builds an envelope stamped with `instant`.
    pub fn at(
        instant: DateTime<Utc>,
        status: Status,
        message: impl Into<String>,
        provider: &str,
        action: &str,
        timezone: Tz,
        response: Value,
    ) -> Self {
        let mut message = message.into();
        if message.trim().is_empty() {
            message = default_message(status, action);
        }
        Self {
            status,
            message,
            data: EnvelopeData {
                provider: provider.to_owned(),
                action: action.to_owned(),
                timezone: timezone.name().to_owned(),
                now: instant
                    .with_timezone(&timezone)
                    .to_rfc3339_opts(SecondsFormat::Micros, false),
                now_utc: instant.to_rfc3339_opts(SecondsFormat::Micros, false),
                response,
                cached: None,
                cached_at: None,
            },
        }
    }

    /// The envelope as JSON text.
    pub fn to_json(&self) -> String {
        // An envelope holds only strings and `Value`s, which always serialise.
        serde_json::to_string(self).expect("an envelope always serialises")
    }
}

/// The message of an envelope whose producer gave none.
pub(crate) fn default_message(status: Status, action: &str) -> String {
    match status {
        Status::Success => format!("Action '{action}' completed successfully"),
        Status::Error => format!("Action '{action}' failed"),
        Status::Limit => format!("Action '{action}' was rate limited"),
        Status::Warning => format!("Action '{action}' completed with a warning"),
    }
}

/// The longest piece of a task's input (an action name, a parse error) an envelope repeats, in
/// bytes: the answer to a hostile task stays small, whatever the task holds.
pub const MAX_ECHOED_BYTES: usize = 256;

/// `text`, cut to at most `max` bytes (at a character boundary) with a marker saying how long it
/// was.
pub(crate) fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!(
        "{}… ({} bytes in all)",
        &text[..char_floor(text, max)],
        text.len()
    ))
}

/// `value` as text, at most `max` bytes of it, with a marker when cut. Formatting stops at the
/// limit, so a `Display` that would print a whole document (a schema error quoting its value)
/// costs only `max`.
pub(crate) fn display_bounded(value: &dyn fmt::Display, max: usize) -> String {
    let mut out = BoundedText {
        text: String::new(),
        max,
        cut: false,
    };
    // An error here means the limit was reached (or the Display failed): keep what was written.
    let _ = write!(out, "{value}");
    if out.cut {
        out.text.push_str("… (truncated)");
    }
    out.text
}

/// The largest character boundary of `text` at or below `at` (`str::floor_char_boundary` is newer
/// than the workspace's minimum Rust).
fn char_floor(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

struct BoundedText {
    text: String,
    max: usize,
    cut: bool,
}

impl fmt::Write for BoundedText {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        let room = self.max - self.text.len();
        if piece.len() <= room {
            self.text.push_str(piece);
            return Ok(());
        }
        self.text.push_str(&piece[..char_floor(piece, room)]);
        self.cut = true;
        Err(fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn stamps_local_and_utc_time_with_offsets() {
        let instant = Utc.with_ymd_and_hms(2026, 3, 20, 7, 30, 0).unwrap()
            + chrono::Duration::microseconds(123_456);
        let envelope = Envelope::at(
            instant,
            Status::Success,
            "ok",
            "my-provider",
            "echo",
            chrono_tz::Europe::Moscow,
            json!({"echo": "hi"}),
        );
        let value: Value = serde_json::from_str(&envelope.to_json()).unwrap();
        assert_eq!(
            value,
            json!({"status": "success", "message": "ok", "data": {
                "provider": "my-provider", "action": "echo", "timezone": "Europe/Moscow",
                "now": "2026-03-20T10:30:00.123456+03:00",
                "now_utc": "2026-03-20T07:30:00.123456+00:00",
                "response": {"echo": "hi"}}})
        );
    }

    #[test]
    fn shortens_long_text_at_a_character_boundary() {
        assert_eq!(shorten("echo", 8), "echo");
        let long = "é".repeat(1000);
        let short = shorten(&long, 7);
        assert_eq!(short, "ééé… (2000 bytes in all)");
    }

    #[test]
    fn stops_formatting_at_the_limit() {
        struct Endless;
        impl fmt::Display for Endless {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Would print forever if the writer did not stop it.
                loop {
                    f.write_str("ab")?;
                }
            }
        }
        assert_eq!(display_bounded(&Endless, 5), "ababa… (truncated)");
        assert_eq!(display_bounded(&"short", 5), "short");
        let big = json!({"k": "v".repeat(1 << 20)});
        assert!(display_bounded(&big, 100).len() < 120);
    }

    #[test]
    fn follows_daylight_saving_time() {
        let zone = chrono_tz::America::New_York;
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        let w = Envelope::at(winter, Status::Success, "", "p", "a", zone, Value::Null);
        let s = Envelope::at(summer, Status::Success, "", "p", "a", zone, Value::Null);
        assert!(w.data.now.ends_with("-05:00"), "{}", w.data.now);
        assert!(s.data.now.ends_with("-04:00"), "{}", s.data.now);
        assert_eq!(w.message, "Action 'a' completed successfully");
    }
}
