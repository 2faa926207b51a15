//! Storage for the seed workers: one sqlx pool on SQLite (the default) or PostgreSQL, the
//! embedded schema migrations (`workers/migrations/`), and every query the workers run.
//!
//! The same SQL runs on both backends: numbered `$1` placeholders (SQLite maps `$N` to the N-th
//! bound value too), `TEXT` and `BIGINT` columns only, times as milliseconds since the Unix
//! epoch, binary content as standard base64 text, and `INSERT … ON CONFLICT DO NOTHING` for
//! idempotent writes. Nothing relies on a particular collation: lists the caller sees sorted
//! by name are sorted in Rust; message pages compare UUIDs of one fixed lower-case hex format,
//! which every collation orders like bytes; the fan-out's keyset paging over user ids only
//! needs `ORDER BY` and `>` to agree, which they do under any collation.
//!
//! # Pool sizes
//! - SQLite file: at most [`SQLITE_MAX_CONNECTIONS`] (4). WAL lets readers run beside the one
//!   writer; more connections would only queue on the write lock.
//! - SQLite `:memory:`: exactly 1, kept open; every connection would otherwise see its own
//!   database.
//! - PostgreSQL: at most [`POSTGRES_MAX_CONNECTIONS`] (10): enough for the default prefetch of 64
//!   short jobs, small beside the server's default `max_connections` of 100.
//!
//! A job waits at most [`StoreOptions::acquire_timeout`] (default 10 s) for a connection, then
//! fails with -32603. `INTERCOMM_DB_MAX_CONNECTIONS` overrides the maximum
//! ([`StoreOptions::from_env`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use futures_util::TryFutureExt as _;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// The environment variable naming the database.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// The database used when [`DATABASE_URL_ENV`] is not set: `intercomm.db` in the working
/// directory, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://intercomm.db";

/// The environment variable that overrides the pool's maximum size.
pub const MAX_CONNECTIONS_ENV: &str = "INTERCOMM_DB_MAX_CONNECTIONS";

/// Default maximum pool size on a SQLite file.
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// Default maximum pool size on PostgreSQL.
pub const POSTGRES_MAX_CONNECTIONS: u32 = 10;

/// How long SQLite waits for another connection's write lock before failing a statement.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema migrations in `workers/migrations/`, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database from `DATABASE_URL`, or [`DEFAULT_DATABASE_URL`] when it is unset or empty.
#[must_use]
pub fn database_url_from_env() -> String {
    std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
}

/// `url` with any password replaced by `***`, for logs and messages.
#[must_use]
pub fn redacted_url(url: &str) -> String {
    intercomm_core::config::redact_url(url)
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (`sqlite:` URLs): a file, or `:memory:`.
    Sqlite,
    /// PostgreSQL (`postgres://` or `postgresql://` URLs).
    Postgres,
}

impl Backend {
    /// The backend a URL names, or `None` for any other scheme.
    #[must_use]
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme)?;
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// `"sqlite"` or `"postgres"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can go wrong with the store. Messages never contain the database password; the
/// underlying sqlx error is the [`std::error::Error::source`] (see [`error_chain`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names a database this store does not speak.
    #[error(
        "DATABASE_URL `{url}` names no supported database; use `sqlite://<file>` (the default \
         is `{DEFAULT_DATABASE_URL}`) or `postgres://<user>@<host>/<database>`"
    )]
    UnsupportedUrl {
        /// The URL, password redacted.
        url: String,
    },
    /// The URL has the right scheme but cannot be parsed.
    #[error("DATABASE_URL `{url}` is not a valid {backend} URL")]
    BadUrl {
        /// The URL, password redacted.
        url: String,
        /// The backend its scheme names.
        backend: Backend,
        /// What the parser said.
        source: sqlx::Error,
    },
    /// `INTERCOMM_DB_MAX_CONNECTIONS` is not a positive integer.
    #[error("{MAX_CONNECTIONS_ENV} is `{value}`; give a positive integer such as 10, or unset it")]
    BadMaxConnections {
        /// The value found.
        value: String,
    },
    /// The database could not be reached or opened.
    #[error("cannot open the {backend} database `{url}`")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Which database.
        backend: Backend,
        /// What sqlx said.
        source: sqlx::Error,
    },
    /// The schema migrations failed (or the database has migrations this build does not know).
    #[error("migrating the {backend} database failed")]
    Migrate {
        /// Which database.
        backend: Backend,
        /// What the migrator said.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("{backend} query `{what}` failed")]
    Query {
        /// Which database.
        backend: Backend,
        /// Which operation, e.g. `insert message`.
        what: &'static str,
        /// What sqlx said.
        source: sqlx::Error,
    },
}

