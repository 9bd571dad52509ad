//! The values of attribute keys, each parsed by darling through `FromMeta` and checked in the
//! grammar the runtime uses (`arbv-provider-grammar`), so that what compiles is what the
//! runtime accepts. A value that needs its place later (for an error across keys) is held in a
//! `darling::util::SpannedValue` by the argument structs.

use std::time::Duration;

use arbv_provider_grammar::{
    BackoffRange, Bare, DurationError, PerPath, PerSource, RateSpec, parse_duration,
};
use darling::ast::NestedMeta;
use darling::util::SpannedValue;
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

/// `cache = "10m"` (the provider's cache backend) or `cache = redis("10m")`: how long a
/// `success` answer is kept, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheArg {
    /// How long an answer is kept.
    pub ttl: Duration,
    /// Kept in Redis (`redis("…")`), else in the provider's backend.
    pub redis: bool,
}

const CACHE_FORMS: &str = "`cache` takes how long to keep a `success` answer: `cache = \"10m\"`, or `cache = redis(\"10m\")` to keep it in Redis, shared by every process of the provider";

impl FromMeta for CacheArg {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        let (text, redis) = match expr {
            Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            }) => (text, false),
            Expr::Call(call) => {
                let Expr::Path(ExprPath {
                    path, qself: None, ..
                }) = &*call.func
                else {
                    return Err(Error::custom(CACHE_FORMS).with_span(&call.func));
                };
                if !path.is_ident("redis") {
                    return Err(Error::custom(format!(
                        "unknown cache store `{}`: {CACHE_FORMS}",
                        darling::util::path_to_string(path)
                    ))
                    .with_span(path));
                }
                match call.args.iter().collect::<Vec<_>>().as_slice() {
                    [
                        Expr::Lit(ExprLit {
                            lit: Lit::Str(text),
                            ..
                        }),
                    ] => (text, true),
                    _ => return Err(Error::custom(CACHE_FORMS).with_span(&call.args)),
                }
            }
            other => return Err(Error::custom(CACHE_FORMS).with_span(other)),
        };
        let ttl = positive_duration("cache", "keeps nothing", &Lit::Str(text.clone()))?;
        Ok(CacheArg { ttl, redis })
    }
}

/// `cache_key = "payload.city"`, `cache_key = ["payload.city", "payload.units"]`, or
/// `cache_key = path::to::function` (`fn(&Payload) -> impl Serialize`).
#[derive(Debug, Clone)]
pub enum CacheKeyArg {
    /// These paths only.
    Paths(Vec<(PerPath, proc_macro2::Span)>),
    /// What this function makes of the payload.
    Function(Path),
}

const CACHE_KEY_FORMS: &str = "`cache_key` takes a field path (`cache_key = \"payload.city\"`), a list of them (`cache_key = [\"payload.city\", \"payload.units\"]`), or the path of a function of the payload (`cache_key = city_key`, `fn city_key(payload: &Query) -> impl Serialize`)";

impl FromMeta for CacheKeyArg {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        let path_of = |expr: &Expr| match expr {
            Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            }) => PerPath::parse(&text.value())
                .map(|path| (path, text.span()))
                .map_err(|error| Error::custom(format!("`cache_key`: {error}")).with_span(text)),
            other => Err(Error::custom(CACHE_KEY_FORMS).with_span(other)),
        };
        match expr {
            Expr::Lit(_) => Ok(CacheKeyArg::Paths(vec![path_of(expr)?])),
            Expr::Array(array) if array.elems.is_empty() => Err(Error::custom(
                "`cache_key = []` keys every task alike: name at least one field, or remove `cache_key` to key by the whole input",
            )
            .with_span(array)),
            Expr::Array(array) => {
                let mut errors = darling::Error::accumulator();
                let mut paths: Vec<(PerPath, proc_macro2::Span)> = Vec::new();
                for element in &array.elems {
                    if let Some((path, span)) = errors.handle(path_of(element)) {
                        if paths.iter().any(|(seen, _)| seen == &path) {
                            errors.push(
                                Error::custom(format!("`{path}` is named twice in `cache_key`"))
                                    .with_span(element),
                            );
                        } else {
                            paths.push((path, span));
                        }
                    }
                }
                errors.finish_with(CacheKeyArg::Paths(paths))
            }
            Expr::Path(ExprPath { path, qself: None, .. }) => {
                Ok(CacheKeyArg::Function(path.clone()))
            }
            other => Err(Error::custom(CACHE_KEY_FORMS).with_span(other)),
        }
    }
}

/// `cache_refresh = "refresh"`: a boolean field of the payload that, when `true`, runs the
/// action and replaces the kept answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRefresh(pub String);

impl FromMeta for CacheRefresh {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        let field = match value {
            Lit::Str(text) => Some(text.value()),
            _ => None,
        }
        .filter(|field| !field.is_empty() && !field.contains(['.', ' ']));
        field.map(CacheRefresh).ok_or_else(|| {
            Error::custom(
                "`cache_refresh` names a boolean field at the top of the payload: `cache_refresh = \"refresh\"`",
            )
            .with_span(value)
        })
    }
}

