//! Several gateways behind one address share jobs through Redis (`INTERCOMM_JOB_STORE`), and a
//! gateway with a stable instance id collects, after a restart, the replies that arrived while
//! it was down.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use intercomm_core::topology::callback_queue;
use intercomm_core::{Context, RpcError, Worker};
use serde_json::{Value, json};

use crate::gateway::TestGateway;
use crate::helpers::{delete_queues_blocking, spawn_worker, unique, within};

fn redis_url() -> String {
    std::env::var("INTERCOMM_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A job submitted through gateway A is readable, long-pollable and pushed through gateway B;
/// an idempotent resubmit through B returns A's job.
#[tokio::test]
async fn two_gateways_share_jobs_through_redis() {
    let worker_name = unique("so");
    let method = format!("{worker_name}.echo");
    let _worker = spawn_worker(
        Worker::new(&worker_name).method(method.clone(), intercomm_workers::echo::echo),
    )
    .await;
    let prefix = unique("test_store");
    let shared = |settings: &mut intercomm_gateway::GatewaySettings| {
        settings.job_store = Some(redis_url());
        settings.job_store_prefix = prefix.clone();
        settings.retention = Duration::from_secs(300);
    };
    let a = TestGateway::start_with(&[(&method, &worker_name)], shared).await;
    let b = TestGateway::start_with(&[(&method, &worker_name)], shared).await;

    let events = b
        .http()
        .get(format!("{}/v1/events", b.url))
        .bearer_auth(b.token("alice"))
        .send()
        .await
        .expect("B's stream opens");
    let mut stream = events.bytes_stream();

    let submit = |gateway: &TestGateway| {
        gateway
            .http()
            .post(format!("{}/v1/jobs/{method}", gateway.url))
            .bearer_auth(gateway.token("alice"))
            .header("idempotency-key", "shared-1")
            .json(&json!({"via": "a"}))
            .send()
    };
    let accepted: Value = submit(&a)
        .await
        .expect("A answers")
        .json()
        .await
        .expect("JSON");
    let job_id = accepted["job_id"].as_str().expect("id").to_owned();
    let (status, job) = b.job(&job_id, "alice", 10).await;
    assert_eq!(status, 200, "B reads A's job");
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], json!({"via": "a"}));
    let (status, _) = b.job(&job_id, "mallory", 0).await;
    assert_eq!(status, 404, "still the owner's only");

    let mut seen = String::new();
    within(10, "B to push A's completion", async {
        while !seen.contains(&job_id) {
            let chunk = stream.next().await.expect("open").expect("bytes");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;

    let again: Value = submit(&b)
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
}

/// A gateway with a stable instance id stops while its job runs; the reply waits in its durable
/// callback queue and is recorded when the gateway comes back.
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
    let instance = unique("gw_stable");
    let prefix = unique("test_store");
    let settings = |settings: &mut intercomm_gateway::GatewaySettings| {
        settings.job_store = Some(redis_url());
        settings.job_store_prefix = prefix.clone();
        settings.retention = Duration::from_secs(300);
        settings.instance_id = Some(instance.clone());
    };
    let mut first = TestGateway::start_with(&[(&method, &worker_name)], settings).await;
    let accepted: Value = first
        .submit(&method, "alice", json!({}))
        .await
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

    let second = TestGateway::start_with(&[(&method, &worker_name)], settings).await;
    let (status, job) = second.job(&job_id, "alice", 10).await;
    assert_eq!(status, 200);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], "done while you were away");
    drop(second);
    delete_queues_blocking(vec![callback_queue(&instance)]);
}
