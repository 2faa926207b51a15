//! Several gateway processes behind one address share jobs through Redis
//! (`INTERCOMM_JOB_STORE`), and a gateway process with a stable instance id collects, after a
//! restart, the replies that arrived while it was down.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use intercomm_core::topology::callback_queue;
use intercomm_core::{Context, RpcError, Worker};
use serde_json::{Value, json};
use tokio::process::Child;

use crate::faults::{intercomm, wait_for_line};
use crate::gateway::write_definition;
use crate::helpers::{delete_queues_blocking, spawn_worker, unique, within};

fn redis_url() -> String {
    std::env::var("INTERCOMM_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A gateway process on a free port; its base URL.
struct GatewayProcess {
    child: Child,
    base: String,
}

impl GatewayProcess {
    async fn start(
        schemas: &std::path::Path,
        secret: &str,
        prefix: &str,
        instance: Option<&str>,
    ) -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            listener.local_addr().expect("addr").port()
        };
        let listen = format!("127.0.0.1:{port}");
        let schemas = schemas.display().to_string();
        let redis = redis_url();
        let mut envs = vec![
            ("INTERCOMM_JWT_SECRET", secret),
            ("INTERCOMM_JOB_STORE", redis.as_str()),
            ("INTERCOMM_JOB_STORE_PREFIX", prefix),
            ("INTERCOMM_JOB_RETENTION", "5m"),
            ("RUST_LOG", "info"),
        ];
        if let Some(instance) = instance {
            envs.push(("INTERCOMM_INSTANCE_ID", instance));
        }
        let (child, mut log) = intercomm(
            &["gateway", "--listen", &listen, "--schemas", &schemas],
            &envs,
        );
        wait_for_line(&mut log, "gateway listening", "a gateway process to listen").await;
        // Keep reading its log so the pipe never fills.
        tokio::spawn(async move { while log.recv().await.is_some() {} });
        Self {
            child,
            base: format!("http://{listen}"),
        }
    }

    async fn stop(mut self) {
        // SIGTERM: the graceful path (the callback queue of a stable instance stays).
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = within(30, "the gateway process to stop", self.child.wait()).await;
    }
}

fn token(secret: &str, sub: &str) -> String {
    intercomm_gateway::auth::mint_hs256(
        &intercomm_gateway::auth::Secret::new(secret.to_owned()),
        sub,
        Duration::from_secs(600),
        None,
        None,
    )
    .expect("token")
}

async fn job(http: &reqwest::Client, base: &str, token: &str, job_id: &str) -> (u16, Value) {
    let response = http
        .get(format!("{base}/v1/jobs/{job_id}?wait=10"))
        .bearer_auth(token)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A job submitted through gateway process A is readable, long-pollable and pushed through
/// gateway process B; an idempotent resubmit through B returns A's job.
#[tokio::test]
async fn two_gateway_processes_share_jobs_through_redis() {
    let worker_name = unique("so");
    let method = format!("{worker_name}.echo");
    let _worker = spawn_worker(
        Worker::new(&worker_name).method(method.clone(), intercomm_workers::echo::echo),
    )
    .await;
    let schemas = std::env::temp_dir().join(unique("so_schemas"));
    std::fs::create_dir_all(&schemas).expect("dir");
    write_definition(&schemas, &method, &worker_name);
    let secret = format!("so-{}", unique("s"));
    let prefix = unique("test_store");
    let a = GatewayProcess::start(&schemas, &secret, &prefix, None).await;
    let b = GatewayProcess::start(&schemas, &secret, &prefix, None).await;
    let alice = token(&secret, "alice");
    let http = reqwest::Client::new();

    let events = http
        .get(format!("{}/v1/events", b.base))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("B's stream opens");
    let mut stream = events.bytes_stream();
    let submit = |base: &str| {
        http.post(format!("{base}/v1/jobs/{method}"))
            .bearer_auth(&alice)
            .header("idempotency-key", "shared-1")
            .json(&json!({"via": "a"}))
            .send()
    };
    let accepted: Value = submit(&a.base)
        .await
        .expect("A answers")
        .json()
        .await
        .expect("JSON");
    let job_id = accepted["job_id"].as_str().expect("id").to_owned();
    let (status, found) = job(&http, &b.base, &alice, &job_id).await;
    assert_eq!(status, 200, "B reads A's job");
    assert_eq!(found["status"], "succeeded", "{found}");
    assert_eq!(found["result"], json!({"via": "a"}));
    let (status, _) = job(&http, &b.base, &token(&secret, "mallory"), &job_id).await;
    assert_eq!(status, 404, "still the owner's only");

    let mut seen = String::new();
    within(10, "B to push A's completion", async {
        while !seen.contains(&job_id) {
            let chunk = stream.next().await.expect("open").expect("bytes");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    let again: Value = submit(&b.base)
        .await
        .expect("B answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        again["job_id"],
        job_id.as_str(),
        "the idempotency key is shared too"
    );
    a.stop().await;
    b.stop().await;
    let _ = std::fs::remove_dir_all(&schemas);
}

/// A gateway process with a stable instance id is stopped while its job runs; the reply waits
/// in its durable callback queue and is recorded when a new process with that id starts.
#[tokio::test]
async fn restarted_gateway_collects_replies_that_arrived_while_it_was_down() {
    let worker_name = unique("so");
    let method = format!("{worker_name}.slow");
    let worker = spawn_worker(Worker::new(&worker_name).method(
        method.clone(),
        |_: Context, _: Value| async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            Ok::<_, RpcError>(json!("done while you were away"))
        },
    ))
    .await;
    let schemas = std::env::temp_dir().join(unique("so_schemas"));
    std::fs::create_dir_all(&schemas).expect("dir");
    write_definition(&schemas, &method, &worker_name);
    let secret = format!("so-{}", unique("s"));
    let prefix = unique("test_store");
    let instance = unique("gw_stable");
    let alice = token(&secret, "alice");
    let http = reqwest::Client::new();

    let first = GatewayProcess::start(&schemas, &secret, &prefix, Some(&instance)).await;
    let accepted: Value = http
        .post(format!("{}/v1/jobs/{method}", first.base))
        .bearer_auth(&alice)
        .json(&json!({}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let job_id = accepted["job_id"].as_str().expect("id").to_owned();
    first.stop().await;
    within(
        10,
        "the worker to answer while the gateway is down",
        async {
            while worker.stats.succeeded.load(Ordering::Relaxed) == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await;

    let second = GatewayProcess::start(&schemas, &secret, &prefix, Some(&instance)).await;
    let (status, found) = job(&http, &second.base, &alice, &job_id).await;
    assert_eq!(status, 200);
    assert_eq!(found["status"], "succeeded", "{found}");
    assert_eq!(found["result"], "done while you were away");
    second.stop().await;
    delete_queues_blocking(vec![callback_queue(&instance)]);
    let _ = std::fs::remove_dir_all(&schemas);
}
