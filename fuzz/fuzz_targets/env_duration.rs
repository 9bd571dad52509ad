//! The duration parser of `PROVIDER_IDLE_POLL_CAP` and `PROVIDER_DRAIN_TIMEOUT`: no panic, zero
//! only where allowed, and a duration written with its units reads back exactly. Each input is
//! tried with zero allowed and refused.

#![no_main]

#[path = "../../arbv-provider-core/tests/invariants/mod.rs"]
#[allow(dead_code)]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    invariants::env_duration(text, true);
    invariants::env_duration(text, false);
});
