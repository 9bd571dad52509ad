//! The result envelope every task is answered with, whatever happened (the README's envelope table).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use chrono::{DateTime, Datelike, FixedOffset, Offset, SecondsFormat, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::timezone::Zone;

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
        timezone: &Zone,
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
        timezone: &Zone,
        response: Value,
    ) -> Self {
        let mut message = message.into();
        if message.trim().is_empty() {
            message = default_message(status, action);
        }
        let now_utc = rfc3339_micros(&instant);
        let now = match timezone.local_time(&instant) {
            Some(local) => rfc3339_micros(&local),
            None => now_utc.clone(),
        };
        Self {
            status,
            message,
            data: EnvelopeData {
                provider: provider.to_owned(),
                action: action.to_owned(),
                timezone: timezone.name().to_owned(),
                now,
                now_utc,
                response,
                cached: None,
                cached_at: None,
            },
        }
    }

    /// The envelope as JSON text: what `serde_json::to_string` makes of it, byte for byte.
    pub fn to_json(&self) -> String {
        let data = &self.data;
        Parts {
            status: self.status,
            message: Message::Given(&self.message),
            provider: &data.provider,
            action: &data.action,
            timezone: &data.timezone,
            now: Stamp::Text(&data.now),
            now_utc: Stamp::Text(&data.now_utc),
            response: &data.response,
            cached: data.cached,
            cached_at: data.cached_at.as_deref().map(Stamp::Text),
        }
        .to_json()
    }
}

/// A task's envelope as the dispatcher keeps it until it is sent: what it knows of the answer,
/// with the provider, the action and the time zone added only when it is written. Written
/// straight to JSON text, it makes none of the strings an [`Envelope`] holds (this runs for
/// every task).
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: Status,
    /// Blank for the status's default message.
    pub(crate) message: String,
    pub(crate) response: Value,
    /// When the answer was made: the envelope's `now`.
    pub(crate) at: DateTime<Utc>,
    /// When a cached answer was kept; `None` when it was not a cache hit.
    pub(crate) cached_at: Option<DateTime<Utc>>,
}

impl Reply {
    /// An answer made now.
    pub(crate) fn new(status: Status, message: String, response: Value) -> Self {
        Self {
            status,
            message,
            response,
            at: Utc::now(),
            cached_at: None,
        }
    }

    /// The envelope's JSON text for `provider`'s action `action` in `timezone`: what
    /// [`Envelope::at`] and [`Envelope::to_json`] make of the same parts, byte for byte.
    pub(crate) fn to_json(&self, provider: &str, action: &str, timezone: &Zone) -> String {
        Parts {
            status: self.status,
            message: if self.message.trim().is_empty() {
                Message::Default
            } else {
                Message::Given(&self.message)
            },
            provider,
            action,
            timezone: timezone.name(),
            now: timezone
                .local_time(&self.at)
                .map_or(Stamp::Utc(self.at), Stamp::Local),
            now_utc: Stamp::Utc(self.at),
            response: &self.response,
            cached: self.cached_at.map(|_| true),
            cached_at: self.cached_at.map(Stamp::Utc),
        }
        .to_json()
    }
}

/// An envelope's message.
enum Message<'a> {
    Given(&'a str),
    /// The status's default message (see [`default_message`]).
    Default,
}

/// An envelope's timestamp: as text already, or an instant written as RFC 3339.
enum Stamp<'a> {
    Text(&'a str),
    Utc(DateTime<Utc>),
    Local(DateTime<FixedOffset>),
}

/// What an envelope's JSON text is written from.
struct Parts<'a> {
    status: Status,
    message: Message<'a>,
    provider: &'a str,
    action: &'a str,
    timezone: &'a str,
    now: Stamp<'a>,
    now_utc: Stamp<'a>,
    response: &'a Value,
    cached: Option<bool>,
    cached_at: Option<Stamp<'a>>,
}

