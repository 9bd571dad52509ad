//! What makes two tasks of a cached action identical: canonical JSON (object keys sorted at
//! every depth, so key order never matters) of the chosen key material, hashed with SHA-256.

use std::fmt::Write as _;

use arbv_provider_grammar::{PerPath, PerSource};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::provider::{CacheKey, CacheKeyFn};

/// An action's key, compiled once from its [`CacheKey`].
pub(crate) enum KeyMaker {
    /// The payload (less the refresh field) and a fingerprint of the account.
    Input,
    /// These paths only; a missing one is `null`.
    Paths(Vec<(String, PerPath)>),
    /// What the action's function makes of the input.
    Function(CacheKeyFn),
}

impl KeyMaker {
    /// Compiles `key`; a malformed path is the error.
    pub(crate) fn compile(key: &CacheKey) -> Result<Self, String> {
        Ok(match key {
            CacheKey::Input => KeyMaker::Input,
            CacheKey::Function(function) => KeyMaker::Function(function.clone()),
            CacheKey::Paths(paths) => {
                if paths.is_empty() {
                    return Err("cache_key names no path".into());
                }
                let compiled = paths
                    .iter()
                    .map(|path| {
                        PerPath::parse(path)
                            .map(|parsed| (path.to_string(), parsed))
                            .map_err(|e| format!("cache_key '{path}': {}", e.0))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                KeyMaker::Paths(compiled)
            }
        })
    }

    /// The paths the key reads, for the start-up check against the schemas.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &PerPath> {
        let paths: &[(String, PerPath)] = match self {
            KeyMaker::Paths(paths) => paths,
            _ => &[],
        };
        paths.iter().map(|(_, path)| path)
    }

    /// The hex SHA-256 of the task's canonical key material. `refresh` names the payload field
    /// left out of it. An `Err` is the key function's: the task is not cached.
    pub(crate) fn hash(
        &self,
        payload: &Value,
        account: Option<&Value>,
        refresh: Option<&str>,
    ) -> Result<String, String> {
        let mut material = String::new();
        match self {
            KeyMaker::Input => {
                material.push_str("input:");
                write_canonical(&mut material, payload, refresh);
                material.push_str("\naccount:");
                match account {
                    Some(account) => material.push_str(&fingerprint(account)),
                    None => material.push_str("none"),
                }
            }
            KeyMaker::Paths(paths) => {
                material.push_str("paths:");
                for (text, path) in paths {
                    let root = match path.source() {
                        PerSource::Payload => Some(payload),
                        PerSource::Account => account,
                    };
                    let value = root
                        .and_then(|r| path.fields().iter().try_fold(r, |v, field| v.get(field)))
                        .unwrap_or(&Value::Null);
                    write_canonical(&mut material, &Value::String(text.clone()), None);
                    material.push('=');
                    write_canonical(&mut material, value, None);
                    material.push('\n');
                }
            }
            KeyMaker::Function(function) => {
                let without_refresh;
                let payload = match (refresh, payload) {
                    (Some(field), Value::Object(map)) if map.contains_key(field) => {
                        let mut map = map.clone();
                        map.remove(field);
                        without_refresh = Value::Object(map);
                        &without_refresh
                    }
                    _ => payload,
                };
                let value = function(payload, account)?;
                material.push_str("function:");
                write_canonical(&mut material, &value, None);
            }
        }
        Ok(sha256_hex(material.as_bytes()))
    }
}

/// A fingerprint of the account: the hex SHA-256 of its canonical JSON. It tells accounts
/// apart without holding them, so no secret of an account reaches a cache key.
pub(crate) fn fingerprint(account: &Value) -> String {
    sha256_hex(canonical(account).as_bytes())
}

/// `value` as JSON text with the keys of every object sorted.
pub(crate) fn canonical(value: &Value) -> String {
    let mut text = String::new();
    write_canonical(&mut text, value, None);
    text
}

/// Writes `value` canonically; `skip` is a top-level key left out (the refresh field).
fn write_canonical(out: &mut String, value: &Value, skip: Option<&str>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .keys()
                .filter(|key| Some(key.as_str()) != skip)
                .collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_canonical(out, &map[key], None);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item, None);
            }
            out.push(']');
        }
        Value::String(s) => write_string(out, s),
        // Numbers, booleans and null have one spelling in serde_json's output.
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string always serialises"));
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn input_key(payload: &Value, account: Option<&Value>) -> String {
        KeyMaker::Input.hash(payload, account, None).unwrap()
    }

    #[test]
    fn key_order_does_not_matter_at_any_depth() {
        let a = json!({"city": "Oslo", "opts": {"units": "c", "days": [1, {"x": 1, "y": 2}]}});
        let b: Value = serde_json::from_str(
            r#"{"opts": {"days": [1, {"y": 2, "x": 1}], "units": "c"}, "city": "Oslo"}"#,
        )
        .unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(input_key(&a, None), input_key(&b, None));
        assert_eq!(input_key(&a, None).len(), 64);
        // Array order does matter.
        assert_ne!(
            input_key(&json!({"d": [1, 2]}), None),
            input_key(&json!({"d": [2, 1]}), None)
        );
    }

    #[test]
    fn the_account_counts_by_a_fingerprint_that_does_not_hold_it() {
        let payload = json!({"city": "Oslo"});
        let secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
        let account = json!({"api_key": secret});
        let other = json!({"api_key": "sk_live_other"});
        assert_ne!(
            input_key(&payload, Some(&account)),
            input_key(&payload, Some(&other))
        );
        assert_ne!(
            input_key(&payload, Some(&account)),
            input_key(&payload, None)
        );
        let print = fingerprint(&account);
        assert_eq!(print.len(), 64);
        assert!(!print.contains(secret) && !print.contains("sk_live"));
        assert_eq!(
            print,
            fingerprint(
                &serde_json::from_str(&format!(r#"{{ "api_key" : "{secret}" }}"#)).unwrap()
            )
        );
    }

    #[test]
    fn paths_key_on_those_paths_only_and_missing_is_null() {
        let maker = KeyMaker::compile(&CacheKey::Paths(vec![
            Cow::Borrowed("payload.city"),
            Cow::Borrowed("account.region.code"),
        ]))
        .unwrap();
        let key = |payload: Value, account: Option<Value>| {
            maker.hash(&payload, account.as_ref(), None).unwrap()
        };
        let eu = Some(json!({"region": {"code": "eu"}, "token": "a"}));
        let base = key(json!({"city": "Oslo", "n": 1}), eu.clone());
        assert_eq!(
            base,
            key(
                json!({"city": "Oslo", "n": 2}),
                Some(json!({"region": {"code": "eu"}, "token": "b"}))
            )
        );
        assert_ne!(base, key(json!({"city": "Rome"}), eu.clone()));
        assert_ne!(
            base,
            key(
                json!({"city": "Oslo"}),
                Some(json!({"region": {"code": "us"}}))
            )
        );
        assert_eq!(
            key(json!({}), None),
            key(json!({"city": null}), Some(json!({"region": null})))
        );
        assert!(KeyMaker::compile(&CacheKey::Paths(vec![Cow::Borrowed("city")])).is_err());
        assert!(KeyMaker::compile(&CacheKey::Paths(vec![])).is_err());
    }

    #[test]
    fn the_refresh_field_is_left_out_of_the_key() {
        let plain = json!({"city": "Oslo"});
        let refreshing = json!({"city": "Oslo", "refresh": true});
        let key =
            |maker: &KeyMaker, payload: &Value| maker.hash(payload, None, Some("refresh")).unwrap();
        assert_eq!(
            key(&KeyMaker::Input, &plain),
            key(&KeyMaker::Input, &refreshing)
        );
        let function: CacheKeyFn = Arc::new(|payload, _| Ok(payload.clone()));
        let maker = KeyMaker::Function(function);
        assert_eq!(key(&maker, &plain), key(&maker, &refreshing));
        // Only at the top level: a nested field of that name is data.
        assert_ne!(
            key(&KeyMaker::Input, &json!({"o": {"refresh": true}})),
            key(&KeyMaker::Input, &json!({"o": {}}))
        );
    }

    #[test]
    fn a_key_function_error_is_returned() {
        let function: CacheKeyFn = Arc::new(|_, _| Err("no city".into()));
        assert_eq!(
            KeyMaker::Function(function).hash(&json!({}), None, None),
            Err("no city".into())
        );
    }
}
