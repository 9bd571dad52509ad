//! What the database tests share: a database of the test's own on the real PostgreSQL, dropped
//! afterwards, and a TCP proxy in front of PostgreSQL that a test can cut and restore.

#![allow(dead_code)] // each test file uses its own part of this module

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use arbv_tests::services::{SKIP_VARIABLE, skipped};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

const START_POSTGRES: &str = "Start one with trust authentication for the user `postgres` on 127.0.0.1:5432 \
     (Debian/Ubuntu: apt-get install postgresql, then set `host all all 127.0.0.1/32 trust` in pg_hba.conf), \
     or set DATABASE_URL to a PostgreSQL where that user may create databases.";

/// The server the tests use: `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
/// `None` when the test is to be skipped, after saying so on the terminal (libtest would hide an
/// `eprintln!` of a passing test): when `ARBV_SKIP_SERVICES` names `postgres` (never with
/// `CI=true`). Otherwise a PostgreSQL that does not answer fails the test, saying what to start
/// and how to skip, as the Redis and RabbitMQ tests do.
pub async fn postgres_url() -> Option<String> {
    if skipped("postgres") {
        report_skip(&format!(
            "it needs postgres, and {SKIP_VARIABLE} skips such tests"
        ));
        return None;
    }
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| database::config::DEFAULT_DATABASE_URL.to_owned());
    let shown = database::config::redact_url(&url);
    let missing =
        match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url)).await {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                return Some(url);
            }
            Ok(Err(e)) => format!("no PostgreSQL answers at {shown} (DATABASE_URL): {e}"),
            Err(_) => format!("no PostgreSQL answered at {shown} (DATABASE_URL) within 5 s"),
        };
    panic!(
        "{missing}.\n{START_POSTGRES}\nTo skip the tests that need postgres instead, set {SKIP_VARIABLE}=postgres."
    );
}

/// Writes `SKIPPED <test>: <why>` to the terminal itself, past libtest's capture.
fn report_skip(why: &str) {
    let current = std::thread::current();
    let test = current.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// A database of the test's own, created on the server and dropped (with its connections) when
/// this is dropped, even after a failed assertion.
pub struct TestDatabase {
    server_url: String,
    pub name: String,
}

impl TestDatabase {
    /// A new empty database; `None` when the PostgreSQL tests are skipped.
    pub async fn create() -> Option<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server_url = postgres_url().await?;
        let name = format!(
            "arbv_database_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&server_url).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let _ = admin.close().await;
        Some(Self { server_url, name })
    }

    /// The URL of this database on the server.
    pub fn url(&self) -> String {
        with_database(&self.server_url, &self.name, None)
    }

    /// The URL of this database through `proxy`.
    pub fn url_through(&self, proxy: &TcpProxy) -> String {
        with_database(&self.server_url, &self.name, Some(proxy.address()))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // A runtime of its own on a thread of its own: Drop may run inside the test's runtime.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut admin = PgConnection::connect(&server_url).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await?;
                    admin.close().await
                })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("the test database {} was not dropped: {e}", self.name);
        }
    }
}

/// `url` naming `database`, and `address` as its host and port when given.
fn with_database(url: &str, database: &str, address: Option<SocketAddr>) -> String {
    let (scheme, rest) = url.split_once("://").expect("DATABASE_URL is a URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    let authority = match (address, authority.rsplit_once('@')) {
        (Some(address), Some((user, _))) => format!("{user}@{address}"),
        (Some(address), None) => address.to_string(),
        (None, _) => authority.to_owned(),
    };
    format!("{scheme}://{authority}/{database}{query}")
}

/// A TCP proxy on a loopback port forwarding to PostgreSQL. `cut` closes every connection
/// through it and closes each new one at once, as a database that went away; `restore`
/// forwards again. The machine's PostgreSQL itself is never stopped.
pub struct TcpProxy {
    address: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<JoinSet<()>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// A proxy to the host and port of `server_url`.
    pub async fn start(server_url: &str) -> Self {
        let options: sqlx::postgres::PgConnectOptions = server_url.parse().unwrap();
        let upstream = format!("{}:{}", options.get_host(), options.get_port());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let accepting = tokio::spawn({
            let cut = cut.clone();
            let connections = connections.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    connections.lock().await.spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
            }
        });
        Self {
            address,
            cut,
            connections,
            accepting,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Closes every connection through the proxy, and every new one from now on.
    pub async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.connections.lock().await.abort_all();
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}
