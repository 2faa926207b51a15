//! intercomm-workers: the workers intercomm ships, each a module with one file per method.
//!
//! # Layout
//! - [`echo`]: the `echo` worker (method `echo` returns its params): the smallest example of a
//!   worker, used by tests and the benchmark. It needs no [`Services`].
//! - [`messages`]: the `messages` worker — `send_message`, `get_message`, `list_messages`.
//! - [`subscriptions`]: the `subscriptions` worker — `subscribe_user`, `unsubscribe_user`,
//!   `list_subscriptions`, `publish_event`.
//! - [`users`]: the `users` worker — `add_buffer_msg`, `get_buffer_msg`, `user_message`.
//! - [`store`]: the database (SQLite or PostgreSQL through sqlx), migrations, every query.
//! - [`events`]: [`EventSink`], how handlers push user events (best effort).
//! - [`access`]: the workers' own caller checks and their error codes (-32005 Forbidden).
//! - [`fields`]: validated param fields (user ids, topics, UUIDs, limits) and timestamps.
//!
//! [`build`] is the registry: it maps a worker name to its [`Worker`] with every method bound,
//! given the [`Services`] the handlers share. [`build_without_services`] builds the workers that
//! need none (so `intercomm worker echo` opens no database).

pub mod access;
pub mod echo;
pub mod events;
pub mod fields;
pub mod messages;
pub mod store;
pub mod subscriptions;
pub mod users;

use std::future::Future;
use std::sync::Arc;

use intercomm_core::{Context, Worker};

pub use events::{EventSink, RecordingSink};
pub use store::{Store, StoreError, StoreOptions, database_url_from_env};

/// The names of the workers [`build`] knows.
pub const WORKERS: &[&str] = &[echo::NAME, messages::NAME, subscriptions::NAME, users::NAME];

/// What the handlers share: the database and the way out for user events. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The database.
    pub store: Store,
    /// Where user events go.
    pub events: Arc<dyn EventSink>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Services over an open store.
    #[must_use]
    pub fn new(store: Store, events: Arc<dyn EventSink>) -> Self {
        Self { store, events }
    }

    /// Open the database `database_url` names with the default pool settings and run the
    /// migrations (see [`store`] for URLs and pool sizes).
    ///
    /// # Errors
    /// [`StoreError`] when the URL is not usable, the database cannot be opened or migrating
    /// fails.
    pub async fn connect(
        database_url: &str,
        events: Arc<dyn EventSink>,
    ) -> Result<Self, StoreError> {
        Self::connect_with(database_url, &StoreOptions::default(), events).await
    }

    /// [`Services::connect`] with explicit pool settings.
    ///
    /// # Errors
    /// As [`Services::connect`].
    pub async fn connect_with(
        database_url: &str,
        options: &StoreOptions,
        events: Arc<dyn EventSink>,
    ) -> Result<Self, StoreError> {
        let store = Store::connect(database_url, options).await?;
        Ok(Self::new(store, events))
    }
}

/// Whether the worker called `name` needs [`Services`]; `false` also for unknown names.
#[must_use]
pub fn needs_services(name: &str) -> bool {
    matches!(name, messages::NAME | subscriptions::NAME | users::NAME)
}

/// The worker called `name`, with all its methods, or `None` if there is no such worker.
#[must_use]
pub fn build(name: &str, services: &Services) -> Option<Worker> {
    match name {
        messages::NAME => Some(messages::worker(services)),
        subscriptions::NAME => Some(subscriptions::worker(services)),
        users::NAME => Some(users::worker(services)),
        _ => build_without_services(name),
    }
}

/// The worker called `name` if it needs no [`Services`] (today: `echo`); `None` otherwise.
#[must_use]
pub fn build_without_services(name: &str) -> Option<Worker> {
    match name {
        echo::NAME => Some(echo::worker()),
        _ => None,
    }
}

/// Turn a handler `f(services, context, params)` into the `Fn(context, params)` a [`Worker`]
/// method takes, each job getting its own clone of the services.
pub(crate) fn with_services<F, Fut, P>(
    services: &Services,
    handler: F,
) -> impl Fn(Context, P) -> Fut + Send + Sync + 'static
where
    F: Fn(Services, Context, P) -> Fut + Send + Sync + 'static,
    Fut: Future,
{
    let services = services.clone();
    move |context, params| handler(services.clone(), context, params)
}
