//! TLS to the hub: a dev hub serving over TLS with a CA and certificates made here with rcgen,
//! and a provider that trusts that CA (or does not), checks the hub's name, and shows a client
//! certificate to a hub that requires one. One binary with one global log subscriber: some
//! cases read the logs to see that the provider keeps retrying and says why.

use std::path::PathBuf;
use std::time::Duration;

use arbv_provider::dev_hub::{DevHub, RunningServer};
use arbv_provider::{Config, ConfigError};
use arbv_tests::{HandWritten, PROVIDER, RunningProvider, TOKEN, eventually, loopback};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The name in the hub's certificate; the hub is reached at 127.0.0.1, so the provider must be
/// told to check this name instead.
const HUB_NAME: &str = "hub.test";
/// How long a case waits for something it expects (the machine may be loaded).
const PATIENCE: Duration = Duration::from_secs(30);

/// The log lines of every test in this binary so far (the subscriber is installed once).
fn logs() -> String {
    arbv_tests::logs::global(tracing::Level::INFO).text()
}

/// Waits until some log line holds every one of `parts`.
async fn logged(parts: &[&str]) -> bool {
    eventually(PATIENCE, || async {
        logs()
            .lines()
            .any(|line| parts.iter().all(|part| line.contains(part)))
    })
    .await
}

/// A CA, a hub certificate for [`HUB_NAME`] and a client certificate, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    hub_cert_pem: String,
    hub_key_pem: String,
}

impl Pki {
    fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "arbv test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let hub_key = KeyPair::generate().unwrap();
        let hub_cert = CertificateParams::new(vec![HUB_NAME.to_owned()])
            .unwrap()
            .signed_by(&hub_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client_cert = CertificateParams::new(vec!["provider.test".to_owned()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap();
        let other_key = KeyPair::generate().unwrap();

        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
            ca_pem: ca.pem(),
            hub_cert_pem: hub_cert.pem(),
            hub_key_pem: hub_key.serialize_pem(),
        };
        pki.write("ca.pem", &pki.ca_pem);
        pki.write("client.pem", &client_cert.pem());
        pki.write("client.key", &client_key.serialize_pem());
        pki.write("other.key", &other_key.serialize_pem());
        pki
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.path(name), contents).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The hub's side: its certificate, and with `require_clients` the CA its clients'
    /// certificates must chain to.
    fn server_tls(&self, require_clients: bool) -> ServerTlsConfig {
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.hub_cert_pem, &self.hub_key_pem));
        if require_clients {
            tls.client_ca_root(Certificate::from_pem(&self.ca_pem))
        } else {
            tls
        }
    }
}

async fn tls_hub(pki: &Pki, require_clients: bool) -> (DevHub, RunningServer, String) {
    let hub = DevHub::builder()
        .token(TOKEN)
        .hold(Duration::from_millis(200))
        .build();
    let server = hub
        .serve_tls(loopback(), pki.server_tls(require_clients))
        .await
        .expect("the TLS hub starts");
    let url = format!("https://{}", server.addr());
    (hub, server, url)
}

/// A configuration read the way `serve()` reads the environment.
fn from_env(vars: &[(&str, String)]) -> Result<Config, ConfigError> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .chain([("PROVIDER_AUTH_TOKEN".to_owned(), TOKEN.to_owned())])
        .collect();
    Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

