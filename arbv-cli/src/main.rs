//! `arbv`: the developer's command line. `arbv hub` runs a dev hub; `arbv send` gives it a task
//! and prints the answer.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use arbv_provider::dev_hub::{DEFAULT_KEEP, DevHub};
use arbv_provider::telemetry::Escaped;
use clap::{Parser, Subcommand};
use serde_json::Value;

#[derive(Parser)]
#[command(name = "arbv", version, about = "Develop Arbvantage providers locally")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a dev hub: gRPC for providers, an HTTP JSON admin API for people and `arbv send`.
    Hub {
        /// Where providers connect (gRPC).
        #[arg(long, default_value = "127.0.0.1:50051")]
        grpc: SocketAddr,
        /// Where the admin API listens (HTTP JSON, and Prometheus metrics on /metrics).
        #[arg(long, default_value = "127.0.0.1:50080")]
        http: SocketAddr,
        /// The token providers must send.
        #[arg(
            long,
            env = "PROVIDER_AUTH_TOKEN",
            default_value = "dev-token",
            hide_env_values = true
        )]
        token: String,
        /// Seconds a `GetTask` call is held open while there is no work (0 answers at once).
        #[arg(long, default_value_t = 10.0)]
        hold: f64,
        /// Never hand the next task back with a result's answer, as a hub that is not ours may
        /// not: every task then costs a `GetTask` and a `SubmitTaskResult`.
        #[arg(long)]
        no_hand_back: bool,
        /// A token the admin API requires as `Authorization: Bearer <token>` (none: open).
        #[arg(long, env = "ARBV_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// How many answered tasks to remember; older answers are forgotten.
        #[arg(long, default_value_t = DEFAULT_KEEP, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        keep: usize,
    },
    /// Queue a task on a dev hub and, with --wait, print its result envelope.
    Send {
        /// The action to call.
        action: String,
        /// The payload, as JSON.
        #[arg(default_value = "{}")]
        payload: String,
        /// The account, as JSON.
        #[arg(long)]
        account: Option<String>,
        /// The provider the task is for.
        #[arg(long, env = "PROVIDER_NAME")]
        provider: String,
        /// Wait for the result (up to this many seconds; 30 when given without a value).
        #[arg(long, num_args = 0..=1, default_missing_value = "30")]
        wait: Option<f64>,
        /// The dev hub's admin API.
        #[arg(long, env = "ARBV_HUB_HTTP", default_value = "http://127.0.0.1:50080")]
        hub: String,
        /// The admin API's token, when the hub has one.
        #[arg(long, env = "ARBV_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
    /// List the dev hub's tasks and their states.
    Tasks {
        /// The dev hub's admin API.
        #[arg(long, env = "ARBV_HUB_HTTP", default_value = "http://127.0.0.1:50080")]
        hub: String,
        /// The admin API's token, when the hub has one.
        #[arg(long, env = "ARBV_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Hub {
            grpc,
            http,
            token,
            hold,
            no_hand_back,
            admin_token,
            keep,
        } => {
            let hub = HubOptions {
                token,
                admin_token,
                hold,
                hand_back: !no_hand_back,
                keep,
            };
            run_hub(grpc, http, hub).await
        }
        Command::Send {
            action,
            payload,
            account,
            provider,
            wait,
            hub,
            admin_token,
        } => {
            let admin = Admin::new(hub, admin_token);
            send(
                &admin,
                &provider,
                &action,
                &payload,
                account.as_deref(),
                wait,
            )
            .await
        }
        Command::Tasks { hub, admin_token } => list(&Admin::new(hub, admin_token)).await,
    }
}

struct HubOptions {
    token: String,
    admin_token: Option<String>,
    hold: f64,
    hand_back: bool,
    keep: usize,
}

async fn run_hub(grpc: SocketAddr, http: SocketAddr, options: HubOptions) -> ExitCode {
    let telemetry = match arbv_provider::telemetry::init_logging("arbv-hub") {
        Ok(telemetry) => telemetry,
        Err(e) => return fail(&e.to_string()),
    };
    let code = serve_hub(grpc, http, options).await;
    telemetry.shutdown().await;
    code
}

