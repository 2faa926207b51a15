//! intercomm-gateway: the REST gateway. It validates each request against its method's JSON
//! Schema, checks the bearer token, answers `202 Accepted` with a job id once the broker
//! confirmed the job, and tracks results (CONTRACT §4 and §5).
//!
//! # Layout
//! - [`startup`]: [`Application`] — build from settings, serve until stopped, SIGHUP reload.
//! - [`settings`]: every gateway setting with its default and environment variable.
//! - [`state`]: [`AppState`], the shared handle; [`state::Routes`], the table built from
//!   `schemas/`; [`state::Publisher`], the broker side.
//! - [`routes`]: the HTTP handlers (`app(state)` assembles them).
//! - [`auth`]: bearer tokens (JWT: HS256, RS256, ES256).
//! - [`token_cache`]: tokens verified recently, re-checked only for expiry.
//! - [`jobs`]: the job store trait and the bounded in-memory store.
//! - [`redis_store`]: the job store several gateways share (`INTERCOMM_JOB_STORE=redis://…`).
//! - [`replies`]: reply events recorded in the job store before they are acknowledged.
//! - [`error`]: [`ApiError`] and its mapping to problem+json.
//! - [`metrics`]: Prometheus metrics.
//! - [`openapi`]: the OpenAPI 3.1 document generated from `schemas/`.
//! - [`ratelimit`]: the per-subject rate limit (429).
//! - [`push`]: user events from `inter_comm.events`, fanned out to connected users.
//! - [`console`]: the web console at `/console` (embedded assets, routes with worker binding).

pub mod auth;
pub mod console;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod push;
pub mod ratelimit;
pub mod redis_store;
pub mod replies;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod token_cache;

pub use error::ApiError;
pub use routes::app;
pub use settings::GatewaySettings;
pub use startup::Application;
pub use state::AppState;
