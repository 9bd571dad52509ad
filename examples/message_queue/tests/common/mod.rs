//! What the RabbitMQ tests share: the broker they need, queue names of their own, and a TCP
//! proxy that stands for the broker going away and coming back.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use lapin::options::QueueDeleteOptions;
use lapin::{Connection, ConnectionProperties};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The real broker's URL (`AMQP_URL`, default guest/guest on 127.0.0.1:5672); `None` when the
/// run skips the tests that need RabbitMQ.
#[track_caller]
pub fn broker_url() -> Option<String> {
    arbv_tests::services::amqp_url()
}

/// A queue name no other run or test uses.
pub fn unique_queue(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "arbv-test.{test}.{}.{nanos}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes the queues a test made, through a connection of the test's own.
pub async fn delete_queues(url: &str, queues: &[&str]) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("the test connects to the broker");
    let channel = connection.create_channel().await.unwrap();
    for queue in queues {
        let _ = channel
            .queue_delete((*queue).into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "OK".into()).await;
}

/// `url` with its host and port replaced by `address`.
pub fn through(url: &str, address: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let credentials = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"))
        .unwrap_or_default();
    format!("{scheme}://{credentials}{address}/{path}")
}

/// The host and port `url` names.
pub fn broker_address(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    authority.rsplit('@').next().unwrap().to_owned()
}

/// A TCP proxy in front of the broker. `cut` drops every connection through it and refuses new
/// ones (they are accepted and closed at once) until `restore`: the broker, as the provider
/// sees it, went away and came back.
pub struct BrokerProxy {
    pub address: SocketAddr,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<JoinSet<()>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl BrokerProxy {
    pub async fn start(broker: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(JoinSet::new()));
        let accepting = tokio::spawn({
            let open = open.clone();
            let links = links.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let broker = broker.clone();
                    links.lock().unwrap().spawn(async move {
                        let Ok(mut upstream) = TcpStream::connect(broker).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    });
                }
            }
        });
        Self {
            address,
            open,
            links,
            accepting,
        }
    }

    /// Drops every connection through the proxy and closes new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.links.lock().unwrap().abort_all();
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for BrokerProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.links.lock().unwrap().abort_all();
    }
}
