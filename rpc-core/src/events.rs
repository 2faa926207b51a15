//! User events: JSON published to `inter_comm.events` with routing key `user.<user_id>.events`,
//! which gateways push to connected users (SSE, WebSocket).
//!
//! Push is best effort (nobody may be connected), but a publish is still confirmed, so a caller
//! knows the broker took it.

use std::sync::Arc;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

use crate::connection::Connector;
use crate::envelope::{CONTENT_TYPE_JSON, PERSISTENT};
use crate::error::{Error, Result};
use crate::topology::{EVENTS_EXCHANGE, declare_exchanges, user_events_key};

/// Publishes user events on its own connection, reconnecting on the next publish after a loss.
#[derive(Clone)]
pub struct EventPublisher {
    connector: Connector,
    link: Arc<Mutex<Option<(Connection, Channel)>>>,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("connector", &self.connector)
            .finish_non_exhaustive()
    }
}

impl EventPublisher {
    /// Connect and declare the exchanges.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub async fn connect(connector: Connector) -> Result<Self> {
        let publisher = Self {
            connector,
            link: Arc::default(),
        };
        publisher.channel().await?;
        Ok(publisher)
    }

    async fn channel(&self) -> Result<Channel> {
        let mut link = self.link.lock().await;
        if let Some((connection, channel)) = link.as_ref()
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let connection = self.connector.connect().await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare_exchanges(&channel).await?;
        *link = Some((connection, channel.clone()));
        Ok(channel)
    }

    /// Publish `event` for `user_id` and wait for the broker's confirm.
    ///
    /// # Errors
    /// When the broker is unreachable or refuses the event.
    pub async fn publish(&self, user_id: &str, event: &serde_json::Value) -> Result<()> {
        let body = serde_json::to_vec(event)?;
        let channel = self.channel().await?;
        let properties = BasicProperties::default()
            .with_content_type(CONTENT_TYPE_JSON.into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(uuid::Uuid::now_v7().to_string().as_str().into());
        let confirmation = channel
            .basic_publish(
                EVENTS_EXCHANGE.into(),
                user_events_key(user_id).as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await?
            .await?;
        match confirmation {
            Confirmation::Nack(_) => Err(Error::PublishNacked),
            _ => Ok(()),
        }
    }

    /// Close the connection.
    pub async fn close(&self) {
        if let Some((connection, _)) = self.link.lock().await.take() {
            let _ = connection.close(200, "closing".into()).await;
        }
    }
}

/// The user id of an events routing key (`user.<id>.events`), if it is one.
#[must_use]
pub fn user_of_routing_key(routing_key: &str) -> Option<&str> {
    routing_key
        .strip_prefix("user.")?
        .strip_suffix(".events")
        .filter(|user| !user.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_name_their_user() {
        assert_eq!(user_of_routing_key("user.u1.events"), Some("u1"));
        assert_eq!(
            user_of_routing_key(&user_events_key("alice")),
            Some("alice")
        );
        assert_eq!(user_of_routing_key("user..events"), None);
        assert_eq!(user_of_routing_key("jobs.x"), None);
    }
}
