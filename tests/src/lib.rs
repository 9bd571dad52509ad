//! Support for the end-to-end tests: a provider written by hand against the core's
//! `Provider` trait (no macros), and helpers that start a dev hub and a provider on loopback.

pub mod contract_hub;
pub mod hubs;
pub mod logs;
pub mod promtool;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use arbv_provider::dev_hub::{DevHub, RunningServer};
use arbv_provider::{ActionError, ActionResponse, Config, Provider, ProviderDef};
use arbv_provider_core::proto::hub_server::{Hub, HubServer};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

/// The token the test hubs accept.
pub const TOKEN: &str = "test-token-5b3d9c1e";
/// The provider name the test provider serves under.
pub const PROVIDER: &str = "hand-written";

#[derive(Deserialize, JsonSchema)]
pub struct Echo {
    #[schemars(length(min = 1))]
    pub message: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct Add {
    pub a: f64,
    pub b: f64,
}

#[derive(Deserialize, JsonSchema)]
pub struct Sleep {
    pub ms: u64,
}

#[derive(Deserialize, JsonSchema)]
pub struct ApiAccount {
    #[schemars(length(min = 32))]
    pub api_key: String,
}

/// A provider implemented by hand, one action per row of the envelope table.
pub struct HandWritten;

impl Provider for HandWritten {
    fn definition() -> ProviderDef<Self> {
        let mut def = ProviderDef::new(PROVIDER);
        def.action("echo", |_this, mut call| async move {
            let payload: Echo = call.payload()?;
            Ok(Ok::<_, ActionError>(json!({ "echo": payload.message })))
        })
        .description("Echo back the message.")
        .payload::<Echo>();
        def.action("add", |_this, mut call| async move {
            let p: Add = call.payload()?;
            Ok(ActionResponse::success(json!({ "sum": p.a + p.b })).with_message("added"))
        })
        .payload::<Add>();
        def.action("fail", |_this, _call| async move {
            Ok(Err::<Value, _>(
                ActionError::new("the upstream API refused the request")
                    .with_code("UPSTREAM_REFUSED")
                    .with_details(json!({ "http_status": 403 })),
            ))
        });
        def.action("explode", |_this, _call| async move {
            if true {
                panic!("kaboom in the action");
            }
            Ok(ActionResponse::success(Value::Null))
        });
        def.action("sleep", |_this, mut call| async move {
            let p: Sleep = call.payload()?;
            tokio::time::sleep(Duration::from_millis(p.ms)).await;
            Ok(ActionResponse::success(json!({ "slept_ms": p.ms })))
        })
        .payload::<Sleep>()
        .timeout(Duration::from_secs(20));
        def.action("slow", |_this, _call| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(ActionResponse::success(Value::Null))
        })
        .timeout(Duration::from_millis(200));
        def.blocking_action("blocking_sleep", |_this, mut call| {
            let p: Sleep = call.payload()?;
            std::thread::sleep(Duration::from_millis(p.ms));
            Ok(ActionResponse::success(json!({ "slept_ms": p.ms })))
        })
        .payload::<Sleep>();
        def.action("with_account", |_this, mut call| async move {
            let account: ApiAccount = call.account()?;
            let task = call.context().task_id().to_owned();
            Ok(ActionResponse::success(
                json!({ "key_len": account.api_key.len(), "task": task }),
            ))
        })
        .account::<ApiAccount>();
        def.action("warn", |_this, _call| async move {
            Ok(ActionResponse::warning(
                "partial data",
                json!({ "rows": 3 }),
            ))
        });
        def
    }
}

/// A dev hub on a free loopback port.
pub async fn start_hub(hold: Duration) -> (DevHub, RunningServer) {
    let hub = DevHub::builder().token(TOKEN).hold(hold).build();
    let server = hub.serve(loopback()).await.expect("the dev hub starts");
    (hub, server)
}

