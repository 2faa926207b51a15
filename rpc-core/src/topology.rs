//! The AMQP topology of CONTRACT §1: names, and idempotent declarations that explain mismatches.

use std::fmt;
use std::str::FromStr;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::error::{Error, Result};

/// The job exchange (direct; routing key = method).
pub const JOB_EXCHANGE: &str = "inter_comm";
/// The dead-letter exchange (direct; routing key = the dead-letter queue's name).
pub const DEAD_LETTER_EXCHANGE: &str = "inter_comm.dlx";
/// The user events exchange (topic; routing key `user.<user_id>.events`).
pub const EVENTS_EXCHANGE: &str = "inter_comm.events";

/// The queue a worker's processes share.
#[must_use]
pub fn worker_queue(worker: &str) -> String {
    format!("rpc_queue_{worker}")
}

/// Where a worker's dead letters go.
#[must_use]
pub fn dead_letter_queue(worker: &str) -> String {
    format!("rpc_queue_{worker}.dlq")
}

/// The callback queue of one client instance.
#[must_use]
pub fn callback_queue(instance: &str) -> String {
    format!("rpc_callback_{instance}")
}

/// The routing key of a user's events.
#[must_use]
pub fn user_events_key(user_id: &str) -> String {
    format!("user.{user_id}.events")
}

/// Check a worker name against `[a-z0-9_]+`.
///
/// # Errors
/// [`Error::InvalidName`] when it does not match.
pub fn validate_worker_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidName {
            kind: "worker",
            name: name.to_owned(),
            pattern: "[a-z0-9_]+",
        })
    }
}

/// Check a method name against `[a-z][a-z0-9_.]*`.
///
/// # Errors
/// [`Error::InvalidName`] when it does not match.
pub fn validate_method_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidName {
            kind: "method",
            name: name.to_owned(),
            pattern: "[a-z][a-z0-9_.]*",
        })
    }
}

/// The type of a worker queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueueType {
    /// Replicated, counts deliveries (so the delivery limit applies). The default.
    #[default]
    Quorum,
    /// Single-node; faster, but has no delivery count, so poison jobs are not limited.
    Classic,
}

impl QueueType {
    /// The value of `x-queue-type`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Quorum => "quorum",
            Self::Classic => "classic",
        }
    }
}

impl fmt::Display for QueueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QueueType {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "quorum" => Ok(Self::Quorum),
            "classic" => Ok(Self::Classic),
            other => Err(format!("`{other}` is not a queue type (quorum or classic)")),
        }
    }
}

/// What a worker's queue looks like.
#[derive(Clone, Debug)]
pub struct WorkerQueueSpec {
    /// The worker name (`rpc_queue_<worker>`).
    pub worker: String,
    /// Quorum or classic.
    pub queue_type: QueueType,
    /// Deliveries after which the broker dead-letters a job (quorum only).
    pub delivery_limit: u32,
}

/// Declare the three exchanges. Idempotent.
///
/// # Errors
/// When the broker refuses a declaration (e.g. an exchange exists with another type).
pub async fn declare_exchanges(channel: &Channel) -> Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    for (name, kind) in [
        (JOB_EXCHANGE, ExchangeKind::Direct),
        (DEAD_LETTER_EXCHANGE, ExchangeKind::Direct),
        (EVENTS_EXCHANGE, ExchangeKind::Topic),
    ] {
        channel
            .exchange_declare(name.into(), kind, durable, FieldTable::default())
            .await
            .map_err(|error| explain_mismatch(name, "the broker's existing exchange", error))?;
    }
    Ok(())
}

