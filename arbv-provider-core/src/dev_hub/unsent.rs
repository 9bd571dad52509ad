//! Tasks whose answer never left the hub are offered again at once.
//!
//! A `GetTask` held open can be woken by new work just as its caller goes away (a provider
//! restarting, say). hyper then drops the answer unsent, and the task in it would stay leased
//! to nobody until its lease ran out: five minutes by default. The handler puts the task's
//! [`Lease`] in the answer's extensions; this service moves it into the answer's body, which
//! gives the task back unless hyper read the body to its end.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

use super::state::{Lease, State};

/// Wraps the hub's gRPC service.
#[derive(Clone)]
pub(super) struct ReleaseUnsent<S> {
    inner: S,
    state: Arc<State>,
}

impl<S> ReleaseUnsent<S> {
    pub(super) fn new(inner: S, state: Arc<State>) -> Self {
        Self { inner, state }
    }
}

impl<S: NamedService> NamedService for ReleaseUnsent<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for ReleaseUnsent<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let answer = self.inner.call(request);
        let state = self.state.clone();
        Box::pin(async move {
            let (mut parts, body) = answer.await?.into_parts();
            let body = match parts.extensions.remove::<Lease>() {
                Some(lease) => Body::new(Unsent {
                    body,
                    lease: Some(lease),
                    state,
                }),
                None => body,
            };
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// An answer carrying a task; the task goes back to its queue if the answer is dropped before
/// its last frame (the trailers with the call's status) was taken.
struct Unsent {
    body: Body,
    /// `None` once the answer went out whole.
    lease: Option<Lease>,
    state: Arc<State>,
}

impl HttpBody for Unsent {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        let last = match &frame {
            Some(Ok(frame)) => frame.is_trailers(),
            Some(Err(_)) => false,
            None => true,
        };
        if last {
            self.lease = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Unsent {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.state.release(lease);
        }
    }
}
