//! `arbv hub` and `arbv send` as a person uses them: two processes, real gRPC and HTTP on
//! loopback, and a provider in between.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use arbv_provider::{ActionResponse, Config, Provider, ProviderDef};
use serde_json::{Value, json};

const TOKEN: &str = "cli-test-token";

struct Echo;

impl Provider for Echo {
    fn definition() -> ProviderDef<Self> {
        let mut def = ProviderDef::new("cli-echo");
        def.action("echo", |_this, mut call| async move {
            let payload: Value = call.payload()?;
            Ok(ActionResponse::success(
                json!({ "echo": payload["message"] }),
            ))
        });
        def.action("warn", |_this, _call| async move {
            Ok(ActionResponse::warning(
                "partial data",
                json!({ "rows": 3 }),
            ))
        });
        def.action("limit", |_this, _call| async move {
            Ok(ActionResponse::limit(Duration::from_secs(30)))
        });
        def
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Hub(Child);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arbv() -> Command {
    Command::new(env!("CARGO_BIN_EXE_arbv"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbv_hub_and_arbv_send_round_trip() {
    let (grpc, http) = (free_port(), free_port());
    let _hub = Hub(arbv()
        .args([
            "hub",
            "--grpc",
            &format!("127.0.0.1:{grpc}"),
            "--http",
            &format!("127.0.0.1:{http}"),
        ])
        .env("PROVIDER_AUTH_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("arbv hub starts"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = Config::builder()
        .auth_token(TOKEN)
        .hub_url(format!("127.0.0.1:{grpc}"))
        .build()
        .unwrap();
    let provider = tokio::spawn(arbv_provider::serve_until(Echo, config, async move {
        let _ = stopped.await;
    }));
    let hub_url = format!("http://127.0.0.1:{http}");

    let send = |args: &[&str]| {
        let hub_url = hub_url.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                arbv()
                    .args(&args)
                    .args(["--provider", "cli-echo", "--hub", &hub_url])
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    // The hub may still be starting: retry the first send briefly.
    let mut output = send(&["send", "echo", r#"{"message":"hi"}"#, "--wait", "10"]).await;
    for _ in 0..50 {
        if output.status.code() != Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        output = send(&["send", "echo", r#"{"message":"hi"}"#, "--wait", "10"]).await;
    }
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let envelope: Value =
        serde_json::from_slice(&output.stdout).expect("the envelope is printed as JSON");
    assert_eq!(envelope["status"], "success");
    assert_eq!(envelope["data"]["response"], json!({"echo": "hi"}));
    assert_eq!(envelope["data"]["provider"], "cli-echo");

    let output = send(&["send", "nope", "--wait"]).await;
    assert_eq!(output.status.code(), Some(1), "an error envelope exits 1");
    let envelope: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(envelope["message"], "Action 'nope' not found");

    let output = send(&["send", "warn", "--wait", "10"]).await;
    assert_eq!(output.status.code(), Some(0), "a warning envelope exits 0");
    let envelope: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(envelope["status"], "warning");

    let output = send(&["send", "limit", "--wait", "10"]).await;
    assert_eq!(output.status.code(), Some(1), "a limit envelope exits 1");
    let envelope: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(envelope["status"], "limit");

    let output = send(&["send", "echo", "{not json"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("PAYLOAD is not JSON"));

    // A provider nobody serves: the task waits, `--wait` runs out.
    let output = tokio::task::spawn_blocking({
        let hub_url = hub_url.clone();
        move || {
            arbv()
                .args(["send", "echo", r#"{"message":"hi"}"#, "--wait", "0.3"])
                .args(["--provider", "nobody-serves-this", "--hub", &hub_url])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(2), "no result in time exits 2");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("has no result after"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let listing = tokio::task::spawn_blocking(move || {
        arbv()
            .args(["tasks", "--hub", &format!("http://127.0.0.1:{http}")])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert_eq!(
        listing.lines().filter(|l| l.contains("done")).count(),
        4,
        "{listing}"
    );

    let _ = stop.send(());
    provider.await.unwrap().unwrap();
}

#[test]
fn arbv_send_to_a_hub_that_is_not_there_exits_2() {
    // A port that was free a moment ago: nothing listens there.
    let hub = format!("http://127.0.0.1:{}", free_port());
    let output = arbv()
        .args(["send", "echo", r#"{"message":"hi"}"#, "--wait", "1"])
        .args(["--provider", "cli-echo", "--hub", &hub])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.stderr.is_empty(), "it says why");
}
