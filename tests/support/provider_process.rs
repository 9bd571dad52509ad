//! The test provider (`tests/bin/process_provider.rs`) as a process, the way it runs in
//! production: the real binary configured from the environment, its standard output and error
//! collected line by line. Shared by the test binaries that start it; each uses a part.
#![allow(dead_code)]

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbv_provider::dev_hub::RunningServer;
use arbv_tests::{TOKEN, eventually};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// The name in the test provider's code.
pub const PROVIDER: &str = "process-test-provider";

/// Variables of the developer's shell that would change what the provider does, besides every
/// `PROVIDER_*`, `LOG_*` and `OTEL_*`.
const INHERITED: &[&str] = &[
    "HUB_GRPC_URL",
    "TASK_EXECUTION_TIMEOUT",
    "RUST_LOG",
    "NO_COLOR",
];

/// The test provider's process, with its stdout and stderr collected line by line.
pub struct ProviderProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl ProviderProcess {
    /// Starts the test provider against `hub` with `PROVIDER_AUTH_TOKEN` and `env` on top of
    /// an environment cleared of the provider's variables.
    pub fn start(hub: &RunningServer, env: &[(&str, &str)]) -> Self {
        Self::start_program(env!("CARGO_BIN_EXE_process-provider"), hub, env)
    }

    /// Starts another provider binary of the tests (`CARGO_BIN_EXE_…`) the same way.
    pub fn start_program(program: &str, hub: &RunningServer, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(program);
        for (name, _) in std::env::vars() {
            let ours = ["PROVIDER_", "LOG_", "OTEL_"]
                .iter()
                .any(|prefix| name.starts_with(prefix));
            if ours || INHERITED.contains(&name.as_str()) {
                command.env_remove(name);
            }
        }
        command
            .env("HUB_GRPC_URL", hub.url())
            .env("PROVIDER_AUTH_TOKEN", TOKEN)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the test provider starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), lines.clone()),
            collect(child.stderr.take().unwrap(), lines.clone()),
        ];
        Self {
            child,
            lines,
            readers,
        }
    }

    pub fn signal(&self, signal: Signal) {
        let pid = self.child.id().expect("the provider is running");
        kill(Pid::from_raw(pid as i32), signal).expect("the signal is delivered");
    }

    /// Waits until a line of output contains `text`.
    pub async fn wait_for_output(&self, text: &str, limit: Duration) {
        let seen = eventually(limit, || async {
            self.lines.lock().unwrap().iter().any(|l| l.contains(text))
        })
        .await;
        assert!(
            seen,
            "no output line contains {text:?} within {limit:?}; output:\n{}",
            self.lines.lock().unwrap().join("\n")
        );
    }

    /// Waits for the process to exit (at most `limit`) and returns its status and every line
    /// it wrote.
    pub async fn exit(mut self, limit: Duration) -> (ExitStatus, Vec<String>) {
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("the provider's status can be read"),
            Err(_) => panic!(
                "the provider did not exit within {limit:?}; output:\n{}",
                self.lines.lock().unwrap().join("\n")
            ),
        };
        for reader in self.readers.drain(..) {
            reader.await.expect("the output reader does not panic");
        }
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        (status, lines)
    }

    /// Sends SIGTERM and waits for a clean exit; returns every line written.
    pub async fn stop(self) -> Vec<String> {
        self.signal(Signal::SIGTERM);
        let (status, output) = self.exit(Duration::from_secs(60)).await;
        assert_eq!(
            status.code(),
            Some(0),
            "a clean stop; output:\n{}",
            output.join("\n")
        );
        output
    }
}

fn collect(
    pipe: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lock().unwrap().push(line);
        }
    })
}
