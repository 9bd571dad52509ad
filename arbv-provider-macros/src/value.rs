//! The values of attribute keys, each parsed by darling through `FromMeta` and checked in the
//! grammar the runtime uses (`arbv-provider-grammar`), so that what compiles is what the
//! runtime accepts. A value that needs its place later (for an error across keys) is held in a
//! `darling::util::SpannedValue` by the argument structs.

use std::time::Duration;

use arbv_provider_grammar::{Bare, DurationError, PerPath, PerSource, RateSpec, parse_duration};
use darling::{Error, FromMeta};
use syn::{Expr, ExprLit, ExprPath, Lit, Path};

/// `rate_limit = "N/period"`, `rate_limit = none`, or `rate_limit = path::to::function`.
#[derive(Debug, Clone)]
pub enum RateLimitArg {
    /// `"N/period"`.
    Rate(RateSpec),
    /// `none`: no limit.
    None,
    /// A function returning a monitor built in code.
    Monitor(Path),
}

impl FromMeta for RateLimitArg {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        match expr {
            Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) => text
                .value()
                .parse::<RateSpec>()
                .map(RateLimitArg::Rate)
                .map_err(|error| Error::custom(error).with_span(text)),
            Expr::Path(ExprPath { path, qself: None, .. }) if path.is_ident("none") => {
                Ok(RateLimitArg::None)
            }
            Expr::Path(ExprPath { path, qself: None, .. }) => Ok(RateLimitArg::Monitor(path.clone())),
            other => Err(Error::custom(
                "`rate_limit` takes a rate (\"10/s\", \"200/h\", \"5/10s\"), `none`, or the path of a function that returns a monitor",
            )
            .with_span(other)),
        }
    }
}

/// `timeout = "30s"`: how long the action may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl FromMeta for Timeout {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        positive_duration("timeout", "leaves no time to run", value).map(Timeout)
    }
}

/// `min_delay = "500ms"`: the least time between two calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinDelay(pub Duration);

impl FromMeta for MinDelay {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        positive_duration("min_delay", "does nothing", value).map(MinDelay)
    }
}

/// A string literal in the duration grammar, with its unit written, above zero.
fn positive_duration(key: &str, zero_means: &str, value: &Lit) -> darling::Result<Duration> {
    let Lit::Str(text) = value else {
        return Err(Error::custom(format!(
            "`{key}` is a string with a unit: `{key} = \"500ms\"`"
        ))
        .with_span(value));
    };
    let written = text.value();
    let error = |message: String| Error::custom(message).with_span(text);
    match parse_duration(&written, Bare::Refused) {
        Ok(duration) if duration.is_zero() => Err(error(format!(
            "a {key} of \"{written}\" {zero_means}: give a duration above zero, such as \"30s\""
        ))),
        Ok(duration) => Ok(duration),
        Err(DurationError::TooLong) => Err(error(format!(
            "a {key} of \"{written}\" is too long: {}",
            DurationError::TooLong
        ))),
        Err(malformed) => Err(error(format!(
            "invalid duration \"{written}\": {malformed}"
        ))),
    }
}

/// `burst = N`, N at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst(pub u32);

impl FromMeta for Burst {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        match value {
            Lit::Int(int) => int.base10_parse::<u32>().ok().filter(|n| *n > 0),
            _ => None,
        }
        .map(Burst)
        .ok_or_else(|| {
            Error::custom("`burst` is a whole number of calls, at least 1: `burst = 20`")
                .with_span(value)
        })
    }
}

/// `per = "account.<field>"` or `per = "payload.<field>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Per(pub PerPath);

impl Per {
    /// True when the path reads the account.
    pub fn reads_account(&self) -> bool {
        self.0.source() == PerSource::Account
    }
}

impl FromMeta for Per {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        let Lit::Str(text) = value else {
            return Err(Error::custom(
                "`per` is a string naming a field: `per = \"account.ad_account_id\"`",
            )
            .with_span(value));
        };
        PerPath::parse(&text.value())
            .map(Per)
            .map_err(|error| Error::custom(format!("`per`: {error}")).with_span(text))
    }
}

/// `on_limit = "reject"` (the default) or `on_limit = "wait"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLimit {
    /// Answer `limit` at once.
    Reject,
    /// Wait for the budget within the timeout.
    Wait,
}

impl FromMeta for OnLimit {
    fn from_string(value: &str) -> darling::Result<Self> {
        match value {
            "wait" => Ok(OnLimit::Wait),
            "reject" => Ok(OnLimit::Reject),
            _ => Err(Error::custom(
                "`on_limit` is \"reject\" (answer `limit` at once, the default) or \"wait\" (wait for the budget within the timeout)",
            )),
        }
    }
}
