//! One scenario, both hubs: a test starts a [`TestHub`] of either [`HubKind`] (the dev hub, or
//! the contract-only hub of [`crate::contract_hub`]) and drives it the same way.
//!
//! The provider does not talk to the hub directly but to a recording proxy in front of it: a
//! `Hub` service that forwards every call to the hub over its own gRPC client and records what
//! the hub handed out and every result that reached it, with the hub's answer. So a test counts
//! exactly-once on its own side, the same way for both hubs, and never reads a hub's counters.
//! The proxy can also lose the answer of a submit the hub took, as a network cut just after the
//! hub took a result would.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbv_provider::dev_hub::{DevHub, RunningServer};
use arbv_provider_core::proto::hub_client::HubClient;
use arbv_provider_core::proto::hub_server::{Hub, HubServer};
use arbv_provider_core::proto::{ProviderRequest, Task, TaskResult};
use arbv_provider_core::wire::{ACCEPT_HAND_BACK, HAND_BACK, HAND_BACK_VALUE};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use crate::contract_hub::{ContractHub, NoTask, RunningContractHub};
use crate::{PROVIDER, TOKEN};

/// Which hub a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubKind {
    /// The dev hub of `arbv_provider::dev_hub`: long-polls, hands work back, keeps leases.
    Dev,
    /// The contract-only hub: a queue, "no task" as `NOT_FOUND`, no hand-back, no hold.
    Contract,
}

/// A result that reached the hub through the proxy.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// The task id.
    pub id: String,
    /// The envelope, as JSON text.
    pub result: String,
    /// `Ok` when the hub took it, else the code it answered.
    pub answer: Result<(), Code>,
    /// When the hub answered (tokio's clock).
    pub at: Instant,
}

#[derive(Default)]
struct Records {
    /// Task ids the hub handed out, from `GetTask` or in a `SubmitTaskResult` answer.
    handed_out: Vec<String>,
    submits: Vec<Submitted>,
    /// When each `GetTask` the hub refused for the token came back.
    refused_polls: Vec<Instant>,
    /// Tasks whose next taken submit answers the provider `UNAVAILABLE` instead.
    lose_answer: HashSet<String>,
}

struct ProxyState {
    upstream: HubClient<Channel>,
    records: Mutex<Records>,
    get_task_calls: AtomicU64,
    changed: Notify,
}

struct Proxy(Arc<ProxyState>);

#[tonic::async_trait]
impl Hub for Proxy {
    async fn get_task(&self, request: Request<ProviderRequest>) -> Result<Response<Task>, Status> {
        self.0.get_task_calls.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .0
            .upstream
            .clone()
            .get_task(Request::new(request.into_inner()))
            .await;
        let mut records = self.0.records.lock().unwrap();
        match answer {
            Ok(task) => {
                if !task.get_ref().id.is_empty() {
                    records.handed_out.push(task.get_ref().id.clone());
                }
                Ok(Response::new(task.into_inner()))
            }
            Err(status) => {
                if status.code() == Code::Unauthenticated {
                    records.refused_polls.push(Instant::now());
                }
                Err(Status::new(status.code(), status.message()))
            }
        }
    }

    async fn submit_task_result(
        &self,
        request: Request<TaskResult>,
    ) -> Result<Response<Task>, Status> {
        let accepts_hand_back = request.metadata().contains_key(ACCEPT_HAND_BACK);
        let result = request.into_inner();
        let lose_answer = self
            .0
            .records
            .lock()
            .unwrap()
            .lose_answer
            .remove(&result.id);
        let mut forwarded = Request::new(result.clone());
        // An answer about to be lost must not carry a task: the hub would count it handed out.
        if accepts_hand_back && !lose_answer {
            forwarded.metadata_mut().insert(
                ACCEPT_HAND_BACK,
                MetadataValue::from_static(HAND_BACK_VALUE),
            );
        }
        let answer = self.0.upstream.clone().submit_task_result(forwarded).await;
        let mut records = self.0.records.lock().unwrap();
        records.submits.push(Submitted {
            id: result.id.clone(),
            result: result.result,
            answer: answer.as_ref().map(|_| ()).map_err(Status::code),
            at: Instant::now(),
        });
        self.0.changed.notify_waiters();
        let answer = match answer {
            Ok(answer) => answer,
            Err(status) => return Err(Status::new(status.code(), status.message())),
        };
        if lose_answer {
            return Err(Status::unavailable("the answer was lost on the way back"));
        }
        let handed_back = answer.metadata().contains_key(HAND_BACK);
        let task = answer.into_inner();
        let mut reply = Response::new(task.clone());
        if handed_back {
            if !task.id.is_empty() {
                records.handed_out.push(task.id);
            }
            reply
                .metadata_mut()
                .insert(HAND_BACK, MetadataValue::from_static(HAND_BACK_VALUE));
        }
        Ok(reply)
    }
}