/// `error` and its sources, joined by `: ` (for logs, which see one line per error).
#[must_use]
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // sqlx's errors repeat their source in their own message; say each thing once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl From<StoreError> for intercomm_core::RpcError {
    /// The one place a storage failure becomes a JSON-RPC error: the real error is logged here,
    /// once, and the caller gets -32603 with a message that reveals nothing about the database.
    fn from(error: StoreError) -> Self {
        tracing::error!(error = %error_chain(&error), "storage failed");
        Self::internal("storage failed")
    }
}

/// Pool settings; see the module documentation for the defaults and why.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// The pool's maximum size; `None` takes the backend's default. Ignored for SQLite
    /// `:memory:`, which always uses one connection.
    pub max_connections: Option<u32>,
    /// How long a job waits for a free connection; `None` takes 10 s.
    pub acquire_timeout: Option<Duration>,
}

impl StoreOptions {
    /// Defaults, with the maximum pool size from `INTERCOMM_DB_MAX_CONNECTIONS` when set.
    ///
    /// # Errors
    /// [`StoreError::BadMaxConnections`] when the variable is not a positive integer.
    pub fn from_env() -> Result<Self, StoreError> {
        let max_connections = match std::env::var(MAX_CONNECTIONS_ENV) {
            Err(_) => None,
            Ok(value) => match value.trim().parse::<u32>() {
                Ok(max) if max > 0 => Some(max),
                _ => return Err(StoreError::BadMaxConnections { value }),
            },
        };
        Ok(Self {
            max_connections,
            acquire_timeout: None,
        })
    }

    fn acquire_timeout_or_default(&self) -> Duration {
        self.acquire_timeout.unwrap_or(Duration::from_secs(10))
    }
}

/// The pool of one backend.
#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run `$body` with `$pool` bound to the backend's pool. The body is written once and compiled
/// for each backend, so it must evaluate to the same type on both.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// A handle on the database: cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredMessage {
    /// UUIDv7, lower-case hyphenated.
    pub message_id: String,
    /// Who sent it.
    pub sender: String,
    /// Who it is for.
    pub receiver: String,
    /// The text.
    pub body: String,
    /// When it was sent, milliseconds since the Unix epoch.
    pub sent_at_ms: i64,
}

/// A stored binary buffer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredBuffer {
    /// UUIDv4, lower-case hyphenated.
    pub buffer_uuid: String,
    /// Whose it is.
    pub user_id: String,
    /// The content, standard base64 with padding.
    pub content_base64: String,
    /// The decoded size in bytes.
    pub size_bytes: i64,
    /// When it was stored, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// A recorded typed user message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredUserMessage {
    /// UUIDv7, lower-case hyphenated.
    pub id: String,
    /// Whose it is.
    pub user_id: String,
    /// `FRAME_RENDERED`, `RENDER_COMPLETED` or `TEST`.
    pub message_type: String,
    /// The `data` JSON as text.
    pub data_json: String,
    /// When it was recorded, milliseconds since the Unix epoch.
    pub recorded_at_ms: i64,
}

