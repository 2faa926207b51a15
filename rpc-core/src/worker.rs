//! The worker runtime: consume `rpc_queue_<worker>` → dispatch to handlers → reply → ack.
//!
//! A job is acknowledged only after its reply is confirmed by the broker, so a crash between the
//! two means a redelivery, never a lost reply. Acks of consecutive settled jobs go out as one
//! (`crate::acks`). Jobs that cannot be answered sensibly (not JSON, not a request, delivered too
//! often, no callback queue) are dead-lettered after any reply that can be sent. Params are checked
//! against the methods' job definitions (`schemas/`) before a handler runs, when the worker was
//! given them ([`Worker::definitions`]).

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::future::join_all;
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Confirmation, Connection};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::acks::{AckCoalescer, AckSender, NO_LINGER};
use crate::config::Settings;
use crate::connection::{Backoff, Connector};
use crate::envelope::{CONTENT_TYPE_JSON, DeliveredJob, reply_properties};
use crate::error::{Error, Result};
use crate::handler::{Context, Handler, TypedHandler};
use crate::metrics::{MethodMetrics, WorkerMetrics};
use crate::protocol::{
    Call, ErrorCode, Id, Incoming, Outcome, RpcError, parse_incoming, write_response,
};
use crate::schema::{JobDefinition, SchemaSet};
use crate::telemetry::TraceContext;
use crate::topology::{
    QueueType, WorkerQueueSpec, declare_worker_queue, validate_method_name, validate_worker_name,
    worker_queue,
};

/// Where a worker is in its life, for readiness checks and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    /// Connecting or reconnecting to the broker.
    Connecting,
    /// Topology declared and consuming.
    Ready,
    /// Stopped for good.
    Stopped,
}

/// Counters of what a worker did, readable while it runs.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Calls answered with a result.
    pub succeeded: AtomicU64,
    /// Calls answered with an error (any code).
    pub failed: AtomicU64,
    /// Deliveries dead-lettered (unparseable, delivery limit, no callback queue).
    pub dead_lettered: AtomicU64,
    /// Deliveries that had been delivered before (quorum queues count them).
    pub redelivered: AtomicU64,
    /// Replies the broker returned because the callback queue no longer exists.
    pub replies_unroutable: AtomicU64,
    /// Connections (re)established.
    pub connections: AtomicU64,
}

impl WorkerStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A worker: a name, the methods it serves, and how it consumes.
///
/// ```no_run
/// # use intercomm_core::{Worker, Connector, Context, RpcError};
/// # async fn example() -> Result<(), intercomm_core::Error> {
/// #[derive(serde::Deserialize)]
/// struct Params { name: String }
///
/// async fn greet(_ctx: Context, params: Params) -> Result<String, RpcError> {
///     Ok(format!("hello {}", params.name))
/// }
///
/// let connector = Connector::new("amqp://guest:guest@127.0.0.1:5672/%2f", "greeter");
/// Worker::new("greeter")
///     .method("greet", greet)
///     .run(&connector, async { let _ = tokio::signal::ctrl_c().await; })
///     .await
/// # }
/// ```
pub struct Worker {
    name: String,
    handlers: HashMap<String, Arc<dyn Handler>>,
    definitions: HashMap<String, Arc<JobDefinition>>,
    prefetch: u16,
    queue_type: QueueType,
    delivery_limit: u32,
    grace_period: Duration,
    stats: Arc<WorkerStats>,
    metrics: WorkerMetrics,
    state: watch::Sender<WorkerState>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("methods", &self.handlers.keys().collect::<Vec<_>>())
            .field("prefetch", &self.prefetch)
            .field("queue_type", &self.queue_type)
            .field("delivery_limit", &self.delivery_limit)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker consuming `rpc_queue_<name>`, with the default [`Settings`].
    pub fn new(name: impl Into<String>) -> Self {
        let settings = Settings::default();
        Self {
            name: name.into(),
            handlers: HashMap::new(),
            definitions: HashMap::new(),
            prefetch: settings.prefetch,
            queue_type: settings.queue_type,
            delivery_limit: settings.delivery_limit,
            grace_period: settings.grace_period,
            stats: Arc::default(),
            metrics: WorkerMetrics::default(),
            state: watch::Sender::new(WorkerState::Connecting),
        }
    }

