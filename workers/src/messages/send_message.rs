//! `send_message`: store a message from `sender` to `receiver` and tell the receiver.

use intercomm_core::{Context, RpcError};
use serde::{Deserialize, Serialize};

use super::Body;
use crate::Services;
use crate::access::ensure_acting_for;
use crate::events::publish_best_effort;
use crate::fields::{UserId, now_ms, rfc3339};
use crate::store::StoredMessage;

/// Params of `send_message`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// Who sends; must be the verified subject when there is one.
    pub sender: UserId,
    /// Who the message is for (may be the sender).
    pub receiver: UserId,
    /// The text, 1 to 10 000 characters.
    pub body: Body,
}

/// Result of `send_message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSent {
    /// The new message's id (UUIDv7).
    pub message_id: String,
    /// When it was stored (RFC 3339, UTC).
    pub sent_at: String,
}

/// Store the message, then publish `NEW_MESSAGE` to the receiver (best effort: the message is
/// stored either way and can be fetched with `get_message`).
///
/// # Errors
/// -32005 when the verified subject is not `sender`; -32603 when storage fails.
pub async fn send_message(
    services: Services,
    context: Context,
    params: SendMessage,
) -> Result<MessageSent, RpcError> {
    ensure_acting_for(&context, params.sender.as_str(), "/sender")?;
    let message = StoredMessage {
        message_id: uuid::Uuid::now_v7().hyphenated().to_string(),
        sender: params.sender.into_string(),
        receiver: params.receiver.into_string(),
        body: params.body.0,
        sent_at_ms: now_ms(),
    };
    services.store.insert_message(&message).await?;
    let sent_at = rfc3339(message.sent_at_ms);
    let event = serde_json::json!({
        "type": "NEW_MESSAGE",
        "message_id": message.message_id,
        "sender": message.sender,
        "receiver": message.receiver,
        "sent_at": sent_at,
    });
    publish_best_effort(&*services.events, &message.receiver, event).await;
    Ok(MessageSent {
        message_id: message.message_id,
        sent_at,
    })
}
