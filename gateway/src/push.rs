//! User events for connected users: one consumer per gateway on `rpc_events_<instance>`, bound
//! to `inter_comm.events` with `user.*.events`, fanned out in-process to the subject's SSE and
//! WebSocket streams.
//!
//! Push is best effort: a user who is not connected misses the push, never the data (messages
//! and buffers are stored and can be fetched). The queue is client-named (so it can be
//! redeclared after a reconnect) and expires a minute after the gateway is gone.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use intercomm_core::connection::{Backoff, Connector};
use intercomm_core::events::user_of_routing_key;
use intercomm_core::topology::{EVENTS_EXCHANGE, declare_exchanges};
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Events buffered for slow readers before they skip some.
const EVENT_BUFFER: usize = 4096;
/// How long the events queue outlives a gateway that stopped consuming.
const QUEUE_EXPIRES: Duration = Duration::from_secs(60);

/// One user event as it arrived.
#[derive(Clone, Debug)]
pub struct UserEvent {
    /// Whose event it is.
    pub user: String,
    /// The event JSON.
    pub event: Arc<serde_json::Value>,
}

/// The in-process fan-out of user events. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PushHub {
    events: broadcast::Sender<UserEvent>,
}

impl Default for PushHub {
    fn default() -> Self {
        Self::new()
    }
}

impl PushHub {
    /// A hub with nobody listening yet.
    #[must_use]
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Self { events }
    }

    /// Listen to every user's events (filter by subject).
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<UserEvent> {
        self.events.subscribe()
    }

    /// Hand an event to whoever listens.
    pub fn push(&self, event: UserEvent) {
        let _ = self.events.send(event);
    }
}

/// Consume user events into `hub` until `stop`, reconnecting with backoff.
pub async fn consume_user_events(
    connector: Connector,
    instance: String,
    hub: PushHub,
    stop: CancellationToken,
) {
    let queue = format!("rpc_events_{instance}");
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let Some(connection) = connector.connect_until(stop.cancelled()).await else {
            return;
        };
        match consume(&connection, &queue, &hub, &stop).await {
            Ok(true) => {
                let _ = connection.close(200, "gateway stopped".into()).await;
                return;
            }
            Ok(false) => {
                backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
                tracing::warn!(%queue, "user events connection lost; reconnecting");
            }
            Err(error) => tracing::warn!(%queue, %error, "user events consumer failed; retrying"),
        }
        let _ = connection.close(200, "reconnecting".into()).await;
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// True when stopped, false when the connection was lost.
async fn consume(
    connection: &lapin::Connection,
    queue: &str,
    hub: &PushHub,
    stop: &CancellationToken,
) -> Result<bool, intercomm_core::Error> {
    let channel = connection.create_channel().await?;
    declare_exchanges(&channel).await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-expires".into(),
        AMQPValue::LongLongInt(i64::try_from(QUEUE_EXPIRES.as_millis()).unwrap_or(60_000)),
    );
    channel
        .queue_declare(queue.into(), QueueDeclareOptions::default(), arguments)
        .await?;
    channel
        .queue_bind(
            queue.into(),
            EVENTS_EXCHANGE.into(),
            "user.*.events".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut deliveries = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let _ = channel
                    .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
                    .await;
                return Ok(true);
            }
            delivery = deliveries.next() => {
                let Some(Ok(delivery)) = delivery else { return Ok(false) };
                let Some(user) = user_of_routing_key(delivery.routing_key.as_str()) else { continue };
                match serde_json::from_slice::<serde_json::Value>(&delivery.data) {
                    Ok(event) => hub.push(UserEvent { user: user.to_owned(), event: Arc::new(event) }),
                    Err(error) => tracing::warn!(%user, %error, "user event is not JSON; dropped"),
                }
            }
        }
    }
}
