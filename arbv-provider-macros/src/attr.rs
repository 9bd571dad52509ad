//! The arguments of `#[provider(...)]` and `#[action(...)]`, parsed with darling.
//!
//! To add a key: add a field to the struct and its name to the struct's `KEYS`. A unit test
//! checks that every listed key reaches darling.

use std::time::Duration;

use darling::ast::NestedMeta;
use darling::util::path_to_string;
use darling::{Error, FromMeta};
use proc_macro2::TokenStream;
use syn::{Attribute, Lit, LitStr, Meta};

use crate::limit::{Burst, MinDelay, Per, RateLimitArg, WaitOnLimit};

/// The arguments of `#[provider(...)]`.
#[derive(Debug, Default, FromMeta)]
pub struct ProviderArgs {
    /// The provider's default name; without it, the type's name in kebab-case.
    pub name: Option<LitStr>,
    /// The rate limit of every action that declares none.
    pub rate_limit: Option<RateLimitArg>,
}

impl ProviderArgs {
    /// Every key `#[provider(...)]` accepts.
    pub const KEYS: &[&str] = &["name", "rate_limit"];

    /// Parses the tokens between the parentheses of `#[provider(...)]`.
    pub fn parse(args: TokenStream) -> darling::Result<Self> {
        let items = NestedMeta::parse_meta_list(args)?;
        parse_list("provider", &items, Self::KEYS)
    }
}

/// The arguments of `#[action(...)]`.
#[derive(Debug, Default, FromMeta)]
pub struct ActionArgs {
    /// The name the hub calls the action by; without it, the method's name.
    pub name: Option<LitStr>,
    /// What the action does; without it, the method's doc comment.
    pub description: Option<LitStr>,
    /// The action's own execution timeout.
    pub timeout: Option<Timeout>,
    /// Its own rate limit, `none`, or a monitor built in code.
    pub rate_limit: Option<RateLimitArg>,
    /// Token-bucket burst size refining the rate.
    pub burst: Option<Burst>,
    /// Minimum spacing between calls.
    pub min_delay: Option<MinDelay>,
    /// The field whose values have separate budgets.
    pub per: Option<Per>,
    /// `on_limit = "wait"`.
    pub on_limit: Option<WaitOnLimit>,
}

impl ActionArgs {
    /// Every key `#[action(...)]` accepts.
    pub const KEYS: &[&str] = &[
        "name",
        "description",
        "timeout",
        "rate_limit",
        "burst",
        "min_delay",
        "per",
        "on_limit",
    ];

    /// Parses one `#[action]` or `#[action(...)]` attribute.
    pub fn from_attr(attr: &Attribute) -> darling::Result<Self> {
        match &attr.meta {
            Meta::Path(_) => Ok(Self::default()),
            Meta::List(list) => {
                let items = NestedMeta::parse_meta_list(list.tokens.clone())?;
                parse_list("action", &items, Self::KEYS)
            }
            Meta::NameValue(meta) => Err(Error::custom(
                "write `#[action]`, or `#[action(name = \"...\")]` with keys in parentheses",
            )
            .with_span(meta)),
        }
    }
}

/// Parses `items` into `T`. An unknown key is reported here rather than by darling, so that
/// the error always lists the allowed keys (darling lists them only when it has no suggestion).
fn parse_list<T: FromMeta>(attr: &str, items: &[NestedMeta], keys: &[&str]) -> darling::Result<T> {
    let mut errors = Vec::new();
    let known: Vec<NestedMeta> = items
        .iter()
        .filter(|item| match item {
            NestedMeta::Meta(meta) => {
                let key = path_to_string(meta.path());
                let known = keys.contains(&key.as_str());
                if !known {
                    errors
                        .push(Error::custom(unknown_key(attr, &key, keys)).with_span(meta.path()));
                }
                known
            }
            // darling reports literals itself.
            NestedMeta::Lit(_) => true,
        })
        .cloned()
        .collect();
    match T::from_list(&known) {
        Ok(value) if errors.is_empty() => Ok(value),
        Ok(_) => Err(Error::multiple(errors)),
        Err(error) => {
            errors.push(error);
            Err(Error::multiple(errors))
        }
    }
}

fn unknown_key(attr: &str, key: &str, keys: &[&str]) -> String {
    let allowed = keys
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    // A key cut short (`rate` for `rate_limit`) is the likelier slip; then a typo.
    let prefix_of = keys.iter().find(|k| key.len() >= 3 && k.starts_with(key));
    let suggestion = prefix_of
        .or_else(|| {
            keys.iter()
                .map(|k| (edit_distance(key, k), k))
                .filter(|(distance, k)| *distance <= 2 && *distance < k.len())
                .min()
                .map(|(_, k)| k)
        })
        .map(|k| format!(" Did you mean `{k}`?"))
        .unwrap_or_default();
    format!("unknown key `{key}` in `#[{attr}(...)]`.{suggestion} Allowed keys: {allowed}")
}

/// Levenshtein distance, for "did you mean". Keys are short, so the quadratic table is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// A duration written as a string (`timeout = "30s"`), parsed at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

const DURATION_FORMS: &str =
    "write a number and a unit, such as \"500ms\", \"30s\", \"1.5s\", \"1m\" or \"2h\"";

