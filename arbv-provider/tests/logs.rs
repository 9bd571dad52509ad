//! The text log as a provider writes it, read back: strings chosen by the hub (here an action
//! name) cannot forge log lines or smuggle terminal escapes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbv_provider::dev_hub::DevHub;
use arbv_provider::telemetry::text_subscriber;
use arbv_provider::{ActionResponse, Config, Provider, ProviderDef};
use serde_json::json;

const TOKEN: &str = "logs-test-token";

struct Echo;

impl Provider for Echo {
    fn definition() -> ProviderDef<Self> {
        let mut def = ProviderDef::new("logs-echo");
        def.action("echo", |_this, _call| async move {
            Ok(ActionResponse::success(json!({})))
        });
        def
    }
}

/// A log destination that keeps what is written.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the subscriber set below is this thread's, so it sees the hub and the provider.
#[tokio::test(flavor = "current_thread")]
async fn an_action_name_from_the_hub_is_escaped_in_the_text_log() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let _logging =
        tracing::subscriber::set_default(text_subscriber("debug", move || writer.clone(), false));

    let hub = DevHub::builder()
        .token(TOKEN)
        .hold(Duration::from_millis(200))
        .build();
    let server = hub.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let hostile = "evil\n2026-01-01T00:00:00Z ERROR forged line\x1b[31m";
    let id = hub.enqueue("logs-echo", hostile, json!({}), None);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = Config::builder()
        .auth_token(TOKEN)
        .hub_url(server.url())
        .build()
        .unwrap();
    let provider = tokio::spawn(arbv_provider::serve_until(Echo, config, async move {
        let _ = stopped.await;
    }));
    let envelope = hub
        .wait_result(&id, Duration::from_secs(60))
        .await
        .expect("the task is answered");
    assert_eq!(envelope["status"], "error", "no such action: {envelope}");
    let _ = stop.send(());
    provider.await.unwrap().unwrap();
    server.stop().await;

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let answered: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("task answered"))
        .collect();
    assert_eq!(answered.len(), 1, "{log}");
    assert!(
        answered[0].contains(r"action=evil\n2026-01-01T00:00:00Z ERROR forged line\u{1b}[31m"),
        "{log}"
    );
    assert!(!log.contains('\x1b'), "{log:?}");
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line: {log}"
    );
}
