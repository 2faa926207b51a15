//! `add_buffer_msg`: store a user's binary buffer (sent as base64) and tell the user it is ready.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use intercomm_core::{Context, RpcError};
use serde::{Deserialize, Serialize};

use super::{BUFFER_MAX_BASE64_CHARS, BUFFER_MAX_BYTES};
use crate::Services;
use crate::access::ensure_acting_for;
use crate::events::publish_best_effort;
use crate::fields::{UserId, now_ms};
use crate::store::StoredBuffer;

/// Params of `add_buffer_msg`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBufferMsg {
    /// Whose buffer; must be the verified subject when there is one.
    pub user_id: UserId,
    /// The content in standard base64 with padding, at most 1 MiB decoded.
    pub buffer_msg: String,
}

/// Result of `add_buffer_msg`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferAdded {
    /// The new buffer's id (UUIDv4).
    pub buffer_uuid: String,
}

/// Check and store the buffer, then publish `BUFFER_READY` to its user (best effort).
///
/// # Errors
/// -32602 at `/buffer_msg` when it is not standard padded base64 or decodes to more than
/// 1 MiB; -32005 when the verified subject is not `user_id`; -32603 when storage fails.
pub async fn add_buffer_msg(
    services: Services,
    context: Context,
    params: AddBufferMsg,
) -> Result<BufferAdded, RpcError> {
    ensure_acting_for(&context, params.user_id.as_str(), "/user_id")?;
    let too_large = || {
        RpcError::invalid_params(
            "/buffer_msg",
            format!("the content is larger than {BUFFER_MAX_BYTES} bytes (1 MiB) decoded"),
        )
    };
    // Refuse oversized text before spending memory on decoding it.
    if params.buffer_msg.len() > BUFFER_MAX_BASE64_CHARS {
        return Err(too_large());
    }
    let content = STANDARD.decode(&params.buffer_msg).map_err(|error| {
        RpcError::invalid_params(
            "/buffer_msg",
            format!("not standard base64 with padding (RFC 4648 §4): {error}"),
        )
    })?;
    if content.len() > BUFFER_MAX_BYTES {
        return Err(too_large());
    }
    let user_id = params.user_id.into_string();
    let buffer = StoredBuffer {
        buffer_uuid: uuid::Uuid::new_v4().hyphenated().to_string(),
        user_id,
        // STANDARD decodes canonical encodings only, so the text is stored as it came.
        content_base64: params.buffer_msg,
        size_bytes: i64::try_from(content.len()).unwrap_or(i64::MAX),
        created_at_ms: now_ms(),
    };
    drop(content);
    services.store.insert_buffer(&buffer).await?;
    let event = serde_json::json!({
        "type": "BUFFER_READY",
        "buffer_uuid": buffer.buffer_uuid,
        "user_id": buffer.user_id,
    });
    publish_best_effort(&*services.events, &buffer.user_id, event).await;
    Ok(BufferAdded {
        buffer_uuid: buffer.buffer_uuid,
    })
}
