//! Without `tls`: an https:// hub, a `HUB_TLS_*` variable or a `tls_*` builder setting is an
//! error that names the feature, never a connection in clear text.

use arbv_provider::{Config, ConfigError};

fn refused(result: Result<Config, ConfigError>, needed_by: &str) {
    let error = result.expect_err("a TLS setting without the tls feature must be refused");
    let message = error.to_string();
    assert!(
        matches!(&error, ConfigError::FeatureOff { feature: "tls", .. }),
        "{message}"
    );
    assert!(
        message.contains(needed_by) && message.contains("features = [\"tls\"]"),
        "{message}"
    );
}

fn main() {
    let builder = || Config::builder().auth_token("token");
    refused(
        builder().hub_url("https://hub.example.com").build(),
        "hub_url=https://hub.example.com",
    );
    refused(
        builder()
            .hub_url("127.0.0.1:50051")
            .tls_server_name("hub.internal")
            .build(),
        "tls_server_name",
    );
    builder().hub_url("127.0.0.1:50051").build().unwrap();

    // SAFETY: no other thread runs yet.
    unsafe {
        std::env::set_var("PROVIDER_AUTH_TOKEN", "token");
        std::env::set_var("HUB_GRPC_URL", "https://hub.example.com:50051");
    }
    refused(
        Config::from_env(),
        "HUB_GRPC_URL=https://hub.example.com:50051",
    );
    // SAFETY: as above.
    unsafe {
        std::env::set_var("HUB_GRPC_URL", "127.0.0.1:50051");
        std::env::set_var("HUB_TLS_CA_FILE", "ca.pem");
    }
    refused(Config::from_env(), "HUB_TLS_CA_FILE");
}
