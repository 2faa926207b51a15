//! Dead letters for operators: list what sits in `rpc_queue_<worker>.dlq`, and replay jobs
//! back to `inter_comm` once their cause is fixed.

use std::time::{Duration, SystemTime};

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation};
use serde::Serialize;

use crate::connection::Connector;
use crate::envelope::{HEADER_DEADLINE, format_rfc3339};
use crate::error::{Error, Result};
use crate::topology::{JOB_EXCHANGE, dead_letter_queue};

/// At most this many dead letters are read by one listing.
pub const MAX_LISTED: usize = 10_000;

/// One dead-lettered job as an operator sees it.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    /// `message_id` (the job id for intercomm callers).
    pub message_id: Option<String>,
    /// `correlation_id`.
    pub correlation_id: Option<String>,
    /// The job's method (its original routing key).
    pub method: Option<String>,
    /// Why it was dead-lettered (`rejected` by the worker, `expired`, `delivery_limit`, …).
    pub reason: Option<String>,
    /// How often it was dead-lettered from that queue.
    pub count: i64,
    /// The body, as text (lossy for bytes that are not UTF-8).
    pub body: String,
}

/// Read every dead letter of `worker` without removing any.
///
/// # Errors
/// When the broker is unreachable or the queue does not exist.
pub async fn list(connector: &Connector, worker: &str) -> Result<Vec<DeadLetter>> {
    let connection = connector.connect().await?;
    let channel = connection.create_channel().await?;
    let queue = dead_letter_queue(worker);
    let mut letters = Vec::new();
    while letters.len() < MAX_LISTED {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        letters.push(describe(
            &message.delivery.properties,
            &message.delivery.routing_key,
            &message.delivery.data,
        ));
    }
    // Closing the channel gives every message back, unchanged.
    let _ = channel.close(200, "listed".into()).await;
    let _ = connection.close(200, "listed".into()).await;
    Ok(letters)
}

/// Re-publish dead letters of `worker` (all, or those whose `message_id` is in `ids`) to
/// `inter_comm` under their method, with a fresh deadline `timeout` from now. Each is removed
/// from the dead-letter queue only after the broker confirmed its replay; one that no worker
/// is bound for stays. Returns how many were replayed.
///
/// # Errors
/// When the broker is unreachable or the queue does not exist.
pub async fn replay(
    connector: &Connector,
    worker: &str,
    ids: &[String],
    timeout: Duration,
) -> Result<usize> {
    let connection = connector.connect().await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let queue = dead_letter_queue(worker);
    let mut replayed = 0;
    let mut seen = 0;
    while seen < MAX_LISTED {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        seen += 1;
        let delivery = message.delivery;
        let letter = describe(&delivery.properties, &delivery.routing_key, &delivery.data);
        let wanted = ids.is_empty()
            || letter
                .message_id
                .as_ref()
                .is_some_and(|id| ids.contains(id));
        let Some(method) = letter.method.clone().filter(|_| wanted) else {
            // Not asked for (or no method to route by): leave it for later.
            continue;
        };
        match republish(
            &channel,
            &method,
            &delivery.properties,
            &delivery.data,
            timeout,
        )
        .await
        {
            Ok(()) => {
                delivery.acker.ack(BasicAckOptions::default()).await?;
                replayed += 1;
            }
            Err(error) => {
                // Left unacknowledged (not requeued, which would hand it straight back to this
                // loop): closing the channel returns it to the dead-letter queue.
                tracing::warn!(%method, message_id = ?letter.message_id, %error, "not replayed; it stays dead-lettered");
            }
        }
    }
    // Messages skipped above are still unacknowledged: closing gives them back.
    let _ = channel.close(200, "replayed".into()).await;
    let _ = connection.close(200, "replayed".into()).await;
    Ok(replayed)
}

async fn republish(
    channel: &Channel,
    method: &str,
    properties: &BasicProperties,
    body: &[u8],
    timeout: Duration,
) -> Result<()> {
    let mut headers = FieldTable::default();
    if let Some(old) = properties.headers() {
        for (key, value) in old.inner() {
            // Dead-lettering history and the old deadline do not travel with a replay.
            if !matches!(
                key.as_str(),
                "x-death"
                    | "x-first-death-exchange"
                    | "x-first-death-queue"
                    | "x-first-death-reason"
                    | "x-delivery-count"
            ) && key.as_str() != HEADER_DEADLINE
            {
                headers.insert(key.clone(), value.clone());
            }
        }
    }
    let deadline = SystemTime::now() + timeout;
    if let Some(text) = format_rfc3339(deadline) {
        headers.insert(
            HEADER_DEADLINE.into(),
            AMQPValue::LongString(LongString::from(text.as_str())),
        );
    }
    let properties = properties
        .clone()
        .with_headers(headers)
        .with_expiration(timeout.as_millis().max(1).to_string().as_str().into());
    let confirmation = channel
        .basic_publish(
            JOB_EXCHANGE.into(),
            method.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            properties,
        )
        .await?
        .await?;
    match confirmation {
        Confirmation::Ack(Some(_)) => Err(Error::Unroutable {
            method: method.to_owned(),
        }),
        Confirmation::Nack(_) => Err(Error::PublishNacked),
        _ => Ok(()),
    }
}

fn describe(
    properties: &BasicProperties,
    routing_key: &lapin::types::ShortString,
    body: &[u8],
) -> DeadLetter {
    let text =
        |value: &Option<lapin::types::ShortString>| value.as_ref().map(|v| v.as_str().to_owned());
    let death = first_death(properties);
    // The body's method is authoritative (a job may have been published straight to the queue);
    // the original routing key is the fallback for bodies that are not requests.
    let method = method_of(body)
        .or_else(|| death.as_ref().and_then(|d| d.routing_key.clone()))
        .or_else(|| Some(routing_key.as_str().to_owned()).filter(|key| !key.ends_with(".dlq")));
    DeadLetter {
        message_id: text(properties.message_id()),
        correlation_id: text(properties.correlation_id()),
        method,
        reason: death.as_ref().and_then(|d| d.reason.clone()),
        count: death.map_or(0, |d| d.count),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

struct Death {
    reason: Option<String>,
    routing_key: Option<String>,
    count: i64,
}

/// The newest entry of the `x-death` header.
fn first_death(properties: &BasicProperties) -> Option<Death> {
    let headers = properties.headers().as_ref()?;
    let AMQPValue::FieldArray(deaths) = headers.inner().get("x-death")? else {
        return None;
    };
    let AMQPValue::FieldTable(death) = deaths.as_slice().first()? else {
        return None;
    };
    let death = death.inner();
    let text = |key: &str| match death.get(key) {
        Some(AMQPValue::LongString(value)) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        Some(AMQPValue::ShortString(value)) => Some(value.as_str().to_owned()),
        _ => None,
    };
    let routing_key = match death.get("routing-keys") {
        Some(AMQPValue::FieldArray(keys)) => keys.as_slice().first().and_then(|key| match key {
            AMQPValue::LongString(value) => {
                Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
            }
            AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
            _ => None,
        }),
        _ => None,
    };
    let count = match death.get("count") {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        _ => 1,
    };
    Some(Death {
        reason: text("reason"),
        routing_key,
        count,
    })
}

/// The `method` of a JSON-RPC request body, if it has one.
fn method_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Method {
        method: String,
    }
    serde_json::from_slice::<Method>(body)
        .ok()
        .map(|m| m.method)
}
