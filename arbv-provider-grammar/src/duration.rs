//! Durations: `500ms`, `1.5s`, `2m`, `1h 30m`, and (where the caller allows it) bare seconds.
//! Unit forms are humantime's; this module adds bare seconds, the one-year bound and the
//! refusal of numbers split by spaces.

use std::fmt;
use std::time::Duration;

/// The longest duration any setting takes: a year (365 days).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a number without a unit means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bare {
    /// Seconds: `"30"` is 30 s, `"2.5"` is 2.5 s. For environment variables, which have always
    /// been read in seconds.
    Seconds,
    /// Refused: the unit must be written (attributes in code, where `"30"` would be ambiguous
    /// to a reader).
    Refused,
}

/// Why a text is not a duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// Not a duration at all; `bare` says whether bare seconds were accepted.
    Malformed {
        /// What a bare number would have meant.
        bare: Bare,
    },
    /// Longer than [`MAX_DURATION`].
    TooLong,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Malformed { bare: Bare::Refused } => f.write_str(
                "write a number and a unit, such as \"500ms\", \"30s\", \"1.5s\", \"2m\" or \"1h 30m\"",
            ),
            DurationError::Malformed { bare: Bare::Seconds } => f.write_str(
                "write seconds (\"30\", \"2.5\") or a number and a unit (\"500ms\", \"1.5s\", \"2m\", \"1h 30m\")",
            ),
            DurationError::TooLong => f.write_str("give at most a year (\"365d\")"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration.
///
/// - Numbers with units, one term or several, with or without spaces between terms: `500ms`,
///   `1.5s`, `0.25m`, `1h 30m`, `1m30s`, `2days 4h`. Units: `ns`, `us`, `ms`, `s`, `m`, `h`,
///   `d`, `w`, and their long names (`sec`, `min`, `hour`, `day`, plurals), as humantime reads
///   them.
/// - A bare number (`30`, `2.5`) is seconds with [`Bare::Seconds`] and refused with
///   [`Bare::Refused`].
/// - Refused everywhere: signs, exponents, a number split by a space (`1 2s`).
///
/// Zero parses (`0s`): whether it is allowed is the caller's to say. Longer than
/// [`MAX_DURATION`] is refused.
///
/// ```
/// use std::time::Duration;
/// use arbv_provider_grammar::{Bare, parse_duration};
/// assert_eq!(parse_duration("1.5s", Bare::Refused), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("1h 30m", Bare::Refused), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("2.5", Bare::Seconds), Ok(Duration::from_millis(2500)));
/// assert!(parse_duration("30", Bare::Refused).is_err());
/// ```
pub fn parse_duration(text: &str, bare: Bare) -> Result<Duration, DurationError> {
    let text = text.trim();
    let malformed = DurationError::Malformed { bare };
    if split_number(text) {
        return Err(malformed);
    }
    let duration = if text.ends_with(|c: char| c.is_ascii_digit()) {
        match bare {
            Bare::Seconds => bare_seconds(text),
            Bare::Refused => None,
        }
    } else {
        humantime::parse_duration(text).ok()
    }
    .ok_or(malformed)?;
    if duration > MAX_DURATION {
        return Err(DurationError::TooLong);
    }
    Ok(duration)
}

/// Digits on both sides of a space (`"1 2s"`), which humantime would read as one number (12 s).
fn split_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, b)| {
        b.is_ascii_whitespace()
            && i > 0
            && bytes[i - 1].is_ascii_digit()
            && bytes[i..]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(u8::is_ascii_digit)
    })
}

/// `<digits>[.<digits>]` seconds, in whole nanoseconds (digits below a nanosecond are dropped).
fn bare_seconds(number: &str) -> Option<Duration> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') {
        return None;
    }
    let seconds = whole.parse::<u64>().ok()?;
    let fraction = &fraction[..fraction.len().min(9)];
    let nanos = if fraction.is_empty() {
        0
    } else {
        let scale = 10u32.pow(u32::try_from(9 - fraction.len()).ok()?);
        fraction.parse::<u32>().ok()? * scale
    };
    Some(Duration::new(seconds, nanos))
}
