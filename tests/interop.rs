//! Interoperability: the Python (pika) examples in `examples/python/`, written from the contract
//! alone, against intercomm's Rust worker, `RpcClient` and gateway, on the real broker.
//!
//! These tests need `python3` with pika (`pip install -r examples/python/requirements.txt`). Where
//! it is missing they say so and pass, except in CI (`CI` set), where they fail.

use std::path::PathBuf;
use std::process::{ExitStatus, Output, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use intercomm_core::topology::{dead_letter_queue, worker_queue};
use intercomm_core::{CallOptions, Error, Worker};
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::gateway::TestGateway;
use crate::helpers::{
    RawCaller, amqp_url, client, delete_queues_blocking, raw_channel, send_signal, spawn_worker,
    unique, within,
};

/// `examples/python/` of this repository.
fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/python")
}

/// Whether `python3` can import pika. Outside CI a missing one skips the calling test (with a
/// line saying why); in CI it fails the test, because `.ci/run` installs it.
async fn python_with_pika(test: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import pika"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let why = match tokio::time::timeout(Duration::from_secs(30), probe).await {
        Ok(Ok(output)) if output.status.success() => return true,
        Ok(Ok(output)) => String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or("import pika failed")
            .to_owned(),
        Ok(Err(error)) => format!("cannot run python3: {error}"),
        Err(_) => "python3 -c 'import pika' did not finish within 30 s".to_owned(),
    };
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test}: python3 with pika is required in CI ({why}); \
             `python3 -m pip install -r examples/python/requirements.txt`"
        );
    }
    eprintln!(
        "skipping {test}: python3 with pika is not available ({why}); \
         `pip install -r examples/python/requirements.txt` to run it"
    );
    false
}

/// Run `examples/python/client.py` with `args` against the test broker (bounded).
async fn run_client(args: &[&str]) -> Output {
    let child = Command::new("python3")
        .arg(examples_dir().join("client.py"))
        .args(args)
        .env("AMQP_URL", amqp_url())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    within(40, "examples/python/client.py to finish", child)
        .await
        .expect("python3 runs client.py")
}

/// `examples/python/worker.py` running as a child process under test names. Dropping it kills
/// the process and deletes its queues.
struct PythonWorker {
    name: String,
    child: Child,
    /// Kept open so the child's standard output never breaks.
    _stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
}

impl PythonWorker {
    /// Start the worker serving `method` as worker `name` and wait (bounded) for its `ready`.
    async fn start(name: &str, method: &str) -> Self {
        let mut child = Command::new("python3")
            .arg(examples_dir().join("worker.py"))
            .args(["--worker", name, "--method", method])
            .env("AMQP_URL", amqp_url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 starts worker.py");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut errors = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let sink = Arc::clone(&stderr);
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                let mut text = sink.lock().unwrap_or_else(PoisonError::into_inner);
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if line.trim() == "ready" {
                    return true;
                }
            }
            false
        })
        .await;
        let mut worker = Self {
            name: name.to_owned(),
            child,
            _stdout: stdout,
            stderr,
        };
        if ready != Ok(true) {
            let _ = worker.child.start_kill();
            panic!(
                "the Python worker did not print `ready` within 20 s; its stderr:\n{}",
                worker.stderr()
            );
        }
        worker
    }

    /// What the worker logged so far.
    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Send SIGTERM and wait (bounded) until the process exits.
    async fn terminate(&mut self) -> ExitStatus {
        send_signal(&self.child, "-TERM");
        within(
            15,
            "the Python worker to stop after SIGTERM",
            self.child.wait(),
        )
        .await
        .expect("waiting for the Python worker")
    }
}

impl Drop for PythonWorker {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        delete_queues_blocking(vec![
            worker_queue(&self.name),
            dead_letter_queue(&self.name),
        ]);
    }
}

/// The Python definition file, renamed to the test's method and worker (the gateway needs the
/// file to be named `<method>.json` and to name the worker whose queue serves it).
fn python_definition(method: &str, worker: &str) -> Value {
    let path = examples_dir().join("schemas/py_reverse.json");
    let text = std::fs::read_to_string(&path).expect("examples/python/schemas/py_reverse.json");
    let mut definition: Value = serde_json::from_str(&text).expect("the definition is JSON");
    definition["method"] = json!(method);
    definition["worker"] = json!(worker);
    definition
}

