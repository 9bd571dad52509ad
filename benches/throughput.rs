//! `cargo bench --bench throughput`: the provider against the physical limit.
//!
//! One run measures, on this machine:
//! - the limit: raw tonic unary round trips per second between a trivial client and a trivial
//!   server over loopback, at the provider's concurrency;
//! - the dev hub's capacity: a zero-work client taking and answering tasks through the dev hub;
//! - the provider: N echo tasks through the dev hub to `basic::Basic` (tasks/s, latency from
//!   enqueue to result, CPU per 1,000 tasks of the provider and of the hub, peak RSS);
//! - p99 latency at half of peak throughput, with tasks enqueued at a steady pace;
//! - the throughput curve as concurrency grows;
//! - an idle provider: polls/s, CPU, RSS, and the latency of the first task after an idle
//!   spell, against a hub that answers "no task" at once and against one that holds `GetTask`.
//!
//! Every client (provider or baseline) runs in a child process, this executable started again
//! with `ARBV_BENCH_ROLE`, so that its CPU time and memory are its own; hubs run in this process.
//! The last line printed is the ratio provider tasks/s ÷ (raw round trips/s ÷ 2).
//!
//! Knobs (environment): `ARBV_BENCH_N` tasks per provider run (default 20000),
//! `ARBV_BENCH_CONCURRENCY` (default: the provider's default concurrency), `ARBV_BENCH_REPEAT`
//! repetitions of the key measurements (default 3), `ARBV_BENCH_IDLE_S` (default 5).
//! For profiling: `ARBV_BENCH_ONLY=provider` (or `client`) runs only the N-task run,
//! `ARBV_BENCH_REPEAT` times, against a dev hub holding `GetTask` for `ARBV_BENCH_HOLD_MS` if
//! set; `ARBV_BENCH_WRAP="valgrind --tool=callgrind"` starts each child
//! under that command.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arbv_benches::{
    ECHO_PAYLOAD, TrivialHub, cpu_seconds, median, quantile, serve_trivial, status_mib,
    thread_cpu_seconds, trivial_client,
};
use arbv_provider::config::DEFAULT_CONCURRENCY;
use arbv_provider::dev_hub::{DEFAULT_HOLD, DevHub, RunningServer};
use arbv_provider::{Config, Provider, Serve};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

const ROLE: &str = "ARBV_BENCH_ROLE";
const TOKEN: &str = "bench-token-7d41c0";
const PROVIDER: &str = "basic-provider";
const CURVE: [usize; 6] = [1, 2, 4, 8, 16, 32];

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("provider") => run_provider(),
        Ok("client") => run_client(),
        _ => {
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
            runtime.block_on(orchestrate(Settings::from_env()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Child roles

/// Resolves when the parent closes our stdin (it does so to stop us, or by exiting).
fn parent_gone() -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = tx.send(());
    });
    rx
}

/// The provider under test, run as a deployed one is: the runtime `#[tokio::main]` gives,
/// configuration from the environment, logging on.
fn run_provider() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let telemetry = arbv_provider::telemetry::init_logging(basic::Basic::definition().name())
            .expect("the benchmark sets a valid logging configuration");
        let config = Config::from_env().expect("the benchmark sets a valid configuration");
        let gone = parent_gone();
        basic::Basic
            .serve_until(config, async move {
                let _ = gone.await;
            })
            .await
            .expect("the provider runs");
        telemetry.shutdown().await;
    });
}

/// The zero-work baseline client.
fn run_client() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let url = std::env::var("HUB_GRPC_URL").expect("HUB_GRPC_URL");
        let lanes = env_usize("PROVIDER_CONCURRENCY", DEFAULT_CONCURRENCY);
        let gone = parent_gone();
        tokio::select! {
            () = trivial_client(url, TOKEN.to_owned(), lanes) => {}
            _ = gone => {}
        }
    });
    // Lanes may be mid-call: there is nothing to drain.
    std::process::exit(0);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Provider,
    Client,
}

/// A child process of this executable in one role.
struct Worker {
    child: Child,
}

impl Worker {
    fn spawn(role: Role, url: &str, concurrency: usize) -> Self {
        Self::spawn_with(role, url, concurrency, &[])
    }

