//! The `users` worker: per-user binary buffers and typed user messages.
//!
//! | method | params | result |
//! |---|---|---|
//! | [`add_buffer_msg`] | `{user_id, buffer_msg}` (base64) | `{buffer_uuid}` |
//! | [`get_buffer_msg`] | `{buffer_uuid}` | `{buffer_uuid, user_id, buffer_msg, created_at}` |
//! | [`user_message`] | `{user_id, type, data}` | `{id, recorded_at}` |
//!
//! `buffer_msg` is binary content in standard base64 with padding (RFC 4648 §4), at most
//! [`BUFFER_MAX_BYTES`] decoded; storing one publishes `{"type": "BUFFER_READY",
//! "buffer_uuid", "user_id"}` to its user (best effort). `type` is one of `FRAME_RENDERED`,
//! `RENDER_COMPLETED`, `TEST`; `data` is any JSON of at most [`DATA_MAX_BYTES`] as text.
//! Errors besides -32602: -32005 when the verified subject is not `user_id`; -32002 for a
//! buffer that does not exist or belongs to someone else (indistinguishable); -32603 when
//! storage fails.

mod add_buffer_msg;
mod get_buffer_msg;
mod user_message;

use intercomm_core::Worker;

use crate::Services;

pub use add_buffer_msg::{AddBufferMsg, BufferAdded, add_buffer_msg};
pub use get_buffer_msg::{Buffer, GetBufferMsg, get_buffer_msg};
pub use user_message::{Recorded, UserMessage, UserMessageType, user_message};

/// The worker's name (its queue is `rpc_queue_users`).
pub const NAME: &str = "users";

/// The largest buffer, decoded: 1 MiB.
pub const BUFFER_MAX_BYTES: usize = 1024 * 1024;

/// The longest `buffer_msg` text: the base64 length of [`BUFFER_MAX_BYTES`] bytes.
pub const BUFFER_MAX_BASE64_CHARS: usize = BUFFER_MAX_BYTES.div_ceil(3) * 4;

/// The largest `data` of `user_message`, as JSON text: 64 KiB.
pub const DATA_MAX_BYTES: usize = 64 * 1024;

/// The `users` worker with its methods bound to `services`.
#[must_use]
pub fn worker(services: &Services) -> Worker {
    Worker::new(NAME)
        .method(
            "add_buffer_msg",
            crate::with_services(services, add_buffer_msg),
        )
        .method(
            "get_buffer_msg",
            crate::with_services(services, get_buffer_msg),
        )
        .method("user_message", crate::with_services(services, user_message))
}
