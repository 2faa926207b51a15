//! `Application`: build the gateway from settings (schemas, tokens, job store, broker client),
//! then serve until a shutdown future completes. SIGHUP reloads `schemas/`.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use intercomm_core::schema::SchemaSet;
use intercomm_core::{Connector, RpcClient};
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::jobs::{JobStore, MemoryJobStore};
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
    let builder = builder.on_reply(crate::replies::recorder(store, metrics));
    let client = builder.connect().await.with_context(|| {
        format!(
            "connecting to RabbitMQ at {} (is it running? `rabbitmq-server -detached` starts a local one)",
            connector.redacted_url()
        )
    })?;
    Ok((client, connector.name().to_owned()))
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
