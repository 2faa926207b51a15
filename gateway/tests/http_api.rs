//! The HTTP layer in-process (`app(state)` + `oneshot`), with a fake publisher in place of the
//! broker: every status code of CONTRACT §5, the 202 contract, idempotency, long-polling,
//! schema routes, JSON-RPC over HTTP, operations endpoints and reload.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use intercomm_core::schema::SchemaSet;
use intercomm_core::{CallOptions, Error, Settings};
use intercomm_gateway::auth::{AuthSettings, Authenticator, Secret, mint_hs256};
use intercomm_gateway::jobs::{Completion, JobStore, MemoryJobStore};
use intercomm_gateway::metrics::Metrics;
use intercomm_gateway::state::{Publisher, Routes};
use intercomm_gateway::{AppState, GatewaySettings, app};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &str = "test-secret-for-http-api";

/// What the fake broker does with the next submit.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Accept,
    Unroutable,
    Down,
}

#[derive(Debug)]
struct Submitted {
    method: String,
    params: Value,
    options: CallOptions,
}

struct FakePublisher {
    mode: Mutex<Mode>,
    submitted: Mutex<Vec<Submitted>>,
}

#[async_trait]
impl Publisher for FakePublisher {
    async fn submit(
        &self,
        method: &str,
        params: &RawValue,
        options: &CallOptions,
    ) -> intercomm_core::Result<()> {
        match *self.mode.lock().expect("lock") {
            Mode::Accept => {}
            Mode::Unroutable => {
                return Err(Error::Unroutable {
                    method: method.to_owned(),
                });
            }
            Mode::Down => return Err(Error::NotConnected),
        }
        self.submitted.lock().expect("lock").push(Submitted {
            method: method.to_owned(),
            params: serde_json::from_str(params.get()).expect("JSON params"),
            options: options.clone(),
        });
        Ok(())
    }

    async fn call(
        &self,
        method: &str,
        params: Option<&RawValue>,
        _: &CallOptions,
    ) -> intercomm_core::Result<Box<RawValue>> {
        match *self.mode.lock().expect("lock") {
            Mode::Accept => Ok(params.map_or_else(
                || RawValue::from_string("{}".into()).expect("JSON"),
                ToOwned::to_owned,
            )),
            Mode::Unroutable => Err(Error::Unroutable {
                method: method.to_owned(),
            }),
            Mode::Down => Err(Error::NotConnected),
        }
    }

    async fn notify(
        &self,
        _: &str,
        _: Option<&RawValue>,
        _: &CallOptions,
    ) -> intercomm_core::Result<()> {
        Ok(())
    }

    fn is_connected(&self) -> bool {
        *self.mode.lock().expect("lock") != Mode::Down
    }
}

struct TestApp {
    state: AppState,
    publisher: Arc<FakePublisher>,
    store: Arc<MemoryJobStore>,
    dir: PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_schemas(dir: &PathBuf) {
    std::fs::create_dir_all(dir).expect("temp dir");
    std::fs::write(
        dir.join("echo.json"),
        include_str!("../../schemas/echo.json"),
    )
    .expect("write");
    std::fs::write(
        dir.join("send_note.json"),
        json!({
            "method": "send_note",
            "worker": "notes",
            "summary": "Send a note",
            "params": {
                "type": "object",
                "required": ["sender", "body"],
                "properties": {
                    "sender": {"type": "string"},
                    "body": {"type": "string", "maxLength": 10}
                },
                "additionalProperties": false
            },
            "claimer": "/sender",
            "timeout_ms": 5000
        })
        .to_string(),
    )
    .expect("write");
    std::fs::write(
        dir.join("get_thing.json"),
        json!({
            "method": "get_thing",
            "worker": "things",
            "summary": "Read a thing",
            "params": {
                "type": "object",
                "required": ["thing_id"],
                "properties": {
                    "thing_id": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1}
                }
            },
            "http": {"verb": "GET", "path": "/v1/things/{thing_id}"}
        })
        .to_string(),
    )
    .expect("write");
}

fn test_app(body_limit: usize) -> TestApp {
    test_app_with(body_limit, 0)
}

