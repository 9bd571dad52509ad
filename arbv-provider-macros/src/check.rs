//! Checks that read more than one key or more than one action, run on the whole model once
//! every action is read.

use std::collections::HashMap;

use crate::errors::Errors;
use crate::model::{ActionModel, ProviderModel, Role};

/// Records every such mistake in `errors`.
pub fn check(model: &ProviderModel, errors: &mut Errors) {
    for action in &model.actions {
        limit_keys_need_a_limit(model, action, errors);
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
