//! A hub that does only what the wire contract says, written here against the generated service
//! trait and sharing no code with the dev hub: a queue of tasks, no hand-back, no held calls.
//! Knobs make it answer the ways a real hub may: "no task" as an empty `Task` or `NOT_FOUND`,
//! the submitted task echoed (or another one) in the `SubmitTaskResult` answer, and refusals of
//! a task's first submits with a chosen gRPC code. It records every result it takes, so a test
//! counts exactly-once on its own side.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbv_provider_core::proto::hub_server::{Hub, HubServer};
use arbv_provider_core::proto::{ProviderRequest, Task, TaskResult};
use futures_util::StreamExt;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

/// How the hub says it has no task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoTask {
    /// A `Task` with an empty id.
    EmptyTask,
    /// gRPC `NOT_FOUND`.
    NotFound,
}

/// What the hub puts in a `SubmitTaskResult` answer. It never announces a hand-back.
#[derive(Clone, Debug, PartialEq)]
pub enum SubmitAnswer {
    /// An empty `Task`.
    Empty,
    /// The submitted task, echoed back.
    EchoSubmitted,
    /// This task, every time.
    Other(Task),
}

/// Builds a [`ContractHub`].
#[derive(Debug)]
pub struct ContractHubBuilder {
    token: String,
    no_task: NoTask,
    submit_answer: SubmitAnswer,
}

impl ContractHubBuilder {
    /// How "no task" is answered (default: an empty `Task`).
    pub fn no_task(mut self, no_task: NoTask) -> Self {
        self.no_task = no_task;
        self
    }

    /// What the `SubmitTaskResult` answer holds (default: an empty `Task`).
    pub fn submit_answer(mut self, answer: SubmitAnswer) -> Self {
        self.submit_answer = answer;
        self
    }

    /// The hub, not yet listening.
    pub fn build(self) -> ContractHub {
        ContractHub {
            shared: Arc::new(Shared {
                token: self.token,
                no_task: self.no_task,
                submit_answer: self.submit_answer,
                queue: Mutex::default(),
                results: Mutex::default(),
                refusals: Mutex::default(),
                refused: Mutex::default(),
                result_came: Notify::new(),
                get_task_calls: AtomicU64::new(0),
                submit_calls: AtomicU64::new(0),
                connections: AtomicU64::new(0),
            }),
        }
    }
}

struct Shared {
    token: String,
    no_task: NoTask,
    submit_answer: SubmitAnswer,
    queue: Mutex<VecDeque<Task>>,
    results: Mutex<Vec<TaskResult>>,
    /// Task id → (code, submits still to refuse).
    refusals: Mutex<HashMap<String, (Code, u32)>>,
    /// Every refused submit: (task id, code).
    refused: Mutex<Vec<(String, Code)>>,
    result_came: Notify,
    get_task_calls: AtomicU64,
    submit_calls: AtomicU64,
    connections: AtomicU64,
}

/// The contract-only hub; clones share its queue and records.
#[derive(Clone)]
pub struct ContractHub {
    shared: Arc<Shared>,
}

impl ContractHub {
    /// A builder for a hub that accepts `token`.
    pub fn builder(token: &str) -> ContractHubBuilder {
        ContractHubBuilder {
            token: token.to_owned(),
            no_task: NoTask::EmptyTask,
            submit_answer: SubmitAnswer::Empty,
        }
    }

    /// Queues a task with payload and account as given (account empty for none).
    pub fn push(&self, id: &str, action: &str, payload: impl Into<Vec<u8>>, account: &str) {
        self.shared.queue.lock().unwrap().push_back(Task {
            id: id.to_owned(),
            action: action.to_owned(),
            payload: payload.into().into(),
            account: account.as_bytes().to_vec().into(),
        });
    }

    /// Refuses the first `times` submits of task `id` with `code`.
    pub fn refuse_submits(&self, id: &str, code: Code, times: u32) {
        self.shared
            .refusals
            .lock()
            .unwrap()
            .insert(id.to_owned(), (code, times));
    }

    /// Every result taken, in the order they came.
    pub fn results(&self) -> Vec<TaskResult> {
        self.shared.results.lock().unwrap().clone()
    }

