//! The provider through the dev hub over gRPC, on a database of each test's own: the schema's
//! bounds, hundreds of concurrent transfers, and the database cut and restored by a proxy.

mod common;

use std::time::Duration;

use arbv_provider::Provider;
use arbv_provider::dev_hub::DevHub;
use arbv_tests::{RunningProvider, config, start_hub};
use common::{TcpProxy, TestDatabase};
use database::{Database, DatabaseConfig};
use serde_json::{Value, json};

const PROVIDER: &str = "database";

async fn call(hub: &DevHub, action: &str, payload: Value) -> Value {
    let id = hub.enqueue(PROVIDER, action, payload, None);
    hub.wait_result(&id, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no answer to {action} within 30 s"))
}

fn response(envelope: &Value) -> &Value {
    &envelope["data"]["response"]
}

#[track_caller]
fn success(envelope: &Value) -> &Value {
    assert_eq!(envelope["status"], "success", "{envelope:#}");
    response(envelope)
}

#[track_caller]
fn error_code(envelope: &Value) -> &str {
    assert_eq!(envelope["status"], "error", "{envelope:#}");
    response(envelope)["error_code"]
        .as_str()
        .unwrap_or("<none>")
}

/// A hub, the provider on `url` at the default concurrency (16), serving.
async fn serve(
    database: &DatabaseConfig,
) -> (
    DevHub,
    arbv_provider::dev_hub::RunningServer,
    RunningProvider,
) {
    let (hub, server) = start_hub(Duration::from_secs(1)).await;
    let provider = Database::connect(database).await.unwrap();
    let running = RunningProvider::start(provider, config(&server.url()).build().unwrap());
    (hub, server, running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_through_the_hub_and_the_schemas_bounds() {
    let Some(test_database) = TestDatabase::create().await else {
        return;
    };
    let (hub, _server, running) = serve(&DatabaseConfig::new(test_database.url()).unwrap()).await;

    let ada = success(
        &call(
            &hub,
            "create_user",
            json!({"name": "Ada", "email": "ada@example.com", "balance_cents": 500}),
        )
        .await,
    )
    .clone();
    let grace = success(
        &call(
            &hub,
            "create_user",
            json!({"name": "Grace", "email": "grace@example.com"}),
        )
        .await,
    )
    .clone();
    assert_eq!(grace["balance_cents"], 0, "the balance defaults to 0");
    for field in ["id", "name", "email", "balance_cents", "created_at"] {
        assert!(ada.get(field).is_some(), "a user row has {field}: {ada}");
    }
    assert!(
        ada["created_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .is_ok()
    );
    let (a, g) = (ada["id"].clone(), grace["id"].clone());

    assert_eq!(
        success(&call(&hub, "get_user", json!({"user_id": a})).await),
        &ada
    );
    let updated = success(
        &call(
            &hub,
            "update_user",
            json!({"user_id": g, "email": "grace@navy.mil"}),
        )
        .await,
    )
    .clone();
    assert_eq!(
        (updated["name"].as_str(), updated["email"].as_str()),
        (Some("Grace"), Some("grace@navy.mil"))
    );
    assert_eq!(
        error_code(&call(&hub, "update_user", json!({"user_id": g})).await),
        "INVALID_PARAMETER"
    );
    assert_eq!(
        error_code(
            &call(
                &hub,
                "create_user",
                json!({"name": "Ada 2", "email": "ada@example.com"})
            )
            .await
        ),
        "CONFLICT"
    );

    let moved = success(
        &call(
            &hub,
            "transfer",
            json!({"from_user_id": a, "to_user_id": g, "amount_cents": 200}),
        )
        .await,
    )
    .clone();
    assert_eq!(
        (
            moved["from"]["balance_cents"].as_i64(),
            moved["to"]["balance_cents"].as_i64()
        ),
        (Some(300), Some(200))
    );
    let short = call(
        &hub,
        "transfer",
        json!({"from_user_id": g, "to_user_id": a, "amount_cents": 201}),
    )
    .await;
    assert_eq!(error_code(&short), "INSUFFICIENT_FUNDS");
    assert_eq!(
        error_code(
            &call(
                &hub,
                "transfer",
                json!({"from_user_id": a, "to_user_id": a, "amount_cents": 1})
            )
            .await
        ),
        "INVALID_PARAMETER"
    );

    let page = success(&call(&hub, "list_users", json!({})).await).clone();
    assert_eq!(page["total"], 2);
    let ids: Vec<&Value> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["id"])
        .collect();
    assert_eq!(ids, [&a, &g], "ordered by id");
    assert_eq!(
        success(&call(&hub, "list_users", json!({"limit": 1, "offset": 1})).await)["users"][0]["id"],
        g
    );

    assert_eq!(
        success(&call(&hub, "delete_user", json!({"user_id": g})).await),
        &json!({"deleted": true})
    );
    for (action, payload) in [
        ("get_user", json!({"user_id": g})),
        ("delete_user", json!({"user_id": g})),
        ("update_user", json!({"user_id": g, "name": "x"})),
    ] {
        assert_eq!(
            error_code(&call(&hub, action, payload).await),
            "NOT_FOUND",
            "{action}"
        );
    }

    // The bounds are in the schemas: such tasks are refused before the action runs.
    for (action, payload) in [
        ("list_users", json!({"limit": 0})),
        ("list_users", json!({"limit": 101})),
        ("list_users", json!({"offset": -1})),
        (
            "create_user",
            json!({"name": "Neg", "email": "neg@example.com", "balance_cents": -1}),
        ),
        (
            "create_user",
            json!({"name": "Bad", "email": "not an email"}),
        ),
        (
            "create_user",
            json!({"name": "", "email": "empty@example.com"}),
        ),
        (
            "transfer",
            json!({"from_user_id": a, "to_user_id": g, "amount_cents": 0}),
        ),
        ("get_user", json!({"user_id": 0})),
        ("get_user", json!({"id": a})),
    ] {
        let refused = call(&hub, action, payload.clone()).await;
        assert_eq!(
            refused["status"], "error",
            "{action} {payload}: {refused:#}"
        );
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid payload"),
            "{action} {payload}: {refused:#}"
        );
    }
    let manifest = Database::manifest();
    let list = manifest["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "list_users")
        .unwrap();
    let limit = &list["payload_schema"]["properties"]["limit"];
    assert_eq!(
        (&limit["minimum"], &limit["maximum"], &limit["default"]),
        (&json!(1), &json!(100), &json!(20)),
        "{list:#}"
    );

    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_transfers_keep_the_total_and_no_balance_goes_negative() {
    const USERS: usize = 8;
    const OPENING: i64 = 1_000;
    const TRANSFERS: usize = 600;
    let Some(test_database) = TestDatabase::create().await else {
        return;
    };
    let (hub, _server, running) = serve(&DatabaseConfig::new(test_database.url()).unwrap()).await;

    let mut ids = Vec::new();
    for i in 0..USERS {
        let user = call(&hub, "create_user", json!({"name": format!("user {i}"), "email": format!("u{i}@example.com"), "balance_cents": OPENING})).await;
        ids.push(success(&user)["id"].as_i64().unwrap());
    }

    // Transfers in both directions between few users, with amounts that often exceed what is
    // left: the provider runs 16 at once, so the same rows are contended all the time.
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move |bound: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % bound
    };
    let mut tasks = Vec::new();
    for _ in 0..TRANSFERS {
        let from = ids[next(USERS as u64) as usize];
        let to = loop {
            let to = ids[next(USERS as u64) as usize];
            if to != from {
                break to;
            }
        };
        let amount = 1 + next(600) as i64;
        let id = hub.enqueue(
            PROVIDER,
            "transfer",
            json!({"from_user_id": from, "to_user_id": to, "amount_cents": amount}),
            None,
        );
        tasks.push((id, from, to, amount));
    }

    let mut expected: std::collections::HashMap<i64, i64> =
        ids.iter().map(|id| (*id, OPENING)).collect();
    let (mut moved, mut refused) = (0, 0);
    for (id, from, to, amount) in &tasks {
        let envelope = hub
            .wait_result(id, Duration::from_secs(120))
            .await
            .expect("every transfer is answered");
        match envelope["status"].as_str() {
            Some("success") => {
                let answer = response(&envelope);
                assert!(answer["from"]["balance_cents"].as_i64().unwrap() >= 0);
                *expected.get_mut(from).unwrap() -= amount;
                *expected.get_mut(to).unwrap() += amount;
                moved += 1;
            }
            _ => {
                assert_eq!(error_code(&envelope), "INSUFFICIENT_FUNDS", "{envelope:#}");
                refused += 1;
            }
        }
    }
    assert!(
        moved > 100 && refused > 10,
        "{moved} moved, {refused} refused: both kinds were exercised"
    );

    let page = success(&call(&hub, "list_users", json!({"limit": 100})).await).clone();
    let users = page["users"].as_array().unwrap();
    assert_eq!(users.len(), USERS);
    let total: i64 = users
        .iter()
        .map(|u| u["balance_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(total, OPENING * USERS as i64, "no money made or lost");
    for user in users {
        let balance = user["balance_cents"].as_i64().unwrap();
        assert!(balance >= 0, "{user}");
        assert_eq!(
            balance,
            expected[&user["id"].as_i64().unwrap()],
            "each balance is its opening balance plus the transfers answered success: {user}"
        );
    }
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_gone_tasks_answer_unavailable_and_it_recovers_without_a_restart() {
    let Some(test_database) = TestDatabase::create().await else {
        return;
    };
    let proxy = TcpProxy::start(&test_database.url()).await;
    let mut database = DatabaseConfig::new(test_database.url_through(&proxy)).unwrap();
    database.acquire_timeout = Duration::from_millis(500);
    let (hub, _server, running) = serve(&database).await;

    let ada = success(
        &call(
            &hub,
            "create_user",
            json!({"name": "Ada", "email": "ada@example.com", "balance_cents": 100}),
        )
        .await,
    )["id"]
        .clone();
    let grace = success(
        &call(
            &hub,
            "create_user",
            json!({"name": "Grace", "email": "grace@example.com"}),
        )
        .await,
    )["id"]
        .clone();

    for outage in 1..=2 {
        proxy.cut().await;
        for (action, payload) in [
            ("get_user", json!({"user_id": ada})),
            ("list_users", json!({})),
            (
                "transfer",
                json!({"from_user_id": ada, "to_user_id": grace, "amount_cents": 10}),
            ),
            (
                "create_user",
                json!({"name": "Linus", "email": format!("l{outage}@example.com")}),
            ),
        ] {
            let answer = call(&hub, action, payload).await;
            assert_eq!(
                error_code(&answer),
                "UNAVAILABLE",
                "outage {outage}, {action}: {answer:#}"
            );
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap()
                    .contains("database is unavailable")
            );
        }
        assert!(!running.is_finished(), "the provider stays up");

        proxy.restore();
        // The first task after the database is back gets a working connection: the pool
        // checks the ones broken by the outage before handing them out.
        let back = call(&hub, "get_user", json!({"user_id": ada})).await;
        assert_eq!(
            success(&back)["balance_cents"],
            100,
            "outage {outage}: nothing changed meanwhile"
        );
    }
    let moved = call(
        &hub,
        "transfer",
        json!({"from_user_id": ada, "to_user_id": grace, "amount_cents": 10}),
    )
    .await;
    assert_eq!(success(&moved)["to"]["balance_cents"], 10);
    assert_eq!(
        success(&call(&hub, "list_users", json!({})).await)["total"],
        2,
        "no user was created during the outages"
    );
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_started_while_the_database_is_down_waits_for_it_then_serves() {
    let Some(test_database) = TestDatabase::create().await else {
        return;
    };
    let proxy = TcpProxy::start(&test_database.url()).await;
    proxy.cut().await;
    let mut database = DatabaseConfig::new(test_database.url_through(&proxy)).unwrap();
    database.acquire_timeout = Duration::from_millis(200);
    let starting = tokio::spawn(async move { Database::connect(&database).await });
    // Several tries fail meanwhile (the pauses start at 250 ms); the start goes on waiting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!starting.is_finished(), "the start waits for the database");
    proxy.restore();
    let provider = tokio::time::timeout(Duration::from_secs(30), starting)
        .await
        .expect("the start ends once the database is back")
        .unwrap()
        .unwrap();

    let (hub, server) = start_hub(Duration::from_secs(1)).await;
    let running = RunningProvider::start(provider, config(&server.url()).build().unwrap());
    let created = call(
        &hub,
        "create_user",
        json!({"name": "Ada", "email": "ada@example.com"}),
    )
    .await;
    assert_eq!(success(&created)["balance_cents"], 0, "the migrations ran");
    running.stop().await.unwrap();
}
