//! `publish_event`: send an event to every subscriber of a topic.

use futures_util::StreamExt;
use intercomm_core::{Context, RpcError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Services;
use crate::events::publish_best_effort;
use crate::fields::Topic;

/// Subscribers read from the database at a time (bounds the memory of a large fan-out).
pub const FANOUT_PAGE: u32 = 500;

/// Events in flight at once during a fan-out.
pub const FANOUT_CONCURRENCY: usize = 16;

/// Params of `publish_event`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    /// The topic whose subscribers get the event.
    pub topic: Topic,
    /// Any JSON (required; `null` is a value). `deserialize_with` makes serde report a missing
    /// field instead of reading it as `null`.
    #[serde(deserialize_with = "Value::deserialize")]
    pub payload: Value,
}

/// Result of `publish_event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// How many subscribers the event was published to.
    pub delivered: u64,
}

/// Publish `{"type": "TOPIC_EVENT", "topic", "payload"}` to each subscriber of `topic`, a page
/// of [`FANOUT_PAGE`] subscribers at a time with [`FANOUT_CONCURRENCY`] publishes in flight.
/// Each publish is best effort (a failure is logged and still counted).
///
/// # Errors
/// -32603 when storage fails (subscribers of earlier pages may have had the event).
pub async fn publish_event(
    services: Services,
    _context: Context,
    params: PublishEvent,
) -> Result<Delivered, RpcError> {
    let event = serde_json::json!({
        "type": "TOPIC_EVENT",
        "topic": params.topic.as_str(),
        "payload": params.payload,
    });
    let mut delivered: u64 = 0;
    let mut after: Option<String> = None;
    loop {
        let page = services
            .store
            .subscribers_page(params.topic.as_str(), after.as_deref(), FANOUT_PAGE)
            .await?;
        futures_util::stream::iter(&page)
            .for_each_concurrent(FANOUT_CONCURRENCY, |user| {
                publish_best_effort(&*services.events, user, event.clone())
            })
            .await;
        delivered += page.len() as u64;
        if page.len() < FANOUT_PAGE as usize {
            break;
        }
        after = page.last().cloned();
    }
    Ok(Delivered { delivered })
}
