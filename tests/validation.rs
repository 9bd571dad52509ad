//! Validation end to end: the basic example's contract and every kind of schema rule, through
//! the dev hub over real gRPC. Each invalid task is answered with every error and its path.

use std::collections::BTreeMap;
use std::time::Duration;

use arbv_provider::dev_hub::DevHub;
use arbv_provider::prelude::*;
use arbv_tests::{RunningProvider, config, start_hub};
use basic::Basic;

async fn ask(
    hub: &DevHub,
    provider: &str,
    action: &str,
    payload: Value,
    account: Option<Value>,
) -> Value {
    let id = hub.enqueue(provider, action, payload, account);
    hub.wait_result(&id, Duration::from_secs(20))
        .await
        .expect("every task is answered")
}

fn paths(envelope: &Value) -> Vec<String> {
    envelope["data"]["response"]["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {envelope:#}"))
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect()
}

fn order(items: Value) -> Value {
    json!({
        "order_id": "o-1",
        "items": items,
        "customer": {"name": "Ada", "email": "ada@example.com",
                     "address": {"street": "1 Loop Rd", "city": "Localhost", "zip": "12700"}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_basic_example_answers_its_contract() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(Basic, config(&server.url()).build().unwrap());
    let p = "basic-provider";

    let e = ask(&hub, p, "echo", json!({"message": "hi"}), None).await;
    assert_eq!(e["data"]["response"], json!({"echo": "hi"}));
    let e = ask(&hub, p, "add_numbers", json!({"a": 1.5, "b": -4}), None).await;
    assert_eq!(e["data"]["response"], json!({"sum": -2.5}));
    for (language, greeting) in [
        ("en", "Hello"),
        ("es", "Hola"),
        ("fr", "Bonjour"),
        ("de", "Hallo"),
        ("it", "Hello"),
    ] {
        let e = ask(
            &hub,
            p,
            "greet",
            json!({"name": "Ada", "language": language}),
            None,
        )
        .await;
        assert_eq!(
            e["data"]["response"]["message"],
            format!("{greeting}, Ada!")
        );
    }
    // `language` has a default.
    let e = ask(&hub, p, "greet", json!({"name": "Ada"}), None).await;
    assert_eq!(e["data"]["response"]["message"], "Hello, Ada!");
    let account = json!({"api_key": "k".repeat(32), "permissions": {"read": true}});
    let e = ask(
        &hub,
        p,
        "create_profile",
        json!({"username": "ada", "profile": {"age": 36}, "tags": ["x"]}),
        Some(account.clone()),
    )
    .await;
    assert_eq!(
        e["data"]["response"],
        json!({"username": "ada", "profile": {"age": 36}, "tags": ["x"], "permissions": {"read": true}})
    );
    // `tags` defaults to [].
    let e = ask(
        &hub,
        p,
        "create_profile",
        json!({"username": "ada", "profile": {}}),
        Some(account.clone()),
    )
    .await;
    assert_eq!(e["data"]["response"]["tags"], json!([]));
    let e = ask(
        &hub,
        p,
        "process_order",
        order(json!([
            {"product_id": "a", "quantity": 2, "price": 1.25},
            {"product_id": "b", "quantity": 1, "price": 0}
        ])),
        None,
    )
    .await;
    assert_eq!(
        e["data"]["response"],
        json!({"order_id": "o-1", "total": 2.5})
    );

    // Required fields, wrong types, constraints.
    let e = ask(&hub, p, "echo", json!({}), None).await;
    assert_eq!(
        e["message"],
        "Invalid payload: Missing required parameters: message"
    );
    assert_eq!(e["data"]["response"]["missing_params"], json!(["message"]));
    let e = ask(&hub, p, "echo", json!({"message": ""}), None).await;
    assert_eq!(paths(&e), ["/message"]);
    let e = ask(&hub, p, "add_numbers", json!({"a": "1", "b": null}), None).await;
    assert_eq!(paths(&e), ["/a", "/b"]);
    let e = ask(
        &hub,
        p,
        "greet",
        json!({"name": "Ada", "language": 7}),
        None,
    )
    .await;
    assert_eq!(paths(&e), ["/language"]);

    // Nested objects and arrays of objects: every error, each with its pointer.
    let mut bad = order(json!([
        {"product_id": "a", "quantity": 0, "price": 1},
        {"product_id": "b", "quantity": 1, "price": -1},
        {"quantity": 1.5, "price": 1}
    ]));
    bad["customer"]["address"]
        .as_object_mut()
        .unwrap()
        .remove("zip");
    let e = ask(&hub, p, "process_order", bad, None).await;
    assert_eq!(
        paths(&e),
        [
            "/customer/address/zip",
            "/items/0/quantity",
            "/items/1/price",
            "/items/2/product_id",
            "/items/2/quantity"
        ]
    );
    assert_eq!(
        e["data"]["response"]["missing_params"],
        json!(["customer.address.zip", "items.2.product_id"])
    );
    let message = e["message"].as_str().unwrap();
    assert!(message.starts_with("Invalid payload: Missing required parameters: customer.address.zip, items.2.product_id; /items/0/quantity"), "{message}");
    assert!(
        e["data"]["response"]["schema"]["$defs"]["OrderItem"].is_object(),
        "the schema is included"
    );

    // Maps must be objects; accounts are checked too, and their values stay out of messages.
    let e = ask(
        &hub,
        p,
        "create_profile",
        json!({"username": "ada", "profile": []}),
        Some(account),
    )
    .await;
    assert_eq!(paths(&e), ["/profile"]);
    let e = ask(
        &hub,
        p,
        "create_profile",
        json!({"username": "ada", "profile": {}}),
        Some(json!({"api_key": "short-key", "permissions": 1})),
    )
    .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid account:"),
        "{e}"
    );
    assert_eq!(paths(&e), ["/api_key", "/permissions"]);
    assert!(!e.to_string().contains("short-key"));

    provider.stop().await.unwrap();
    server.stop().await;
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Plan {
    Free,
    Pro,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Signup {
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{2,15}$"))]
    handle: String,
    plan: Plan,
    nickname: Option<String>,
    #[schemars(range(min = 13, max = 130))]
    age: u8,
    #[serde(default)]
    limits: BTreeMap<String, u32>,
}

struct Rules;

#[provider(name = "rules")]
impl Rules {
    #[action]
    async fn signup(&self, payload: Signup) -> Value {
        json!({
            "handle": payload.handle, "plan": format!("{:?}", payload.plan),
            "nickname": payload.nickname, "age": payload.age, "limits": payload.limits,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_enums_patterns_ranges_and_maps() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let provider = RunningProvider::start(Rules, config(&server.url()).build().unwrap());
    let ok = ask(
        &hub,
        "rules",
        "signup",
        json!({"handle": "ada_l", "plan": "pro", "age": 36}),
        None,
    )
    .await;
    assert_eq!(
        ok["data"]["response"],
        json!({"handle": "ada_l", "plan": "Pro", "nickname": null, "age": 36, "limits": {}})
    );
    let ok = ask(
        &hub,
        "rules",
        "signup",
        json!({"handle": "ada_l", "plan": "free", "age": 36, "nickname": null, "limits": {"x": 1}}),
        None,
    )
    .await;
    assert_eq!(ok["status"], "success", "{ok}");

    let e = ask(
        &hub,
        "rules",
        "signup",
        json!({"handle": "9lives", "plan": "gold", "age": 200, "nickname": 5, "limits": {"x": -1}}),
        None,
    )
    .await;
    assert_eq!(
        paths(&e),
        ["/age", "/handle", "/limits/x", "/nickname", "/plan"]
    );
    let e = ask(&hub, "rules", "signup", json!({"plan": "pro"}), None).await;
    assert_eq!(
        e["data"]["response"]["missing_params"],
        json!(["age", "handle"])
    );
    provider.stop().await.unwrap();
    server.stop().await;
}