    /// Serve `method` with a typed async function. Params decode with serde; a decoding failure
    /// is answered -32602 saying where it failed.
    #[must_use]
    pub fn method<F, Fut, P, T>(self, method: impl Into<String>, function: F) -> Self
    where
        F: Fn(Context, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, RpcError>> + Send + 'static,
        P: DeserializeOwned + 'static,
        T: Serialize + 'static,
    {
        self.handler(method, Arc::new(TypedHandler::new(function)))
    }

    /// Serve `method` with any [`Handler`].
    #[must_use]
    pub fn handler(mut self, method: impl Into<String>, handler: Arc<dyn Handler>) -> Self {
        self.handlers.insert(method.into(), handler);
        self
    }

    /// Check params against the job definitions of `schemas/` (CONTRACT §4) before a handler
    /// runs: a call to a method `definitions` has, whose params break its `params` schema, is
    /// answered -32602 with every violation's JSON Pointer, and its handler does not run. Methods
    /// without a definition are checked by their handlers' types only. Call it after the
    /// methods are added ([`Worker::checked_methods`] lists the ones it covers).
    #[must_use]
    pub fn definitions(mut self, definitions: &SchemaSet) -> Self {
        for method in self.handlers.keys() {
            if let Some(definition) = definitions.get(method) {
                self.definitions
                    .insert(method.clone(), Arc::clone(definition));
            }
        }
        self
    }

    /// The methods whose params are checked against a job definition, sorted.
    #[must_use]
    pub fn checked_methods(&self) -> Vec<&str> {
        let mut methods: Vec<&str> = self.definitions.keys().map(String::as_str).collect();
        methods.sort_unstable();
        methods
    }

    /// Take prefetch, queue type, delivery limit and grace period from `settings`.
    #[must_use]
    pub fn settings(mut self, settings: &Settings) -> Self {
        self.prefetch = settings.prefetch;
        self.queue_type = settings.queue_type;
        self.delivery_limit = settings.delivery_limit;
        self.grace_period = settings.grace_period;
        self
    }

    /// Jobs taken from the broker and run at once (default 64).
    #[must_use]
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// Quorum (default) or classic queue.
    #[must_use]
    pub fn queue_type(mut self, queue_type: QueueType) -> Self {
        self.queue_type = queue_type;
        self
    }

    /// Deliveries after which a job is dead-lettered with -32003 (default 5).
    #[must_use]
    pub fn delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = limit.max(1);
        self
    }

    /// How long a stop lets in-flight jobs finish (default 30 s).
    #[must_use]
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// The worker's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The methods it serves, sorted.
    #[must_use]
    pub fn methods(&self) -> Vec<&str> {
        let mut methods: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        methods.sort_unstable();
        methods
    }

    /// Counters, readable while the worker runs.
    #[must_use]
    pub fn stats(&self) -> Arc<WorkerStats> {
        Arc::clone(&self.stats)
    }

    /// Prometheus metrics of this worker (render them wherever the process serves `/metrics`).
    #[must_use]
    pub fn metrics(&self) -> WorkerMetrics {
        self.metrics.clone()
    }

    /// Watch the worker's state (e.g. wait for [`WorkerState::Ready`] before publishing).
    #[must_use]
    pub fn state(&self) -> watch::Receiver<WorkerState> {
        self.state.subscribe()
    }

