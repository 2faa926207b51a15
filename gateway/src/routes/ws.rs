//! `GET /v1/ws`: a WebSocket per connected client. The token comes in the `Authorization` header
//! or, for browsers, an `access_token` query parameter.
//!
//! Server → client: `{"type":"job","job":{…}}` when one of the subject's jobs is final,
//! `{"type":"event","event":{…}}` for its user events. Client → server: `{"type":"GET_SID"}` is
//! answered `{"type":"SID","sid":"…"}`; a JSON-RPC request or batch is answered like
//! `POST /v1/rpc`; anything else gets `{"type":"error","message":"…"}`.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;

use super::events::{Pushed, pushes_for};
use crate::auth::Claims;
use crate::error::ApiError;
use crate::state::AppState;

/// `?access_token=` for clients that cannot set headers.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    access_token: Option<String>,
}

/// Authenticate, then upgrade.
pub async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let claims = match (
        &query.access_token,
        headers.contains_key(axum::http::header::AUTHORIZATION),
    ) {
        (Some(token), false) => {
            let claims = state.auth.verify_token(token)?;
            state.limiter.check(&claims.sub)?;
            claims
        }
        _ => super::authenticate(&state, &headers)?,
    };
    Ok(upgrade
        .max_message_size(state.settings.body_limit)
        .on_upgrade(move |socket| session(state, claims, socket)))
}

async fn session(state: AppState, claims: Claims, socket: WebSocket) {
    let sid = uuid::Uuid::new_v4().to_string();
    tracing::debug!(%sid, subject = %claims.sub, "websocket connected");
    let (mut outgoing, mut incoming) = socket.split();
    let pushes = pushes_for(&state, claims.sub.clone());
    tokio::pin!(pushes);
    // Each client message is answered in its own task, so a slow JSON-RPC call delays neither
    // pushes nor other answers; answers come back through this channel (bounded: a client that
    // sends faster than it reads waits).
    let (answers, mut answered) = tokio::sync::mpsc::channel::<String>(64);
    let tasks = tokio_util::task::TaskTracker::new();
    loop {
        let reply = tokio::select! {
            pushed = pushes.next() => match pushed {
                Some(Pushed::Job(job)) => json!({"type": "job", "job": job}).to_string(),
                Some(Pushed::User(user)) => json!({"type": "event", "event": *user.event}).to_string(),
                None => break,
            },
            Some(answer) = answered.recv() => answer,
            message = incoming.next() => {
                let bytes = match message {
                    Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let (state, claims, sid, answers) = (state.clone(), claims.clone(), sid.clone(), answers.clone());
                tasks.spawn(async move {
                    if let Some(reply) = answer(&state, &claims, &sid, &bytes).await {
                        let _ = answers.send(reply).await;
                    }
                });
                continue;
            }
        };
        if outgoing.send(Message::Text(reply.into())).await.is_err() {
            break;
        }
    }
    tasks.close();
    tracing::debug!(%sid, "websocket closed");
}

/// The answer to one client message, if it needs one.
async fn answer(state: &AppState, claims: &Claims, sid: &str, bytes: &[u8]) -> Option<String> {
    let value: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    if let Some(kind) = value
        .as_ref()
        .and_then(|v| v.get("type"))
        .and_then(|t| t.as_str())
    {
        return Some(match kind {
            "GET_SID" => json!({"type": "SID", "sid": sid}).to_string(),
            other => json!({"type": "error", "message": format!("unknown message type `{other}`; send GET_SID or a JSON-RPC request")}).to_string(),
        });
    }
    let reply = super::rpc::answer(state, &HeaderMap::new(), claims, bytes).await?;
    Some(String::from_utf8_lossy(&reply).into_owned())
}
