//! `Application`: build the gateway from settings (schemas, tokens, job store, broker client),
//! then serve until a shutdown future completes. SIGHUP reloads `schemas/`.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use intercomm_core::protocol::{ResponseBody, parse_response};
use intercomm_core::schema::SchemaSet;
use intercomm_core::{Connector, ReplyEvent, RpcClient};
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::jobs::{Completion, JobStore, MemoryJobStore};
use crate::metrics::Metrics;
use crate::push::UserEventsConsumer;
use crate::redis_store::RedisJobStore;
use crate::routes::app;
use crate::settings::GatewaySettings;
use crate::state::{AppState, Routes};

/// A gateway bound to its port, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    client: RpcClient,
    connection_name: String,
    events: UserEventsConsumer,
}

impl Application {
    /// Load schemas, set up tokens and the store, connect to the broker, bind the listener.
    ///
    /// # Errors
    /// A bad schema file (named), bad token settings, an unreachable broker, a busy port.
    pub async fn build(settings: GatewaySettings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        Self::build_with_listener(settings, listener).await
    }

    /// As [`Application::build`], on a listener the caller bound (tests pass port 0).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with_listener(
        settings: GatewaySettings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let schemas = SchemaSet::load_dir(&settings.schemas_dir).with_context(|| {
            format!(
                "loading job definitions from {}",
                settings.schemas_dir.display()
            )
        })?;
        let routes = Routes::new(schemas)?;
        let auth = Authenticator::new(&settings.auth).context("token settings")?;
        let metrics = Metrics::new();
        let store: Arc<dyn JobStore> = match &settings.job_store {
            None => Arc::new(MemoryJobStore::new(settings.max_jobs, settings.retention)),
            Some(url) => Arc::new(
                RedisJobStore::connect(url, &settings.job_store_prefix, settings.retention)
                    .await
                    .context("connecting to the shared job store (INTERCOMM_JOB_STORE)")?,
            ),
        };
        let instance = settings
            .instance_id
            .clone()
            .unwrap_or_else(|| format!("gateway_{}", uuid::Uuid::new_v4().simple()));
        let (client, connection_name) =
            connect_client(&settings, &instance, Arc::clone(&store), metrics.clone()).await?;
        let events_connector = Connector::new(
            settings.core.amqp_url.clone(),
            format!("intercomm-gateway-events-{instance}"),
        );
        let state = AppState::new(
            routes,
            Arc::new(client.clone()),
            store,
            auth,
            metrics,
            settings,
        );
        let events = UserEventsConsumer::start(events_connector, &instance, state.push.clone())
            .await
            .context("consuming user events")?;
        Ok(Self {
            listener,
            state,
            client,
            connection_name,
            events,
        })
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The name of the gateway's broker connection (`rabbitmqctl list_connections`).
    #[must_use]
    pub fn connection_name(&self) -> &str {
        &self.connection_name
    }

    /// The shared state (for tests and embedding).
    #[must_use]
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serve until `shutdown` completes; then refuse new jobs (503), finish in-flight requests
    /// within the grace period, and close the broker connection.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            client,
            events,
            ..
        } = self;
        let grace = state.settings.core.grace_period;
        let reloads = tokio::spawn(reload_on_sighup(state.clone()));

        let stopping = state.clone();
        let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown.await;
            stopping.begin_shutdown();
            tracing::info!("gateway stopping: refusing new jobs, finishing requests");
            let _ = stopped_tx.send(true);
        };
        let server = axum::serve(listener, app(state.clone())).with_graceful_shutdown(signal);
        let mut stopped = stopped_rx;
        let bounded = async {
            let serve = server.into_future();
            tokio::pin!(serve);
            tokio::select! {
                result = &mut serve => result,
                () = async {
                    let _ = stopped.wait_for(|s| *s).await;
                    tokio::time::sleep(grace).await;
                } => {
                    tracing::warn!(?grace, "requests still running after the grace period; closing");
                    Ok(())
                }
            }
        };
        let result = bounded.await;
        reloads.abort();
        events.stop().await;
        client.close().await;
        result.context("serving HTTP")
    }
}

