//! `cargo bench --bench throughput`: the provider beside a bare client, through the same hub.
//!
//! The default case is a hub that never hands work back (the trivial hub: `GetTask` answers a
//! canned task at once, `SubmitTaskResult` answers "no task"), since a production hub promises
//! no more than the contract: every task costs two RPCs. Beside the provider runs a bare client
//! that does only those two RPCs with a canned result, through the same hub; the figures are
//! the provider's as a fraction of the client's. One run measures, on this machine:
//! - tasks/s and CPU µs per task of the provider and of the bare client, at concurrency 16 and
//!   1, in interleaved rounds (medians shown, every run listed), with the provider's metrics
//!   off, on (the default) and served and scraped;
//! - the same through the dev hub in its hand-back mode (one RPC per task under load);
//! - p99 latency at half of peak against a dev hub that does not hand work back: what that hub
//!   and the provider carry in a closed loop, then tasks at half of it, each task's time split
//!   into its wait for a `GetTask` and its time out at the provider, and beside each run what
//!   else the machine did meanwhile (steal, other processes, interrupts, how long the provider
//!   and the hub waited for a core, page faults read from disk), to tell a tail the machine
//!   made from one the provider made; and, for comparison, at half the provider's peak against
//!   the trivial hub;
//! - the curve as concurrency grows; the cost as payloads grow (echo, a 10 KB order, 1 MB);
//! - 1, 2 and 4 provider processes against one hub;
//! - the provider and the bare client on tokio's multi-threaded runtime beside the
//!   current-thread one the examples use, and the multi-threaded provider's idle memory;
//! - start to first `GetTask`; an idle provider's polls, CPU and memory (and what the memory is).
//!
//! The provider is `bench-provider`, this package's binary: `basic::Basic` with the `main` a
//! user writes (one thread: `#[tokio::main(flavor = "current_thread")]`), configured from the
//! environment and stopped with SIGTERM. The bare client is this executable started again with
//! `ARBV_BENCH_ROLE=client`, on a current-thread runtime too. Each runs in its own process, so
//! its CPU time and memory are its own; hubs run in this process, on tokio's multi-threaded
//! runtime, except the latency runs' dev hub, which runs on a thread of its own (why: at
//! `measure_latency`).
//!
//! The last line printed is `ratio <provider ÷ client tasks/s, no hand-back, concurrency 16>;
//! cpu <provider ÷ client CPU per task>`.
//!
//! Knobs (environment): `ARBV_BENCH_WINDOW_MS` length of a measured run (default 2000),
//! `ARBV_BENCH_N` tasks per dev hub run (default 20000), `ARBV_BENCH_CONCURRENCY` (default: the
//! provider's default), `ARBV_BENCH_REPEAT` rounds (default 3), `ARBV_BENCH_IDLE_S` (default 5).
//! `ARBV_BENCH_PROVIDER=path` measures another provider executable (one built with another
//! profile, say) in place of `bench-provider`.
//! For profiling: `ARBV_BENCH_ONLY=idle` runs only the start and idle measurements;
//! `ARBV_BENCH_ONLY=latency` runs only the closed loops and the paced runs, at half their peak
//! or at `ARBV_BENCH_RATE` tasks/s; `ARBV_BENCH_ONLY=hand-back` only the dev hub's hand-back
//! rounds; `ARBV_BENCH_ONLY=runtime` only the rounds on both tokio runtimes;
//! `ARBV_BENCH_ONLY=provider` (or `client`, or `client-hyper`: the bare client on hyper
//! directly) runs only the no-hand-back run, `ARBV_BENCH_REPEAT`
//! times, with `ARBV_BENCH_LOAD=echo|order|1mb` (default echo), and prints
//! how many tasks the child answered in all; `ARBV_BENCH_WRAP="valgrind --tool=callgrind"`
//! starts each child under that command.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arbv_benches::{
    ClientTransport, ECHO_PAYLOAD, HubCounters, MachineCpu, ProcessUse, TrivialHub, cpu_seconds,
    median, order_payload, own_thread_run_delay_seconds, peak_rss_mib, quantile, run_delay_seconds,
    serve_trivial, thread_cpu_seconds, trivial_client,
};
use arbv_provider::config::DEFAULT_CONCURRENCY;
use arbv_provider::dev_hub::{DEFAULT_HOLD, DevHub, RunningServer};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

const ROLE: &str = "ARBV_BENCH_ROLE";
const TOKEN: &str = "bench-token-7d41c0";
const PROVIDER: &str = "basic-provider";
const PROVIDER_EXE: &str = env!("CARGO_BIN_EXE_bench-provider");
const PROVIDER_MULTI_THREAD_EXE: &str = env!("CARGO_BIN_EXE_bench-provider-multi-thread");
const CURVE: [usize; 6] = [1, 2, 4, 8, 16, 32];
const PROCESSES: [usize; 3] = [1, 2, 4];

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("client") => return run_client(Runtime::CurrentThread, ClientTransport::Channel),
        Ok("client-hyper") => return run_client(Runtime::CurrentThread, ClientTransport::Hyper),
        Ok("client-multi-thread") => {
            return run_client(Runtime::MultiThread, ClientTransport::Channel);
        }
        _ => {}
    }
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(orchestrate(Settings::from_env()));
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// The bare client: the two RPCs and a canned result, until the parent closes our stdin. On the
/// runtime the provider it is measured beside runs on.
fn run_client(runtime: Runtime, transport: ClientTransport) {
    let runtime = match runtime {
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .expect("a tokio runtime");
    runtime.block_on(async {
        let url = std::env::var("HUB_GRPC_URL").expect("HUB_GRPC_URL");
        let lanes = env_usize("PROVIDER_CONCURRENCY", DEFAULT_CONCURRENCY);
        let (tx, gone) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            let _ = tx.send(());
        });
        tokio::select! {
            () = trivial_client(url, TOKEN.to_owned(), lanes, transport) => {}
            _ = gone => {}
        }
    });
    // Lanes may be mid-call: there is nothing to drain.
    std::process::exit(0);
}

/// The tokio runtime a worker process runs on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Runtime {
    /// `#[tokio::main(flavor = "current_thread")]`: one thread, as the examples ask for.
    CurrentThread,
    /// `#[tokio::main]`: tokio's default, a worker thread per core.
    MultiThread,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// `bench-provider`: `examples/basic` with its `main`, on a current-thread runtime.
    Provider,
    /// The bare client, on a current-thread runtime like the provider's.
    Client,
    /// The bare client on hyper's HTTP/2 client directly, the provider's transport.
    ClientHyper,
    /// `bench-provider-multi-thread`: the same provider on tokio's multi-threaded runtime.
    ProviderMultiThread,
    /// The bare client on tokio's multi-threaded runtime.
    ClientMultiThread,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Client => "client",
            Role::ClientHyper => "client-hyper",
            Role::ProviderMultiThread => "provider-multi-thread",
            Role::ClientMultiThread => "client-multi-thread",
        }
    }

    fn is_provider(self) -> bool {
        matches!(self, Role::Provider | Role::ProviderMultiThread)
    }
}

/// A provider or bare client in its own process. Killed when dropped without [`stop`].
struct Worker {
    child: Child,
    role: Role,
}

