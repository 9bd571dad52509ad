//! The PostgreSQL example provider, `database`: users with a balance in cents, and transfers
//! between them.
//!
//! | action | payload | answer |
//! |---|---|---|
//! | `create_user` | `{name, email, balance_cents ≥ 0 = 0}` | the user row |
//! | `get_user` | `{user_id}` | the user row |
//! | `update_user` | `{user_id, name?, email?}` | the updated row |
//! | `delete_user` | `{user_id}` | `{deleted: true}` |
//! | `list_users` | `{limit 1..100 = 20, offset ≥ 0 = 0}` | `{users, total}`, ordered by id |
//! | `transfer` | `{from_user_id, to_user_id, amount_cents > 0}` | `{from, to}`: both rows after it |
//!
//! Error codes: `CONFLICT` (the email is taken), `NOT_FOUND`, `INVALID_PARAMETER`,
//! `INSUFFICIENT_FUNDS`, `UNAVAILABLE` (the database cannot be reached, or cannot run the
//! statement now), `DATABASE_ERROR` (anything else the database refused).

pub mod config;

use std::borrow::Cow;
use std::time::Duration;

use arbv_provider::prelude::*;
use chrono::{DateTime, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};

pub use config::DatabaseConfig;

/// The schema's migrations, embedded in the binary. sqlx records each one applied in
/// `_sqlx_migrations` with its checksum and runs them under an advisory lock, so running them
/// again is a no-op and processes starting together apply each once.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// The columns of a user row, in the order of [`User`].
const USER_COLUMNS: &str = "id, name, email, balance_cents, created_at";

/// A user row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub balance_cents: i64,
    /// When the row was created (UTC, RFC 3339).
    pub created_at: DateTime<Utc>,
}

/// `create_user`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// An email address, unique among users whatever its case.
    #[schemars(
        email,
        length(min = 3, max = 254),
        regex(pattern = r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    )]
    pub email: String,
    /// The opening balance.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub balance_cents: i64,
}

/// The payload of `get_user` and `delete_user`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserId {
    #[schemars(range(min = 1))]
    pub user_id: i64,
}

/// `update_user`'s payload: at least one of `name` and `email`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schemars(range(min = 1))]
    pub user_id: i64,
    #[serde(default)]
    #[schemars(length(min = 1, max = 200))]
    pub name: Option<String>,
    #[serde(default)]
    #[schemars(
        email,
        length(min = 3, max = 254),
        regex(pattern = r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    )]
    pub email: Option<String>,
}

fn default_limit() -> i64 {
    20
}

/// `list_users`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListUsers {
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: i64,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub offset: i64,
}

impl Default for ListUsers {
    fn default() -> Self {
        Self {
            limit: default_limit(),
            offset: 0,
        }
    }
}

/// `transfer`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    #[schemars(range(min = 1))]
    pub from_user_id: i64,
    #[schemars(range(min = 1))]
    pub to_user_id: i64,
    #[schemars(range(min = 1))]
    pub amount_cents: i64,
}

/// `list_users`'s answer: a page of users and how many there are in all.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPage {
    pub users: Vec<User>,
    pub total: i64,
}

/// `delete_user`'s answer.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub deleted: bool,
}

/// `transfer`'s answer: both rows after the transfer.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transferred {
    pub from: User,
    pub to: User,
}

