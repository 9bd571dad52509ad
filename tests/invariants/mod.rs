//! What dispatch must hold for any task: exactly one envelope, valid JSON, a known status, a
//! message, and no account value in it. The property test `dispatch_properties.rs` and the
//! cargo-fuzz target `dispatch_basic` in `fuzz/` both call these functions against the `basic`
//! example provider.

use arbv_provider_core::{CompletedTask, Config, Envelope, IncomingTask, Runtime};
use serde_json::Value;

/// The name the `basic` example provider serves under.
pub const PROVIDER: &str = "basic-provider";

/// A prefix for account values: a value that starts with it must never reach an envelope.
pub const SECRET: &str = "acct-secret-";

/// The `basic` provider, ready to run tasks in process.
pub fn basic_runtime() -> Runtime {
    let config = Config::builder()
        .auth_token("fuzz-token")
        .hub_url("127.0.0.1:1")
        .build()
        .expect("the configuration is valid");
    Runtime::new(basic::Basic, config).expect("the basic provider compiles")
}

/// A task as the hub would send it.
pub fn task(action: &str, payload: &[u8], account: &[u8]) -> IncomingTask {
    IncomingTask {
        id: "task-1".to_owned(),
        action: action.to_owned(),
        payload: payload.to_vec().into(),
        account: account.to_vec().into(),
    }
}

/// An account object whose values are all marked secret.
pub fn secret_account(fields: &[(String, String)]) -> Vec<u8> {
    let object: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(key, value)| (key.clone(), Value::String(format!("{SECRET}{value}"))))
        .collect();
    serde_json::to_vec(&object).expect("serializes")
}

/// Checks `done`, the answer to `task`.
pub fn completed(task: &IncomingTask, done: &CompletedTask) {
    assert_eq!(done.id, task.id);
    assert_eq!(done.action, task.action);
    // `from_str` refuses anything after the first document: one envelope, not two.
    let value: Value = serde_json::from_str(&done.result)
        .unwrap_or_else(|e| panic!("the result is not one JSON document ({e}): {}", done.result));
    let status = value["status"].as_str().unwrap_or_default();
    assert!(
        matches!(status, "success" | "error" | "limit" | "warning"),
        "status {status:?} in {value}"
    );
    assert_eq!(status, done.status.as_str());
    let envelope: Envelope = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("not an envelope ({e}): {value}"));
    assert!(!envelope.message.trim().is_empty(), "{value}");
    assert_eq!(envelope.data.action, task.action);
    assert_eq!(envelope.data.provider, PROVIDER);

    let Ok(Value::Object(account)) = serde_json::from_slice::<Value>(&task.account) else {
        return;
    };
    let Some(values) = account
        .values()
        .map(Value::as_str)
        .collect::<Option<Vec<&str>>>()
    else {
        return;
    };
    // A value the task also carries elsewhere may come back from there.
    let mut elsewhere = vec![task.action.clone()];
    elsewhere.extend(account.keys().cloned());
    elsewhere.push(String::from_utf8_lossy(&task.payload).into_owned());
    if let Ok(payload) = serde_json::from_slice::<Value>(&task.payload) {
        strings(&payload, &mut elsewhere);
    }
    let mut answered = Vec::new();
    strings(&value, &mut answered);
    for secret in values {
        if !secret.starts_with(SECRET) || elsewhere.iter().any(|s| s.contains(secret)) {
            continue;
        }
        assert!(
            !answered.iter().any(|s| s.contains(secret)) && !done.result.contains(secret),
            "the account's {secret:?} is in the envelope: {value}"
        );
    }
}

/// Collects the object keys and the string values in `value`.
fn strings(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(s) => into.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, into)),
        Value::Object(map) => {
            for (key, v) in map {
                into.push(key.clone());
                strings(v, into);
            }
        }
        _ => {}
    }
}
