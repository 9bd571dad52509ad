//! The provider's one HTTP/2 connection to the hub, made with hyper (over rustls for
//! `https://`), shared by every lane and made again when it breaks.
//!
//! tonic's `Channel` would do this too, but it sends each call through a `tower::Buffer` to a
//! worker task of its own, and through layers the provider does not use (its own deadline, rate
//! and concurrency limits). Here a call goes from the lane straight to hyper: with the boxing
//! executor below, 8 % fewer instructions per task (callgrind, BENCHMARKS.md "An eleventh pass").

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::http::uri::{Authority, Scheme};
use hyper::http::{HeaderValue, Request, Response, Uri, header};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioIo, TokioTimer};
use sync_wrapper::SyncWrapper;
use tokio::sync::Mutex;
use tonic::body::Body;
use tower_service::Service as _;

use crate::error::error_chain;

/// How long making a connection (TCP, then TLS, then HTTP/2) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An HTTP/2 PING this often, idle or not, ends a connection the hub no longer answers on
/// (a hub host gone without closing its sockets) within [`KEEP_ALIVE_TIMEOUT`] more.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `user-agent` of every call.
const USER_AGENT: &str = concat!("arbv-provider/", env!("CARGO_PKG_VERSION"));

/// Where the hub is and how to reach it: its address, and TLS for `https://`.
#[derive(Clone)]
pub(crate) struct HubTarget {
    scheme: Scheme,
    authority: Authority,
    /// The origin, for the TCP connector.
    origin: Uri,
    /// Resolves the host and opens the TCP connection: hyper-util's, which tries a host's
    /// addresses in turn and, when it has both kinds, IPv6 and IPv4 side by side after 300 ms
    /// ("happy eyeballs"), so one unreachable address does not hold the connection up.
    tcp: HttpConnector,
    #[cfg(feature = "tls")]
    tls: Option<Tls>,
}

#[cfg(feature = "tls")]
#[derive(Clone)]
struct Tls {
    connector: tokio_rustls::TlsConnector,
    server_name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for HubTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for HubTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("no connection within {0:?}")]
    TimedOut(Duration),
    /// hyper-util's connector error, which says "tcp connect error" with the cause beneath.
    #[error("{0}")]
    Tcp(#[source] Box<dyn StdError + Send + Sync>),
    #[cfg(feature = "tls")]
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    #[cfg(feature = "tls")]
    #[error("the hub's TLS did not agree on HTTP/2 (ALPN h2): it cannot be a gRPC server")]
    NoHttp2,
    #[error("HTTP/2 handshake failed: {0}")]
    Http2(#[source] hyper::Error),
}

impl HubTarget {
    /// The target for `uri` (`http://` or `https://`, with an authority), plain.
    pub(crate) fn plain(uri: &Uri) -> Result<Self, String> {
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| "it names no host".to_owned())?;
        let origin = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| e.to_string())?;
        let mut tcp = HttpConnector::new();
        // The scheme is ours to act on (TLS below), not the connector's.
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        Ok(Self {
            scheme,
            authority,
            origin,
            tcp,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// This target over TLS with `config`, checking the hub's certificate for `server_name`
    /// (the address's host when `None`).
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(
        mut self,
        config: rustls::ClientConfig,
        server_name: Option<&str>,
    ) -> Result<Self, String> {
        let host = self.authority.host();
        let name = server_name.unwrap_or_else(|| {
            host.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host)
        });
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
            .map_err(|e| format!("{name:?} is not a name a certificate can be for ({e})"))?;
        self.tls = Some(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        });
        Ok(self)
    }

    /// A new connection, its driving task spawned on the runtime.
    pub(crate) async fn connect(&self) -> Result<SendRequest<Body>, ConnectError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.connect_now())
            .await
            .unwrap_or(Err(ConnectError::TimedOut(CONNECT_TIMEOUT)))
    }

    async fn connect_now(&self) -> Result<SendRequest<Body>, ConnectError> {
        let mut connector = self.tcp.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| ConnectError::Tcp(e.into()))?;
        let tcp = connector
            .call(self.origin.clone())
            .await
            .map_err(|e| ConnectError::Tcp(e.into()))?
            .into_inner();
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let stream = tls
                .connector
                .connect(tls.server_name.clone(), tcp)
                .await
                .map_err(ConnectError::Tls)?;
            if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(ConnectError::NoHttp2);
            }
            return handshake(stream).await;
        }
        handshake(tcp).await
    }
}

/// HTTP/2 over `io`, with keep-alive PINGs; the connection runs in a task of its own.
async fn handshake<I>(io: I) -> Result<SendRequest<Body>, ConnectError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (send, connection) = hyper::client::conn::http2::Builder::new(BoxedExecutor)
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(io))
        .await
        .map_err(ConnectError::Http2)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %error_chain(&error), "the hub connection ended");
        }
    });
    Ok(send)
}

/// Spawns what hyper runs beside the connection (each call's request body) boxed. hyper's
/// future type for it is an enum that can also hold the whole connection: spawned as it is, each
/// call's task would be allocated, aligned and copied at that size.
#[derive(Clone, Copy)]
struct BoxedExecutor;

