//! `HubUrl::parse`: no panic; an accepted address is a URI that parses to itself. (That the
//! transport takes it is a property test inside the crate, beside the transport.)

#![no_main]

#[path = "../../arbv-provider-core/tests/invariants/mod.rs"]
#[allow(dead_code)]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| invariants::hub_url(text));
