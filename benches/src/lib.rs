//! Shared pieces of the benchmarks: a trivial hub and a trivial client (the baselines the
//! provider is measured against), process accounting from `/proc`, payloads and statistics.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arbv_provider_core::proto::hub_client::HubClient;
use arbv_provider_core::proto::hub_server::{Hub, HubServer};
use arbv_provider_core::proto::{ProviderRequest, Task, TaskResult};
use arbv_provider_core::wire::{
    ACCEPT_HAND_BACK, HAND_BACK, hand_back_flag_raised, raise_hand_back_flag,
};
use bytes::Bytes;
use procfs::process::{Process, Schedstat};
use procfs::{CurrentSI, KernelStats};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

/// The echo payload every end-to-end task carries.
pub const ECHO_PAYLOAD: &[u8] = br#"{"message":"hello from the benchmark"}"#;

/// The result envelope a bare client sends for `payload`: the shape of the one the basic
/// provider sends, with the payload echoed whole, so a bare client moves at least the bytes a
/// provider moves and does no work to build them.
pub fn canned_result(action: &str, payload: &str) -> String {
    format!(
        concat!(
            r#"{{"status":"success","message":"Action '{action}' completed successfully","#,
            r#""data":{{"provider":"basic-provider","action":"{action}","timezone":"UTC","#,
            r#""now":"2026-11-28T13:25:06.360111+00:00","now_utc":"2026-11-28T13:25:06.360111+00:00","#,
            r#""response":{payload}}}}}"#
        ),
        action = action,
        payload = payload
    )
}

/// A `process_order` payload with `items` lines (100 lines ≈ 10 KB of nested JSON).
pub fn order_payload(items: usize) -> Value {
    let items: Vec<Value> = (0..items)
        .map(|i| {
            json!({
                "product_id": format!("sku-{i:06}-stainless-steel-widget-large-blue-rev2026"),
                "quantity": 1 + i % 7,
                "price": 3.25 + i as f64,
            })
        })
        .collect();
    json!({
        "order_id": "ORD-2026-000123",
        "items": items,
        "customer": {
            "name": "Ada Lovelace", "email": "ada@example.com",
            "address": {"street": "12 Analytical Engine Way", "city": "London", "zip": "NW1 2DB"}
        }
    })
}

/// What a [`TrivialHub`] has answered, read by the benchmark while it runs.
#[derive(Debug, Default)]
pub struct HubCounters {
    /// `GetTask` calls answered.
    pub get_task: AtomicU64,
    /// `SubmitTaskResult` calls answered: one per task done.
    pub submit: AtomicU64,
    /// When the first `GetTask` arrived.
    pub first_get_task: OnceLock<Instant>,
}

impl HubCounters {
    /// Both RPCs together: the round trips answered.
    pub fn calls(&self) -> u64 {
        self.get_task.load(Ordering::Relaxed) + self.submit.load(Ordering::Relaxed)
    }

    /// Tasks answered so far.
    pub fn submits(&self) -> u64 {
        self.submit.load(Ordering::Relaxed)
    }
}

/// The smallest `Hub` there can be, and one that never hands work back: `GetTask` answers a
/// canned task at once, `SubmitTaskResult` answers "no task". It does no work, so its speed is
/// gRPC's, not ours, and every task costs its client two RPCs, as against a hub that promises
/// nothing more than the contract.
#[derive(Clone)]
pub struct TrivialHub {
    task: Task,
    counters: Arc<HubCounters>,
}

impl TrivialHub {
    /// A trivial hub handing out echo tasks ([`ECHO_PAYLOAD`]).
    pub fn new(counters: Arc<HubCounters>) -> Self {
        Self::with_task(counters, "echo", Bytes::from_static(ECHO_PAYLOAD))
    }

    /// A trivial hub handing out `action` tasks with `payload`.
    pub fn with_task(counters: Arc<HubCounters>, action: &str, payload: Bytes) -> Self {
        Self {
            task: Task {
                id: "6f1c1d2e-9a4b-4c61-8f3e-0d2a9b7c5e10".into(),
                action: action.into(),
                payload,
                account: Bytes::new(),
            },
            counters,
        }
    }
}

#[tonic::async_trait]
impl Hub for TrivialHub {
    async fn get_task(&self, _: Request<ProviderRequest>) -> Result<Response<Task>, Status> {
        self.counters.first_get_task.get_or_init(Instant::now);
        self.counters.get_task.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(self.task.clone()))
    }

    async fn submit_task_result(&self, _: Request<TaskResult>) -> Result<Response<Task>, Status> {
        self.counters.submit.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(Task::default()))
    }
}

