//! `arbv hub` and `arbv send` as a person uses them: two processes, real gRPC and HTTP on
//! loopback, and a provider in between.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
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

const ADMIN_TOKEN: &str = "admin-secret-4f1c";

/// `arbv hub` on ephemeral ports, its output (the log and the ready line) collected as it comes.
struct StartedHub {
    _process: Hub,
    /// `host:port` of the gRPC listener.
    grpc: String,
    /// `http://host:port` of the admin API.
    http: String,
    output: Arc<Mutex<String>>,
}

impl StartedHub {
    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

/// Collects `stream` line by line into `output`; sends the ready line on `ready`.
fn collect(
    stream: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    ready: mpsc::Sender<String>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line).into_owned();
            output.lock().unwrap().push_str(&text);
            if text.starts_with("dev hub ready") {
                let _ = ready.send(text);
            }
            line.clear();
        }
    });
}

/// Starts `arbv hub --grpc <grpc> --http 127.0.0.1:0 <args>` as a terminal-less process would
/// run (output piped, `NO_COLOR` unset) and waits for its ready line.
fn start_hub(grpc: &str, args: &[&str]) -> StartedHub {
    let mut child = arbv()
        .args(["hub", "--grpc", grpc, "--http", "127.0.0.1:0"])
        .args(args)
        .env("PROVIDER_AUTH_TOKEN", TOKEN)
        .env_remove("ARBV_ADMIN_TOKEN")
        .env_remove("NO_COLOR")
        .env_remove("LOG_FORMAT")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("arbv hub starts");
    let output = Arc::new(Mutex::new(String::new()));
    let (ready, is_ready) = mpsc::channel();
    collect(child.stdout.take().unwrap(), output.clone(), ready.clone());
    collect(child.stderr.take().unwrap(), output.clone(), ready);
    let process = Hub(child);
    let line = is_ready
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("arbv hub never got ready: {}", output.lock().unwrap()));
    // "dev hub ready: gRPC on A (HUB_GRPC_URL=A), admin API on http://B"
    let grpc = line
        .split("gRPC on ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the ready line names the gRPC address")
        .to_owned();
    let http = line
        .split("admin API on ")
        .nth(1)
        .expect("the ready line names the admin API")
        .trim()
        .to_owned();
    StartedHub {
        _process: process,
        grpc,
        http,
        output,
    }
}

