//! The arguments of `#[provider(...)]` and `#[action(...)]`, parsed with darling; each key's
//! value is a type of `value`.
//!
//! To add a key: add a field to the struct and its name to the struct's `KEYS`. A unit test
//! checks that every listed key reaches darling.

use darling::ast::NestedMeta;
use darling::util::{SpannedValue, path_to_string};
use darling::{Error, FromMeta};
use proc_macro2::TokenStream;
use syn::{Attribute, LitStr, Meta};

use crate::value::{
    Burst, CacheArg, CacheKeyArg, CacheMark, CacheRefresh, CacheTtlEnv, MinDelay, OnLimit, Per,
    RateLimitArg, RetryArg, Timeout,
};

/// The arguments of `#[provider(...)]`.
#[derive(Debug, Default, FromMeta)]
pub struct ProviderArgs {
    /// The provider's default name; without it, the type's name in kebab-case.
    pub name: Option<LitStr>,
    /// The rate limit of every action that declares none.
    pub rate_limit: Option<RateLimitArg>,
    /// A function returning the backend of actions with `cache = "…"`.
    pub cache_backend: Option<syn::Path>,
}

impl ProviderArgs {
    /// Every key `#[provider(...)]` accepts.
    pub const KEYS: &[&str] = &["name", "rate_limit", "cache_backend"];

    /// Parses the tokens between the parentheses of `#[provider(...)]`.
    pub fn parse(args: TokenStream) -> darling::Result<Self> {
        let items = NestedMeta::parse_meta_list(args)?;
        parse_list("#[provider(...)]", &items, Self::KEYS)
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
    pub burst: Option<SpannedValue<Burst>>,
    /// Minimum spacing between calls.
    pub min_delay: Option<SpannedValue<MinDelay>>,
    /// The field whose values have separate budgets.
    pub per: Option<SpannedValue<Per>>,
    /// What a task over the limit gets.
    pub on_limit: Option<SpannedValue<OnLimit>>,
    /// How long `success` answers are kept, and where.
    pub cache: Option<SpannedValue<CacheArg>>,
    /// What makes two tasks identical for the cache.
    pub cache_key: Option<SpannedValue<CacheKeyArg>>,
    /// The payload flag that refreshes a kept answer.
    pub cache_refresh: Option<SpannedValue<CacheRefresh>>,
    /// The environment variable that replaces the cache's TTL at start.
    pub cache_ttl_env: Option<SpannedValue<CacheTtlEnv>>,
    /// The answer's field a hit sets to `true`.
    pub cache_mark: Option<SpannedValue<CacheMark>>,
    /// Runs the action again on transient errors.
    pub retry: Option<SpannedValue<RetryArg>>,
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
        "cache",
        "cache_key",
        "cache_refresh",
        "cache_ttl_env",
        "cache_mark",
        "retry",
    ];

    /// Parses one `#[action]` or `#[action(...)]` attribute.
    pub fn from_attr(attr: &Attribute) -> darling::Result<Self> {
        match &attr.meta {
            Meta::Path(_) => Ok(Self::default()),
            Meta::List(list) => {
                let items = NestedMeta::parse_meta_list(list.tokens.clone())?;
                parse_list("#[action(...)]", &items, Self::KEYS)
            }
            Meta::NameValue(meta) => Err(Error::custom(
                "write `#[action]`, or `#[action(name = \"...\")]` with keys in parentheses",
            )
            .with_span(meta)),
        }
    }
}

/// Parses `items` into `T`; `attr` is how the list is written (`#[action(...)]`, `retry(...)`),
/// for errors. An unknown key is reported here rather than by darling, so that
/// the error always lists the allowed keys (darling lists them only when it has no suggestion).
pub(crate) fn parse_list<T: FromMeta>(
    attr: &str,
    items: &[NestedMeta],
    keys: &[&str],
) -> darling::Result<T> {
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
    format!("unknown key `{key}` in `{attr}`.{suggestion} Allowed keys: {allowed}")
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use syn::parse_quote;

    fn action(attr: Attribute) -> Result<ActionArgs, String> {
        ActionArgs::from_attr(&attr).map_err(|e| e.to_string())
    }

    /// The forms themselves are the grammar crate's to test; here, that its errors reach the
    /// user with the key named.
    #[test]
    fn durations_are_checked_in_the_runtime_grammar() {
        let timeout = |text: &str| {
            let text = syn::LitStr::new(text, proc_macro2::Span::call_site());
            action(parse_quote!(#[action(timeout = #text)])).map(|a| a.timeout.unwrap().0)
        };
        assert_eq!(timeout("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(timeout("1m 30s").unwrap(), Duration::from_secs(90));
        let malformed = timeout("30").unwrap_err();
        assert!(
            malformed.contains("invalid duration \"30\"") && malformed.contains("\"500ms\""),
            "{malformed}"
        );
        assert!(timeout("0s").unwrap_err().contains("leaves no time to run"));
        assert!(timeout("400d").unwrap_err().contains("too long"));
        let delay = action(parse_quote!(#[action(min_delay = "0ms")])).unwrap_err();
        assert!(
            delay.contains("a min_delay of \"0ms\" does nothing"),
            "{delay}"
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
             `min_delay`, `per`, `on_limit`, `cache`, `cache_key`, `cache_refresh`, `cache_ttl_env`, \
             `cache_mark`, `retry`"
        );
        let err = ProviderArgs::parse(quote::quote!(timeout = "5s")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `timeout` in `#[provider(...)]`. Allowed keys: `name`, `rate_limit`, \
             `cache_backend`"
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
