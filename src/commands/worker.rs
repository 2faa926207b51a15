//! `intercomm worker <name>`: run one worker process until Ctrl-C or SIGTERM.
//!
//! Workers that keep data (`messages`, `subscriptions`, `users`) open the database named by
//! `DATABASE_URL` (default `sqlite://intercomm.db`, migrated at start; pool size
//! `INTERCOMM_DB_MAX_CONNECTIONS`) and publish user events on their own broker connection,
//! `intercomm-events-<name>-<pid>`. `echo` needs neither.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use intercomm_core::events::EventPublisher;
use intercomm_core::{Connector, Settings};
use intercomm_workers::store::{StoreOptions, redacted_url};
use intercomm_workers::{Services, database_url_from_env};

use crate::cli::WorkerArgs;

/// Run the named worker.
///
/// # Errors
/// Unknown worker, bad settings, an unreachable database or broker at start, or a queue that
/// exists with other arguments.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    if args.list {
        for name in intercomm_workers::WORKERS {
            println!("{name}");
        }
        return Ok(());
    }
    let name = args.name.unwrap_or_default();
    if !intercomm_workers::WORKERS.contains(&name.as_str()) {
        bail!(
            "no worker called `{name}`; known workers: {}",
            intercomm_workers::WORKERS.join(", ")
        );
    }
    let mut settings = Settings::from_env().context("reading settings")?;
    if let Some(concurrency) = args.concurrency {
        settings.prefetch = concurrency.max(1);
    }
    if let Some(queue_type) = args.queue_type {
        settings.queue_type = queue_type.into();
    }
    let pid = std::process::id();

    let mut publisher = None;
    let worker = if intercomm_workers::needs_services(&name) {
        let events = Connector::new(
            settings.amqp_url.clone(),
            format!("intercomm-events-{name}-{pid}"),
        );
        let events = Arc::new(
            EventPublisher::connect(events)
                .await
                .context("connecting the user-event publisher")?,
        );
        let database_url = database_url_from_env();
        let database = redacted_url(&database_url);
        let options = StoreOptions::from_env().context("reading database settings")?;
        let services = Services::connect_with(&database_url, &options, events.clone())
            .await
            .context("opening the database")?;
        tracing::info!(
            worker = %name,
            %database,
            backend = %services.store.backend(),
            "database ready"
        );
        publisher = Some(events);
        intercomm_workers::build(&name, &services)
    } else {
        intercomm_workers::build_without_services(&name)
    };
    let worker = worker.with_context(|| format!("the registry cannot build `{name}`"))?;

    let connector = Connector::new(
        settings.amqp_url.clone(),
        format!("intercomm-worker-{name}-{pid}"),
    );
    tracing::info!(worker = %name, broker = %connector.redacted_url(), "starting worker");
    let result = worker
        .settings(&settings)
        .run(&connector, intercomm_core::shutdown::signal())
        .await
        .with_context(|| format!("worker `{name}`"));
    if let Some(publisher) = publisher {
        publisher.close().await;
    }
    result
}