impl FromMeta for Timeout {
    fn from_value(value: &Lit) -> darling::Result<Self> {
        let Lit::Str(text) = value else {
            return Err(
                Error::custom(format!("the timeout is a string: {DURATION_FORMS}"))
                    .with_span(value),
            );
        };
        parse_duration(&text.value())
            .map(Timeout)
            .map_err(|message| Error::custom(message).with_span(text))
    }
}

/// Parses a timeout: a plain decimal and a unit (`"1.5s"`, `"500ms"`), or anything humantime
/// accepts (`"1m 30s"`). Zero is refused: a task with no time to run would always fail. The
/// result fits in `u64` nanoseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_duration_of("timeout", text)
}

/// [`parse_duration`] for the key `what` (`timeout`, `min_delay`), named in the errors.
pub fn parse_duration_of(what: &str, text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let duration = decimal_duration(trimmed)
        .or_else(|| humantime::parse_duration(trimmed).ok())
        .ok_or_else(|| format!("invalid duration \"{text}\": {DURATION_FORMS}"))?;
    if u64::try_from(duration.as_nanos()).is_err() {
        return Err(format!(
            "a {what} of \"{text}\" is too long: keep it under 500 years"
        ));
    }
    if duration.is_zero() {
        let why = if what == "timeout" {
            "leaves no time to run"
        } else {
            "does nothing"
        };
        return Err(format!(
            "a {what} of \"{text}\" {why}: give a duration above zero, such as \"30s\""
        ));
    }
    Ok(duration)
}

/// `<digits>[.<digits>]<unit>` with unit `ms`, `s`, `m` or `h`, computed in whole nanoseconds
/// (humantime has no fractions).
fn decimal_duration(text: &str) -> Option<Duration> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = text.split_at(unit_at);
    let unit_nanos: u128 = match unit.trim_start() {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || number.ends_with('.') {
        return None;
    }
    let mut nanos = whole.parse::<u128>().ok()?.checked_mul(unit_nanos)?;
    // Digits past the 12th are below a nanosecond even for hours.
    let fraction = &fraction[..fraction.len().min(12)];
    if !fraction.is_empty() {
        let scale = 10u128.pow(u32::try_from(fraction.len()).ok()?);
        nanos += fraction.parse::<u128>().ok()? * unit_nanos / scale;
    }
    Some(Duration::from_nanos(u64::try_from(nanos).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn action(attr: Attribute) -> Result<ActionArgs, String> {
        ActionArgs::from_attr(&attr).map_err(|e| e.to_string())
    }

    #[test]
    fn durations() {
        let ok = |text: &str| parse_duration(text).unwrap();
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("0.25m"), Duration::from_secs(15));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        assert_eq!(ok("1m 30s"), Duration::from_secs(90));
        for bad in ["10x", "s", "1.s", ".5s", "1.2.3s", "", "-1s", "30"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("\"500ms\""), "{bad}: {err}");
        }
        assert!(parse_duration("0s").unwrap_err().contains("above zero"));
        assert!(parse_duration("0.0h").unwrap_err().contains("above zero"));
        assert!(
            parse_duration("1000years")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn action_args() {
        let args = action(parse_quote!(#[action])).unwrap();
        assert!(args.name.is_none() && args.timeout.is_none());
        let args = action(parse_quote!(#[action(name = "n", description = "d", timeout = "1.5s")]))
            .unwrap();
        assert_eq!(args.name.unwrap().value(), "n");
        assert_eq!(args.description.unwrap().value(), "d");
        assert_eq!(args.timeout, Some(Timeout(Duration::from_millis(1500))));
    }

    #[test]
    fn unknown_keys_list_the_allowed_ones() {
        let err = action(parse_quote!(#[action(nmae = "x")])).unwrap_err();
        assert_eq!(
            err,
            "unknown key `nmae` in `#[action(...)]`. Did you mean `name`? \
             Allowed keys: `name`, `description`, `timeout`, `rate_limit`, `burst`, \
             `min_delay`, `per`, `on_limit`"
        );
        let err = ProviderArgs::parse(quote::quote!(timeout = "5s")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `timeout` in `#[provider(...)]`. Allowed keys: `name`, `rate_limit`"
        );
    }

    #[test]
    fn all_errors_are_kept() {
        let err =
            ActionArgs::from_attr(&parse_quote!(#[action(foo = 1, timeout = "x")])).unwrap_err();
        assert_eq!(err.len(), 2);
    }

    #[test]
    fn bad_values() {
        assert!(
            action(parse_quote!(#[action(timeout = 30)]))
                .unwrap_err()
                .contains("is a string")
        );
        assert!(action(parse_quote!(#[action = "x"])).is_err());
        assert!(action(parse_quote!(#[action(name = "a", name = "b")])).is_err());
    }

    /// Guards `KEYS` against drifting from the struct fields: darling must know every listed key
    /// (whatever it thinks of the value).
    #[test]
    fn every_listed_key_reaches_darling() {
        fn known<T: FromMeta>(keys: &[&str]) {
            for key in keys {
                let key = syn::Ident::new(key, proc_macro2::Span::call_site());
                let items = [NestedMeta::Meta(parse_quote!(#key = "1s"))];
                if let Err(e) = T::from_list(&items) {
                    assert!(!e.to_string().contains("Unknown field"), "{key}: {e}");
                }
            }
        }
        known::<ActionArgs>(ActionArgs::KEYS);
        known::<ProviderArgs>(ProviderArgs::KEYS);
    }
}
