//! (a) The baseline: a minimal echo round trip written directly on lapin — publish with confirms
//! and the mandatory flag → consume → reply with confirms → ack — with no JSON handling at all;
//! the worker half runs in its own process, as intercomm's does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow, bail};
use futures_util::StreamExt;
use intercomm_core::envelope::JobEnvelope;
use intercomm_core::telemetry::TraceContext;
use intercomm_core::{Connector, QueueType};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::oneshot;

/// The deadline the contract envelope carries, as `bench rpc` gives `RpcClient` calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

/// The job queue of the raw echo with this suffix.
#[must_use]
pub fn job_queue(suffix: &str) -> String {
    format!("bench_raw_{suffix}")
}

fn routing_key(suffix: &str) -> String {
    format!("bench.{suffix}.raw")
}

/// The raw echo worker (run in its own process by `intercomm bench serve-raw`): declare the job
/// queue, echo every job back to its `reply_to` with confirms, ack after the confirm; stop when
/// the bench says so. Each delivery is acknowledged on its own: the minimal way, which
/// intercomm's worker improves on by coalescing runs of acks.
///
/// # Errors
/// When the broker is unreachable or refuses a declaration.
pub async fn serve_worker(
    url: &str,
    suffix: &str,
    queue_type: QueueType,
    prefetch: u16,
) -> anyhow::Result<()> {
    let connection = Connector::new(url, format!("intercomm-bench-raw-worker-{suffix}"))
        .connect()
        .await
        .context("connecting to the broker")?;
    let job_queue = job_queue(suffix);
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    intercomm_core::topology::declare_exchanges(&channel).await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from(queue_type.as_str())),
    );
    channel
        .queue_declare(
            job_queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    channel
        .queue_bind(
            job_queue.as_str().into(),
            intercomm_core::topology::JOB_EXCHANGE.into(),
            routing_key(suffix).as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut jobs = channel
        .basic_consume(
            job_queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let echo = tokio::spawn(async move {
        while let Some(Ok(delivery)) = jobs.next().await {
            let channel = channel.clone();
            tokio::spawn(async move {
                let reply_to = delivery.properties.reply_to().clone().unwrap_or_default();
                let correlation_id = delivery
                    .properties
                    .correlation_id()
                    .clone()
                    .unwrap_or_default();
                let properties = BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2)
                    .with_correlation_id(correlation_id);
                let published = async {
                    channel
                        .basic_publish(
                            "".into(),
                            reply_to,
                            BasicPublishOptions::default(),
                            &delivery.data,
                            properties,
                        )
                        .await?
                        .await
                };
                if published.await.is_ok() {
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
            });
        }
    });
    super::roles::announce_ready_and_wait_for_stop().await;
    echo.abort();
    let _ = connection.close(200, "bench done".into()).await;
    Ok(())
}

/// What the raw client puts around each job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// The least a round trip needs: content type, persistence, correlation id, message id,
    /// reply_to.
    Minimal,
    /// Exactly what `RpcClient` sends (CONTRACT §2): also `timestamp`, `expiration`, and the
    /// `traceparent` and `x-intercomm-deadline` headers.
    Contract,
}

/// The raw echo's client: its own connection, a publish channel with confirms and a reply
/// consumer.
pub struct RawClient {
    connection: Connection,
    publish: Channel,
    routing_key: String,
    reply_queue: String,
    envelope: Envelope,
    waiters: Waiters,
    next_id: AtomicU64,
}

impl RawClient {
    /// Declare the reply queue and start consuming it.
    ///
    /// # Errors
    /// When the broker is unreachable or refuses a declaration.
    pub async fn start(url: &str, suffix: &str, envelope: Envelope) -> anyhow::Result<Self> {
        let name = match envelope {
            Envelope::Minimal => format!("raw_client_{suffix}"),
            Envelope::Contract => format!("raw_contract_client_{suffix}"),
        };
        let connection = Connector::new(url, format!("intercomm-bench-{name}"))
            .connect()
            .await
            .context("connecting to the broker")?;
        let reply_queue = format!("bench_{name}_callback");
        let publish = connection.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let replies = connection.create_channel().await?;
        replies
            .queue_declare(
                reply_queue.as_str().into(),
                QueueDeclareOptions {
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let mut reply_consumer = replies
            .basic_consume(
                reply_queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let waiters: Waiters = Arc::default();
        let reply_waiters = Arc::clone(&waiters);
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = reply_consumer.next().await {
                let Some(id) = delivery.properties.correlation_id() else {
                    continue;
                };
                let waiter = reply_waiters
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(id.as_str());
                if let Some(waiter) = waiter {
                    let _ = waiter.send(());
                }
            }
        });
        Ok(Self {
            connection,
            publish,
            routing_key: routing_key(suffix),
            reply_queue,
            envelope,
            waiters,
            next_id: AtomicU64::new(0),
        })
    }

    fn properties(&self, id: &str) -> BasicProperties {
        match self.envelope {
            Envelope::Minimal => BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_correlation_id(id.into())
                .with_message_id(id.into())
                .with_reply_to(self.reply_queue.as_str().into()),
            Envelope::Contract => JobEnvelope {
                correlation_id: Some(id.to_owned()),
                reply_to: Some(self.reply_queue.clone()),
                deadline: Some(SystemTime::now() + CALL_TIMEOUT),
                traceparent: Some(TraceContext::new_root().to_string()),
                ..JobEnvelope::default()
            }
            .to_properties(),
        }
    }

    /// One round trip of `body`.
    ///
    /// # Errors
    /// When the publish is refused or returned, or the reply never comes.
    pub async fn call(&self, body: &[u8]) -> anyhow::Result<()> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let (sender, receiver) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), sender);
        let confirmation = self
            .publish
            .basic_publish(
                intercomm_core::topology::JOB_EXCHANGE.into(),
                self.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                self.properties(&id),
            )
            .await?
            .await?;
        if !matches!(confirmation, Confirmation::Ack(None)) {
            bail!("raw publish not confirmed: {confirmation:?}");
        }
        receiver
            .await
            .map_err(|_| anyhow!("raw reply consumer stopped"))
    }

    /// Delete the reply queue and close the connection.
    pub async fn stop(self) {
        if let Ok(channel) = self.connection.create_channel().await {
            let _ = channel
                .queue_delete(
                    self.reply_queue.as_str().into(),
                    QueueDeleteOptions::default(),
                )
                .await;
        }
        let _ = self.connection.close(200, "bench done".into()).await;
    }
}

/// Delete `queues` on a short-lived connection.
///
/// # Errors
/// When the broker is unreachable.
pub async fn delete_queues(connector: &Connector, queues: &[&str]) -> anyhow::Result<()> {
    let connection = connector.connect().await?;
    let channel = connection.create_channel().await?;
    for queue in queues {
        channel
            .queue_delete((*queue).into(), QueueDeleteOptions::default())
            .await
            .with_context(|| format!("deleting {queue}"))?;
    }
    let _ = connection.close(200, "cleanup".into()).await;
    Ok(())
}
