//! Connecting to the broker: a named connection (so operators and tests can find it), and
//! reconnecting with capped exponential backoff.
//!
//! intercomm does its own recovery rather than lapin's: each long-lived part (a worker, an
//! [`RpcClient`](crate::RpcClient)) runs a loop of "connect, declare what it needs, work until the
//! connection dies", which also redeclares client-named queues that lapin's recovery cannot.

use std::future::Future;
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

use crate::config::redact_url;
use crate::error::Result;

/// The first wait after a failed connection attempt.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between connection attempts.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How to reach the broker, and under which connection name.
#[derive(Clone, Debug)]
pub struct Connector {
    url: String,
    name: String,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl Connector {
    /// A connector for `url`, naming its connections `name` (shown by `rabbitmqctl
    /// list_connections client_properties` and in the management UI).
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            name: name.into(),
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }

    /// Set the backoff bounds between reconnection attempts.
    #[must_use]
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// The connection name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The broker URL with the password hidden.
    #[must_use]
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// One connection attempt.
    ///
    /// # Errors
    /// When the broker cannot be reached or refuses the login.
    pub async fn connect(&self) -> Result<Connection> {
        let properties =
            ConnectionProperties::default().with_connection_name(self.name.as_str().into());
        Ok(Connection::connect(&self.url, properties).await?)
    }

    /// Connect, retrying with backoff until it works or `stop` completes (then `None`).
    pub async fn connect_until<F: Future<Output = ()>>(&self, stop: F) -> Option<Connection> {
        let mut backoff = Backoff::new(self.backoff_min, self.backoff_max);
        tokio::pin!(stop);
        loop {
            match self.connect().await {
                Ok(connection) => return Some(connection),
                Err(error) => {
                    let wait = backoff.next_delay();
                    tracing::warn!(
                        connection = %self.name,
                        url = %self.redacted_url(),
                        %error,
                        retry_in = ?wait,
                        "broker unreachable"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = &mut stop => return None,
                    }
                }
            }
        }
    }
}

/// Capped exponential backoff with jitter, so that many processes do not reconnect in step.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Backoff starting at `min`, doubling up to `max`.
    #[must_use]
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { next: min, max }
    }

    /// The next wait: the current step plus up to 25 % jitter.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter_range = base.as_millis() as u64 / 4;
        let jitter = if jitter_range == 0 {
            0
        } else {
            u64::from(uuid::Uuid::new_v4().as_u128() as u32) % jitter_range
        };
        base + Duration::from_millis(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let delays: Vec<_> = (0..5).map(|_| backoff.next_delay()).collect();
        let bases = [100, 200, 400, 400, 400];
        for (delay, base) in delays.iter().zip(bases) {
            let ms = delay.as_millis() as u64;
            assert!(
                ms >= base && ms <= base + base / 4,
                "{ms} not within [{base}, +25%]"
            );
        }
    }
}
