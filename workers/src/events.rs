//! How workers push user events: the [`EventSink`] trait (implemented by the broker's
//! [`EventPublisher`] and by [`RecordingSink`] for tests), and best-effort publishing.
//!
//! Publishing is best effort: the data an event announces is stored first and can be fetched,
//! so a failed or slow publish is logged and never fails the job. Each publish is bounded by
//! [`PUBLISH_TIMEOUT`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use intercomm_core::events::EventPublisher;
use serde_json::Value;

/// How long one publish may take before it is given up (and logged).
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Somewhere user events go: `publish(user_id, event)` delivers `event` to `user_id`'s
/// `user.<user_id>.events` stream.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Deliver `event` to `user_id`.
    ///
    /// # Errors
    /// A description of why the event could not be delivered (logged by the caller).
    async fn publish(&self, user_id: &str, event: Value) -> Result<(), String>;
}

#[async_trait]
impl EventSink for EventPublisher {
    async fn publish(&self, user_id: &str, event: Value) -> Result<(), String> {
        EventPublisher::publish(self, user_id, &event)
            .await
            .map_err(|error| error.to_string())
    }
}

/// Publish `event` to `user_id`, logging (not returning) a failure or a timeout.
pub async fn publish_best_effort(sink: &dyn EventSink, user_id: &str, event: Value) {
    match tokio::time::timeout(PUBLISH_TIMEOUT, sink.publish(user_id, event)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(user = %user_id, %error, "user event not published; the data is stored");
        }
        Err(_) => {
            tracing::warn!(
                user = %user_id,
                timeout = ?PUBLISH_TIMEOUT,
                "user event not published in time; the data is stored"
            );
        }
    }
}

/// An [`EventSink`] that keeps what it is given, for tests and dry runs. It can be told to
/// fail, to check that publishing stays best effort.
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<(String, Value)>>,
    failing: std::sync::atomic::AtomicBool,
}

impl RecordingSink {
    /// An empty sink that accepts every event.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Make every later publish fail (`true`) or succeed again (`false`). Failed publishes are
    /// not recorded.
    pub fn set_failing(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every `(user_id, event)` published so far, in order.
    #[must_use]
    pub fn events(&self) -> Vec<(String, Value)> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The events published to `user_id`, in order.
    #[must_use]
    pub fn events_for(&self, user_id: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|(user, _)| user == user_id)
            .map(|(_, event)| event)
            .collect()
    }
}

#[async_trait]
impl EventSink for RecordingSink {
    async fn publish(&self, user_id: &str, event: Value) -> Result<(), String> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("the recording sink was told to fail".to_owned());
        }
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((user_id.to_owned(), event));
        Ok(())
    }
}