impl<F> hyper::rt::Executor<F> for BoxedExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        let future: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(future);
        tokio::spawn(future);
    }
}

/// The connection the lanes share, and which one it is: each one made gets the next number.
#[derive(Clone)]
struct Current {
    generation: u64,
    send: SendRequest<Body>,
}

struct Shared {
    target: HubTarget,
    current: Mutex<Current>,
}

/// The connection a lane waits for in place of a broken one (see [`Shared::replace`]). Only
/// polled through `&mut`, so it need not be `Sync` for the lane's handle to be (hyper-util's
/// connector future is not).
type Replacing = SyncWrapper<Pin<Box<dyn Future<Output = Result<Current, tonic::Status>> + Send>>>;

/// A lane's handle on the hub connection: a `tower::Service` for tonic's `Grpc` client. When
/// the connection breaks, the next call makes a new one (one lane makes it, the others wait for
/// it and take it), or fails as `UNAVAILABLE` if the hub cannot be reached.
pub(crate) struct HubConnection {
    shared: Arc<Shared>,
    /// The connection this lane calls on, as it last took it.
    current: Current,
    /// A new connection being made or taken, while `poll_ready` waits for it.
    replacing: Option<Replacing>,
}

impl Clone for HubConnection {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            current: self.current.clone(),
            replacing: None,
        }
    }
}

impl std::fmt::Debug for HubConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConnection")
            .field("hub", &self.shared.target)
            .field("generation", &self.current.generation)
            .finish_non_exhaustive()
    }
}

impl HubConnection {
    /// The first connection to `target`.
    pub(crate) async fn open(target: HubTarget) -> Result<Self, ConnectError> {
        let current = Current {
            generation: 0,
            send: target.connect().await?,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                target,
                current: Mutex::new(current.clone()),
            }),
            current,
            replacing: None,
        })
    }
}

impl Shared {
    /// A connection in place of `broken`: the one another lane made meanwhile, or a new one.
    async fn replace(self: Arc<Self>, broken: u64) -> Result<Current, tonic::Status> {
        let mut current = self.current.lock().await;
        if current.generation == broken || current.send.is_closed() {
            let send = self.target.connect().await.map_err(|error| {
                tonic::Status::unavailable(format!(
                    "no new connection to {}: {}",
                    self.target,
                    error_chain(&error)
                ))
            })?;
            current.generation += 1;
            current.send = send;
            tracing::debug!(
                hub = %self.target,
                generation = current.generation,
                "reconnected to the hub"
            );
        }
        Ok(current.clone())
    }
}

type BoxError = Box<dyn StdError + Send + Sync>;
type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Incoming>, BoxError>> + Send>>;

impl tower_service::Service<Request<Body>> for HubConnection {
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            if let Some(replacing) = &mut self.replacing {
                let replaced = ready!(replacing.get_mut().as_mut().poll(cx));
                self.replacing = None;
                self.current = replaced.map_err(BoxError::from)?;
            }
            match self.current.send.poll_ready(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_closed)) => {
                    let replace = self.shared.clone().replace(self.current.generation);
                    self.replacing = Some(SyncWrapper::new(Box::pin(replace)));
                }
            }
        }
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let mut uri = std::mem::take(&mut parts.uri).into_parts();
        uri.scheme = Some(self.shared.target.scheme.clone());
        uri.authority = Some(self.shared.target.authority.clone());
        match Uri::from_parts(uri) {
            Ok(uri) => parts.uri = uri,
            Err(error) => {
                let status = tonic::Status::internal(format!("no URI for the call: {error}"));
                return Box::pin(std::future::ready(Err(status.into())));
            }
        }
        parts.headers.insert(
            header::USER_AGENT,
            const { HeaderValue::from_static(USER_AGENT) },
        );
        // The error as hyper gives it: tonic reads the status out of it (`UNAVAILABLE` for a
        // keep-alive PING left unanswered), as it does behind its own channel.
        let answer = self
            .current
            .send
            .send_request(Request::from_parts(parts, body));
        Box::pin(async move { answer.await.map_err(BoxError::from) })
    }
}

/// A listener on IPv4 loopback that takes connections and holds them, answering nothing: the
/// HTTP/2 handshake needs nothing back from the server. Its port.
#[cfg(test)]
pub(crate) async fn silent_listener() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_name_is_resolved_and_each_of_its_addresses_tried() {
        // `localhost` may resolve to ::1 first, where nothing listens.
        let port = silent_listener().await;
        let uri: Uri = format!("http://localhost:{port}").parse().unwrap();
        let target = HubTarget::plain(&uri).unwrap();
        assert_eq!(target.to_string(), format!("http://localhost:{port}"));
        assert!(HubConnection::open(target).await.is_ok());
    }

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri: Uri = format!("http://127.0.0.1:{port}").parse().unwrap();
        let error = HubConnection::open(HubTarget::plain(&uri).unwrap())
            .await
            .unwrap_err();
        let text = error_chain(&error);
        assert!(text.contains("tcp connect error"), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }
}
