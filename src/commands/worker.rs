//! `intercomm worker <name>`: run one worker process until Ctrl-C or SIGTERM (SIGHUP is logged
//! and ignored: a worker has nothing to reload).
//!
//! Workers that keep data (`messages`, `subscriptions`, `users`) open the database named by
//! `DATABASE_URL` (default `sqlite://intercomm.db`, migrated at start; pool size
//! `INTERCOMM_DB_MAX_CONNECTIONS`) and publish user events on their own broker connection,
//! `intercomm-events-<name>-<pid>`. `echo` needs neither.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use intercomm_core::events::EventPublisher;
use intercomm_core::schema::SchemaSet;
use intercomm_core::{Connector, Settings, Worker};
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
    ignore_hangups(&name);

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
    let schemas = args
        .schemas
        .or_else(|| std::env::var_os("INTERCOMM_SCHEMAS").map(Into::into))
        .unwrap_or_else(|| "schemas".into());
    let worker = check_params_against(worker, &schemas)?;

    let connector = Connector::new(
        settings.amqp_url.clone(),
        format!("intercomm-worker-{name}-{pid}"),
    );
    tracing::info!(worker = %name, broker = %connector.redacted_url(), "starting worker");
    let metrics_listen = match args.metrics_listen {
        Some(address) => Some(address),
        None => std::env::var("INTERCOMM_METRICS_LISTEN")
            .ok()
            .filter(|value| !value.is_empty())
            .map(|value| {
                value
                    .parse()
                    .with_context(|| format!("INTERCOMM_METRICS_LISTEN=`{value}`"))
            })
            .transpose()?,
    };
    let metrics_server = match metrics_listen {
        Some(address) => Some(serve_metrics(address, worker.metrics()).await?),
        None => None,
    };
    let result = worker
        .settings(&settings)
        .run(&connector, intercomm_core::shutdown::signal())
        .await
        .with_context(|| format!("worker `{name}`"));
    if let Some(publisher) = publisher {
        publisher.close().await;
    }
    if let Some(server) = metrics_server {
        server.abort();
    }
    result
}

/// Have `worker` check params against the job definitions in `dir` (CONTRACT §4), when it
/// exists; a directory that exists but does not load stops the process, naming the file.
pub fn check_params_against(worker: Worker, dir: &Path) -> anyhow::Result<Worker> {
    if !dir.is_dir() {
        tracing::info!(
            worker = worker.name(),
            dir = %dir.display(),
            "no job definitions directory: params are checked by the handlers' types only"
        );
        return Ok(worker);
    }
    let definitions = SchemaSet::load_dir(dir)
        .with_context(|| format!("loading the job definitions in {}", dir.display()))?;
    let worker = worker.definitions(&definitions);
    tracing::info!(
        worker = worker.name(),
        dir = %dir.display(),
        methods = %worker.checked_methods().join(", "),
        "params are checked against these methods' job definitions"
    );
    Ok(worker)
}

/// Log and ignore SIGHUP. Gateways reload `schemas/` on it, so it reaches workers too (a
/// `pkill -HUP intercomm`, `docker compose kill -s SIGHUP`); by default it would end the process
/// at once, without the graceful drain, and send its unacknowledged jobs round again.
fn ignore_hangups(worker: &str) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hangups) => {
                let worker = worker.to_owned();
                tokio::spawn(async move {
                    while hangups.recv().await.is_some() {
                        tracing::info!(
                            %worker,
                            "SIGHUP ignored: a worker has nothing to reload (SIGTERM stops it)"
                        );
                    }
                });
            }
            Err(error) => tracing::warn!(%error, "cannot listen for SIGHUP; it ends this worker"),
        }
    }
    #[cfg(not(unix))]
    let _ = worker;
}

/// Serve `GET /metrics` (Prometheus text) for this worker process on `address`.
async fn serve_metrics(
    address: std::net::SocketAddr,
    metrics: intercomm_core::metrics::WorkerMetrics,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the metrics address {address}"))?;
    tracing::info!(address = %listener.local_addr().unwrap_or(address), "serving worker metrics at /metrics");
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics server stopped");
        }
    }))
}
