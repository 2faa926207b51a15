//! Faults with real processes: a worker process killed with SIGKILL mid-job, and what a gateway
//! process writes to its log.

use std::process::Stdio;
use std::time::Duration;

use intercomm_core::topology::{dead_letter_queue, worker_queue};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::gateway::TestGateway;
use crate::helpers::{
    amqp_url, delete_queues_blocking, send_signal, spawn_worker, submit_job, unique, within,
};

/// The `echo` worker's queue has a fixed name: one process test at a time uses it.
pub static ECHO_QUEUE: Mutex<()> = Mutex::const_new(());

/// Start `intercomm <args>` with its stderr read line by line into a channel.
pub fn intercomm(
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Child, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_intercomm"));
    command
        .args(args)
        .env("AMQP_URL", amqp_url())
        .env("INTERCOMM_LOG_FORMAT", "json")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("the binary starts");
    let (lines, received) = tokio::sync::mpsc::unbounded_channel();
    let stderr = child.stderr.take().expect("piped");
    tokio::spawn(async move {
        let mut reader = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            let _ = lines.send(line);
        }
    });
    (child, received)
}

/// Wait until a log line contains `needle`; returns every line read so far.
pub async fn wait_for_line(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    needle: &str,
    what: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    within(30, what, async {
        while let Some(line) = lines.recv().await {
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return;
            }
        }
        panic!("the process ended before {what}: {seen:#?}");
    })
    .await;
    seen
}

/// An echo worker in this process and a gateway process serving it (its log read into a
/// channel), with a token for `alice`.
pub struct EchoGateway {
    /// Keeps the worker (and its queues) alive while the gateway runs.
    pub worker: crate::helpers::TestWorker,
    pub method: String,
    pub listen: String,
    pub secret: String,
    pub token: String,
    /// The gateway's `schemas/`; the test removes it.
    pub dir: std::path::PathBuf,
    pub child: Child,
    pub log: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// The log up to "gateway listening".
    pub lines: Vec<String>,
}

impl EchoGateway {
    /// Start both; the names start with `prefix`, the gateway logs at `rust_log` (as JSON).
    pub async fn start(prefix: &str, rust_log: &str) -> Self {
        let worker_name = unique(prefix);
        let method = format!("{worker_name}.echo");
        let worker = spawn_worker(
            intercomm_core::Worker::new(&worker_name)
                .method(method.clone(), intercomm_workers::echo::echo),
        )
        .await;
        let dir = std::env::temp_dir().join(unique(&format!("{prefix}_schemas")));
        std::fs::create_dir_all(&dir).expect("dir");
        crate::gateway::write_definition(&dir, &method, &worker_name);
        let secret = format!("secret-{}", unique("s"));
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            listener.local_addr().expect("addr").port()
        };
        let listen = format!("127.0.0.1:{port}");
        let dir_text = dir.display().to_string();
        let (child, mut log) = intercomm(
            &["gateway", "--listen", &listen, "--schemas", &dir_text],
            &[("INTERCOMM_JWT_SECRET", &secret), ("RUST_LOG", rust_log)],
        );
        let lines = wait_for_line(&mut log, "gateway listening", "the gateway to listen").await;
        let token = intercomm_gateway::auth::mint_hs256(
            &intercomm_gateway::auth::Secret::new(secret.clone()),
            "alice",
            Duration::from_secs(60),
            None,
            None,
        )
        .expect("token");
        Self {
            worker,
            method,
            listen,
            secret,
            token,
            dir,
            child,
            log,
            lines,
        }
    }
}

