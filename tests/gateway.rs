//! The gateway end to end: real HTTP on port 0, the real broker, real workers.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use intercomm_core::{Context, RpcError, Settings, Worker};
use intercomm_gateway::auth::{AuthSettings, Secret, mint_hs256};
use intercomm_gateway::{AppState, Application, GatewaySettings};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::helpers::{
    TestWorker, amqp_url, close_connection_from_broker, spawn_worker, unique, within,
};

const SECRET: &str = "e2e-gateway-secret";

/// A gateway serving `methods` (each `(method, worker)`), with its own schemas directory.
pub struct TestGateway {
    pub url: String,
    pub state: AppState,
    pub connection_name: String,
    pub dir: PathBuf,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestGateway {
    pub async fn start(methods: &[(&str, &str)]) -> Self {
        Self::start_with(methods, |_| {}).await
    }

    /// A gateway whose settings `adjust` changes first (its own schemas directory either way).
    pub async fn start_with(
        methods: &[(&str, &str)],
        adjust: impl FnOnce(&mut GatewaySettings),
    ) -> Self {
        let dir = std::env::temp_dir().join(unique("gateway_schemas"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for (method, worker) in methods {
            write_definition(&dir, method, worker);
        }
        let auth = AuthSettings {
            hs256_secret: Some(Secret::new(SECRET.into())),
            ..AuthSettings::default()
        };
        let core = Settings {
            amqp_url: amqp_url(),
            grace_period: Duration::from_secs(5),
            ..Settings::default()
        };
        let mut settings = GatewaySettings::new(core, auth);
        settings.schemas_dir = dir.clone();
        settings.job_timeout = Duration::from_secs(20);
        adjust(&mut settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port 0");
        let application = Application::build_with_listener(settings, listener)
            .await
            .expect("gateway builds");
        let url = format!("http://127.0.0.1:{}", application.port());
        let state = application.state();
        let connection_name = application.connection_name().to_owned();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(application.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            url,
            state,
            connection_name,
            dir,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn token(&self, sub: &str) -> String {
        mint_hs256(
            &Secret::new(SECRET.into()),
            sub,
            Duration::from_secs(600),
            None,
            None,
        )
        .expect("token")
    }

    pub async fn submit(&self, method: &str, sub: &str, params: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/jobs/{method}", self.url))
            .bearer_auth(self.token(sub))
            .json(&params)
            .send()
            .await
            .expect("the gateway answers")
    }

    pub async fn job(&self, job_id: &str, sub: &str, wait: u64) -> (reqwest::StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}/v1/jobs/{job_id}?wait={wait}", self.url))
            .bearer_auth(self.token(sub))
            .send()
            .await
            .expect("the gateway answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn rpc(&self, sub: &str, body: Value) -> (reqwest::StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/v1/rpc", self.url))
            .bearer_auth(self.token(sub))
            .json(&body)
            .send()
            .await
            .expect("the gateway answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            within(20, "the gateway to stop", task)
                .await
                .expect("task")
                .expect("clean stop");
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn write_definition(dir: &std::path::Path, method: &str, worker: &str) {
    let definition = json!({
        "method": method,
        "worker": worker,
        "summary": format!("{method} (test)"),
        "params": {"type": "object"},
        "timeout_ms": 20000
    });
    std::fs::write(dir.join(format!("{method}.json")), definition.to_string())
        .expect("write definition");
}

async fn echo_worker(name: &str, method: &str) -> TestWorker {
    spawn_worker(Worker::new(name).method(method.to_owned(), intercomm_workers::echo::echo)).await
}

/// Submit → 202 → the job ends `succeeded` with the worker's result; only its owner sees it.
#[tokio::test]
async fn submit_then_poll_until_succeeded() {
    let worker_name = unique("gwe");
    let method = format!("{worker_name}.echo");
    let _worker = echo_worker(&worker_name, &method).await;
    let gateway = TestGateway::start(&[(&method, &worker_name)]).await;
    let response = gateway
        .submit(&method, "alice", json!({"hello": "world"}))
        .await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let accepted: Value = response.json().await.expect("JSON");
    let job_id = accepted["job_id"].as_str().expect("id");
    assert_eq!(location, format!("/v1/jobs/{job_id}"));
    let (status, job) = gateway.job(job_id, "alice", 10).await;
    assert_eq!(status, 200);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], json!({"hello": "world"}));
    let (status, _) = gateway.job(job_id, "mallory", 0).await;
    assert_eq!(status, 404, "another subject cannot see the job");
}

/// A method with no worker bound is 503 naming it.
#[tokio::test]
async fn unroutable_method_is_503() {
    let method = format!("{}.echo", unique("nobody"));
    let gateway = TestGateway::start(&[(&method, "nobody_at_all")]).await;
    let response = gateway.submit(&method, "alice", json!({})).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.expect("problem");
    assert!(
        problem["detail"].as_str().unwrap_or("").contains(&method),
        "{problem}"
    );
}

/// The subject's completions arrive on the SSE stream as they happen.
#[tokio::test]
async fn events_stream_carries_completions() {
    let worker_name = unique("gwe");
    let method = format!("{worker_name}.echo");
    let _worker = echo_worker(&worker_name, &method).await;
    let gateway = TestGateway::start(&[(&method, &worker_name)]).await;
    let response = gateway
        .http()
        .get(format!("{}/v1/events", gateway.url))
        .bearer_auth(gateway.token("alice"))
        .send()
        .await
        .expect("stream opens");
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let accepted: Value = gateway
        .submit(&method, "alice", json!({"n": 7}))
        .await
        .json()
        .await
        .expect("JSON");
    let job_id = accepted["job_id"].as_str().expect("id").to_owned();
    let mut seen = String::new();
    within(10, "the completion event", async {
        while !seen.contains(&job_id) {
            let chunk = stream.next().await.expect("stream open").expect("bytes");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(seen.contains("event: job"), "{seen}");
    assert!(seen.contains("\"status\":\"succeeded\""), "{seen}");
}

/// `POST /v1/rpc` answers single requests and batches synchronously.
#[tokio::test]
async fn synchronous_rpc_single_and_batch() {
    let worker_name = unique("gwe");
    let method = format!("{worker_name}.echo");
    let _worker = echo_worker(&worker_name, &method).await;
    let gateway = TestGateway::start(&[(&method, &worker_name)]).await;
    let (status, body) = gateway
        .rpc(
            "alice",
            json!({"jsonrpc": "2.0", "method": method, "params": {"a": 1}, "id": 1}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"jsonrpc": "2.0", "result": {"a": 1}, "id": 1}));
    let (status, body) = gateway
        .rpc(
            "alice",
            json!([
                {"jsonrpc": "2.0", "method": method, "params": {"b": 2}, "id": "x"},
                {"jsonrpc": "2.0", "method": method, "params": {"c": 3}},
                {"jsonrpc": "2.0", "method": "missing.method", "id": "y"}
            ]),
        )
        .await;
    assert_eq!(status, 200);
    let replies = body.as_array().expect("batch");
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0]["result"], json!({"b": 2}));
    assert_eq!(replies[1]["error"]["code"], -32601);
}

/// Idempotent resubmit returns the same job; the job runs once.
#[tokio::test]
async fn idempotent_resubmit_runs_once() {
    let worker_name = unique("gwe");
    let method = format!("{worker_name}.echo");
    let worker = echo_worker(&worker_name, &method).await;
    let gateway = TestGateway::start(&[(&method, &worker_name)]).await;
    let submit = || {
        gateway
            .http()
            .post(format!("{}/v1/jobs/{method}", gateway.url))
            .bearer_auth(gateway.token("alice"))
            .header("idempotency-key", "pay-1")
            .json(&json!({"amount": 5}))
            .send()
    };
    let first: Value = submit().await.expect("answer").json().await.expect("JSON");
    let second: Value = submit().await.expect("answer").json().await.expect("JSON");
    assert_eq!(first["job_id"], second["job_id"]);
    let (_, job) = gateway
        .job(first["job_id"].as_str().expect("id"), "alice", 10)
        .await;
    assert_eq!(job["status"], "succeeded");
    assert_eq!(
        worker
            .stats
            .succeeded
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// A definition added while the gateway runs is served after a reload.
#[tokio::test]
async fn reloaded_schema_serves_the_new_route() {
    let worker_name = unique("gwe");
    let method = format!("{worker_name}.echo");
    let later = format!("{worker_name}.later");
    let _worker = spawn_worker(
        Worker::new(&worker_name)
            .method(method.clone(), intercomm_workers::echo::echo)
            .method(later.clone(), |_: Context, _: Value| async {
                Ok::<_, RpcError>(json!("later"))
            }),
    )
    .await;
    let gateway = TestGateway::start(&[(&method, &worker_name)]).await;
    assert_eq!(
        gateway.submit(&later, "alice", json!({})).await.status(),
        404
    );
    write_definition(&gateway.dir, &later, &worker_name);
    gateway.state.reload().expect("reload");
    let response = gateway.submit(&later, "alice", json!({})).await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("JSON");
    let (_, job) = gateway
        .job(accepted["job_id"].as_str().expect("id"), "alice", 10)
        .await;
    assert_eq!(job["result"], "later");
}

/// The broker closes the gateway's connection during load: submits get 202 or 503 (never a
/// 202 that is lost), /readyz recovers, and every accepted job ends final.
#[tokio::test]
async fn broker_side_close_loses_no_accepted_job() {
    let worker_name = unique("gwe");
    let method = format!("{worker_name}.echo");
    let worker = echo_worker(&worker_name, &method).await;
    let mut gateway = TestGateway::start(&[(&method, &worker_name)]).await;
    let load = {
        let http = gateway.http().clone();
        let url = format!("{}/v1/jobs/{method}", gateway.url);
        let token = gateway.token("alice");
        tokio::spawn(async move {
            let mut accepted = Vec::new();
            let mut refused = 0;
            for i in 0..300 {
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"i": i}))
                    .send()
                    .await
                    .expect("answer");
                match response.status().as_u16() {
                    202 => {
                        let body: Value = response.json().await.expect("JSON");
                        accepted.push(body["job_id"].as_str().expect("id").to_owned());
                    }
                    503 => refused += 1,
                    other => panic!("unexpected status {other}"),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (accepted, refused)
        })
    };
    // Watch /readyz through the outage: it must go false, then true again.
    let readiness = {
        let http = gateway.http().clone();
        let url = format!("{}/readyz", gateway.url);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                let status = http
                    .get(&url)
                    .send()
                    .await
                    .expect("answer")
                    .status()
                    .as_u16();
                if seen.last() != Some(&status) {
                    seen.push(status);
                }
                if seen.len() >= 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        })
    };
    // Cut the connection once the load is under way (some jobs done), not after a fixed time.
    within(20, "the load to get under way", async {
        while worker
            .stats
            .succeeded
            .load(std::sync::atomic::Ordering::Relaxed)
            < 20
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    close_connection_from_broker(&gateway.connection_name).await;
    let (accepted, refused) = within(60, "the load to finish", load)
        .await
        .expect("load task");
    assert!(!accepted.is_empty());
    for job_id in &accepted {
        let (status, job) = gateway.job(job_id, "alice", 20).await;
        assert_eq!(status, 200);
        assert_eq!(
            job["status"], "succeeded",
            "accepted job {job_id} ended {job}"
        );
    }
    let ready = within(20, "/readyz to recover", async {
        loop {
            let response = gateway
                .http()
                .get(format!("{}/readyz", gateway.url))
                .send()
                .await
                .expect("answer");
            if response.status() == 200 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(ready);
    let seen = within(30, "the readiness watcher", readiness)
        .await
        .expect("watcher");
    assert_eq!(
        seen,
        vec![200, 503, 200],
        "/readyz went false during the outage and back to true"
    );
    eprintln!(
        "accepted {}, refused {refused} during the outage",
        accepted.len()
    );
    gateway.stop().await;
}

/// Over the WebSocket, a slow JSON-RPC call delays neither GET_SID nor other answers.
#[tokio::test]
async fn websocket_answers_do_not_wait_for_slow_calls() {
    use tokio_tungstenite::tungstenite::Message;
    let worker_name = unique("gws");
    let slow = format!("{worker_name}.slow");
    let _worker = spawn_worker(Worker::new(&worker_name).method(
        slow.clone(),
        |_: Context, _: Value| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, RpcError>(json!("slow"))
        },
    ))
    .await;
    let gateway = TestGateway::start(&[(&slow, &worker_name)]).await;
    let url = format!(
        "{}/v1/ws?access_token={}",
        gateway.url.replace("http://", "ws://"),
        gateway.token("alice")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    use futures_util::SinkExt;
    let call = json!({"jsonrpc": "2.0", "method": slow, "params": {}, "id": 1}).to_string();
    socket.send(Message::Text(call.into())).await.expect("send");
    socket
        .send(Message::Text(r#"{"type":"GET_SID"}"#.into()))
        .await
        .expect("send");
    let started = std::time::Instant::now();
    let first = within(10, "the first answer", socket.next())
        .await
        .expect("open")
        .expect("frame");
    let Message::Text(first) = first else {
        panic!("expected text, got {first:?}")
    };
    let first: Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(first["type"], "SID", "GET_SID is answered first: {first}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not after the slow call"
    );
    let second = within(10, "the slow answer", socket.next())
        .await
        .expect("open")
        .expect("frame");
    let Message::Text(second) = second else {
        panic!("expected text, got {second:?}")
    };
    let second: Value = serde_json::from_str(&second).expect("JSON");
    assert_eq!(second["result"], "slow");
}

/// Header limits hold over real HTTP: a request with far too many headers is refused with 431
/// before any handler runs.
#[tokio::test]
async fn oversized_headers_are_refused() {
    let gateway = TestGateway::start(&[("sizes.echo", "sizes")]).await;
    let mut request = gateway
        .http()
        .post(format!("{}/v1/jobs/sizes.echo", gateway.url))
        .bearer_auth(gateway.token("alice"));
    for i in 0..200 {
        request = request.header(format!("x-filler-{i}"), "x");
    }
    let response = request.json(&json!({})).send().await.expect("an answer");
    assert_eq!(response.status(), 431, "too many headers");
}
