//! The console: a small web page at `/console` that shows the loaded routes, submits jobs from
//! a form generated from each method's params schema, and follows them live over
//! `/v1/events`. It is plain HTML, CSS and JavaScript embedded in the binary (no build step),
//! and it uses the public HTTP API like any other client. See `docs/CONSOLE.md`.
//!
//! Routes (none of them needs a token):
//! - `GET /console`, `/console/app.js`, `/console/app.css`: the embedded assets.
//! - `GET /console/api/routes`: every loaded method with its worker, route and summary, and
//!   whether a worker is bound right now (a passive declare of `rpc_queue_<worker>` with a
//!   consumer count above 0, on a short-lived channel; cached for [`BOUND_TTL`]).
//! - `POST /console/dev-token` `{"sub": "alice"}`: a 1 h token, only when the gateway runs in
//!   development mode ([`GatewaySettings::dev_mode`](crate::GatewaySettings), set by
//!   `intercomm up` when it made the signing secret itself); `404` otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use intercomm_core::Connector;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::auth::mint_hs256;
use crate::error::ApiError;
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// How long a worker-binding answer is reused.
pub const BOUND_TTL: Duration = Duration::from_secs(3);
/// The longest a binding check may take before the answer says "unknown".
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a development token is valid.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Only same-origin scripts, styles and connections; the page cannot be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console's routes, merged into the gateway's router.
pub fn router() -> Router<AppState> {
    let bindings = Arc::new(Bindings::default());
    Router::new()
        .route("/console", get(index))
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route("/console/app.js", get(app_js))
        .route("/console/app.css", get(app_css))
        .route(
            "/console/api/routes",
            get(move |State(state): State<AppState>| {
                let bindings = Arc::clone(&bindings);
                async move { routes(state, bindings).await }
            }),
        )
        .route("/console/dev-token", post(dev_token))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `GET /console`.
async fn index() -> Response {
    let mut response = asset("text/html; charset=utf-8", INDEX_HTML);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /console/app.js`.
async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /console/app.css`.
async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// What one check found for a worker queue.
#[derive(Clone, Copy, Debug)]
enum Binding {
    /// The queue exists with this many consumers.
    Consumers(u32),
    /// No such queue.
    NoQueue,
    /// The broker could not be asked.
    Unknown,
}

/// The cached binding of each worker queue, refreshed at most every [`BOUND_TTL`].
#[derive(Debug, Default)]
struct Bindings {
    inner: Mutex<BindingsInner>,
}

#[derive(Default)]
struct BindingsInner {
    checked: Option<(Instant, BTreeMap<String, Binding>)>,
    connection: Option<lapin::Connection>,
}

impl std::fmt::Debug for BindingsInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingsInner")
            .field("checked", &self.checked)
            .finish_non_exhaustive()
    }
}

impl Bindings {
    /// The binding of each of `workers`, from the cache when it is fresh. One check runs at a
    /// time; concurrent callers wait for it and share its answer.
    async fn of(&self, state: &AppState, workers: &BTreeSet<String>) -> BTreeMap<String, Binding> {
        let mut inner = self.inner.lock().await;
        if let Some((at, found)) = &inner.checked
            && at.elapsed() < BOUND_TTL
            && workers.iter().all(|worker| found.contains_key(worker))
        {
            return found.clone();
        }
        let found =
            match tokio::time::timeout(CHECK_TIMEOUT, check(&mut inner, state, workers)).await {
                Ok(Ok(found)) => found,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "console: cannot check the worker queues");
                    inner.connection = None;
                    unknown(workers)
                }
                Err(_) => {
                    inner.connection = None;
                    unknown(workers)
                }
            };
        inner.checked = Some((Instant::now(), found.clone()));
        found
    }
}

fn unknown(workers: &BTreeSet<String>) -> BTreeMap<String, Binding> {
    workers
        .iter()
        .map(|worker| (worker.clone(), Binding::Unknown))
        .collect()
}

