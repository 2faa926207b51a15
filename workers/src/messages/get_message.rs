//! `get_message`: one message, for its sender or receiver only.

use intercomm_core::{Context, RpcError};
use serde::Deserialize;

use super::Message;
use crate::Services;
use crate::access::{may_read, not_found};
use crate::fields::Id;

/// Params of `get_message`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetMessage {
    /// The message's id (a UUID).
    pub message_id: Id,
}

/// The message, when the verified subject sent or received it (or there is no subject).
///
/// # Errors
/// -32002 when there is no such message *or* the subject may not read it (the same answer, so
/// that ids cannot be probed); -32603 when storage fails.
pub async fn get_message(
    services: Services,
    context: Context,
    params: GetMessage,
) -> Result<Message, RpcError> {
    let id = params.message_id.as_str();
    match services.store.message(id).await? {
        Some(message) if may_read(&context, &[&message.sender, &message.receiver]) => {
            Ok(message.into())
        }
        _ => Err(not_found("message", "/message_id", id)),
    }
}