    /// Consume until `shutdown` completes, reconnecting with backoff whenever the connection is
    /// lost. On shutdown: stop consuming, let in-flight jobs finish within the grace period (the
    /// rest go back to the queue), close.
    ///
    /// # Errors
    /// Invalid worker or method names, or a queue that exists with other arguments
    /// ([`Error::TopologyMismatch`]): these need an operator, so the worker stops instead of
    /// retrying.
    pub async fn run(
        self,
        connector: &Connector,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        validate_worker_name(&self.name)?;
        for method in self.handlers.keys() {
            validate_method_name(method)?;
        }
        let state = self.state.clone();
        let result = Runtime::from(self).run(connector, shutdown).await;
        state.send_replace(WorkerState::Stopped);
        result
    }
}

/// What the job tasks share.
struct Shared {
    worker: Arc<str>,
    handlers: HashMap<String, Route>,
    queue_type: QueueType,
    delivery_limit: u32,
    stats: Arc<WorkerStats>,
    metrics: WorkerMetrics,
}

/// A served method: its handler, its job definition if params are checked against one, and its
/// metric series, looked up once per call.
struct Route {
    handler: Arc<dyn Handler>,
    definition: Option<Arc<JobDefinition>>,
    metrics: MethodMetrics,
}

struct Runtime {
    shared: Arc<Shared>,
    spec: WorkerQueueSpec,
    prefetch: u16,
    grace_period: Duration,
    state: watch::Sender<WorkerState>,
}

impl From<Worker> for Runtime {
    fn from(worker: Worker) -> Self {
        let spec = WorkerQueueSpec {
            worker: worker.name.clone(),
            queue_type: worker.queue_type,
            delivery_limit: worker.delivery_limit,
        };
        Self {
            shared: Arc::new(Shared {
                worker: Arc::from(worker.name.as_str()),
                handlers: worker
                    .handlers
                    .into_iter()
                    .map(|(method, handler)| {
                        let metrics = worker.metrics.method(&method);
                        let definition = worker.definitions.get(&method).cloned();
                        let route = Route {
                            handler,
                            definition,
                            metrics,
                        };
                        (method, route)
                    })
                    .collect(),
                queue_type: worker.queue_type,
                delivery_limit: worker.delivery_limit,
                stats: worker.stats,
                metrics: worker.metrics,
            }),
            spec,
            prefetch: worker.prefetch,
            grace_period: worker.grace_period,
            state: worker.state,
        }
    }
}

/// How a session with one connection ended.
enum SessionEnd {
    Shutdown,
    Lost(Error),
}