impl Worker {
    fn spawn(role: Role, url: &str, concurrency: usize, env: &[(&str, String)]) -> Self {
        let exe = match role {
            Role::Provider => std::env::var_os("ARBV_BENCH_PROVIDER")
                .map_or_else(|| PROVIDER_EXE.into(), std::path::PathBuf::from),
            Role::ProviderMultiThread => PROVIDER_MULTI_THREAD_EXE.into(),
            Role::Client | Role::ClientHyper | Role::ClientMultiThread => {
                std::env::current_exe().expect("the benchmark knows its own path")
            }
        };
        let wrap = std::env::var("ARBV_BENCH_WRAP").unwrap_or_default();
        let mut wrap = wrap.split_whitespace();
        let mut command = match wrap.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(wrap).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        command
            .env(ROLE, role.name())
            .env("HUB_GRPC_URL", url)
            .env("PROVIDER_AUTH_TOKEN", TOKEN)
            .env("PROVIDER_CONCURRENCY", concurrency.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let child = command.spawn().expect("the benchmark can start its child");
        Self { child, role }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn cpu(&self) -> f64 {
        cpu_seconds(self.pid())
    }

    /// Stops it as it is stopped in production (SIGTERM for the provider; the client has
    /// nothing to drain) and waits for it to exit, killing it after 30 s.
    async fn stop(mut self) {
        if self.role.is_provider() {
            // SAFETY: kill(2) with a pid we started and have not reaped yet.
            unsafe {
                libc::kill(self.pid() as libc::pid_t, libc::SIGTERM);
            }
        } else {
            drop(self.child.stdin.take());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            if Instant::now() >= deadline {
                eprintln!("a benchmark child did not stop within 30 s: killing it");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn own_cpu() -> f64 {
    cpu_seconds(std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Settings and loads

#[derive(Clone, Copy)]
struct Settings {
    window: Duration,
    n: usize,
    concurrency: usize,
    repeat: usize,
    idle: Duration,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Self {
        Self {
            window: Duration::from_millis(env_usize("ARBV_BENCH_WINDOW_MS", 2000) as u64),
            n: env_usize("ARBV_BENCH_N", 20_000),
            concurrency: env_usize("ARBV_BENCH_CONCURRENCY", DEFAULT_CONCURRENCY),
            repeat: env_usize("ARBV_BENCH_REPEAT", 3),
            idle: Duration::from_secs(env_usize("ARBV_BENCH_IDLE_S", 5).max(2) as u64),
        }
    }
}

/// What the trivial hub hands out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Load {
    /// `echo` with a 38-byte payload.
    Echo,
    /// `process_order` with 100 lines, ~10 KB of nested JSON.
    Order,
    /// `echo` with a 1 MB message.
    Megabyte,
}

impl Load {
    fn from_env() -> Self {
        match std::env::var("ARBV_BENCH_LOAD").as_deref() {
            Ok("order") => Load::Order,
            Ok("1mb") => Load::Megabyte,
            _ => Load::Echo,
        }
    }

    fn action(self) -> &'static str {
        match self {
            Load::Echo | Load::Megabyte => "echo",
            Load::Order => "process_order",
        }
    }

    fn payload(self) -> Bytes {
        match self {
            Load::Echo => Bytes::from_static(ECHO_PAYLOAD),
            Load::Order => Bytes::from(order_payload(100).to_string()),
            Load::Megabyte => {
                Bytes::from(serde_json::json!({ "message": "m".repeat(1_000_000) }).to_string())
            }
        }
    }

    fn describe(self) -> String {
        let bytes = self.payload().len();
        match self {
            Load::Echo => format!("echo, {bytes} B payload"),
            Load::Order => format!("process_order, 100 lines, {bytes} B"),
            Load::Megabyte => format!("echo, {bytes} B payload"),
        }
    }

    /// Tasks answered before the measured window opens.
    fn warm_up(self) -> u64 {
        match self {
            Load::Echo => 2_000,
            Load::Order => 500,
            Load::Megabyte => 20,
        }
    }
}

/// How the provider of a run keeps metrics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Metrics {
    /// As configured by default: recorded, no server.
    Recorded,
    /// `PROVIDER_METRICS=off`: nothing recorded.
    Off,
    /// Recorded and served on `PROVIDER_METRICS_ADDR`, scraped every [`SCRAPE_EVERY`] during the
    /// run.
    Scraped,
}

impl Metrics {
    /// The child's environment for this mode, and where its metrics are served.
    fn env(self) -> (Vec<(&'static str, String)>, Option<std::net::SocketAddr>) {
        match self {
            Metrics::Recorded => (vec![], None),
            Metrics::Off => (vec![("PROVIDER_METRICS", "off".to_owned())], None),
            Metrics::Scraped => {
                let addr = free_loopback_addr();
                (
                    vec![("PROVIDER_METRICS_ADDR", addr.to_string())],
                    Some(addr),
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Against the trivial hub: no hand-back, two RPCs per task

/// A worker (or several) run for a window against the trivial hub.
struct Steady {
    tasks_per_s: f64,
    /// CPU µs per task of the worker processes together.
    cpu_us: f64,
    /// CPU µs per task of this process (the hub, and the scraper when there is one).
    hub_cpu_us: f64,
    /// The largest `VmHWM` among the worker processes.
    peak_mib: f64,
    /// Tasks answered from start to stop, warm-up included (for instruction counts per task).
    answered: u64,
}

impl Steady {
    /// `tasks/s` and CPU per task, for a line listing runs.
    fn brief(&self) -> String {
        format!(
            "{} tasks/s {:.1} µs",
            thousands(self.tasks_per_s),
            self.cpu_us
        )
    }
}

async fn measure_steady(
    role: Role,
    load: Load,
    concurrency: usize,
    processes: usize,
    metrics: Metrics,
    window: Duration,
) -> Steady {
    let counters = Arc::new(HubCounters::default());
    let stop = CancellationToken::new();
    let hub = TrivialHub::with_task(counters.clone(), load.action(), load.payload());
    let url = format!("http://{}", serve_trivial(hub, stop.clone()).await);
    let (env, served_on) = metrics.env();
    let workers: Vec<Worker> = (0..processes)
        .map(|_| Worker::spawn(role, &url, concurrency, &env))
        .collect();
    let warm = load.warm_up() * processes as u64;
    let warming = Instant::now();
    while counters.submits() < warm {
        assert!(
            warming.elapsed() < Duration::from_secs(120),
            "the {} answered {} of {warm} warm-up tasks in 120 s",
            role.name(),
            counters.submits()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let scraping = CancellationToken::new();
    let scraper = served_on.map(|addr| tokio::spawn(scrape_often(addr, scraping.clone())));
    let cpu = |workers: &[Worker]| workers.iter().map(Worker::cpu).sum::<f64>();
    let (t0, done0, worker0, hub0) = (Instant::now(), counters.submits(), cpu(&workers), own_cpu());
    tokio::time::sleep(window).await;
    let (t1, done1, worker1, hub1) = (Instant::now(), counters.submits(), cpu(&workers), own_cpu());
    scraping.cancel();
    if let Some(scraper) = scraper {
        let scrapes = scraper.await.expect("the scraper does not panic");
        assert!(
            scrapes > 0,
            "the provider's /metrics was scraped during the run"
        );
    }
    let peak_mib = workers
        .iter()
        .map(|w| peak_rss_mib(w.pid()))
        .fold(f64::NAN, f64::max);
    for worker in workers {
        worker.stop().await;
    }
    let answered = counters.submits();
    stop.cancel();
    let tasks = (done1 - done0) as f64;
    Steady {
        tasks_per_s: tasks / (t1 - t0).as_secs_f64(),
        cpu_us: (worker1 - worker0) * 1e6 / tasks,
        hub_cpu_us: (hub1 - hub0) * 1e6 / tasks,
        peak_mib,
        answered,
    }
}

/// The time from starting a provider process to its first `GetTask` at the hub.
async fn measure_start() -> f64 {
    let counters = Arc::new(HubCounters::default());
    let stop = CancellationToken::new();
    let hub = TrivialHub::new(counters.clone());
    let url = format!("http://{}", serve_trivial(hub, stop.clone()).await);
    let started = Instant::now();
    let worker = Worker::spawn(Role::Provider, &url, DEFAULT_CONCURRENCY, &[]);
    let first = loop {
        if let Some(first) = counters.first_get_task.get() {
            break *first;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the provider did not ask for work within 30 s"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    worker.stop().await;
    stop.cancel();
    (first - started).as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// Through the dev hub

/// N tasks through the dev hub to a worker.
struct Run {
    tasks_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: f64,
    hub_cpu_us: f64,
    rpcs_per_task: f64,
}

async fn start_hub(hold: Duration, hand_back: bool) -> (DevHub, RunningServer) {
    // Every answer is kept: the latencies are read back from the hub after the run.
    let hub = DevHub::builder()
        .token(TOKEN)
        .keep(usize::MAX)
        .hold(hold)
        .hand_back(hand_back)
        .build();
    let server = hub
        .serve("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the dev hub starts");
    (hub, server)
}

fn enqueue_echo(hub: &DevHub) -> String {
    hub.enqueue_raw(
        PROVIDER,
        "echo",
        Bytes::from_static(ECHO_PAYLOAD),
        Bytes::new(),
    )
}

/// Enqueues `n` echo tasks keeping `window` of them unanswered at any time (a closed loop, so
/// the worker is always busy but the queue stays short), and returns their ids.
async fn drive(hub: &DevHub, n: usize, window: usize) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut feeders = tokio::task::JoinSet::new();
    for _ in 0..window.min(n) {
        let hub = hub.clone();
        let next = next.clone();
        feeders.spawn(async move {
            let mut ids = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let id = enqueue_echo(&hub);
                let answered = hub.wait_done(&id, Duration::from_secs(60)).await;
                assert!(answered, "task {id} was not answered within 60 s");
                ids.push(id);
            }
            ids
        });
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(part) = feeders.join_next().await {
        ids.extend(part.expect("a feeder does not panic"));
    }
    ids
}

/// The answered tasks' times in ms, each task read from the hub once.
#[derive(Default)]
struct TaskTimes {
    /// Enqueue to result.
    latencies: Vec<f64>,
    /// Enqueue to first delivery: the wait for a provider's `GetTask`.
    waits: Vec<f64>,
    /// First delivery to result: the task out at the provider, the submit included.
    outs: Vec<f64>,
}

fn task_times_ms(hub: &DevHub, ids: &[String]) -> TaskTimes {
    let mut times = TaskTimes::default();
    for task in ids.iter().filter_map(|id| hub.task(id)) {
        let Some(latency) = task.latency_s else {
            continue;
        };
        times.latencies.push(latency * 1e3);
        if let Some(wait) = task.wait_s {
            times.waits.push(wait * 1e3);
            times.outs.push((latency - wait) * 1e3);
        }
    }
    times
}

fn rpcs(hub: &DevHub) -> u64 {
    let stats = hub.stats();
    stats.get_task_calls + stats.submit_calls
}

/// `n` echo tasks through a dev hub holding `GetTask` for `hold`, in its hand-back mode or not,
/// fed in a closed loop: the most it and the worker carry.
async fn measure_closed_loop(
    role: Role,
    hold: Duration,
    hand_back: bool,
    concurrency: usize,
    n: usize,
) -> Run {
    let (hub, server) = start_hub(hold, hand_back).await;
    let worker = Worker::spawn(role, &server.url(), concurrency, &[]);
    let window = 2 * concurrency;
    drive(&hub, 1_000, window).await;
    let rpcs0 = rpcs(&hub);
    let (t0, worker0, hub0) = (Instant::now(), worker.cpu(), own_cpu());
    let ids = drive(&hub, n, window).await;
    let (t1, worker1, hub1) = (Instant::now(), worker.cpu(), own_cpu());
    let rpcs1 = rpcs(&hub);
    worker.stop().await;
    server.stop().await;
    let mut latencies = task_times_ms(&hub, &ids).latencies;
    Run {
        tasks_per_s: n as f64 / (t1 - t0).as_secs_f64(),
        p50_ms: quantile(&mut latencies, 0.5),
        p99_ms: quantile(&mut latencies, 0.99),
        cpu_us: (worker1 - worker0) * 1e6 / n as f64,
        hub_cpu_us: (hub1 - hub0) * 1e6 / n as f64,
        rpcs_per_task: (rpcs1 - rpcs0) as f64 / n as f64,
    }
}

/// A loopback address no one listens on now (for a child's metrics server).
fn free_loopback_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// How often the benchmark scrapes a provider: far more often than Prometheus's default 15 s,
/// so that the cost of serving shows if there is one.
const SCRAPE_EVERY: Duration = Duration::from_millis(250);

/// Scrapes `GET /metrics` at `addr` every [`SCRAPE_EVERY`], from the start, until `stop`;
/// returns how many scrapes got the provider's task counters.
async fn scrape_often(addr: std::net::SocketAddr, stop: CancellationToken) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut scrapes = 0;
    let mut ticks = tokio::time::interval(SCRAPE_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => return scrapes,
        }
        let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
            continue;
        };
        let request = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
        let mut response = Vec::new();
        if stream.write_all(request.as_bytes()).await.is_ok()
            && stream.read_to_end(&mut response).await.is_ok()
            && String::from_utf8_lossy(&response).contains("arbv_tasks_total{")
        {
            scrapes += 1;
        }
    }
}

/// Tasks enqueued at a steady rate for a while: latency percentiles and costs per task.
struct Paced {
    achieved: f64,
    sent: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Enqueue to first delivery: the wait for a provider's `GetTask`.
    wait: Spread,
    /// First delivery to result: the task out at the provider, the submit included.
    out: Spread,
    cpu_us: f64,
    hub_cpu_us: f64,
    rpcs_per_task: f64,
    /// What else had the cores meanwhile, and how long the two sides waited for one.
    machine: MachineShare,
}

/// What the machine did during a run besides the provider and the benchmark's own process,
/// and how long each side waited, runnable, for a core: what tells a tail made by the machine
/// from one made by the provider.
#[derive(Clone, Copy)]
struct MachineShare {
    /// Of all the cores' time, the share the hypervisor kept (steal), in %.
    steal_pct: f64,
    /// Of all the cores' time, the share other processes ran, in %.
    others_pct: f64,
    /// Of all the cores' time, the share spent in interrupts (the loopback network's among
    /// them), in %.
    interrupts_pct: f64,
    /// The provider's threads runnable and waiting for a core, in ms per s of the run.
    provider_waited: f64,
    /// The hub's thread runnable and waiting for a core, in ms per s of the run.
    hub_waited: f64,
    /// Page faults the provider and this process (the hub's) waited for the disk for.
    major_faults: f64,
}

/// The readings a paced run's costs and its [`MachineShare`] are the differences of.
struct MachineReading {
    at: Instant,
    machine: MachineCpu,
    /// The provider's use, and this process's (the hub's).
    provider: ProcessUse,
    own: ProcessUse,
    provider_delay: f64,
    hub_delay: f64,
}

impl MachineReading {
    /// Now, for the provider `pid` and the hub running on this process's thread `hub_tid`.
    fn take(pid: u32, hub_tid: i32) -> Self {
        Self {
            at: Instant::now(),
            machine: MachineCpu::now(),
            provider: ProcessUse::of(pid),
            own: ProcessUse::of(std::process::id()),
            provider_delay: run_delay_seconds(pid),
            hub_delay: own_thread_run_delay_seconds(hub_tid),
        }
    }

    /// CPU seconds the provider, then this process, used since `start`.
    fn cpu_since(&self, start: &Self) -> (f64, f64) {
        (
            self.provider.cpu_seconds - start.provider.cpu_seconds,
            self.own.cpu_seconds - start.own.cpu_seconds,
        )
    }

    fn since(&self, start: &Self) -> MachineShare {
        let total = self.machine.total - start.machine.total;
        let (provider_cpu, own_cpu) = self.cpu_since(start);
        let ours = provider_cpu + own_cpu;
        let busy = self.machine.busy - start.machine.busy;
        let ms_per_s = 1e3 / self.at.duration_since(start.at).as_secs_f64();
        MachineShare {
            steal_pct: 100.0 * (self.machine.steal - start.machine.steal) / total,
            // Clock ticks on both sides: a tick's rounding can make it a little negative.
            others_pct: (100.0 * (busy - ours) / total).max(0.0),
            interrupts_pct: 100.0 * (self.machine.interrupts - start.machine.interrupts) / total,
            provider_waited: (self.provider_delay - start.provider_delay) * ms_per_s,
            hub_waited: (self.hub_delay - start.hub_delay) * ms_per_s,
            major_faults: (self.provider.major_faults - start.provider.major_faults)
                + (self.own.major_faults - start.own.major_faults),
        }
    }
}

/// The middle and the tail of some durations, in ms.
#[derive(Clone, Copy)]
struct Spread {
    p50_ms: f64,
    p99_ms: f64,
}

impl Spread {
    fn of(mut ms: Vec<f64>) -> Self {
        Self {
            p50_ms: quantile(&mut ms, 0.5),
            p99_ms: quantile(&mut ms, 0.99),
        }
    }
}

/// Enqueues `rate` echo tasks a second for `duration` in bursts: it catches up with the
/// schedule, then sleeps a tick.
async fn feed_ticked(hub: &DevHub, rate: f64, duration: Duration) -> Vec<String> {
    let started = Instant::now();
    let mut ids = Vec::new();
    while started.elapsed() < duration {
        let due = (started.elapsed().as_secs_f64() * rate) as usize;
        while ids.len() < due {
            ids.push(enqueue_echo(hub));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    ids
}

/// Enqueues `rate` echo tasks a second for `duration`, each at its own instant (run on a
/// thread of its own: `thread::sleep` keeps microseconds where tokio's timer keeps
/// milliseconds).
fn feed_spread(hub: &DevHub, rate: f64, duration: Duration) -> Vec<String> {
    let started = Instant::now();
    let mut ids = Vec::new();
    loop {
        let due = Duration::from_secs_f64(ids.len() as f64 / rate);
        if due >= duration {
            return ids;
        }
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        ids.push(enqueue_echo(hub));
    }
}

/// How the latency runs' tasks reach the hub.
#[derive(Clone, Copy)]
enum Arrivals {
    /// In small bursts: the feeder catches up with its schedule, then sleeps a tick of tokio's
    /// timer (1–2 ms). Tasks from a batch or a queue come this way.
    Ticked,
    /// One at a time, each at its own instant: a thread sleeps to the microsecond between them.
    /// Tasks from many independent sources come this way.
    Spread,
}

/// The provider against a dev hub that never hands work back and holds `GetTask` for `hold`,
/// fed `rate` echo tasks per second for `duration`, arriving as `arrivals` says.
async fn measure_paced(
    concurrency: usize,
    hold: Duration,
    rate: f64,
    duration: Duration,
    arrivals: Arrivals,
) -> Paced {
    let (hub, server) = start_hub(hold, false).await;
    let worker = Worker::spawn(Role::Provider, &server.url(), concurrency, &[]);
    drive(&hub, 1_000, 2 * concurrency).await;
    let rpcs0 = rpcs(&hub);
    // The hub runs on this thread: the latency runs' runtime has one.
    // SAFETY: gettid(2) has no preconditions.
    let hub_tid = unsafe { libc::gettid() };
    let start = MachineReading::take(worker.pid(), hub_tid);
    let started = Instant::now();
    let ids = match arrivals {
        Arrivals::Ticked => feed_ticked(&hub, rate, duration).await,
        Arrivals::Spread => {
            let hub = hub.clone();
            tokio::task::spawn_blocking(move || feed_spread(&hub, rate, duration))
                .await
                .expect("the feeder does not panic")
        }
    };
    for id in &ids {
        hub.wait_done(id, Duration::from_secs(60)).await;
        // The wait returns without yielding for a task already answered: a loop through
        // thousands of those would hold the hub's runtime while the run's last tasks are out.
        tokio::task::yield_now().await;
    }
    let elapsed = started.elapsed();
    let end = MachineReading::take(worker.pid(), hub_tid);
    let rpcs1 = rpcs(&hub);
    worker.stop().await;
    server.stop().await;
    let TaskTimes {
        mut latencies,
        waits,
        outs,
    } = task_times_ms(&hub, &ids);
    let tasks = ids.len() as f64;
    let (provider_cpu, hub_cpu) = end.cpu_since(&start);
    Paced {
        achieved: tasks / elapsed.as_secs_f64(),
        sent: ids.len(),
        p50_ms: quantile(&mut latencies, 0.5),
        p99_ms: quantile(&mut latencies, 0.99),
        max_ms: quantile(&mut latencies, 1.0),
        wait: Spread::of(waits),
        out: Spread::of(outs),
        cpu_us: provider_cpu * 1e6 / tasks,
        hub_cpu_us: hub_cpu * 1e6 / tasks,
        rpcs_per_task: (rpcs1 - rpcs0) as f64 / tasks,
        machine: end.since(&start),
    }
}

/// Resident memory of a process by what it is, in MiB, from `/proc/<pid>/smaps`.
#[derive(Clone, Copy, Default)]
struct Resident {
    /// Pages of the executable: its code and read-only data.
    executable: f64,
    /// Pages of shared libraries (libc, the loader, libgcc; libm on the multi-threaded runtime).
    libraries: f64,
    /// Of `libraries`, libm's: only tokio's multi-threaded scheduler calls into it (`powf`, in
    /// its poll-time average), and loading it touches code all over it (the resolvers that
    /// pick each function's variant for the CPU run at load).
    libm: f64,
    /// Anonymous memory: the heap (malloc arenas), thread stacks, tokio's and h2's buffers.
    anonymous: f64,
}

impl Resident {
    fn of(pid: u32) -> Self {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
        let mut resident = Resident::default();
        let mut mapping = String::new();
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if first.contains('-') && !first.ends_with(':') {
                // A mapping's header: address range, perms, offset, device, inode, path.
                mapping = line.split_whitespace().nth(5).unwrap_or("").to_owned();
                continue;
            }
            let Some(kb) = line.strip_prefix("Rss:") else {
                continue;
            };
            let mib = kb
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .unwrap_or(0.0)
                / 1024.0;
            if !mapping.is_empty() && std::path::Path::new(&mapping) == exe {
                resident.executable += mib;
            } else if mapping.starts_with('/') {
                resident.libraries += mib;
                if mapping
                    .rsplit('/')
                    .next()
                    .is_some_and(|name| name.starts_with("libm."))
                {
                    resident.libm += mib;
                }
            } else {
                resident.anonymous += mib;
            }
        }
        resident
    }

    fn total(&self) -> f64 {
        self.executable + self.libraries + self.anonymous
    }
}

/// An idle provider, and the first task after each idle spell.
struct Idle {
    first_task_ms: Vec<f64>,
    polls_per_s: Vec<f64>,
    cpu_percent: Vec<f64>,
    resident: Vec<Resident>,
}

impl Idle {
    /// The median over the samples of one part of the resident memory, in MiB.
    fn resident_median(&self, part: fn(&Resident) -> f64) -> f64 {
        median(&self.resident.iter().map(part).collect::<Vec<_>>())
    }
}

async fn measure_idle(
    provider: Role,
    hold: Duration,
    concurrency: usize,
    idle: Duration,
    samples: usize,
) -> Idle {
    let (hub, server) = start_hub(hold, false).await;
    let worker = Worker::spawn(provider, &server.url(), concurrency, &[]);
    // A provider that has worked, then fell idle: the usual life of one.
    drive(&hub, 1_000, 2 * concurrency).await;
    let mut figures = Idle {
        first_task_ms: Vec::new(),
        polls_per_s: Vec::new(),
        cpu_percent: Vec::new(),
        resident: Vec::new(),
    };
    let pid = worker.pid();
    // The first second of idleness ramps the poll pause up; the rest is the steady state.
    let settle = Duration::from_secs(1);
    for _ in 0..samples {
        tokio::time::sleep(settle).await;
        let (t0, polls0, cpu0) = (
            Instant::now(),
            hub.stats().get_task_calls,
            thread_cpu_seconds(pid),
        );
        tokio::time::sleep(idle - settle).await;
        let (t1, polls1, cpu1) = (
            Instant::now(),
            hub.stats().get_task_calls,
            thread_cpu_seconds(pid),
        );
        let seconds = (t1 - t0).as_secs_f64();
        figures.polls_per_s.push((polls1 - polls0) as f64 / seconds);
        figures.cpu_percent.push((cpu1 - cpu0) * 100.0 / seconds);
        figures.resident.push(Resident::of(pid));
        // A task lands at any point of the poll cycle: a random extra wait of up to 50 ms
        // keeps the sample from always hitting the same phase.
        tokio::time::sleep(Duration::from_micros(random_below(50_000))).await;
        let id = enqueue_echo(&hub);
        hub.wait_done(&id, Duration::from_secs(10)).await;
        let latency = hub.task(&id).and_then(|t| t.latency_s).unwrap_or(f64::NAN);
        figures.first_task_ms.push(latency * 1e3);
    }
    worker.stop().await;
    server.stop().await;
    figures
}

/// A number in `0..bound`, random enough to pick a phase.
fn random_below(bound: u64) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) % bound
}

// ---------------------------------------------------------------------------------------------
// The report

fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

fn list(values: &[f64], decimals: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn median_of<T>(runs: &[T], figure: impl Fn(&T) -> f64) -> f64 {
    median(&runs.iter().map(figure).collect::<Vec<_>>())
}

fn all_of<T>(runs: &[T], figure: impl Fn(&T) -> f64) -> Vec<f64> {
    runs.iter().map(figure).collect()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} cores, {model}")
}

/// The 1-minute load average: how busy the machine was with other work.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".into())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

async fn profile_only(which: &str, settings: &Settings) {
    if which == "idle" {
        let starts = measure_starts().await;
        let idle = measure_idle_spells(settings).await;
        print_idle(&idle, &starts, settings);
        return;
    }
    if which == "latency" {
        let load = match std::env::var("ARBV_BENCH_RATE") {
            Ok(_) => LatencyLoad::Fixed(env_usize("ARBV_BENCH_RATE", 10_000) as f64),
            Err(_) => LatencyLoad::HalfOfPeak { trivial_half: None },
        };
        let latency = measure_latency(settings, load).await;
        print_latency(&latency, settings);
        return;
    }
    if which == "runtime" {
        let runtimes = measure_runtimes(settings).await;
        print_runtimes(&runtimes, settings);
        return;
    }
    if which == "hand-back" {
        let hand_back = measure_hand_back_rounds(settings).await;
        print_hand_back(&hand_back, settings);
        return;
    }
    let role = match which {
        "client" => Role::Client,
        "client-hyper" => Role::ClientHyper,
        _ => Role::Provider,
    };
    let load = Load::from_env();
    for _ in 0..settings.repeat {
        let run = measure_steady(
            role,
            load,
            settings.concurrency,
            1,
            Metrics::Recorded,
            settings.window,
        )
        .await;
        println!(
            "{which} ({}): {} tasks/s · CPU {:.1} µs per task ({which}), {:.1} (hub) · {} tasks answered from start to stop",
            load.describe(),
            thousands(run.tasks_per_s),
            run.cpu_us,
            run.hub_cpu_us,
            run.answered
        );
    }
}

async fn orchestrate(settings: Settings) {
    if let Ok(which) = std::env::var("ARBV_BENCH_ONLY") {
        profile_only(&which, &settings).await;
        return;
    }
    let started = Instant::now();
    print_header(&settings);
    let rounds = measure_rounds(&settings).await;
    print_rounds(&rounds, &settings);
    let hand_back = measure_hand_back_rounds(&settings).await;
    print_hand_back(&hand_back, &settings);
    let trivial_half = median_of(&rounds, |r| r.provider.tasks_per_s) / 2.0;
    let latency = measure_latency(
        &settings,
        LatencyLoad::HalfOfPeak {
            trivial_half: Some(trivial_half),
        },
    )
    .await;
    print_latency(&latency, &settings);
    measure_and_print_curve(&settings).await;
    measure_and_print_payloads(&settings).await;
    measure_and_print_scale(&settings).await;
    let runtimes = measure_runtimes(&settings).await;
    print_runtimes(&runtimes, &settings);
    let starts = measure_starts().await;
    let idle = measure_idle_spells(&settings).await;
    print_idle(&idle, &starts, &settings);
    print_targets(&rounds, &latency, &idle, &starts, &runtimes, &settings);
    print_footer(started, &rounds);
}

fn print_header(settings: &Settings) {
    let Settings {
        window,
        n,
        concurrency: c,
        repeat,
        idle,
    } = *settings;
    println!("arbv-provider throughput benchmark");
    println!(
        "machine: {} · load average at start {}",
        machine(),
        load_average()
    );
    println!(
        "settings: runs of {} ms against the trivial hub, N = {n} tasks per dev hub run, concurrency {c}, {repeat} rounds (medians shown), idle spells of {} s",
        window.as_millis(),
        idle.as_secs()
    );
    println!(
        "CPU figures: µs of CPU (user + system, /proc/<pid>/stat) per task answered, of the worker process and of the hub process"
    );
    println!();
}

/// One round of the key figures against the trivial hub (no hand-back).
struct Round {
    client: Steady,
    client_hyper: Steady,
    provider: Steady,
    metrics_off: Steady,
    metrics_scraped: Steady,
    client_1: Steady,
    provider_1: Steady,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Client,
    ClientHyper,
    Provider,
    MetricsOff,
    MetricsScraped,
    Client1,
    Provider1,
}

/// Measures each of `slots` once, in their order in even rounds and backwards in odd ones, then
/// hands each run out by its slot. Slots whose runs are divided by each other sit side by side
/// in `slots`, so that each pair is measured seconds apart whatever the round: a shared
/// machine's speed drifts over tens of seconds (seen: the bare client at 24 µs a task for a
/// minute, then at 35), and a ratio taken across a drift measures the drift. Backwards every
/// other round, each side of a pair runs first as often as second.
async fn counterbalanced<S: Copy + PartialEq, const N: usize>(
    mut slots: [S; N],
    round: usize,
    mut measure: impl AsyncFnMut(S) -> Steady,
) -> impl FnMut(S) -> Steady {
    if round % 2 == 1 {
        slots.reverse();
    }
    let mut runs = Vec::with_capacity(N);
    for slot in slots {
        runs.push((slot, measure(slot).await));
    }
    move |wanted| {
        let at = runs
            .iter()
            .position(|(slot, _)| *slot == wanted)
            .expect("each slot ran");
        runs.swap_remove(at).1
    }
}

/// The key figures, repeated and interleaved (each round in the other order) so that noise from
/// other work hits them alike; the runs each ratio pairs side by side.
async fn measure_rounds(settings: &Settings) -> Vec<Round> {
    let (c, window) = (settings.concurrency, settings.window);
    let mut rounds = Vec::new();
    for round in 0..settings.repeat {
        // Paired: client and provider; provider and metrics off; metrics off and scraped; the
        // two at concurrency 1. The client on hyper directly is set beside the other client.
        let slots = [
            Slot::ClientHyper,
            Slot::Client,
            Slot::Provider,
            Slot::MetricsOff,
            Slot::MetricsScraped,
            Slot::Provider1,
            Slot::Client1,
        ];
        let mut take = counterbalanced(slots, round, async |slot| {
            let (role, lanes, metrics) = match slot {
                Slot::Client => (Role::Client, c, Metrics::Recorded),
                Slot::ClientHyper => (Role::ClientHyper, c, Metrics::Recorded),
                Slot::Provider => (Role::Provider, c, Metrics::Recorded),
                Slot::MetricsOff => (Role::Provider, c, Metrics::Off),
                Slot::MetricsScraped => (Role::Provider, c, Metrics::Scraped),
                Slot::Client1 => (Role::Client, 1, Metrics::Recorded),
                Slot::Provider1 => (Role::Provider, 1, Metrics::Recorded),
            };
            measure_steady(role, Load::Echo, lanes, 1, metrics, window).await
        })
        .await;
        let round = Round {
            client: take(Slot::Client),
            client_hyper: take(Slot::ClientHyper),
            provider: take(Slot::Provider),
            metrics_off: take(Slot::MetricsOff),
            metrics_scraped: take(Slot::MetricsScraped),
            client_1: take(Slot::Client1),
            provider_1: take(Slot::Provider1),
        };
        println!(
            "round {}: concurrency {c}: client {} (on hyper {}) · provider {} (metrics off {}, scraped {}) · concurrency 1: client {} · provider {}",
            rounds.len() + 1,
            round.client.brief(),
            round.client_hyper.brief(),
            round.provider.brief(),
            round.metrics_off.brief(),
            round.metrics_scraped.brief(),
            round.client_1.brief(),
            round.provider_1.brief(),
        );
        rounds.push(round);
    }
    rounds
}

/// The median over rounds of `over ÷ under` taken within each round (paired, so that a slow
/// moment of the machine hits both sides of a ratio).
fn paired_ratio<R>(
    rounds: &[R],
    over: impl Fn(&R) -> f64,
    under: impl Fn(&R) -> f64,
) -> (f64, Vec<f64>) {
    let ratios: Vec<f64> = rounds.iter().map(|r| over(r) / under(r)).collect();
    (median(&ratios), ratios)
}

fn tasks_ratio(rounds: &[Round]) -> f64 {
    paired_ratio(rounds, |r| r.provider.tasks_per_s, |r| r.client.tasks_per_s).0
}

fn cpu_ratio(rounds: &[Round]) -> f64 {
    paired_ratio(rounds, |r| r.provider.cpu_us, |r| r.client.cpu_us).0
}

/// The head of a table of paired figures: the bare client's, the provider's, and their ratio.
fn print_paired_header() {
    println!(
        "   {:<34} {:>12} {:>12} {:>18}",
        "", "bare client", "provider", "provider ÷ client"
    );
}

/// A row of [`print_paired_header`]'s table, with the ratio of each round.
fn print_paired_row(label: &str, client: &str, provider: &str, ratio: f64, per_round: &[f64]) {
    println!(
        "   {label:<35}{client:>12} {provider:>12} {ratio:>18.2}   (per round: {})",
        list(per_round, 2)
    );
}

fn print_rounds(rounds: &[Round], settings: &Settings) {
    let c = settings.concurrency;
    println!();
    println!(
        "== no hand-back (the default): trivial hub, GetTask answers a canned echo task, SubmitTaskResult answers \"no task\": 2 RPCs per task"
    );
    print_paired_header();
    type Figure = fn(&Round) -> &Steady;
    let at: [(usize, Figure, Figure); 2] = [
        (c, |r| &r.client, |r| &r.provider),
        (1, |r| &r.client_1, |r| &r.provider_1),
    ];
    for (lanes, client, provider) in at {
        let (tps, tps_rounds) = paired_ratio(
            rounds,
            |r| provider(r).tasks_per_s,
            |r| client(r).tasks_per_s,
        );
        let (cpu, cpu_rounds) = paired_ratio(rounds, |r| provider(r).cpu_us, |r| client(r).cpu_us);
        let figures = [
            (
                format!("concurrency {lanes:<2} tasks/s"),
                thousands(median_of(rounds, |r| client(r).tasks_per_s)),
                thousands(median_of(rounds, |r| provider(r).tasks_per_s)),
                tps,
                tps_rounds,
            ),
            (
                "               CPU µs per task".to_owned(),
                format!("{:.1}", median_of(rounds, |r| client(r).cpu_us)),
                format!("{:.1}", median_of(rounds, |r| provider(r).cpu_us)),
                cpu,
                cpu_rounds,
            ),
        ];
        for (label, client, provider, ratio, per_round) in figures {
            print_paired_row(&label, &client, &provider, ratio, &per_round);
        }
        println!(
            "                  hub CPU µs per task  {:>12.1} {:>12.1}",
            median_of(rounds, |r| client(r).hub_cpu_us),
            median_of(rounds, |r| provider(r).hub_cpu_us),
        );
        println!(
            "                  peak RSS MiB         {:>12.1} {:>12.1}",
            median_of(rounds, |r| client(r).peak_mib),
            median_of(rounds, |r| provider(r).peak_mib),
        );
        println!(
            "                  runs, tasks/s        client: {} · provider: {}",
            list(&all_of(rounds, |r| client(r).tasks_per_s), 0),
            list(&all_of(rounds, |r| provider(r).tasks_per_s), 0)
        );
    }
    print_same_transport(rounds);
    println!();
    print_metrics_cost(rounds);
}

/// The provider beside a bare client on the provider's own transport (hyper's HTTP/2 client,
/// no tonic `Channel`): what the provider's work costs apart from the transport it chose.
fn print_same_transport(rounds: &[Round]) {
    let (tps, tps_rounds) = paired_ratio(
        rounds,
        |r| r.provider.tasks_per_s,
        |r| r.client_hyper.tasks_per_s,
    );
    let (cpu, cpu_rounds) = paired_ratio(rounds, |r| r.provider.cpu_us, |r| r.client_hyper.cpu_us);
    println!(
        "   the bare client on hyper directly (the provider's transport; no tonic Channel): {} tasks/s, {:.1} µs of CPU per task; provider ÷ it {tps:.2} × the tasks/s (per round: {}), {cpu:.2} × the CPU per task (per round: {})",
        thousands(median_of(rounds, |r| r.client_hyper.tasks_per_s)),
        median_of(rounds, |r| r.client_hyper.cpu_us),
        list(&tps_rounds, 2),
        list(&cpu_rounds, 2),
    );
}

/// What recording and serving metrics cost, against the same provider with them off, measured
/// in the same rounds.
fn print_metrics_cost(rounds: &[Round]) {
    println!(
        "== metrics: the provider with PROVIDER_METRICS=off, on (the default), and on + served and scraped every {} ms (no hand-back, concurrency as above)",
        SCRAPE_EVERY.as_millis()
    );
    println!(
        "   tasks/s                 off {} · on {} · scraped {}   (runs off: {}; scraped: {})",
        thousands(median_of(rounds, |r| r.metrics_off.tasks_per_s)),
        thousands(median_of(rounds, |r| r.provider.tasks_per_s)),
        thousands(median_of(rounds, |r| r.metrics_scraped.tasks_per_s)),
        list(&all_of(rounds, |r| r.metrics_off.tasks_per_s), 0),
        list(&all_of(rounds, |r| r.metrics_scraped.tasks_per_s), 0)
    );
    println!(
        "   CPU µs per task         off {:.1} · on {:.1} · scraped {:.1}",
        median_of(rounds, |r| r.metrics_off.cpu_us),
        median_of(rounds, |r| r.provider.cpu_us),
        median_of(rounds, |r| r.metrics_scraped.cpu_us)
    );
    type Figure = fn(&Round) -> &Steady;
    let modes: [(&str, Figure); 2] = [("on", |r| &r.provider), ("scraped", |r| &r.metrics_scraped)];
    for (name, runs) in modes {
        let tps = paired_ratio(
            rounds,
            |r| runs(r).tasks_per_s,
            |r| r.metrics_off.tasks_per_s,
        )
        .0;
        let cpu = paired_ratio(rounds, |r| runs(r).cpu_us, |r| r.metrics_off.cpu_us).0;
        println!(
            "   {name:<8} ÷ off          {tps:.3} × tasks/s · {cpu:.3} × CPU per task (throughput cost < 5 %: {})",
            verdict(tps > 0.95)
        );
    }
    println!();
}

/// The provider and the bare client through the dev hub, which hands the next task back with
/// each result to a client that asks (both do).
struct HandBack {
    clients: Vec<Run>,
    providers: Vec<Run>,
}

async fn measure_hand_back_rounds(settings: &Settings) -> HandBack {
    let (c, n) = (settings.concurrency, settings.n);
    let mut figures = HandBack {
        clients: Vec::new(),
        providers: Vec::new(),
    };
    for round in 0..settings.repeat {
        let mut roles = [Role::Client, Role::Provider];
        roles.rotate_left(round % 2);
        for role in roles {
            let run = measure_closed_loop(role, DEFAULT_HOLD, true, c, n).await;
            if role.is_provider() {
                figures.providers.push(run);
            } else {
                figures.clients.push(run);
            }
        }
    }
    figures
}

fn print_hand_back(figures: &HandBack, settings: &Settings) {
    let (c, n) = (settings.concurrency, settings.n);
    let HandBack { clients, providers } = figures;
    println!(
        "== dev hub, hand-back mode: {n} echo tasks per run, {} kept in the hub, each result answered with the next task (1 RPC per task under load)",
        2 * c
    );
    println!(
        "   {:<24} {:>12} {:>12} {:>18}",
        "", "bare client", "provider", "provider ÷ client"
    );
    let ratios: Vec<f64> = providers
        .iter()
        .zip(clients)
        .map(|(p, c)| p.tasks_per_s / c.tasks_per_s)
        .collect();
    let cpu_ratios: Vec<f64> = providers
        .iter()
        .zip(clients)
        .map(|(p, c)| p.cpu_us / c.cpu_us)
        .collect();
    println!(
        "   tasks/s                  {:>12} {:>12} {:>18.2}   (runs: client {}; provider {})",
        thousands(median_of(clients, |r| r.tasks_per_s)),
        thousands(median_of(providers, |r| r.tasks_per_s)),
        median(&ratios),
        list(&all_of(clients, |r| r.tasks_per_s), 0),
        list(&all_of(providers, |r| r.tasks_per_s), 0)
    );
    println!(
        "   CPU µs per task          {:>12.1} {:>12.1} {:>18.2}",
        median_of(clients, |r| r.cpu_us),
        median_of(providers, |r| r.cpu_us),
        median(&cpu_ratios)
    );
    println!(
        "   hub CPU µs per task      {:>12.1} {:>12.1}   (dev hub + feeder)",
        median_of(clients, |r| r.hub_cpu_us),
        median_of(providers, |r| r.hub_cpu_us)
    );
    println!(
        "   enqueue→result p50/p99   {:>5.2}/{:.2} ms {:>5.2}/{:.2} ms",
        median_of(clients, |r| r.p50_ms),
        median_of(clients, |r| r.p99_ms),
        median_of(providers, |r| r.p50_ms),
        median_of(providers, |r| r.p99_ms)
    );
    println!(
        "   RPCs per task            {:>12.2} {:>12.2}",
        median_of(clients, |r| r.rpcs_per_task),
        median_of(providers, |r| r.rpcs_per_task)
    );
    println!();
}

/// The latency runs' cases: a dev hub that holds `GetTask` open while it has no work and one
/// that answers "no task" at once, each with the tasks in small bursts and spread one by one.
const LATENCY_CASES: [(Duration, Arrivals); 4] = [
    (DEFAULT_HOLD, Arrivals::Ticked),
    (Duration::ZERO, Arrivals::Ticked),
    (DEFAULT_HOLD, Arrivals::Spread),
    (Duration::ZERO, Arrivals::Spread),
];

/// The latency runs: what the dev hub (not handing work back) and the provider carry in a
/// closed loop, then [`LATENCY_CASES`] at half of that peak (the target's load) and, in a full
/// run, at half the provider's peak against the trivial hub, for comparison.
struct Latency {
    /// Tasks/s in a closed loop, holding `GetTask`, then answering at once: the peak of each
    /// kind of hub with this provider on these cores.
    closed_loop: [Vec<f64>; 2],
    /// The runs the target judges: each case at half its hub's peak (or at `ARBV_BENCH_RATE`).
    at_half: PacedCases,
    /// Each case at half the provider's peak against the trivial hub (a full run only).
    at_trivial_half: Option<PacedCases>,
}

/// The runs of each of [`LATENCY_CASES`], in its order, with the rate each was asked.
struct PacedCases {
    asked: [f64; LATENCY_CASES.len()],
    runs: [Vec<Paced>; LATENCY_CASES.len()],
}

impl PacedCases {
    fn p99_ms(runs: &[Paced]) -> f64 {
        median_of(runs, |p| p.p99_ms)
    }

    /// Each case's p99 (the median of its runs), in [`LATENCY_CASES`]' order.
    fn p99s(&self) -> Vec<f64> {
        self.runs.iter().map(|runs| Self::p99_ms(runs)).collect()
    }

    /// Each case's name, with the rate asked and its runs.
    fn cases(&self) -> impl Iterator<Item = (String, f64, &[Paced])> {
        LATENCY_CASES.iter().zip(&self.asked).zip(&self.runs).map(
            |((&(hold, arrivals), &asked), runs)| {
                let hub = if hold.is_zero() {
                    "hub answering at once".to_owned()
                } else {
                    format!("hub holding GetTask ({} s)", hold.as_secs())
                };
                let tasks = match arrivals {
                    Arrivals::Ticked => "tasks in bursts",
                    Arrivals::Spread => "tasks spread",
                };
                (format!("{hub}, {tasks}"), asked, runs.as_slice())
            },
        )
    }
}

/// How the latency runs pick the rate they ask.
#[derive(Clone, Copy)]
enum LatencyLoad {
    /// Half of what the same hub and provider carry in a closed loop (the target's load), and
    /// again at this rate (half the provider's peak against the trivial hub), if given.
    HalfOfPeak { trivial_half: Option<f64> },
    /// This rate in every case (`ARBV_BENCH_RATE`, for profiling).
    Fixed(f64),
}

/// The latency runs. Their dev hub and feeder run on a runtime of one thread of their own (the
/// spread feeder on a thread beside it): on two cores shared with the provider, a hub on
/// tokio's multi-threaded runtime takes ~1.4 × the CPU per task, in wake-ups between its
/// workers, and leaves the provider less of the machine than a hub elsewhere would. The
/// throughput runs keep their hubs on the multi-threaded runtime, where one thread would limit
/// the bare client before the provider.
async fn measure_latency(settings: &Settings, load: LatencyLoad) -> Latency {
    let settings = *settings;
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(measure_paced_runs(settings, load))
    })
    .await
    .expect("the latency runs do not panic")
}

/// The closed loops first, since half of their peak is the rate the paced runs ask. Half of
/// the provider's peak against the trivial hub is not half of this setup's: the dev hub keeps
/// every task and costs as much CPU per task as the provider, on the two cores the provider
/// uses, so the pair carries less than the provider does against a hub that does nothing, by
/// how much depending on the machine (that rate was 50–86 % of this pair's peak from machine
/// to machine). Judging the tail at half of the pair's own peak measures every machine at the
/// same load.
async fn measure_paced_runs(settings: Settings, load: LatencyLoad) -> Latency {
    let c = settings.concurrency;
    // In `Latency::closed_loop`'s order.
    let holds = [DEFAULT_HOLD, Duration::ZERO];
    let mut closed_loop: [Vec<f64>; 2] = Default::default();
    for _ in 0..settings.repeat {
        for (runs, &hold) in closed_loop.iter_mut().zip(&holds) {
            let closed = measure_closed_loop(Role::Provider, hold, false, c, settings.n).await;
            runs.push(closed.tasks_per_s);
        }
    }
    let peak_of = |hold: Duration| {
        let at = holds.iter().position(|&h| h == hold);
        median(&closed_loop[at.expect("each case's hold has a closed loop")])
    };
    let (at_half, trivial_half) = match load {
        LatencyLoad::HalfOfPeak { trivial_half } => (
            LATENCY_CASES.map(|(hold, _)| peak_of(hold) / 2.0),
            trivial_half,
        ),
        LatencyLoad::Fixed(rate) => (LATENCY_CASES.map(|_| rate), None),
    };
    let at_half = measure_paced_cases(&settings, at_half).await;
    let at_trivial_half = match trivial_half {
        Some(rate) => Some(measure_paced_cases(&settings, LATENCY_CASES.map(|_| rate)).await),
        None => None,
    };
    Latency {
        closed_loop,
        at_half,
        at_trivial_half,
    }
}

/// Each of [`LATENCY_CASES`] at its rate in `asked`, `settings.repeat` times, interleaved.
async fn measure_paced_cases(settings: &Settings, asked: [f64; LATENCY_CASES.len()]) -> PacedCases {
    let mut cases = PacedCases {
        asked,
        runs: Default::default(),
    };
    let run = Duration::from_secs(2);
    for _ in 0..settings.repeat {
        for ((runs, &(hold, arrivals)), &rate) in
            cases.runs.iter_mut().zip(&LATENCY_CASES).zip(&asked)
        {
            runs.push(measure_paced(settings.concurrency, hold, rate, run, arrivals).await);
        }
    }
    cases
}

fn print_latency(latency: &Latency, settings: &Settings) {
    let [holding, at_once] = &latency.closed_loop;
    println!(
        "== latency at half of peak, on a dev hub that does not hand work back: its peak with the provider first, in a closed loop ({} tasks kept in the hub, {} per run): holding GetTask {} tasks/s (runs: {}), answering at once {} (runs: {}); then tasks at half of that, {} runs of 2 s per case; in bursts: the feeder catches up with its schedule every tick of tokio's timer (1–2 ms); spread: each task at its own instant",
        2 * settings.concurrency,
        settings.n,
        thousands(median(holding)),
        list(holding, 0),
        thousands(median(at_once)),
        list(at_once, 0),
        settings.repeat
    );
    for (name, asked, paced) in latency.at_half.cases() {
        println!("   {name}:");
        println!(
            "     asked · achieved        {} · {} tasks/s ({} tasks per run)",
            thousands(asked),
            thousands(median_of(paced, |p| p.achieved)),
            median_of(paced, |p| p.sent as f64)
        );
        println!(
            "     enqueue→result          p50 {:.2} ms · p99 {:.2} ms (runs: {}) · max {:.2} ms",
            median_of(paced, |p| p.p50_ms),
            PacedCases::p99_ms(paced),
            list(&all_of(paced, |p| p.p99_ms), 2),
            median_of(paced, |p| p.max_ms)
        );
        print_split(paced);
        println!(
            "     CPU µs per task         provider {:.1} · hub process {:.1} · {:.2} RPCs per task",
            median_of(paced, |p| p.cpu_us),
            median_of(paced, |p| p.hub_cpu_us),
            median_of(paced, |p| p.rpcs_per_task)
        );
        print_machine(paced);
    }
    if let Some(harder) = &latency.at_trivial_half {
        let asked = harder.asked[0];
        println!(
            "   for comparison, at half the provider's peak against the trivial hub ({} tasks/s: {:.0} % of this holding hub's peak, {:.0} % of the one answering at once):",
            thousands(asked),
            100.0 * asked / median(holding),
            100.0 * asked / median(at_once)
        );
        for (name, _, paced) in harder.cases() {
            println!(
                "     {name:<40} p50 {:.2} ms · p99 {:.2} ms (runs: {})",
                median_of(paced, |p| p.p50_ms),
                PacedCases::p99_ms(paced),
                list(&all_of(paced, |p| p.p99_ms), 2)
            );
            print_split(paced);
            print_machine(paced);
        }
    }
    println!();
}

/// What else had the cores during a case's runs, run by run, in the order their p99s are listed.
fn print_machine(paced: &[Paced]) {
    println!(
        "     the machine meanwhile    steal {} %; other processes {} %; interrupts {} % of the cores; waiting, runnable, for a core: provider {} ms/s, hub {} ms/s; page faults read from disk {} (runs)",
        list(&all_of(paced, |p| p.machine.steal_pct), 1),
        list(&all_of(paced, |p| p.machine.others_pct), 1),
        list(&all_of(paced, |p| p.machine.interrupts_pct), 1),
        list(&all_of(paced, |p| p.machine.provider_waited), 1),
        list(&all_of(paced, |p| p.machine.hub_waited), 1),
        list(&all_of(paced, |p| p.machine.major_faults), 0)
    );
}

/// A case's tasks split at their first delivery: the wait for a `GetTask`, and the time out at
/// the provider.
fn print_split(paced: &[Paced]) {
    println!(
        "       of which              waiting for a GetTask p50 {:.2} · p99 {:.2} ms; out at the provider p50 {:.2} · p99 {:.2} ms",
        median_of(paced, |p| p.wait.p50_ms),
        median_of(paced, |p| p.wait.p99_ms),
        median_of(paced, |p| p.out.p50_ms),
        median_of(paced, |p| p.out.p99_ms)
    );
}

/// Throughput as concurrency grows, no hand-back, a row printed as each point is measured.
async fn measure_and_print_curve(settings: &Settings) {
    let (repeat, window) = (settings.repeat, settings.window / 2);
    println!(
        "== curve: no hand-back, as concurrency grows (medians of {repeat} runs of {} ms per point)",
        window.as_millis()
    );
    println!(
        "   {:>5} {:>14} {:>12} {:>8} {:>12} {:>12} {:>8}",
        "conc", "client tasks/s", "provider", "ratio", "client µs", "provider µs", "ratio"
    );
    for &lanes in &CURVE {
        let (mut clients, mut providers) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            clients.push(
                measure_steady(
                    Role::Client,
                    Load::Echo,
                    lanes,
                    1,
                    Metrics::Recorded,
                    window,
                )
                .await,
            );
            providers.push(
                measure_steady(
                    Role::Provider,
                    Load::Echo,
                    lanes,
                    1,
                    Metrics::Recorded,
                    window,
                )
                .await,
            );
        }
        print_pair_row(&lanes.to_string(), &clients, &providers);
    }
    println!();
}

fn print_pair_row(label: &str, clients: &[Steady], providers: &[Steady]) {
    let (client_tps, provider_tps) = (
        median_of(clients, |r| r.tasks_per_s),
        median_of(providers, |r| r.tasks_per_s),
    );
    let (client_us, provider_us) = (
        median_of(clients, |r| r.cpu_us),
        median_of(providers, |r| r.cpu_us),
    );
    println!(
        "   {:>5} {:>14} {:>12} {:>8.2} {:>12.1} {:>12.1} {:>8.2}",
        label,
        thousands(client_tps),
        thousands(provider_tps),
        provider_tps / client_tps,
        client_us,
        provider_us,
        provider_us / client_us
    );
}

/// The cost as payloads grow: echo, a 10 KB order, a 1 MB echo.
async fn measure_and_print_payloads(settings: &Settings) {
    let (c, repeat, window) = (settings.concurrency, settings.repeat, settings.window);
    println!(
        "== payload size: no hand-back, concurrency {c}, medians of {repeat} runs of {} ms (the bare client echoes the payload in its canned result, moving at least the provider's bytes)",
        window.as_millis()
    );
    for load in [Load::Echo, Load::Order, Load::Megabyte] {
        println!("   {}", load.describe());
        println!(
            "   {:>5} {:>14} {:>12} {:>8} {:>12} {:>12} {:>8}",
            "", "client tasks/s", "provider", "ratio", "client µs", "provider µs", "ratio"
        );
        let (mut clients, mut providers) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            clients.push(measure_steady(Role::Client, load, c, 1, Metrics::Recorded, window).await);
            providers
                .push(measure_steady(Role::Provider, load, c, 1, Metrics::Recorded, window).await);
        }
        print_pair_row("", &clients, &providers);
    }
    println!();
}

/// Several processes against one hub: until the hub or the cores are the limit.
async fn measure_and_print_scale(settings: &Settings) {
    let (c, window) = (settings.concurrency, settings.window);
    println!(
        "== scale: 1, 2 and 4 processes against one trivial hub (no hand-back), concurrency {c} each, one run of {} ms each; the hub shares the machine's {} cores",
        window.as_millis(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "   {:>9} {:>14} {:>12} {:>12} {:>12} {:>16} {:>16}",
        "processes",
        "client tasks/s",
        "provider",
        "client µs",
        "provider µs",
        "hub µs (client)",
        "hub µs (provider)"
    );
    for &processes in &PROCESSES {
        let client = measure_steady(
            Role::Client,
            Load::Echo,
            c,
            processes,
            Metrics::Recorded,
            window,
        )
        .await;
        let provider = measure_steady(
            Role::Provider,
            Load::Echo,
            c,
            processes,
            Metrics::Recorded,
            window,
        )
        .await;
        println!(
            "   {:>9} {:>14} {:>12} {:>12.1} {:>12.1} {:>16.1} {:>16.1}",
            processes,
            thousands(client.tasks_per_s),
            thousands(provider.tasks_per_s),
            client.cpu_us,
            provider.cpu_us,
            client.hub_cpu_us,
            provider.hub_cpu_us
        );
    }
    println!();
}

/// Start to first `GetTask`, five times.
async fn measure_starts() -> Vec<f64> {
    let mut starts = Vec::new();
    for _ in 0..5 {
        starts.push(measure_start().await);
    }
    starts
}

/// An idle provider against a hub that answers "no task" at once, and against one that holds
/// `GetTask` open; neither hands work back.
struct IdleSpells {
    at_once: Idle,
    held: Idle,
}

async fn measure_idle_spells(settings: &Settings) -> IdleSpells {
    let (c, idle) = (settings.concurrency, settings.idle);
    IdleSpells {
        at_once: measure_idle(Role::Provider, Duration::ZERO, c, idle, 5).await,
        held: measure_idle(Role::Provider, DEFAULT_HOLD, c, idle, 2).await,
    }
}

// ---------------------------------------------------------------------------------------------
// The runtime: the examples' current-thread runtime against tokio's multi-threaded default

/// One round of the runtime comparison, against the trivial hub at the benchmark's concurrency.
struct RuntimeRound {
    client: Steady,
    provider: Steady,
    client_multi: Steady,
    provider_multi: Steady,
}

struct Runtimes {
    rounds: Vec<RuntimeRound>,
    /// The provider on the multi-threaded runtime, idle against a hub answering at once.
    idle_multi: Idle,
}

/// The provider and the bare client on each runtime, interleaved (each round in the other
/// order); then the multi-threaded provider idle.
async fn measure_runtimes(settings: &Settings) -> Runtimes {
    let (c, window) = (settings.concurrency, settings.window);
    let mut rounds = Vec::new();
    for round in 0..settings.repeat {
        // Paired: each runtime's client and provider; the provider on each runtime.
        let roles = [
            Role::Client,
            Role::Provider,
            Role::ProviderMultiThread,
            Role::ClientMultiThread,
        ];
        let mut take = counterbalanced(roles, round, async |role| {
            measure_steady(role, Load::Echo, c, 1, Metrics::Recorded, window).await
        })
        .await;
        rounds.push(RuntimeRound {
            client: take(Role::Client),
            provider: take(Role::Provider),
            client_multi: take(Role::ClientMultiThread),
            provider_multi: take(Role::ProviderMultiThread),
        });
    }
    let idle_multi = measure_idle(
        Role::ProviderMultiThread,
        Duration::ZERO,
        c,
        settings.idle,
        2,
    )
    .await;
    Runtimes { rounds, idle_multi }
}

fn print_runtimes(runtimes: &Runtimes, settings: &Settings) {
    let rounds = &runtimes.rounds;
    println!(
        "== runtime: concurrency {}, no hand-back, on the current-thread runtime the examples ask for (`#[tokio::main(flavor = \"current_thread\")]`) and on tokio's multi-threaded default (`#[tokio::main]`), {} interleaved rounds",
        settings.concurrency,
        rounds.len()
    );
    print_paired_header();
    type Figure = fn(&RuntimeRound) -> &Steady;
    type Measure = fn(&Steady) -> f64;
    let flavours: [(&str, Figure, Figure); 2] = [
        ("current thread", |r| &r.client, |r| &r.provider),
        ("multi-thread  ", |r| &r.client_multi, |r| &r.provider_multi),
    ];
    for (name, client, provider) in flavours {
        let figures: [(&str, Measure, usize); 2] = [
            ("tasks/s", |s| s.tasks_per_s, 0),
            ("CPU µs per task", |s| s.cpu_us, 1),
        ];
        for (i, (label, figure, decimals)) in figures.into_iter().enumerate() {
            let (ratio, per_round) =
                paired_ratio(rounds, |r| figure(provider(r)), |r| figure(client(r)));
            let shown = |value: f64| match decimals {
                0 => thousands(value),
                _ => format!("{value:.1}"),
            };
            print_paired_row(
                &format!("{:<14} {label}", if i == 0 { name } else { "" }),
                &shown(median_of(rounds, |r| figure(client(r)))),
                &shown(median_of(rounds, |r| figure(provider(r)))),
                ratio,
                &per_round,
            );
        }
    }
    let multi_over_current = |figure: Measure| {
        (
            paired_ratio(rounds, |r| figure(&r.client_multi), |r| figure(&r.client)).0,
            paired_ratio(
                rounds,
                |r| figure(&r.provider_multi),
                |r| figure(&r.provider),
            )
            .0,
        )
    };
    let (tps_client, tps_provider) = multi_over_current(|s| s.tasks_per_s);
    let (cpu_client, cpu_provider) = multi_over_current(|s| s.cpu_us);
    println!(
        "   multi-thread ÷ current thread: tasks/s {tps_client:.2} (client), {tps_provider:.2} (provider); CPU per task {cpu_client:.2} (client), {cpu_provider:.2} (provider)"
    );
    let idle = &runtimes.idle_multi;
    println!(
        "   the provider on the multi-threaded runtime, idle against a hub answering at once: RSS {}; {:.1} polls/s",
        resident_medians(idle),
        median(&idle.polls_per_s)
    );
    println!();
}

/// The idle provider's resident memory, by kind: medians over its samples.
fn resident_medians(figures: &Idle) -> String {
    let resident = |part| figures.resident_median(part);
    format!(
        "median {:.1} MiB: executable {:.1} · shared libraries {:.1} (libm {:.1}) · anonymous (heap, stacks, buffers) {:.1}",
        resident(Resident::total),
        resident(|r| r.executable),
        resident(|r| r.libraries),
        resident(|r| r.libm),
        resident(|r| r.anonymous)
    )
}

fn print_idle(spells: &IdleSpells, starts: &[f64], settings: &Settings) {
    let idle = settings.idle;
    println!(
        "== start: from starting the provider process to its first GetTask at the hub: median {:.1} ms (samples: {} ms)",
        median(starts),
        list(starts, 1)
    );
    println!();
    println!(
        "== idle provider, concurrency {}: {} s idle spells (figures over the last {} s of each), then one task",
        settings.concurrency,
        idle.as_secs(),
        idle.as_secs() - 1
    );
    let holding = format!(
        "dev hub holding GetTask open (hold {} s)",
        DEFAULT_HOLD.as_secs()
    );
    for (name, figures) in [
        (
            "hub answering \"no task\" at once (hold 0)",
            &spells.at_once,
        ),
        (holding.as_str(), &spells.held),
    ] {
        println!("   {name}:");
        println!(
            "     first task after idle   median {:.2} ms (samples: {} ms)",
            median(&figures.first_task_ms),
            list(&figures.first_task_ms, 2)
        );
        println!(
            "     polls/s while idle      median {:.1} (samples: {})",
            median(&figures.polls_per_s),
            list(&figures.polls_per_s, 1)
        );
        println!(
            "     CPU while idle          median {:.2} % of one core (samples: {})",
            median(&figures.cpu_percent),
            list(&figures.cpu_percent, 2)
        );
        println!("     RSS while idle          {}", resident_medians(figures));
    }
    println!();
}

fn print_targets(
    rounds: &[Round],
    latency: &Latency,
    spells: &IdleSpells,
    starts: &[f64],
    runtimes: &Runtimes,
    settings: &Settings,
) {
    let IdleSpells { at_once, held } = spells;
    let (c, idle) = (settings.concurrency, settings.idle);
    // In MB, as the target: 1 MiB is 1.048576 MB.
    let rss_mb = |f: &Idle| f.resident_median(Resident::total) * 1.048_576;
    let multi_mb = rss_mb(&runtimes.idle_multi);
    let idle_mb = rss_mb(at_once).max(rss_mb(held));
    let first_ms = median(&at_once.first_task_ms);
    let idle_polls = at_once.polls_per_s.iter().copied().fold(0.0, f64::max);
    let (tps_16, cpu_16) = (tasks_ratio(rounds), cpu_ratio(rounds));
    let tps_1 = paired_ratio(
        rounds,
        |r| r.provider_1.tasks_per_s,
        |r| r.client_1.tasks_per_s,
    )
    .0;
    let metrics_cost = paired_ratio(
        rounds,
        |r| r.provider.tasks_per_s,
        |r| r.metrics_off.tasks_per_s,
    )
    .0;
    let p99s = latency.at_half.p99s();
    let start_ms = median(starts);
    println!("== targets (no hand-back unless said)");
    println!(
        "   CPU per task, concurrency {c}: {cpu_16:.2} × the bare client's (≤ 1.1) {}",
        verdict(cpu_16 <= 1.1)
    );
    println!(
        "   tasks/s, concurrency {c}: {tps_16:.2} × the bare client's (≥ 0.9) {}",
        verdict(tps_16 >= 0.9)
    );
    println!(
        "   tasks/s, concurrency 1: {tps_1:.2} × the bare client's (≥ 0.9) {}",
        verdict(tps_1 >= 0.9)
    );
    println!(
        "   metrics on: {metrics_cost:.3} × tasks/s with them off (cost < 5 %) {}",
        verdict(metrics_cost > 0.95)
    );
    println!(
        "   p99 at half of peak ({} and {} tasks/s, half of what the dev hub holding GetTask and answering at once carry with the provider): tasks in bursts {:.2} ms against a holding hub, {:.2} ms against one answering at once; tasks spread {:.2} and {:.2} ms (each < 3 ms) {}",
        thousands(latency.at_half.asked[0]),
        thousands(latency.at_half.asked[1]),
        p99s[0],
        p99s[1],
        p99s[2],
        p99s[3],
        verdict(p99s.iter().all(|&p99| p99 < 3.0))
    );
    let most = |figure: fn(&MachineShare) -> f64| {
        latency
            .at_half
            .runs
            .iter()
            .flatten()
            .map(|p| figure(&p.machine))
            .fold(0.0, f64::max)
    };
    println!(
        "     the machine during those runs, at most: steal {:.1} %, other processes {:.1} % of the cores; the provider waiting, runnable, for a core {:.1} ms/s, the hub {:.1} ms/s; page faults read from disk {:.0} in a run",
        most(|m| m.steal_pct),
        most(|m| m.others_pct),
        most(|m| m.provider_waited),
        most(|m| m.hub_waited),
        most(|m| m.major_faults)
    );
    println!(
        "   idle RSS: {idle_mb:.1} MB (< 10 MB) {}",
        verdict(idle_mb < 10.0)
    );
    // The target is for the runtime the README and the examples ask for; this one is shown
    // beside it, with the part only this runtime loads.
    let multi_libm = runtimes.idle_multi.resident_median(|r| r.libm);
    println!(
        "   idle RSS on tokio's multi-threaded runtime (`#[tokio::main]`), compared, not judged (the README asks for one thread): {multi_mb:.1} MB ({} 10 MB), of which libm, loaded for this runtime's scheduler only, {multi_libm:.1} MiB",
        if multi_mb < 10.0 { "under" } else { "over" }
    );
    println!(
        "   start to first GetTask: median {start_ms:.1} ms (< 20 ms) {}",
        verdict(start_ms < 20.0)
    );
    println!(
        "   first task after {} s idle, hub answering at once: median {first_ms:.1} ms (< 50 ms) {}",
        idle.as_secs(),
        verdict(first_ms < 50.0)
    );
    println!(
        "   polls/s while idle, concurrency {c}: at most {idle_polls:.1} (≤ 20) {}",
        verdict(idle_polls <= 20.0)
    );
    println!(
        "   first task after idle, dev hub holding GetTask: median {:.2} ms (near zero)",
        median(&held.first_task_ms)
    );
    println!("   in-process cost of one task: cargo bench --bench dispatch");
    println!();
}

/// The run's length, and last the ratios the benchmark exists for.
fn print_footer(started: Instant, rounds: &[Round]) {
    println!(
        "total {:.0} s · load average at end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    println!(
        "ratio {:.2}; cpu {:.2}",
        tasks_ratio(rounds),
        cpu_ratio(rounds)
    );
}
