//! The Redis store: answers shared by every process of the provider that reaches the same
//! Redis, under `arbv:cache:v1:{provider}:{action}:{hash}`, written with `SET … EX`.
//!
//! Redis unreachable is never the task's failure: the lookup counts as an error, the action
//! runs, and its answer is not kept. One warning is written per outage, and one line when Redis
//! answers again; meanwhile Redis is tried at most once per second, so that an outage does
//! not add a timeout to every task.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Kept;
use crate::rate_limit::RedisUrlError;
use crate::redis_connection::LazyConnection;

/// The longest one command may take, connecting included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// While Redis is down, how often a command tries it again.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Keys asked for in one `SCAN` step.
const SCAN_COUNT: usize = 500;

/// Why a Redis command failed.
#[derive(Debug)]
pub(crate) struct Unreachable(pub(crate) String);

pub(crate) struct RedisStore {
    connection: LazyConnection,
    down: AtomicBool,
    /// While down: when a command may try Redis again.
    next_probe: Mutex<Option<Instant>>,
}

impl RedisStore {
    pub(crate) fn open(url: &str) -> Result<Self, RedisUrlError> {
        Ok(Self {
            connection: LazyConnection::open(url)?,
            down: AtomicBool::new(false),
            next_probe: Mutex::new(None),
        })
    }

    /// Runs `command` on the connection, within [`COMMAND_TIMEOUT`], keeping track of outages.
    async fn run<T>(
        &self,
        command: impl AsyncFnOnce(&mut ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, Unreachable> {
        if self.down.load(Ordering::Relaxed) {
            let mut next = self.next_probe.lock().expect("never poisoned");
            let now = Instant::now();
            if next.is_some_and(|at| now < at) {
                return Err(Unreachable("Redis is down; trying it again shortly".into()));
            }
            *next = Some(now + PROBE_INTERVAL);
        }
        let outcome = async {
            let mut connection = self.connection.get()?;
            match tokio::time::timeout(COMMAND_TIMEOUT, command(&mut connection)).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "Redis did not answer within {} s",
                    COMMAND_TIMEOUT.as_secs()
                )),
            }
        }
        .await;
        match outcome {
            Ok(value) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis answers again: the answer cache is used again");
                }
                Ok(value)
            }
            Err(error) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    *self.next_probe.lock().expect("never poisoned") =
                        Some(Instant::now() + PROBE_INTERVAL);
                    tracing::warn!(
                        "Redis is unreachable for the answer cache: actions run uncached until it answers ({error})"
                    );
                }
                Err(Unreachable(error))
            }
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Kept>, Unreachable> {
        let text: Option<String> = self.run(async |c| c.get(key).await).await?;
        Ok(text.and_then(|text| decode(&text)))
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        kept: &Kept,
        ttl: Duration,
    ) -> Result<(), Unreachable> {
        let text = encode(kept);
        // Redis counts whole seconds: a TTL under one is kept for one, never for zero.
        let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        self.run(async |c| c.set_ex::<_, _, ()>(key, &text, seconds.max(1)).await)
            .await
    }

    pub(crate) async fn remove(&self, key: &str) -> Result<bool, Unreachable> {
        let removed: u64 = self.run(async |c| c.unlink(key).await).await?;
        Ok(removed > 0)
    }

    /// Unlinks every key matching `prefix*` (the prefix taken literally); returns how many.
    pub(crate) async fn remove_prefixed(&self, prefix: &str) -> Result<u64, Unreachable> {
        let pattern = format!("{}*", escape_glob(prefix));
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .run(async |c| {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .query_async(c)
                        .await
                })
                .await?;
            if !keys.is_empty() {
                let count: u64 = self.run(async |c| c.unlink(&keys).await).await?;
                removed += count;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }
}

/// `{"v":1,"message":…,"response":…,"stored_at":"…Z"}`.
fn encode(kept: &Kept) -> String {
    json!({
        "v": 1,
        "message": kept.message,
        "response": kept.response,
        "stored_at": kept.stored_at.to_rfc3339_opts(SecondsFormat::Micros, true),
    })
    .to_string()
}

/// An entry of another version or shape reads as a miss.
fn decode(text: &str) -> Option<Kept> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    if value.get("v")?.as_u64()? != 1 {
        return None;
    }
    let stored_at = DateTime::parse_from_rfc3339(value.get("stored_at")?.as_str()?)
        .ok()?
        .with_timezone(&Utc);
    let message = value.get("message")?.as_str().map(str::to_owned);
    Some(Kept {
        message,
        response: value.get_mut("response")?.take(),
        stored_at,
    })
}

/// `text` with the characters `MATCH` reads as a pattern escaped.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_and_other_shapes_miss() {
        let kept = Kept {
            message: Some("ok".into()),
            response: json!({"t": 21}),
            stored_at: Utc::now(),
        };
        let text = encode(&kept);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["v"], 1);
        assert!(value["stored_at"].as_str().unwrap().ends_with('Z'));
        let back = decode(&text).unwrap();
        assert_eq!((back.message, back.response), (kept.message, kept.response));
        assert!(decode(r#"{"v":2,"message":null,"response":1,"stored_at":"x"}"#).is_none());
        assert!(decode("not json").is_none());
    }

    #[test]
    fn glob_characters_are_taken_literally() {
        assert_eq!(
            escape_glob("arbv:cache:v1:a*b:[x]:"),
            r"arbv:cache:v1:a\*b:\[x\]:"
        );
    }
}