/// A tonic server of ours, stopped by a oneshot.
struct Serving {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Serving {
    async fn start(addr: SocketAddr, service: HubServer<Proxy>) -> (SocketAddr, Self) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the proxy's address is free");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    let _ = stopped.await;
                },
            );
        let task = tokio::spawn(async move {
            server.await.expect("the recording proxy serves");
        });
        (addr, Self { stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

enum Upstream {
    Dev {
        hub: DevHub,
        hold: Duration,
        server: Option<RunningServer>,
    },
    Contract {
        hub: ContractHub,
        server: Option<RunningContractHub>,
    },
}

/// A hub of either kind behind the recording proxy; the provider is given [`url`](Self::url).
pub struct TestHub {
    kind: HubKind,
    upstream: Upstream,
    upstream_addr: SocketAddr,
    proxy: Arc<ProxyState>,
    proxy_addr: SocketAddr,
    serving: Option<Serving>,
    next_id: AtomicU64,
}

impl TestHub {
    /// A hub as it runs in production: the dev hub holds an idle `GetTask` for 2 s; the
    /// contract hub answers at once.
    pub async fn start(kind: HubKind) -> Self {
        Self::start_holding(kind, Duration::from_secs(2)).await
    }

    /// A hub that answers "no task" at once, whichever kind: the worst case for polling.
    pub async fn start_answering_at_once(kind: HubKind) -> Self {
        Self::start_holding(kind, Duration::ZERO).await
    }

    async fn start_holding(kind: HubKind, hold: Duration) -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let (upstream, upstream_addr) = match kind {
            HubKind::Dev => {
                let hub = DevHub::builder().token(TOKEN).hold(hold).build();
                let server = hub.serve(loopback).await.expect("the dev hub starts");
                let addr = server.addr();
                let server = Some(server);
                (Upstream::Dev { hub, hold, server }, addr)
            }
            HubKind::Contract => {
                let hub = ContractHub::builder(TOKEN)
                    .no_task(NoTask::NotFound)
                    .build();
                let server = hub.serve().await;
                let addr = server.addr();
                let server = Some(server);
                (Upstream::Contract { hub, server }, addr)
            }
        };
        let channel = Endpoint::from_shared(format!("http://{upstream_addr}"))
            .expect("a loopback url")
            .tcp_nodelay(true)
            .connect_lazy();
        let proxy = Arc::new(ProxyState {
            upstream: HubClient::new(channel),
            records: Mutex::default(),
            get_task_calls: AtomicU64::new(0),
            changed: Notify::new(),
        });
        let (proxy_addr, serving) =
            Serving::start(loopback, HubServer::new(Proxy(proxy.clone()))).await;
        Self {
            kind,
            upstream,
            upstream_addr,
            proxy,
            proxy_addr,
            serving: Some(serving),
            next_id: AtomicU64::new(0),
        }
    }

    /// Which hub this is.
    pub fn kind(&self) -> HubKind {
        self.kind
    }

    /// `http://addr` of the proxy, for a provider's `hub_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.proxy_addr)
    }

    /// The dev hub, when this is one.
    pub fn dev_hub(&self) -> Option<&DevHub> {
        match &self.upstream {
            Upstream::Dev { hub, .. } => Some(hub),
            Upstream::Contract { .. } => None,
        }
    }

    /// Queues a task for the test provider (also while the hub is stopped); returns its id.
    pub fn enqueue(&self, action: &str, payload: Value) -> String {
        match &self.upstream {
            Upstream::Dev { hub, .. } => hub.enqueue(PROVIDER, action, payload, None),
            Upstream::Contract { hub, .. } => {
                let id = format!("task-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
                hub.push(&id, action, payload.to_string(), "");
                id
            }
        }
    }

    /// The hub goes away: it stops listening, and so does the address the provider knows.
    pub async fn stop(&mut self) {
        // The hub first: the dev hub ends its held polls at once, so they do not hold the
        // proxy's graceful stop. A call reaching the proxy in between is answered UNAVAILABLE,
        // as by a hub going down.
        match &mut self.upstream {
            Upstream::Dev { server, .. } => {
                if let Some(server) = server.take() {
                    server.stop().await;
                }
            }
            Upstream::Contract { server, .. } => {
                if let Some(server) = server.take() {
                    server.stop().await;
                }
            }
        }
        if let Some(serving) = self.serving.take() {
            serving.stop().await;
        }
    }

    /// The hub comes back on the same addresses with its tasks (queued, handed out, answered)
    /// as it left them: a hub that keeps its tasks in storage.
    pub async fn restart(&mut self) {
        self.stop().await;
        let addr = self.upstream_addr;
        match &mut self.upstream {
            Upstream::Dev { hub, server, .. } => {
                *server = Some(hub.serve(addr).await.expect("the dev hub restarts"));
            }
            Upstream::Contract { hub, server } => *server = Some(hub.serve_on(addr).await),
        }
        self.serve_proxy().await;
    }

    /// The hub comes back on the same addresses having forgotten every task: a hub that keeps
    /// them in memory. Tasks queued before are gone.
    pub async fn restart_forgetting(&mut self) {
        self.stop().await;
        let addr = self.upstream_addr;
        match &mut self.upstream {
            Upstream::Dev { hub, hold, server } => {
                *hub = DevHub::builder().token(TOKEN).hold(*hold).build();
                *server = Some(hub.serve(addr).await.expect("the dev hub restarts"));
            }
            Upstream::Contract { hub, server } => {
                *hub = ContractHub::builder(TOKEN)
                    .no_task(NoTask::NotFound)
                    .build();
                *server = Some(hub.serve_on(addr).await);
            }
        }
        self.serve_proxy().await;
    }

    async fn serve_proxy(&mut self) {
        let (_, serving) =
            Serving::start(self.proxy_addr, HubServer::new(Proxy(self.proxy.clone()))).await;
        self.serving = Some(serving);
    }

    /// The next submit of task `id` that the hub takes is answered `UNAVAILABLE` to the
    /// provider: the hub has the result, the provider does not know.
    pub fn lose_next_answer(&self, id: &str) {
        let mut records = self.proxy.records.lock().unwrap();
        records.lose_answer.insert(id.to_owned());
    }

    /// Task ids handed out so far, in order, repeats included.
    pub fn handed_out(&self) -> Vec<String> {
        self.proxy.records.lock().unwrap().handed_out.clone()
    }

    /// Every submit that reached the hub, in order, with the hub's answer.
    pub fn submits(&self) -> Vec<Submitted> {
        self.proxy.records.lock().unwrap().submits.clone()
    }

    /// The submits of task `id` that reached the hub.
    pub fn submits_of(&self, id: &str) -> Vec<Submitted> {
        let records = self.proxy.records.lock().unwrap();
        records
            .submits
            .iter()
            .filter(|s| s.id == id)
            .cloned()
            .collect()
    }

    /// The envelope of the first result the hub took for `id`.
    pub fn taken_envelope(&self, id: &str) -> Option<Value> {
        let records = self.proxy.records.lock().unwrap();
        let taken = records
            .submits
            .iter()
            .find(|s| s.id == id && s.answer.is_ok())?;
        Some(serde_json::from_str(&taken.result).expect("an envelope is JSON"))
    }

    /// `GetTask` calls the provider made, answered or not.
    pub fn get_task_calls(&self) -> u64 {
        self.proxy.get_task_calls.load(Ordering::Relaxed)
    }

    /// When each `GetTask` refused for the token came back.
    pub fn refused_polls(&self) -> Vec<Instant> {
        self.proxy.records.lock().unwrap().refused_polls.clone()
    }

    /// Waits up to `limit` until the hub has taken a result for each of `ids`.
    pub async fn wait_taken(&self, ids: &[String], limit: Duration) -> bool {
        self.wait_submits(limit, |submits| {
            let taken: HashSet<&str> = submits
                .iter()
                .filter(|s| s.answer.is_ok())
                .map(|s| s.id.as_str())
                .collect();
            ids.iter().all(|id| taken.contains(id.as_str()))
        })
        .await
    }

    /// Waits up to `limit` until `done` holds for the submits seen so far.
    pub async fn wait_submits(
        &self,
        limit: Duration,
        mut done: impl FnMut(&[Submitted]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let changed = self.proxy.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(&self.proxy.records.lock().unwrap().submits) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(&self.proxy.records.lock().unwrap().submits);
            }
        }
    }

    /// Panics unless each of `ids` was handed out once and the hub took its result once, no
    /// result was refused for good, and nothing else was handed out or taken. Submits the hub
    /// could not take for a passing reason (`UNAVAILABLE`) are retries, and allowed.
    #[track_caller]
    pub fn assert_answered_once(&self, ids: &[String]) {
        let records = self.proxy.records.lock().unwrap();
        let mut handed_out = records.handed_out.clone();
        handed_out.sort();
        let mut taken: Vec<&str> = records
            .submits
            .iter()
            .filter(|s| s.answer.is_ok())
            .map(|s| s.id.as_str())
            .collect();
        taken.sort_unstable();
        let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
        expected.sort_unstable();
        let kind = self.kind;
        assert_eq!(
            handed_out, expected,
            "{kind:?} hub: each task handed out exactly once"
        );
        assert_eq!(
            taken, expected,
            "{kind:?} hub: each task's result taken exactly once"
        );
        let refused: Vec<&Submitted> = records
            .submits
            .iter()
            .filter(|s| s.answer.is_err_and(|code| code != Code::Unavailable))
            .collect();
        assert!(
            refused.is_empty(),
            "{kind:?} hub: no result refused: {refused:?}"
        );
    }
}

/// Runs a scenario `async fn(HubKind)` as two tests, `NAME::dev_hub` and `NAME::contract_hub`,
/// so a failure names the hub.
#[macro_export]
macro_rules! on_both_hubs {
    ($scenario:ident) => {
        mod $scenario {
            use $crate::hubs::HubKind;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dev_hub() {
                super::$scenario(HubKind::Dev).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn contract_hub() {
                super::$scenario(HubKind::Contract).await;
            }
        }
    };
}
