//! (a) The baseline: a minimal echo round trip written directly on lapin — publish with confirms
//! and the mandatory flag → consume → reply with confirms → ack — with no JSON handling at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, anyhow, bail};
use futures_util::StreamExt;
use intercomm_core::{Connector, QueueType};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::oneshot;

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

/// A raw lapin echo worker and client on their own connections.
pub struct RawEcho {
    worker_connection: Connection,
    client_connection: Connection,
    publish: Channel,
    routing_key: String,
    job_queue: String,
    reply_queue: String,
    waiters: Waiters,
    next_id: AtomicU64,
}

impl RawEcho {
    /// Declare the queues, start the echo consumer and the reply consumer.
    ///
    /// # Errors
    /// When the broker is unreachable or refuses a declaration.
    pub async fn start(
        url: &str,
        suffix: &str,
        queue_type: QueueType,
        prefetch: u16,
    ) -> anyhow::Result<Self> {
        let worker_connection = Connector::new(url, format!("intercomm-bench-raw-worker-{suffix}"))
            .connect()
            .await
            .context("connecting to the broker")?;
        let client_connection = Connector::new(url, format!("intercomm-bench-raw-client-{suffix}"))
            .connect()
            .await?;
        let job_queue = format!("bench_raw_{suffix}");
        let reply_queue = format!("bench_raw_callback_{suffix}");
        let routing_key = format!("bench.{suffix}.raw");

        let worker_channel = worker_connection.create_channel().await?;
        worker_channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        worker_channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        intercomm_core::topology::declare_exchanges(&worker_channel).await?;
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from(queue_type.as_str())),
        );
        worker_channel
            .queue_declare(
                job_queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            )
            .await?;
        worker_channel
            .queue_bind(
                job_queue.as_str().into(),
                intercomm_core::topology::JOB_EXCHANGE.into(),
                routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut jobs = worker_channel
            .basic_consume(
                job_queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = jobs.next().await {
                let channel = worker_channel.clone();
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

        let publish = client_connection.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let replies = client_connection.create_channel().await?;
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
            worker_connection,
            client_connection,
            publish,
            routing_key,
            job_queue,
            reply_queue,
            waiters,
            next_id: AtomicU64::new(0),
        })
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
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_correlation_id(id.as_str().into())
            .with_message_id(id.as_str().into())
            .with_reply_to(self.reply_queue.as_str().into());
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
                properties,
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

    /// Delete the queues and close both connections.
    pub async fn stop(self) {
        if let Ok(channel) = self.client_connection.create_channel().await {
            for queue in [&self.job_queue, &self.reply_queue] {
                let _ = channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
        }
        let _ = self.client_connection.close(200, "bench done".into()).await;
        let _ = self.worker_connection.close(200, "bench done".into()).await;
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
