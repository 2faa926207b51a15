//! The errors of intercomm-core, one enum for the whole crate.

use std::time::Duration;

use crate::protocol::RpcError;

/// What can go wrong talking JSON-RPC over RabbitMQ.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No queue is bound for the method: the broker returned the job (mandatory flag).
    #[error("no worker queue is bound for method `{method}` (unroutable)")]
    Unroutable {
        /// The method (= routing key) that had no binding.
        method: String,
    },
    /// The broker refused the publish (negative publisher confirm).
    #[error("the broker refused the job (publisher confirm nack)")]
    PublishNacked,
    /// The reply did not arrive before the deadline.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The worker answered with a JSON-RPC error.
    #[error("remote error: {0}")]
    Remote(RpcError),
    /// The client has no live connection to the broker right now (it is reconnecting).
    #[error("not connected to the broker")]
    NotConnected,
    /// The reply could not be read as a JSON-RPC response.
    #[error("malformed reply: {0}")]
    MalformedReply(String),
    /// A queue or exchange exists with arguments different from the ones wanted; nothing was
    /// changed.
    #[error(
        "`{name}` exists with {argument} = {existing}, but {wanted} was wanted; \
         delete it (after draining it) or set the matching option, e.g. {hint}"
    )]
    TopologyMismatch {
        /// The queue or exchange whose arguments differ.
        name: String,
        /// The argument that differs, e.g. `x-queue-type`.
        argument: String,
        /// The value the broker has.
        existing: String,
        /// The value this process asked for.
        wanted: String,
        /// How to make them agree.
        hint: String,
    },
    /// A setting has a value that cannot be used.
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The setting (environment variable) name.
        name: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// A name breaks the contract's naming rules (`[a-z0-9_]+` for workers, `[a-z][a-z0-9_.]*`
    /// for methods).
    #[error("invalid {kind} name `{name}`: must match {pattern}")]
    InvalidName {
        /// `worker` or `method`.
        kind: &'static str,
        /// The offending name.
        name: String,
        /// The rule it breaks.
        pattern: &'static str,
    },
    /// Params could not be serialised.
    #[error("params could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    /// Any other AMQP failure.
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
}

impl Error {
    /// True when retrying later may succeed (the broker is away or refused for now).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::NotConnected | Self::PublishNacked | Self::Amqp(_)
        )
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
