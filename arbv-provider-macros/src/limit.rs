//! The rate-limit keys of `#[provider]` and `#[action]`: their grammar, checked at compile time,
//! and what an action's keys mean once the provider's default is known.
//!
//! The `"N/period"` grammar is the one `arbv_provider_core::rate_limit::RateSpec` parses at run
//! time (for rates read from the environment); a proc-macro crate cannot share that code
//! without making the runtime a compile-time dependency, so it is written again here and both
//! are tested against the same list of forms.

use std::time::Duration;

use darling::{Error, FromMeta};
use proc_macro2::Span;
use syn::{Expr, ExprLit, ExprPath, Lit, LitStr, Path};

use crate::attr::parse_duration_of;

const RATE_FORMS: &str =
    "write \"N/period\" such as \"10/s\", \"200/h\" or \"5/10s\" (units: s, m, h, d)";

/// `rate_limit = "N/period"`, `rate_limit = none`, or `rate_limit = path::to::function`.
#[derive(Debug, Clone)]
pub enum RateLimitArg {
    /// `"N/period"`.
    Rate(Rate),
    /// `none`: no limit.
    None,
    /// A function returning a monitor built in code.
    Monitor(Path),
}

/// A parsed `"N/period"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Calls per period.
    pub count: u32,
    /// The period.
    pub period: Duration,
}

/// Parses `"N/period"`; the error says what is accepted.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let error = || format!("invalid rate \"{text}\": {RATE_FORMS}");
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
    let unit: u64 = match period[digits..].trim() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return Err(error()),
    };
    let seconds = multiple.checked_mul(unit).ok_or_else(error)?;
    Ok(Rate {
        count,
        period: Duration::from_secs(seconds),
    })
}

impl FromMeta for RateLimitArg {
    fn from_expr(expr: &Expr) -> darling::Result<Self> {
        match expr {
            Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) => parse_rate(&text.value())
                .map(RateLimitArg::Rate)
                .map_err(|message| Error::custom(message).with_span(text)),
            Expr::Path(ExprPath { path, qself: None, .. }) if path.is_ident("none") => {
                Ok(RateLimitArg::None)
            }
            Expr::Path(ExprPath { path, qself: None, .. }) => Ok(RateLimitArg::Monitor(path.clone())),
            other => Err(Error::custom(format!(
                "`rate_limit` takes a rate (\"10/s\"), `none`, or the path of a function that returns a monitor; {RATE_FORMS}"
            ))
            .with_span(other)),
        }
    }
}

/// `burst = N`, N at least 1.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    /// How many at once.
    pub size: u32,
    /// The literal.
    pub span: Span,
}

impl FromMeta for Burst {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        let parsed = match value {
            Lit::Int(int) => int.base10_parse::<u32>().ok().filter(|n| *n > 0),
            _ => None,
        };
        parsed
            .map(|size| Burst {
                size,
                span: value.span(),
            })
            .ok_or_else(|| {
                Error::custom("`burst` is a whole number of calls, at least 1: `burst = 20`")
                    .with_span(value)
            })
    }
}

/// `min_delay = "500ms"`.
#[derive(Debug, Clone, Copy)]
pub struct MinDelay {
    /// The delay.
    pub delay: Duration,
    /// The literal.
    pub span: Span,
}

impl FromMeta for MinDelay {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        let Lit::Str(text) = value else {
            return Err(
                Error::custom("`min_delay` is a string: `min_delay = \"500ms\"`").with_span(value),
            );
        };
        parse_duration_of("min_delay", &text.value())
            .map(|delay| MinDelay {
                delay,
                span: text.span(),
            })
            .map_err(|message| Error::custom(message).with_span(text))
    }
}

/// `per = "account.<field>"` or `per = "payload.<field>"`.
#[derive(Debug, Clone)]
pub struct Per {
    /// As written.
    pub text: String,
    /// `account` (else `payload`).
    pub from_account: bool,
    /// The literal.
    pub lit: LitStr,
}

impl FromMeta for Per {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        let usage = "`per` names a field: \"account.<field>\" or \"payload.<field>\", e.g. \"account.ad_account_id\"";
        let Lit::Str(lit) = value else {
            return Err(Error::custom(usage).with_span(value));
        };
        let text = lit.value();
        let mut parts = text.split('.');
        let from_account = match parts.next() {
            Some("account") => true,
            Some("payload") => false,
            _ => return Err(Error::custom(usage).with_span(lit)),
        };
        let fields: Vec<&str> = parts.collect();
        if fields.is_empty() || fields.iter().any(|f| f.is_empty()) {
            return Err(Error::custom(usage).with_span(lit));
        }
        Ok(Per {
            text,
            from_account,
            lit: lit.clone(),
        })
    }
}

