//! arbv-provider with `default-features = false`: configuration that needs a feature is refused
//! with an error naming it (`cases/tls_off.rs` runs and checks the errors) or, for an OTLP
//! endpoint, logged as a warning naming it (`cases/otel_off.rs`), an action caching in Redis is
//! refused at start with an error naming it (`cases/cache_redis_off.rs`), and code that names
//! an item of a missing feature fails to compile with rustc's note saying which feature gates
//! it (`cases/*_off.stderr`; regenerate with `TRYBUILD=overwrite` after an intended change).

#[test]
fn features_off() {
    let t = trybuild::TestCases::new();
    t.pass("tests/cases/tls_off.rs");
    t.pass("tests/cases/otel_off.rs");
    t.pass("tests/cases/cache_redis_off.rs");
    t.compile_fail("tests/cases/redis_off.rs");
    t.compile_fail("tests/cases/redis_cache_off.rs");
    t.compile_fail("tests/cases/dev_hub_off.rs");
}