/// The Python client (`examples/python/client.py`) calls a Rust worker straight over AMQP: the
/// job it publishes (properties, headers, deadline, callback queue) is one the Rust worker accepts,
/// it prints the Rust worker's result (nested JSON unchanged), it deletes its callback queue, and
/// a method no worker is bound for makes it exit 4 (unroutable) instead of waiting.
#[tokio::test]
async fn python_client_calls_a_rust_worker() {
    if !python_with_pika("python_client_calls_a_rust_worker").await {
        return;
    }
    let name = unique("pyc");
    let method = format!("{name}.echo");
    let worker =
        spawn_worker(Worker::new(&name).method(method.clone(), intercomm_workers::echo::echo))
            .await;
    let params =
        json!({"user": {"id": "u1", "tags": ["a", "b"]}, "text": "merhaba dünya", "n": 1.5});
    let instance = unique("pyclient");
    let output = run_client(&[
        &method,
        &params.to_string(),
        "--timeout",
        "15",
        "--user",
        "alice",
        "--instance",
        &instance,
    ])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "client.py failed: {stderr}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("client.py prints JSON");
    assert_eq!(printed, params, "stderr: {stderr}");
    within(5, "the Rust worker to count the job", async {
        while worker.stats.succeeded.load(Ordering::Relaxed) != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // The callback queue was deleted at the end (a passive declare finds nothing).
    let (connection, channel) = raw_channel().await;
    let callback = format!("rpc_callback_{instance}");
    let passive = channel
        .queue_declare(
            callback.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(passive.is_err(), "{callback} was left behind");
    let _ = connection.close(200, "done".into()).await;

    let unroutable = run_client(&[&format!("{name}.nobody"), "{}", "--timeout", "10"]).await;
    assert_eq!(
        unroutable.status.code(),
        Some(4),
        "an unbound method is unroutable: {}",
        String::from_utf8_lossy(&unroutable.stderr)
    );
}

/// A worker written in Python from the contract alone (`examples/python/worker.py`) serves
/// intercomm's own callers: the queue it declares is the one a Rust worker declares (a Rust worker
/// of the same name starts against it), the Rust `RpcClient` gets its results and a -32602 naming
/// the bad field, hand-made jobs get -32700 / -32600 / -32601 / -32000 and a batch answer as
/// from a Rust worker (the refused ones dead-lettered to `rpc_queue_<worker>.dlq`), and it stops
/// cleanly on SIGTERM.
#[tokio::test]
async fn python_worker_serves_rust_callers() {
    if !python_with_pika("python_worker_serves_rust_callers").await {
        return;
    }
    let name = unique("py");
    let method = format!("{name}.reverse");
    let mut python = PythonWorker::start(&name, &method).await;

    // Same topology: a Rust worker of the same name declares the same queue without a mismatch.
    let mut rust = spawn_worker(
        Worker::new(&name).method(format!("{name}.rust_echo"), intercomm_workers::echo::echo),
    )
    .await
    .keep_queues();
    rust.stop().await.expect("the Rust worker stops cleanly");
    drop(rust);

    // (i) The Rust RpcClient.
    let client = client().await;
    let result: Value = client
        .call(
            &method,
            &json!({"text": "merhaba", "upper": true}),
            &CallOptions::default(),
        )
        .await
        .unwrap_or_else(|error| panic!("{error}; worker log:\n{}", python.stderr()));
    assert_eq!(result, json!({"reversed": "ABAHREM", "length": 7}));
    let refused = client
        .call::<_, Value>(&method, &json!({"text": 5}), &CallOptions::default())
        .await;
    match refused {
        Err(Error::Remote(error)) => {
            assert_eq!(error.code, -32602, "{error:?}");
            assert_eq!(
                error.data.as_ref().map(|d| &d["pointer"]),
                Some(&json!("/text"))
            );
        }
        other => panic!("expected -32602, got {other:?}"),
    }
    client.close().await;

    // Hand-made jobs, straight into the Python worker's queue.
    let mut caller = RawCaller::new().await;
    caller
        .publish(&name, b"{not json", caller.properties("c-parse"))
        .await;
    let wrong_version = json!({"jsonrpc": "1.0", "method": method, "id": "r-version"});
    caller
        .publish(
            &name,
            wrong_version.to_string().as_bytes(),
            caller.properties("c-version"),
        )
        .await;
    let other_method =
        json!({"jsonrpc": "2.0", "method": "someone.else", "params": {}, "id": "r-method"});
    caller
        .publish(
            &name,
            other_method.to_string().as_bytes(),
            caller.properties("c-method"),
        )
        .await;
    let mut headers = FieldTable::default();
    headers.insert(
        "x-intercomm-deadline".into(),
        AMQPValue::LongString(LongString::from("2001-02-03T04:05:06.7Z")),
    );
    let late = json!({"jsonrpc": "2.0", "method": method, "params": {"text": "x"}, "id": "r-late"});
    caller
        .publish(
            &name,
            late.to_string().as_bytes(),
            caller.properties("c-late").with_headers(headers),
        )
        .await;
    let plain = json!({"jsonrpc": "2.0", "method": method, "params": {"text": "x"}, "id": "r-ct"});
    caller
        .publish(
            &name,
            plain.to_string().as_bytes(),
            caller
                .properties("c-ct")
                .with_content_type("text/plain".into()),
        )
        .await;
    let batch = json!([
        {"jsonrpc": "2.0", "method": method, "params": {"text": "ab"}, "id": 1},
        {"jsonrpc": "2.0", "method": method, "params": {"text": "notified"}},
        {"foo": "boo"}
    ]);
    caller
        .publish(
            &name,
            batch.to_string().as_bytes(),
            caller.properties("c-batch"),
        )
        .await;

    let mut replies = std::collections::HashMap::new();
    for _ in 0..6 {
        let (correlation_id, body) = caller.next_reply().await;
        replies.insert(correlation_id, body);
    }
    let code = |id: &str| replies[id]["error"]["code"].clone();
    assert_eq!(code("c-parse"), json!(-32700), "{replies:?}");
    assert_eq!(replies["c-parse"]["id"], Value::Null);
    assert_eq!(code("c-version"), json!(-32600));
    assert_eq!(replies["c-version"]["id"], json!("r-version"));
    assert_eq!(code("c-method"), json!(-32601));
    assert_eq!(
        replies["c-method"]["error"]["data"],
        json!({"method": "someone.else"})
    );
    assert_eq!(code("c-late"), json!(-32000));
    assert_eq!(replies["c-late"]["id"], json!("r-late"));
    assert_eq!(code("c-ct"), json!(-32600));
    let answers = replies["c-batch"]
        .as_array()
        .expect("a batch is answered with an array");
    assert_eq!(
        answers.len(),
        2,
        "the notification gets no answer: {answers:?}"
    );
    assert_eq!(
        answers[0],
        json!({"jsonrpc": "2.0", "result": {"reversed": "ba", "length": 2}, "id": 1})
    );
    assert_eq!(answers[1]["error"]["code"], json!(-32600));
    assert_eq!(answers[1]["id"], Value::Null);
    // Not JSON, not JSON-RPC 2.0 and the wrong content type are dead-lettered; the rest acked.
    let dead = caller.dead_letters(&name, 3).await;
    assert_eq!(dead[0], b"{not json");
    caller.close().await;

    let status = python.terminate().await;
    assert!(
        status.success(),
        "SIGTERM stops the Python worker cleanly: {status}; log:\n{}",
        python.stderr()
    );
}

/// The gateway routes to a Python worker by its `schemas/`-format definition file alone: with the
/// example's file (renamed to the test's method and worker) the gateway validates params against it
/// (422 for a wrong type, naming the field), accepts `POST /v1/jobs/{method}` with 202, and the job
/// ends `succeeded` with the Python worker's result.
#[tokio::test]
async fn gateway_routes_to_a_python_worker() {
    if !python_with_pika("gateway_routes_to_a_python_worker").await {
        return;
    }
    let name = unique("pygw");
    let method = format!("{name}.reverse");
    let _python = PythonWorker::start(&name, &method).await;

    // Start on a placeholder definition, then swap in the Python one and reload, as an operator
    // would after adding the file (SIGHUP does the same).
    let gateway = TestGateway::start(&[(&method, &name)]).await;
    std::fs::write(
        gateway.dir.join(format!("{method}.json")),
        python_definition(&method, &name).to_string(),
    )
    .expect("write the Python definition");
    gateway.state.reload().expect("the Python definition loads");

    let invalid = gateway.submit(&method, "alice", json!({"text": 5})).await;
    assert_eq!(invalid.status(), 422, "the definition's schema applies");
    let problem: Value = invalid.json().await.expect("problem JSON");
    assert!(problem.to_string().contains("/text"), "{problem}");

    let response = gateway
        .submit(&method, "alice", json!({"text": "intercomm"}))
        .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("JSON");
    let job_id = accepted["job_id"].as_str().expect("a job id");
    let (status, job) = gateway.job(job_id, "alice", 15).await;
    assert_eq!(status, 200);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], json!({"reversed": "mmocretni", "length": 9}));
}