/// Declare a worker's queue, its dead-letter queue and one binding per method. Idempotent.
///
/// # Errors
/// [`Error::TopologyMismatch`] when a queue exists with other arguments (the channel is then
/// closed by the broker; open a new one to go on), or any other broker refusal.
pub async fn declare_worker_queue(
    channel: &Channel,
    spec: &WorkerQueueSpec,
    methods: &[String],
) -> Result<()> {
    declare_exchanges(channel).await?;
    let queue = worker_queue(&spec.worker);
    let dlq = dead_letter_queue(&spec.worker);
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };

    // The worker queue first, so that a mismatch names the queue operators know.
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string(spec.queue_type.as_str()));
    args.insert(
        "x-dead-letter-exchange".into(),
        long_string(DEAD_LETTER_EXCHANGE),
    );
    args.insert("x-dead-letter-routing-key".into(), long_string(&dlq));
    if spec.queue_type == QueueType::Quorum {
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(spec.delivery_limit)),
        );
    }
    declare_queue(channel, &queue, durable, args, spec).await?;
    let mut dlq_args = FieldTable::default();
    dlq_args.insert("x-queue-type".into(), long_string(spec.queue_type.as_str()));
    declare_queue(channel, &dlq, durable, dlq_args, spec).await?;
    channel
        .queue_bind(
            dlq.as_str().into(),
            DEAD_LETTER_EXCHANGE.into(),
            dlq.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    for method in methods {
        validate_method_name(method)?;
        channel
            .queue_bind(
                queue.as_str().into(),
                JOB_EXCHANGE.into(),
                method.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    options: QueueDeclareOptions,
    args: FieldTable,
    spec: &WorkerQueueSpec,
) -> Result<()> {
    match channel.queue_declare(name.into(), options, args).await {
        Ok(_) => Ok(()),
        Err(error) => {
            let settings = format!(
                "the {} settings this queue was created with",
                spec.queue_type
            );
            Err(explain_mismatch(name, &settings, error))
        }
    }
}

/// Turn the broker's PRECONDITION_FAILED text into an error naming the argument, the existing
/// value and the wanted one. Other errors pass through.
fn explain_mismatch(name: &str, fallback_hint: &str, error: lapin::Error) -> Error {
    let text = error.to_string();
    match parse_inequivalent_arg(&text) {
        Some((argument, wanted, existing)) => {
            let hint = match argument.as_str() {
                "x-queue-type" => format!("INTERCOMM_QUEUE_TYPE={existing}"),
                "x-delivery-limit" => format!("INTERCOMM_DELIVERY_LIMIT={existing}"),
                _ => fallback_hint.to_owned(),
            };
            Error::TopologyMismatch {
                name: name.to_owned(),
                argument,
                existing,
                wanted,
                hint,
            }
        }
        None => Error::Amqp(error),
    }
}

/// Parse RabbitMQ's "inequivalent arg 'A' for queue (or exchange) 'Q' in vhost 'V': received the value 'W' of
/// type 'T' but current value is 'E' of type 'T'" into (argument, wanted, existing).
pub(crate) fn parse_inequivalent_arg(text: &str) -> Option<(String, String, String)> {
    let rest = &text[text.find("inequivalent arg '")? + "inequivalent arg '".len()..];
    let argument = &rest[..rest.find('\'')?];
    let wanted = quoted_after(rest, "received ").unwrap_or_else(|| "(absent)".to_owned());
    let existing = quoted_after(rest, "current value is ")
        .or_else(|| quoted_after(rest, "current is "))
        .unwrap_or_else(|| "(absent)".to_owned());
    Some((argument.to_owned(), wanted, existing))
}

/// The value after `marker`: `the value 'x'`, `'x'`, or `none`.
fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let rest = rest.strip_prefix("the value ").unwrap_or(rest);
    if let Some(quoted) = rest.strip_prefix('\'') {
        return Some(quoted[..quoted.find('\'')?].to_owned());
    }
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ',')
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        assert_eq!(worker_queue("messages"), "rpc_queue_messages");
        assert_eq!(dead_letter_queue("messages"), "rpc_queue_messages.dlq");
        assert_eq!(callback_queue("gw1"), "rpc_callback_gw1");
        assert_eq!(user_events_key("u1"), "user.u1.events");
    }

    #[test]
    fn name_rules_are_enforced() {
        assert!(validate_worker_name("messages_2").is_ok());
        assert!(validate_worker_name("Messages").is_err());
        assert!(validate_worker_name("").is_err());
        assert!(validate_method_name("get_message").is_ok());
        assert!(validate_method_name("billing.v2.charge").is_ok());
        assert!(validate_method_name("2fa").is_err());
        assert!(validate_method_name("get-message").is_err());
    }

    #[test]
    fn broker_mismatch_text_is_explained() {
        let text = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue \
                    'rpc_queue_x' in vhost '/': received the value 'classic' of type \
                    'longstr' but current value is 'quorum' of type 'longstr'";
        let (argument, wanted, existing) = parse_inequivalent_arg(text).expect("parsed");
        assert_eq!(argument, "x-queue-type");
        assert_eq!(wanted, "classic");
        assert_eq!(existing, "quorum");
    }

    #[test]
    fn broker_mismatch_with_absent_value_is_explained() {
        let text = "PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue \
                    'rpc_queue_x' in vhost '/': received none but current is the value '5' \
                    of type 'long'";
        let (argument, wanted, existing) = parse_inequivalent_arg(text).expect("parsed");
        assert_eq!(argument, "x-delivery-limit");
        assert_eq!(wanted, "none");
        assert_eq!(existing, "5");
    }
}
