//! Test set-up: a fresh database per test on each backend, typed params from JSON, contexts.
//!
//! [`each_backend`] runs a test body twice, once on a new SQLite file under the temp directory
//! and once on a new PostgreSQL database (`intercomm_test_<random>`, created through the
//! `postgres` database and dropped afterwards, even when the test panics). PostgreSQL is taken
//! from `INTERCOMM_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`); when it is
//! unreachable the test fails saying so — every storage test must pass on both backends. The
//! PostgreSQL databases use the ICU `en-US` collation when the server has ICU, so that no test
//! passes only because the server happens to sort like bytes.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use intercomm_core::handler::decode_params;
use intercomm_core::{Context, RpcError};
use intercomm_workers::store::Backend;
use intercomm_workers::{RecordingSink, Services, StoreOptions};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::Connection as _;

/// The PostgreSQL server the tests use, without a database name.
pub fn postgres_server() -> String {
    std::env::var("INTERCOMM_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A fresh database with the workers' services over it, and the recording event sink they
/// publish to. Dropping it deletes the database.
#[derive(Debug)]
pub struct TestDb {
    /// Which backend.
    pub backend: Backend,
    /// The database URL (to open it a second time).
    pub url: String,
    /// The services the handlers get.
    pub services: Services,
    /// Every event the handlers published.
    pub events: Arc<RecordingSink>,
    cleanup: Cleanup,
}

impl TestDb {
    /// Create a new, empty, migrated database on `backend`.
    pub async fn create(backend: Backend) -> Self {
        let name = format!(
            "intercomm_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let (url, cleanup) = match backend {
            Backend::Sqlite => {
                let file = std::env::temp_dir().join(format!("{name}.db"));
                (
                    format!("sqlite://{}", file.display()),
                    Cleanup::SqliteFile(file),
                )
            }
            Backend::Postgres => {
                let server = postgres_server();
                let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
                    .await
                    .unwrap_or_else(|error| {
                        panic!(
                            "PostgreSQL at {server} is unreachable ({error}); the workers' \
                             storage tests run on SQLite and PostgreSQL: start PostgreSQL (trust \
                             auth for user postgres) or point INTERCOMM_TEST_POSTGRES at one"
                        )
                    });
                // A linguistic collation (ICU en-US), as production databases often have,
                // so that nothing passes only because the server sorts like bytes. Servers
                // built without ICU get their default collation.
                let icu = format!(
                    "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu \
                     ICU_LOCALE 'en-US'"
                );
                if let Err(error) = sqlx::query(&icu).execute(&mut admin).await {
                    eprintln!("no ICU collation ({error}); using the server's default");
                    sqlx::query(&format!("CREATE DATABASE {name}"))
                        .execute(&mut admin)
                        .await
                        .unwrap_or_else(|error| panic!("creating database {name}: {error}"));
                }
                let _ = admin.close().await;
                (
                    format!("{server}/{name}"),
                    Cleanup::PostgresDatabase { server, name },
                )
            }
        };
        let events = RecordingSink::new();
        let services = Services::connect_with(&url, &StoreOptions::default(), events.clone())
            .await
            .unwrap_or_else(|error| panic!("opening {url}: {error}"));
        Self {
            backend,
            url,
            services,
            events,
            cleanup,
        }
    }

    /// Services over this database with their own recording sink (a second worker process).
    pub async fn reopen(&self) -> (Services, Arc<RecordingSink>) {
        let events = RecordingSink::new();
        let services = Services::connect(&self.url, events.clone())
            .await
            .unwrap_or_else(|error| panic!("reopening {}: {error}", self.url));
        (services, events)
    }
}

/// Run `test` on a fresh SQLite database, then on a fresh PostgreSQL database.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::create(backend).await;
        // Shown with the failure output, so a failure says which backend it was on.
        eprintln!("-- on {}: {}", db.backend, db.url);
        test(db).await;
    }
}

/// What to delete when a [`TestDb`] is dropped.
#[derive(Debug)]
enum Cleanup {
    SqliteFile(PathBuf),
    PostgresDatabase { server: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(file) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut path = file.clone().into_os_string();
                    path.push(suffix);
                    let _ = std::fs::remove_file(path);
                }
            }
            Cleanup::PostgresDatabase { server, name } => {
                drop_postgres_database_blocking(server.clone(), name.clone());
            }
        }
    }
}

/// Drop a PostgreSQL database from a fresh thread and runtime, so it works from `Drop` (even
/// in a panic); `WITH (FORCE)` ends the pool's connections first.
fn drop_postgres_database_blocking(server: String, name: String) {
    let database = name.clone();
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                .execute(&mut admin)
                .await?;
            let _ = admin.close().await;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
    })
    .join();
    if let Ok(Err(error)) = dropped {
        eprintln!("dropping test database {name} failed: {error}");
    }
}

/// `value` decoded into a method's params exactly as the worker runtime decodes them.
pub fn params<P: DeserializeOwned>(value: Value) -> P {
    let raw = serde_json::value::to_raw_value(&value).expect("JSON");
    decode_params(Some(&raw)).unwrap_or_else(|error| panic!("{value} does not decode: {error:?}"))
}

/// The error the worker runtime answers when `value` does not decode into `P`.
pub fn decode_error<P: DeserializeOwned + std::fmt::Debug>(value: Value) -> RpcError {
    let raw = serde_json::value::to_raw_value(&value).expect("JSON");
    decode_params::<P>(Some(&raw)).expect_err("the params must not decode")
}

/// A job context with `user` as the gateway-verified subject.
pub fn as_user(method: &str, user: &str) -> Context {
    Context::for_test(method, Some(user))
}

/// A job context of a trusted internal caller (no subject).
pub fn internal(method: &str) -> Context {
    Context::for_test(method, None)
}

/// Assert that `error` is -32602 pointing at `pointer`.
pub fn assert_invalid_params(error: &RpcError, pointer: &str) {
    assert_eq!(error.code, -32602, "{error:?}");
    let data = error.data.as_ref().expect("-32602 carries data");
    assert_eq!(data["pointer"], pointer, "{error:?}");
}

/// Assert that `error` is -32005 Forbidden pointing at `pointer`.
pub fn assert_forbidden(error: &RpcError, pointer: &str) {
    assert_eq!(
        error.code,
        intercomm_workers::access::FORBIDDEN,
        "{error:?}"
    );
    assert_eq!(error.message, "Forbidden");
    assert_eq!(
        error.data.as_ref().expect("data")["pointer"],
        pointer,
        "{error:?}"
    );
}

/// Assert that `text` is an RFC 3339 timestamp in UTC (`…Z`).
pub fn assert_rfc3339_utc(text: &str) {
    assert!(text.ends_with('Z'), "{text} is not UTC");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|error| panic!("{text} is not RFC 3339: {error}"));
}

/// Assert that `text` is a lower-case hyphenated UUID of `version`.
pub fn assert_uuid(text: &str, version: usize) {
    let id = uuid::Uuid::parse_str(text).unwrap_or_else(|_| panic!("{text} is not a UUID"));
    assert_eq!(id.get_version_num(), version, "{text}");
    assert_eq!(id.hyphenated().to_string(), text, "{text} is not canonical");
}
