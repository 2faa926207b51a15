//! `intercomm dlq list|replay <worker>`: what sits in `rpc_queue_<worker>.dlq`, and sending it
//! back to work once the cause is fixed.

use anyhow::Context as _;
use intercomm_core::dlq;
use intercomm_core::{Connector, Settings};

use crate::cli::DlqCommand;

/// Run a dlq command.
///
/// # Errors
/// When the broker is unreachable or the worker has no dead-letter queue.
pub async fn run(command: DlqCommand) -> anyhow::Result<()> {
    let settings = Settings::from_env().context("reading settings")?;
    let connector = Connector::new(
        settings.amqp_url,
        format!("intercomm-dlq-{}", std::process::id()),
    );
    match command {
        DlqCommand::List { worker, json } => {
            let letters = dlq::list(&connector, &worker)
                .await
                .with_context(|| format!("reading rpc_queue_{worker}.dlq"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
                return Ok(());
            }
            println!("{} dead letter(s) in rpc_queue_{worker}.dlq", letters.len());
            for letter in &letters {
                let body: String = letter.body.chars().take(120).collect();
                println!(
                    "{}  method={}  reason={}  count={}  {}",
                    letter.message_id.as_deref().unwrap_or("-"),
                    letter.method.as_deref().unwrap_or("-"),
                    letter.reason.as_deref().unwrap_or("-"),
                    letter.count,
                    body
                );
            }
        }
        DlqCommand::Replay {
            worker,
            ids,
            timeout,
        } => {
            let replayed = dlq::replay(&connector, &worker, &ids, timeout)
                .await
                .with_context(|| format!("replaying rpc_queue_{worker}.dlq"))?;
            println!("replayed {replayed} job(s) from rpc_queue_{worker}.dlq");
        }
    }
    Ok(())
}
