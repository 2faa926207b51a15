//! Poison jobs: a job delivered too often is answered -32003 and dead-lettered (quorum queues).

use intercomm_core::topology::worker_queue;
use intercomm_core::{Context, QueueType, RpcError, Worker};
use lapin::options::{BasicGetOptions, BasicNackOptions};
use serde_json::json;

use crate::helpers::{RawCaller, spawn_worker, unique, within};

/// A quorum worker `name` (limit 2) whose one job has already failed twice: the next delivery
/// is over the limit. Returns the caller (waiting for the answer) and the job's body.
async fn poisoned(name: &str, method: &str) -> (RawCaller, String) {
    let limit = 2;
    let worker = || {
        Worker::new(name)
            .method(
                method.to_owned(),
                |_: Context, _: serde_json::Value| async { Ok::<_, RpcError>(json!("ran")) },
            )
            .queue_type(QueueType::Quorum)
            .delivery_limit(limit)
    };
    // Declare the topology, then stop: the queue stays, with nobody consuming.
    let mut first = spawn_worker(worker()).await.keep_queues();
    first.stop().await.expect("stops cleanly");
    drop(first);

    let caller = RawCaller::new().await;
    let body = format!(r#"{{"jsonrpc":"2.0","method":"{method}","id":"poison"}}"#);
    caller
        .publish(name, body.as_bytes(), caller.properties("c-poison"))
        .await;

    // A crashing consumer, simulated: take the job and give it back `limit` times.
    for attempt in 0..limit {
        let message = within(10, "the job to be in the queue", async {
            loop {
                let got = caller
                    .channel
                    .basic_get(
                        worker_queue(name).as_str().into(),
                        BasicGetOptions { no_ack: false },
                    )
                    .await
                    .expect("basic.get");
                match got {
                    Some(message) => return message,
                    None => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        let count = message
            .delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-delivery-count").cloned());
        if attempt > 0 {
            assert!(count.is_some(), "quorum queues count deliveries");
        }
        message
            .delivery
            .acker
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await
            .expect("nack");
    }

    (caller, body)
}

fn limited_worker(name: &str, method: &str) -> Worker {
    Worker::new(name)
        .method(
            method.to_owned(),
            |_: Context, _: serde_json::Value| async { Ok::<_, RpcError>(json!("ran")) },
        )
        .queue_type(QueueType::Quorum)
        .delivery_limit(2)
}

/// After `limit` failed deliveries the worker answers -32003 without running the job and the
/// job lands in the dead-letter queue.
#[tokio::test]
async fn job_over_the_delivery_limit_is_dead_lettered_with_an_answer() {
    let name = unique("dl");
    let method = format!("{name}.work");
    let (mut caller, body) = poisoned(&name, &method).await;
    let _worker = spawn_worker(limited_worker(&name, &method)).await;
    let (correlation_id, reply) = caller.next_reply().await;
    assert_eq!(correlation_id, "c-poison");
    assert_eq!(reply["error"]["code"], -32003, "{reply}");
    assert_eq!(reply["id"], "poison");
    let dead = caller.dead_letters(&name, 1).await;
    assert_eq!(dead[0], body.as_bytes());
    caller.close().await;
}

async fn intercomm(args: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_intercomm"));
    command
        .args(args)
        .env("AMQP_URL", crate::helpers::amqp_url())
        .env("RUST_LOG", "error");
    within(30, "the intercomm command", command.output())
        .await
        .expect("the binary runs")
}

/// `intercomm dlq list` shows a dead-lettered job with its method and reason, without removing
/// it; `intercomm dlq replay` sends it back, and the (now healthy) worker answers it.
#[tokio::test]
async fn dead_letters_are_listed_and_replayed() {
    let name = unique("dl");
    let method = format!("{name}.work");
    let (mut caller, _) = poisoned(&name, &method).await;
    let worker = spawn_worker(limited_worker(&name, &method))
        .await
        .keep_queues();
    let (_, refused) = caller.next_reply().await;
    assert_eq!(refused["error"]["code"], -32003);
    let listed = within(10, "the dead letter to be listed", async {
        loop {
            let output = intercomm(&["dlq", "list", &name, "--json"]).await;
            assert!(output.status.success(), "{output:?}");
            let letters: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
            if letters.as_array().is_some_and(|l| !l.is_empty()) {
                return letters;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(listed[0]["method"], method.as_str(), "{listed}");
    assert_eq!(listed[0]["reason"], "rejected");
    let again = intercomm(&["dlq", "list", &name, "--json"]).await;
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON");
    assert_eq!(
        again.as_array().map(Vec::len),
        Some(1),
        "listing removes nothing"
    );

    let output = intercomm(&["dlq", "replay", &name]).await;
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("replayed 1"),
        "{output:?}"
    );
    let (correlation_id, answered) = caller.next_reply().await;
    assert_eq!(correlation_id, "c-poison");
    assert_eq!(answered["result"], "ran", "{answered}");
    let empty = intercomm(&["dlq", "list", &name, "--json"]).await;
    let empty: serde_json::Value = serde_json::from_slice(&empty.stdout).expect("JSON");
    assert_eq!(empty.as_array().map(Vec::len), Some(0));
    drop(worker);
    crate::helpers::delete_queues_blocking(vec![
        intercomm_core::topology::worker_queue(&name),
        intercomm_core::topology::dead_letter_queue(&name),
    ]);
    caller.close().await;
}