impl Store {
    /// Open the database `url` names (SQLite file created if missing, in WAL mode with a busy
    /// timeout; or PostgreSQL) and run the migrations.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] / [`StoreError::BadUrl`] for a URL this store cannot use,
    /// [`StoreError::Connect`] when the database cannot be opened, [`StoreError::Migrate`] when
    /// the migrations fail.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let store = Self::open(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Open the pool without migrating.
    async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let redacted = redacted_url(url);
        let backend = Backend::of_url(url).ok_or_else(|| StoreError::UnsupportedUrl {
            url: redacted.clone(),
        })?;
        let bad_url = |source| StoreError::BadUrl {
            url: redacted.clone(),
            backend,
            source,
        };
        let connect_error = |source| StoreError::Connect {
            url: redacted.clone(),
            backend,
            source,
        };
        let pool = match backend {
            Backend::Sqlite => {
                let connect = SqliteConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true);
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                let pool = if in_memory {
                    // One connection that never closes: the database lives as long as it does.
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    SqlitePoolOptions::new()
                        .max_connections(options.max_connections.unwrap_or(SQLITE_MAX_CONNECTIONS))
                };
                if !in_memory {
                    // A pool retries failed connections until its acquire timeout and then
                    // reports only that it timed out; one plain attempt first says why
                    // (unwritable file, missing directory) at once.
                    sqlx::SqliteConnection::connect_with(&connect)
                        .and_then(Connection::close)
                        .await
                        .map_err(connect_error)?;
                }
                let pool = pool
                    .acquire_timeout(options.acquire_timeout_or_default())
                    .connect_with(connect)
                    .await
                    .map_err(connect_error)?;
                Pool::Sqlite(pool)
            }
            Backend::Postgres => {
                let connect = PgConnectOptions::from_str(url).map_err(bad_url)?;
                // As for SQLite: one plain attempt first says why it fails (refused, unknown
                // database, bad password).
                sqlx::PgConnection::connect_with(&connect)
                    .and_then(Connection::close)
                    .await
                    .map_err(connect_error)?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections.unwrap_or(POSTGRES_MAX_CONNECTIONS))
                    .acquire_timeout(options.acquire_timeout_or_default())
                    .connect_with(connect)
                    .await
                    .map_err(connect_error)?;
                Pool::Postgres(pool)
            }
        };
        Ok(Self { pool })
    }

    /// Apply the migrations this build embeds that the database does not have yet; applying
    /// them again is a no-op.
    ///
    /// # Errors
    /// [`StoreError::Migrate`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| MIGRATOR.run(pool).await).map_err(|source| StoreError::Migrate {
            backend: self.backend(),
            source,
        })
    }

    /// Which database this is.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Close every connection (waits for connections in use to be returned).
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await);
    }

    fn query_error(&self, what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        let backend = self.backend();
        move |source| StoreError::Query {
            backend,
            what,
            source,
        }
    }

    /// The versions of the migrations applied to the database, in order (for checks and tests).
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        const SQL: &str =
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version";
        on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(SQL)
            .fetch_all(pool)
            .await)
        .map_err(self.query_error("list migrations"))
    }

    // ---- messages -------------------------------------------------------------------------

    /// Store a message and file it in the sender's and the receiver's mailbox, atomically.
    ///
    /// # Errors
    /// [`StoreError::Query`] (e.g. a duplicate `message_id`).
    pub async fn insert_message(&self, message: &StoredMessage) -> Result<(), StoreError> {
        const INSERT: &str = "INSERT INTO messages \
                              (message_id, sender, receiver, body, sent_at_ms) \
                              VALUES ($1, $2, $3, $4, $5)";
        const FILE: &str = "INSERT INTO mailbox (user_id, message_id) VALUES ($1, $2) \
                            ON CONFLICT (user_id, message_id) DO NOTHING";
        on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT)
                .bind(&message.message_id)
                .bind(&message.sender)
                .bind(&message.receiver)
                .bind(&message.body)
                .bind(message.sent_at_ms)
                .execute(&mut *tx)
                .await?;
            for user in [&message.sender, &message.receiver] {
                sqlx::query(FILE)
                    .bind(user)
                    .bind(&message.message_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(self.query_error("insert message"))
    }

    /// The message with this id, if any.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn message(&self, message_id: &str) -> Result<Option<StoredMessage>, StoreError> {
        const SQL: &str = "SELECT message_id, sender, receiver, body, sent_at_ms FROM messages \
                           WHERE message_id = $1";
        on_pool!(self, |pool| sqlx::query_as::<_, StoredMessage>(SQL)
            .bind(message_id)
            .fetch_optional(pool)
            .await)
        .map_err(self.query_error("get message"))
    }

    /// Up to `limit` messages `user_id` sent or received, newest first, only those older than
    /// the message `before` when given.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn messages_of(
        &self,
        user_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        // The mailbox's primary key (user_id, message_id) serves both the filter and the order;
        // UUIDv7 ids sort by creation time.
        const FIRST: &str = "SELECT m.message_id, m.sender, m.receiver, m.body, m.sent_at_ms \
                             FROM mailbox b JOIN messages m ON m.message_id = b.message_id \
                             WHERE b.user_id = $1 \
                             ORDER BY b.message_id DESC LIMIT $2";
        const AFTER: &str = "SELECT m.message_id, m.sender, m.receiver, m.body, m.sent_at_ms \
                             FROM mailbox b JOIN messages m ON m.message_id = b.message_id \
                             WHERE b.user_id = $1 AND b.message_id < $3 \
                             ORDER BY b.message_id DESC LIMIT $2";
        let limit = i64::from(limit);
        on_pool!(self, |pool| match before {
            None => {
                sqlx::query_as::<_, StoredMessage>(FIRST)
                    .bind(user_id)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            }
            Some(before) => {
                sqlx::query_as::<_, StoredMessage>(AFTER)
                    .bind(user_id)
                    .bind(limit)
                    .bind(before)
                    .fetch_all(pool)
                    .await
            }
        })
        .map_err(self.query_error("list messages"))
    }

    // ---- subscriptions --------------------------------------------------------------------

    /// Subscribe `user_id` to `topic`; a no-op when already subscribed.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn subscribe(
        &self,
        user_id: &str,
        topic: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO subscriptions (user_id, topic, subscribed_at_ms) \
                           VALUES ($1, $2, $3) ON CONFLICT (user_id, topic) DO NOTHING";
        on_pool!(self, |pool| sqlx::query(SQL)
            .bind(user_id)
            .bind(topic)
            .bind(at_ms)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(self.query_error("subscribe"))
    }

    /// Unsubscribe `user_id` from `topic`; a no-op when not subscribed.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn unsubscribe(&self, user_id: &str, topic: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM subscriptions WHERE user_id = $1 AND topic = $2";
        on_pool!(self, |pool| sqlx::query(SQL)
            .bind(user_id)
            .bind(topic)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(self.query_error("unsubscribe"))
    }

    /// The topics `user_id` is subscribed to, sorted by byte value.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn topics_of(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT topic FROM subscriptions WHERE user_id = $1";
        let mut topics = on_pool!(self, |pool| sqlx::query_scalar::<_, String>(SQL)
            .bind(user_id)
            .fetch_all(pool)
            .await)
        .map_err(self.query_error("list subscriptions"))?;
        // Sorted here, not by ORDER BY: PostgreSQL's locale collation could order `a.b` and `ab`
        // differently from SQLite.
        topics.sort_unstable();
        Ok(topics)
    }

    /// Up to `limit` subscribers of `topic` that come after `after` (keyset paging; the order
    /// is the database's, stable between pages).
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn subscribers_page(
        &self,
        topic: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        const FIRST: &str = "SELECT user_id FROM subscriptions WHERE topic = $1 \
                             ORDER BY user_id LIMIT $2";
        const NEXT: &str = "SELECT user_id FROM subscriptions WHERE topic = $1 AND user_id > $3 \
                            ORDER BY user_id LIMIT $2";
        let limit = i64::from(limit);
        on_pool!(self, |pool| match after {
            None => {
                sqlx::query_scalar::<_, String>(FIRST)
                    .bind(topic)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            }
            Some(after) => {
                sqlx::query_scalar::<_, String>(NEXT)
                    .bind(topic)
                    .bind(limit)
                    .bind(after)
                    .fetch_all(pool)
                    .await
            }
        })
        .map_err(self.query_error("list subscribers"))
    }

    // ---- buffers and typed user messages ---------------------------------------------------

    /// Store a buffer.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn insert_buffer(&self, buffer: &StoredBuffer) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO buffers \
                           (buffer_uuid, user_id, content_base64, size_bytes, created_at_ms) \
                           VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| sqlx::query(SQL)
            .bind(&buffer.buffer_uuid)
            .bind(&buffer.user_id)
            .bind(&buffer.content_base64)
            .bind(buffer.size_bytes)
            .bind(buffer.created_at_ms)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(self.query_error("insert buffer"))
    }

    /// The buffer with this id, if any.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn buffer(&self, buffer_uuid: &str) -> Result<Option<StoredBuffer>, StoreError> {
        const SQL: &str = "SELECT buffer_uuid, user_id, content_base64, size_bytes, created_at_ms \
                           FROM buffers WHERE buffer_uuid = $1";
        on_pool!(self, |pool| sqlx::query_as::<_, StoredBuffer>(SQL)
            .bind(buffer_uuid)
            .fetch_optional(pool)
            .await)
        .map_err(self.query_error("get buffer"))
    }

    /// Record a typed user message.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn insert_user_message(&self, message: &StoredUserMessage) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO user_messages \
                           (id, user_id, message_type, data_json, recorded_at_ms) \
                           VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| sqlx::query(SQL)
            .bind(&message.id)
            .bind(&message.user_id)
            .bind(&message.message_type)
            .bind(&message.data_json)
            .bind(message.recorded_at_ms)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(self.query_error("insert user message"))
    }

    /// The typed messages recorded for `user_id`, oldest first (for checks and tests).
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub async fn user_messages_of(
        &self,
        user_id: &str,
    ) -> Result<Vec<StoredUserMessage>, StoreError> {
        const SQL: &str = "SELECT id, user_id, message_type, data_json, recorded_at_ms \
                           FROM user_messages WHERE user_id = $1 ORDER BY id";
        on_pool!(self, |pool| sqlx::query_as::<_, StoredUserMessage>(SQL)
            .bind(user_id)
            .fetch_all(pool)
            .await)
        .map_err(self.query_error("list user messages"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// URLs name their backend by scheme, whatever its case; other schemes name none.
    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            Backend::of_url("sqlite://intercomm.db"),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::of_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("PostgreSQL://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://u@h/db"), None);
        assert_eq!(Backend::of_url("intercomm.db"), None);
    }

    /// Passwords never reach logs or messages.
    #[test]
    fn redaction_hides_passwords_only() {
        assert_eq!(
            redacted_url("postgres://app:s3cr%40t@db:5432/intercomm"),
            "postgres://app:***@db:5432/intercomm"
        );
        assert_eq!(
            redacted_url("postgres://app@db/intercomm"),
            "postgres://app@db/intercomm"
        );
        assert_eq!(
            redacted_url("sqlite://intercomm.db"),
            "sqlite://intercomm.db"
        );
    }

    /// An unknown scheme is refused with the supported ones named, and no password shown.
    #[tokio::test]
    async fn an_unsupported_url_is_refused_clearly() {
        let error = Store::connect("mysql://root:hunter2@db/x", &StoreOptions::default())
            .await
            .expect_err("mysql is not supported");
        let message = error.to_string();
        assert!(
            message.contains("sqlite://") && message.contains("postgres://"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }
}