/// Serves `hub` on a free loopback port until `stop` is cancelled.
pub async fn serve_trivial(hub: TrivialHub, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    // `Server::tcp_nodelay` does not apply to sockets from our own listener: set it here.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(HubServer::new(hub).max_decoding_message_size(usize::MAX))
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned()),
    );
    addr
}

/// How a bare client reaches the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTransport {
    /// tonic's `Channel`, as a hand-written tonic client would: the issue's baseline.
    Channel,
    /// hyper's HTTP/2 client used directly, as the provider does: the same transport as the
    /// provider's, to show what the rest of the provider costs.
    Hyper,
}

/// A client that does nothing but the two RPCs: `lanes` loops over one HTTP/2 connection, each
/// taking a task and answering it with [`canned_result`], asking for and following tasks handed
/// back with a result exactly as a provider does (only answers the hub marks as handed back).
/// It runs until the process ends.
pub async fn trivial_client(url: String, token: String, lanes: usize, transport: ClientTransport) {
    let mut set = tokio::task::JoinSet::new();
    match transport {
        ClientTransport::Channel => {
            let channel: Channel = Endpoint::from_shared(url)
                .expect("a valid hub URL")
                .tcp_nodelay(true)
                .connect()
                .await
                .expect("the hub answers");
            for _ in 0..lanes {
                let rpc = HubClient::new(channel.clone()).max_decoding_message_size(usize::MAX);
                set.spawn(client_lane(rpc, token.clone()));
            }
        }
        ClientTransport::Hyper => {
            let connection = hyper_direct::Connection::open(&url).await;
            for _ in 0..lanes {
                let rpc = HubClient::new(connection.clone()).max_decoding_message_size(usize::MAX);
                set.spawn(client_lane(rpc, token.clone()));
            }
        }
    }
    while set.join_next().await.is_some() {}
}

/// One lane of [`trivial_client`], over either transport.
async fn client_lane<T>(mut rpc: HubClient<T>, token: String)
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    loop {
        let asked = ProviderRequest {
            provider: "basic-provider".into(),
            auth_token: token.clone(),
        };
        let Ok(task) = rpc.get_task(asked).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut task = task.into_inner();
        while !task.id.is_empty() {
            let payload = String::from_utf8_lossy(&task.payload).into_owned();
            let answer = TaskResult {
                result: canned_result(&task.action, &payload),
                id: task.id,
                provider: "basic-provider".into(),
                auth_token: token.clone(),
                status: "success".into(),
                action: task.action,
                payload,
                account: "{}".into(),
            };
            let mut request = Request::new(answer);
            raise_hand_back_flag(request.metadata_mut(), ACCEPT_HAND_BACK);
            task = match rpc.submit_task_result(request).await {
                Ok(next) if hand_back_flag_raised(next.metadata(), HAND_BACK) => next.into_inner(),
                Ok(_) | Err(_) => Task::default(),
            };
        }
    }
}

/// The bare client's transport without tonic's `Channel`: one hyper HTTP/2 connection, each
/// call sent on it straight from its lane, what hyper spawns per call boxed (as tonic's own
/// executor does). No reconnection: a benchmark's hub does not go away.
mod hyper_direct {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use http::uri::{Authority, Scheme};
    use hyper::client::conn::http2::SendRequest;
    use hyper_util::rt::{TokioIo, TokioTimer};

    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    type Answer = http::Response<hyper::body::Incoming>;

    #[derive(Clone)]
    pub(super) struct Connection {
        send: SendRequest<tonic::body::Body>,
        authority: Authority,
    }

    #[derive(Clone, Copy)]
    struct Boxed;

    impl<F: Future<Output = ()> + Send + 'static> hyper::rt::Executor<F> for Boxed {
        fn execute(&self, future: F) {
            let future: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(future);
            tokio::spawn(future);
        }
    }

    impl Connection {
        pub(super) async fn open(url: &str) -> Self {
            let uri: http::Uri = url.parse().expect("a valid hub URL");
            let authority = uri.authority().expect("the URL names a host").clone();
            let tcp = tokio::net::TcpStream::connect(authority.as_str())
                .await
                .expect("the hub answers");
            tcp.set_nodelay(true).expect("TCP_NODELAY");
            let (send, connection) = hyper::client::conn::http2::Builder::new(Boxed)
                .timer(TokioTimer::new())
                .handshake(TokioIo::new(tcp))
                .await
                .expect("an HTTP/2 connection");
            tokio::spawn(connection);
            Self { send, authority }
        }
    }

    impl tower_service::Service<http::Request<tonic::body::Body>> for Connection {
        type Response = Answer;
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<Answer, BoxError>> + Send>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            self.send.poll_ready(cx).map_err(BoxError::from)
        }

        fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
            let (mut parts, body) = request.into_parts();
            let mut uri = std::mem::take(&mut parts.uri).into_parts();
            uri.scheme = Some(Scheme::HTTP);
            uri.authority = Some(self.authority.clone());
            parts.uri = http::Uri::from_parts(uri).expect("a path and an origin make a URI");
            let answer = self
                .send
                .send_request(http::Request::from_parts(parts, body));
            Box::pin(async move { answer.await.map_err(BoxError::from) })
        }
    }
}

