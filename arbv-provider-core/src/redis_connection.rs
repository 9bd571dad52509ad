//! The Redis connection the shared rate limit and the answer cache use: opened from a URL,
//! connected on first use, remade by itself after an outage, with timeouts short enough that a
//! Redis gone answers in about a second rather than stalling tasks.

use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::rate_limit::RedisUrlError;

/// A Redis at one URL, connected on first use.
pub(crate) struct LazyConnection {
    client: redis::Client,
    connection: OnceLock<ConnectionManager>,
}

impl LazyConnection {
    /// The Redis at `url`; nothing is connected yet.
    pub(crate) fn open(url: &str) -> Result<Self, RedisUrlError> {
        let client = redis::Client::open(url).map_err(|e| RedisUrlError(e.to_string()))?;
        Ok(Self {
            client,
            connection: OnceLock::new(),
        })
    }

    /// The connection, made the first time; it reconnects by itself afterwards.
    pub(crate) fn get(&self) -> Result<ConnectionManager, String> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| e.to_string())?;
        Ok(self.connection.get_or_init(|| connection).clone())
    }
}
