//! The macros' UI tests: every `ui/fail` case must fail with exactly its `.stderr` (regenerate
//! with `TRYBUILD=overwrite` after an intended change, then read the new messages); every
//! `ui/pass` case must compile and run.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}
