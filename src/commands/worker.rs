//! `intercomm worker <name>`: run one worker process until Ctrl-C or SIGTERM.

use anyhow::{Context as _, bail};
use intercomm_core::{Connector, Settings};

use crate::cli::WorkerArgs;

/// Run the named worker.
///
/// # Errors
/// Unknown worker, bad settings, or a queue that exists with other arguments.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    if args.list {
        for name in intercomm_workers::WORKERS {
            println!("{name}");
        }
        return Ok(());
    }
    let name = args.name.unwrap_or_default();
    let Some(worker) = intercomm_workers::build(&name) else {
        bail!(
            "no worker called `{name}`; known workers: {}",
            intercomm_workers::WORKERS.join(", ")
        );
    };
    let mut settings = Settings::from_env().context("reading settings")?;
    if let Some(concurrency) = args.concurrency {
        settings.prefetch = concurrency.max(1);
    }
    if let Some(queue_type) = args.queue_type {
        settings.queue_type = queue_type.into();
    }
    let connector = Connector::new(
        settings.amqp_url.clone(),
        format!("intercomm-worker-{name}-{}", std::process::id()),
    );
    tracing::info!(worker = %name, broker = %connector.redacted_url(), "starting worker");
    worker
        .settings(&settings)
        .run(&connector, intercomm_core::shutdown::signal())
        .await
        .with_context(|| format!("worker `{name}`"))
}