impl Runtime {
    async fn run(self, connector: &Connector, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            self.state.send_replace(WorkerState::Connecting);
            let Some(connection) = connector.connect_until(shutdown.as_mut()).await else {
                return Ok(());
            };
            WorkerStats::bump(&self.shared.stats.connections);
            let mut fresh = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            let session = match open_channel(&connection).await {
                Ok(channel) => self.session(channel, shutdown.as_mut()).await,
                Err(error) => Err(error),
            };
            match session {
                Ok(SessionEnd::Shutdown) => {
                    close_quietly(connection, "worker stopped").await;
                    return Ok(());
                }
                Ok(SessionEnd::Lost(error)) => {
                    // It was connected: the next wait starts short again.
                    std::mem::swap(&mut backoff, &mut fresh);
                    tracing::warn!(worker = %self.spec.worker, %error, "connection lost; reconnecting");
                }
                Err(error @ Error::TopologyMismatch { .. }) => {
                    close_quietly(connection, "topology mismatch").await;
                    return Err(error);
                }
                Err(error) => {
                    tracing::warn!(worker = %self.spec.worker, %error, "worker session failed; reconnecting");
                }
            }
            close_quietly(connection, "reconnecting").await;
            let wait = backoff.next_delay();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.as_mut() => return Ok(()),
            }
        }
    }

    async fn session(
        &self,
        channel: Channel,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<SessionEnd> {
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut methods: Vec<String> = self.shared.handlers.keys().cloned().collect();
        methods.sort_unstable();
        declare_worker_queue(&channel, &self.spec, &methods).await?;
        let queue = worker_queue(&self.spec.worker);
        let consumer_tag = format!("{}.{}", self.spec.worker, uuid::Uuid::new_v4().simple());
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                consumer_tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(
            worker = %self.spec.worker,
            queue = %queue,
            methods = ?methods,
            prefetch = self.prefetch,
            queue_type = %self.spec.queue_type,
            "worker ready"
        );
        self.state.send_replace(WorkerState::Ready);

        // Job tasks are tracked, not joined one by one, so a finished job wakes nobody; the
        // token gives back (aborts) jobs still running when the session ends.
        let jobs = TaskTracker::new();
        // One Arc per job instead of a lapin `Channel` clone (a dozen shared counters each).
        let shared_channel = Arc::new(channel.clone());
        let give_back = CancellationToken::new();
        let _give_back_on_exit = give_back.clone().drop_guard();
        let acks = AckCoalescer::start(self.spec.worker.clone(), NO_LINGER);
        loop {
            tokio::select! {
                biased;
                () = shutdown.as_mut() => {
                    self.drain(&channel, &consumer_tag, &jobs, &give_back, acks).await;
                    return Ok(SessionEnd::Shutdown);
                }
                delivery = consumer.next() => {
                    match delivery {
                        Some(Ok(delivery)) => {
                            let job = process(Arc::clone(&self.shared), Arc::clone(&shared_channel), acks.sender(), delivery);
                            let give_back = give_back.clone();
                            jobs.spawn(async move {
                                tokio::select! {
                                    () = job => {}
                                    () = give_back.cancelled() => {}
                                }
                            });
                        }
                        Some(Err(error)) => return Ok(SessionEnd::Lost(error.into())),
                        None => return Ok(SessionEnd::Lost(Error::NotConnected)),
                    }
                }
            }
        }
    }

    /// Stop consuming, give in-flight jobs the grace period, then close the channel (which
    /// returns unfinished jobs to the queue).
    async fn drain(
        &self,
        channel: &Channel,
        consumer_tag: &str,
        jobs: &TaskTracker,
        give_back: &CancellationToken,
        acks: AckCoalescer,
    ) {
        self.state.send_replace(WorkerState::Stopped);
        if let Err(error) = channel
            .basic_cancel(consumer_tag.into(), BasicCancelOptions::default())
            .await
        {
            tracing::warn!(worker = %self.spec.worker, %error, "could not cancel the consumer");
        }
        jobs.close();
        let in_flight = jobs.len();
        if in_flight > 0 {
            tracing::info!(worker = %self.spec.worker, in_flight, grace = ?self.grace_period, "letting jobs finish");
        }
        if tokio::time::timeout(self.grace_period, jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                worker = %self.spec.worker,
                unfinished = jobs.len(),
                "grace period over; unfinished jobs go back to the queue"
            );
            give_back.cancel();
            jobs.wait().await;
        }
        acks.finish().await;
        let _ = channel.close(200, "worker stopped".into()).await;
        tracing::info!(worker = %self.spec.worker, "worker stopped");
    }
}

/// Non-generic wrappers: holding lapin's `&Connection` futures directly inside the generic
/// `run` future trips rustc's higher-ranked `Send` inference.
async fn open_channel(connection: &Connection) -> Result<Channel> {
    Ok(connection.create_channel().await?)
}

async fn close_quietly(connection: Connection, reason: &'static str) {
    let _ = connection.close(200, reason.into()).await;
}

/// What happens to a delivery once any reply is safe.
#[derive(Debug, PartialEq, Eq)]
enum Settle {
    Ack,
    DeadLetter,
}

