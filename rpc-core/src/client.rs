//! `RpcClient`: publishes jobs with confirms and the mandatory flag, and matches replies arriving
//! on one long-lived callback queue to their callers.
//!
//! One supervisor task owns the connection: it (re)connects with backoff, (re)declares the
//! client-named callback queue, consumes replies, and expires submitted jobs at their deadline.
//! Replies are acknowledged when their [`crate::Receipt`] is dropped (by the caller of `call`,
//! or the reply handler once it has recorded the reply), coalesced, so none is lost with a
//! connection.
//! Callers share one confirm-mode channel; concurrent publishes pipeline on it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::acks::{AckCoalescer, Receipt};
use crate::config::DEFAULT_CALL_TIMEOUT;
use crate::connection::{Backoff, Connector};
use crate::envelope::JobEnvelope;
use crate::error::{Error, Result};
use crate::pending::{Claim, Pending, Reply};
use crate::protocol::{ResponseBody, encode_request, parse_response};
use crate::telemetry::TraceContext;
use crate::topology::{JOB_EXCHANGE, callback_queue};

/// How long an unused, non-durable callback queue outlives its client (`x-expires`): long enough
/// to survive a reconnect, short enough that a crashed client's queue goes away.
pub const DEFAULT_CALLBACK_EXPIRES: Duration = Duration::from_secs(60);
/// How long an unused durable callback queue is kept (a gateway that is down for longer loses
/// the replies that arrived meanwhile).
pub const DEFAULT_DURABLE_CALLBACK_EXPIRES: Duration = Duration::from_secs(24 * 3600);
/// How often submitted jobs are checked for their deadline.
const EXPIRY_TICK: Duration = Duration::from_millis(50);
/// Replies delivered to the client and not yet acknowledged (`basic.qos`): enough that acks
/// coalesced per batch never stall the stream, few enough that a backlog (a gateway starting
/// after an outage) arrives in bounded slices.
const REPLY_PREFETCH: u16 = 512;
/// Recorded replies are acknowledged together, each batch held back this long, so that a
/// stream of replies costs one ack frame (and one wake-up of lapin's I/O thread) per batch: the
/// gateway spent 5–9 ms of CPU per 1 000 jobs less than with an ack per turn
/// (docs/BENCHMARKS.md). A held ack only keeps a slot of the prefetch window, never a caller;
/// 512 slots in 5 ms allow 100 000 replies a second.
const REPLY_ACK_LINGER: Duration = Duration::from_millis(5);
/// How long a stopping client waits for the acknowledgements its replies still owe.
const ACK_FLUSH: Duration = Duration::from_secs(2);

/// What the reply handler of a client is told about jobs it `submit`ted.
#[derive(Debug)]
pub enum ReplyEvent {
    /// The first reply for a submitted job.
    Completed(Reply),
    /// A submitted job's deadline passed with no reply.
    Expired {
        /// Its correlation id (= job id).
        correlation_id: String,
    },
    /// A reply nobody waits for: a duplicate, one after the deadline, or one for a job an
    /// earlier process with the same callback queue submitted.
    Late(Reply),
}

/// Receives [`ReplyEvent`]s on the client's supervisor task: it must not block.
pub type ReplyHandler = Arc<dyn Fn(ReplyEvent) + Send + Sync>;

/// Per-call options.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// The deadline, from now (default: the client's default timeout, 30 s).
    pub timeout: Option<Duration>,
    /// The job id (request id and correlation id); a new UUIDv7 when `None`.
    pub id: Option<String>,
    /// The verified subject, sent as `x-intercomm-user`.
    pub user: Option<String>,
    /// W3C trace context to continue; a new trace when `None`.
    pub traceparent: Option<String>,
}

impl CallOptions {
    /// Options with this timeout.
    #[must_use]
    pub fn timeout(timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..Self::default()
        }
    }
}

/// Counters of a client.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Replies that nobody waited for (duplicates, after the deadline); dropped.
    pub late_replies: AtomicU64,
    /// Calls that reached their deadline without a reply.
    pub timed_out: AtomicU64,
    /// Publishes the broker returned as unroutable.
    pub unroutable: AtomicU64,
    /// Connections established.
    pub connections: AtomicU64,
}

/// Builds an [`RpcClient`].
#[derive(Clone)]
pub struct RpcClientBuilder {
    connector: Connector,
    instance: Option<String>,
    durable: bool,
    expires: Option<Duration>,
    default_timeout: Duration,
    app_id: Option<String>,
    on_reply: Option<ReplyHandler>,
}