/// What a process has used so far, from one read of `/proc/<pid>/stat`; NaN once it is gone.
#[derive(Clone, Copy, Debug)]
pub struct ProcessUse {
    /// CPU time, user + system, in seconds.
    pub cpu_seconds: f64,
    /// Page faults it waited for the disk for (major faults: code or data the kernel had
    /// dropped from memory, read back).
    pub major_faults: f64,
}

impl ProcessUse {
    pub fn of(pid: u32) -> Self {
        match Process::new(pid as i32).and_then(|p| p.stat()) {
            Ok(stat) => Self {
                cpu_seconds: (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64,
                major_faults: stat.majflt as f64,
            },
            Err(_) => Self {
                cpu_seconds: f64::NAN,
                major_faults: f64::NAN,
            },
        }
    }
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`; NaN once it
/// is gone.
pub fn cpu_seconds(pid: u32) -> f64 {
    ProcessUse::of(pid).cpu_seconds
}

/// CPU time the live threads of a process have used, from `/proc/<pid>/task/*/schedstat`: in
/// nanoseconds, so fine enough for an idle process (the clock ticks of `cpu_seconds` are 10 ms).
/// Threads that have ended are not counted.
pub fn thread_cpu_seconds(pid: u32) -> f64 {
    sum_over_threads(pid, |s| s.sum_exec_runtime)
}

/// Time the live threads of a process have spent runnable but waiting for a core, from
/// `/proc/<pid>/task/*/schedstat`: what the scheduler made them wait, where a latency tail that
/// is not the process's own work comes from. Threads that have ended are not counted.
pub fn run_delay_seconds(pid: u32) -> f64 {
    sum_over_threads(pid, |s| s.run_delay)
}

/// [`run_delay_seconds`] of one thread of this process.
pub fn own_thread_run_delay_seconds(tid: i32) -> f64 {
    Process::myself()
        .and_then(|p| p.task_from_tid(tid))
        .and_then(|t| t.schedstat())
        .map_or(f64::NAN, |s| s.run_delay as f64 / 1e9)
}

fn sum_over_threads(pid: u32, nanos: impl Fn(&Schedstat) -> u64) -> f64 {
    let Ok(threads) = Process::new(pid as i32).and_then(|p| p.tasks()) else {
        return f64::NAN;
    };
    let total: u64 = threads
        .flatten()
        .filter_map(|t| t.schedstat().ok())
        .map(|s| nanos(&s))
        .sum();
    total as f64 / 1e9
}

/// The machine's CPU time so far, summed over its cores, from `/proc/stat`: over a run, how
/// much went to processes outside the benchmark, and how much the hypervisor kept.
#[derive(Clone, Copy, Debug)]
pub struct MachineCpu {
    /// Running processes: user, nice and system, in seconds.
    pub busy: f64,
    /// Serving interrupts, the loopback network's softirqs among them, in seconds: the kernel
    /// counts them apart from the processes they serve.
    pub interrupts: f64,
    /// Stolen: the hypervisor ran something else while this machine had work, in seconds.
    pub steal: f64,
    /// All the time there was, idle included, in seconds.
    pub total: f64,
}

impl MachineCpu {
    pub fn now() -> Self {
        let Ok(stats) = KernelStats::current() else {
            return Self {
                busy: f64::NAN,
                interrupts: f64::NAN,
                steal: f64::NAN,
                total: f64::NAN,
            };
        };
        let t = stats.total;
        let busy = t.user + t.nice + t.system;
        let interrupts = t.irq.unwrap_or(0) + t.softirq.unwrap_or(0);
        let steal = t.steal.unwrap_or(0);
        let total = busy + interrupts + steal + t.idle + t.iowait.unwrap_or(0);
        let seconds = |ticks: u64| ticks as f64 / procfs::ticks_per_second() as f64;
        Self {
            busy: seconds(busy),
            interrupts: seconds(interrupts),
            steal: seconds(steal),
            total: seconds(total),
        }
    }
}

/// The most resident memory a process has had (`VmHWM` of `/proc/<pid>/status`), in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    Process::new(pid as i32)
        .and_then(|p| p.status())
        .ok()
        .and_then(|status| status.vmhwm)
        .map_or(f64::NAN, |kb| kb as f64 / 1024.0)
}

/// The `q` quantile (0..=1) of `values`, which it sorts; NaN when empty.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = (q * (values.len() - 1) as f64).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// The median of `values`; NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    quantile(&mut values, 0.5)
}
