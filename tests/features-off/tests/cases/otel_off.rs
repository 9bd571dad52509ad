//! Without `otel`: an OTLP endpoint in the environment is not an error, but a warning in the
//! log that spans are not exported and which feature would export them.

fn main() {
    let dir = std::env::temp_dir().join(format!("arbv-otel-off-{}", std::process::id()));
    let path = dir.join("provider.log");
    // SAFETY: no other thread runs yet.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317");
        std::env::set_var("LOG_FILE", &path);
        std::env::set_var("LOG_FORMAT", "json");
        std::env::remove_var("RUST_LOG");
    }
    let telemetry = arbv_provider::telemetry::init_logging("otel-off")
        .expect("an endpoint without the feature is not an error");
    drop(telemetry);
    let log = std::fs::read_to_string(&path).expect("the log file is written");
    std::fs::remove_dir_all(&dir).unwrap();
    let warnings: Vec<arbv_provider::serde_json::Value> = log
        .lines()
        .map(|l| arbv_provider::serde_json::from_str(l).unwrap())
        .filter(|l: &arbv_provider::serde_json::Value| l["level"] == "WARN")
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    let message = warnings[0]["message"].as_str().unwrap();
    assert!(
        message.contains("OTEL_EXPORTER_OTLP_ENDPOINT is set")
            && message.contains("features = [\"otel\"]"),
        "{message}"
    );
}