/// Runs `arbv <args>` with `env` set (and `ARBV_ADMIN_TOKEN` only when given there).
async fn run_arbv(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = arbv();
    command.args(args).env_remove("ARBV_ADMIN_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_is_required_when_set_and_never_shown() {
    // gRPC on every interface: the hub must warn that tokens travel in clear.
    let hub = start_hub("0.0.0.0:0", &["--admin-token", ADMIN_TOKEN]);
    let client = reqwest::Client::new();
    let stats = format!("{}/stats", hub.http);

    let refused = client.get(&stats).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let body: Value = refused.json().await.expect("a JSON error");
    let message = body["error"].as_str().expect("an error message");
    assert!(message.contains("admin token"), "{message}");
    assert!(!message.contains(ADMIN_TOKEN));

    let wrong = [
        format!("Bearer {}", &ADMIN_TOKEN[..8]),
        format!("Bearer {ADMIN_TOKEN}x"),
        "Bearer ".to_owned(),
        ADMIN_TOKEN.to_owned(),
        format!("Basic {ADMIN_TOKEN}"),
    ];
    for header in &wrong {
        let answer = client
            .get(&stats)
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{header:?} must be refused");
    }
    let refused_task = client
        .post(format!("{}/tasks", hub.http))
        .json(&json!({"provider": "p", "action": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused_task.status(),
        401,
        "no task is queued without the token"
    );

    // Through raw HTTP on a socket, as curl would send it.
    let addr = hub.http.trim_start_matches("http://").to_owned();
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        write!(
            socket,
            "GET /stats HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        raw.contains(r#""queued":0"#),
        "nothing was queued by refused requests: {raw}"
    );

    let send = [
        "send",
        "echo",
        r#"{"message":"hi"}"#,
        "--provider",
        "cli-echo",
        "--hub",
        &hub.http,
    ];
    let without = run_arbv(&send, &[]).await;
    assert_eq!(without.status.code(), Some(2));
    let complaint = text(&without.stderr);
    assert!(
        complaint.contains("401") && complaint.contains("ARBV_ADMIN_TOKEN"),
        "{complaint}"
    );

    let with_flag = run_arbv(&[&send[..], &["--admin-token", ADMIN_TOKEN]].concat(), &[]).await;
    assert_eq!(
        with_flag.status.code(),
        Some(0),
        "{}",
        text(&with_flag.stderr)
    );
    let id = text(&with_flag.stdout).trim().to_owned();
    assert_eq!(id.len(), 36, "the task id is printed: {id:?}");

    let listing = run_arbv(
        &["tasks", "--hub", &hub.http],
        &[("ARBV_ADMIN_TOKEN", ADMIN_TOKEN)],
    )
    .await;
    assert_eq!(listing.status.code(), Some(0), "{}", text(&listing.stderr));
    let listing = text(&listing.stdout);
    assert!(
        listing.contains(&id) && listing.contains("queued"),
        "{listing}"
    );
    let wrong_env = run_arbv(
        &["tasks", "--hub", &hub.http],
        &[("ARBV_ADMIN_TOKEN", "nope")],
    )
    .await;
    assert_eq!(wrong_env.status.code(), Some(2));

    let log = hub.output();
    assert!(
        !log.contains(ADMIN_TOKEN),
        "the admin token is never logged: {log}"
    );
    assert!(
        !log.contains("\x1b["),
        "no colour codes in piped output: {log:?}"
    );
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("gRPC listener") && warnings[0].contains("in clear"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbv_hub_keep_forgets_the_oldest_answers() {
    let rejected = run_arbv(&["hub", "--keep", "0"], &[]).await;
    assert_eq!(rejected.status.code(), Some(2), "--keep 0 is refused");
    assert!(text(&rejected.stderr).contains("--keep"));

    let hub = start_hub("127.0.0.1:0", &["--keep", "3"]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = Config::builder()
        .auth_token(TOKEN)
        .hub_url(hub.grpc.clone())
        .build()
        .unwrap();
    let provider = tokio::spawn(arbv_provider::serve_until(Echo, config, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    // One at a time, so the answers come in queueing order.
    let mut ids = Vec::new();
    for i in 0..5 {
        let payload = json!({ "message": format!("m{i}") }).to_string();
        let sent = run_arbv(
            &[
                "send",
                "echo",
                &payload,
                "--provider",
                "cli-echo",
                "--hub",
                &hub.http,
            ],
            &[],
        )
        .await;
        assert_eq!(sent.status.code(), Some(0), "{}", text(&sent.stderr));
        let id = text(&sent.stdout).trim().to_owned();
        let task: Value = client
            .get(format!("{}/tasks/{id}?wait=60", hub.http))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(task["state"], "done", "{task}");
        ids.push(id);
    }

    for id in &ids[..2] {
        let answer = client
            .get(format!("{}/tasks/{id}", hub.http))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404);
        let body: Value = answer.json().await.unwrap();
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains("forgotten") && message.contains("last 3"),
            "{message}"
        );
    }
    for (i, id) in ids.iter().enumerate().skip(2) {
        let task: Value = client
            .get(format!("{}/tasks/{id}", hub.http))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(task["result"]["data"]["response"]["echo"], format!("m{i}"));
    }
    let stats: Value = client
        .get(format!("{}/stats", hub.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &stats["done"],
            &stats["forgotten"],
            &stats["queued"],
            &stats["leased"]
        ),
        (&json!(5), &json!(2), &json!(0), &json!(0)),
        "{stats}"
    );
    let listing = text(&run_arbv(&["tasks", "--hub", &hub.http], &[]).await.stdout);
    let listed: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, ids[2..], "{listing}");

    let _ = stop.send(());
    provider.await.unwrap().unwrap();
}