/// The broker client whose replies complete jobs in `store`.
async fn connect_client(
    settings: &GatewaySettings,
    instance: &str,
    store: Arc<dyn JobStore>,
    metrics: Metrics,
) -> anyhow::Result<(RpcClient, String)> {
    let connector = Connector::new(
        settings.core.amqp_url.clone(),
        format!("intercomm-gateway-{instance}"),
    );
    let mut builder = RpcClient::builder(connector.clone())
        .instance(instance.to_owned())
        .app_id("intercomm-gateway")
        .default_timeout(settings.job_timeout);
    if settings.instance_id.is_some() {
        builder = builder.durable(true);
    }
    let handle = tokio::runtime::Handle::current();
    let builder = builder.on_reply(move |event| {
        // The receipt is dropped (the reply acknowledged) only once the store has it, so a
        // gateway that dies before then gets the reply again on a durable callback queue.
        let (job_id, completion, receipt) = match event {
            ReplyEvent::Completed(reply) | ReplyEvent::Late(reply) => {
                let completion = match parse_response(&reply.body) {
                    Ok(ResponseBody::Single(response)) => Completion::Reply(response.outcome),
                    Ok(ResponseBody::Batch(_)) | Err(_) => {
                        tracing::warn!(correlation_id = %reply.correlation_id, "unreadable reply dropped");
                        return;
                    }
                };
                (reply.correlation_id, completion, Some(reply.receipt))
            }
            ReplyEvent::Expired { correlation_id } => (correlation_id, Completion::Expired, None),
        };
        let store = Arc::clone(&store);
        let metrics = metrics.clone();
        let record = async move {
            match store.complete(&job_id, completion).await {
                Ok(Some(finished)) => {
                    metrics.completed(&finished.method, finished.status, finished.accepted.elapsed().as_secs_f64());
                    metrics.set_pending(store.queued());
                }
                Ok(None) => {}
                Err(error) => tracing::error!(%job_id, %error, "could not record a job's completion"),
            }
            drop(receipt);
        };
        run_now_or_spawn(&handle, record);
    });
    let client = builder.connect().await.with_context(|| {
        format!(
            "connecting to RabbitMQ at {} (is it running? `rabbitmq-server -detached` starts a local one)",
            connector.redacted_url()
        )
    })?;
    Ok((client, connector.name().to_owned()))
}

/// Poll `task` once right here and spawn it only if it has to wait. Recording a reply in the
/// memory store never waits, and a task spawned per reply was a scheduler hand-off (and, while
/// another runtime thread is idle, a wake-up for it to steal the task) for a microsecond of work;
/// a shared store that awaits the network goes on in its own task as before.
fn run_now_or_spawn(
    handle: &tokio::runtime::Handle,
    task: impl Future<Output = ()> + Send + 'static,
) {
    let mut task = Box::pin(task);
    // A future that returns `Pending` here registers the real waker again when the spawned
    // task polls it, so nothing is lost by this first poll's waker being a no-op.
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    if task.as_mut().poll(&mut context).is_pending() {
        handle.spawn(task);
    }
}

/// Reload `schemas/` on every SIGHUP; a broken directory keeps the old routes.
async fn reload_on_sighup(state: AppState) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; schema reload by signal is off");
            return;
        };
        while hangups.recv().await.is_some() {
            match state.reload() {
                Ok(count) => tracing::info!(count, "job definitions reloaded"),
                Err(error) => tracing::error!(
                    error = format!("{error:#}"),
                    "reload refused; the previous routes keep serving"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::run_now_or_spawn;

    /// Work that needs no waiting is done before `run_now_or_spawn` returns.
    #[tokio::test]
    async fn ready_work_runs_at_once() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        run_now_or_spawn(&tokio::runtime::Handle::current(), async move {
            flag.store(true, Ordering::SeqCst);
        });
        assert!(done.load(Ordering::SeqCst), "ran inline");
    }

    /// Work that has to wait goes on in a task and finishes once what it waits for comes.
    #[tokio::test]
    async fn waiting_work_finishes_in_a_task() {
        let (release, released) = tokio::sync::oneshot::channel::<u32>();
        let (report, reported) = tokio::sync::oneshot::channel::<u32>();
        run_now_or_spawn(&tokio::runtime::Handle::current(), async move {
            if let Ok(value) = released.await {
                let _ = report.send(value + 1);
            }
        });
        release.send(41).expect("the task still waits");
        let value = tokio::time::timeout(Duration::from_secs(5), reported)
            .await
            .expect("the spawned task finished in time")
            .expect("it reported");
        assert_eq!(value, 42);
    }
}