fn test_app_with(body_limit: usize, rate_per_second: u32) -> TestApp {
    let dir =
        std::env::temp_dir().join(format!("intercomm-http-{}", uuid::Uuid::new_v4().simple()));
    write_schemas(&dir);
    let auth_settings = AuthSettings {
        hs256_secret: Some(Secret::new(SECRET.to_owned())),
        ..AuthSettings::default()
    };
    let mut settings = GatewaySettings::new(Settings::default(), auth_settings.clone());
    settings.schemas_dir = dir.clone();
    settings.body_limit = body_limit;
    settings.max_wait = Duration::from_secs(5);
    settings.rate_per_second = rate_per_second;
    settings.rate_burst = rate_per_second * 2;
    let routes = Routes::new(SchemaSet::load_dir(&dir).expect("schemas load")).expect("routes");
    let publisher = Arc::new(FakePublisher {
        mode: Mutex::new(Mode::Accept),
        submitted: Mutex::default(),
    });
    let store = Arc::new(MemoryJobStore::new(1000, Duration::from_secs(60)));
    let state = AppState::new(
        routes,
        publisher.clone(),
        store.clone() as Arc<dyn JobStore>,
        Authenticator::new(&auth_settings).expect("auth"),
        Metrics::new(),
        settings,
    );
    TestApp {
        state,
        publisher,
        store,
        dir,
    }
}

fn token(sub: &str) -> String {
    mint_hs256(
        &Secret::new(SECRET.to_owned()),
        sub,
        Duration::from_secs(300),
        None,
        None,
    )
    .expect("token")
}

impl TestApp {
    fn new() -> Self {
        test_app(1024 * 1024)
    }

    fn set_mode(&self, mode: Mode) {
        *self.publisher.mode.lock().expect("lock") = mode;
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = app(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, headers, body)
    }

    async fn post(
        &self,
        path: &str,
        sub: Option<&str>,
        body: Value,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(sub) = sub {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", token(sub)));
        }
        self.send(request.body(Body::from(body.to_string())).expect("request"))
            .await
    }

    async fn get(&self, path: &str, sub: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", token(sub)))
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }
}

fn is_problem(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct == "application/problem+json")
}

/// A missing or invalid token is 401 problem+json with a WWW-Authenticate challenge.
#[tokio::test]
async fn missing_or_bad_token_is_401() {
    let app = TestApp::new();
    let (status, headers, body) = app.post("/v1/jobs/echo", None, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(is_problem(&headers));
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(body["status"], 401);
    let request = Request::post("/v1/jobs/echo")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer not.a.jwt")
        .body(Body::from("{}"))
        .expect("request");
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        !body["detail"].as_str().unwrap_or("").contains("not.a.jwt"),
        "tokens are never echoed"
    );
}

