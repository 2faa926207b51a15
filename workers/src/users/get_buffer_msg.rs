//! `get_buffer_msg`: a stored buffer, for its user only.

use intercomm_core::{Context, RpcError};
use serde::{Deserialize, Serialize};

use crate::Services;
use crate::access::{may_read, not_found};
use crate::fields::{Id, rfc3339};

/// Params of `get_buffer_msg`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetBufferMsg {
    /// The buffer's id (a UUID).
    pub buffer_uuid: Id,
}

/// Result of `get_buffer_msg`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buffer {
    /// The buffer's id.
    pub buffer_uuid: String,
    /// Whose it is.
    pub user_id: String,
    /// The content in standard base64 with padding.
    pub buffer_msg: String,
    /// When it was stored (RFC 3339, UTC).
    pub created_at: String,
}

/// The buffer, when the verified subject owns it (or there is no subject).
///
/// # Errors
/// -32002 when there is no such buffer *or* it belongs to someone else (the same answer);
/// -32603 when storage fails.
pub async fn get_buffer_msg(
    services: Services,
    context: Context,
    params: GetBufferMsg,
) -> Result<Buffer, RpcError> {
    let id = params.buffer_uuid.as_str();
    match services.store.buffer(id).await? {
        Some(buffer) if may_read(&context, &[&buffer.user_id]) => Ok(Buffer {
            buffer_uuid: buffer.buffer_uuid,
            user_id: buffer.user_id,
            buffer_msg: buffer.content_base64,
            created_at: rfc3339(buffer.created_at_ms),
        }),
        _ => Err(not_found("buffer", "/buffer_uuid", id)),
    }
}
