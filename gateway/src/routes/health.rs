//! Operations endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: connected to the broker, schemas loaded, not shutting down.
pub async fn ready(State(state): State<AppState>) -> Response {
    let broker = state.publisher.is_connected();
    let schemas = state.routes.load().schemas.len();
    let stopping = state.is_shutting_down();
    let ready = broker && schemas > 0 && !stopping;
    if ready {
        return Json(json!({
            "status": "ready",
            "broker_connected": broker,
            "schemas_loaded": schemas,
        }))
        .into_response();
    }
    let detail = if stopping {
        "the gateway is shutting down"
    } else if !broker {
        "not connected to the broker"
    } else {
        "no job definitions are loaded"
    };
    // A problem document with the readiness facts as extension members.
    let body = json!({
        "type": "/problems/not-ready",
        "title": "Not ready",
        "status": 503,
        "detail": detail,
        "broker_connected": broker,
        "schemas_loaded": schemas,
        "shutting_down": stopping,
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::error::PROBLEM_JSON),
    );
    response
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.set_pending(state.store.queued());
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// `GET /openapi.json`: generated from the loaded schemas.
pub async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.routes.load().openapi.clone())
}