async fn serve_hub(grpc: SocketAddr, http: SocketAddr, options: HubOptions) -> ExitCode {
    let Ok(hold) = Duration::try_from_secs_f64(options.hold) else {
        eprintln!("arbv hub: --hold is a number of seconds, 0 or more");
        return ExitCode::from(2);
    };
    let mut hub = DevHub::builder()
        .token(options.token)
        .hold(hold)
        .hand_back(options.hand_back)
        .keep(options.keep);
    if let Some(admin_token) = options.admin_token {
        hub = hub.admin_token(admin_token);
    }
    let hub = hub.build();
    let grpc_server = match hub.serve(grpc).await {
        Ok(server) => server,
        Err(e) => return fail(&e.to_string()),
    };
    let admin = match hub.serve_admin(http).await {
        Ok(server) => server,
        Err(e) => return fail(&e.to_string()),
    };
    println!(
        "dev hub ready: gRPC on {} (HUB_GRPC_URL={}), admin API on http://{}",
        grpc_server.addr(),
        grpc_server.addr(),
        admin.addr()
    );
    if let Err(e) = arbv_provider::shutdown::signal().await {
        return fail(&format!("could not wait for Ctrl-C or SIGTERM: {e}"));
    }
    grpc_server.stop().await;
    admin.stop().await;
    ExitCode::SUCCESS
}

/// The dev hub's admin API as `arbv send` and `arbv tasks` reach it.
struct Admin {
    url: String,
    /// Never printed: it goes only into the `Authorization` header.
    token: Option<String>,
    client: reqwest::Client,
}

impl Admin {
    fn new(url: String, token: Option<String>) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
            client: reqwest::Client::new(),
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.authorized(self.client.get(format!("{}{path}", self.url)))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.authorized(self.client.post(format!("{}{path}", self.url)))
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

async fn send(
    hub: &Admin,
    provider: &str,
    action: &str,
    payload: &str,
    account: Option<&str>,
    wait: Option<f64>,
) -> ExitCode {
    let payload: Value = match serde_json::from_str(payload) {
        Ok(v) => v,
        Err(e) => return usage(&format!("PAYLOAD is not JSON: {e}")),
    };
    let account: Option<Value> = match account.map(serde_json::from_str).transpose() {
        Ok(v) => v,
        Err(e) => return usage(&format!("--account is not JSON: {e}")),
    };
    let body = serde_json::json!({"provider": provider, "action": action, "payload": payload, "account": account});
    let created: Value = match request(hub.post("/tasks").json(&body)).await {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    let Some(id) = created["id"].as_str() else {
        return fail(&format!("the hub answered without an id: {created}"));
    };
    let Some(wait) = wait else {
        println!("{id}");
        return ExitCode::SUCCESS;
    };
    let task: Value = match request(hub.get(&format!("/tasks/{id}?wait={wait}"))).await {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    let result = &task["result"];
    if result.is_null() {
        eprintln!(
            "arbv send: task {id} has no result after {wait}s (state: {})",
            task["state"]
        );
        return ExitCode::from(2);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(result).unwrap_or_default()
    );
    match result["status"].as_str() {
        Some("success" | "warning") => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

async fn list(hub: &Admin) -> ExitCode {
    match request(hub.get("/tasks")).await {
        Ok(Value::Array(tasks)) => {
            // Anyone who can queue a task chose these strings: escaped, they cannot restyle
            // the terminal or fake a row.
            let field =
                |task: &Value, name: &str| Escaped(task[name].as_str().unwrap_or("?")).to_string();
            for task in tasks {
                println!(
                    "{}  {:<7} {:<24} {}",
                    field(&task, "id"),
                    field(&task, "state"),
                    field(&task, "provider"),
                    field(&task, "action"),
                );
            }
            ExitCode::SUCCESS
        }
        Ok(other) => fail(&format!("unexpected answer: {other}")),
        Err(e) => fail(&e),
    }
}

async fn request(builder: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = builder.send().await.map_err(|e| {
        format!("the dev hub's admin API is unreachable ({e}); is `arbv hub` running?")
    })?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("unreadable answer: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "the hub answered {status}: {}",
            body["error"].as_str().unwrap_or("")
        ));
    }
    Ok(body)
}

fn usage(message: &str) -> ExitCode {
    eprintln!("arbv send: {message}");
    ExitCode::from(2)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("arbv: {message}");
    ExitCode::from(2)
}