/// `on_limit = "wait"` or `on_limit = "reject"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOnLimit(pub bool);

impl FromMeta for WaitOnLimit {
    fn from_string(value: &str) -> darling::Result<Self> {
        match value {
            "wait" => Ok(WaitOnLimit(true)),
            "reject" => Ok(WaitOnLimit(false)),
            _ => Err(Error::custom(
                "`on_limit` is \"reject\" (answer `limit` at once, the default) or \"wait\" (wait for the budget within the timeout)",
            )),
        }
    }
}

/// What guards an action, once its keys and the provider's default are read together.
#[derive(Debug, Clone, Default)]
pub enum ActionLimit {
    /// Nothing declared: the provider's default, if any.
    #[default]
    Inherit,
    /// `rate_limit = none`.
    Off,
    /// An in-process monitor for these settings.
    InProcess {
        /// `"N/period"`, the action's or the provider's.
        rate: Option<Rate>,
        /// `burst = N`.
        burst: Option<u32>,
        /// `min_delay = "…"`.
        min_delay: Option<Duration>,
    },
    /// `rate_limit = path`: `path()` is the monitor.
    Monitor(Path),
}

/// The action's rate-limit keys as written.
pub struct LimitKeys<'a> {
    /// `rate_limit`.
    pub rate_limit: Option<&'a RateLimitArg>,
    /// `burst`.
    pub burst: Option<Burst>,
    /// `min_delay`.
    pub min_delay: Option<MinDelay>,
}

