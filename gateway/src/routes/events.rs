//! `GET /v1/events`: the authenticated subject's jobs reaching a final state, as Server-Sent
//! Events (`event: job`, `data:` the job resource), as they happen.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use super::authenticate;
use crate::error::ApiError;
use crate::state::AppState;

/// Stream the subject's completions; best effort (a reader too slow to keep up skips events,
/// and can always `GET` its jobs).
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let subject = claims.sub;
    let completions = BroadcastStream::new(state.store.completions());
    let events = completions.filter_map(move |completion| {
        let job = completion.ok()?;
        if job.owner != subject {
            return None;
        }
        let data = serde_json::to_string(&job).ok()?;
        Some(Ok(Event::default()
            .event("job")
            .id(job.job_id.clone())
            .data(data)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
