//! Recovery: when the broker closes a worker's or a client's connection, they reconnect on their
//! own, redeclare what they need, and no call is left without an answer.

use std::sync::atomic::Ordering;
use std::time::Duration;

use intercomm_core::{CallOptions, Context, ReplyEvent, RpcClient, RpcError, Worker, WorkerState};
use serde_json::json;

use crate::helpers::{close_connection_from_broker, connector, spawn_worker, unique, within};

async fn slow_echo(_: Context, params: serde_json::Value) -> Result<serde_json::Value, RpcError> {
    // Slow enough (400 jobs ≈ 5 s at prefetch 8) that the broker-side close, which takes
    // `rabbitmqctl` a second or more on a busy machine, lands mid-load.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(params)
}

/// Closing a worker's connection mid-load: the worker reconnects and every call is answered
/// (jobs in flight are redelivered by the broker).
#[tokio::test]
async fn worker_recovers_and_in_flight_jobs_are_answered() {
    let name = unique("rec");
    let method = format!("{name}.slow");
    let mut worker = spawn_worker(
        Worker::new(&name)
            .method(method.clone(), slow_echo)
            .prefetch(8),
    )
    .await;
    let client = RpcClient::builder(connector("client"))
        .connect()
        .await
        .expect("connected");
    let calls: Vec<_> = (0..400)
        .map(|i| {
            let client = client.clone();
            let method = method.clone();
            tokio::spawn(async move {
                client
                    .call::<_, serde_json::Value>(
                        &method,
                        &json!({"i": i}),
                        &CallOptions::timeout(Duration::from_secs(60)),
                    )
                    .await
            })
        })
        .collect();
    within(30, "some jobs to finish before the cut", async {
        while worker.stats.succeeded.load(Ordering::Relaxed) < 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    close_connection_from_broker(&worker.connection_name).await;
    let done_at_cut = worker.stats.succeeded.load(Ordering::Relaxed);
    assert!(
        done_at_cut < 400,
        "the cut came mid-load ({done_at_cut} done)"
    );
    within(20, "the worker to reconnect", async {
        while worker.stats.connections.load(Ordering::Relaxed) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    for (i, call) in calls.into_iter().enumerate() {
        let answer = within(60, "every call to be answered", call)
            .await
            .expect("task")
            .expect("answered");
        assert_eq!(answer, json!({"i": i}));
    }
    assert_eq!(*worker.state.borrow(), WorkerState::Ready);
    assert_eq!(client.pending_len(), 0);
    worker.stop().await.expect("stops cleanly");
    client.close().await;
}

/// Closing a client's connection: a call waiting for its reply still gets it (the callback
/// queue outlives the connection), and the client reconnects for later calls.
#[tokio::test]
async fn client_recovers_and_waiting_call_gets_its_reply() {
    let name = unique("rec");
    let method = format!("{name}.slow");
    let (started, mut running) = tokio::sync::mpsc::unbounded_channel::<()>();
    let slow = move |_: Context, params: serde_json::Value| {
        let started = started.clone();
        async move {
            let _ = started.send(());
            tokio::time::sleep(Duration::from_millis(700)).await;
            Ok::<_, RpcError>(params)
        }
    };
    let _worker = spawn_worker(Worker::new(&name).method(method.clone(), slow)).await;
    let client_connector = connector("client");
    let client_name = client_connector.name().to_owned();
    let client = RpcClient::builder(client_connector)
        .connect()
        .await
        .expect("connected");
    let waiting = {
        let client = client.clone();
        let method = method.clone();
        tokio::spawn(async move {
            client
                .call::<_, serde_json::Value>(
                    &method,
                    &json!({"n": 1}),
                    &CallOptions::timeout(Duration::from_secs(20)),
                )
                .await
        })
    };
    within(10, "the job to be running", running.recv())
        .await
        .expect("handler channel open");
    let mut state = client.connection_state();
    close_connection_from_broker(&client_name).await;
    within(
        10,
        "the client to notice",
        state.wait_for(|connected| !connected),
    )
    .await
    .expect("state");
    within(
        10,
        "the client to reconnect",
        state.wait_for(|connected| *connected),
    )
    .await
    .expect("state");
    let answer = within(30, "the waiting call", waiting)
        .await
        .expect("task")
        .expect("answered after reconnect");
    assert_eq!(answer, json!({"n": 1}));
    let again: serde_json::Value = client
        .call(&method, &json!({"n": 2}), &CallOptions::default())
        .await
        .expect("calls work after the reconnect");
    assert_eq!(again, json!({"n": 2}));
    assert!(client.stats().connections.load(Ordering::Relaxed) >= 2);
    client.close().await;
}

/// Closing a client's connection while replies pour in: replies the broker had already sent but
/// the client had not handled are delivered again after the reconnect, so every submitted job is
/// completed and none expires for want of a reply that was lost on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_in_flight_at_a_connection_loss_are_not_lost() {
    const JOBS: usize = 1500;
    let name = unique("rec");
    let method = format!("{name}.echo");
    let _worker = spawn_worker(Worker::new(&name).method(
        method.clone(),
        |_: Context, params: serde_json::Value| async move { Ok::<_, RpcError>(params) },
    ))
    .await;
    let (events, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let client_connector = connector("client");
    let client_name = client_connector.name().to_owned();
    let client = RpcClient::builder(client_connector)
        .default_timeout(Duration::from_secs(30))
        .on_reply(move |event| {
            // A busy reply handler: the broker's deliveries pile up in the client meanwhile,
            // which is what the connection loss must not throw away.
            std::thread::sleep(Duration::from_millis(2));
            let _ = events.send(event);
        })
        .connect()
        .await
        .expect("connected");
    let mut submitted = std::collections::HashSet::new();
    for i in 0..JOBS {
        let params = serde_json::value::to_raw_value(&json!({"i": i})).expect("JSON");
        let id = client
            .submit(&method, Some(&params), &CallOptions::default())
            .await
            .expect("submitted");
        submitted.insert(id);
    }
    let mut completed = std::collections::HashSet::new();
    while completed.len() < 50 {
        match within(30, "the first replies", heard.recv()).await {
            Some(ReplyEvent::Completed(reply)) => {
                completed.insert(reply.correlation_id.clone());
            }
            other => panic!("unexpected event before the cut: {other:?}"),
        }
    }
    close_connection_from_broker(&client_name).await;
    // A publish on the dead connection is how the client learns of the loss while it still
    // holds undelivered replies.
    let probe = serde_json::value::to_raw_value(&json!({"probe": true})).expect("JSON");
    within(10, "a publish to fail on the closed connection", async {
        while client
            .submit(&method, Some(&probe), &CallOptions::default())
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    while completed.len() < JOBS {
        match within(45, "every submitted job's reply", heard.recv()).await {
            Some(ReplyEvent::Completed(reply)) => {
                completed.insert(reply.correlation_id.clone());
            }
            Some(ReplyEvent::Late(_)) => {}
            Some(ReplyEvent::Expired { correlation_id }) => {
                panic!("job {correlation_id} expired: its reply was lost")
            }
            None => panic!("the client stopped"),
        }
    }
    assert_eq!(completed, submitted);
    within(
        10,
        "the client to reconnect",
        client.connection_state().wait_for(|connected| *connected),
    )
    .await
    .expect("state");
    assert!(client.stats().connections.load(Ordering::Relaxed) >= 2);
    client.close().await;
}