/// Reads an action's keys against the provider's default. `Err` holds every conflict, each at
/// its key.
pub fn resolve(
    keys: LimitKeys<'_>,
    provider_default: Option<&RateLimitArg>,
) -> Result<ActionLimit, Vec<syn::Error>> {
    let refinements: Vec<(Span, &str)> = keys
        .burst
        .map(|b| (b.span, "burst"))
        .into_iter()
        .chain(keys.min_delay.map(|m| (m.span, "min_delay")))
        .collect();
    let refine = |rate: Option<Rate>| ActionLimit::InProcess {
        rate,
        burst: keys.burst.map(|b| b.size),
        min_delay: keys.min_delay.map(|m| m.delay),
    };
    match keys.rate_limit {
        Some(RateLimitArg::Rate(rate)) => Ok(refine(Some(*rate))),
        Some(RateLimitArg::None) if !refinements.is_empty() => Err(refinements
            .iter()
            .map(|(span, key)| syn::Error::new(*span, format!("`{key}` refines a rate limit, and this action has `rate_limit = none`: remove one of them")))
            .collect()),
        Some(RateLimitArg::None) => Ok(ActionLimit::Off),
        Some(RateLimitArg::Monitor(_)) if !refinements.is_empty() => Err(refinements
            .iter()
            .map(|(span, key)| syn::Error::new(*span, format!("`{key}` cannot refine a monitor built in code: give it the setting where the monitor is built")))
            .collect()),
        Some(RateLimitArg::Monitor(path)) => Ok(ActionLimit::Monitor(path.clone())),
        None if refinements.is_empty() => Ok(ActionLimit::Inherit),
        // Refinements alone refine the provider's rate, as a budget of the action's own.
        None => match provider_default {
            Some(RateLimitArg::Rate(rate)) => Ok(refine(Some(*rate))),
            _ if keys.burst.is_some() => Err(vec![syn::Error::new(
                keys.burst.map_or_else(Span::call_site, |b| b.span),
                "`burst` refines a rate: add `rate_limit = \"N/period\"` to this action or to `#[provider]`",
            )]),
            _ => Ok(refine(None)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_grammar_matches_the_runtime() {
        // The same forms as `RateSpec`'s tests in arbv-provider-core.
        for (text, count, secs) in [
            ("10/s", 10, 1),
            ("10/m", 10, 60),
            ("200/h", 200, 3600),
            ("1000/d", 1000, 86_400),
            ("5/10s", 5, 10),
            ("100/15m", 100, 900),
            (" 3 / min ", 3, 60),
        ] {
            let rate = parse_rate(text).unwrap();
            assert_eq!(
                (rate.count, rate.period),
                (count, Duration::from_secs(secs)),
                "{text}"
            );
        }
        for text in [
            "10/x", "0/s", "-1/s", "10", "/s", "ten/s", "10/0s", "10/", "1.5/s", "10/s/s",
        ] {
            assert!(parse_rate(text).unwrap_err().contains("\"10/s\""), "{text}");
        }
    }

    /// This copy of the grammar and `RateSpec`'s agree on any text: both accept it with the same
    /// rate, or both refuse it.
    fn agrees_with_the_runtime(text: &str) {
        let runtime = text
            .parse::<arbv_provider_core::rate_limit::RateSpec>()
            .ok()
            .map(|spec| (spec.count, spec.period));
        let here = parse_rate(text).ok().map(|rate| (rate.count, rate.period));
        assert_eq!(here, runtime, "{text:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        #[test]
        fn any_text_parses_as_the_runtime_parses_it(text in ".{0,24}") {
            agrees_with_the_runtime(&text);
        }

        #[test]
        fn any_rate_parses_as_the_runtime_parses_it(
            count in proptest::prop_oneof![proptest::prelude::any::<u32>(), 0u32..3],
            multiple in proptest::option::of(proptest::prop_oneof![proptest::prelude::any::<u64>(), 0u64..100]),
            unit in proptest::sample::select(&["s", "sec", "m", "minutes", "h", "hour", "d", "days", "ms", "x", ""][..]),
            space in proptest::sample::select(&[" ", "", "\t"][..]),
        ) {
            let multiple = multiple.map(|m| m.to_string()).unwrap_or_default();
            agrees_with_the_runtime(&format!("{space}{count}{space}/{space}{multiple}{unit}{space}"));
        }
    }

    fn rate(text: &str) -> RateLimitArg {
        RateLimitArg::Rate(parse_rate(text).unwrap())
    }

    fn burst(size: u32) -> Burst {
        Burst {
            size,
            span: Span::call_site(),
        }
    }

    #[test]
    fn refinements_refine_the_actions_rate_or_the_providers() {
        let own = rate("10/m");
        let resolved = resolve(
            LimitKeys {
                rate_limit: Some(&own),
                burst: Some(burst(3)),
                min_delay: None,
            },
            None,
        )
        .unwrap();
        assert!(
            matches!(resolved, ActionLimit::InProcess { rate: Some(r), burst: Some(3), min_delay: None } if r.count == 10)
        );
        let default = rate("5/s");
        let resolved = resolve(
            LimitKeys {
                rate_limit: None,
                burst: Some(burst(2)),
                min_delay: None,
            },
            Some(&default),
        )
        .unwrap();
        assert!(
            matches!(resolved, ActionLimit::InProcess { rate: Some(r), burst: Some(2), .. } if r.count == 5)
        );
        let delay = MinDelay {
            delay: Duration::from_millis(500),
            span: Span::call_site(),
        };
        let resolved = resolve(
            LimitKeys {
                rate_limit: None,
                burst: None,
                min_delay: Some(delay),
            },
            None,
        )
        .unwrap();
        assert!(matches!(
            resolved,
            ActionLimit::InProcess {
                rate: None,
                burst: None,
                min_delay: Some(_)
            }
        ));
        assert!(matches!(
            resolve(
                LimitKeys {
                    rate_limit: None,
                    burst: None,
                    min_delay: None
                },
                Some(&default)
            )
            .unwrap(),
            ActionLimit::Inherit
        ));
    }

    #[test]
    fn conflicts_are_errors() {
        let none = RateLimitArg::None;
        assert!(
            resolve(
                LimitKeys {
                    rate_limit: Some(&none),
                    burst: Some(burst(2)),
                    min_delay: None
                },
                None
            )
            .is_err()
        );
        let path = RateLimitArg::Monitor(syn::parse_quote!(shared));
        assert!(
            resolve(
                LimitKeys {
                    rate_limit: Some(&path),
                    burst: Some(burst(2)),
                    min_delay: None
                },
                None
            )
            .is_err()
        );
        assert!(
            resolve(
                LimitKeys {
                    rate_limit: None,
                    burst: Some(burst(2)),
                    min_delay: None
                },
                None
            )
            .is_err()
        );
    }
}
