//! `POST /v1/rpc`: JSON-RPC 2.0 over HTTP, synchronous. Each request is validated against its
//! method's schema, published, and answered when the reply comes or the deadline passes.
//!
//! Errors specific to the gateway: -32005 Forbidden (the params name another user than the
//! token's subject). Broker outcomes map to -32001 (unroutable) and -32000 (deadline).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use intercomm_core::protocol::{
    Call, ErrorCode, Id, Incoming, Outcome, parse_incoming, write_response,
};
use intercomm_core::{CallOptions, Error, RpcError};
use serde_json::value::RawValue;

use super::{authenticate, read_body, require_json, traceparent};
use crate::auth::Claims;
use crate::error::ApiError;
use crate::state::AppState;

/// The code for "the params name another user than the token's subject".
/// The same code the workers answer when the verified user is not the acting user.
pub const FORBIDDEN: i32 = ErrorCode::Forbidden.code();

/// Handle a single request or a batch.
pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    if state.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    let bytes = read_body(&state, body).await?;
    require_json(&headers)?;
    Ok(match answer(&state, &headers, &claims, &bytes).await {
        Some(body) => {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// The JSON-RPC answer to a body (one response or a batch), or `None` when only notifications
/// came. Shared by `POST /v1/rpc` and the WebSocket.
pub async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    claims: &Claims,
    bytes: &[u8],
) -> Option<Vec<u8>> {
    match parse_incoming(bytes) {
        Err(error) => {
            let outcome: Outcome =
                Err(RpcError::from_code(ErrorCode::ParseError).with_data(error.to_string().into()));
            Some(single(&Id::Null, &outcome))
        }
        Ok(Incoming::Single(call)) => run(state, headers, claims, call)
            .await
            .map(|(id, outcome)| single(&id, &outcome)),
        Ok(Incoming::Batch(calls)) => {
            let outcomes = join_all(
                calls
                    .into_iter()
                    .map(|call| run(state, headers, claims, call)),
            )
            .await;
            let mut out = vec![b'['];
            for (id, outcome) in outcomes.iter().flatten() {
                if out.len() > 1 {
                    out.push(b',');
                }
                write_response(&mut out, id, outcome);
            }
            out.push(b']');
            (out.len() > 2).then_some(out)
        }
    }
}

fn single(id: &Id<'_>, outcome: &Outcome) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_response(&mut out, id, outcome);
    out
}

/// Run one call; `Some((id, outcome))` unless it is a notification.
async fn run<'a>(
    state: &AppState,
    headers: &HeaderMap,
    claims: &Claims,
    call: Call<'a>,
) -> Option<(Id<'a>, Outcome)> {
    let (id, method, params) = match call {
        Call::Invalid { id, reason } => return Some((id, Err(RpcError::invalid_request(reason)))),
        Call::Request { id, method, params } => (Some(id), method, params),
        Call::Notification { method, params } => {
            (None, method, params.map(std::borrow::Cow::Borrowed))
        }
    };
    let outcome = dispatch(
        state,
        headers,
        claims,
        &method,
        params.as_deref(),
        id.is_none(),
    )
    .await;
    id.map(|id| (id, outcome))
}

async fn dispatch(
    state: &AppState,
    headers: &HeaderMap,
    claims: &Claims,
    method: &str,
    params: Option<&RawValue>,
    notification: bool,
) -> Outcome {
    let Some(definition) = state.routes.load().schemas.get(method).cloned() else {
        return Err(RpcError::method_not_found(method));
    };
    let value: serde_json::Value = match params {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| RpcError::invalid_params("", e.to_string()))?,
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    if let Err(errors) = definition.validate(&value) {
        return Err(RpcError::from_code(ErrorCode::InvalidParams)
            .with_data(serde_json::json!({ "errors": errors })));
    }
    if let Some(pointer) = &definition.claimer {
        let claimed = definition.claimed_user(&value).unwrap_or("");
        if claimed != claims.sub {
            return Err(RpcError::forbidden(
                pointer,
                "names another user than the token's subject",
            ));
        }
    }
    let options = CallOptions {
        timeout: Some(definition.timeout.unwrap_or(state.settings.job_timeout)),
        id: None,
        user: Some(claims.sub.clone()),
        traceparent: traceparent(headers),
    };
    let raw = match params {
        Some(raw) => raw.to_owned(),
        None => {
            RawValue::from_string("{}".to_owned()).map_err(|e| RpcError::internal(e.to_string()))?
        }
    };
    if notification {
        if let Err(error) = state.publisher.notify(method, Some(&raw), &options).await {
            tracing::warn!(%method, %error, "notification not published");
        }
        return Ok(raw);
    }
    state.publisher.call(method, Some(&raw), &options).await.map_err(|error| match error {
        Error::Remote(remote) => remote,
        Error::Unroutable { method } => RpcError::from_code(ErrorCode::Unroutable)
            .with_data(serde_json::json!({ "method": method, "message": "no worker is bound for this method" })),
        Error::Timeout(_) => RpcError::deadline_exceeded(),
        other => {
            tracing::warn!(%method, error = %other, "rpc call failed");
            RpcError::internal("the broker could not take the job")
        }
    })
}