/// One delivery, start to finish.
async fn process(shared: Arc<Shared>, channel: Arc<Channel>, acks: AckSender, delivery: Delivery) {
    let tag = delivery.delivery_tag;
    let job = DeliveredJob::from_properties(&delivery.properties);
    let trace = job.traceparent.as_deref().and_then(TraceContext::parse);
    // A debug span: at the default `info` level, creating it and formatting its fields costs
    // about 10 µs per job (measured with `bench rpc`); the warnings below name the job instead.
    let span = tracing::debug_span!(
        "job",
        worker = %shared.worker,
        job_id = job.correlation_id.as_deref().unwrap_or(""),
        trace_id = trace.map(|t| t.trace_id_hex()).unwrap_or_default(),
        delivery_count = job.delivery_count,
        method = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    #[cfg(feature = "otlp")]
    if let Some(parent) = &trace {
        crate::telemetry::otlp::continue_trace(&span, parent);
    }
    let _in_flight = shared.metrics.in_flight();
    async {
        if delivery.redelivered || job.delivery_count > 0 {
            WorkerStats::bump(&shared.stats.redelivered);
            shared.metrics.redelivered();
        }
        let (reply, settle) = answer(&shared, &job, &delivery.data).await;
        // `answer` replies only when both reply_to and correlation_id are present.
        if let (Some(body), Some(reply_to), Some(correlation_id)) =
            (reply, &job.reply_to, &job.correlation_id)
        {
            match publish_reply(&channel, reply_to, correlation_id, &body).await
            {
                Ok(true) => {}
                Ok(false) => {
                    WorkerStats::bump(&shared.stats.replies_unroutable);
                    tracing::warn!(job_id = %correlation_id, reply_to, "callback queue is gone; reply dropped");
                }
                Err(error) => {
                    // Not acknowledged: the broker redelivers the job once the channel is gone.
                    tracing::warn!(job_id = %correlation_id, %error, "reply not confirmed; job will be redelivered");
                    let _ = delivery
                        .acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await;
                    acks.done(tag);
                    return;
                }
            }
        }
        match settle {
            Settle::Ack => acks.ack(tag, delivery.acker),
            Settle::DeadLetter => {
                WorkerStats::bump(&shared.stats.dead_lettered);
                shared.metrics.dead_lettered();
                let nacked = delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue: false,
                        ..BasicNackOptions::default()
                    })
                    .await;
                if let Err(error) = nacked {
                    tracing::warn!(
                        job_id = ?job.correlation_id,
                        %error,
                        "could not dead-letter the job; the broker will redeliver it"
                    );
                }
                acks.done(tag);
            }
        }
    }
    .instrument(span)
    .await;
}

/// Publish a reply and wait for the broker's confirm. `Ok(false)`: the callback queue is gone.
async fn publish_reply(
    channel: &Channel,
    reply_to: &str,
    correlation_id: &str,
    body: &[u8],
) -> Result<bool> {
    let confirmation = channel
        .basic_publish(
            "".into(),
            reply_to.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            reply_properties(correlation_id),
        )
        .await?
        .await?;
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(true),
        Confirmation::Ack(Some(_)) => Ok(false),
        Confirmation::Nack(_) => Err(Error::PublishNacked),
    }
}

