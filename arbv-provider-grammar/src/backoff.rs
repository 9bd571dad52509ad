//! Backoff ranges: `backoff = "200ms..5s"`, the first wait and the longest.

use std::fmt;
use std::time::Duration;

use crate::duration::{Bare, DurationError, parse_duration};

/// The waits of a retry schedule: `first..cap`, each a duration with its unit. The first wait
/// is above zero (a retry at once would hit the same failure) and the cap is at least the first.
///
/// ```
/// use std::time::Duration;
/// use arbv_provider_grammar::BackoffRange;
/// let range: BackoffRange = "200ms..5s".parse().unwrap();
/// assert_eq!((range.first, range.cap), (Duration::from_millis(200), Duration::from_secs(5)));
/// assert!("5s..200ms".parse::<BackoffRange>().is_err());
/// assert!("200ms".parse::<BackoffRange>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffRange {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub cap: Duration,
}

/// Why a text is not a backoff range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackoffError {
    /// Not `first..cap`.
    Malformed,
    /// One side is not a duration.
    Duration(DurationError),
    /// The first wait is zero.
    ZeroFirst,
    /// The cap is below the first wait.
    CapBelowFirst,
}

impl fmt::Display for BackoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackoffError::Malformed => f.write_str(
                "write the first wait and the longest, two durations joined by `..`, such as \"200ms..5s\"",
            ),
            BackoffError::Duration(error) => write!(f, "{error}, on each side of `..`"),
            BackoffError::ZeroFirst => f.write_str(
                "the first wait must be above zero (a retry at once meets the same failure), such as \"200ms..5s\"",
            ),
            BackoffError::CapBelowFirst => {
                f.write_str("the longest wait (after `..`) must be at least the first")
            }
        }
    }
}

impl std::error::Error for BackoffError {}

impl std::str::FromStr for BackoffRange {
    type Err = BackoffError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (first, cap) = text.split_once("..").ok_or(BackoffError::Malformed)?;
        if cap.starts_with('.') || first.trim().is_empty() || cap.trim().is_empty() {
            return Err(BackoffError::Malformed);
        }
        let first = parse_duration(first, Bare::Refused).map_err(BackoffError::Duration)?;
        let cap = parse_duration(cap, Bare::Refused).map_err(BackoffError::Duration)?;
        if first.is_zero() {
            return Err(BackoffError::ZeroFirst);
        }
        if cap < first {
            return Err(BackoffError::CapBelowFirst);
        }
        Ok(Self { first, cap })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let range = |text: &str| text.parse::<BackoffRange>();
        assert_eq!(
            range("1s..1s"),
            Ok(BackoffRange {
                first: Duration::from_secs(1),
                cap: Duration::from_secs(1)
            })
        );
        assert_eq!(
            range(" 100ms .. 1m ").map(|r| r.cap),
            Ok(Duration::from_secs(60))
        );
        assert_eq!(range("200ms-5s"), Err(BackoffError::Malformed));
        assert_eq!(range("..5s"), Err(BackoffError::Malformed));
        assert_eq!(range("1s...5s"), Err(BackoffError::Malformed));
        assert_eq!(range("0s..5s"), Err(BackoffError::ZeroFirst));
        assert_eq!(range("5s..1s"), Err(BackoffError::CapBelowFirst));
        assert!(matches!(range("200..5s"), Err(BackoffError::Duration(_))));
    }
}
