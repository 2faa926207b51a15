//! The store itself: migrations, the SQLite file's set-up, URLs it refuses.

use intercomm_workers::messages::{ListMessages, list_messages, send_message};
use intercomm_workers::store::{Backend, Store, StoreOptions};
use serde_json::json;

use crate::helpers::{TestDb, as_user, each_backend, params, postgres_server};

/// Opening the same database again re-runs the migrations as a no-op: every migration is
/// recorded once, and data written through the first handle is read through the second.
#[tokio::test]
async fn migrations_are_idempotent() {
    each_backend(|db: TestDb| async move {
        let sent = send_message(
            db.services.clone(),
            as_user("send_message", "ann"),
            params(json!({"sender": "ann", "receiver": "bob", "body": "before reopening"})),
        )
        .await
        .expect("sending works");
        let (again, _events) = db.reopen().await;
        again
            .store
            .migrate()
            .await
            .expect("a third run is a no-op too");
        assert_eq!(
            again
                .store
                .applied_migrations()
                .await
                .expect("listing migrations"),
            [1, 2, 3]
        );
        let page = list_messages(
            again.clone(),
            as_user("list_messages", "bob"),
            params::<ListMessages>(json!({"user_id": "bob"})),
        )
        .await
        .expect("listing works");
        assert_eq!(page.messages[0].message_id, sent.message_id);
        again.store.close().await;
    })
    .await;
}

/// A SQLite database file is created when missing and put in WAL mode (so readers do not
/// block the writer).
#[tokio::test]
async fn a_sqlite_file_is_created_in_wal_mode() {
    let db = TestDb::create(Backend::Sqlite).await;
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    assert!(std::path::Path::new(&path).exists(), "{path} was created");
    use sqlx::Connection as _;
    let mut connection = sqlx::SqliteConnection::connect(&db.url)
        .await
        .expect("open");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut connection)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    let _ = connection.close().await;
}

/// `sqlite::memory:` works (one connection kept open, so every job sees the same database).
#[tokio::test]
async fn an_in_memory_sqlite_database_works() {
    let store = Store::connect("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("in-memory SQLite opens");
    store.subscribe("ann", "news", 0).await.expect("write");
    assert_eq!(store.topics_of("ann").await.expect("read"), ["news"]);
}

/// A URL for an unsupported database, or a PostgreSQL server that is not there, is refused
/// with a message saying what was tried, without the password.
#[tokio::test]
async fn unusable_urls_are_refused_clearly() {
    let error = Store::connect("redis://localhost", &StoreOptions::default())
        .await
        .expect_err("redis is not a database we speak");
    assert!(error.to_string().contains("sqlite://"), "{error}");
    let options = StoreOptions {
        acquire_timeout: Some(std::time::Duration::from_secs(2)),
        ..StoreOptions::default()
    };
    let error = Store::connect("postgres://app:hunter2@127.0.0.1:1/none", &options)
        .await
        .expect_err("nothing listens on port 1");
    let message = error.to_string();
    assert!(
        message.contains("cannot open the postgres database"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    let chain = intercomm_workers::store::error_chain(&error);
    assert!(chain.contains("refused"), "the log line says why: {chain}");
}

/// `sslmode=require` in a PostgreSQL URL: the store opens, migrates and serves over TLS, and the
/// server sees the store's connections as encrypted (`pg_stat_ssl`).
#[tokio::test]
async fn postgres_urls_can_require_tls() {
    use sqlx::Connection as _;

    let db = TestDb::create(Backend::Postgres).await;
    let database = db
        .url
        .rsplit('/')
        .next()
        .expect("a database name")
        .to_owned();
    let services = intercomm_workers::Services::connect(
        &format!("{}?sslmode=require", db.url),
        intercomm_workers::RecordingSink::new(),
    )
    .await
    .expect("the store opens over TLS");
    send_message(
        services.clone(),
        as_user("send_message", "ann"),
        params(json!({"sender": "ann", "receiver": "bob", "body": "encrypted"})),
    )
    .await
    .expect("handlers work over TLS");

    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", postgres_server()))
        .await
        .expect("PostgreSQL answers");
    let encrypted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE datname = $1 AND ssl",
    )
    .bind(&database)
    .fetch_one(&mut admin)
    .await
    .expect("pg_stat_ssl");
    assert!(encrypted >= 1, "the store's connections are encrypted");
    let _ = admin.close().await;
    drop(services);
}