impl Parts<'_> {
    /// Written by hand around the action's data, because it is written for every task: the keys
    /// are fixed text, and strings that need no escaping (names, time zones, timestamps, most
    /// messages) are copied as they are, where serde_json would escape-check each one.
    fn to_json(&self) -> String {
        let message_len = match self.message {
            Message::Given(text) => text.len(),
            Message::Default => 40 + self.action.len(),
        };
        let mut out = Vec::with_capacity(
            240 + message_len + self.provider.len() + self.action.len() + self.timezone.len(),
        );
        out.extend_from_slice(br#"{"status":""#);
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.extend_from_slice(br#"","message":"#);
        match self.message {
            Message::Given(text) => push_json_str(&mut out, text),
            Message::Default => push_default_message(&mut out, self.status, self.action),
        }
        for (key, value) in [
            (&br#","data":{"provider":"#[..], self.provider),
            (br#","action":"#, self.action),
            (br#","timezone":"#, self.timezone),
        ] {
            out.extend_from_slice(key);
            push_json_str(&mut out, value);
        }
        out.extend_from_slice(br#","now":"#);
        push_stamp(&mut out, &self.now);
        out.extend_from_slice(br#","now_utc":"#);
        push_stamp(&mut out, &self.now_utc);
        out.extend_from_slice(br#","response":"#);
        // A `Value` always serialises (its map keys are strings).
        serde_json::to_writer(&mut out, self.response).expect("a Value always serialises");
        if let Some(cached) = self.cached {
            out.extend_from_slice(if cached {
                br#","cached":true"#
            } else {
                br#","cached":false"#
            });
        }
        if let Some(cached_at) = &self.cached_at {
            out.extend_from_slice(br#","cached_at":"#);
            push_stamp(&mut out, cached_at);
        }
        out.extend_from_slice(b"}}");
        String::from_utf8(out).expect("JSON text built from strings is UTF-8")
    }
}

/// `text` as a JSON string: copied between quotes when no character in it needs escaping (the
/// common case), else escaped by serde_json.
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    if needs_json_escape(text) {
        serde_json::to_writer(out, text).expect("a string always serialises");
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

fn needs_json_escape(text: &str) -> bool {
    // Without an early exit the check vectorises: a whole pass is cheaper than stopping early.
    text.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// [`default_message`] as a JSON string, written without making it first.
fn push_default_message(out: &mut Vec<u8>, status: Status, action: &str) {
    if needs_json_escape(action) {
        return push_json_str(out, &default_message(status, action));
    }
    let (head, tail) = default_message_around(status);
    out.push(b'"');
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(action.as_bytes());
    out.extend_from_slice(tail.as_bytes());
    out.push(b'"');
}

fn push_stamp(out: &mut Vec<u8>, stamp: &Stamp<'_>) {
    let digits = match stamp {
        Stamp::Text(text) => return push_json_str(out, text),
        Stamp::Utc(instant) => rfc3339_digits(instant),
        Stamp::Local(instant) => rfc3339_digits(instant),
    };
    out.push(b'"');
    match digits {
        Ok(digits) => out.extend_from_slice(&digits),
        Err(text) => out.extend_from_slice(text.as_bytes()),
    }
    out.push(b'"');
}

/// `instant` as RFC 3339 with microseconds and a `±hh:mm` offset, as chrono's
/// `to_rfc3339_opts(SecondsFormat::Micros, false)` writes it. Written digit by digit: this runs
/// twice for every task, and chrono's formatter costs several times as much. Instants chrono
/// writes otherwise (years outside 0–9999, offsets with seconds) are left to chrono.
fn rfc3339_micros<Z: TimeZone>(instant: &DateTime<Z>) -> String {
    match rfc3339_digits(instant) {
        Ok(digits) => String::from_utf8(digits.to_vec()).expect("ASCII digits and separators"),
        Err(text) => text,
    }
}

/// [`rfc3339_micros`]'s text as ASCII bytes, or (`Err`) chrono's text for an instant it writes
/// otherwise.
fn rfc3339_digits<Z: TimeZone>(instant: &DateTime<Z>) -> Result<[u8; 32], String> {
    let local = instant.naive_local();
    let offset = instant.offset().fix().local_minus_utc();
    if !(0..=9999).contains(&local.year()) || offset % 60 != 0 {
        return Err(instant.to_rfc3339_opts(SecondsFormat::Micros, false));
    }
    // Leap seconds are nanoseconds past 1e9; chrono writes them as second 60 with the rest.
    let nanos = local.nanosecond();
    let (second, micros) = if nanos >= 1_000_000_000 {
        (60, (nanos - 1_000_000_000) / 1_000)
    } else {
        (local.second(), nanos / 1_000)
    };
    let (sign, offset) = if offset < 0 {
        (b'-', -offset)
    } else {
        (b'+', offset)
    };
    let mut text = *b"0000-00-00T00:00:00.000000+00:00";
    let mut put = |at: usize, digits: usize, mut value: u32| {
        for i in (at..at + digits).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, local.year() as u32);
    put(5, 2, local.month());
    put(8, 2, local.day());
    put(11, 2, local.hour());
    put(14, 2, local.minute());
    put(17, 2, second);
    put(20, 6, micros);
    put(27, 2, (offset / 3600) as u32);
    put(30, 2, (offset % 3600 / 60) as u32);
    text[26] = sign;
    Ok(text)
}

/// The message of an envelope whose producer gave none.
pub(crate) fn default_message(status: Status, action: &str) -> String {
    let (head, tail) = default_message_around(status);
    format!("{head}{action}{tail}")
}

/// The default message's text before and after the action's name.
fn default_message_around(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Success => ("Action '", "' completed successfully"),
        Status::Error => ("Action '", "' failed"),
        Status::Limit => ("Action '", "' was rate limited"),
        Status::Warning => ("Action '", "' completed with a warning"),
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

    fn zone(name: &str) -> Zone {
        name.parse().unwrap()
    }

    #[test]
    fn to_json_writes_what_serde_json_writes() {
        let awkward = [
            "",
            "plain",
            "quote \" and backslash \\",
            "line\nbreak\ttab\u{1}\u{1f}",
            "del \u{7f} and é, 漢字, 🦀",
            "\u{2028}\u{2029}",
        ];
        for text in awkward {
            for (cached, cached_at) in [
                (None, None),
                (Some(true), Some(text.to_owned())),
                (Some(false), None),
            ] {
                let mut envelope = Envelope::at(
                    Utc.with_ymd_and_hms(2026, 3, 20, 7, 30, 0).unwrap(),
                    Status::Warning,
                    text,
                    text,
                    text,
                    &zone("Europe/Paris"),
                    json!({ "k": text, text: [1, 2.5, null, true, { "nested": text }] }),
                );
                envelope.data.cached = cached;
                envelope.data.cached_at = cached_at;
                assert_eq!(
                    envelope.to_json(),
                    serde_json::to_string(&envelope).unwrap(),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn a_reply_is_written_as_its_envelope_is() {
        let at = Utc.with_ymd_and_hms(2026, 3, 20, 7, 30, 0).unwrap()
            + chrono::Duration::microseconds(123_456);
        let kept = Utc.with_ymd_and_hms(2026, 3, 19, 23, 0, 5).unwrap();
        let texts = [
            "",
            "  ",
            "plain",
            "quote \" \\",
            "line\nbreak",
            "é 🦀 \u{2028}",
        ];
        let zones = [Zone::UTC, zone("Europe/Paris"), zone("Asia/Kathmandu")];
        let statuses = [
            Status::Success,
            Status::Error,
            Status::Limit,
            Status::Warning,
        ];
        for (text, zone, status) in texts
            .iter()
            .flat_map(|t| zones.iter().flat_map(move |z| statuses.map(|s| (*t, z, s))))
        {
            for cached_at in [None, Some(kept)] {
                let response = json!({ "k": text, text: [1, null, { "n": text }] });
                let reply = Reply {
                    status,
                    message: text.to_owned(),
                    response: response.clone(),
                    at,
                    cached_at,
                };
                let mut envelope = Envelope::at(at, status, text, "prov", text, zone, response);
                if let Some(kept) = cached_at {
                    envelope.data.cached = Some(true);
                    envelope.data.cached_at = Some(rfc3339_micros(&kept));
                }
                assert_eq!(
                    reply.to_json("prov", text, zone),
                    envelope.to_json(),
                    "{text:?} {zone} {status}"
                );
            }
        }
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let zones = [
            Zone::UTC,
            zone("America/New_York"),
            zone("Asia/Kolkata"),
            zone("Asia/Kathmandu"),
            zone("Pacific/Chatham"),
            zone("America/St_Johns"),
            zone("Europe/Amsterdam"),
        ];
        // A spread of instants: historical (offsets with seconds), epoch, now-ish, far future,
        // sub-second values with leading zeros, and a leap second.
        let mut instants: Vec<DateTime<Utc>> = [
            -2_840_140_800_i64,
            -1_000_000_000,
            0,
            1_000_000_007,
            1_774_000_000,
            4_102_444_799,
            253_402_300_799,
        ]
        .iter()
        .flat_map(|s| {
            [0u32, 7_000, 123_456_789, 999_999_999].map(|n| Utc.timestamp_opt(*s, n).unwrap())
        })
        .collect();
        instants.push(
            chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_micro_opt(23, 59, 59, 1_500_000)
                .unwrap()
                .and_utc(),
        );
        for instant in instants {
            for zone in &zones {
                let local = instant.with_timezone(zone);
                assert_eq!(
                    rfc3339_micros(&local),
                    local.to_rfc3339_opts(SecondsFormat::Micros, false),
                    "{instant:?} in {zone}"
                );
            }
            assert_eq!(
                rfc3339_micros(&instant),
                instant.to_rfc3339_opts(SecondsFormat::Micros, false)
            );
        }
    }

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
            &zone("Europe/Moscow"),
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
        let zone = &zone("America/New_York");
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        let w = Envelope::at(winter, Status::Success, "", "p", "a", zone, Value::Null);
        let s = Envelope::at(summer, Status::Success, "", "p", "a", zone, Value::Null);
        assert!(w.data.now.ends_with("-05:00"), "{}", w.data.now);
        assert!(s.data.now.ends_with("-04:00"), "{}", s.data.now);
        assert_eq!(w.message, "Action 'a' completed successfully");
    }
}
