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
use crate::gateway::{TestGateway, write_definition};
use crate::helpers::{
    TestWorker, delete_queues_blocking, spawn_worker, submit_job, unique, within,
};

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
        Self::start_with(schemas, secret, prefix, instance, &[]).await
    }

    /// The same, with `extra` set last (it may name another job store).
    async fn start_with(
        schemas: &std::path::Path,
        secret: &str,
        prefix: &str,
        instance: Option<&str>,
        extra: &[(&str, &str)],
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
        envs.extend_from_slice(extra);
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

/// What the gateway-process tests with an echo worker share: the worker (of a unique name), a
/// schemas directory that defines its method, a token secret and a store prefix of their own.
struct EchoSetup {
    _worker: TestWorker,
    method: String,
    schemas: std::path::PathBuf,
    secret: String,
    prefix: String,
}

impl EchoSetup {
    async fn start() -> Self {
        let worker_name = unique("so");
        let method = format!("{worker_name}.echo");
        let worker = spawn_worker(
            Worker::new(&worker_name).method(method.clone(), intercomm_workers::echo::echo),
        )
        .await;
        let schemas = std::env::temp_dir().join(unique("so_schemas"));
        std::fs::create_dir_all(&schemas).expect("dir");
        write_definition(&schemas, &method, &worker_name);
        Self {
            _worker: worker,
            method,
            schemas,
            secret: format!("so-{}", unique("s")),
            prefix: unique("test_store"),
        }
    }
}

/// A job submitted through gateway process A is readable, long-pollable and pushed through
/// gateway process B; an idempotent resubmit through B returns A's job.
#[tokio::test]
async fn two_gateway_processes_share_jobs_through_redis() {
    let EchoSetup {
        _worker,
        method,
        schemas,
        secret,
        prefix,
    } = EchoSetup::start().await;
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
    let job_id = submit_job(&http, &first.base, &alice, &method, json!({})).await;
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

/// A Redis user of a test's own, so that test can take its write permission away (ACL) without
/// disturbing the other tests on the same Redis. Deleted on drop.
struct RedisUser {
    admin: redis::Client,
    name: String,
    url: String,
}

impl RedisUser {
    fn create() -> Self {
        let admin = redis::Client::open(redis_url()).expect("a Redis URL");
        let name = unique("intercomm_test");
        let password = unique("pw");
        let user = Self {
            url: redis_url().replacen("redis://", &format!("redis://{name}:{password}@"), 1),
            admin,
            name,
        };
        user.acl(&["on", &format!(">{password}"), "~*", "&*", "+@all"]);
        user
    }

    /// `ACL SETUSER <name> <rules…>`.
    fn acl(&self, rules: &[&str]) {
        let mut connection = self.admin.get_connection().expect("Redis answers");
        let () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&self.name)
            .arg(rules)
            .query(&mut connection)
            .expect("ACL SETUSER");
    }
}

impl Drop for RedisUser {
    fn drop(&mut self) {
        if let Ok(mut connection) = self.admin.get_connection() {
            let _: redis::RedisResult<i64> = redis::cmd("ACL")
                .arg("DELUSER")
                .arg(&self.name)
                .query(&mut connection);
        }
    }
}

/// The job store refusing writes when a reply comes delays the result instead of losing it: the
/// reply stays unacknowledged while the gateway retries, and the job ends `succeeded` once Redis
/// takes writes again.
#[tokio::test]
async fn reply_waits_for_the_job_store_to_take_writes_again() {
    let worker_name = unique("so");
    let method = format!("{worker_name}.gated");
    let (release, released) = tokio::sync::watch::channel(false);
    let (started, mut running) = tokio::sync::mpsc::unbounded_channel::<()>();
    let _worker = spawn_worker(Worker::new(&worker_name).method(
        method.clone(),
        move |_: Context, params: Value| {
            let mut released = released.clone();
            let started = started.clone();
            async move {
                let _ = started.send(());
                let _ = released.wait_for(|go| *go).await;
                Ok::<_, RpcError>(params)
            }
        },
    ))
    .await;
    let user = RedisUser::create();
    let mut gateway = TestGateway::start_with(&[(&method, &worker_name)], |settings| {
        settings.job_store = Some(user.url.clone());
        settings.job_store_prefix = unique("test_store");
    })
    .await;
    let response = gateway.submit(&method, "alice", json!({"n": 7})).await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("JSON");
    let job_id = accepted["job_id"].as_str().expect("id").to_owned();
    within(10, "the worker to take the job", running.recv())
        .await
        .expect("handler channel open");

    user.acl(&["-@write"]);
    release.send_replace(true);
    let metrics = format!("{}/metrics", gateway.url);
    within(15, "the gateway to fail recording the reply", async {
        loop {
            let text = gateway
                .http()
                .get(&metrics)
                .send()
                .await
                .expect("answer")
                .text()
                .await
                .expect("text");
            let errors = text
                .lines()
                .find_map(|line| line.strip_prefix("intercomm_job_store_completion_errors_total "))
                .and_then(|value| value.trim().parse::<f64>().ok());
            if errors.is_some_and(|errors| errors > 0.0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (status, job) = gateway.job(&job_id, "alice", 0).await;
    assert_eq!(status, 200);
    assert_eq!(
        job["status"], "queued",
        "not recorded while writes are refused: {job}"
    );

    user.acl(&["+@all"]);
    let (status, job) = gateway.job(&job_id, "alice", 15).await;
    assert_eq!(status, 200);
    assert_eq!(
        job["status"], "succeeded",
        "recorded once writes came back: {job}"
    );
    assert_eq!(job["result"], json!({"n": 7}));
    gateway.stop().await;
}

/// The port of the test Redis (`INTERCOMM_TEST_REDIS`, default 6379).
fn redis_port() -> u16 {
    let url = redis_url();
    let authority = url.trim_start_matches("redis://");
    let host_port = authority.split(['/', '?']).next().unwrap_or(authority);
    host_port
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(6379)
}

/// A gateway process keeps its jobs in Redis over TLS (`rediss://`, its CA named by
/// `SSL_CERT_FILE`): a job it accepted and completed through the TLS link is read by a second
/// gateway on plain Redis. Without the CA, the gateway refuses to start, naming the certificate.
#[tokio::test]
async fn gateway_reaches_redis_over_tls() {
    let EchoSetup {
        _worker,
        method,
        schemas,
        secret,
        prefix,
    } = EchoSetup::start().await;
    let front = crate::tls::TlsFront::start(redis_port()).await;
    let tls_url = format!("rediss://localhost:{}", front.port);
    let ca_file = front.ca_file.display().to_string();

    let over_tls = GatewayProcess::start_with(
        &schemas,
        &secret,
        &prefix,
        None,
        &[
            ("INTERCOMM_JOB_STORE", tls_url.as_str()),
            ("SSL_CERT_FILE", ca_file.as_str()),
        ],
    )
    .await;
    let plain = GatewayProcess::start(&schemas, &secret, &prefix, None).await;
    let alice = token(&secret, "alice");
    let http = reqwest::Client::new();
    let job_id = submit_job(
        &http,
        &over_tls.base,
        &alice,
        &method,
        json!({"over": "rediss"}),
    )
    .await;
    let (status, found) = job(&http, &over_tls.base, &alice, &job_id).await;
    assert_eq!(status, 200);
    assert_eq!(found["status"], "succeeded", "{found}");
    let (status, found) = job(&http, &plain.base, &alice, &job_id).await;
    assert_eq!(status, 200, "the plain-Redis gateway reads it");
    assert_eq!(found["result"], json!({"over": "rediss"}));
    over_tls.stop().await;
    plain.stop().await;

    let refused = crate::cli::intercomm_with(
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--schemas",
            &schemas.display().to_string(),
        ],
        &[
            ("INTERCOMM_JWT_SECRET", secret.as_str()),
            ("INTERCOMM_JOB_STORE", tls_url.as_str()),
        ],
    )
    .await;
    assert!(
        !refused.status.success(),
        "an unknown CA is refused: {refused:?}"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(
        stderr.contains("certificate"),
        "the error names the certificate: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&schemas);
}
