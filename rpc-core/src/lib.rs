//! intercomm-core: the JSON-RPC 2.0 runtime over RabbitMQ that every other part of intercomm
//! builds on (`../shared/CONTRACT.md` §1–§3).
//!
//! # Layout
//! - [`protocol`]: JSON-RPC requests, notifications, batches and responses; the error codes.
//! - [`envelope`]: AMQP properties and headers of jobs and replies.
//! - [`events`]: user events on `inter_comm.events` ([`events::EventPublisher`]).
//! - [`topology`]: exchange and queue names, idempotent declarations, mismatch explanations.
//! - [`config`]: settings with defaults and `INTERCOMM_*` overrides.
//! - [`connection`]: named connections and reconnect backoff.
//! - [`dlq`]: listing and replaying dead letters (for operators).
//! - `acks` (private): a channel's acknowledgements, consecutive ones coalesced; [`Receipt`].
//! - [`client`]: [`RpcClient`] — `call`, `submit`, `notify` with confirms and mandatory publishes.
//! - `pending` (private): the client's book of outstanding correlation ids.
//! - [`handler`]: [`Context`] and typed handlers.
//! - [`metrics`]: a worker process's Prometheus metrics.
//! - [`worker`]: [`Worker`] — consume, dispatch, reply, ack; recovery and graceful shutdown.
//! - [`schema`]: job definitions (`schemas/<method>.json`): loading, checking, params validation.
//! - [`shutdown`]: Ctrl-C / SIGTERM.
//! - [`telemetry`]: logging set-up and W3C trace context.
//! - [`error`]: [`Error`], the crate's one error enum.

mod acks;
pub mod client;
pub mod config;
pub mod connection;
pub mod dlq;
pub mod envelope;
pub mod error;
pub mod events;
pub mod handler;
pub mod metrics;
mod pending;
pub mod protocol;
pub mod schema;
pub mod shutdown;
pub mod telemetry;
pub mod topology;
pub mod worker;

pub use acks::Receipt;
pub use client::{CallOptions, ReplyEvent, RpcClient, RpcClientBuilder};
pub use config::Settings;
pub use connection::Connector;
pub use error::{Error, Result};
pub use handler::{Context, Handler};
pub use pending::Reply;
pub use protocol::{ErrorCode, RpcError};
pub use topology::QueueType;
pub use worker::{Worker, WorkerState, WorkerStats};
