//! The provider binary as a process: its manifest without a database, a bad `DATABASE_URL`
//! stopping the start without showing its password, and a password in `DATABASE_URL` absent
//! from every line it logs at `debug`, through an outage of the database.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use arbv_provider::dev_hub::DevHub;
use common::{TcpProxy, TestDatabase};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_database");
const TOKEN: &str = "process-test-token";
/// PostgreSQL with trust authentication takes any password: this one must still never show.
const PASSWORD: &str = "pw-7f3a9c1e5b";

#[test]
fn the_manifest_needs_no_database() {
    let output = Command::new(BINARY)
        .arg("--manifest")
        .env_clear()
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let manifest: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(manifest["name"], "database");
    let names: Vec<&str> = manifest["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "create_user",
            "get_user",
            "update_user",
            "delete_user",
            "list_users",
            "transfer"
        ]
    );
}

#[test]
fn a_bad_database_url_stops_the_start_without_its_password() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("PROVIDER_AUTH_TOKEN", TOKEN)
        .env("HUB_GRPC_URL", "127.0.0.1:1")
        .env("DATABASE_URL", format!("mysql://root:{PASSWORD}@db/shop"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("DATABASE_URL=mysql://root:***@db/shop"),
        "{said}"
    );
    assert!(!said.contains(PASSWORD), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_never_appears_in_the_logs_even_through_an_outage() {
    let Some(test_database) = TestDatabase::create().await else {
        return;
    };
    let proxy = TcpProxy::start(&test_database.url()).await;
    let url = format!(
        "postgres://postgres:{PASSWORD}@{}/{}",
        proxy.address(),
        test_database.name
    );
    let hub = DevHub::builder()
        .token(TOKEN)
        .hold(Duration::from_secs(1))
        .build();
    let server = hub.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let log_dir = std::env::temp_dir().join(format!("arbv-database-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir).unwrap();
    let (stdout_path, stderr_path) = (log_dir.join("stdout"), log_dir.join("stderr"));
    let mut child = Command::new(BINARY)
        .env("PROVIDER_AUTH_TOKEN", TOKEN)
        .env("HUB_GRPC_URL", server.url())
        .env("DATABASE_URL", &url)
        .env("DATABASE_ACQUIRE_TIMEOUT", "500ms")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(std::fs::File::create(&stdout_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
        .spawn()
        .unwrap();

    let call = |action: &'static str, payload: Value| {
        let hub = hub.clone();
        async move {
            let id = hub.enqueue("database", action, payload, None);
            hub.wait_result(&id, Duration::from_secs(60))
                .await
                .unwrap_or_else(|| panic!("no answer to {action}"))
        }
    };
    let created = call(
        "create_user",
        json!({"name": "Ada", "email": "ada@example.com", "balance_cents": 10}),
    )
    .await;
    assert_eq!(created["status"], "success", "{created:#}");
    let id = created["data"]["response"]["id"].clone();
    let duplicate = call(
        "create_user",
        json!({"name": "Ada", "email": "ada@example.com"}),
    )
    .await;
    assert_eq!(duplicate["data"]["response"]["error_code"], "CONFLICT");
    proxy.cut().await;
    let cut = call("get_user", json!({"user_id": id})).await;
    assert_eq!(
        cut["data"]["response"]["error_code"], "UNAVAILABLE",
        "{cut:#}"
    );
    proxy.restore();
    let back = call("get_user", json!({"user_id": id})).await;
    assert_eq!(back["status"], "success", "{back:#}");

    // SIGTERM: the provider drains and exits 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let logs = std::fs::read_to_string(&stdout_path).unwrap()
        + &std::fs::read_to_string(&stderr_path).unwrap();
    let _ = std::fs::remove_dir_all(&log_dir);
    assert!(
        logs.contains("the database schema is up to date"),
        "the provider logged its start: {logs}"
    );
    assert!(logs.lines().count() > 10, "debug logging is on: {logs}");
    for envelope in [&created, &duplicate, &cut, &back] {
        assert!(!envelope.to_string().contains(PASSWORD), "{envelope}");
    }
    assert!(
        !logs.contains(PASSWORD),
        "the password is in the logs:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_wait_for_an_unreachable_database() {
    let Some(test_database) = TestDatabase::create().await else {
        return;
    };
    let proxy = TcpProxy::start(&test_database.url()).await;
    proxy.cut().await;
    let url = format!(
        "postgres://postgres:{PASSWORD}@{}/{}",
        proxy.address(),
        test_database.name
    );
    let log_path = std::env::temp_dir().join(format!("arbv-database-wait-{}", std::process::id()));
    let mut child = Command::new(BINARY)
        .env("PROVIDER_AUTH_TOKEN", TOKEN)
        .env("HUB_GRPC_URL", "127.0.0.1:1")
        .env("DATABASE_URL", &url)
        .env("DATABASE_ACQUIRE_TIMEOUT", "200ms")
        .env("NO_COLOR", "1")
        .stdout(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let warned = arbv_tests::eventually(Duration::from_secs(30), || {
        let log_path = log_path.clone();
        async move {
            std::fs::read_to_string(&log_path)
                .is_ok_and(|logs| logs.contains("the database cannot be reached"))
        }
    })
    .await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        warned,
        "a warning says the database cannot be reached: {logs}"
    );
    assert!(status.success(), "{status:?}: {logs}");
    assert!(
        logs.contains("postgres://postgres:***@"),
        "the warning names the database: {logs}"
    );
    assert!(!logs.contains(PASSWORD), "{logs}");
}
