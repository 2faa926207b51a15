//! Submitting jobs (`POST /v1/jobs/{method}` and each schema's own `http` route) and reading them
//! (`GET /v1/jobs/{id}`, with `?wait=` long-polling).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use intercomm_core::CallOptions;
use intercomm_core::schema::{HttpVerb, JobDefinition};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{authenticate, read_body, read_json_and_raw, require_json, traceparent};
use crate::auth::Claims;
use crate::error::ApiError;
use crate::jobs::{Created, Job, JobLinks};
use crate::state::AppState;

/// Raw bytes in and out of routes whose schema marks a base64 property.
const OCTET_STREAM: &str = "application/octet-stream";

/// The longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// `POST /v1/jobs/{method}` with the params as the JSON body.
pub async fn submit_generic(
    State(state): State<AppState>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let definition = state
        .routes
        .load()
        .schemas
        .get(&method)
        .cloned()
        .ok_or_else(|| ApiError::UnknownMethod(method.clone()))?;
    let (params, raw) = read_json_and_raw(&state, &headers, body).await?;
    submit(&state, &headers, &claims, &definition, params, Some(raw)).await
}

/// A schema's own `http` route (the router's fallback): path and query parameters merge into
/// the params; anything else is 404.
pub async fn schema_route(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let Some(verb) = verb_of(&parts.method) else {
        return Err(ApiError::NoRoute(format!(
            "{} {}",
            parts.method,
            parts.uri.path()
        )));
    };
    let routes = state.routes.load();
    let Some((definition, path_params)) = routes.match_route(verb, parts.uri.path()) else {
        return Err(ApiError::NoRoute(format!(
            "{} {}",
            parts.method,
            parts.uri.path()
        )));
    };
    drop(routes);
    let claims = authenticate(&state, &parts.headers)?;
    let mut params = match verb {
        HttpVerb::Get | HttpVerb::Delete => Map::new(),
        HttpVerb::Post | HttpVerb::Put | HttpVerb::Patch => {
            let bytes = read_body(&state, body).await?;
            if is_octet_stream(&parts.headers) {
                let Some(property) = definition.binary_param() else {
                    return Err(ApiError::UnsupportedMediaType {
                        expected: "application/json",
                        got: "application/octet-stream".into(),
                    });
                };
                let mut map = Map::new();
                map.insert(property.to_owned(), Value::String(BASE64.encode(&bytes)));
                map
            } else if bytes.is_empty() {
                Map::new()
            } else {
                require_json(&parts.headers)?;
                match serde_json::from_slice(&bytes) {
                    Ok(Value::Object(map)) => map,
                    Ok(_) => {
                        return Err(ApiError::InvalidJson(
                            "the body must be a JSON object".into(),
                        ));
                    }
                    Err(error) => return Err(ApiError::InvalidJson(error.to_string())),
                }
            }
        }
    };
    if let Some(query) = parts.uri.query() {
        for (name, value) in form_pairs(query) {
            params.insert(name.clone(), definition.coerce_text(&name, &value));
        }
    }
    for (name, value) in path_params {
        // Path segments are percent-encoded (`carol%40example.com`); `+` stays a plus here.
        let value = definition.coerce_text(&name, &percent_decode(&value.replace('+', "%2B")));
        params.insert(name, value);
    }
    submit(
        &state,
        &parts.headers,
        &claims,
        &definition,
        Value::Object(params),
        None,
    )
    .await
}

/// The request body is raw bytes.
fn is_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(OCTET_STREAM))
}

/// The client asked for raw bytes back.
fn wants_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|mime| {
            mime.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(OCTET_STREAM))
        })
}

