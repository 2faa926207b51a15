//! `intercomm up`: the whole system in one process, for a newcomer — every worker and the
//! gateway against the local RabbitMQ, state in a SQLite file, jobs in memory. It prints the URL,
//! a development token and a curl command that works as printed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use intercomm_core::events::EventPublisher;
use intercomm_core::{Connector, Worker, WorkerState};
use intercomm_gateway::auth::{Secret, mint_hs256};
use intercomm_gateway::{Application, GatewaySettings};
use intercomm_workers::{Services, WORKERS};
use tokio::sync::watch;

use crate::cli::UpArgs;

/// How long the printed development token is valid.
const TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// Start everything, print how to use it, run until Ctrl-C or SIGTERM.
///
/// # Errors
/// RabbitMQ unreachable (with how to start it), a bad schema file, a busy port, a database that
/// cannot be opened.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let mut settings = GatewaySettings::from_env().context("reading settings")?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let Some(schemas) = args.schemas {
        settings.schemas_dir = schemas;
    }
    let url = settings.core.amqp_url.clone();
    let probe = Connector::new(
        url.clone(),
        format!("intercomm-up-probe-{}", std::process::id()),
    );
    match probe.connect().await {
        Ok(connection) => {
            let _ = connection.close(200, "probe".into()).await;
        }
        Err(error) => bail!(
            "RabbitMQ is not reachable at {} ({error}).\n\
             Start a local one with `rabbitmq-server -detached` (Debian/Ubuntu: \
             `apt-get install rabbitmq-server`), or `docker run -d -p 5672:5672 rabbitmq:3`, \
             or point AMQP_URL at yours.",
            probe.redacted_url()
        ),
    }
    let development =
        settings.auth.hs256_secret.is_none() && settings.auth.public_key_pem.is_none();
    if development {
        let secret = format!("dev-{}", uuid::Uuid::new_v4().simple());
        settings.auth.hs256_secret = Some(Secret::new(secret));
        // Nobody else can mint tokens for this secret: let the console do it.
        settings.dev_mode = true;
    }

    let pid = std::process::id();
    let events = EventPublisher::connect(Connector::new(
        url.clone(),
        format!("intercomm-up-events-{pid}"),
    ))
    .await
    .context("connecting the events publisher")?;
    let database_url = intercomm_workers::database_url_from_env();
    let services = Services::connect(&database_url, Arc::new(events))
        .await
        .with_context(|| {
            format!(
                "opening the database {}",
                intercomm_workers::store::redacted_url(&database_url)
            )
        })?;

    let (stop, stopping) = watch::channel(false);
    let mut workers = Vec::new();
    for name in WORKERS {
        let worker = intercomm_workers::build(name, &services)
            .with_context(|| format!("building worker {name}"))?
            .settings(&settings.core);
        let worker = super::worker::check_params_against(worker, &settings.schemas_dir)?;
        workers.push(
            start_worker(
                worker,
                Connector::new(url.clone(), format!("intercomm-up-{name}-{pid}")),
                stopping.clone(),
            )
            .await?,
        );
    }

    let application = Application::build(settings.clone()).await?;
    let base = format!("http://{}:{}", settings.listen.ip(), application.port());
    print_banner(&base, &settings, &args.user, development)?;
    let result = application
        .run_until_stopped(intercomm_core::shutdown::signal())
        .await;
    let _ = stop.send(true);
    for worker in workers {
        match tokio::time::timeout(settings.core.grace_period + Duration::from_secs(5), worker)
            .await
        {
            Ok(Ok(Err(error))) => {
                tracing::warn!(error = format!("{error:#}"), "worker stopped with an error")
            }
            Ok(Err(error)) => tracing::warn!(%error, "worker task failed"),
            Err(_) => tracing::warn!("a worker did not stop in time"),
            Ok(Ok(Ok(()))) => {}
        }
    }
    result
}

/// Spawn a worker and wait until it consumes.
async fn start_worker(
    worker: Worker,
    connector: Connector,
    mut stopping: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let name = worker.name().to_owned();
    let mut state = worker.state();
    let task = tokio::spawn(async move {
        worker
            .run(&connector, async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            })
            .await
            .map_err(anyhow::Error::from)
    });
    let ready = tokio::time::timeout(
        Duration::from_secs(30),
        state.wait_for(|s| *s != WorkerState::Connecting),
    )
    .await;
    match ready {
        Ok(Ok(state)) if *state == WorkerState::Ready => Ok(task),
        _ => {
            task.abort();
            match task.await {
                Ok(Err(error)) => Err(error.context(format!("worker {name} did not start"))),
                _ => bail!("worker {name} did not become ready within 30 s"),
            }
        }
    }
}

fn print_banner(
    base: &str,
    settings: &GatewaySettings,
    user: &str,
    development: bool,
) -> anyhow::Result<()> {
    let Some(secret) = &settings.auth.hs256_secret else {
        println!("intercomm is up at {base} (tokens are verified with the configured public key)");
        return Ok(());
    };
    let token = mint_hs256(
        secret,
        user,
        TOKEN_TTL,
        settings.auth.issuer.as_deref(),
        settings.auth.audience.as_deref(),
    )
    .context("minting the development token")?;
    println!();
    println!("intercomm is up at {base}");
    println!("  workers: {}", WORKERS.join(", "));
    println!("  console: {base}/console");
    println!("  OpenAPI: {base}/openapi.json");
    println!("  token for `{user}` (valid 12 h):");
    println!("    {token}");
    if user != "bob" {
        let bob = mint_hs256(
            secret,
            "bob",
            TOKEN_TTL,
            settings.auth.issuer.as_deref(),
            settings.auth.audience.as_deref(),
        )
        .context("minting the development token")?;
        println!("  token for `bob`:");
        println!("    {bob}");
    }
    println!();
    println!("Send a message as {user} and wait for the result:");
    println!(
        "  curl -s -X POST {base}/v1/messages -H 'Authorization: Bearer {token}' \
         -H 'Content-Type: application/json' -H 'Prefer: wait=5' \
         -d '{{\"sender\": \"{user}\", \"receiver\": \"bob\", \"body\": \"merhaba\"}}'"
    );
    println!();
    if development {
        println!(
            "The signing secret is random for this run and never printed; to mint tokens for other \
             users, start with INTERCOMM_JWT_SECRET=<secret> and use `intercomm token --sub <user>`, \
             or use the console's \"development token\" button."
        );
    }
    println!("Stop with Ctrl-C.");
    Ok(())
}