/// Why the provider could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is wrong.
    Config(String),
    /// The migrations failed for a reason that waiting will not fix (a migration that does not
    /// apply, a schema newer than this binary, a refused login).
    Migrate(MigrateError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(message) => f.write_str(message),
            StartError::Migrate(e) => write!(f, "the database migrations failed: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The provider: a pool of connections to one database.
#[derive(Clone, Debug)]
pub struct Database {
    pool: PgPool,
}

impl Database {
    /// A provider over a pool for `config`, connecting only when a task needs a connection.
    /// The pool checks a connection before handing it out, so connections broken while the
    /// database was away are replaced, and a task waits at most `acquire_timeout` for one.
    pub fn new(config: &DatabaseConfig) -> Result<Self, StartError> {
        let options = config
            .connect_options()
            .map_err(StartError::Config)?
            .application_name("arbv-database");
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .test_before_acquire(true)
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// [`new`](Self::new), then the migrations, waiting for the database while it cannot be
    /// reached (a warning each try, at most 10 s apart), as the runtime waits for the hub.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StartError> {
        let database = Self::new(config)?;
        let mut pause = Duration::from_millis(250);
        loop {
            match database.migrate().await {
                Ok(()) => break,
                Err(MigrateError::Execute(e)) if is_unavailable(&e) => {
                    tracing::warn!(
                        database = %config.redacted_url(),
                        error = %e,
                        retry_in_ms = pause.as_millis() as u64,
                        "the database cannot be reached; the migrations will be tried again"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(StartError::Migrate(e)),
            }
        }
        tracing::info!(database = %config.redacted_url(), "the database schema is up to date");
        Ok(database)
    }

    /// Applies the migrations not applied yet.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn fetch_user(&self, user_id: i64) -> Result<User, ActionError> {
        sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(database_error)?
            .ok_or_else(|| not_found(user_id))
    }
}

#[provider(name = "database")]
impl Database {
    /// Creates a user. `CONFLICT` when the email is taken.
    #[action]
    pub async fn create_user(&self, payload: CreateUser) -> Result<User, ActionError> {
        sqlx::query_as::<_, User>(&format!(
            "INSERT INTO users (name, email, balance_cents) VALUES ($1, $2, $3) RETURNING {USER_COLUMNS}"
        ))
        .bind(&payload.name)
        .bind(&payload.email)
        .bind(payload.balance_cents)
        .fetch_one(&self.pool)
        .await
        .map_err(database_error)
    }

    /// A user. `NOT_FOUND` when there is none with that id.
    #[action]
    pub async fn get_user(&self, payload: UserId) -> Result<User, ActionError> {
        self.fetch_user(payload.user_id).await
    }

    /// Changes a user's name, email or both; answers the updated row.
    #[action]
    pub async fn update_user(&self, payload: UpdateUser) -> Result<User, ActionError> {
        if payload.name.is_none() && payload.email.is_none() {
            return Err(
                ActionError::new("Nothing to update: give `name`, `email` or both")
                    .with_code("INVALID_PARAMETER"),
            );
        }
        sqlx::query_as::<_, User>(&format!(
            "UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email) \
             WHERE id = $1 RETURNING {USER_COLUMNS}"
        ))
        .bind(payload.user_id)
        .bind(&payload.name)
        .bind(&payload.email)
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?
        .ok_or_else(|| not_found(payload.user_id))
    }

    /// Deletes a user. `NOT_FOUND` when there is none with that id.
    #[action]
    pub async fn delete_user(&self, payload: UserId) -> Result<Deleted, ActionError> {
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(payload.user_id)
            .execute(&self.pool)
            .await
            .map_err(database_error)?
            .rows_affected();
        if deleted == 0 {
            return Err(not_found(payload.user_id));
        }
        Ok(Deleted { deleted: true })
    }

    /// A page of users ordered by id, and how many there are.
    #[action]
    pub async fn list_users(&self, payload: ListUsers) -> Result<UserPage, ActionError> {
        // One snapshot for the page and the count, so `total` is the count the page came from.
        let mut transaction = self.pool.begin().await.map_err(database_error)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *transaction)
            .await
            .map_err(database_error)?;
        let users = sqlx::query_as::<_, User>(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2"
        ))
        .bind(payload.limit)
        .bind(payload.offset)
        .fetch_all(&mut *transaction)
        .await
        .map_err(database_error)?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&mut *transaction)
            .await
            .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)?;
        Ok(UserPage { users, total })
    }

    /// Moves `amount_cents` from one user's balance to another's, in one transaction.
    /// `INSUFFICIENT_FUNDS` changes nothing.
    #[action]
    pub async fn transfer(&self, payload: Transfer) -> Result<Transferred, ActionError> {
        let Transfer {
            from_user_id,
            to_user_id,
            amount_cents,
        } = payload;
        if from_user_id == to_user_id {
            return Err(ActionError::new("A transfer needs two different users")
                .with_code("INVALID_PARAMETER")
                .with_details(json!({ "user_id": from_user_id })));
        }
        let mut transaction = self.pool.begin().await.map_err(database_error)?;
        // Both rows are locked in id order, whichever way the money goes: two transfers
        // between the same users in opposite directions wait for each other instead of
        // deadlocking. The balances read under the lock are the ones the updates change.
        let locked = sqlx::query_as::<_, (i64, i64)>(
            "SELECT id, balance_cents FROM users WHERE id IN ($1, $2) ORDER BY id FOR UPDATE",
        )
        .bind(from_user_id)
        .bind(to_user_id)
        .fetch_all(&mut *transaction)
        .await
        .map_err(database_error)?;
        let balance = |id: i64| locked.iter().find(|(row, _)| *row == id).map(|(_, b)| *b);
        let from_balance = balance(from_user_id).ok_or_else(|| not_found(from_user_id))?;
        balance(to_user_id).ok_or_else(|| not_found(to_user_id))?;
        if from_balance < amount_cents {
            return Err(ActionError::new(format!(
                "User {from_user_id} has {from_balance} cents, less than the {amount_cents} to transfer"
            ))
            .with_code("INSUFFICIENT_FUNDS")
            .with_details(json!({
                "user_id": from_user_id,
                "balance_cents": from_balance,
                "amount_cents": amount_cents,
            })));
        }
        let change = format!(
            "UPDATE users SET balance_cents = balance_cents + $2 WHERE id = $1 RETURNING {USER_COLUMNS}"
        );
        let from = sqlx::query_as::<_, User>(&change)
            .bind(from_user_id)
            .bind(-amount_cents)
            .fetch_one(&mut *transaction)
            .await
            .map_err(database_error)?;
        let to = sqlx::query_as::<_, User>(&change)
            .bind(to_user_id)
            .bind(amount_cents)
            .fetch_one(&mut *transaction)
            .await
            .map_err(database_error)?;
        transaction.commit().await.map_err(commit_error)?;
        Ok(Transferred { from, to })
    }
}

