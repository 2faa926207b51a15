//! Graceful shutdown: stop consuming, let in-flight jobs finish within the grace period, give
//! the rest back to the queue.

use std::time::Duration;

use intercomm_core::topology::worker_queue;
use intercomm_core::{CallOptions, Context, RpcError, Worker};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::json;

use crate::helpers::{client, raw_channel, spawn_worker, unique, within};

fn slow_worker(
    name: &str,
    started: tokio::sync::mpsc::UnboundedSender<()>,
    work: Duration,
    grace: Duration,
) -> Worker {
    Worker::new(name)
        .method(
            format!("{name}.slow"),
            move |_: Context, _: serde_json::Value| {
                let started = started.clone();
                async move {
                    let _ = started.send(());
                    tokio::time::sleep(work).await;
                    Ok::<_, RpcError>(json!("done"))
                }
            },
        )
        .grace_period(grace)
}

/// Messages ready in `queue` (not delivered to any consumer).
pub(crate) async fn messages_in(queue: &str) -> u32 {
    let (connection, channel) = raw_channel().await;
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue exists");
    let _ = connection.close(200, "done".into()).await;
    declared.message_count()
}

/// A job running when the stop comes finishes and is answered; nothing is left in the queue.
#[tokio::test]
async fn in_flight_job_finishes_during_shutdown() {
    let name = unique("sd");
    let (started, mut running) = tokio::sync::mpsc::unbounded_channel();
    let mut worker = spawn_worker(slow_worker(
        &name,
        started,
        Duration::from_millis(400),
        Duration::from_secs(10),
    ))
    .await;
    let client = client().await;
    let call = {
        let client = client.clone();
        let method = format!("{name}.slow");
        tokio::spawn(async move {
            client
                .call::<_, String>(&method, &json!({}), &CallOptions::default())
                .await
        })
    };
    within(10, "the job to start", running.recv())
        .await
        .expect("open");
    worker.stop().await.expect("stops cleanly");
    let answer = within(10, "the in-flight call", call)
        .await
        .expect("task")
        .expect("answered");
    assert_eq!(answer, "done");
    assert_eq!(messages_in(&worker_queue(&name)).await, 0);
    client.close().await;
}

/// A job still running when the grace period ends goes back to the queue, unanswered, for
/// another process to run.
#[tokio::test]
async fn job_past_the_grace_period_goes_back_to_the_queue() {
    let name = unique("sd");
    let (started, mut running) = tokio::sync::mpsc::unbounded_channel();
    let mut worker = spawn_worker(slow_worker(
        &name,
        started,
        Duration::from_secs(30),
        Duration::from_millis(200),
    ))
    .await;
    let client = client().await;
    let method = format!("{name}.slow");
    let id = client
        .submit(
            &method,
            None,
            &CallOptions::timeout(Duration::from_secs(60)),
        )
        .await
        .expect("confirmed");
    assert!(!id.is_empty());
    within(10, "the job to start", running.recv())
        .await
        .expect("open");
    let stopping = std::time::Instant::now();
    worker.stop().await.expect("stops");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "the grace period bounds the stop"
    );
    within(10, "the job to return to the queue", async {
        while messages_in(&worker_queue(&name)).await != 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    client.close().await;
}
