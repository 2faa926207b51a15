//! The HTTP routes: `app(state)` assembles them with the layers every request passes through.
//!
//! - [`jobs`]: submit (`POST /v1/jobs/{method}` and each schema's own route), `GET /v1/jobs/{id}`.
//! - [`rpc`]: `POST /v1/rpc`, synchronous JSON-RPC over HTTP.
//! - [`events`]: `GET /v1/events`, the subject's job completions and user events (SSE).
//! - [`ws`]: `GET /v1/ws`, the same pushes over a WebSocket, plus `GET_SID` and JSON-RPC.
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

pub mod events;
pub mod health;
pub mod jobs;
pub mod rpc;
pub mod ws;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

use crate::auth::Claims;
use crate::error::{ApiError, PROBLEM_JSON};
use crate::state::AppState;

/// The gateway's router over `state`.
pub fn app(state: AppState) -> Router {
    let timeout = state.settings.request_timeout;
    Router::new()
        .route(
            "/v1/jobs/{id}",
            post(jobs::submit_generic).get(jobs::get_job),
        )
        .route("/v1/rpc", post(rpc::handle))
        .route("/v1/events", get(events::stream))
        .route("/v1/ws", get(ws::upgrade))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi))
        .merge(crate::console::router())
        .fallback(jobs::schema_route)
        // The timeout sits inside the middleware so a 504 is problem+json and counted too.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            finish_response,
        ))
        .with_state(state)
}

/// Every error answer becomes problem+json (axum's own rejections included), and every answer
/// is counted by status.
async fn finish_response(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let response = as_problem(response).await;
    state.metrics.http_response(response.status().as_u16());
    response
}

async fn as_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let detail = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .filter(|text| !text.trim().is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let problem = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(problem.to_string()))
}

/// Verify the bearer token of a request and count it against the subject's rate limit.
///
/// # Errors
/// [`ApiError::Unauthorized`] when it is missing or invalid; [`ApiError::RateLimited`] when
/// the subject is over its limit.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or(""));
    let claims = state.auth.verify_header(value)?;
    state.limiter.check(&claims.sub)?;
    Ok(claims)
}

/// Read a JSON body: `application/json` (415 otherwise), at most the limit (413), valid JSON
/// (400).
///
/// # Errors
/// As above.
pub async fn read_json(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<serde_json::Value, ApiError> {
    Ok(read_json_bytes(state, headers, body).await?.0)
}

/// [`read_json`], also keeping the body itself as raw JSON, to publish as it came rather than
/// serialise the parsed value again.
///
/// # Errors
/// As [`read_json`].
pub async fn read_json_and_raw(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(serde_json::Value, Box<serde_json::value::RawValue>), ApiError> {
    let (value, bytes) = read_json_bytes(state, headers, body).await?;
    // Valid JSON is valid UTF-8: neither step fails once the parse succeeded.
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|error| ApiError::InvalidJson(error.to_string()))?;
    let raw = serde_json::value::RawValue::from_string(text)
        .map_err(|error| ApiError::InvalidJson(error.to_string()))?;
    Ok((value, raw))
}

async fn read_json_bytes(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(serde_json::Value, axum::body::Bytes), ApiError> {
    let bytes = read_body(state, body).await?;
    if bytes.is_empty() {
        return Err(ApiError::InvalidJson(
            "the body is empty; send a JSON object".into(),
        ));
    }
    require_json(headers)?;
    let value =
        serde_json::from_slice(&bytes).map_err(|error| ApiError::InvalidJson(error.to_string()))?;
    Ok((value, bytes))
}

/// Read a body of at most the configured limit.
///
/// # Errors
/// [`ApiError::PayloadTooLarge`].
pub async fn read_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.settings.body_limit;
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })
}

/// The request must say `Content-Type: application/json` (parameters allowed).
///
/// # Errors
/// [`ApiError::UnsupportedMediaType`].
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
            got: if content_type.is_empty() {
                "none".into()
            } else {
                content_type.to_owned()
            },
        })
    }
}

/// The request's `traceparent`, if well-formed.
#[must_use]
pub fn traceparent(headers: &HeaderMap) -> Option<String> {
    headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .filter(|value| intercomm_core::telemetry::TraceContext::parse(value).is_some())
        .map(str::to_owned)
}

impl IntoResponse for crate::jobs::Job {
    fn into_response(self) -> Response {
        axum::Json(self).into_response()
    }
}
