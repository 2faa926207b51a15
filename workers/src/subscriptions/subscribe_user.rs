//! `subscribe_user`: make a user follow a topic (idempotent).

use intercomm_core::{Context, RpcError};

use super::{Subscription, SubscriptionState};
use crate::Services;
use crate::access::ensure_acting_for;
use crate::fields::now_ms;

/// Subscribe `user_id` to `topic`; subscribing again changes nothing.
///
/// # Errors
/// -32005 when the verified subject is not `user_id`; -32603 when storage fails.
pub async fn subscribe_user(
    services: Services,
    context: Context,
    params: Subscription,
) -> Result<SubscriptionState, RpcError> {
    ensure_acting_for(&context, params.user_id.as_str(), "/user_id")?;
    services
        .store
        .subscribe(params.user_id.as_str(), params.topic.as_str(), now_ms())
        .await?;
    Ok(SubscriptionState {
        user_id: params.user_id.into_string(),
        topic: params.topic.into_string(),
        subscribed: true,
    })
}