/// Serves a hub written for a test on a free loopback port: its URL, and the server's task
/// (abort it to stop the hub).
pub async fn serve_hub<H: Hub>(hub: H) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(HubServer::new(hub))
            // Our own listener's sockets do not get the server's no-delay setting: set it here.
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
            .await
            .unwrap();
    });
    (format!("http://{addr}"), server)
}

/// `127.0.0.1:0`.
pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A configuration for a provider of the test hub at `url`.
pub fn config(url: &str) -> arbv_provider::ConfigBuilder {
    Config::builder()
        .auth_token(TOKEN)
        .hub_url(url)
        .drain_timeout(Duration::from_secs(10))
}

/// A provider serving in the background; `stop` shuts it down gracefully.
pub struct RunningProvider {
    signals: mpsc::UnboundedSender<()>,
    task: JoinHandle<Result<(), arbv_provider::Error>>,
}

impl RunningProvider {
    /// Starts `provider` with `config` on this runtime.
    pub fn start<P: Provider>(provider: P, config: Config) -> Self {
        Self::start_runtime(
            arbv_provider::Runtime::new(provider, config).expect("the provider compiles"),
        )
    }

    /// Starts an already built runtime.
    pub fn start_runtime(runtime: arbv_provider::Runtime) -> Self {
        let (signals, received) = mpsc::unbounded_channel::<()>();
        let received = futures_util::stream::unfold(received, |mut received| async move {
            received.recv().await.map(|()| ((), received))
        });
        let task = tokio::spawn(runtime.run_until_signals(received));
        Self { signals, task }
    }

    /// Sends one shutdown signal: the first begins the drain, the second cuts it short.
    pub fn signal(&self) {
        let _ = self.signals.send(());
    }

    /// True once `serve` has returned.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for `serve` to return, without signalling.
    pub async fn wait(self) -> Result<(), arbv_provider::Error> {
        self.task.await.expect("the provider task does not panic")
    }

    /// Signals shutdown and waits for `serve` to return.
    pub async fn stop(self) -> Result<(), arbv_provider::Error> {
        self.signal();
        self.wait().await
    }
}

/// Waits until `check` holds, polling every 10 ms, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Enqueues a task and waits for its envelope.
pub async fn call(hub: &DevHub, action: &str, payload: Value, account: Option<Value>) -> Value {
    let id = hub.enqueue(PROVIDER, action, payload, account);
    hub.wait_result(&id, Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("no result for {action} within 20 s"))
}

/// The outside services some tests need. Such a test runs, or fails with a message saying what
/// to start; it never passes without running. `ARBV_SKIP_SERVICES=redis` (a comma-separated list,
/// or `all`) skips the tests that need that service instead, and each skip is written straight to
/// the terminal, past libtest's capture, so a green run shows what it did not run.
pub mod services {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    /// The variable that skips the tests needing a service.
    pub const SKIP_VARIABLE: &str = "ARBV_SKIP_SERVICES";

    const START_REDIS: &str = "Start one with: redis-server --port 6379 --save \"\" --appendonly no\n\
         (or set REDIS_URL to a Redis that can be written to; Debian/Ubuntu: apt-get install redis-server)";

    /// True when `ARBV_SKIP_SERVICES` names `service` (or says `all`).
    pub fn skipped(service: &str) -> bool {
        std::env::var(SKIP_VARIABLE).is_ok_and(|list| {
            list.split([',', ' '])
                .map(str::trim)
                .any(|name| name.eq_ignore_ascii_case(service) || name.eq_ignore_ascii_case("all"))
        })
    }

