//! Declarations are idempotent; a mismatch is explained and leaves the process usable.

use intercomm_core::topology::{
    WorkerQueueSpec, dead_letter_queue, declare_worker_queue, worker_queue,
};
use intercomm_core::{CallOptions, Error, QueueType, Worker};

use crate::helpers::{client, delete_queues_blocking, raw_channel, spawn_worker, unique};

/// Declaring the same worker queue twice succeeds and changes nothing.
#[tokio::test]
async fn declaring_twice_is_idempotent() {
    let (connection, channel) = raw_channel().await;
    let name = unique("topo");
    let spec = WorkerQueueSpec {
        worker: name.clone(),
        queue_type: QueueType::Quorum,
        delivery_limit: 5,
    };
    let methods = vec![format!("{name}.a"), format!("{name}.b")];
    declare_worker_queue(&channel, &spec, &methods)
        .await
        .expect("first declaration");
    declare_worker_queue(&channel, &spec, &methods)
        .await
        .expect("second declaration");
    let _ = connection.close(200, "done".into()).await;
    delete_queues_blocking(vec![worker_queue(&name), dead_letter_queue(&name)]);
}

/// A queue that exists with another type gives an error naming the argument, the existing and
/// the wanted value; the worker stops instead of crash-looping, and the process goes on.
#[tokio::test]
async fn queue_type_mismatch_is_explained() {
    let name = unique("topo");
    let method = format!("{name}.echo");
    let classic = spawn_worker(
        Worker::new(&name)
            .method(method.clone(), intercomm_workers::echo::echo)
            .queue_type(QueueType::Classic),
    )
    .await;
    let quorum = Worker::new(&name)
        .method(method.clone(), intercomm_workers::echo::echo)
        .queue_type(QueueType::Quorum);
    let error = crate::helpers::within(
        20,
        "the mismatched worker to give up",
        quorum.run(
            &crate::helpers::connector("mismatch"),
            std::future::pending(),
        ),
    )
    .await
    .expect_err("the queue is classic");
    let Error::TopologyMismatch {
        name: queue,
        argument,
        existing,
        wanted,
        hint,
    } = &error
    else {
        panic!("expected a topology mismatch, got {error}");
    };
    assert_eq!(queue, &worker_queue(&name));
    assert_eq!(argument, "x-queue-type");
    assert_eq!(existing, "classic");
    assert_eq!(wanted, "quorum");
    assert!(hint.contains("INTERCOMM_QUEUE_TYPE=classic"), "{hint}");
    assert!(error.to_string().contains("x-queue-type"), "{error}");

    // The broker, the first worker and this process are unharmed.
    let client = client().await;
    let params =
        serde_json::value::to_raw_value(&serde_json::json!({"still": "fine"})).expect("raw");
    let result = client
        .call_raw(&method, Some(&params), &CallOptions::default())
        .await
        .expect("still served");
    assert_eq!(result.get(), r#"{"still":"fine"}"#);
    client.close().await;
    drop(classic);
}