async fn echo_over(hub: &DevHub) {
    let id = hub.enqueue(PROVIDER, "echo", json!({"message": "over tls"}), None);
    let envelope = hub
        .wait_result(&id, PATIENCE)
        .await
        .expect("the provider answers over TLS");
    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(
        envelope["data"]["response"]["echo"], "over tls",
        "{envelope}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_trusting_the_private_ca_runs_a_task_over_tls() {
    logs();
    let pki = Pki::new();
    let (hub, server, url) = tls_hub(&pki, false).await;
    let config = from_env(&[
        ("HUB_GRPC_URL", url),
        ("HUB_TLS_CA_FILE", pki.path("ca.pem").display().to_string()),
        ("HUB_TLS_SERVER_NAME", HUB_NAME.to_owned()),
    ])
    .unwrap();
    let provider = RunningProvider::start(HandWritten, config);
    echo_over(&hub).await;
    provider.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_the_provider_cannot_verify_gets_no_calls_and_the_provider_keeps_retrying() {
    logs();
    let pki = Pki::new();
    for (case, extra) in [
        // The private CA is not trusted: only system and webpki roots.
        (
            "unknown CA",
            vec![("HUB_TLS_SERVER_NAME", HUB_NAME.to_owned())],
        ),
        // The CA is trusted but the certificate is for hub.test, not 127.0.0.1.
        (
            "wrong name",
            vec![("HUB_TLS_CA_FILE", pki.path("ca.pem").display().to_string())],
        ),
    ] {
        let (hub, server, url) = tls_hub(&pki, false).await;
        let hub_addr = server.addr().to_string();
        let mut vars = vec![("HUB_GRPC_URL", url)];
        vars.extend(extra);
        let provider = RunningProvider::start(HandWritten, from_env(&vars).unwrap());
        let id = hub.enqueue(PROVIDER, "echo", json!({"message": "x"}), None);
        assert!(
            logged(&[
                &hub_addr,
                "attempt=3",
                "the hub is unreachable; retrying",
                "certificate"
            ])
            .await,
            "{case}: the provider retries and logs the certificate problem:\n{}",
            logs()
        );
        assert_eq!(hub.stats().get_task_calls, 0, "{case}");
        assert!(
            hub.wait_result(&id, Duration::ZERO).await.is_none(),
            "{case}"
        );
        provider.stop().await.unwrap();
        server.stop().await;
    }
}

// One thread: the hub, the providers and this test share it, so the subscriber set here sees
// the logs of this case alone.
#[tokio::test]
async fn a_hub_requiring_client_certificates_takes_only_a_provider_with_one() {
    let captured = arbv_tests::logs::LogBuffer::default();
    let _logs = captured.capture_thread(tracing::Level::INFO);
    let logs = || captured.text();
    let pki = Pki::new();
    let (hub, server, url) = tls_hub(&pki, true).await;
    let base = || {
        Config::builder()
            .auth_token(TOKEN)
            .hub_url(&url)
            .tls_ca_file(pki.path("ca.pem"))
            .tls_server_name(HUB_NAME)
            // A refused call may hang until its deadline: keep that short.
            .poll_deadline(Duration::from_secs(2))
    };

    let without = RunningProvider::start(HandWritten, base().build().unwrap());
    let id = hub.enqueue(PROVIDER, "echo", json!({"message": "x"}), None);
    // TLS 1.3 lets the client finish its handshake before the hub checks its certificate, so
    // the refusal shows either on connecting or on the calls.
    let hub_addr = server.addr().to_string();
    let refused = eventually(PATIENCE, || async {
        logs().lines().any(|line| {
            (line.contains(&hub_addr) && line.contains("attempt=2"))
                || ((line.contains("the hub is unreachable") || line.contains("the hub answered"))
                    && line.contains("lane="))
        })
    })
    .await;
    assert!(refused, "the refusal is logged:\n{}", logs());
    assert_eq!(hub.stats().get_task_calls, 0);
    assert!(hub.wait_result(&id, Duration::ZERO).await.is_none());
    without.stop().await.unwrap();

    let with = RunningProvider::start(
        HandWritten,
        base()
            .tls_cert_file(pki.path("client.pem"))
            .tls_key_file(pki.path("client.key"))
            .build()
            .unwrap(),
    );
    let envelope = hub
        .wait_result(&id, PATIENCE)
        .await
        .expect("the provider with a client certificate takes the waiting task");
    assert_eq!(envelope["status"], "success", "{envelope}");
    echo_over(&hub).await;
    with.stop().await.unwrap();
    server.stop().await;
}

/// A TLS server that does not offer HTTP/2 (no ALPN `h2`: a web server, say) is not taken for a
/// hub: the provider says why and keeps retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_without_http2_is_refused_as_no_grpc_server() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let pki = Pki::new();
    let chain = CertificateDer::pem_slice_iter(pki.hub_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.hub_key_pem.as_bytes()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            if let Ok(tls) = acceptor.accept(tcp).await {
                held.push(tls);
            }
        }
    });
    let running = RunningProvider::start(
        HandWritten,
        Config::builder()
            .auth_token(TOKEN)
            .hub_url(format!("https://{addr}"))
            .tls_ca_file(pki.path("ca.pem"))
            .tls_server_name(HUB_NAME)
            .build()
            .unwrap(),
    );
    assert!(
        logged(&[&addr.to_string(), "did not agree on HTTP/2 (ALPN h2)"]).await,
        "{}",
        logs()
    );
    running.stop().await.unwrap();
    server.abort();
}

