//! The worker's coalesced acknowledgements, against the broker: runs of acks become one frame,
//! yet no ack waits behind a slow job and none is lost when the worker stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use intercomm_core::topology::worker_queue;
use intercomm_core::{CallOptions, Context, RpcError, Worker};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::helpers::{client, spawn_worker, unique, within};
use crate::shutdown::messages_in;

async fn echo(_: Context, params: serde_json::Value) -> Result<serde_json::Value, RpcError> {
    Ok(params)
}

/// With prefetch 4 and one job blocked, twenty quick jobs still get through: their acks are
/// not held back behind the blocked one (the prefetch window would fill and stall the worker).
/// Once it finishes and the worker stops, nothing is left unacknowledged.
#[tokio::test]
async fn a_slow_job_does_not_hold_back_later_acks() {
    let name = unique("ack");
    let gate = Arc::new(Semaphore::new(0));
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
    let worker = Worker::new(&name)
        .method(format!("{name}.slow"), {
            let gate = Arc::clone(&gate);
            move |_: Context, _: serde_json::Value| {
                let gate = Arc::clone(&gate);
                let started = started_tx.clone();
                async move {
                    let _ = started.send(());
                    let _permit = gate.acquire().await;
                    Ok::<_, RpcError>(json!("slow done"))
                }
            }
        })
        .method(format!("{name}.quick"), echo)
        .prefetch(4);
    let mut worker = spawn_worker(worker).await;
    let client = client().await;

    let slow = tokio::spawn({
        let client = client.clone();
        let method = format!("{name}.slow");
        async move {
            client
                .call::<_, String>(&method, &json!({}), &CallOptions::default())
                .await
        }
    });
    within(10, "the slow job to start", started.recv()).await;

    for n in 0..20_u32 {
        let answer: serde_json::Value = within(
            10,
            "a quick job while the slow one is blocked (acks held back would stall at prefetch 4)",
            client.call(
                &format!("{name}.quick"),
                &json!({ "n": n }),
                &CallOptions::default(),
            ),
        )
        .await
        .expect("the quick job succeeds");
        assert_eq!(answer, json!({ "n": n }));
    }

    gate.add_permits(1);
    let slow = within(10, "the slow job's answer", slow)
        .await
        .expect("the slow call task ran")
        .expect("the slow job succeeds");
    assert_eq!(slow, "slow done");

    worker.stop().await.expect("the worker stops cleanly");
    assert_eq!(
        messages_in(&worker_queue(&name)).await,
        0,
        "every job was acknowledged before the channel closed; none came back to the queue"
    );
    assert_eq!(worker.stats.redelivered.load(Ordering::Relaxed), 0);
    client.close().await;
}

/// Many jobs at once (acks coalesced into runs): every one answered, and after a stop nothing
/// is left unacknowledged or redelivered — the last run is flushed before the channel closes.
#[tokio::test]
async fn coalesced_acks_leave_nothing_behind() {
    let name = unique("ack");
    let method = format!("{name}.echo");
    let worker = Worker::new(&name).method(method.clone(), echo).prefetch(64);
    let mut worker = spawn_worker(worker).await;
    let client = client().await;

    let calls = (0..500_u32).map(|n| {
        let client = client.clone();
        let method = method.clone();
        async move {
            let answer: serde_json::Value = client
                .call(&method, &json!({ "n": n }), &CallOptions::default())
                .await
                .expect("the job succeeds");
            assert_eq!(answer, json!({ "n": n }));
        }
    });
    within(
        30,
        "500 concurrent jobs",
        futures_util::future::join_all(calls),
    )
    .await;

    worker.stop().await.expect("the worker stops cleanly");
    assert_eq!(messages_in(&worker_queue(&name)).await, 0);
    assert_eq!(worker.stats.redelivered.load(Ordering::Relaxed), 0);
    assert_eq!(worker.stats.succeeded.load(Ordering::Relaxed), 500);
    client.close().await;
}
