//! The duration grammar (`timeout = "1.5s"`, `TASK_EXECUTION_TIMEOUT=2.5`): no panic, at most a
//! year, one meaning with and without bare seconds, and a duration written with its units reads
//! back exactly.

#![no_main]

#[path = "../../arbv-provider-grammar/tests/invariants/mod.rs"]
#[allow(dead_code)]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| invariants::duration(text));