    /// As [`spawn`](Self::spawn), with more environment for the child.
    fn spawn_with(role: Role, url: &str, concurrency: usize, env: &[(&str, String)]) -> Self {
        let exe = std::env::current_exe().expect("the benchmark knows its own path");
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
        let role = match role {
            Role::Provider => "provider",
            Role::Client => "client",
        };
        command
            .env(ROLE, role)
            .env("HUB_GRPC_URL", url)
            .env("PROVIDER_AUTH_TOKEN", TOKEN)
            .env("PROVIDER_CONCURRENCY", concurrency.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let child = command.spawn().expect("the benchmark can start itself");
        Self { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn cpu(&self) -> f64 {
        cpu_seconds(self.pid())
    }

    /// Closes its stdin and waits for it to exit (killing it after 30 s).
    async fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            if Instant::now() >= deadline {
                eprintln!("a benchmark child did not stop within 30 s: killing it");
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn own_cpu() -> f64 {
    cpu_seconds(std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Measurements

#[derive(Clone, Copy)]
struct Settings {
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
            n: env_usize("ARBV_BENCH_N", 20_000),
            concurrency: env_usize("ARBV_BENCH_CONCURRENCY", DEFAULT_CONCURRENCY),
            repeat: env_usize("ARBV_BENCH_REPEAT", 3),
            idle: Duration::from_secs(env_usize("ARBV_BENCH_IDLE_S", 5).max(2) as u64),
        }
    }
}

/// Raw gRPC: round trips per second, and each side's CPU per 1,000 round trips.
struct Limit {
    round_trips_per_s: f64,
    client_cpu_s_per_k: f64,
    server_cpu_s_per_k: f64,
}

async fn measure_limit(concurrency: usize, window: Duration) -> Limit {
    let calls = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let addr = serve_trivial(TrivialHub::new(calls.clone()), stop.clone()).await;
    let client = Worker::spawn(Role::Client, &format!("http://{addr}"), concurrency);
    // Warm up: connection, allocator, caches.
    while calls.load(Ordering::Relaxed) < 2_000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (c0, t0) = (calls.load(Ordering::Relaxed), Instant::now());
    let (client0, server0) = (client.cpu(), own_cpu());
    tokio::time::sleep(window).await;
    let (c1, t1) = (calls.load(Ordering::Relaxed), Instant::now());
    let (client1, server1) = (client.cpu(), own_cpu());
    client.stop().await;
    stop.cancel();
    let k = (c1 - c0) as f64 / 1e3;
    Limit {
        round_trips_per_s: (c1 - c0) as f64 / (t1 - t0).as_secs_f64(),
        client_cpu_s_per_k: (client1 - client0) / k,
        server_cpu_s_per_k: (server1 - server0) / k,
    }
}

/// N tasks through the dev hub to a worker (the provider or the zero-work client).
struct Run {
    tasks_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    worker_cpu_s_per_k: f64,
    hub_cpu_s_per_k: f64,
    worker_peak_mib: f64,
    rpcs_per_task: f64,
}

async fn start_hub(hold: Option<Duration>) -> (DevHub, RunningServer) {
    // Every answer is kept: the latencies are read back from the hub after the run.
    let mut builder = DevHub::builder().token(TOKEN).keep(usize::MAX);
    if let Some(hold) = hold {
        builder = builder.hold(hold);
    }
    let hub = builder.build();
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

fn latencies_ms(hub: &DevHub, ids: &[String]) -> Vec<f64> {
    ids.iter()
        .filter_map(|id| hub.task(id)?.latency_s)
        .map(|s| s * 1e3)
        .collect()
}

fn rpcs(hub: &DevHub) -> u64 {
    let stats = hub.stats();
    stats.get_task_calls + stats.submit_calls
}

async fn measure_run(hold: Option<Duration>, role: Role, concurrency: usize, n: usize) -> Run {
    measure_run_with(hold, role, concurrency, n, Metrics::Recorded).await
}

/// How the provider of a run keeps metrics.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Metrics {
    /// As configured by default: recorded, no server.
    Recorded,
    /// `PROVIDER_METRICS=off`: nothing recorded.
    Off,
    /// Recorded and served on `PROVIDER_METRICS_ADDR`, scraped every [`SCRAPE_EVERY`] during the
    /// run.
    Scraped,
}

async fn measure_run_with(
    hold: Option<Duration>,
    role: Role,
    concurrency: usize,
    n: usize,
    metrics: Metrics,
) -> Run {
    let (hub, server) = start_hub(hold).await;
    let served_on = (metrics == Metrics::Scraped).then(free_loopback_addr);
    let env = match (metrics, served_on) {
        (Metrics::Off, _) => vec![("PROVIDER_METRICS", "off".to_owned())],
        (_, Some(addr)) => vec![("PROVIDER_METRICS_ADDR", addr.to_string())],
        (_, None) => vec![],
    };
    let worker = Worker::spawn_with(role, &server.url(), concurrency, &env);
    let window = 2 * concurrency;
    drive(&hub, 500, window).await;
    let scraping = CancellationToken::new();
    let scraper = served_on.map(|addr| tokio::spawn(scrape_often(addr, scraping.clone())));
    let rpcs0 = rpcs(&hub);
    let (t0, worker0, hub0) = (Instant::now(), worker.cpu(), own_cpu());
    let ids = drive(&hub, n, window).await;
    let (t1, worker1, hub1) = (Instant::now(), worker.cpu(), own_cpu());
    let rpcs1 = rpcs(&hub);
    scraping.cancel();
    if let Some(scraper) = scraper {
        let scrapes = scraper.await.expect("the scraper does not panic");
        assert!(
            scrapes > 0,
            "the provider's /metrics was scraped during the run"
        );
    }
    let peak = status_mib(worker.pid(), "VmHWM");
    worker.stop().await;
    server.stop().await;
    let mut latencies = latencies_ms(&hub, &ids);
    let k = n as f64 / 1e3;
    Run {
        tasks_per_s: n as f64 / (t1 - t0).as_secs_f64(),
        p50_ms: quantile(&mut latencies, 0.5),
        p99_ms: quantile(&mut latencies, 0.99),
        worker_cpu_s_per_k: (worker1 - worker0) / k,
        hub_cpu_s_per_k: (hub1 - hub0) / k,
        worker_peak_mib: peak,
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
    worker_cpu_s_per_k: f64,
    hub_cpu_s_per_k: f64,
    rpcs_per_task: f64,
}

async fn measure_paced(concurrency: usize, rate: f64, duration: Duration) -> Paced {
    let (hub, server) = start_hub(None).await;
    let worker = Worker::spawn(Role::Provider, &server.url(), concurrency);
    drive(&hub, 500, 2 * concurrency).await;
    let rpcs0 = rpcs(&hub);
    let (worker0, hub0) = (worker.cpu(), own_cpu());
    let started = Instant::now();
    let mut ids = Vec::new();
    while started.elapsed() < duration {
        // Catch up with the schedule, then sleep a tick: the timer's 1 ms grain makes small
        // bursts, which is how tasks reach a real hub too.
        let due = (started.elapsed().as_secs_f64() * rate) as usize;
        while ids.len() < due {
            ids.push(enqueue_echo(&hub));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for id in &ids {
        hub.wait_done(id, Duration::from_secs(60)).await;
    }
    let elapsed = started.elapsed();
    let (worker1, hub1) = (worker.cpu(), own_cpu());
    let rpcs1 = rpcs(&hub);
    worker.stop().await;
    server.stop().await;
    let mut latencies = latencies_ms(&hub, &ids);
    let k = ids.len() as f64 / 1e3;
    Paced {
        achieved: ids.len() as f64 / elapsed.as_secs_f64(),
        sent: ids.len(),
        p50_ms: quantile(&mut latencies, 0.5),
        p99_ms: quantile(&mut latencies, 0.99),
        max_ms: quantile(&mut latencies, 1.0),
        worker_cpu_s_per_k: (worker1 - worker0) / k,
        hub_cpu_s_per_k: (hub1 - hub0) / k,
        rpcs_per_task: (rpcs1 - rpcs0) as f64 / ids.len() as f64,
    }
}

/// An idle provider, and the first task after each idle spell.
struct Idle {
    first_task_ms: Vec<f64>,
    polls_per_s: Vec<f64>,
    cpu_percent: Vec<f64>,
    rss_mib: Vec<f64>,
    anon_mib: Vec<f64>,
}

async fn measure_idle(
    hold: Option<Duration>,
    concurrency: usize,
    idle: Duration,
    samples: usize,
) -> Idle {
    let (hub, server) = start_hub(hold).await;
    let worker = Worker::spawn(Role::Provider, &server.url(), concurrency);
    // A provider that has worked, then fell idle: the usual life of one.
    drive(&hub, 200, 2 * concurrency).await;
    let mut figures = Idle {
        first_task_ms: Vec::new(),
        polls_per_s: Vec::new(),
        cpu_percent: Vec::new(),
        rss_mib: Vec::new(),
        anon_mib: Vec::new(),
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
        figures.rss_mib.push(status_mib(pid, "VmRSS"));
        figures.anon_mib.push(status_mib(pid, "RssAnon"));
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
    let role = if which == "client" {
        Role::Client
    } else {
        Role::Provider
    };
    let hold = std::env::var("ARBV_BENCH_HOLD_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    for _ in 0..settings.repeat {
        let run = measure_run(hold, role, settings.concurrency, settings.n).await;
        println!(
            "{which}: {} tasks/s · p50 {:.2} ms · p99 {:.2} ms · CPU s/1k tasks {which} {:.3}, hub {:.3}",
            thousands(run.tasks_per_s),
            run.p50_ms,
            run.p99_ms,
            run.worker_cpu_s_per_k,
            run.hub_cpu_s_per_k
        );
    }
}

fn print_run(runs: &[Run], who: &str) {
    println!(
        "   tasks/s                 {:>8}   (runs: {})",
        thousands(median_of(runs, |r| r.tasks_per_s)),
        list(&all_of(runs, |r| r.tasks_per_s), 0)
    );
    println!(
        "   enqueue→result          p50 {:.2} ms · p99 {:.2} ms",
        median_of(runs, |r| r.p50_ms),
        median_of(runs, |r| r.p99_ms)
    );
    println!(
        "   CPU s per 1,000 tasks   {who} {:.3} · hub process {:.3} (dev hub + feeder)",
        median_of(runs, |r| r.worker_cpu_s_per_k),
        median_of(runs, |r| r.hub_cpu_s_per_k)
    );
    println!(
        "   RPCs per task           {:.2}",
        median_of(runs, |r| r.rpcs_per_task)
    );
    println!(
        "   peak RSS of the {who:<8} {:.1} MiB",
        median_of(runs, |r| r.worker_peak_mib)
    );
}

async fn orchestrate(settings: Settings) {
    if let Ok(which) = std::env::var("ARBV_BENCH_ONLY") {
        profile_only(&which, &settings).await;
        return;
    }
    let started = Instant::now();
    print_header(&settings);
    let peak = measure_peak(&settings).await;
    print_peak(&peak, &settings);
    let latency = measure_latency_at_half(&settings, peak.provider_tps() / 2.0).await;
    print_latency(&latency, &settings);
    measure_and_print_curve(&settings).await;
    let idle = measure_idle_spells(&settings).await;
    print_idle(&idle, &settings);
    print_targets(&latency, &idle, &settings);
    print_footer(started, &peak);
}

fn print_header(settings: &Settings) {
    let Settings {
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
        "settings: N = {n} echo tasks per run, concurrency {c}, {repeat} rounds (medians shown), idle spells of {} s",
        idle.as_secs()
    );
    println!(
        "CPU figures: CPU seconds (user + system, /proc/<pid>/stat) per 1,000 tasks or round trips"
    );
    println!();
}

/// The key figures: the limit, the zero-work client and the provider, measured in rounds.
struct Peak {
    limits: Vec<Limit>,
    zero_work: Vec<Run>,
    providers: Vec<Run>,
    /// The provider with `PROVIDER_METRICS=off`.
    metrics_off: Vec<Run>,
    /// The provider serving its metrics, scraped every [`SCRAPE_EVERY`].
    metrics_scraped: Vec<Run>,
    /// One provider run against a hub that answers "no task" at once.
    no_hold: Run,
}

impl Peak {
    fn limit_rps(&self) -> f64 {
        median_of(&self.limits, |l| l.round_trips_per_s)
    }

    fn provider_tps(&self) -> f64 {
        median_of(&self.providers, |r| r.tasks_per_s)
    }

    fn zero_work_tps(&self) -> f64 {
        median_of(&self.zero_work, |r| r.tasks_per_s)
    }
}

/// The key figures, repeated and interleaved so that noise from other work hits them alike.
async fn measure_peak(settings: &Settings) -> Peak {
    let (n, c) = (settings.n, settings.concurrency);
    let mut limits = Vec::new();
    let mut zero_work = Vec::new();
    let mut providers = Vec::new();
    let mut metrics_off = Vec::new();
    let mut metrics_scraped = Vec::new();
    for round in 1..=settings.repeat {
        let limit = measure_limit(c, Duration::from_secs(2)).await;
        let baseline = measure_run(None, Role::Client, c, n).await;
        // The three provider runs in a different order each round, so that none always runs
        // first after the client (or last).
        let mut modes = [Metrics::Off, Metrics::Recorded, Metrics::Scraped];
        modes.rotate_left(round % 3);
        let mut runs = Vec::new();
        for mode in modes {
            runs.push((
                mode,
                measure_run_with(None, Role::Provider, c, n, mode).await,
            ));
        }
        let mut take = |wanted: Metrics| {
            let at = runs
                .iter()
                .position(|(mode, _)| *mode == wanted)
                .expect("each mode ran");
            runs.swap_remove(at).1
        };
        let (off, provider, scraped) = (
            take(Metrics::Off),
            take(Metrics::Recorded),
            take(Metrics::Scraped),
        );
        println!(
            "round {round}: limit {} round trips/s · zero-work client through the dev hub {} tasks/s · provider {} tasks/s (metrics off {}, scraped {})",
            thousands(limit.round_trips_per_s),
            thousands(baseline.tasks_per_s),
            thousands(provider.tasks_per_s),
            thousands(off.tasks_per_s),
            thousands(scraped.tasks_per_s)
        );
        limits.push(limit);
        zero_work.push(baseline);
        providers.push(provider);
        metrics_off.push(off);
        metrics_scraped.push(scraped);
    }
    let no_hold = measure_run(Some(Duration::ZERO), Role::Provider, c, n).await;
    Peak {
        limits,
        zero_work,
        providers,
        metrics_off,
        metrics_scraped,
        no_hold,
    }
}

fn print_peak(peak: &Peak, settings: &Settings) {
    let (n, c) = (settings.n, settings.concurrency);
    let (limit_rps, provider_tps) = (peak.limit_rps(), peak.provider_tps());
    println!();
    println!(
        "== limit: raw tonic unary round trips, trivial client ⇄ trivial server, {c} in flight on one HTTP/2 connection"
    );
    println!(
        "   round trips/s           {:>8}   (runs: {})",
        thousands(limit_rps),
        list(&all_of(&peak.limits, |l| l.round_trips_per_s), 0)
    );
    println!(
        "   ⇒ tasks/s at 2 RPCs     {:>8}",
        thousands(limit_rps / 2.0)
    );
    println!(
        "   CPU s per 1,000 trips   client {:.3} · server {:.3}",
        median_of(&peak.limits, |l| l.client_cpu_s_per_k),
        median_of(&peak.limits, |l| l.server_cpu_s_per_k)
    );
    println!();
    println!(
        "== dev hub capacity: a zero-work client (GetTask, Submit, follows tasks handed back) through the dev hub"
    );
    print_run(&peak.zero_work, "client");
    println!();
    println!(
        "== provider: {n} echo tasks, dev hub → basic::Basic in its own process, concurrency {c}, {} tasks kept in the hub",
        2 * c
    );
    print_run(&peak.providers, "provider");
    println!(
        "   vs limit                {:.2} × raw round trips/s ÷ 2",
        provider_tps / (limit_rps / 2.0)
    );
    println!(
        "   vs raw round trips/s    {:.2} × (1 RPC per task when the hub hands work back with each result)",
        provider_tps / limit_rps
    );
    println!(
        "   vs zero-work client     {:.2} × (same hub, same feed)",
        provider_tps / peak.zero_work_tps()
    );
    println!(
        "   hub answering at once   {} tasks/s · p99 {:.2} ms · {:.2} RPCs per task (dev hub with hold 0, one run)",
        thousands(peak.no_hold.tasks_per_s),
        peak.no_hold.p99_ms,
        peak.no_hold.rpcs_per_task
    );
    println!();
    print_metrics_cost(peak);
}

/// What recording and serving metrics cost, against the same provider with them off, measured
/// in the same rounds.
fn print_metrics_cost(peak: &Peak) {
    let off_tps = median_of(&peak.metrics_off, |r| r.tasks_per_s);
    let off_cpu = median_of(&peak.metrics_off, |r| r.worker_cpu_s_per_k);
    println!(
        "== metrics: the provider with PROVIDER_METRICS=off, on (the default), and on + served and scraped every {} ms",
        SCRAPE_EVERY.as_millis()
    );
    println!(
        "   tasks/s                 off {} · on {} · scraped {}   (runs off: {}; scraped: {})",
        thousands(off_tps),
        thousands(peak.provider_tps()),
        thousands(median_of(&peak.metrics_scraped, |r| r.tasks_per_s)),
        list(&all_of(&peak.metrics_off, |r| r.tasks_per_s), 0),
        list(&all_of(&peak.metrics_scraped, |r| r.tasks_per_s), 0)
    );
    println!(
        "   CPU s per 1,000 tasks   off {off_cpu:.3} · on {:.3} · scraped {:.3}",
        median_of(&peak.providers, |r| r.worker_cpu_s_per_k),
        median_of(&peak.metrics_scraped, |r| r.worker_cpu_s_per_k)
    );
    for (name, runs) in [("on", &peak.providers), ("scraped", &peak.metrics_scraped)] {
        let tps = median_of(runs, |r| r.tasks_per_s) / off_tps;
        let cpu = median_of(runs, |r| r.worker_cpu_s_per_k) / off_cpu;
        println!(
            "   {name:<8} ÷ off          {tps:.3} × tasks/s · {cpu:.3} × CPU per task (throughput cost < 5 %: {})",
            verdict(tps > 0.95)
        );
    }
    println!();
}

/// Tasks enqueued at a steady `asked` tasks/s, in runs of 2 s.
struct Latency {
    asked: f64,
    runs: Vec<Paced>,
}

impl Latency {
    fn p99_ms(&self) -> f64 {
        median_of(&self.runs, |p| p.p99_ms)
    }
}

async fn measure_latency_at_half(settings: &Settings, half: f64) -> Latency {
    let mut runs = Vec::new();
    for _ in 0..settings.repeat {
        runs.push(measure_paced(settings.concurrency, half, Duration::from_secs(2)).await);
    }
    Latency { asked: half, runs }
}

fn print_latency(latency: &Latency, settings: &Settings) {
    let paced = &latency.runs;
    println!(
        "== latency at half of peak: {} tasks/s asked, enqueued at a steady pace, {} runs of 2 s",
        thousands(latency.asked),
        settings.repeat
    );
    println!(
        "   achieved                {} tasks/s ({} tasks per run)",
        thousands(median_of(paced, |p| p.achieved)),
        median_of(paced, |p| p.sent as f64)
    );
    println!(
        "   enqueue→result          p50 {:.2} ms · p99 {:.2} ms (runs: {}) · max {:.2} ms",
        median_of(paced, |p| p.p50_ms),
        latency.p99_ms(),
        list(&all_of(paced, |p| p.p99_ms), 2),
        median_of(paced, |p| p.max_ms)
    );
    println!(
        "   CPU s per 1,000 tasks   provider {:.3} · hub process {:.3} · {:.2} RPCs per task",
        median_of(paced, |p| p.worker_cpu_s_per_k),
        median_of(paced, |p| p.hub_cpu_s_per_k),
        median_of(paced, |p| p.rpcs_per_task)
    );
    println!();
}

/// The throughput curve as concurrency grows, a row printed as each point is measured.
async fn measure_and_print_curve(settings: &Settings) {
    let (n, repeat) = (settings.n, settings.repeat);
    println!(
        "== curve: throughput as concurrency grows (medians of {repeat} runs per point: raw 1 s, provider {} tasks)",
        n / 2
    );
    println!(
        "   {:>5} {:>14} {:>13} {:>10} {:>7} {:>8} {:>12}",
        "conc", "raw trips/s", "raw ÷ 2", "provider", "ratio", "p99 ms", "CPU s/1k"
    );
    for &lanes in &CURVE {
        let mut limits = Vec::new();
        let mut runs = Vec::new();
        for _ in 0..repeat {
            limits.push(measure_limit(lanes, Duration::from_secs(1)).await);
            runs.push(measure_run(None, Role::Provider, lanes, n / 2).await);
        }
        let raw = median_of(&limits, |l| l.round_trips_per_s);
        let tasks = median_of(&runs, |r| r.tasks_per_s);
        println!(
            "   {:>5} {:>14} {:>13} {:>10} {:>7.2} {:>8.2} {:>12.3}",
            lanes,
            thousands(raw),
            thousands(raw / 2.0),
            thousands(tasks),
            tasks / (raw / 2.0),
            median_of(&runs, |r| r.p99_ms),
            median_of(&runs, |r| r.worker_cpu_s_per_k)
        );
    }
    println!();
}

/// An idle provider against a hub that answers "no task" at once, and against one that holds
/// `GetTask` open.
struct IdleSpells {
    at_once: Idle,
    held: Idle,
}

async fn measure_idle_spells(settings: &Settings) -> IdleSpells {
    let (c, idle) = (settings.concurrency, settings.idle);
    IdleSpells {
        at_once: measure_idle(Some(Duration::ZERO), c, idle, 5).await,
        held: measure_idle(None, c, idle, 2).await,
    }
}

fn print_idle(spells: &IdleSpells, settings: &Settings) {
    let idle = settings.idle;
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
        println!(
            "     RSS while idle          median {:.1} MiB, of which {:.1} MiB anonymous (heap, stacks); the rest is mapped code",
            median(&figures.rss_mib),
            median(&figures.anon_mib)
        );
    }
    println!();
}

fn print_targets(latency: &Latency, spells: &IdleSpells, settings: &Settings) {
    let IdleSpells { at_once, held } = spells;
    let (c, idle) = (settings.concurrency, settings.idle);
    let idle_mb = median(&at_once.rss_mib).max(median(&held.rss_mib)) * 1.048_576;
    let first_ms = median(&at_once.first_task_ms);
    let idle_polls = at_once.polls_per_s.iter().copied().fold(0.0, f64::max);
    let paced_p99 = latency.p99_ms();
    println!("== targets");
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
    println!(
        "   p99 at half of peak: {paced_p99:.2} ms (< 5 ms) {}",
        verdict(paced_p99 < 5.0)
    );
    println!(
        "   idle RSS: {idle_mb:.1} MB (< 15 MB) {}",
        verdict(idle_mb < 15.0)
    );
    println!(
        "   idle CPU: {:.2} % of one core against a hub answering at once, {:.2} % against a holding one (near zero)",
        median(&at_once.cpu_percent),
        median(&held.cpu_percent)
    );
    println!("   in-process cost of one task: cargo bench --bench dispatch");
    println!();
}

/// The run's length, and last the ratio the benchmark exists for.
fn print_footer(started: Instant, peak: &Peak) {
    let (limit_rps, provider_tps) = (peak.limit_rps(), peak.provider_tps());
    println!(
        "total {:.0} s · load average at end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    println!(
        "ratio provider/limit = {:.2} (provider {} tasks/s ÷ (raw {} round trips/s ÷ 2))",
        provider_tps / (limit_rps / 2.0),
        thousands(provider_tps),
        thousands(limit_rps)
    );
}