/// SIGKILL of a worker process while it runs jobs: the other process of the same worker
/// finishes them, and every accepted job ends `succeeded` exactly once.
#[tokio::test]
async fn killed_worker_process_loses_no_job() {
    let _only_us = ECHO_QUEUE.lock().await;
    let envs = [("INTERCOMM_PREFETCH", "4"), ("RUST_LOG", "info")];
    let (mut doomed, mut doomed_log) = intercomm(&["worker", "echo"], &envs);
    wait_for_line(&mut doomed_log, "worker ready", "the first worker process").await;
    let metrics_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        listener.local_addr().expect("addr").port()
    };
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let (mut survivor, mut survivor_log) = intercomm(
        &["worker", "echo", "--metrics-listen", &metrics_listen],
        &envs,
    );
    wait_for_line(
        &mut survivor_log,
        "worker ready",
        "the second worker process",
    )
    .await;

    let gateway = TestGateway::start(&[("sleep", "echo")]).await;
    let mut accepted = Vec::new();
    for _ in 0..24 {
        let response = gateway.submit("sleep", "alice", json!({"ms": 400})).await;
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.expect("JSON");
        accepted.push(body["job_id"].as_str().expect("id").to_owned());
    }
    // Wait until both processes hold their 4 jobs (24 - 8 left ready), then kill one outright.
    within(10, "both worker processes to be mid-job", async {
        while crate::shutdown::messages_in(&worker_queue("echo")).await > 16 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    doomed.start_kill().expect("SIGKILL");
    let status = within(10, "the killed process to exit", doomed.wait())
        .await
        .expect("wait");
    assert!(!status.success(), "it was killed, not stopped");

    for job_id in &accepted {
        let (status, job) = gateway.job(job_id, "alice", 30).await;
        assert_eq!(status, 200);
        assert_eq!(job["status"], "succeeded", "job {job_id} ended {job}");
        assert_eq!(job["result"], json!({"slept_ms": 400}));
    }
    let metrics = reqwest::get(format!("http://{metrics_listen}/metrics"))
        .await
        .expect("the worker serves /metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"intercomm_worker_jobs_total{method="sleep",outcome="succeeded"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("intercomm_worker_handler_duration_seconds"),
        "{metrics}"
    );
    survivor.start_kill().expect("SIGKILL");
    let _ = survivor.wait().await;
    delete_queues_blocking(vec![worker_queue("echo"), dead_letter_queue("echo")]);
}

/// A gateway process logs requests and failures at debug level without ever writing a token or
/// its signing secret.
#[tokio::test]
async fn gateway_logs_hold_no_token_or_secret() {
    let EchoGateway {
        method,
        listen,
        secret,
        token,
        child: mut gateway,
        mut log,
        mut lines,
        dir,
        worker: _worker,
        ..
    } = EchoGateway::start("logs", "debug,lapin=off,hyper=off").await;
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    let job_id = &submit_job(&http, &base, &token, &method, json!({"x": 1})).await;
    let job: Value = http
        .get(format!("{base}/v1/jobs/{job_id}?wait=5"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(job["status"], "succeeded");
    // A bad token and a token for a forbidden action must not be logged either.
    let refused = http
        .post(format!("{base}/v1/jobs/{method}"))
        .bearer_auth(format!("{token}x"))
        .json(&json!({}))
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 401);
    gateway.start_kill().expect("stop");
    let _ = gateway.wait().await;
    while let Ok(line) = log.try_recv() {
        lines.push(line);
    }
    let signature = token.rsplit('.').next().expect("a JWT has a signature");
    for line in &lines {
        assert!(
            !line.contains(signature),
            "a token leaked into the log: {line}"
        );
        assert!(
            !line.contains(&secret),
            "the secret leaked into the log: {line}"
        );
    }
    assert!(lines.len() > 1, "the gateway logged something: {lines:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gateway stopped by SIGTERM after serving jobs shuts down without an error in its log: its
/// channels are closed before its connections (a dropped lapin channel closes in the background,
/// races the connection's close, and lapin logs that as a connection error).
#[tokio::test]
async fn gateway_stops_cleanly_after_traffic() {
    let EchoGateway {
        method,
        listen,
        token,
        child: mut gateway,
        mut log,
        mut lines,
        dir,
        worker: _worker,
        ..
    } = EchoGateway::start("stop", "info").await;
    let http = reqwest::Client::new();
    for i in 0..20 {
        let answer = http
            .post(format!("http://{listen}/v1/jobs/{method}"))
            .bearer_auth(&token)
            .header("prefer", "wait=5")
            .json(&json!({ "i": i }))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200, "job {i} finished");
    }
    drop(http);
    send_signal(&gateway, "-TERM");
    let status = within(30, "the gateway to stop", gateway.wait())
        .await
        .expect("exit status");
    while let Some(line) = log.recv().await {
        lines.push(line);
    }
    assert!(status.success(), "exit {status}: {lines:#?}");
    let errors: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains(r#""level":"ERROR""#))
        .collect();
    assert!(errors.is_empty(), "errors while stopping: {errors:#?}");
    assert!(
        lines.iter().any(|line| line.contains("gateway stopping")),
        "{lines:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGHUP (meant for gateways, which reload `schemas/` on it) neither ends a worker process nor
/// stops it serving; SIGTERM still stops it cleanly.
#[tokio::test]
async fn worker_process_outlives_sighup() {
    let _only_us = ECHO_QUEUE.lock().await;
    let (mut worker, mut log) = intercomm(&["worker", "echo"], &[("RUST_LOG", "info")]);
    wait_for_line(&mut log, "worker ready", "the worker process to start").await;
    send_signal(&worker, "-HUP");
    wait_for_line(&mut log, "SIGHUP ignored", "the worker to log the SIGHUP").await;
    assert!(
        worker.try_wait().expect("status").is_none(),
        "the worker still runs after SIGHUP"
    );
    let client = crate::helpers::client().await;
    let params = serde_json::value::to_raw_value(&json!({"after": "SIGHUP"})).expect("JSON");
    let answer = within(
        10,
        "the worker to answer after SIGHUP",
        client.call_raw(
            "echo",
            Some(&params),
            &intercomm_core::CallOptions::default(),
        ),
    )
    .await
    .expect("echo answered");
    assert_eq!(
        serde_json::from_str::<Value>(answer.get()).expect("JSON"),
        json!({"after": "SIGHUP"})
    );
    client.close().await;
    send_signal(&worker, "-TERM");
    let status = within(30, "the worker to stop after SIGTERM", worker.wait())
        .await
        .expect("exit status");
    assert!(status.success(), "SIGTERM stops it cleanly: {status}");
    delete_queues_blocking(vec![worker_queue("echo"), dead_letter_queue("echo")]);
}

/// `intercomm worker echo --schemas DIR` checks params against DIR's `echo.json` before the
/// handler runs: a call the definition refuses is answered -32602, a valid one is echoed.
#[tokio::test]
async fn worker_process_checks_params_against_its_schemas() {
    let _only_us = ECHO_QUEUE.lock().await;
    let dir = std::env::temp_dir().join(unique("worker_schemas"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let definition = json!({
        "method": "echo",
        "worker": "echo",
        "summary": "echo, with a required field (test)",
        "params": {"type": "object", "required": ["ping"]}
    });
    std::fs::write(dir.join("echo.json"), definition.to_string()).expect("write");
    let schemas = dir.display().to_string();
    let (mut worker, mut log) = intercomm(
        &["worker", "echo", "--schemas", &schemas],
        &[("RUST_LOG", "info")],
    );
    wait_for_line(
        &mut log,
        "params are checked",
        "the worker to load its schemas",
    )
    .await;
    wait_for_line(&mut log, "worker ready", "the worker process to start").await;
    let client = crate::helpers::client().await;
    let call = |params: Value| {
        let client = client.clone();
        async move {
            let raw = serde_json::value::to_raw_value(&params).expect("JSON");
            within(
                10,
                "the worker to answer",
                client.call_raw("echo", Some(&raw), &intercomm_core::CallOptions::default()),
            )
            .await
        }
    };
    let refused = call(json!({"pong": 1}))
        .await
        .expect_err("ping is required");
    assert!(
        matches!(&refused, intercomm_core::Error::Remote(e) if e.code == -32602),
        "{refused}"
    );
    let answer = call(json!({"ping": 1}))
        .await
        .expect("valid params are echoed");
    assert_eq!(
        serde_json::from_str::<Value>(answer.get()).expect("JSON"),
        json!({"ping": 1})
    );
    client.close().await;
    send_signal(&worker, "-TERM");
    let status = within(30, "the worker to stop", worker.wait())
        .await
        .expect("exit status");
    assert!(status.success(), "{status}");
    delete_queues_blocking(vec![worker_queue("echo"), dead_letter_queue("echo")]);
    let _ = std::fs::remove_dir_all(&dir);
}
