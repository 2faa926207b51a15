//! The `messages` worker: direct messages between users, stored and announced to the receiver.
//!
//! | method | params | result |
//! |---|---|---|
//! | [`send_message`] | `{sender, receiver, body}` | `{message_id, sent_at}` |
//! | [`get_message`] | `{message_id}` | `{message_id, sender, receiver, body, sent_at}` |
//! | [`list_messages`] | `{user_id, limit?, before?}` | `{messages, next_before}` |
//!
//! Sending publishes `{"type": "NEW_MESSAGE", "message_id", "sender", "receiver", "sent_at"}`
//! to the receiver (best effort). Errors besides -32602: -32005 when the verified subject is not
//! the `sender` / `user_id`; -32002 for a message that does not exist or that the subject
//! neither sent nor received (the two are indistinguishable); -32603 when storage fails.

mod get_message;
mod list_messages;
mod send_message;

use intercomm_core::Worker;
use serde::{Deserialize, Serialize};

use crate::Services;
use crate::fields::rfc3339;
use crate::store::StoredMessage;

pub use get_message::{GetMessage, get_message};
pub use list_messages::{ListMessages, MessagePage, list_messages};
pub use send_message::{MessageSent, SendMessage, send_message};

/// The worker's name (its queue is `rpc_queue_messages`).
pub const NAME: &str = "messages";

/// The longest message body, in characters (Unicode scalar values, as JSON Schema counts).
pub const BODY_MAX_CHARS: usize = 10_000;

/// The `messages` worker with its methods bound to `services`.
#[must_use]
pub fn worker(services: &Services) -> Worker {
    Worker::new(NAME)
        .method("send_message", crate::with_services(services, send_message))
        .method("get_message", crate::with_services(services, get_message))
        .method(
            "list_messages",
            crate::with_services(services, list_messages),
        )
}

/// A message as the methods answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// UUIDv7; ids sort by sending time.
    pub message_id: String,
    /// Who sent it.
    pub sender: String,
    /// Who it is for.
    pub receiver: String,
    /// The text.
    pub body: String,
    /// When it was sent (RFC 3339, UTC, milliseconds).
    pub sent_at: String,
}

impl From<StoredMessage> for Message {
    fn from(stored: StoredMessage) -> Self {
        Self {
            message_id: stored.message_id,
            sender: stored.sender,
            receiver: stored.receiver,
            body: stored.body,
            sent_at: rfc3339(stored.sent_at_ms),
        }
    }
}

/// A message body: 1 to [`BODY_MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Body(String);

impl Body {
    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Body {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        // Bytes bound characters from above, so most bodies skip the count.
        if !value.is_empty()
            && (value.len() <= BODY_MAX_CHARS || value.chars().count() <= BODY_MAX_CHARS)
        {
            Ok(Self(value))
        } else {
            Err(format!("a body is 1 to {BODY_MAX_CHARS} characters"))
        }
    }
}
