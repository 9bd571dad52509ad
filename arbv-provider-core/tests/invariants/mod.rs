//! What the parsers and the validation summary must hold for any input. The property tests in
//! `tests/properties.rs` and the cargo-fuzz targets in `fuzz/` both call these functions, so a
//! finding of one is a failing case of the other. Each function panics when its input breaks a
//! property.

use arbv_provider_core::config::HubUrl;
use arbv_provider_core::rate_limit::{PerKey, value_digest};
use arbv_provider_core::validation::{SchemaValidator, Violations};
use serde_json::{Value, json};

/// `per`: a parsed path starts at `account` or `payload`, names non-empty fields, and keys a
/// task by a digest of the value found at that path (objects only), `<none>` when there is none.
pub fn per_key(text: &str, payload: &Value, account: Option<&Value>) {
    let Ok(per) = PerKey::parse(text) else {
        return;
    };
    assert_eq!(per.as_str(), text);
    let (source, path) = text.split_once('.').expect("a source and a path");
    assert!(source == "account" || source == "payload", "{text:?}");
    assert!(path.split('.').all(|f| !f.is_empty()), "{text:?}");

    let key = per.key(payload, account);
    let value = key
        .strip_prefix(text)
        .and_then(|rest| rest.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key:?} does not start with {text:?}="));
    let root = if source == "payload" {
        Some(payload)
    } else {
        account
    };
    let found = root.and_then(|root| {
        path.split('.')
            .try_fold(root, |value, field| value.as_object()?.get(field))
    });
    // The value itself never reaches the key: only a fixed-length digest of it.
    match found {
        Some(Value::String(s)) => assert_eq!(value, value_digest(s.as_bytes())),
        Some(Value::Null) | None => assert_eq!(value, "<none>"),
        Some(other) => assert_eq!(value, value_digest(other.to_string().as_bytes())),
    }
    if value != "<none>" {
        assert_eq!(value.len(), 17, "{value:?}");
    }
    if source == "payload" {
        assert_eq!(key, per.key(payload, None), "the account plays no part");
    }
}

/// The hub address: a parsed address is an `http://` or `https://` URI that parses to itself.
/// (That the transport takes it is checked inside the crate, beside the transport: `endpoint.rs`.)
pub fn hub_url(text: &str) {
    let url = match HubUrl::parse(text) {
        Ok(url) => url,
        Err(reason) => {
            assert!(!reason.is_empty());
            return;
        }
    };
    let uri = url.as_str();
    assert!(
        uri.starts_with("http://") || uri.starts_with("https://"),
        "{text:?} -> {uri:?}"
    );
    assert_eq!(url.is_tls(), uri.starts_with("https://"), "{text:?}");
    assert_eq!(url.to_string(), uri);
    assert_eq!(HubUrl::parse(uri).as_ref(), Ok(&url), "{text:?} -> {uri:?}");
}

/// The one-line summary of any set of violations: the missing fields first (the first ten of
/// them), then at most three other errors, so its length does not grow with their number.
pub fn summary(violations: &Violations) {
    let summary = violations.summary();
    let shown: Vec<&str> = violations
        .missing
        .iter()
        .take(10)
        .map(String::as_str)
        .collect();
    let missing = format!("Missing required parameters: {}", shown.join(", "));
    if violations.missing.is_empty() {
        match violations.errors.first() {
            None => assert_eq!(summary, ""),
            Some(first) => assert!(
                summary.contains(&first.message),
                "{summary:?} leaves out {first:?}"
            ),
        }
    } else {
        assert!(
            summary.starts_with(&missing),
            "{summary:?} should start with {missing:?}"
        );
    }
    let mut lengths: Vec<usize> = violations
        .errors
        .iter()
        .map(|e| e.path.len() + e.message.len())
        .collect();
    lengths.sort_unstable_by(|a, b| b.cmp(a));
    let longest_three: usize = lengths.iter().take(3).sum();
    let bound =
        missing.len() + longest_three + 3 * 4 + format!("; and {} more", lengths.len()).len();
    assert!(
        summary.len() <= bound,
        "{} bytes, more than {bound}: {summary:?}",
        summary.len()
    );
}

/// A marker for string values that must not appear in a masked validator's messages.
pub const SECRET: &str = "zz-secret-";

/// Validates `instance` against a nested schema with required fields, plain and masked: every
/// refusal has a non-empty summary that holds for [`summary`], names every missing field, and the
/// masked one never repeats a string value that starts with [`SECRET`].
pub fn schema_summary(instance: &Value) {
    let schema = json!({
        "type": "object",
        "required": ["order_id", "items", "customer"],
        "properties": {
            "order_id": {"type": "string", "minLength": 1},
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["product_id", "quantity"],
                "properties": {
                    "product_id": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1}
                }
            }},
            "customer": {
                "type": "object",
                "required": ["name", "address"],
                "properties": {
                    "name": {"type": "string", "maxLength": 8},
                    "address": {"type": "object", "required": ["zip"],
                        "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}
                }
            }
        }
    });
    let plain = SchemaValidator::compile(schema.clone()).expect("the schema compiles");
    let masked = SchemaValidator::compile(schema)
        .expect("the schema compiles")
        .masked();
    let outcome = plain.check(instance);
    assert_eq!(
        outcome.is_ok(),
        masked.check(instance).is_ok(),
        "masking changes only messages"
    );
    let Err(violations) = outcome else {
        return;
    };
    let text = violations.summary();
    assert!(!text.trim().is_empty(), "{violations:?}");
    for field in &violations.missing {
        assert!(
            text.contains(field.as_str()),
            "{text:?} leaves out {field:?}"
        );
    }
    summary(&violations);

    let masked = masked.check(instance).expect_err("refused above");
    let mut keys = Vec::new();
    let mut secrets = Vec::new();
    strings(instance, &mut keys, &mut secrets);
    let secrets: Vec<&String> = secrets
        .iter()
        .filter(|s| s.starts_with(SECRET) && !keys.iter().any(|k| k.contains(s.as_str())))
        .collect();
    let written = serde_json::to_string(&json!({
        "summary": masked.summary(),
        "errors": masked.errors,
        "missing": masked.missing,
    }))
    .expect("serializes");
    for secret in secrets {
        let escaped = serde_json::to_string(secret).expect("serializes");
        assert!(
            !written.contains(escaped.trim_matches('"')),
            "{secret:?} leaks into {written}"
        );
    }
}

/// Collects the object keys and the string values in `value`.
pub fn strings(value: &Value, keys: &mut Vec<String>, values: &mut Vec<String>) {
    match value {
        Value::String(s) => values.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, keys, values)),
        Value::Object(map) => {
            for (key, v) in map {
                keys.push(key.clone());
                strings(v, keys, values);
            }
        }
        _ => {}
    }
}
