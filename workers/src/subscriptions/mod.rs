//! The `subscriptions` worker: users follow topics, and an event published to a topic goes to
//! every follower.
//!
//! | method | params | result |
//! |---|---|---|
//! | [`subscribe_user`] | `{user_id, topic}` | `{user_id, topic, subscribed: true}` |
//! | [`unsubscribe_user`] | `{user_id, topic}` | `{user_id, topic, subscribed: false}` |
//! | [`list_subscriptions`] | `{user_id}` | `{topics}` (sorted) |
//! | [`publish_event`] | `{topic, payload}` | `{delivered}` |
//!
//! Subscribing and unsubscribing are idempotent. `publish_event` sends
//! `{"type": "TOPIC_EVENT", "topic", "payload"}` to each subscriber (best effort). Topics match
//! `[a-z0-9][a-z0-9_.-]{0,127}`. Errors besides -32602: -32005 when the verified subject is not
//! `user_id`; -32603 when storage fails.

mod list_subscriptions;
mod publish_event;
mod subscribe_user;
mod unsubscribe_user;

use intercomm_core::Worker;
use serde::{Deserialize, Serialize};

use crate::Services;
use crate::fields::{Topic, UserId};

pub use list_subscriptions::{ListSubscriptions, Topics, list_subscriptions};
pub use publish_event::{Delivered, FANOUT_CONCURRENCY, FANOUT_PAGE, PublishEvent, publish_event};
pub use subscribe_user::subscribe_user;
pub use unsubscribe_user::unsubscribe_user;

/// The worker's name (its queue is `rpc_queue_subscriptions`).
pub const NAME: &str = "subscriptions";

/// The `subscriptions` worker with its methods bound to `services`.
#[must_use]
pub fn worker(services: &Services) -> Worker {
    Worker::new(NAME)
        .method(
            "subscribe_user",
            crate::with_services(services, subscribe_user),
        )
        .method(
            "unsubscribe_user",
            crate::with_services(services, unsubscribe_user),
        )
        .method(
            "list_subscriptions",
            crate::with_services(services, list_subscriptions),
        )
        .method(
            "publish_event",
            crate::with_services(services, publish_event),
        )
}

/// Params of `subscribe_user` and `unsubscribe_user`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Who (un)subscribes; must be the verified subject when there is one.
    pub user_id: UserId,
    /// The topic.
    pub topic: Topic,
}

/// Result of `subscribe_user` and `unsubscribe_user`: the subscription's state afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionState {
    /// The user.
    pub user_id: String,
    /// The topic.
    pub topic: String,
    /// Whether the user now follows the topic.
    pub subscribed: bool,
}
