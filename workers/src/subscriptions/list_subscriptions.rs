//! `list_subscriptions`: the topics a user follows.

use intercomm_core::{Context, RpcError};
use serde::{Deserialize, Serialize};

use crate::Services;
use crate::access::ensure_acting_for;
use crate::fields::UserId;

/// Params of `list_subscriptions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSubscriptions {
    /// Whose subscriptions; must be the verified subject when there is one.
    pub user_id: UserId,
}

/// Result of `list_subscriptions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topics {
    /// The topics, sorted by byte value.
    pub topics: Vec<String>,
}

/// The topics `user_id` follows.
///
/// # Errors
/// -32005 when the verified subject is not `user_id`; -32603 when storage fails.
pub async fn list_subscriptions(
    services: Services,
    context: Context,
    params: ListSubscriptions,
) -> Result<Topics, RpcError> {
    ensure_acting_for(&context, params.user_id.as_str(), "/user_id")?;
    let topics = services.store.topics_of(params.user_id.as_str()).await?;
    Ok(Topics { topics })
}
