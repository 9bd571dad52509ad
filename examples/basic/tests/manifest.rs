//! `basic --manifest` as a process: the manifest on stdout, with no hub, no token and no
//! provider variable in the environment.

use std::process::Command;

use serde_json::Value;

#[test]
fn manifest_needs_no_hub_and_no_token() {
    let output = Command::new(env!("CARGO_BIN_EXE_basic"))
        .arg("--manifest")
        .env_clear()
        .output()
        .expect("the basic provider starts");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest: Value =
        serde_json::from_slice(&output.stdout).expect("the manifest is printed as JSON");

    assert_eq!(manifest["name"], "basic-provider");
    let actions = manifest["actions"].as_array().expect("a list of actions");
    let names: Vec<&str> = actions.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "echo",
            "add_numbers",
            "greet",
            "create_profile",
            "process_order"
        ]
    );
    let action = |name: &str| actions.iter().find(|a| a["name"] == name).unwrap();

    let echo = action("echo");
    assert_eq!(echo["description"], "Echo back the message.");
    assert_eq!(echo["account_required"], false);
    let message = &echo["payload_schema"]["properties"]["message"];
    assert_eq!(message["type"], "string");
    assert_eq!(message["minLength"], 1);
    assert_eq!(
        echo["payload_schema"]["required"],
        serde_json::json!(["message"])
    );

    let add = &action("add_numbers")["payload_schema"];
    assert_eq!(add["properties"]["a"]["type"], "number");
    assert_eq!(add["properties"]["b"]["type"], "number");

    let create = action("create_profile");
    assert_eq!(create["account_required"], true);
    assert_eq!(
        create["account_schema"]["properties"]["api_key"]["minLength"],
        32
    );

    let order = serde_json::to_string(&action("process_order")["payload_schema"]).unwrap();
    for field in ["order_id", "items", "customer", "quantity", "price", "zip"] {
        assert!(
            order.contains(&format!("\"{field}\"")),
            "{field} in {order}"
        );
    }
}
