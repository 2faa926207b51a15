//! `list_messages`: a user's sent and received messages, newest first, a page at a time.

use intercomm_core::{Context, RpcError};
use serde::{Deserialize, Serialize};

use super::Message;
use crate::Services;
use crate::access::ensure_acting_for;
use crate::fields::{Id, Limit, UserId};

/// Params of `list_messages`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListMessages {
    /// Whose messages; must be the verified subject when there is one.
    pub user_id: UserId,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Limit,
    /// Only messages older than this one (the previous page's `next_before`); exclusive.
    #[serde(default)]
    pub before: Option<Id>,
}

/// Result of `list_messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    /// Up to `limit` messages, newest first.
    pub messages: Vec<Message>,
    /// The id of the last message, to pass as `before` for the next page; `null` when there are
    /// no more.
    pub next_before: Option<String>,
}

/// One page of the messages `user_id` sent or received.
///
/// # Errors
/// -32005 when the verified subject is not `user_id`; -32603 when storage fails.
pub async fn list_messages(
    services: Services,
    context: Context,
    params: ListMessages,
) -> Result<MessagePage, RpcError> {
    ensure_acting_for(&context, params.user_id.as_str(), "/user_id")?;
    let limit = params.limit.get();
    // One more than asked says whether another page follows.
    let mut messages = services
        .store
        .messages_of(
            params.user_id.as_str(),
            params.before.as_ref().map(Id::as_str),
            limit + 1,
        )
        .await?;
    let more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    let next_before = if more {
        messages.last().map(|message| message.message_id.clone())
    } else {
        None
    };
    Ok(MessagePage {
        messages: messages.into_iter().map(Message::from).collect(),
        next_before,
    })
}