/// `retry(attempts = 3, backoff = "200ms..5s", attempt_timeout = "2s")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryArg {
    /// Tries in all, the first one included.
    pub attempts: u32,
    /// The first wait and the longest; the runtime's defaults without it.
    pub backoff: Option<BackoffRange>,
    /// The time one try may take.
    pub attempt_timeout: Option<Duration>,
}

/// The most tries `retry` takes: more would hammer a failing service for little gain.
const MAX_ATTEMPTS: u32 = 100;

/// The keys inside `retry(..)`, as written.
#[derive(Debug, FromMeta)]
struct RetryKeys {
    attempts: Option<SpannedValue<Attempts>>,
    backoff: Option<Backoff>,
    attempt_timeout: Option<AttemptTimeout>,
}

impl RetryKeys {
    const KEYS: &[&str] = &["attempts", "backoff", "attempt_timeout"];
}

const RETRY_FORM: &str = "write `retry(attempts = 3)`, with `backoff = \"200ms..5s\"` and `attempt_timeout = \"2s\"` if wanted; `attempts` counts the first try, and there is no unbounded default";

impl FromMeta for RetryArg {
    fn from_word() -> darling::Result<Self> {
        Err(Error::custom(format!(
            "`retry` needs the number of tries: {RETRY_FORM}"
        )))
    }

    fn from_value(value: &Lit) -> darling::Result<Self> {
        Err(Error::custom(RETRY_FORM).with_span(value))
    }

    fn from_list(items: &[NestedMeta]) -> darling::Result<Self> {
        let keys: RetryKeys = crate::attr::parse_list("retry(...)", items, RetryKeys::KEYS)?;
        let Some(attempts) = keys.attempts else {
            return Err(Error::custom(format!(
                "`retry` needs `attempts`: {RETRY_FORM}"
            )));
        };
        Ok(RetryArg {
            attempts: attempts.0,
            backoff: keys.backoff.map(|b| b.0),
            attempt_timeout: keys.attempt_timeout.map(|t| t.0),
        })
    }
}

/// `attempts = N`, 2 to [`MAX_ATTEMPTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Attempts(u32);

impl FromMeta for Attempts {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        let n = match value {
            Lit::Int(int) => int.base10_parse::<u32>().ok(),
            _ => None,
        };
        match n {
            Some(1) => Err(Error::custom(
                "`attempts = 1` tries once and never retries: give 2 or more (the first try counts), or remove `retry`",
            )
            .with_span(value)),
            Some(n @ 2..=MAX_ATTEMPTS) => Ok(Attempts(n)),
            _ => Err(Error::custom(format!(
                "`attempts` is a whole number of tries from 2 to {MAX_ATTEMPTS}, the first try included: `attempts = 3`"
            ))
            .with_span(value)),
        }
    }
}

/// `backoff = "200ms..5s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backoff(BackoffRange);

impl FromMeta for Backoff {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        let Lit::Str(text) = value else {
            return Err(Error::custom(
                "`backoff` is a string: the first wait and the longest, `backoff = \"200ms..5s\"`",
            )
            .with_span(value));
        };
        text.value().parse().map(Backoff).map_err(|error| {
            Error::custom(format!("invalid backoff \"{}\": {error}", text.value())).with_span(text)
        })
    }
}

/// `attempt_timeout = "2s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AttemptTimeout(Duration);

impl FromMeta for AttemptTimeout {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        positive_duration("attempt_timeout", "leaves no time to try", value).map(AttemptTimeout)
    }
}

/// `cache_ttl_env = "CACHE_TTL"` or `cache_mark = "cached"`: a name, checked to be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(pub String);

impl Name {
    fn parse(value: &Lit, valid: fn(&str) -> bool, form: &str) -> darling::Result<Self> {
        match value {
            Lit::Str(text) if valid(&text.value()) => Ok(Name(text.value())),
            _ => Err(Error::custom(form).with_span(value)),
        }
    }
}

/// `cache_ttl_env = "CACHE_TTL"`: the environment variable that replaces the TTL at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTtlEnv(pub Name);

impl FromMeta for CacheTtlEnv {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        let valid = |name: &str| {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        Name::parse(
            value,
            valid,
            "`cache_ttl_env` names an environment variable (letters, digits and `_`): `cache_ttl_env = \"CACHE_TTL\"`",
        )
        .map(CacheTtlEnv)
    }
}

/// `cache_mark = "cached"`: the answer's top-level field a hit sets to `true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMark(pub Name);

impl FromMeta for CacheMark {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        Name::parse(
            value,
            |name| !name.is_empty() && !name.contains(['.', ' ']),
            "`cache_mark` names a field at the top of the action's answer, set to `true` on a hit: `cache_mark = \"cached\"`",
        )
        .map(CacheMark)
    }
}
