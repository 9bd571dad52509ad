//! `PerKey::parse` on any text and `PerKey::key` on any JSON: no panic, and the key is the value
//! found at the path.
//!
//! Input: `per\npayload\naccount`; a payload that is not JSON counts as `null`, an account that
//! is not JSON as none.

#![no_main]

#[path = "../../arbv-provider-core/tests/invariants/mod.rs"]
#[allow(dead_code)]
mod invariants;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let Ok(text) = std::str::from_utf8(parts.next().unwrap_or_default()) else {
        return;
    };
    let payload: Value =
        serde_json::from_slice(parts.next().unwrap_or_default()).unwrap_or_default();
    let account: Option<Value> = serde_json::from_slice(parts.next().unwrap_or_default()).ok();
    invariants::per_key(text, &payload, account.as_ref());
});
