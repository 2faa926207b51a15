//! Poison jobs: a job delivered too often is answered -32003 and dead-lettered (quorum queues).

use intercomm_core::topology::worker_queue;
use intercomm_core::{Context, QueueType, RpcError, Worker};
use lapin::options::{BasicGetOptions, BasicNackOptions};
use serde_json::json;

use crate::helpers::{RawCaller, spawn_worker, unique, within};

/// After `limit` failed deliveries the worker answers -32003 without running the job and the
/// job lands in the dead-letter queue.
#[tokio::test]
async fn job_over_the_delivery_limit_is_dead_lettered_with_an_answer() {
    let name = unique("dl");
    let method = format!("{name}.work");
    let limit = 2;
    let worker = || {
        Worker::new(&name)
            .method(method.clone(), |_: Context, _: serde_json::Value| async {
                Ok::<_, RpcError>(json!("ran"))
            })
            .queue_type(QueueType::Quorum)
            .delivery_limit(limit)
    };
    // Declare the topology, then stop: the queue stays, with nobody consuming.
    let mut first = spawn_worker(worker()).await.keep_queues();
    first.stop().await.expect("stops cleanly");
    drop(first);

    let mut caller = RawCaller::new().await;
    let body = format!(r#"{{"jsonrpc":"2.0","method":"{method}","id":"poison"}}"#);
    caller
        .publish(&name, body.as_bytes(), caller.properties("c-poison"))
        .await;

    // A crashing consumer, simulated: take the job and give it back `limit` times.
    for attempt in 0..limit {
        let message = within(10, "the job to be in the queue", async {
            loop {
                let got = caller
                    .channel
                    .basic_get(
                        worker_queue(&name).as_str().into(),
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

    let _worker = spawn_worker(worker()).await;
    let (correlation_id, reply) = caller.next_reply().await;
    assert_eq!(correlation_id, "c-poison");
    assert_eq!(reply["error"]["code"], -32003, "{reply}");
    assert_eq!(reply["id"], "poison");
    let dead = caller.dead_letters(&name, 1).await;
    assert_eq!(dead[0], body.as_bytes());
    caller.close().await;
}
