//! Any task through the `basic` example provider (`Runtime::run_task`) gets exactly one
//! well-formed envelope that carries none of the account's values.
//!
//! Input: `action\npayload\naccount`, each part any bytes (the action read as UTF-8, as the hub's
//! protobuf strings are). Account values that start with `acct-secret-` must not come back.

#![no_main]

#[path = "../../tests/invariants/mod.rs"]
#[allow(dead_code)]
mod invariants;

use std::sync::LazyLock;

use arbv_provider_core::Runtime;
use libfuzzer_sys::fuzz_target;

static TOKIO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
});
static BASIC: LazyLock<Runtime> = LazyLock::new(invariants::basic_runtime);

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let action = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let payload = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    let task = invariants::task(&action, payload, account);
    let done = TOKIO.block_on(BASIC.run_task(task.clone()));
    invariants::completed(&task, &done);
});
