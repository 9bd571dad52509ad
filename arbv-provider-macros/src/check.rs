//! Checks across actions, run on the whole model once every action is read.

use std::collections::HashMap;

use crate::errors::Errors;
use crate::model::{ActionDef, ProviderDef};

/// Records every cross-action mistake in `errors`.
pub fn check(def: &ProviderDef, errors: &mut Errors) {
    duplicate_names(def, errors);
}

/// Two actions with one name: the error points at the second and names the first.
fn duplicate_names(def: &ProviderDef, errors: &mut Errors) {
    let mut seen: HashMap<&str, &ActionDef> = HashMap::new();
    for action in &def.actions {
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