/// Decide the reply (if any) and how to settle the delivery.
async fn answer(shared: &Shared, job: &DeliveredJob, body: &[u8]) -> (Option<Vec<u8>>, Settle) {
    let can_reply = job.reply_to.is_some() && job.correlation_id.is_some();
    let incoming = match parse_incoming(body) {
        Ok(incoming) => incoming,
        Err(error) => {
            tracing::warn!(job_id = ?job.correlation_id, %error, "job body is not JSON; dead-lettering");
            let reply = can_reply.then(|| {
                let outcome = Err(RpcError::from_code(ErrorCode::ParseError)
                    .with_data(serde_json::Value::String(error.to_string())));
                let mut out = Vec::new();
                write_response(&mut out, &Id::Null, &outcome);
                out
            });
            return (reply, Settle::DeadLetter);
        }
    };
    let expects_reply = match &incoming {
        Incoming::Single(call) => !matches!(call, Call::Notification { .. }),
        Incoming::Batch(calls) => calls
            .iter()
            .any(|c| !matches!(c, Call::Notification { .. })),
    };
    if expects_reply && !can_reply {
        tracing::warn!(
            reply_to = ?job.reply_to,
            correlation_id = ?job.correlation_id,
            "request without reply_to or correlation_id cannot be answered; dead-lettering"
        );
        return (None, Settle::DeadLetter);
    }

    let refusal = if job
        .content_type
        .as_deref()
        .is_some_and(|ct| !is_json_content_type(ct))
    {
        Some((
            RpcError::invalid_request(format!(
                "content_type must be {CONTENT_TYPE_JSON}, not {}",
                job.content_type.as_deref().unwrap_or_default()
            )),
            Settle::DeadLetter,
        ))
    } else if shared.queue_type == QueueType::Quorum && job.delivery_count >= shared.delivery_limit
    {
        tracing::warn!(
            job_id = ?job.correlation_id,
            delivery_count = job.delivery_count,
            limit = shared.delivery_limit,
            "job delivered too often; dead-lettering"
        );
        Some((
            RpcError::from_code(ErrorCode::DeliveryLimit).with_data(serde_json::json!({
                "deliveries": job.delivery_count,
                "limit": shared.delivery_limit,
            })),
            Settle::DeadLetter,
        ))
    } else if job
        .deadline
        .is_some_and(|deadline| deadline <= SystemTime::now())
    {
        Some((RpcError::deadline_exceeded(), Settle::Ack))
    } else {
        None
    };
    if let Some((error, settle)) = refusal {
        let reply = respond_all(&incoming, &error);
        return (reply.filter(|_| can_reply), settle);
    }

    match incoming {
        Incoming::Single(call) => {
            let settle = if matches!(call, Call::Invalid { .. }) {
                Settle::DeadLetter
            } else {
                Settle::Ack
            };
            let reply = run_call(shared, job, call).await.map(|(id, outcome)| {
                let mut out = Vec::with_capacity(128);
                write_response(&mut out, &id, &outcome);
                out
            });
            (reply, settle)
        }
        Incoming::Batch(calls) => {
            // A batch with nothing but invalid elements could not be parsed as work at all.
            let settle = if calls
                .iter()
                .all(|call| matches!(call, Call::Invalid { .. }))
            {
                Settle::DeadLetter
            } else {
                Settle::Ack
            };
            let outcomes =
                join_all(calls.into_iter().map(|call| run_call(shared, job, call))).await;
            let mut out = Vec::with_capacity(128 * outcomes.len());
            out.push(b'[');
            for (id, outcome) in outcomes.iter().flatten() {
                if out.len() > 1 {
                    out.push(b',');
                }
                write_response(&mut out, id, outcome);
            }
            out.push(b']');
            let reply = (out.len() > 2).then_some(out);
            (reply, settle)
        }
    }
}

/// The same error for every call that expects a response, shaped like the body (single/batch).
fn respond_all(incoming: &Incoming<'_>, error: &RpcError) -> Option<Vec<u8>> {
    let outcome: Outcome = Err(error.clone());
    fn id_of<'a>(call: &Call<'a>) -> Option<Id<'a>> {
        match call {
            Call::Request { id, .. } | Call::Invalid { id, .. } => Some(id.clone()),
            Call::Notification { .. } => None,
        }
    }
    match incoming {
        Incoming::Single(call) => id_of(call).map(|id| {
            let mut out = Vec::new();
            write_response(&mut out, &id, &outcome);
            out
        }),
        Incoming::Batch(calls) => {
            let ids: Vec<Id<'_>> = calls.iter().filter_map(id_of).collect();
            if ids.is_empty() {
                return None;
            }
            let mut out = vec![b'['];
            for (index, id) in ids.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_response(&mut out, id, &outcome);
            }
            out.push(b']');
            Some(out)
        }
    }
}

fn is_json_content_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(CONTENT_TYPE_JSON))
}

