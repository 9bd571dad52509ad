//! Logging: `tracing` with a filter from `RUST_LOG` (default `info`) and `LOG_FORMAT=json` for
//! one JSON object a line.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber unless one is already installed (then does nothing).
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _already_installed = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
