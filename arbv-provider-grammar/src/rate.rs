//! Rates: `"N/period"`, at most N calls in any window of that length.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A rate written as `"N/period"`: `"10/s"`, `"200/h"`, `"5/10s"`, `"100/15m"`.
///
/// The period is a unit (`s`, `m`, `h`, `d`, or `sec`, `min`, `hour`, `day` and their plurals)
/// optionally preceded by a whole number. Periods are whole seconds: a window shorter than a
/// second is better written as a smaller count per second.
///
/// ```
/// use arbv_provider_grammar::RateSpec;
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

/// Why a rate string is not usable; holds the text as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateSpecError(pub String);

impl fmt::Display for RateSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a rate: write \"N/period\" such as \"10/s\", \"200/h\" or \"5/10s\" (units: s, m, h, d)",
            self.0
        )
    }
}

impl std::error::Error for RateSpecError {}

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
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
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