    /// Reports the skip of the running test on the terminal itself: `eprintln!` would be
    /// captured and hidden, since the test passes.
    fn report_skip(service: &str) {
        let current = std::thread::current();
        let test = current.name().unwrap_or("a test");
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED {test}: it needs {service}, and {SKIP_VARIABLE} skips such tests"
        );
    }

    /// `None` when the tests needing `service` are skipped, after saying so; otherwise the
    /// service must be there, or the test fails saying how to start it.
    #[track_caller]
    fn require(
        service: &str,
        how_to_start: &str,
        available: impl FnOnce() -> Result<(), String>,
    ) -> Option<()> {
        if skipped(service) {
            report_skip(service);
            return None;
        }
        if let Err(missing) = available() {
            panic!(
                "{missing}\n{how_to_start}\nTo skip the tests that need {service} instead, set {SKIP_VARIABLE}={service}."
            );
        }
        Some(())
    }

    /// True when a Redis answers PING at `host:port`.
    pub fn redis_answers(host_port: &str) -> bool {
        let Some(addr) = host_port.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
            return false;
        };
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut answer = [0u8; 5];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG"
    }

    /// `REDIS_URL` (default `redis://127.0.0.1:6379`), where a Redis must answer; `None` when
    /// `ARBV_SKIP_SERVICES` skips the tests that need Redis.
    #[track_caller]
    pub fn redis_url() -> Option<String> {
        let url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let host_port = url
            .trim_start_matches("redis://")
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        require("redis", START_REDIS, || {
            if redis_answers(&host_port) {
                Ok(())
            } else {
                Err(format!("no Redis answers at {url} (REDIS_URL)."))
            }
        })?;
        Some(url)
    }

    const START_RABBITMQ: &str = "Start one with: rabbitmq-server (Debian/Ubuntu: apt-get install rabbitmq-server;\n\
         it listens on 127.0.0.1:5672 with the user guest/guest), or set AMQP_URL to a broker where\n\
         queues can be declared and deleted";

    /// True when an AMQP 0-9-1 broker answers the protocol header at `host:port` with its
    /// `connection.start` frame.
    pub fn amqp_answers(host_port: &str) -> bool {
        let Some(addr) = host_port.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
            return false;
        };
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(1000)));
        let mut frame_start = [0u8; 3];
        stream.write_all(b"AMQP\x00\x00\x09\x01").is_ok()
            && stream.read_exact(&mut frame_start).is_ok()
            && frame_start == [1, 0, 0]
    }

    /// `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`), where a RabbitMQ must
    /// answer; `None` when `ARBV_SKIP_SERVICES` skips the tests that need RabbitMQ. Neither the
    /// URL nor its password is quoted when it is missing.
    #[track_caller]
    pub fn amqp_url() -> Option<String> {
        let url = std::env::var("AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
        let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let authority = after_scheme.split('/').next().unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        let host_port = if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:5672")
        };
        require("rabbitmq", START_RABBITMQ, || {
            if amqp_answers(&host_port) {
                Ok(())
            } else {
                Err(format!("no AMQP broker answers at {host_port} (AMQP_URL)."))
            }
        })?;
        Some(url)
    }

    /// A Redis server of the test's own, on a free port, that the test may stop and start.
    pub struct PrivateRedis {
        port: u16,
        child: Option<Child>,
    }

    impl PrivateRedis {
        /// Starts `redis-server` on a free port; `None` when `ARBV_SKIP_SERVICES` skips the
        /// tests that need Redis.
        #[track_caller]
        pub fn start() -> Option<Self> {
            require("redis", START_REDIS, || {
                match Command::new("redis-server").arg("--version").output() {
                    Ok(_) => Ok(()),
                    Err(e) => Err(format!(
                        "this test runs a Redis of its own, and `redis-server` cannot be run: {e}."
                    )),
                }
            })?;
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free loopback port")
                .port();
            let mut redis = Self { port, child: None };
            redis.resume();
            Some(redis)
        }

        /// `redis://127.0.0.1:PORT`.
        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        /// Kills the server (its data is gone, as after a crash).
        pub fn stop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        /// Starts the server again on the same port and waits until it answers.
        pub fn resume(&mut self) {
            self.stop();
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &self.port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            self.child = Some(child);
            let address = format!("127.0.0.1:{}", self.port);
            for _ in 0..100 {
                if redis_answers(&address) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("redis-server on {address} did not answer within 5 s");
        }
    }

    impl Drop for PrivateRedis {
        fn drop(&mut self) {
            self.stop();
        }
    }
}
