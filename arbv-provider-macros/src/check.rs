//! Checks that read more than one key or more than one action, run on the whole model once
//! every action is read.

use std::collections::HashMap;

use crate::errors::Errors;
use crate::model::{ActionModel, ProviderModel, Role};
use crate::value::CacheKeyArg;
use arbv_provider_grammar::PerSource;

/// Records every such mistake in `errors`.
pub fn check(model: &ProviderModel, errors: &mut Errors) {
    for action in &model.actions {
        limit_keys_need_a_limit(model, action, errors);
        cache_keys(action, errors);
        retry_fits_the_timeout(action, errors);
    }
    duplicate_names(model, errors);
}

/// `per` and `on_limit = "wait"` act on a rate limit: the action must have one, and `per` must
/// read a part of the task the action takes (whose schema says the field exists).
fn limit_keys_need_a_limit(model: &ProviderModel, action: &ActionModel, errors: &mut Errors) {
    let limited = action.limit.is_limited(model.default_limit.as_ref());
    if let Some(per) = &action.per {
        let (role, part, parameter) = if per.reads_account() {
            (Role::Account, "account", "an `account`")
        } else {
            (Role::Payload, "payload", "a `payload`")
        };
        if !limited {
            errors.push(syn::Error::new(
                per.span(),
                "`per` splits a rate limit, and this action has none: add `rate_limit = \"N/period\"`",
            ));
        } else if !action.takes(role) {
            errors.push(syn::Error::new(
                per.span(),
                format!(
                    "`per = \"{part}.…\"` needs the action to take {parameter} parameter, whose schema says the field exists"
                ),
            ));
        }
    }
    if let Some(on_limit) = action
        .on_limit
        .filter(|_| action.waits_on_limit() && !limited)
    {
        errors.push(syn::Error::new(
            on_limit.span(),
            "`on_limit = \"wait\"` waits for a rate limit, and this action has none",
        ));
    }
}

/// Two actions with one name: the error points at the second and names the first.
fn duplicate_names(model: &ProviderModel, errors: &mut Errors) {
    let mut seen: HashMap<&str, &ActionModel> = HashMap::new();
    for action in &model.actions {
        match seen.get(action.name.as_str()) {
            Some(first) => errors.push(syn::Error::new(
                action.name_span,
                format!(
                    "two actions are named \"{}\": this one and the method `{}` above; \
                     give one of them another name with `#[action(name = \"...\")]`",
                    action.name, first.method
                ),
            )),
            None => {
                seen.insert(&action.name, action);
            }
        }
    }
}

/// `cache_key` and `cache_refresh` refine a cache: the action must have one, an answer to keep,
/// and the parts of the task its key reads.
fn cache_keys(action: &ActionModel, errors: &mut Errors) {
    let Some(cache) = &action.cache else {
        for (span, key) in [
            (action.cache_key.as_ref().map(|k| k.span()), "cache_key"),
            (
                action.cache_refresh.as_ref().map(|r| r.span()),
                "cache_refresh",
            ),
            (
                action.cache_ttl_env.as_ref().map(|e| e.span()),
                "cache_ttl_env",
            ),
            (action.cache_mark.as_ref().map(|m| m.span()), "cache_mark"),
        ] {
            if let Some(span) = span {
                errors.push(syn::Error::new(
                    span,
                    format!(
                        "`{key}` refines a cache, and this action has none: add `cache = \"10m\"`"
                    ),
                ));
            }
        }
        return;
    };
    if action.returns_nothing {
        errors.push(syn::Error::new(
            cache.span(),
            "`cache` keeps an action's answer, and this action returns nothing: a cached call \
             would skip what it does. Return the data to keep, or remove `cache`",
        ));
    }
    let needs = |role: Role, span: proc_macro2::Span, what: &str, errors: &mut Errors| {
        if !action.takes(role) {
            errors.push(syn::Error::new(
                span,
                format!("{what} needs the action to take {role} parameter"),
            ));
        }
    };
    if let Some(key) = &action.cache_key {
        match &**key {
            CacheKeyArg::Paths(paths) => {
                for (path, span) in paths {
                    let (role, part) = match path.source() {
                        PerSource::Account => (Role::Account, "account"),
                        PerSource::Payload => (Role::Payload, "payload"),
                    };
                    needs(role, *span, &format!("`cache_key = \"{part}.…\"`"), errors);
                }
            }
            CacheKeyArg::Function(_) => needs(
                Role::Payload,
                key.span(),
                "`cache_key = function` (called with the payload)",
                errors,
            ),
        }
    }
    if let Some(refresh) = &action.cache_refresh {
        needs(
            Role::Payload,
            refresh.span(),
            "`cache_refresh` (a field of the payload)",
            errors,
        );
    }
}

/// One try must fit in the action's timeout, or `attempt_timeout` never applies.
fn retry_fits_the_timeout(action: &ActionModel, errors: &mut Errors) {
    let (Some(retry), Some(timeout)) = (&action.retry, action.timeout) else {
        return;
    };
    if retry
        .attempt_timeout
        .is_some_and(|attempt| attempt >= timeout)
    {
        errors.push(syn::Error::new(
            retry.span(),
            "`attempt_timeout` must be shorter than the action's `timeout`, which bounds every try \
             and the waits between them",
        ));
    }
}
