//! The validation summary, two ways from one input:
//! - of a list read from its lines: `missing <field>` is a missing field, any other line is an
//!   error `<path>\t<message>` (no tab: a message on the whole document);
//! - of what a schema with required fields finds wrong in the input read as a JSON document,
//!   plain and masked (string values that start with `zz-secret-` must not come back masked).

#![no_main]

#[path = "../../arbv-provider-core/tests/invariants/mod.rs"]
#[allow(dead_code)]
mod invariants;

use arbv_provider_core::validation::{FieldError, Violations};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|text: &str| {
    let mut violations = Violations::default();
    for line in text.lines() {
        if let Some(field) = line.strip_prefix("missing ") {
            violations.missing.push(field.to_owned());
        } else {
            let (path, message) = line.split_once('\t').unwrap_or(("", line));
            violations.errors.push(FieldError {
                path: path.to_owned(),
                message: message.to_owned(),
            });
        }
    }
    invariants::summary(&violations);
    if let Ok(instance) = serde_json::from_str::<Value>(text) {
        invariants::schema_summary(&instance);
    }
});
