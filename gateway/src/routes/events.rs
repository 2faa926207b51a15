//! `GET /v1/events`: the authenticated subject's job completions (`event: job`) and user events
//! (`event: user`) as Server-Sent Events, as they happen.

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
use crate::jobs::Job;
use crate::push::UserEvent;
use crate::state::AppState;

/// Something pushed to one subject.
#[derive(Debug, Clone)]
pub enum Pushed {
    /// One of its jobs reached a final state.
    Job(Box<Job>),
    /// A user event for it.
    User(UserEvent),
}

/// The subject's pushes: its job completions and its user events, merged. Best effort: a
/// reader too slow to keep up skips some (and can always fetch what it missed).
pub fn pushes_for(
    state: &AppState,
    subject: String,
) -> impl Stream<Item = Pushed> + Send + 'static + use<> {
    let jobs_subject = subject.clone();
    let jobs = BroadcastStream::new(state.store.completions()).filter_map(move |job| {
        job.ok()
            .filter(|job| job.owner == jobs_subject)
            .map(|job| Pushed::Job(Box::new(job)))
    });
    let users = BroadcastStream::new(state.push.subscribe()).filter_map(move |event| {
        event
            .ok()
            .filter(|event| event.user == subject)
            .map(Pushed::User)
    });
    // A stopping gateway ends its streams rather than wait out its grace period on them.
    futures_util::StreamExt::take_until(jobs.merge(users), state.stopping())
}

/// Stream the subject's pushes as SSE.
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let events = pushes_for(&state, claims.sub).filter_map(|pushed| {
        let event = match pushed {
            Pushed::Job(job) => {
                let data = serde_json::to_string(&job).ok()?;
                Event::default()
                    .event("job")
                    .id(job.job_id.clone())
                    .data(data)
            }
            Pushed::User(user) => Event::default().event("user").data(user.event.to_string()),
        };
        Some(Ok(event))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