/// Run one call; `Some((id, outcome))` when it expects a response.
async fn run_call<'a>(
    shared: &Shared,
    job: &DeliveredJob,
    call: Call<'a>,
) -> Option<(Id<'a>, Outcome)> {
    let (id, method, params) = match call {
        Call::Invalid { id, reason } => {
            WorkerStats::bump(&shared.stats.failed);
            return Some((id, Err(RpcError::invalid_request(reason))));
        }
        Call::Request { id, method, params } => (Some(id), method, params),
        Call::Notification { method, params } => {
            (None, method, params.map(std::borrow::Cow::Borrowed))
        }
    };
    let outcome = match shared.handlers.get(method.as_ref()) {
        None => Err(RpcError::method_not_found(&method)),
        Some(route) => {
            let context = Context {
                worker: Arc::clone(&shared.worker),
                method: method.to_string(),
                job_id: id.as_ref().map(crate::protocol::id_to_correlation),
                user: job.user.clone(),
                deadline: job.deadline,
                traceparent: job.traceparent.clone(),
                delivery_count: job.delivery_count,
            };
            let started = std::time::Instant::now();
            let checked = match &route.definition {
                Some(definition) => check_params(definition, params.as_deref()),
                None => Ok(()),
            };
            let outcome = match checked {
                Ok(()) => {
                    run_handler(
                        route.handler.as_ref(),
                        context,
                        params.as_deref(),
                        job.deadline,
                    )
                    .await
                }
                Err(error) => Err(error),
            };
            route.metrics.handled(outcome.is_ok(), started.elapsed());
            outcome
        }
    };
    let span = tracing::Span::current();
    span.record("method", &*method);
    span.record(
        "outcome",
        if outcome.is_ok() {
            "succeeded"
        } else {
            "failed"
        },
    );
    match &outcome {
        Ok(_) => WorkerStats::bump(&shared.stats.succeeded),
        Err(error) => {
            WorkerStats::bump(&shared.stats.failed);
            tracing::debug!(%method, code = error.code, message = %error.message, "call failed");
        }
    }
    id.map(|id| (id, outcome))
}

/// Check `params` (absent counts as `{}`) against the definition's `params` schema: -32602 with
/// the first violation's pointer and message, and all of them under `errors`.
fn check_params(definition: &JobDefinition, params: Option<&RawValue>) -> Result<(), RpcError> {
    let value = match params {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|error| RpcError::invalid_params("", error.to_string()))?,
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    let Err(violations) = definition.validate(&value) else {
        return Ok(());
    };
    let (pointer, message) = violations
        .first()
        .map(|first| (first.pointer.clone(), first.message.clone()))
        .unwrap_or_default();
    Err(
        RpcError::from_code(ErrorCode::InvalidParams).with_data(serde_json::json!({
            "pointer": pointer,
            "message": message,
            "errors": violations,
        })),
    )
}

/// Run a handler, turning panics into -32603 and an overrun deadline into -32000 (the handler's
/// future is dropped, which cancels it).
async fn run_handler(
    handler: &dyn Handler,
    context: Context,
    params: Option<&RawValue>,
    deadline: Option<SystemTime>,
) -> Outcome {
    let started = std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(context, params)));
    let future = match started {
        Ok(future) => future,
        Err(panic) => return Err(panicked(panic.as_ref())),
    };
    let guarded = AssertUnwindSafe(future).catch_unwind();
    let result = match deadline {
        None => guarded.await,
        Some(deadline) => {
            let remaining = deadline
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            match tokio::time::timeout(remaining, guarded).await {
                Ok(result) => result,
                Err(_elapsed) => return Err(RpcError::deadline_exceeded()),
            }
        }
    };
    result.unwrap_or_else(|panic| Err(panicked(panic.as_ref())))
}

fn panicked(panic: &(dyn std::any::Any + Send)) -> RpcError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(panic = %message, "handler panicked");
    RpcError::internal("the handler panicked")
}
