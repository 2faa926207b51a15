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

/// The running consumer of user events.
#[derive(Debug)]
pub struct UserEventsConsumer {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl UserEventsConsumer {
    /// Declare and bind the events queue and start consuming into `hub`; returns once the queue
    /// is bound, so no event published after this is missed. Reconnects with backoff afterwards.
    ///
    /// # Errors
    /// When the broker cannot be reached or refuses the queue.
    pub async fn start(
        connector: Connector,
        instance: &str,
        hub: PushHub,
    ) -> Result<Self, intercomm_core::Error> {
        let queue = format!("rpc_events_{instance}");
        let connection = connector.connect().await?;
        let deliveries = match bind(&connection, &queue).await {
            Ok(deliveries) => deliveries,
            Err(error) => {
                let _ = connection.close(200, "setup failed".into()).await;
                return Err(error);
            }
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(
            connector,
            queue,
            hub,
            stop.clone(),
            Some((connection, deliveries)),
        ));
        Ok(Self { stop, task })
    }

    /// Stop consuming, delete the queue, close the connection.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn supervise(
    connector: Connector,
    queue: String,
    hub: PushHub,
    stop: CancellationToken,
    mut first: Option<(lapin::Connection, Bound)>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let (connection, bound) = match first.take() {
            Some(ready) => ready,
            None => {
                let Some(connection) = connector.connect_until(stop.cancelled()).await else {
                    return;
                };
                match bind(&connection, &queue).await {
                    Ok(bound) => (connection, bound),
                    Err(error) => {
                        tracing::warn!(%queue, %error, "user events queue set-up failed; retrying");
                        let _ = connection.close(200, "retrying".into()).await;
                        tokio::select! {
                            () = tokio::time::sleep(backoff.next_delay()) => {}
                            () = stop.cancelled() => return,
                        }
                        continue;
                    }
                }
            }
        };
        backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        if consume(bound, &queue, &hub, &stop).await {
            let _ = connection.close(200, "gateway stopped".into()).await;
            return;
        }
        tracing::warn!(%queue, "user events connection lost; reconnecting");
        let _ = connection.close(200, "reconnecting".into()).await;
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// A bound queue's channel and consumer.
struct Bound {
    channel: lapin::Channel,
    deliveries: lapin::Consumer,
}

async fn bind(connection: &lapin::Connection, queue: &str) -> Result<Bound, intercomm_core::Error> {
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
    let deliveries = channel
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
    Ok(Bound {
        channel,
        deliveries,
    })
}

/// True when stopped, false when the connection was lost.
async fn consume(bound: Bound, queue: &str, hub: &PushHub, stop: &CancellationToken) -> bool {
    let Bound {
        channel,
        mut deliveries,
    } = bound;
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let _ = channel
                    .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
                    .await;
                // Close the channel ourselves before the connection goes: dropped, lapin would
                // close it in the background, race the connection's close, and log an error.
                drop(deliveries);
                let _ = channel.close(200, "gateway stopped".into()).await;
                return true;
            }
            delivery = deliveries.next() => {
                let Some(Ok(delivery)) = delivery else { return false };
                let Some(user) = user_of_routing_key(delivery.routing_key.as_str()) else { continue };
                match serde_json::from_slice::<serde_json::Value>(&delivery.data) {
                    Ok(event) => hub.push(UserEvent { user: user.to_owned(), event: Arc::new(event) }),
                    Err(error) => tracing::warn!(%user, %error, "user event is not JSON; dropped"),
                }
            }
        }
    }
}