/// Passive-declare each `rpc_queue_<worker>` on its own short-lived channel (a declare of a
/// missing queue closes its channel).
async fn check(
    inner: &mut BindingsInner,
    state: &AppState,
    workers: &BTreeSet<String>,
) -> anyhow::Result<BTreeMap<String, Binding>> {
    if !inner
        .connection
        .as_ref()
        .is_some_and(|connection| connection.status().connected())
    {
        let connector = Connector::new(
            state.settings.core.amqp_url.clone(),
            format!("intercomm-console-{}", uuid::Uuid::new_v4().simple()),
        );
        inner.connection = Some(connector.connect().await?);
    }
    let Some(connection) = inner.connection.as_ref() else {
        return Ok(unknown(workers));
    };
    let mut found = BTreeMap::new();
    for worker in workers {
        let channel = connection.create_channel().await?;
        let queue = intercomm_core::topology::worker_queue(worker);
        let declared = channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        let binding = match declared {
            Ok(declared) => {
                let _ = channel.close(200, "console check".into()).await;
                Binding::Consumers(declared.consumer_count())
            }
            Err(error) if error.to_string().contains("NOT_FOUND") => Binding::NoQueue,
            Err(error) => return Err(error.into()),
        };
        found.insert(worker.clone(), binding);
    }
    Ok(found)
}

/// `GET /console/api/routes`.
async fn routes(state: AppState, bindings: Arc<Bindings>) -> Response {
    let routes = state.routes.load_full();
    let workers: BTreeSet<String> = routes
        .schemas
        .iter()
        .map(|definition| definition.worker.clone())
        .collect();
    let found = bindings.of(&state, &workers).await;
    let methods: Vec<Value> = routes
        .schemas
        .iter()
        .map(|definition| {
            let binding = found
                .get(&definition.worker)
                .copied()
                .unwrap_or(Binding::Unknown);
            let (bound, consumers, queue_exists) = match binding {
                Binding::Consumers(n) => (Value::Bool(n > 0), json!(n), json!(true)),
                Binding::NoQueue => (Value::Bool(false), json!(0), json!(false)),
                Binding::Unknown => (Value::Null, Value::Null, Value::Null),
            };
            json!({
                "method": definition.method,
                "worker": definition.worker,
                "queue": intercomm_core::topology::worker_queue(&definition.worker),
                "summary": definition.summary,
                "http": definition.http.as_ref().map(|route| json!({
                    "verb": route.verb.as_str(),
                    "path": route.path,
                })),
                "submit": format!("/v1/jobs/{}", definition.method),
                "claimer": definition.claimer,
                "timeout_ms": definition.timeout.map(|timeout| timeout.as_millis() as u64),
                "params_schema": format!("#/components/schemas/{}.params", definition.method),
                "bound": bound,
                "consumers": consumers,
                "queue_exists": queue_exists,
            })
        })
        .collect();
    let mut response = Json(json!({
        "methods": methods,
        "dev_mode": state.settings.dev_mode,
        "checked_every_ms": BOUND_TTL.as_millis() as u64,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /console/dev-token` `{"sub": "<user>"}`: development mode only.
async fn dev_token(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match mint_dev_token(&state, &headers, body).await {
        Ok(body) => {
            let mut response = (StatusCode::OK, Json(body)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn mint_dev_token(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
    let secret = match (&state.settings.auth.hs256_secret, state.settings.dev_mode) {
        (Some(secret), true) => secret,
        _ => {
            return Err(ApiError::NoRoute(
                "POST /console/dev-token (it exists only in development mode: `intercomm up` \
                 without INTERCOMM_JWT_SECRET)"
                    .into(),
            ));
        }
    };
    let body = crate::routes::read_json(state, headers, body).await?;
    let sub = body.get("sub").and_then(Value::as_str).unwrap_or("");
    let valid = (1..=64).contains(&sub.len())
        && sub
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'));
    if !valid {
        return Err(ApiError::BadRequest(
            "`sub` must be 1 to 64 characters of A-Z a-z 0-9 _ . @ -".into(),
        ));
    }
    let token = mint_hs256(
        secret,
        sub,
        DEV_TOKEN_TTL,
        state.settings.auth.issuer.as_deref(),
        state.settings.auth.audience.as_deref(),
    )
    .map_err(|error| ApiError::Internal(format!("minting a development token: {error}")))?;
    Ok(json!({
        "sub": sub,
        "token": token,
        "expires_in": DEV_TOKEN_TTL.as_secs(),
    }))
}