impl std::fmt::Debug for RpcClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClientBuilder")
            .field("connector", &self.connector)
            .field("instance", &self.instance)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl RpcClientBuilder {
    /// The callback queue is `rpc_callback_<instance>` (default: a random id). A stable instance
    /// id with [`durable`](Self::durable) lets a restarted process collect replies that arrived
    /// while it was down.
    #[must_use]
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Make the callback queue durable and acknowledge replies only after the reply handler ran.
    #[must_use]
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// How long the unused callback queue outlives the client (`x-expires`).
    #[must_use]
    pub fn queue_expires(mut self, expires: Duration) -> Self {
        self.expires = Some(expires);
        self
    }

    /// The deadline of calls that name none (default 30 s).
    #[must_use]
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// `app_id` on every job.
    #[must_use]
    pub fn app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// Where replies to `submit`ted jobs, their expiries and late replies go.
    #[must_use]
    pub fn on_reply(mut self, handler: impl Fn(ReplyEvent) + Send + Sync + 'static) -> Self {
        self.on_reply = Some(Arc::new(handler));
        self
    }

    /// Connect (one attempt, so a caller learns at once that the broker is away), declare the
    /// callback queue and start consuming replies. Afterwards the client reconnects on its own.
    ///
    /// # Errors
    /// When the broker cannot be reached or refuses the callback queue.
    pub async fn connect(self) -> Result<RpcClient> {
        let instance = self
            .instance
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let expires = self.expires.unwrap_or(if self.durable {
            DEFAULT_DURABLE_CALLBACK_EXPIRES
        } else {
            DEFAULT_CALLBACK_EXPIRES
        });
        let (connected, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            connector: self.connector,
            callback_queue: callback_queue(&instance),
            durable: self.durable,
            expires,
            default_timeout: self.default_timeout,
            app_id: self.app_id,
            on_reply: self.on_reply,
            pending: Pending::default(),
            channel: Mutex::new(None),
            channel_broken: tokio::sync::Notify::new(),
            connected,
            stats: ClientStats::default(),
        });
        let connection = inner.connector.connect().await?;
        let link = inner.open(&connection).await?;
        // Usable as soon as `connect` returns, before the supervisor task first runs.
        inner.set_channel(Some(Arc::new(link.publish.clone())));
        let token = CancellationToken::new();
        let supervisor = tokio::spawn(supervise(
            Arc::clone(&inner),
            token.clone(),
            Some((connection, link)),
        ));
        tokio::spawn(expire_submitted(Arc::clone(&inner), token.clone()));
        Ok(RpcClient {
            inner,
            stop: token.clone(),
            supervisor: Arc::new(Mutex::new(Some(supervisor))),
            _stop_on_drop: Arc::new(token.drop_guard()),
        })
    }
}

/// A JSON-RPC client over RabbitMQ. Cheap to clone; the connection closes when the last clone
/// is dropped (or on [`RpcClient::close`]).
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<Inner>,
    stop: CancellationToken,
    supervisor: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    _stop_on_drop: Arc<DropGuard>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("callback_queue", &self.inner.callback_queue)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

struct Inner {
    connector: Connector,
    callback_queue: String,
    durable: bool,
    expires: Duration,
    default_timeout: Duration,
    app_id: Option<String>,
    on_reply: Option<ReplyHandler>,
    pending: Pending,
    channel: Mutex<Option<Arc<Channel>>>,
    channel_broken: tokio::sync::Notify,
    connected: watch::Sender<bool>,
    stats: ClientStats,
}

impl RpcClient {
    /// Start building a client that connects through `connector`.
    #[must_use]
    pub fn builder(connector: Connector) -> RpcClientBuilder {
        RpcClientBuilder {
            connector,
            instance: None,
            durable: false,
            expires: None,
            default_timeout: DEFAULT_CALL_TIMEOUT,
            app_id: None,
            on_reply: None,
        }
    }