fn not_found(user_id: i64) -> ActionError {
    ActionError::new(format!("User {user_id} not found"))
        .with_code("NOT_FOUND")
        .with_details(json!({ "user_id": user_id }))
}

/// True when `error` says the database cannot be reached or cannot run the statement now, so
/// the same statement may succeed later: no connection (refused, reset, timed out, TLS), the
/// pool's wait for one run out, the server shutting down or out of connections, or a
/// transaction it chose to abort (deadlock, serialization).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            code.starts_with("08") // connection exception
                || code.starts_with("53") // insufficient resources: too many connections, disk full
                || matches!(
                    code.as_ref(),
                    "57P01" | "57P02" | "57P03" | "40001" | "40P01"
                )
        }),
        _ => false,
    }
}

/// The answer for a `COMMIT` that failed. A connection lost there leaves the outcome unknown:
/// the server may have committed before the answer was lost. Such an error is not marked
/// transient, so a retry declared on the action cannot make a transfer twice.
fn commit_error(error: sqlx::Error) -> ActionError {
    if !is_unavailable(&error) {
        return database_error(error);
    }
    ActionError::new(format!(
        "The database went away during the commit, so the transfer may or may not have been \
         made; read both users to know: {error}"
    ))
    .with_code("UNAVAILABLE")
    .with_details(json!({ "outcome": "unknown" }))
}

/// The answer for a statement that failed.
fn database_error(error: sqlx::Error) -> ActionError {
    if is_unavailable(&error) {
        return ActionError::new(format!("The database is unavailable: {error}"))
            .with_code("UNAVAILABLE")
            .transient();
    }
    if let sqlx::Error::Database(e) = &error {
        let code = e.code().unwrap_or(Cow::Borrowed(""));
        match code.as_ref() {
            // unique_violation: the only unique column besides the id is the email.
            "23505" => {
                return ActionError::new("A user with this email already exists")
                    .with_code("CONFLICT");
            }
            // check_violation, numeric_value_out_of_range: a balance past what it may hold.
            "23514" | "22003" => {
                return ActionError::new(format!(
                    "The database refused the values: {}",
                    e.message()
                ))
                .with_code("INVALID_PARAMETER");
            }
            _ => {}
        }
    }
    tracing::error!(error = %error, "a database statement failed");
    ActionError::new(format!("The database failed: {error}")).with_code("DATABASE_ERROR")
}
