//! The in-process store: a moka cache bounded by the bytes of its answers, each entry living
//! for its action's TTL.

use std::sync::Arc;
use std::time::Duration;

use moka::Expiry;
use moka::future::Cache;
use tokio::time::Instant;

use super::Kept;

/// What an entry costs besides its answer: the key, the timestamps, moka's bookkeeping.
const ENTRY_OVERHEAD_BYTES: usize = 160;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct EntryKey {
    action: Arc<str>,
    hash: String,
}

struct Entry {
    kept: Kept,
    ttl: Duration,
    /// Checked on every read with tokio's clock, so that expiry follows a paused clock in tests
    /// (moka's own timer follows the wall clock and only bounds the memory).
    expires: Instant,
    weight: u32,
}

/// Each entry expires after the TTL of its action, counted again when it is replaced.
struct PerEntryTtl;

impl Expiry<EntryKey, Arc<Entry>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &EntryKey,
        entry: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &EntryKey,
        entry: &Arc<Entry>,
        _updated_at: std::time::Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// Answers kept in this process, at most `max_bytes` of them (the least used go first).
pub(crate) struct MemoryStore {
    entries: Cache<EntryKey, Arc<Entry>>,
}

impl MemoryStore {
    pub(crate) fn new(max_bytes: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_key: &EntryKey, entry: &Arc<Entry>| entry.weight)
            .expire_after(PerEntryTtl)
            .build();
        Self { entries }
    }

    pub(crate) async fn get(&self, action: &Arc<str>, hash: &str) -> Option<Kept> {
        let key = EntryKey {
            action: action.clone(),
            hash: hash.to_owned(),
        };
        let entry = self.entries.get(&key).await?;
        if Instant::now() >= entry.expires {
            self.entries.remove(&key).await;
            return None;
        }
        Some(entry.kept.clone())
    }

    pub(crate) async fn put(&self, action: &Arc<str>, hash: &str, kept: Kept, ttl: Duration) {
        let bytes = ENTRY_OVERHEAD_BYTES
            + action.len()
            + hash.len()
            + kept.message.as_ref().map_or(0, String::len)
            + serde_json::to_vec(&kept.response).map_or(0, |json| json.len());
        let entry = Entry {
            kept,
            ttl,
            expires: Instant::now() + ttl,
            weight: u32::try_from(bytes).unwrap_or(u32::MAX),
        };
        let key = EntryKey {
            action: action.clone(),
            hash: hash.to_owned(),
        };
        self.entries.insert(key, Arc::new(entry)).await;
    }

    /// Drops one entry; true if it was there (and not expired).
    pub(crate) async fn remove(&self, action: &Arc<str>, hash: &str) -> bool {
        let key = EntryKey {
            action: action.clone(),
            hash: hash.to_owned(),
        };
        self.entries
            .remove(&key)
            .await
            .is_some_and(|entry| Instant::now() < entry.expires)
    }

    /// Drops the entries of `action`, or every entry; returns how many.
    pub(crate) async fn remove_where(&self, action: Option<&str>) -> u64 {
        let keys: Vec<Arc<EntryKey>> = self
            .entries
            .iter()
            .filter(|(key, _)| action.is_none_or(|name| &*key.action == name))
            .map(|(key, _)| key)
            .collect();
        let mut removed = 0;
        for key in keys {
            if self.entries.remove(&*key).await.is_some() {
                removed += 1;
            }
        }
        removed
    }

    #[cfg(test)]
    async fn weighed_bytes(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;

    fn kept(response: serde_json::Value) -> Kept {
        Kept {
            message: None,
            response,
            stored_at: Utc::now(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_expires_after_its_ttl_on_the_tokio_clock() {
        let store = MemoryStore::new(1 << 20);
        let action: Arc<str> = Arc::from("weather");
        store
            .put(&action, "k", kept(json!(1)), Duration::from_secs(600))
            .await;
        tokio::time::advance(Duration::from_secs(599)).await;
        assert_eq!(store.get(&action, "k").await.unwrap().response, json!(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(store.get(&action, "k").await.is_none(), "expired at 600 s");
        // Replacing an entry starts its TTL again.
        store
            .put(&action, "k", kept(json!(2)), Duration::from_secs(10))
            .await;
        tokio::time::advance(Duration::from_secs(9)).await;
        store
            .put(&action, "k", kept(json!(3)), Duration::from_secs(10))
            .await;
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(store.get(&action, "k").await.unwrap().response, json!(3));
    }

    #[tokio::test]
    async fn the_bytes_bound_evicts() {
        let max = 64 * 1024;
        let store = MemoryStore::new(max);
        let action: Arc<str> = Arc::from("big");
        let answer = json!("x".repeat(4 * 1024));
        for i in 0..100 {
            store
                .put(
                    &action,
                    &i.to_string(),
                    kept(answer.clone()),
                    Duration::from_secs(60),
                )
                .await;
        }
        let bytes = store.weighed_bytes().await;
        assert!(bytes <= max, "{bytes} bytes kept, bound {max}");
        assert!(bytes > max / 2, "the bound is used: {bytes}");
        let mut found = 0;
        for i in 0..100 {
            found += usize::from(store.get(&action, &i.to_string()).await.is_some());
        }
        assert!((1..100).contains(&found), "{found} of 100 kept");
    }

    #[tokio::test]
    async fn entries_are_removed_by_key_by_action_or_all() {
        let store = MemoryStore::new(1 << 20);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let ttl = Duration::from_secs(60);
        for hash in ["1", "2"] {
            store.put(&a, hash, kept(json!(hash)), ttl).await;
            store.put(&b, hash, kept(json!(hash)), ttl).await;
        }
        assert!(store.remove(&a, "1").await);
        assert!(!store.remove(&a, "1").await);
        assert_eq!(store.remove_where(Some("a")).await, 1);
        assert!(store.get(&b, "1").await.is_some());
        assert_eq!(store.remove_where(None).await, 2);
        assert!(store.get(&b, "2").await.is_none());
    }
}
