//! `ApiError`: every failure the HTTP API reports, and its one mapping to an RFC 9457
//! `application/problem+json` answer.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use intercomm_core::schema::ValidationError;
use serde::Serialize;

use crate::auth::AuthError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What went wrong, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or bad bearer token (401).
    #[error("{0}")]
    Unauthorized(#[from] AuthError),
    /// The token's subject may not act for the user the request names (403).
    #[error("the token's subject `{subject}` may not act for `{claimed}` ({pointer})")]
    Forbidden {
        /// The token's `sub`.
        subject: String,
        /// The user the params name.
        claimed: String,
        /// Where in params.
        pointer: String,
    },
    /// No job definition for the method (404).
    #[error("no job method `{0}` is defined")]
    UnknownMethod(String),
    /// No such job, or not the caller's (404).
    #[error("no job `{0}` (or it is not yours, or it is past retention)")]
    JobNotFound(String),
    /// The job answered that what it names does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The job failed; its JSON-RPC error is in the detail (502).
    #[error("the job failed: {message} ({code})")]
    JobFailed {
        /// The JSON-RPC error code.
        code: i32,
        /// Its message.
        message: String,
    },
    /// No route (404).
    #[error("no route for {0}")]
    NoRoute(String),
    /// The body is not JSON (400).
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    /// A header or query parameter is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is not `application/json` (415).
    #[error("expected content type {expected}, got {got}")]
    UnsupportedMediaType {
        /// What the route accepts.
        expected: &'static str,
        /// What came.
        got: String,
    },
    /// The body is over the limit (413).
    #[error("the body is over the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The params fail the method's schema (422).
    #[error("the params do not match the schema of `{method}`")]
    Validation {
        /// The method.
        method: String,
        /// Every violation.
        errors: Vec<ValidationError>,
    },
    /// Over the per-subject rate limit (429).
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited {
        /// When to retry.
        retry_after_secs: u64,
    },
    /// No worker queue is bound for the method (503).
    #[error("no worker is bound for method `{0}`: start a worker that serves it")]
    Unroutable(String),
    /// The broker is unreachable or refused the job (503).
    #[error("the broker could not take the job right now: {0}")]
    Unavailable(String),
    /// The gateway is shutting down (503).
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// A bug or an unexpected failure (500); details stay in the log.
    #[error("internal error")]
    Internal(String),
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [ValidationError]>,
}

impl ApiError {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::UnknownMethod(_)
            | Self::JobNotFound(_)
            | Self::NoRoute(_)
            | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::JobFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::InvalidJson(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unroutable(_) | Self::Unavailable(_) | Self::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable problem type URI (relative: resolved against the gateway's base URL).
    #[must_use]
    pub fn problem_type(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "/problems/unauthorized",
            Self::Forbidden { .. } => "/problems/forbidden",
            Self::UnknownMethod(_) => "/problems/unknown-method",
            Self::JobNotFound(_) => "/problems/job-not-found",
            Self::NoRoute(_) => "/problems/no-route",
            Self::NotFound(_) => "/problems/not-found",
            Self::JobFailed { .. } => "/problems/job-failed",
            Self::InvalidJson(_) => "/problems/invalid-json",
            Self::BadRequest(_) => "/problems/bad-request",
            Self::UnsupportedMediaType { .. } => "/problems/unsupported-media-type",
            Self::PayloadTooLarge { .. } => "/problems/payload-too-large",
            Self::Validation { .. } => "/problems/validation",
            Self::RateLimited { .. } => "/problems/rate-limited",
            Self::Unroutable(_) => "/problems/unroutable",
            Self::Unavailable(_) | Self::ShuttingDown => "/problems/unavailable",
            Self::Internal(_) => "/problems/internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "Unauthorized",
            Self::Forbidden { .. } => "Forbidden",
            Self::UnknownMethod(_) => "Unknown method",
            Self::JobNotFound(_) => "Job not found",
            Self::NoRoute(_) | Self::NotFound(_) => "Not found",
            Self::JobFailed { .. } => "Job failed",
            Self::InvalidJson(_) => "Invalid JSON",
            Self::BadRequest(_) => "Bad request",
            Self::UnsupportedMediaType { .. } => "Unsupported media type",
            Self::PayloadTooLarge { .. } => "Payload too large",
            Self::Validation { .. } => "Invalid params",
            Self::RateLimited { .. } => "Too many requests",
            Self::Unroutable(_) => "Unroutable",
            Self::Unavailable(_) | Self::ShuttingDown => "Service unavailable",
            Self::Internal(_) => "Internal error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(details) = &self {
            tracing::error!(%details, "internal error");
        }
        let errors = match &self {
            Self::Validation { errors, .. } => Some(errors.as_slice()),
            _ => None,
        };
        let problem = Problem {
            kind: self.problem_type(),
            title: self.title(),
            status: status.as_u16(),
            detail: self.to_string(),
            errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            Self::Unauthorized(error) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(error.challenge()),
                );
            }
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unroutable(_) | Self::Unavailable(_) | Self::ShuttingDown => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

impl From<intercomm_core::Error> for ApiError {
    fn from(error: intercomm_core::Error) -> Self {
        match error {
            intercomm_core::Error::Unroutable { method } => Self::Unroutable(method),
            intercomm_core::Error::NotConnected => {
                Self::Unavailable("not connected to the broker".into())
            }
            intercomm_core::Error::PublishNacked => {
                Self::Unavailable("the broker refused the job".into())
            }
            intercomm_core::Error::Amqp(error) => Self::Unavailable(error.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}
