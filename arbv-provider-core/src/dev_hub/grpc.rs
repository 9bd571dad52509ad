//! The dev hub's gRPC `Hub` service.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::RunningServer;
use super::state::{Delivery, State, SubmitRefusal};
use super::unsent::ReleaseUnsent;
use crate::proto::hub_server::{Hub, HubServer};
use crate::proto::{ProviderRequest, Task, TaskResult};
use crate::wire::{ACCEPT_HAND_BACK, HAND_BACK, hand_back_flag_raised, raise_hand_back_flag};

struct HubService {
    state: Arc<State>,
    stop: CancellationToken,
}

/// Serves on `listener` with `server` (plain, or with TLS set on it).
pub(super) fn spawn(state: Arc<State>, listener: TcpListener, mut server: Server) -> RunningServer {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let stop = CancellationToken::new();
    let service = HubService {
        state: state.clone(),
        stop: stop.clone(),
    };
    // `Server::tcp_nodelay` does not reach sockets from our own listener: without it on the
    // accepted sockets, Nagle holds small answers back until the peer's delayed ACK (40 ms).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = server
        .add_service(ReleaseUnsent::new(HubServer::new(service), state))
        .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned());
    let task = tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "dev hub gRPC server failed");
        }
    });
    tracing::info!(%addr, "dev hub serving gRPC");
    RunningServer { addr, stop, task }
}

/// The answer that gives a task out. It carries the task's lease to [`ReleaseUnsent`], which
/// offers the task again if the answer never leaves.
fn deliver(delivery: Delivery) -> Response<Task> {
    let mut answer = Response::new(Task {
        id: delivery.id,
        action: delivery.action,
        payload: delivery.payload,
        account: delivery.account,
    });
    answer.extensions_mut().insert(delivery.lease);
    answer
}

fn refused(provider: &str) -> Status {
    Status::unauthenticated(format!("invalid auth token for provider '{provider}'"))
}

#[tonic::async_trait]
impl Hub for HubService {
    async fn get_task(&self, request: Request<ProviderRequest>) -> Result<Response<Task>, Status> {
        let request = request.into_inner();
        self.state.count_get_task();
        if !self.state.token_ok(&request.auth_token) {
            return Err(refused(&request.provider));
        }
        // Work waiting: no need for the wake-up machinery below.
        if let Some(delivery) = self.state.take_next(&request.provider) {
            return Ok(deliver(delivery));
        }
        let deadline = tokio::time::Instant::now() + self.state.hold;
        let notify = self.state.notifier(&request.provider);
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(delivery) = self.state.take_next(&request.provider) {
                return Ok(deliver(delivery));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Response::new(Task::default()));
            }
            tokio::select! {
                () = notified => {
                    // Let the runtime read the sockets before the task is taken: a caller
                    // that went away while held is then known to hyper, which drops the
                    // answer unsent, and `ReleaseUnsent` puts the task back in its queue.
                    tokio::task::yield_now().await;
                }
                () = tokio::time::sleep_until(deadline) => {}
                () = self.stop.cancelled() => return Err(Status::unavailable("the dev hub is stopping")),
            }
        }
    }

    async fn submit_task_result(
        &self,
        request: Request<TaskResult>,
    ) -> Result<Response<Task>, Status> {
        let accepts_hand_back = hand_back_flag_raised(request.metadata(), ACCEPT_HAND_BACK);
        let result = request.into_inner();
        self.state.count_submit();
        if !self.state.token_ok(&result.auth_token) {
            return Err(refused(&result.provider));
        }
        match self
            .state
            .complete(&result.id, &result.provider, result.result)
        {
            Ok(()) => {}
            Err(SubmitRefusal::UnknownTask) => {
                return Err(Status::not_found(format!(
                    "no task with id '{}'",
                    result.id
                )));
            }
            Err(SubmitRefusal::WrongProvider) => {
                return Err(Status::permission_denied(format!(
                    "task '{}' does not belong to provider '{}'",
                    result.id, result.provider
                )));
            }
        }
        // Hand the next task back at once (it saves the provider a round trip), but only to a
        // client that asked: one that ignores the answer would leave the task leased.
        if !accepts_hand_back || !self.state.hand_back {
            return Ok(Response::new(Task::default()));
        }
        let Some(next) = self.state.take_next(&result.provider) else {
            return Ok(Response::new(Task::default()));
        };
        let mut answer = deliver(next);
        raise_hand_back_flag(answer.metadata_mut(), HAND_BACK);
        Ok(answer)
    }
}
