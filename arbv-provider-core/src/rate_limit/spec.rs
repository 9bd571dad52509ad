//! `"N/period"`: at most N calls in any window of that length.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A rate written as `"N/period"`: `"10/s"`, `"200/h"`, `"5/10s"`, `"100/15m"`.
///
/// The period is a unit (`s`, `m`, `h`, `d`, or `sec`, `min`, `hour`, `day`) optionally preceded
/// by a whole number. `#[action(rate_limit = "...")]` checks the same grammar at compile time.
///
/// ```
/// use arbv_provider_core::rate_limit::RateSpec;
/// let spec: RateSpec = "200/h".parse().unwrap();
/// assert_eq!((spec.count, spec.period.as_secs()), (200, 3600));
/// assert!("10/x".parse::<RateSpec>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSpec {
    /// Calls admitted per period (at least 1).
    pub count: u32,
    /// The window's length (more than zero).
    pub period: Duration,
}

impl RateSpec {
    /// `count` calls per `period`.
    pub const fn new(count: u32, period: Duration) -> Self {
        Self { count, period }
    }
}

/// Why a rate string is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a rate: write \"N/period\" such as \"10/s\", \"200/h\" or \"5/10s\" (units: s, m, h, d)"
)]
pub struct RateSpecError(pub String);

impl FromStr for RateSpec {
    type Err = RateSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || RateSpecError(text.to_owned());
        let (count, period) = text.trim().split_once('/').ok_or_else(error)?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(error)?;
        let period = period.trim();
        let digits = period
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(error)?;
        let multiple: u64 = if digits == 0 {
            1
        } else {
            period[..digits]
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(error)?
        };
        let unit = match period[digits..].trim() {
            "s" | "sec" | "second" | "seconds" => 1,
            "m" | "min" | "minute" | "minutes" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return Err(error()),
        };
        let seconds = multiple.checked_mul(unit).ok_or_else(error)?;
        Ok(Self::new(count, Duration::from_secs(seconds)))
    }
}

impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whole seconds as an integer: through an f64 a period beyond 2^53 s would be rounded and
        // no longer read back as itself.
        if self.period.subsec_nanos() == 0 {
            write!(f, "{}/{}s", self.count, self.period.as_secs())
        } else {
            write!(f, "{}/{}s", self.count, self.period.as_secs_f64())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        for (text, count, secs) in [
            ("10/s", 10, 1),
            ("10/m", 10, 60),
            ("200/h", 200, 3600),
            ("1000/d", 1000, 86_400),
            ("5/10s", 5, 10),
            ("100/15m", 100, 900),
            (" 3 / min ", 3, 60),
        ] {
            let spec: RateSpec = text.parse().unwrap();
            assert_eq!(
                (spec.count, spec.period),
                (count, Duration::from_secs(secs)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_malformed_forms() {
        for text in [
            "10/x", "0/s", "-1/s", "10", "/s", "ten/s", "10/0s", "10/", "1.5/s", "10/s/s",
        ] {
            assert!(text.parse::<RateSpec>().is_err(), "{text}");
        }
    }

    /// Found by the property test `rate_spec_well_formed`: the period was written through an f64.
    #[test]
    fn a_long_period_is_written_back_exactly() {
        let spec: RateSpec = "1/21527749996430671s".parse().unwrap();
        assert_eq!(spec.to_string(), "1/21527749996430671s");
        assert_eq!(spec.to_string().parse::<RateSpec>(), Ok(spec));
    }
}
