//! `"N/period"` (`RateSpec`): no panic; a parsed rate is sensible and reads back as itself.

#![no_main]

#[path = "../../arbv-provider-grammar/tests/invariants/mod.rs"]
#[allow(dead_code)]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| invariants::rate_spec(text));