/// An unknown method is 404; invalid JSON 400; wrong content type 415; over the limit 413.
#[tokio::test]
async fn request_errors_have_their_statuses() {
    let app = test_app(64);
    let (status, headers, body) = app.post("/v1/jobs/nope", Some("u1"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(is_problem(&headers));
    assert!(body["detail"].as_str().unwrap_or("").contains("nope"));

    let request = Request::post("/v1/jobs/echo")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", token("u1")))
        .body(Body::from("{not json"))
        .expect("request");
    let (status, headers, _) = app.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(is_problem(&headers));

    let request = Request::post("/v1/jobs/echo")
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::AUTHORIZATION, format!("Bearer {}", token("u1")))
        .body(Body::from("{}"))
        .expect("request");
    let (status, headers, _) = app.send(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(is_problem(&headers));

    let (status, headers, _) = app
        .post("/v1/jobs/echo", Some("u1"), json!({"big": "x".repeat(100)}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(is_problem(&headers));
}

/// Params that fail the schema are 422 with every violation's pointer; nothing is published.
#[tokio::test]
async fn schema_violations_are_422_with_pointers() {
    let app = TestApp::new();
    let (status, headers, body) = app
        .post(
            "/v1/jobs/send_note",
            Some("u1"),
            json!({"sender": "u1", "body": "far too long for ten", "extra": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(is_problem(&headers));
    let errors = body["errors"].as_array().expect("errors listed");
    assert!(errors.iter().any(|e| e["pointer"] == "/body"), "{body}");
    assert!(errors.len() >= 2, "every violation is listed: {body}");
    assert!(app.publisher.submitted.lock().expect("lock").is_empty());
}

/// A claimer that differs from the token's subject is 403.
#[tokio::test]
async fn claimer_must_be_the_tokens_subject() {
    let app = TestApp::new();
    let (status, headers, body) = app
        .post(
            "/v1/jobs/send_note",
            Some("mallory"),
            json!({"sender": "alice", "body": "hi"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(is_problem(&headers));
    assert!(body["detail"].as_str().unwrap_or("").contains("/sender"));
}

/// A valid submit is 202 with Location, Retry-After and the contract's body, published with the
/// subject, the job id and the schema's timeout.
#[tokio::test]
async fn valid_submit_is_accepted() {
    let app = TestApp::new();
    let (status, headers, body) = app
        .post(
            "/v1/jobs/send_note",
            Some("alice"),
            json!({"sender": "alice", "body": "hi"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job_id = body["job_id"].as_str().expect("job id").to_owned();
    assert_eq!(body["method"], "send_note");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["links"]["self"], format!("/v1/jobs/{job_id}"));
    assert_eq!(
        headers[header::LOCATION],
        format!("/v1/jobs/{job_id}").as_str()
    );
    assert!(headers.contains_key(header::RETRY_AFTER));
    let submitted = app.publisher.submitted.lock().expect("lock");
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].method, "send_note");
    assert_eq!(
        submitted[0].params,
        json!({"sender": "alice", "body": "hi"})
    );
    assert_eq!(submitted[0].options.id.as_deref(), Some(job_id.as_str()));
    assert_eq!(submitted[0].options.user.as_deref(), Some("alice"));
    assert_eq!(submitted[0].options.timeout, Some(Duration::from_secs(5)));
}

/// The same Idempotency-Key from the same subject returns the same job and publishes once.
#[tokio::test]
async fn idempotent_resubmit_returns_the_same_job() {
    let app = TestApp::new();
    let submit = || {
        let request = Request::post("/v1/jobs/echo")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", token("u1")))
            .header("idempotency-key", "order-42")
            .body(Body::from(r#"{"n":1}"#))
            .expect("request");
        app.send(request)
    };
    let (first_status, _, first) = submit().await;
    let (second_status, _, second) = submit().await;
    assert_eq!(first_status, StatusCode::ACCEPTED);
    assert_eq!(second_status, StatusCode::ACCEPTED);
    assert_eq!(first["job_id"], second["job_id"]);
    assert_eq!(app.publisher.submitted.lock().expect("lock").len(), 1);
}

/// Unroutable is 503 naming the method; a broker outage is 503 with Retry-After; neither
/// leaves a job behind.
#[tokio::test]
async fn broker_refusals_are_503() {
    let app = TestApp::new();
    app.set_mode(Mode::Unroutable);
    let (status, headers, body) = app.post("/v1/jobs/echo", Some("u1"), json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(is_problem(&headers));
    assert!(headers.contains_key(header::RETRY_AFTER));
    let detail = body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("echo") && detail.contains("no worker"),
        "{detail}"
    );
    app.set_mode(Mode::Down);
    let (status, headers, _) = app.post("/v1/jobs/echo", Some("u1"), json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert!(app.store.is_empty(), "refused jobs are not kept");
}

/// Only the owner reads a job; it shows queued with Retry-After, then its result.
#[tokio::test]
async fn jobs_are_read_by_their_owner_only() {
    let app = TestApp::new();
    let (_, _, accepted) = app
        .post("/v1/jobs/echo", Some("alice"), json!({"x": 1}))
        .await;
    let job_id = accepted["job_id"].as_str().expect("id").to_owned();
    let path = format!("/v1/jobs/{job_id}");
    let (status, headers, body) = app.get(&path, "alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "queued");
    assert!(headers.contains_key(header::RETRY_AFTER));
    let (status, headers, _) = app.get(&path, "bob").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(is_problem(&headers));
    app.store
        .complete(
            &job_id,
            Completion::Reply(Ok(RawValue::from_string(r#"{"x":1}"#.into()).expect("JSON"))),
        )
        .await
        .expect("store");
    let (status, headers, body) = app.get(&path, "alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["result"], json!({"x": 1}));
    assert!(!headers.contains_key(header::RETRY_AFTER));
}

/// `?wait=` returns as soon as the job is final; `Prefer: wait` turns the 202 into a 200.
#[tokio::test]
async fn long_poll_and_prefer_wait() {
    let app = TestApp::new();
    let (_, _, accepted) = app.post("/v1/jobs/echo", Some("alice"), json!({})).await;
    let job_id = accepted["job_id"].as_str().expect("id").to_owned();
    let store = app.store.clone();
    let completing = job_id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        store
            .complete(&completing, Completion::Expired)
            .await
            .expect("store");
    });
    let started = std::time::Instant::now();
    let (status, _, body) = app.get(&format!("/v1/jobs/{job_id}?wait=5"), "alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "expired");
    assert_eq!(body["error"]["code"], -32000);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "returned at completion, not at the wait's end"
    );

    // Prefer: wait=1 with nobody completing the job: the usual 202 after about a second.
    let request = Request::post("/v1/jobs/echo")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", token("alice")))
        .header("prefer", "wait=1")
        .body(Body::from("{}"))
        .expect("request");
    let (status, _, _) = app.send(request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// A schema's own route merges path and query parameters (coerced to the schema's types).
#[tokio::test]
async fn schema_routes_merge_path_and_query() {
    let app = TestApp::new();
    let (status, _, body) = app.get("/v1/things/t-1?limit=5", "u1").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    {
        let submitted = app.publisher.submitted.lock().expect("lock");
        assert_eq!(submitted[0].method, "get_thing");
        assert_eq!(submitted[0].params, json!({"thing_id": "t-1", "limit": 5}));
    }
    let (status, _, body) = app.get("/v1/things/t-1?limit=zero", "u1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, headers, _) = app.get("/v1/nothing/here", "u1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(is_problem(&headers));
}

/// JSON-RPC over HTTP follows the specification: results, errors, batches, notifications.
#[tokio::test]
async fn rpc_follows_the_json_rpc_specification() {
    let app = TestApp::new();
    let rpc = |body: &'static str| {
        let request = Request::post("/v1/rpc")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", token("alice")))
            .body(Body::from(body))
            .expect("request");
        app.send(request)
    };
    let (status, _, body) =
        rpc(r#"{"jsonrpc":"2.0","method":"echo","params":{"a":1},"id":1}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"jsonrpc":"2.0","result":{"a":1},"id":1}));
    let (_, _, body) = rpc(r#"{"jsonrpc":"2.0","method":"echo","params":"#).await;
    assert_eq!(body["error"]["code"], -32700);
    assert_eq!(body["id"], Value::Null);
    let (_, _, body) = rpc(r#"{"jsonrpc":"2.0","method":1,"id":2}"#).await;
    assert_eq!(body["error"]["code"], -32600);
    let (_, _, body) = rpc(r#"{"jsonrpc":"2.0","method":"nope","id":3}"#).await;
    assert_eq!(body["error"]["code"], -32601);
    let (_, _, body) =
        rpc(r#"{"jsonrpc":"2.0","method":"send_note","params":{"sender":"alice"},"id":4}"#).await;
    assert_eq!(body["error"]["code"], -32602);
    let (_, _, body) = rpc(
        r#"{"jsonrpc":"2.0","method":"send_note","params":{"sender":"bob","body":"x"},"id":5}"#,
    )
    .await;
    assert_eq!(body["error"]["code"], -32005);
    let (status, _, body) = rpc(r#"[{"jsonrpc":"2.0","method":"echo","params":{"b":2},"id":"x"},{"jsonrpc":"2.0","method":"echo","params":{}},{"foo":"boo"}]"#).await;
    assert_eq!(status, StatusCode::OK);
    let replies = body.as_array().expect("batch");
    assert_eq!(replies.len(), 2, "the notification is omitted: {body}");
    assert_eq!(
        replies[0],
        json!({"jsonrpc":"2.0","result":{"b":2},"id":"x"})
    );
    assert_eq!(replies[1]["error"]["code"], -32600);
    let (_, _, body) = rpc("[]").await;
    assert_eq!(body["error"]["code"], -32600);
    let (status, _, body) = rpc(r#"[{"jsonrpc":"2.0","method":"echo","params":{}}]"#).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.set_mode(Mode::Unroutable);
    let (_, _, body) = rpc(r#"{"jsonrpc":"2.0","method":"echo","params":{},"id":6}"#).await;
    assert_eq!(body["error"]["code"], -32001);
}

/// healthz, readyz (503 when the broker is away), metrics and openapi.json answer.
#[tokio::test]
async fn operations_endpoints_answer() {
    let app = TestApp::new();
    let get =
        |path: &'static str| app.send(Request::get(path).body(Body::empty()).expect("request"));
    let (status, _, _) = get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.post("/v1/jobs/echo", Some("u1"), json!({})).await;
    let (status, _, body) = get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().expect("text");
    assert!(
        text.contains("intercomm_jobs_accepted_total{method=\"echo\"} 1"),
        "{text}"
    );
    assert!(text.contains("intercomm_http_requests_total"), "{text}");
    let (status, _, body) = get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["openapi"], "3.1.0");
    assert!(
        body["paths"]["/v1/jobs/send_note"]["post"].is_object(),
        "{body}"
    );
    assert!(
        body["paths"]["/v1/things/{thing_id}"]["get"].is_object(),
        "{body}"
    );
    app.set_mode(Mode::Down);
    let (status, headers, body) = get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(is_problem(&headers));
    assert_eq!(body["broker_connected"], false);
    let (status, headers, _) = app
        .send(
            Request::put("/v1/rpc")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        is_problem(&headers),
        "axum's own rejections are problem+json too"
    );
}

/// A schema file added and reloaded serves its route; a broken file leaves the old routes.
#[tokio::test]
async fn reload_adds_routes_and_refuses_broken_files() {
    let app = TestApp::new();
    let (status, _, _) = app
        .post("/v1/jobs/late_method", Some("u1"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    std::fs::write(
        app.dir.join("late_method.json"),
        json!({"method": "late_method", "worker": "late", "summary": "added later", "params": {"type": "object"}}).to_string(),
    )
    .expect("write");
    assert_eq!(app.state.reload().expect("reloads"), 4);
    let (status, _, _) = app
        .post("/v1/jobs/late_method", Some("u1"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    std::fs::write(app.dir.join("broken.json"), "{ not json").expect("write");
    let error = app.state.reload().expect_err("broken file refused");
    assert!(format!("{error:#}").contains("broken.json"), "{error:#}");
    let (status, _, _) = app
        .post("/v1/jobs/late_method", Some("u1"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "the old routes keep serving");
}

/// Over the per-subject rate limit is 429 problem+json with Retry-After; other subjects are
/// not affected.
#[tokio::test]
async fn over_the_rate_limit_is_429() {
    let app = test_app_with(1024 * 1024, 1);
    for _ in 0..2 {
        let (status, _, _) = app.post("/v1/jobs/echo", Some("greedy"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, headers, body) = app.post("/v1/jobs/echo", Some("greedy"), json!({})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(is_problem(&headers));
    assert!(headers.contains_key(header::RETRY_AFTER));
    let (status, _, _) = app.post("/v1/jobs/echo", Some("polite"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// An Idempotency-Key reused for another method is 400 and publishes nothing; a replay with
/// `Prefer: wait` of a finished job is 200 with `Preference-Applied`.
#[tokio::test]
async fn idempotency_keys_belong_to_one_method() {
    let app = TestApp::new();
    let submit = |path: &'static str, body: &'static str, prefer: bool| {
        let mut request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", token("alice")))
            .header("idempotency-key", "k-1");
        if prefer {
            request = request.header("prefer", "wait=1");
        }
        app.send(request.body(Body::from(body)).expect("request"))
    };
    let (status, _, first) = submit("/v1/jobs/echo", "{}", false).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job_id = first["job_id"].as_str().expect("id").to_owned();
    let (status, headers, _) = submit("/v1/jobs/get_thing", r#"{"thing_id":"t"}"#, false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(is_problem(&headers));
    assert_eq!(app.publisher.submitted.lock().expect("lock").len(), 1);
    app.store
        .complete(
            &job_id,
            Completion::Reply(Ok(RawValue::from_string("{}".into()).expect("JSON"))),
        )
        .await
        .expect("store");
    let (status, headers, body) = submit("/v1/jobs/echo", "{}", true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["job_id"], job_id.as_str());
    assert!(headers.contains_key("preference-applied"));
}