    /// Call `method` with typed params and decode the typed result.
    ///
    /// # Errors
    /// See [`RpcClient::call_raw`]; a result that does not decode is [`Error::MalformedReply`].
    pub async fn call<P: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
        options: &CallOptions,
    ) -> Result<R> {
        let params = serde_json::value::to_raw_value(params)?;
        let result = self.call_raw(method, Some(&params), options).await?;
        serde_json::from_str(result.get()).map_err(|error| Error::MalformedReply(error.to_string()))
    }

    /// Call `method` with raw JSON params and wait for the reply up to the deadline.
    ///
    /// # Errors
    /// [`Error::Unroutable`] when no worker queue is bound for the method, [`Error::Timeout`] when
    /// no reply came in time, [`Error::Remote`] when the worker answered an error,
    /// [`Error::NotConnected`] / [`Error::PublishNacked`] when the broker could not take the job.
    pub async fn call_raw(
        &self,
        method: &str,
        params: Option<&RawValue>,
        options: &CallOptions,
    ) -> Result<Box<RawValue>> {
        let timeout = options.timeout.unwrap_or(self.inner.default_timeout);
        let deadline = Instant::now() + timeout;
        let id = options.id.clone().unwrap_or_else(new_job_id);
        let body = encode_request(Some(&id), method, params)?;
        let properties = self.envelope(&id, options, timeout, true).to_properties();
        let (_guard, receiver) = self.inner.pending.register_call(id);
        let exchange = async {
            self.inner.publish(method, &body, properties).await?;
            receiver.await.map_err(|_| Error::NotConnected)
        };
        let reply = match tokio::time::timeout_at(deadline, exchange).await {
            Ok(reply) => reply?,
            Err(_elapsed) => {
                self.inner.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Timeout(timeout));
            }
        };
        match parse_response(&reply.body) {
            Ok(ResponseBody::Single(response)) => response.outcome.map_err(Error::Remote),
            Ok(ResponseBody::Batch(_)) => Err(Error::MalformedReply(
                "a batch answered a single request".into(),
            )),
            Err(error) => Err(Error::MalformedReply(error.to_string())),
        }
    }

    /// Publish a job and return its id once the broker confirmed it. The reply (or the expiry
    /// at the deadline) goes to the handler given to [`RpcClientBuilder::on_reply`].
    ///
    /// # Errors
    /// [`Error::Unroutable`], [`Error::NotConnected`], [`Error::PublishNacked`].
    pub async fn submit(
        &self,
        method: &str,
        params: Option<&RawValue>,
        options: &CallOptions,
    ) -> Result<String> {
        let id = options.id.clone().unwrap_or_else(new_job_id);
        let body = encode_request(Some(&id), method, params)?;
        self.submit_body(method, &id, &body, options).await?;
        Ok(id)
    }

    /// Publish an already-encoded request body (one request or a batch) whose correlation id is
    /// `id`, tracked like [`RpcClient::submit`].
    ///
    /// # Errors
    /// As [`RpcClient::submit`].
    pub async fn submit_body(
        &self,
        routing_key: &str,
        id: &str,
        body: &[u8],
        options: &CallOptions,
    ) -> Result<()> {
        let timeout = options.timeout.unwrap_or(self.inner.default_timeout);
        let properties = self.envelope(id, options, timeout, true).to_properties();
        // Registered before publishing: a fast reply must find its entry.
        self.inner
            .pending
            .register_submitted(id.to_owned(), Instant::now() + timeout);
        let published = self.inner.publish(routing_key, body, properties).await;
        if published.is_err() {
            self.inner.pending.forget_submitted(id);
        }
        published
    }

    /// Publish a notification (no id, no reply) once the broker confirmed it.
    ///
    /// # Errors
    /// [`Error::Unroutable`], [`Error::NotConnected`], [`Error::PublishNacked`].
    pub async fn notify(
        &self,
        method: &str,
        params: Option<&RawValue>,
        options: &CallOptions,
    ) -> Result<()> {
        let body = encode_request(None, method, params)?;
        let timeout = options.timeout.unwrap_or(self.inner.default_timeout);
        let mut envelope = self.envelope("", options, timeout, false);
        envelope.correlation_id = None;
        self.inner
            .publish(method, &body, envelope.to_properties())
            .await
    }

    fn envelope(
        &self,
        id: &str,
        options: &CallOptions,
        timeout: Duration,
        reply: bool,
    ) -> JobEnvelope {
        let traceparent = options
            .traceparent
            .as_deref()
            .and_then(TraceContext::parse)
            .map_or_else(TraceContext::new_root, |parent| parent.child());
        JobEnvelope {
            correlation_id: Some(id.to_owned()),
            reply_to: reply.then(|| self.inner.callback_queue.clone()),
            user: options.user.clone(),
            deadline: Some(SystemTime::now() + timeout),
            traceparent: Some(traceparent.to_string()),
            app_id: self.inner.app_id.clone(),
        }
    }

    /// Outstanding calls and submitted jobs (each leaves by its reply or its deadline).
    #[must_use]
    pub fn pending_len(&self) -> usize {
        self.inner.pending.len()
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &ClientStats {
        &self.inner.stats
    }

    /// The callback queue's name.
    #[must_use]
    pub fn callback_queue(&self) -> &str {
        &self.inner.callback_queue
    }

    /// True while the client has a live connection and consumes its callback queue.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        *self.inner.connected.borrow()
    }

    /// Watch the connection state (true = connected).
    #[must_use]
    pub fn connection_state(&self) -> watch::Receiver<bool> {
        self.inner.connected.subscribe()
    }

    /// Stop consuming, delete a non-durable callback queue, and close the connection (for every
    /// clone of this client). Waiting calls end with their timeout.
    pub async fn close(self) {
        self.stop.cancel();
        let supervisor = self
            .supervisor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(supervisor) = supervisor {
            let _ = supervisor.await;
        }
    }
}