    /// How many results were taken for task `id`.
    pub fn results_for(&self, id: &str) -> usize {
        let results = self.shared.results.lock().unwrap();
        results.iter().filter(|r| r.id == id).count()
    }

    /// Every refused submit: (task id, code).
    pub fn refused(&self) -> Vec<(String, Code)> {
        self.shared.refused.lock().unwrap().clone()
    }

    /// Tasks still queued.
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().unwrap().len()
    }

    /// `GetTask` calls answered.
    pub fn get_task_calls(&self) -> u64 {
        self.shared.get_task_calls.load(Ordering::Relaxed)
    }

    /// `SubmitTaskResult` calls answered, taken or refused.
    pub fn submit_calls(&self) -> u64 {
        self.shared.submit_calls.load(Ordering::Relaxed)
    }

    /// Connections accepted, over every time it served.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Waits up to `limit` until at least `count` results were taken.
    pub async fn wait_results(&self, count: usize, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let came = self.shared.result_came.notified();
            tokio::pin!(came);
            came.as_mut().enable();
            if self.shared.results.lock().unwrap().len() >= count {
                return true;
            }
            if tokio::time::timeout_at(deadline, came).await.is_err() {
                return self.shared.results.lock().unwrap().len() >= count;
            }
        }
    }

    /// Serves the `Hub` service on a free loopback port, with tonic's default limits (4 MiB
    /// received).
    pub async fn serve(&self) -> RunningContractHub {
        self.serve_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves on `addr`: a hub that stopped comes back on its old address with its queue and
    /// records, as a hub that keeps its tasks in storage does after a restart.
    pub async fn serve_on(&self, addr: SocketAddr) -> RunningContractHub {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the address is free");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        // Our own listener's sockets do not get the server's no-delay setting: set it here.
        let shared = self.shared.clone();
        let incoming = TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .inspect(move |accepted| {
                if accepted.is_ok() {
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                }
            });
        let server = tonic::transport::Server::builder()
            .add_service(HubServer::new(Service(self.shared.clone())))
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stopped.await;
            });
        let task = tokio::spawn(async move {
            server.await.expect("the contract hub serves");
        });
        RunningContractHub { addr, stop, task }
    }
}

/// A [`ContractHub`] that is listening.
pub struct RunningContractHub {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningContractHub {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, for a provider's `hub_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops listening; queue and records are kept.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

struct Service(Arc<Shared>);

impl Service {
    fn check(&self, token: &str) -> Result<(), Status> {
        if token == self.0.token {
            Ok(())
        } else {
            Err(Status::unauthenticated("invalid auth token"))
        }
    }
}

#[tonic::async_trait]
impl Hub for Service {
    async fn get_task(&self, request: Request<ProviderRequest>) -> Result<Response<Task>, Status> {
        self.0.get_task_calls.fetch_add(1, Ordering::Relaxed);
        self.check(&request.get_ref().auth_token)?;
        match self.0.queue.lock().unwrap().pop_front() {
            Some(task) => Ok(Response::new(task)),
            None if self.0.no_task == NoTask::NotFound => Err(Status::not_found("no task")),
            None => Ok(Response::new(Task::default())),
        }
    }

    async fn submit_task_result(
        &self,
        request: Request<TaskResult>,
    ) -> Result<Response<Task>, Status> {
        self.0.submit_calls.fetch_add(1, Ordering::Relaxed);
        let result = request.into_inner();
        self.check(&result.auth_token)?;
        if let Some((code, left)) = self.0.refusals.lock().unwrap().get_mut(&result.id)
            && *left > 0
        {
            *left -= 1;
            self.0
                .refused
                .lock()
                .unwrap()
                .push((result.id.clone(), *code));
            return Err(Status::new(
                *code,
                format!("refused result for '{}'", result.id),
            ));
        }
        let answer = match &self.0.submit_answer {
            SubmitAnswer::Empty => Task::default(),
            SubmitAnswer::EchoSubmitted => Task {
                id: result.id.clone(),
                action: result.action.clone(),
                payload: result.payload.clone().into_bytes().into(),
                account: result.account.clone().into_bytes().into(),
            },
            SubmitAnswer::Other(task) => task.clone(),
        };
        self.0.results.lock().unwrap().push(result);
        self.0.result_came.notify_waiters();
        Ok(Response::new(answer))
    }
}
