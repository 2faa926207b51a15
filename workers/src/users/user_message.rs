//! `user_message`: record a typed message from a user's client (render progress, tests).

use intercomm_core::{Context, RpcError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::DATA_MAX_BYTES;
use crate::Services;
use crate::access::ensure_acting_for;
use crate::fields::{UserId, now_ms, rfc3339};
use crate::store::StoredUserMessage;

/// The kinds of user message. An unknown kind fails decoding with -32602 at `/type`, whose
/// `data.message` reads "unknown variant `X`, expected one of `FRAME_RENDERED`,
/// `RENDER_COMPLETED`, `TEST`".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserMessageType {
    /// `FRAME_RENDERED`: a frame is done.
    FrameRendered,
    /// `RENDER_COMPLETED`: the whole render is done.
    RenderCompleted,
    /// `TEST`: a test message.
    Test,
}

impl UserMessageType {
    /// The wire name, e.g. `FRAME_RENDERED`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FrameRendered => "FRAME_RENDERED",
            Self::RenderCompleted => "RENDER_COMPLETED",
            Self::Test => "TEST",
        }
    }
}

/// Params of `user_message`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserMessage {
    /// Whose message; must be the verified subject when there is one.
    pub user_id: UserId,
    /// What kind of message.
    #[serde(rename = "type")]
    pub kind: UserMessageType,
    /// Any JSON (required; `null` is a value), kept as it came.
    pub data: Box<RawValue>,
}

/// Result of `user_message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The record's id (UUIDv7).
    pub id: String,
    /// When it was recorded (RFC 3339, UTC).
    pub recorded_at: String,
}

/// Record the message.
///
/// # Errors
/// -32602 at `/data` when `data` is over 64 KiB as JSON text; -32005 when the verified subject
/// is not `user_id`; -32603 when storage fails.
pub async fn user_message(
    services: Services,
    context: Context,
    params: UserMessage,
) -> Result<Recorded, RpcError> {
    ensure_acting_for(&context, params.user_id.as_str(), "/user_id")?;
    let data = params.data.get();
    if data.len() > DATA_MAX_BYTES {
        return Err(RpcError::invalid_params(
            "/data",
            format!("data is larger than {DATA_MAX_BYTES} bytes as JSON text"),
        ));
    }
    let record = StoredUserMessage {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        user_id: params.user_id.into_string(),
        message_type: params.kind.as_str().to_owned(),
        data_json: data.to_owned(),
        recorded_at_ms: now_ms(),
    };
    services.store.insert_user_message(&record).await?;
    Ok(Recorded {
        id: record.id,
        recorded_at: rfc3339(record.recorded_at_ms),
    })
}
