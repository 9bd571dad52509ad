//! The database configuration from the environment, and the URL with its password hidden.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use arbv_provider_grammar::{Bare, parse_duration};
use sqlx::postgres::PgConnectOptions;

/// Where the database is when `DATABASE_URL` is not set: the local server, trust authentication.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Connections kept at most: one for each task in flight at the default concurrency.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;
/// How long a task waits for a connection before it is answered `UNAVAILABLE`.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// `DATABASE_URL`, `DATABASE_MAX_CONNECTIONS` and `DATABASE_ACQUIRE_TIMEOUT`.
#[derive(Clone)]
pub struct DatabaseConfig {
    url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl DatabaseConfig {
    /// The configuration for `url`, with the other settings at their defaults; an error (which
    /// never shows the password) when `url` is not a PostgreSQL URL.
    pub fn new(url: impl Into<String>) -> Result<Self, String> {
        let config = Self {
            url: url.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
        };
        config.connect_options()?;
        Ok(config)
    }

    /// Reads the environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut config =
            Self::new(lookup("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()))?;
        if let Some(text) = lookup("DATABASE_MAX_CONNECTIONS") {
            config.max_connections = text
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    format!("DATABASE_MAX_CONNECTIONS={text:?}: expected a number from 1 to 1000")
                })?;
        }
        if let Some(text) = lookup("DATABASE_ACQUIRE_TIMEOUT") {
            config.acquire_timeout = parse_duration(&text, Bare::Seconds)
                .ok()
                .filter(|d| !d.is_zero() && *d <= Duration::from_secs(300))
                .ok_or_else(|| {
                    format!(
                        "DATABASE_ACQUIRE_TIMEOUT={text:?}: expected seconds (`2`, `0.5`) or a \
                         duration (`500ms`), above zero and at most 5 minutes"
                    )
                })?;
        }
        Ok(config)
    }

    /// The URL with its password replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// sqlx's options for the URL. Their `Debug` shows the password: they are never logged.
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions, String> {
        let refused = |why: &dyn fmt::Display| {
            format!(
                "DATABASE_URL={}: not a PostgreSQL URL (postgres://user[:password]@host[:port]/database): {why}",
                self.redacted_url()
            )
        };
        // sqlx reads any scheme as PostgreSQL's: another database's URL is a mistake to report.
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(refused(&"the scheme must be postgres:// or postgresql://"));
        }
        PgConnectOptions::from_str(&self.url).map_err(|e| refused(&e))
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// `url` with the password of its user part, and a `password=` query parameter, replaced by
/// `***`. Text that is not a URL is hidden whole: it may be a password pasted in the wrong place.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{user_info}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_hidden_wherever_the_url_is_shown() {
        let url = "postgres://app:s3cr%40t@db.internal:6432/shop?sslmode=require&password=other";
        assert_eq!(
            redact_url(url),
            "postgres://app:***@db.internal:6432/shop?sslmode=require&password=***"
        );
        let config = DatabaseConfig::new(url).unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cr") && !shown.contains("other"),
            "{shown}"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(redact_url("hunter2"), "***");
    }

    #[tokio::test]
    async fn the_provider_shows_no_password_either() {
        let config = DatabaseConfig::new("postgres://app:s3cret@127.0.0.1:1/shop").unwrap();
        let provider = crate::Database::new(&config).unwrap();
        let shown = format!("{provider:?}");
        assert!(shown.contains("max_connections: 16"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        let error = DatabaseConfig::new("mysql://root:hunter2@db/x").unwrap_err();
        assert!(
            error.contains("DATABASE_URL=mysql://root:***@db/x"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn settings_default_and_are_checked() {
        let config = DatabaseConfig::from_lookup(|_| None).unwrap();
        assert_eq!(config.redacted_url(), DEFAULT_DATABASE_URL);
        assert_eq!(config.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(config.acquire_timeout, DEFAULT_ACQUIRE_TIMEOUT);

        let config = DatabaseConfig::from_lookup(|name| match name {
            "DATABASE_MAX_CONNECTIONS" => Some("4".into()),
            "DATABASE_ACQUIRE_TIMEOUT" => Some("500ms".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.max_connections, 4);
        assert_eq!(config.acquire_timeout, Duration::from_millis(500));

        for (name, value) in [
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_ACQUIRE_TIMEOUT", "0"),
            ("DATABASE_ACQUIRE_TIMEOUT", "soon"),
        ] {
            let error =
                DatabaseConfig::from_lookup(|n| (n == name).then(|| value.to_owned())).unwrap_err();
            assert!(error.starts_with(name), "{error}");
        }
    }
}