/// A new job id: UUIDv7, so ids sort by creation time.
#[must_use]
pub fn new_job_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Inner {
    fn current_channel(&self) -> Option<Arc<Channel>> {
        self.channel
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_channel(&self, channel: Option<Arc<Channel>>) {
        let connected = channel.is_some();
        *self
            .channel
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = channel;
        self.connected.send_replace(connected);
    }

    async fn publish(
        &self,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<()> {
        let channel = self.current_channel().ok_or(Error::NotConnected)?;
        let confirmation = channel
            .basic_publish(
                JOB_EXCHANGE.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(|error| self.publish_failed(&channel, error))?
            .await
            .map_err(|error| self.publish_failed(&channel, error))?;
        match confirmation {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => {
                self.stats.unroutable.fetch_add(1, Ordering::Relaxed);
                Err(Error::Unroutable {
                    method: routing_key.to_owned(),
                })
            }
            Confirmation::Nack(_) => Err(Error::PublishNacked),
        }
    }

    /// A publish failed: if the channel is gone while the connection lives on (a channel-level
    /// error), ask the supervisor to start over, so the client does not stay broken.
    fn publish_failed(&self, channel: &Channel, error: lapin::Error) -> Error {
        if !channel.status().connected() {
            self.channel_broken.notify_one();
        }
        Error::Amqp(error)
    }

    /// Open the publish channel and the reply consumer on a fresh connection.
    async fn open(&self, connection: &Connection) -> Result<Link> {
        let publish = connection.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let replies = connection.create_channel().await?;
        replies
            .basic_qos(REPLY_PREFETCH, BasicQosOptions::default())
            .await?;
        let mut arguments = FieldTable::default();
        let expires_ms = i64::try_from(self.expires.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        arguments.insert("x-expires".into(), AMQPValue::LongLongInt(expires_ms));
        replies
            .queue_declare(
                self.callback_queue.as_str().into(),
                QueueDeclareOptions {
                    durable: self.durable,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            )
            .await?;
        let consumer = replies
            .basic_consume(
                self.callback_queue.as_str().into(),
                "".into(),
                // Acknowledged, never `no_ack`: a reply the broker has sent when the connection
                // drops must come again, not vanish with the socket.
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Link {
            publish,
            replies,
            consumer,
            acks: AckCoalescer::start(self.callback_queue.clone(), REPLY_ACK_LINGER),
        })
    }

    fn deliver(&self, reply: Reply) {
        match self.pending.claim(&reply.correlation_id) {
            Claim::Call(waiter) => {
                // The caller may have given up this very moment; then the reply is late.
                if let Err(reply) = waiter.send(reply) {
                    self.late(reply);
                }
            }
            Claim::Submitted => {
                if let Some(handler) = &self.on_reply {
                    handler(ReplyEvent::Completed(reply));
                }
            }
            Claim::Unknown => self.late(reply),
        }
    }

    fn late(&self, reply: Reply) {
        self.stats.late_replies.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(correlation_id = %reply.correlation_id, "late or duplicate reply dropped");
        if let Some(handler) = &self.on_reply {
            handler(ReplyEvent::Late(reply));
        }
    }
}

struct Link {
    publish: Channel,
    /// Held so it is closed explicitly: a lapin channel whose last handle is dropped closes in
    /// the background and races the connection's close (which lapin logs as an error).
    replies: Channel,
    consumer: Consumer,
    /// Acknowledges the replies whose [`crate::Receipt`]s were dropped.
    acks: AckCoalescer,
}

/// Own the connection: consume replies; on loss, reconnect with backoff and redeclare.
async fn supervise(
    inner: Arc<Inner>,
    stop: CancellationToken,
    mut first: Option<(Connection, Link)>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let (connection, link) = match first.take() {
            Some(ready) => ready,
            None => {
                let Some(connection) = inner.connector.connect_until(stop.cancelled()).await else {
                    return;
                };
                match inner.open(&connection).await {
                    Ok(link) => (connection, link),
                    Err(error) => {
                        tracing::warn!(queue = %inner.callback_queue, %error, "could not set up the callback queue");
                        let _ = connection.close(200, "retrying".into()).await;
                        if wait_or_stop(&stop, backoff.next_delay()).await {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        inner.stats.connections.fetch_add(1, Ordering::Relaxed);
        backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        inner.set_channel(Some(Arc::new(link.publish.clone())));
        let Link {
            publish: link_publish,
            replies: link_replies,
            mut consumer,
            acks,
        } = link;
        tracing::debug!(queue = %inner.callback_queue, "rpc client connected");
        let stopped = consume_replies(&inner, &stop, &mut consumer, &acks).await;
        inner.set_channel(None);
        if stopped {
            // Replies whose receipts are still held (a store write under way) stay unacknowledged
            // after this and come again to the next client on a durable queue.
            let _ = tokio::time::timeout(ACK_FLUSH, acks.finish()).await;
            if !inner.durable {
                let _ = link_publish_delete(&link_publish, &inner.callback_queue).await;
            }
            let _ = link_replies.close(200, "client closed".into()).await;
            let _ = link_publish.close(200, "client closed".into()).await;
            let _ = connection.close(200, "client closed".into()).await;
            return;
        }
        tracing::warn!(connection = %inner.connector.name(), "rpc client lost its connection; reconnecting");
        let _ = connection.close(200, "reconnecting".into()).await;
        if wait_or_stop(&stop, backoff.next_delay()).await {
            return;
        }
    }
}

/// Delete the callback queue of a client that stops for good.
async fn link_publish_delete(channel: &Channel, queue: &str) -> Result<()> {
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await?;
    Ok(())
}

/// Deliver replies until the consumer ends (false) or the client stops (true). Each reply
/// carries its receipt; unacknowledged replies go back to the callback queue if the connection
/// ends, so leaving with some still buffered loses none.
async fn consume_replies(
    inner: &Inner,
    stop: &CancellationToken,
    consumer: &mut Consumer,
    acks: &AckCoalescer,
) -> bool {
    loop {
        tokio::select! {
            () = stop.cancelled() => return true,
            () = inner.channel_broken.notified() => {
                tracing::warn!(queue = %inner.callback_queue, "publish channel closed by the broker; reconnecting");
                return false;
            }
            delivery = consumer.next() => {
                let Some(Ok(delivery)) = delivery else { return false };
                let correlation_id = delivery
                    .properties
                    .correlation_id()
                    .as_ref()
                    .map(|id| id.as_str().to_owned());
                let receipt = Receipt::new(delivery.delivery_tag, delivery.acker, acks.sender());
                match correlation_id {
                    Some(correlation_id) => inner.deliver(Reply { correlation_id, body: delivery.data, receipt }),
                    None => {
                        inner.stats.late_replies.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("reply without correlation_id dropped");
                    }
                }
            }
        }
    }
}

/// Sleep `delay`; true if the client stopped meanwhile.
async fn wait_or_stop(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => false,
        () = stop.cancelled() => true,
    }
}

/// Tell the reply handler about submitted jobs whose deadline passed.
async fn expire_submitted(inner: Arc<Inner>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(EXPIRY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for correlation_id in inner.pending.expire(Instant::now()) {
            if let Some(handler) = &inner.on_reply {
                handler(ReplyEvent::Expired { correlation_id });
            }
        }
    }
}

/// Wait for `future` at most `limit`; used by tests and tools that need a bounded wait.
///
/// # Errors
/// [`Error::Timeout`] when `limit` passes first.
pub async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| Error::Timeout(limit))
}
