//! The example as a process: its manifest, and a bad configuration stopping it at start with
//! the variable named.

use std::process::Command;

use serde_json::Value;

fn provider() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_facebook"));
    command.env_clear();
    command
}

#[test]
fn the_manifest_shows_the_actions_their_limits_and_retries() {
    let output = provider().arg("--manifest").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let manifest: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(manifest["name"], "facebook");
    let actions = manifest["actions"].as_array().unwrap();
    let names: Vec<&str> = actions
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["get_business_info", "get_page_insights", "get_ad_insights"]
    );
    for action in actions {
        assert_eq!(action["retry"]["attempts"], 3, "{action}");
        let limit = action["rate_limit"].to_string();
        assert!(limit.contains("facebook_usage"), "{limit}");
    }
    assert!(
        actions[2]["rate_limit"].to_string().contains("3600"),
        "{}",
        actions[2]["rate_limit"]
    );
}

#[test]
fn a_bad_graph_url_or_version_stops_the_start_naming_the_variable() {
    for (variable, value) in [("FB_GRAPH_URL", "ftp://graph"), ("FB_GRAPH_VERSION", "21")] {
        let output = provider()
            .env(variable, value)
            .env("HUB_GRPC_URL", "127.0.0.1:9")
            .env("PROVIDER_AUTH_TOKEN", "t")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{stderr}");
    }
}
