//! What an action's rate-limit keys mean once they are read together with the provider's
//! default: which monitor guards the action, and the conflicts between keys.

use std::time::Duration;

use arbv_provider_grammar::RateSpec;
use darling::util::SpannedValue;
use proc_macro2::Span;
use syn::Path;

use crate::errors::Errors;
use crate::value::{Burst, MinDelay, RateLimitArg};

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
        rate: Option<RateSpec>,
        /// `burst = N`.
        burst: Option<u32>,
        /// `min_delay = "…"`.
        min_delay: Option<Duration>,
    },
    /// `rate_limit = path`: `path()` is the monitor.
    Monitor(Path),
}

impl ActionLimit {
    /// True when a monitor guards the action, its own or the provider's.
    pub fn is_limited(&self, provider_default: Option<&RateLimitArg>) -> bool {
        match self {
            ActionLimit::Off => false,
            ActionLimit::Inherit => {
                provider_default.is_some_and(|l| !matches!(l, RateLimitArg::None))
            }
            ActionLimit::InProcess { .. } | ActionLimit::Monitor(_) => true,
        }
    }
}

/// The action's rate-limit keys as written.
#[derive(Clone, Copy, Default)]
pub struct LimitKeys<'a> {
    /// `rate_limit`.
    pub rate_limit: Option<&'a RateLimitArg>,
    /// `burst`.
    pub burst: Option<&'a SpannedValue<Burst>>,
    /// `min_delay`.
    pub min_delay: Option<&'a SpannedValue<MinDelay>>,
}

/// Reads an action's keys against the provider's default. Every conflict is recorded in
/// `errors` at its key, and the action then inherits the default.
pub fn resolve(
    keys: LimitKeys<'_>,
    provider_default: Option<&RateLimitArg>,
    errors: &mut Errors,
) -> ActionLimit {
    let refinements: Vec<(Span, &str)> = keys
        .burst
        .map(|b| (b.span(), "burst"))
        .into_iter()
        .chain(keys.min_delay.map(|m| (m.span(), "min_delay")))
        .collect();
    let refine = |rate: Option<RateSpec>| ActionLimit::InProcess {
        rate,
        burst: keys.burst.map(|b| b.0),
        min_delay: keys.min_delay.map(|m| m.0),
    };
    // Each refinement key is reported at its place, in a message that names it.
    let conflict = |why: fn(&str) -> String, errors: &mut Errors| {
        for (span, key) in &refinements {
            errors.push(syn::Error::new(*span, why(key)));
        }
        ActionLimit::Inherit
    };
    match keys.rate_limit {
        Some(RateLimitArg::Rate(rate)) => refine(Some(*rate)),
        Some(RateLimitArg::None) if !refinements.is_empty() => conflict(
            |key| {
                format!(
                    "`{key}` refines a rate limit, and this action has `rate_limit = none`: remove one of them"
                )
            },
            errors,
        ),
        Some(RateLimitArg::None) => ActionLimit::Off,
        Some(RateLimitArg::Monitor(_)) if !refinements.is_empty() => conflict(
            |key| {
                format!(
                    "`{key}` cannot refine a monitor built in code: give it the setting where the monitor is built"
                )
            },
            errors,
        ),
        Some(RateLimitArg::Monitor(path)) => ActionLimit::Monitor(path.clone()),
        None if refinements.is_empty() => ActionLimit::Inherit,
        // Refinements alone refine the provider's rate, as a budget of the action's own.
        None => match (provider_default, keys.burst) {
            (Some(RateLimitArg::Rate(rate)), _) => refine(Some(*rate)),
            (_, Some(burst)) => {
                errors.push(syn::Error::new(
                    burst.span(),
                    "`burst` refines a rate: add `rate_limit = \"N/period\"` to this action or to `#[provider]`",
                ));
                ActionLimit::Inherit
            }
            (_, None) => refine(None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> RateLimitArg {
        RateLimitArg::Rate(text.parse().unwrap())
    }

    fn spanned<T>(value: T) -> SpannedValue<T> {
        SpannedValue::new(value, Span::call_site())
    }

    fn resolved(keys: LimitKeys<'_>, default: Option<&RateLimitArg>) -> (ActionLimit, Vec<String>) {
        let mut errors = Errors::default();
        let limit = resolve(keys, default, &mut errors);
        (limit, errors.messages())
    }

    #[test]
    fn refinements_refine_the_actions_rate_or_the_providers() {
        let own = rate("10/m");
        let burst = spanned(Burst(3));
        let (limit, errors) = resolved(
            LimitKeys {
                rate_limit: Some(&own),
                burst: Some(&burst),
                ..LimitKeys::default()
            },
            None,
        );
        assert!(errors.is_empty());
        assert!(
            matches!(limit, ActionLimit::InProcess { rate: Some(r), burst: Some(3), min_delay: None } if r.count == 10)
        );
        let default = rate("5/s");
        let burst = spanned(Burst(2));
        let (limit, _) = resolved(
            LimitKeys {
                burst: Some(&burst),
                ..LimitKeys::default()
            },
            Some(&default),
        );
        assert!(
            matches!(limit, ActionLimit::InProcess { rate: Some(r), burst: Some(2), .. } if r.count == 5)
        );
        let delay = spanned(MinDelay(Duration::from_millis(500)));
        let (limit, _) = resolved(
            LimitKeys {
                min_delay: Some(&delay),
                ..LimitKeys::default()
            },
            None,
        );
        assert!(matches!(
            limit,
            ActionLimit::InProcess {
                rate: None,
                burst: None,
                min_delay: Some(_)
            }
        ));
        let (limit, _) = resolved(LimitKeys::default(), Some(&default));
        assert!(matches!(limit, ActionLimit::Inherit));
        assert!(limit.is_limited(Some(&default)) && !limit.is_limited(None));
    }

    #[test]
    fn conflicts_are_errors_at_each_key() {
        let none = RateLimitArg::None;
        let path = RateLimitArg::Monitor(syn::parse_quote!(shared));
        let burst = spanned(Burst(2));
        let delay = spanned(MinDelay(Duration::from_millis(500)));
        let (_, errors) = resolved(
            LimitKeys {
                rate_limit: Some(&none),
                burst: Some(&burst),
                min_delay: Some(&delay),
            },
            None,
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("`burst` refines")
                && errors[1].starts_with("`min_delay` refines")
        );
        let (_, errors) = resolved(
            LimitKeys {
                rate_limit: Some(&path),
                burst: Some(&burst),
                ..LimitKeys::default()
            },
            None,
        );
        assert_eq!(errors.len(), 1);
        let (_, errors) = resolved(
            LimitKeys {
                burst: Some(&burst),
                ..LimitKeys::default()
            },
            None,
        );
        assert!(errors[0].contains("add `rate_limit"), "{errors:?}");
    }
}
