//! The gateway's shared state: a cheap-to-clone handle over the loaded routes, the publisher,
//! the job store, the authenticator and the metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use intercomm_core::schema::{HttpVerb, JobDefinition, SchemaSet};
use intercomm_core::{CallOptions, RpcClient};
use serde_json::value::RawValue;

use crate::auth::Authenticator;
use crate::jobs::JobStore;
use crate::metrics::Metrics;
use crate::openapi::{ApiInfo, document};
use crate::push::PushHub;
use crate::ratelimit::SubjectLimiter;
use crate::settings::GatewaySettings;

/// What the gateway needs from the broker side (RpcClient in production, a fake in unit tests
/// of the HTTP layer).
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Publish a job under `options.id`; return once the broker confirmed it.
    async fn submit(
        &self,
        method: &str,
        params: &RawValue,
        options: &CallOptions,
    ) -> intercomm_core::Result<()>;
    /// Publish and wait for the reply.
    async fn call(
        &self,
        method: &str,
        params: Option<&RawValue>,
        options: &CallOptions,
    ) -> intercomm_core::Result<Box<RawValue>>;
    /// Publish a notification.
    async fn notify(
        &self,
        method: &str,
        params: Option<&RawValue>,
        options: &CallOptions,
    ) -> intercomm_core::Result<()>;
    /// Connected to the broker now?
    fn is_connected(&self) -> bool;
}

#[async_trait]
impl Publisher for RpcClient {
    async fn submit(
        &self,
        method: &str,
        params: &RawValue,
        options: &CallOptions,
    ) -> intercomm_core::Result<()> {
        RpcClient::submit(self, method, Some(params), options)
            .await
            .map(|_| ())
    }

    async fn call(
        &self,
        method: &str,
        params: Option<&RawValue>,
        options: &CallOptions,
    ) -> intercomm_core::Result<Box<RawValue>> {
        self.call_raw(method, params, options).await
    }

    async fn notify(
        &self,
        method: &str,
        params: Option<&RawValue>,
        options: &CallOptions,
    ) -> intercomm_core::Result<()> {
        RpcClient::notify(self, method, params, options).await
    }

    fn is_connected(&self) -> bool {
        RpcClient::is_connected(self)
    }
}

/// Path parameters of a matched route, as (name, raw text).
pub type PathParams = Vec<(String, String)>;

/// The routes built from one load of `schemas/`: swapped whole on reload.
#[derive(Debug)]
pub struct Routes {
    /// The definitions, by method.
    pub schemas: SchemaSet,
    /// Each definition's own `http` route, by verb.
    by_verb: HashMap<HttpVerb, matchit::Router<Arc<JobDefinition>>>,
    /// The OpenAPI document for these routes.
    pub openapi: serde_json::Value,
}

impl Routes {
    /// Build the route table of a loaded schema set.
    ///
    /// # Errors
    /// When two definitions' routes cannot live in one router (the loader checks this first).
    pub fn new(schemas: SchemaSet) -> anyhow::Result<Self> {
        let mut by_verb: HashMap<HttpVerb, matchit::Router<Arc<JobDefinition>>> = HashMap::new();
        for definition in schemas.iter() {
            if let Some(route) = &definition.http {
                by_verb
                    .entry(route.verb)
                    .or_default()
                    .insert(route.path.clone(), Arc::clone(definition))
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "route {} {} ({}): {e}",
                            route.verb.as_str(),
                            route.path,
                            definition.file.display()
                        )
                    })?;
            }
        }
        let openapi = document(
            &schemas,
            &ApiInfo {
                title: "intercomm".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: Some(
                    "JSON-RPC 2.0 jobs over RabbitMQ, generated from schemas/".into(),
                ),
            },
        );
        Ok(Self {
            schemas,
            by_verb,
            openapi,
        })
    }

    /// The definition whose own route matches, with the path parameters.
    #[must_use]
    pub fn match_route(
        &self,
        verb: HttpVerb,
        path: &str,
    ) -> Option<(Arc<JobDefinition>, PathParams)> {
        let matched = self.by_verb.get(&verb)?.at(path).ok()?;
        let params = matched
            .params
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Some((Arc::clone(matched.value), params))
    }
}

/// Shared state; clones share everything.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What the handle points at.
#[allow(missing_debug_implementations)] // holds trait objects; AppState's Debug shows the settings
pub struct Inner {
    /// The current routes (swapped on reload).
    pub routes: ArcSwap<Routes>,
    /// Publishes jobs.
    pub publisher: Arc<dyn Publisher>,
    /// Keeps jobs.
    pub store: Arc<dyn JobStore>,
    /// Verifies tokens.
    pub auth: Authenticator,
    /// Counts.
    pub metrics: Metrics,
    /// User events for connected users.
    pub push: PushHub,
    /// The per-subject rate limit.
    pub limiter: SubjectLimiter,
    /// Settings.
    pub settings: GatewaySettings,
    shutting_down: AtomicBool,
    /// Cancelled when the gateway begins to stop: open streams (SSE, WebSocket) end with it.
    stopping: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Assemble the state.
    #[must_use]
    pub fn new(
        routes: Routes,
        publisher: Arc<dyn Publisher>,
        store: Arc<dyn JobStore>,
        auth: Authenticator,
        metrics: Metrics,
        settings: GatewaySettings,
    ) -> Self {
        Self(Arc::new(Inner {
            routes: ArcSwap::from_pointee(routes),
            publisher,
            store,
            auth,
            metrics,
            push: PushHub::new(),
            limiter: SubjectLimiter::new(settings.rate_per_second, settings.rate_burst),
            settings,
            shutting_down: AtomicBool::new(false),
            stopping: tokio_util::sync::CancellationToken::new(),
        }))
    }

    /// Reload `schemas/` atomically: a broken directory leaves the old routes serving.
    ///
    /// # Errors
    /// Why the new directory was refused (the old routes stay).
    pub fn reload(&self) -> anyhow::Result<usize> {
        let schemas = SchemaSet::load_dir(&self.settings.schemas_dir)?;
        let count = schemas.len();
        self.routes.store(Arc::new(Routes::new(schemas)?));
        Ok(count)
    }

    /// Mark the gateway as stopping: readiness fails and new jobs are refused.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.stopping.cancel();
    }

    /// Completes once a shutdown began (open streams end then, so they cannot hold it up).
    pub fn stopping(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.stopping.clone().cancelled_owned()
    }

    /// True once a shutdown began.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}
