//! Calls, submits and notifications through RpcClient and the Worker runtime.

use std::time::Duration;

use intercomm_core::{CallOptions, Context, ReplyEvent, RpcError, Worker};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use crate::helpers::{client, client_with_events, spawn_worker, unique, within};

#[derive(Deserialize)]
struct AddParams {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Sum {
    sum: i64,
}

async fn add(_context: Context, params: AddParams) -> Result<Sum, RpcError> {
    Ok(Sum {
        sum: params.a + params.b,
    })
}

/// A call reaches the worker bound for its method and returns the typed result.
#[tokio::test]
async fn call_returns_the_handlers_result() {
    let name = unique("rt");
    let method = format!("{name}.add");
    let _worker = spawn_worker(Worker::new(&name).method(method.clone(), add)).await;
    let client = client().await;
    let sum: Sum = client
        .call(&method, &json!({"a": 2, "b": 40}), &CallOptions::default())
        .await
        .expect("the call succeeds");
    assert_eq!(sum, Sum { sum: 42 });
    assert_eq!(client.pending_len(), 0);
    client.close().await;
}

/// Nested params arrive nested and the echo worker returns them byte for byte.
#[tokio::test]
async fn echo_keeps_nested_params_nested() {
    let name = unique("rt");
    let method = format!("{name}.echo");
    let _worker =
        spawn_worker(Worker::new(&name).method(method.clone(), intercomm_workers::echo::echo))
            .await;
    let client = client().await;
    let params = RawValue::from_string(r#"{"user":{"id":"u1","tags":["a","b"]},"n":1}"#.to_owned())
        .expect("valid JSON");
    let result = client
        .call_raw(&method, Some(&params), &CallOptions::default())
        .await
        .expect("echo answers");
    assert_eq!(result.get(), params.get());
    client.close().await;
}

/// The handler's context carries the user, the deadline and the trace the caller sent.
#[tokio::test]
async fn context_carries_user_deadline_and_trace() {
    let name = unique("rt");
    let method = format!("{name}.whoami");
    let whoami = |context: Context, _: serde_json::Value| async move {
        Ok::<_, RpcError>(json!({
            "user": context.user(),
            "has_deadline": context.deadline().is_some(),
            "traceparent": context.traceparent(),
            "job_id": context.job_id(),
        }))
    };
    let _worker = spawn_worker(Worker::new(&name).method(method.clone(), whoami)).await;
    let client = client().await;
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let options = CallOptions {
        user: Some("user_1".into()),
        traceparent: Some(parent.into()),
        id: Some("job-ctx-1".into()),
        timeout: Some(Duration::from_secs(5)),
    };
    let answer: serde_json::Value = client
        .call(&method, &json!({}), &options)
        .await
        .expect("answered");
    assert_eq!(answer["user"], "user_1");
    assert_eq!(answer["has_deadline"], true);
    assert_eq!(answer["job_id"], "job-ctx-1");
    let traceparent = answer["traceparent"]
        .as_str()
        .expect("a traceparent arrived");
    assert!(
        traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
        "{traceparent}"
    );
    assert_ne!(
        traceparent, parent,
        "the client publishes under a child span"
    );
    client.close().await;
}

/// `submit` returns once confirmed; the reply reaches the reply handler with the job id.
#[tokio::test]
async fn submitted_job_reply_reaches_the_reply_handler() {
    let name = unique("rt");
    let method = format!("{name}.add");
    let _worker = spawn_worker(Worker::new(&name).method(method.clone(), add)).await;
    let (client, mut received) = client_with_events().await;
    let params = RawValue::from_string(r#"{"a":1,"b":2}"#.to_owned()).expect("JSON");
    let id = client
        .submit(&method, Some(&params), &CallOptions::default())
        .await
        .expect("confirmed");
    let event = within(10, "the submitted job's reply", received.recv())
        .await
        .expect("handler channel open");
    let ReplyEvent::Completed(reply) = event else {
        panic!("expected a completion, got {event:?}");
    };
    assert_eq!(reply.correlation_id, id);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON reply");
    assert_eq!(
        body,
        json!({"jsonrpc": "2.0", "result": {"sum": 3}, "id": id})
    );
    assert_eq!(client.pending_len(), 0);
    client.close().await;
}

/// A notification runs its handler and produces no reply.
#[tokio::test]
async fn notification_runs_without_a_reply() {
    let name = unique("rt");
    let method = format!("{name}.note");
    let (seen, mut noted) = tokio::sync::mpsc::unbounded_channel();
    let note = move |_: Context, params: serde_json::Value| {
        let seen = seen.clone();
        async move {
            let _ = seen.send(params);
            Ok::<_, RpcError>(())
        }
    };
    let worker = spawn_worker(Worker::new(&name).method(method.clone(), note)).await;
    let client = client().await;
    let params = RawValue::from_string(r#"{"hello":"world"}"#.to_owned()).expect("JSON");
    client
        .notify(&method, Some(&params), &CallOptions::default())
        .await
        .expect("confirmed");
    let got = within(10, "the notification to run", noted.recv())
        .await
        .expect("open");
    assert_eq!(got, json!({"hello": "world"}));
    assert_eq!(
        client
            .stats()
            .late_replies
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        worker
            .stats
            .replies_unroutable
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    client.close().await;
}

/// Two processes of one worker share its queue: both take jobs.
#[tokio::test]
async fn workers_of_one_name_share_the_queue() {
    let name = unique("rt");
    let method = format!("{name}.add");
    let first = spawn_worker(Worker::new(&name).method(method.clone(), add).prefetch(4))
        .await
        .keep_queues();
    let second = spawn_worker(Worker::new(&name).method(method.clone(), add).prefetch(4)).await;
    let client = client().await;
    let calls = (0..200).map(|i| {
        let client = client.clone();
        let method = method.clone();
        async move {
            client
                .call::<_, Sum>(&method, &json!({"a": i, "b": 1}), &CallOptions::default())
                .await
        }
    });
    let results = within(30, "200 calls", futures_util::future::join_all(calls)).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.expect("answered").sum, i as i64 + 1);
    }
    let a = first
        .stats
        .succeeded
        .load(std::sync::atomic::Ordering::Relaxed);
    let b = second
        .stats
        .succeeded
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(a + b, 200);
    assert!(a > 0 && b > 0, "both processes took jobs ({a} and {b})");
    client.close().await;
}
