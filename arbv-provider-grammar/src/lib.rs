//! The text forms of arbv-provider's settings, parsed by one piece of code wherever they are
//! written:
//!
//! - by `#[action(...)]` and `#[provider(...)]` at compile time (`timeout = "1.5s"`,
//!   `rate_limit = "10/s"`, `per = "account.id"`, `min_delay = "500ms"`, `backoff = "200ms..5s"`);
//! - by the runtime for environment values (`TASK_EXECUTION_TIMEOUT=1.5s`,
//!   `PROVIDER_MAX_TASK_BYTES=4MiB`).
//!
//! | form | grammar | examples |
//! |---|---|---|
//! | [duration](parse_duration) | a number and a unit, several terms allowed; a bare number is seconds where [`Bare::Seconds`] | `500ms`, `1.5s`, `2m`, `1h 30m`, `1d` |
//! | [rate](RateSpec) | `N/period`, the period a unit with an optional whole multiple | `10/s`, `200/h`, `5/10s`, `100/15m` |
//! | [per path](PerPath) | `account.` or `payload.` and a dotted field path | `account.ad_account_id`, `payload.user.id` |
//! | [backoff range](BackoffRange) | two durations joined by `..`: the first wait and the longest | `200ms..5s`, `1s..1m` |
//! | [byte size](parse_size) | a whole number, bare or with a binary unit | `65536`, `512KiB`, `4MiB`, `1GiB` |
//!
//! Errors say what is accepted, so a caller can show them as they are, after naming the key or
//! the variable.

#![warn(missing_docs)]

mod backoff;
mod duration;
mod per;
mod rate;
mod size;

pub use backoff::{BackoffError, BackoffRange};
pub use duration::{Bare, DurationError, MAX_DURATION, parse_duration};
pub use per::{PerPath, PerPathError, PerSource};
pub use rate::{RateSpec, RateSpecError};
pub use size::{SizeError, parse_size};