/// A finished job as raw bytes: its result's binary property decoded, or its error as a problem.
fn binary_answer(job: &Job, property: &str) -> Result<Response, ApiError> {
    if let Some(error) = &job.error {
        return Err(match error.error_code() {
            intercomm_core::ErrorCode::NotFound => ApiError::NotFound(error.message.clone()),
            _ => ApiError::JobFailed {
                code: error.code,
                message: error.message.clone(),
            },
        });
    }
    let text = job
        .result
        .as_ref()
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .and_then(|value| {
            value
                .get(property)
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .ok_or_else(|| ApiError::Internal(format!("the result has no `{property}`")))?;
    let bytes = BASE64
        .decode(text.as_bytes())
        .map_err(|e| ApiError::Internal(format!("the result's `{property}` is not base64: {e}")))?;
    let mut response = (StatusCode::OK, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
    Ok(response)
}

fn verb_of(method: &Method) -> Option<HttpVerb> {
    Some(match *method {
        // HEAD is GET without the body (axum drops it).
        Method::GET | Method::HEAD => HttpVerb::Get,
        Method::POST => HttpVerb::Post,
        Method::PUT => HttpVerb::Put,
        Method::PATCH => HttpVerb::Patch,
        Method::DELETE => HttpVerb::Delete,
        _ => return None,
    })
}

/// `application/x-www-form-urlencoded` pairs of a query string.
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Validate, authorise, record, publish, and answer 202 (or 200 when `Prefer: wait` saw the
/// job finish). `raw` is the request body the params were parsed from, when they are exactly
/// that body: it is published as it came, not serialised again.
async fn submit(
    state: &AppState,
    headers: &HeaderMap,
    claims: &Claims,
    definition: &Arc<JobDefinition>,
    params: Value,
    raw: Option<Box<RawValue>>,
) -> Result<Response, ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    definition
        .validate(&params)
        .map_err(|errors| ApiError::Validation {
            method: definition.method.clone(),
            errors,
        })?;
    if let Some(pointer) = &definition.claimer {
        let claimed = definition.claimed_user(&params).unwrap_or("");
        if claimed != claims.sub {
            return Err(ApiError::Forbidden {
                subject: claims.sub.clone(),
                claimed: claimed.to_owned(),
                pointer: pointer.clone(),
            });
        }
    }
    let idempotency_key = idempotency_key(headers)?;
    let binary = wants_octet_stream(headers)
        .then(|| definition.binary_result().map(str::to_owned))
        .flatten();
    // Bytes can only be sent once the job is done: wait as long as allowed.
    let wait = if binary.is_some() {
        Some(state.settings.max_wait)
    } else {
        prefer_wait(headers, state.settings.max_wait)
    };

    let job_id = intercomm_core::client::new_job_id();
    let job = Job::queued(
        job_id.clone(),
        definition.method.clone(),
        claims.sub.clone(),
        idempotency_key,
    );
    match state
        .store
        .create(job)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
    {
        Created::Existing(existing) => {
            if existing.method != definition.method {
                // A key names one request; reusing it for another method is a client bug.
                return Err(ApiError::BadRequest(format!(
                    "Idempotency-Key already used for a `{}` job; use a new key",
                    existing.method
                )));
            }
            // The same job again: nothing is published, and `Prefer: wait` applies as before.
            if let Some(wait) = wait
                && let Some(job) = wait_final(state, &existing.job_id, wait).await?
            {
                return Ok(waited(job, wait));
            }
            return Ok(accepted(&existing.job_id, &existing.method));
        }
        Created::New => {}
    }
    let raw = match raw {
        Some(raw) => raw,
        None => serde_json::value::to_raw_value(&params)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let options = CallOptions {
        timeout: Some(definition.timeout.unwrap_or(state.settings.job_timeout)),
        id: Some(job_id.clone()),
        user: Some(claims.sub.clone()),
        traceparent: traceparent(headers),
    };
    if let Err(error) = state
        .publisher
        .submit(&definition.method, &raw, &options)
        .await
    {
        let _ = state.store.forget(&job_id).await;
        if matches!(error, intercomm_core::Error::Unroutable { .. }) {
            state.metrics.unroutable(&definition.method);
        }
        tracing::warn!(method = %definition.method, %error, "submit refused");
        return Err(error.into());
    }
    state.metrics.accepted(&definition.method);
    state.metrics.set_pending(state.store.queued());
    tracing::debug!(method = %definition.method, %job_id, "job accepted");

    if let Some(wait) = wait
        && let Some(job) = wait_final(state, &job_id, wait).await?
    {
        if let Some(property) = &binary {
            return binary_answer(&job, property);
        }
        return Ok(waited(job, wait));
    }
    Ok(accepted(&job_id, &definition.method))
}

/// A job that finished within `Prefer: wait`: 200 with the job and `Preference-Applied`.
fn waited(job: Job, wait: Duration) -> Response {
    let mut response = (StatusCode::OK, axum::Json(job)).into_response();
    if let Ok(applied) = HeaderValue::from_str(&format!("wait={}", wait.as_secs())) {
        response.headers_mut().insert("preference-applied", applied);
    }
    response
}

#[derive(Serialize)]
struct JobAccepted<'a> {
    job_id: &'a str,
    method: &'a str,
    status: &'static str,
    links: JobLinks,
}

fn accepted(job_id: &str, method: &str) -> Response {
    let location = format!("/v1/jobs/{job_id}");
    let body = JobAccepted {
        job_id,
        method,
        status: "queued",
        links: JobLinks {
            this: location.clone(),
        },
    };
    let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?
        .trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// `Prefer: wait=<seconds>` (RFC 7240), capped at `max`.
fn prefer_wait(headers: &HeaderMap, max: Duration) -> Option<Duration> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|preference| {
            let (name, value) = preference.trim().split_once('=')?;
            (name.trim().eq_ignore_ascii_case("wait"))
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .map(|seconds| Duration::from_secs(seconds).min(max))
}

/// Wait up to `limit` for the job to be final; `None` if it is still queued then.
///
/// # Errors
/// When the store cannot be read.
pub async fn wait_final(
    state: &AppState,
    job_id: &str,
    limit: Duration,
) -> Result<Option<Job>, ApiError> {
    state
        .store
        .wait_final(job_id, limit)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// `?wait=<seconds>` on `GET /v1/jobs/{id}`.
#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    wait: Option<u64>,
}

/// `GET /v1/jobs/{id}`: the job's state, readable only by its owner.
pub async fn get_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    Query(query): Query<WaitQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let job = state
        .store
        .get(&job_id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .filter(|job| job.owner == claims.sub)
        .ok_or_else(|| ApiError::JobNotFound(job_id.clone()))?;
    let job = match query.wait {
        Some(seconds) if !job.status.is_final() => {
            let limit = Duration::from_secs(seconds).min(state.settings.max_wait);
            wait_final(&state, &job_id, limit).await?.unwrap_or(job)
        }
        _ => job,
    };
    let final_state = job.status.is_final();
    let mut response = job.into_response();
    if !final_state {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Query strings decode `+`, `%XX`, and keep malformed escapes as they are.
    #[test]
    fn query_pairs_are_decoded() {
        assert_eq!(
            form_pairs("limit=10&before=2026-01-01T00%3A00%3A00Z&q=a+b&bad=%zz&flag"),
            vec![
                ("limit".to_owned(), "10".to_owned()),
                ("before".to_owned(), "2026-01-01T00:00:00Z".to_owned()),
                ("q".to_owned(), "a b".to_owned()),
                ("bad".to_owned(), "%zz".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
    }

    /// `Prefer: wait=N` is read case-insensitively among other preferences and capped.
    #[test]
    fn prefer_wait_is_parsed_and_capped() {
        let mut headers = HeaderMap::new();
        headers.insert("prefer", HeaderValue::from_static("respond-async, Wait=5"));
        assert_eq!(
            prefer_wait(&headers, Duration::from_secs(60)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            prefer_wait(&headers, Duration::from_secs(2)),
            Some(Duration::from_secs(2))
        );
        headers.insert("prefer", HeaderValue::from_static("respond-async"));
        assert_eq!(prefer_wait(&headers, Duration::from_secs(60)), None);
    }
}
