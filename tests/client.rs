//! RpcClient guarantees: unroutable is an error, deadlines bound every waiter, late and
//! duplicate replies are dropped and counted.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use intercomm_core::envelope::reply_properties;
use intercomm_core::topology::{JOB_EXCHANGE, declare_exchanges};
use intercomm_core::{CallOptions, Error, ReplyEvent};
use lapin::Channel;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use serde_json::json;

use crate::helpers::{client, client_with_events, raw_channel, unique, within};

/// Declare a queue bound for `method` that nobody consumes (jobs sit there until deleted).
pub(crate) async fn bind_without_consumer(channel: &Channel, method: &str) -> String {
    declare_exchanges(channel).await.expect("exchanges");
    let queue = unique("test_idle");
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("queue");
    channel
        .queue_bind(
            queue.as_str().into(),
            JOB_EXCHANGE.into(),
            method.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("binding");
    queue
}

/// A method no queue is bound for fails fast with `Unroutable`, not a timeout.
#[tokio::test]
async fn unroutable_method_is_an_error_not_a_hang() {
    let client = client().await;
    let method = unique("nobody").replace('_', ".");
    let started = std::time::Instant::now();
    let error = client
        .call_raw(
            &method,
            None,
            &CallOptions::timeout(Duration::from_secs(10)),
        )
        .await
        .expect_err("nobody serves it");
    assert!(
        matches!(&error, Error::Unroutable { method: m } if *m == method),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(client.pending_len(), 0);
    let error = client
        .submit(&method, None, &CallOptions::default())
        .await
        .expect_err("submit is refused too");
    assert!(matches!(error, Error::Unroutable { .. }), "{error}");
    assert_eq!(
        client.pending_len(),
        0,
        "a refused submit leaves nothing pending"
    );
    client.close().await;
}

/// 10 000 calls that time out leave the pending map empty.
#[tokio::test]
async fn ten_thousand_timeouts_leave_nothing_pending() {
    let (connection, channel) = raw_channel().await;
    let method = unique("idle").replace('_', ".");
    let queue = bind_without_consumer(&channel, &method).await;
    let client = client().await;
    let calls = (0..10_000).map(|_| {
        let client = client.clone();
        let method = method.clone();
        async move {
            client
                .call_raw(
                    &method,
                    None,
                    &CallOptions::timeout(Duration::from_millis(1500)),
                )
                .await
        }
    });
    let results = within(
        60,
        "10 000 calls to time out",
        futures_util::future::join_all(calls),
    )
    .await;
    let timeouts = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Timeout(_))))
        .count();
    assert_eq!(timeouts, 10_000, "every call ends with Timeout");
    assert_eq!(client.pending_len(), 0, "no waiter outlives its deadline");
    assert_eq!(client.stats().timed_out.load(Ordering::Relaxed), 10_000);
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("delete");
    client.close().await;
    let _ = connection.close(200, "done".into()).await;
}

/// A submitted job with no reply is reported expired at its deadline and leaves the map.
#[tokio::test]
async fn submitted_job_without_reply_expires() {
    let (connection, channel) = raw_channel().await;
    let method = unique("idle").replace('_', ".");
    let queue = bind_without_consumer(&channel, &method).await;
    let (client, mut received) = client_with_events().await;
    let id = client
        .submit(
            &method,
            None,
            &CallOptions::timeout(Duration::from_millis(300)),
        )
        .await
        .expect("confirmed");
    assert_eq!(client.pending_len(), 1);
    let event = within(5, "the expiry", received.recv())
        .await
        .expect("open");
    assert!(
        matches!(&event, ReplyEvent::Expired { correlation_id } if *correlation_id == id),
        "{event:?}"
    );
    assert_eq!(client.pending_len(), 0);
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("delete");
    client.close().await;
    let _ = connection.close(200, "done".into()).await;
}

/// When a worker answers twice, the caller gets the first reply; the second is dropped and
/// counted as late.
#[tokio::test]
async fn duplicate_reply_is_dropped_and_counted() {
    let (connection, channel) = raw_channel().await;
    let method = unique("dup").replace('_', ".");
    let queue = bind_without_consumer(&channel, &method).await;
    let (client, mut received) = client_with_events().await;
    // A hand-written worker that answers every job twice, first "first" then "second".
    let mut jobs = channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let replier = channel.clone();
    tokio::spawn(async move {
        while let Some(Ok(job)) = jobs.next().await {
            let reply_to = job.properties.reply_to().clone().expect("reply_to");
            let correlation_id = job
                .properties
                .correlation_id()
                .clone()
                .expect("correlation_id");
            let request: serde_json::Value = serde_json::from_slice(&job.data).expect("JSON");
            for answer in ["first", "second"] {
                let body = json!({"jsonrpc": "2.0", "result": answer, "id": request["id"]});
                replier
                    .basic_publish(
                        "".into(),
                        reply_to.clone(),
                        BasicPublishOptions::default(),
                        body.to_string().as_bytes(),
                        reply_properties(correlation_id.as_str()),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
            }
            job.acker
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
        }
    });
    let answer: String = client
        .call(
            &method,
            &json!({}),
            &CallOptions::timeout(Duration::from_secs(10)),
        )
        .await
        .expect("answered");
    assert_eq!(answer, "first", "the first reply wins");
    let event = within(5, "the duplicate reply", received.recv())
        .await
        .expect("open");
    let ReplyEvent::Late(late) = event else {
        panic!("expected a late reply, got {event:?}")
    };
    assert!(String::from_utf8_lossy(&late.body).contains("second"));
    assert_eq!(client.stats().late_replies.load(Ordering::Relaxed), 1);
    assert_eq!(client.pending_len(), 0);
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("delete");
    client.close().await;
    let _ = connection.close(200, "done".into()).await;
}