#[tokio::test]
async fn bad_tls_settings_are_start_up_errors_that_never_show_the_key() {
    let pki = Pki::new();
    let key_pem = std::fs::read_to_string(pki.path("client.key")).unwrap();
    let key_body = key_pem.lines().nth(1).unwrap().to_owned();
    let url = ("HUB_GRPC_URL", "https://127.0.0.1:1".to_owned());
    let path = |name: &str| pki.path(name).display().to_string();

    let missing = from_env(&[url.clone(), ("HUB_TLS_CA_FILE", path("absent.pem"))])
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("HUB_TLS_CA_FILE") && missing.contains(&path("absent.pem")),
        "{missing}"
    );

    pki.write("not-a-cert.pem", "hello\n");
    let invalid = from_env(&[url.clone(), ("HUB_TLS_CA_FILE", path("not-a-cert.pem"))])
        .unwrap_err()
        .to_string();
    assert!(
        invalid.contains("HUB_TLS_CA_FILE") && invalid.contains("no PEM certificate"),
        "{invalid}"
    );

    let alone = from_env(&[url.clone(), ("HUB_TLS_CERT_FILE", path("client.pem"))])
        .unwrap_err()
        .to_string();
    assert!(
        alone.contains("HUB_TLS_CERT_FILE") && alone.contains("HUB_TLS_KEY_FILE"),
        "{alone}"
    );

    // A key file given where the CA belongs: the error names the file, not what it holds.
    let misplaced = from_env(&[url.clone(), ("HUB_TLS_CA_FILE", path("client.key"))]).unwrap_err();
    assert!(!format!("{misplaced} {misplaced:?}").contains(&key_body));

    let plain = from_env(&[
        ("HUB_GRPC_URL", "hub-grpc:50051".to_owned()),
        ("HUB_TLS_CA_FILE", path("ca.pem")),
    ])
    .unwrap_err()
    .to_string();
    assert!(plain.contains("https://"), "{plain}");

    let config = from_env(&[
        url.clone(),
        ("HUB_TLS_CERT_FILE", path("client.pem")),
        ("HUB_TLS_KEY_FILE", path("client.key")),
    ])
    .unwrap();
    let shown = format!("{config:?} {config:#?}");
    assert!(
        !shown.contains(&key_body),
        "the key shows in Debug: {shown}"
    );
    assert!(
        shown.contains("client.key"),
        "Debug names the key file: {shown}"
    );

    // A key that is not the certificate's: the provider does not start, and says so without
    // the key.
    let mismatched = from_env(&[
        url,
        ("HUB_TLS_CERT_FILE", path("client.pem")),
        ("HUB_TLS_KEY_FILE", path("other.key")),
    ])
    .unwrap();
    let other_body = std::fs::read_to_string(pki.path("other.key"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    let err = arbv_provider::Runtime::new(HandWritten, mismatched)
        .unwrap()
        .run_until(std::future::pending())
        .await
        .expect_err("a key that does not match the certificate stops the start");
    let err = format!("{err} {err:?}");
    assert!(!err.contains(&other_body), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clear_text_address_off_this_machine_is_warned_about() {
    logs();
    // TEST-NET-1: nothing answers there; the warning comes before the first connection try.
    let far = RunningProvider::start(
        HandWritten,
        Config::builder()
            .auth_token(TOKEN)
            .hub_url("192.0.2.1:50999")
            .build()
            .unwrap(),
    );
    assert!(
        logged(&["192.0.2.1:50999", "clear text"]).await,
        "{}",
        logs()
    );
    far.stop().await.unwrap();

    let (hub, server) = arbv_tests::start_hub(Duration::from_millis(200)).await;
    let near = RunningProvider::start(
        HandWritten,
        arbv_tests::config(&server.url()).build().unwrap(),
    );
    assert_eq!(
        arbv_tests::call(&hub, "echo", json!({"message": "x"}), None).await["status"],
        "success"
    );
    near.stop().await.unwrap();
    let near_addr = server.addr().to_string();
    server.stop().await;
    let logs = logs();
    assert!(
        !logs
            .lines()
            .any(|line| line.contains(&near_addr) && line.contains("clear text")),
        "a loopback hub draws no warning:\n{logs}"
    );
    assert!(!logs.contains(TOKEN), "the token is never logged");
}
