//! The example as processes, through the dev hub over gRPC, with the real Redis at `REDIS_URL`
//! (default `redis://127.0.0.1:6379`): a repeat within the TTL is answered from Redis with
//! `cached: true` and the first `fetched_at`; invalidation and the TTL (`CACHE_TTL`) make the
//! lookup run again; a second process gets the answer the first kept; with Redis down, answers
//! still come, uncached.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arbv_provider::dev_hub::{DevHub, RunningServer};
use arbv_tests::services::redis_url;
use arbv_tests::{TOKEN, start_hub};
use serde_json::{Value, json};

/// One provider process; killed when dropped.
struct Process(Child);

impl Process {
    /// Starts the example with a name of its own (so that keys of another run are not found),
    /// its Redis at `redis_url` and `CACHE_TTL`, if given.
    fn start(hub: &RunningServer, name: &str, redis_url: &str, ttl: Option<&str>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_redis_cached"));
        command
            .env("HUB_GRPC_URL", hub.url())
            .env("PROVIDER_AUTH_TOKEN", TOKEN)
            .env("PROVIDER_NAME", name)
            .env("REDIS_URL", redis_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(ttl) = ttl {
            command.env("CACHE_TTL", ttl);
        }
        Self(command.spawn().expect("the example starts"))
    }
}

impl Process {
    /// Stops the process as its operator would (SIGTERM) and waits for it to exit, so that no
    /// `GetTask` of it is left open at the hub to take the next task. The wait is on a thread
    /// of its own: the hub, on this test's runtime, serves the process's goodbye meanwhile.
    async fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exited = tokio::task::spawn_blocking(move || self.0.wait().expect("the example exits"))
            .await
            .unwrap();
        assert!(exited.success(), "a graceful stop: {exited}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A provider name no other run uses.
fn unique_name(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("redis-cached-{test}-{}-{nanos}", std::process::id())
}

async fn ask(hub: &DevHub, name: &str, action: &str, user_id: u64) -> Value {
    let id = hub.enqueue(name, action, json!({ "user_id": user_id }), None);
    hub.wait_result(&id, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no answer to {action} within 30 s"))
}

/// `get_user_data`'s answer, checked to be the lookup's for `user_id`.
async fn user(hub: &DevHub, name: &str, user_id: u64) -> Value {
    let envelope = ask(hub, name, "get_user_data", user_id).await;
    assert_eq!(envelope["status"], "success", "{envelope}");
    let data = envelope["data"]["response"].clone();
    assert_eq!(data["user_id"], user_id);
    assert_eq!(data["name"], format!("User {user_id}"));
    assert_eq!(data["email"], format!("user{user_id}@example.com"));
    assert_eq!(
        envelope["data"]["cached"] == true,
        data["cached"] == true,
        "the answer's mark and the envelope's agree: {envelope}"
    );
    data
}

#[tokio::test]
async fn a_repeat_is_cached_until_invalidated() {
    let Some(redis) = redis_url() else { return };
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let name = unique_name("repeat");
    let _provider = Process::start(&server, &name, &redis, None);

    let first = user(&hub, &name, 7).await;
    assert_eq!(first["cached"], false, "{first}");
    let started = Instant::now();
    let repeat = user(&hub, &name, 7).await;
    assert_eq!(repeat["cached"], true, "{repeat}");
    assert_eq!(repeat["fetched_at"], first["fetched_at"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered without the lookup"
    );
    let other = user(&hub, &name, 8).await;
    assert_eq!(other["cached"], false, "another user misses: {other}");

    let dropped = ask(&hub, &name, "invalidate_user_cache", 7).await;
    assert_eq!(
        dropped["data"]["response"],
        json!({ "user_id": 7, "invalidated": true }),
        "{dropped}"
    );
    let again = user(&hub, &name, 7).await;
    assert_eq!(again["cached"], false, "the lookup ran again: {again}");
    assert_ne!(again["fetched_at"], first["fetched_at"]);
    assert_eq!(
        user(&hub, &name, 7).await["fetched_at"],
        again["fetched_at"]
    );
    let nothing = ask(&hub, &name, "invalidate_user_cache", 9).await;
    assert_eq!(
        nothing["data"]["response"]["invalidated"], false,
        "{nothing}"
    );

    let client = redis::Client::open(redis.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("arbv:cache:v1:{name}:get_user_data:*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "users 7 and 8: {keys:?}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!((290..=300).contains(&ttl), "the default 300 s: {ttl}");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn cache_ttl_sets_how_long_an_answer_is_kept() {
    let Some(redis) = redis_url() else { return };
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let name = unique_name("ttl");
    let _provider = Process::start(&server, &name, &redis, Some("1"));
    let first = user(&hub, &name, 3).await;
    let kept = user(&hub, &name, 3).await;
    assert_eq!(kept["cached"], true, "{kept}");
    assert_eq!(kept["fetched_at"], first["fetched_at"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = user(&hub, &name, 3).await;
    assert_eq!(expired["cached"], false, "kept 1 s only: {expired}");
    assert_ne!(expired["fetched_at"], first["fetched_at"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_gets_the_answer_the_first_kept() {
    let Some(redis) = redis_url() else { return };
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let name = unique_name("shared");
    let first_process = Process::start(&server, &name, &redis, None);
    let first = user(&hub, &name, 42).await;
    assert_eq!(first["cached"], false);
    first_process.stop().await;
    let _second_process = Process::start(&server, &name, &redis, None);
    let shared = user(&hub, &name, 42).await;
    assert_eq!(shared["cached"], true, "{shared}");
    assert_eq!(shared["fetched_at"], first["fetched_at"]);
    let dropped = ask(&hub, &name, "invalidate_user_cache", 42).await;
    assert_eq!(dropped["data"]["response"]["invalidated"], true);
}

#[tokio::test]
async fn with_redis_down_answers_still_come_uncached() {
    let (hub, server) = start_hub(Duration::from_secs(2)).await;
    let name = unique_name("down");
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("redis://127.0.0.1:{port}");
    let _provider = Process::start(&server, &name, &down, None);
    let first = user(&hub, &name, 5).await;
    let second = user(&hub, &name, 5).await;
    assert_eq!(
        (&first["cached"], &second["cached"]),
        (&json!(false), &json!(false))
    );
    assert_ne!(
        second["fetched_at"], first["fetched_at"],
        "the lookup ran twice"
    );
    let invalidate = ask(&hub, &name, "invalidate_user_cache", 5).await;
    assert_eq!(invalidate["status"], "error", "{invalidate}");
    assert_eq!(
        invalidate["data"]["response"]["error_code"],
        "CACHE_UNAVAILABLE"
    );
}
