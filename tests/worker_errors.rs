//! How a worker answers what it cannot run: every error code of CONTRACT §3 a worker produces,
//! dead-lettering of unparseable jobs, deadlines, panics and batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use intercomm_core::envelope::{HEADER_DEADLINE, format_rfc3339};
use intercomm_core::{CallOptions, Context, Error, ErrorCode, RpcError, Worker};
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde::Deserialize;
use serde_json::json;

use crate::helpers::{RawCaller, client, spawn_worker, unique, within};

#[derive(Deserialize)]
struct Lookup {
    message_id: String,
    #[allow(dead_code)]
    limit: Option<u32>,
}

async fn lookup(_: Context, params: Lookup) -> Result<serde_json::Value, RpcError> {
    if params.message_id == "missing" {
        return Err(RpcError::not_found("no such message"));
    }
    if params.message_id == "panic" {
        panic!("the handler blew up");
    }
    Ok(json!({"message_id": params.message_id}))
}

/// A worker whose `<name>.count` counts how often it ran.
fn counting_worker(name: &str) -> (Worker, Arc<AtomicUsize>) {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let worker = Worker::new(name).method(
        format!("{name}.count"),
        move |_: Context, _: serde_json::Value| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, RpcError>(()) }
        },
    );
    (worker, ran)
}

fn lookup_worker(name: &str) -> Worker {
    Worker::new(name).method(format!("{name}.lookup"), lookup)
}

/// Undecodable params are -32602 with a JSON Pointer to the field.
#[tokio::test]
async fn invalid_params_say_where() {
    let name = unique("we");
    let _worker = spawn_worker(lookup_worker(&name)).await;
    let client = client().await;
    let error = client
        .call_raw(
            &format!("{name}.lookup"),
            Some(&serde_json::value::to_raw_value(&json!({"message_id": 7})).expect("raw")),
            &CallOptions::default(),
        )
        .await
        .expect_err("message_id must be a string");
    let Error::Remote(remote) = error else {
        panic!("expected a remote error, got {error}")
    };
    assert_eq!(remote.error_code(), ErrorCode::InvalidParams);
    assert_eq!(
        remote.data.as_ref().expect("data")["pointer"],
        "/message_id"
    );
    client.close().await;
}

/// With job definitions (`schemas/`, CONTRACT §4), params that break a method's `params` schema
/// are answered -32602 with every violation's pointer, and its handler does not run, however
/// lenient its own params type; methods without a definition are not checked.
#[tokio::test]
async fn params_are_checked_against_the_job_definition() {
    let name = unique("we");
    let checked = format!("{name}.greet");
    let unchecked = format!("{name}.free");
    let dir = std::env::temp_dir().join(unique("we_schemas"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let definition = json!({
        "method": checked,
        "worker": name,
        "summary": "greets (test)",
        "params": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "times": {"type": "integer", "minimum": 1}},
            "additionalProperties": false
        }
    });
    std::fs::write(dir.join(format!("{checked}.json")), definition.to_string()).expect("write");
    let definitions = intercomm_core::schema::SchemaSet::load_dir(&dir).expect("loads");
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = {
        let runs = Arc::clone(&runs);
        move |_: Context, params: serde_json::Value| {
            runs.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, RpcError>(params) }
        }
    };
    let worker = Worker::new(&name)
        .method(checked.clone(), counted.clone())
        .method(unchecked.clone(), counted)
        .definitions(&definitions);
    assert_eq!(worker.checked_methods(), vec![checked.as_str()]);
    let _worker = spawn_worker(worker).await;
    let client = client().await;
    let call = |method: String, params: Option<serde_json::Value>| {
        let client = client.clone();
        async move {
            let raw = params.map(|p| serde_json::value::to_raw_value(&p).expect("raw"));
            client
                .call_raw(&method, raw.as_deref(), &CallOptions::default())
                .await
        }
    };

    let error = call(checked.clone(), Some(json!({"name": 5, "times": 0})))
        .await
        .expect_err("the schema refuses it");
    let Error::Remote(remote) = error else {
        panic!("expected a remote error, got {error}")
    };
    assert_eq!(remote.error_code(), ErrorCode::InvalidParams);
    let data = remote.data.as_ref().expect("data");
    assert_eq!(data["pointer"], "/name");
    let pointers: Vec<&str> = data["errors"]
        .as_array()
        .expect("every violation")
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert_eq!(pointers, vec!["/name", "/times"], "{data}");

    let error = call(checked.clone(), None)
        .await
        .expect_err("name is required");
    assert!(
        matches!(&error, Error::Remote(e) if e.error_code() == ErrorCode::InvalidParams),
        "absent params count as {{}}: {error}"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "no handler ran for refused params"
    );

    let answer = call(checked, Some(json!({"name": "ada"})))
        .await
        .expect("valid");
    assert_eq!(answer.get(), r#"{"name":"ada"}"#);
    let answer = call(unchecked, Some(json!({"name": 5})))
        .await
        .expect("not checked");
    assert_eq!(answer.get(), r#"{"name":5}"#);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    client.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A handler's own error code reaches the caller; a panic is -32603 and the worker goes on.
#[tokio::test]
async fn handler_errors_and_panics_are_answered() {
    let name = unique("we");
    let _worker = spawn_worker(lookup_worker(&name)).await;
    let client = client().await;
    let method = format!("{name}.lookup");
    let error = client
        .call::<_, serde_json::Value>(
            &method,
            &json!({"message_id": "missing"}),
            &CallOptions::default(),
        )
        .await
        .expect_err("not found");
    assert!(
        matches!(&error, Error::Remote(e) if e.code == -32002),
        "{error}"
    );
    let error = client
        .call::<_, serde_json::Value>(
            &method,
            &json!({"message_id": "panic"}),
            &CallOptions::default(),
        )
        .await
        .expect_err("panics");
    let Error::Remote(remote) = error else {
        panic!("expected a remote error, got {error}")
    };
    assert_eq!(remote.code, -32603);
    assert!(
        !remote.message.contains("blew up"),
        "panic text stays in the worker's log"
    );
    let fine: serde_json::Value = client
        .call(
            &method,
            &json!({"message_id": "m1"}),
            &CallOptions::default(),
        )
        .await
        .expect("the worker survived the panic");
    assert_eq!(fine["message_id"], "m1");
    client.close().await;
}

/// A body that is not JSON is answered -32700 (id null) and dead-lettered.
#[tokio::test]
async fn not_json_is_a_parse_error_and_dead_lettered() {
    let name = unique("we");
    let _worker = spawn_worker(lookup_worker(&name)).await;
    let mut caller = RawCaller::new().await;
    caller
        .publish(&name, b"{not json", caller.properties("c-parse"))
        .await;
    let (correlation_id, reply) = caller.next_reply().await;
    assert_eq!(correlation_id, "c-parse");
    assert_eq!(reply["error"]["code"], -32700);
    assert_eq!(reply["id"], serde_json::Value::Null);
    let dead = caller.dead_letters(&name, 1).await;
    assert_eq!(dead[0], b"{not json");
    caller.close().await;
}

/// JSON that is not a request is -32600 (id kept) and dead-lettered; wrong content type too.
#[tokio::test]
async fn invalid_requests_are_refused_and_dead_lettered() {
    let name = unique("we");
    let _worker = spawn_worker(lookup_worker(&name)).await;
    let mut caller = RawCaller::new().await;
    caller
        .publish(
            &name,
            br#"{"jsonrpc":"1.0","method":"x","id":"r1"}"#,
            caller.properties("c-invalid"),
        )
        .await;
    let (_, reply) = caller.next_reply().await;
    assert_eq!(reply["error"]["code"], -32600);
    assert_eq!(reply["id"], "r1");

    let body = format!(
        r#"{{"jsonrpc":"2.0","method":"{name}.lookup","params":{{"message_id":"a"}},"id":"r2"}}"#
    );
    let properties = caller
        .properties("c-type")
        .with_content_type("text/plain".into());
    caller.publish(&name, body.as_bytes(), properties).await;
    let (_, reply) = caller.next_reply().await;
    assert_eq!(reply["error"]["code"], -32600);
    assert_eq!(reply["id"], "r2");
    assert!(
        reply["error"]["data"]
            .as_str()
            .is_some_and(|d| d.contains("content_type")),
        "{reply}"
    );
    caller.dead_letters(&name, 2).await;
    caller.close().await;
}

/// A request nobody can answer (no reply_to) is dead-lettered without running.
#[tokio::test]
async fn request_without_reply_to_is_dead_lettered() {
    let name = unique("we");
    let (worker, ran) = counting_worker(&name);
    let _worker = spawn_worker(worker).await;
    let caller = RawCaller::new().await;
    let body = format!(r#"{{"jsonrpc":"2.0","method":"{name}.count","id":"r1"}}"#);
    let properties = lapin::BasicProperties::default()
        .with_content_type("application/json".into())
        .with_correlation_id("c1".into());
    caller.publish(&name, body.as_bytes(), properties).await;
    caller.dead_letters(&name, 1).await;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    caller.close().await;
}

/// A method the worker does not serve is -32601 naming it.
#[tokio::test]
async fn unknown_method_is_method_not_found() {
    let name = unique("we");
    let _worker = spawn_worker(lookup_worker(&name)).await;
    let mut caller = RawCaller::new().await;
    caller
        .publish(
            &name,
            br#"{"jsonrpc":"2.0","method":"something.else","id":5}"#,
            caller.properties("c-unknown"),
        )
        .await;
    let (_, reply) = caller.next_reply().await;
    assert_eq!(reply["error"]["code"], -32601);
    assert_eq!(reply["error"]["data"]["method"], "something.else");
    assert_eq!(reply["id"], 5);
    caller.close().await;
}

/// A job whose deadline passed in the queue is answered -32000 and never run.
#[tokio::test]
async fn expired_job_is_not_run() {
    let name = unique("we");
    let (worker, ran) = counting_worker(&name);
    let _worker = spawn_worker(worker).await;
    let mut caller = RawCaller::new().await;
    let past = format_rfc3339(SystemTime::now() - Duration::from_secs(5)).expect("formats");
    let mut headers = FieldTable::default();
    headers.insert(
        HEADER_DEADLINE.into(),
        AMQPValue::LongString(LongString::from(past.as_str())),
    );
    let body = format!(r#"{{"jsonrpc":"2.0","method":"{name}.count","id":"late"}}"#);
    caller
        .publish(
            &name,
            body.as_bytes(),
            caller.properties("c-late").with_headers(headers),
        )
        .await;
    let (_, reply) = caller.next_reply().await;
    assert_eq!(reply["error"]["code"], -32000);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the handler never ran");
    caller.close().await;
}

/// A handler still running at the deadline is cancelled and -32000 answered at the deadline.
#[tokio::test]
async fn overrunning_handler_is_cancelled() {
    struct DropFlag(Arc<AtomicUsize>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let name = unique("we");
    let dropped = Arc::new(AtomicUsize::new(0));
    let flag = Arc::clone(&dropped);
    let worker = Worker::new(&name).method(
        format!("{name}.slow"),
        move |_: Context, _: serde_json::Value| {
            let guard = DropFlag(Arc::clone(&flag));
            async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(guard);
                Ok::<_, RpcError>(())
            }
        },
    );
    let _worker = spawn_worker(worker).await;
    let client = client().await;
    let started = std::time::Instant::now();
    let error = client
        .call_raw(
            &format!("{name}.slow"),
            None,
            &CallOptions::timeout(Duration::from_millis(500)),
        )
        .await
        .expect_err("overruns");
    // The caller's own deadline and the worker's are the same instant; either answer is right.
    assert!(
        matches!(&error, Error::Remote(e) if e.code == -32000)
            || matches!(error, Error::Timeout(_)),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    within(5, "the handler to be cancelled", async {
        while dropped.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    client.close().await;
}

/// A batch is answered as a batch: notifications omitted, each error in place, ids kept.
#[tokio::test]
async fn batches_are_answered_as_batches() {
    let name = unique("we");
    let _worker = spawn_worker(lookup_worker(&name)).await;
    let mut caller = RawCaller::new().await;
    let body = format!(
        r#"[{{"jsonrpc":"2.0","method":"{name}.lookup","params":{{"message_id":"a"}},"id":1}},
            {{"jsonrpc":"2.0","method":"{name}.lookup","params":{{"message_id":"n"}}}},
            {{"jsonrpc":"2.0","method":"nope","id":2}},
            {{"foo":"boo"}},
            {{"jsonrpc":"2.0","method":"{name}.lookup","params":{{"message_id":"missing"}},"id":"x"}}]"#
    );
    caller
        .publish(&name, body.as_bytes(), caller.properties("c-batch"))
        .await;
    let (_, reply) = caller.next_reply().await;
    let replies = reply.as_array().expect("a batch reply");
    assert_eq!(replies.len(), 4, "{reply}");
    assert_eq!(
        replies[0],
        json!({"jsonrpc":"2.0","result":{"message_id":"a"},"id":1})
    );
    assert_eq!(replies[1]["error"]["code"], -32601);
    assert_eq!(replies[1]["id"], 2);
    assert_eq!(replies[2]["error"]["code"], -32600);
    assert_eq!(replies[2]["id"], serde_json::Value::Null);
    assert_eq!(replies[3]["error"]["code"], -32002);
    assert_eq!(replies[3]["id"], "x");

    // An empty batch is one Invalid Request; a batch of notifications gets no reply at all.
    caller
        .publish(&name, b"[]", caller.properties("c-empty"))
        .await;
    let (correlation_id, reply) = caller.next_reply().await;
    assert_eq!(correlation_id, "c-empty");
    assert_eq!(reply["error"]["code"], -32600);
    let notes =
        format!(r#"[{{"jsonrpc":"2.0","method":"{name}.lookup","params":{{"message_id":"n"}}}}]"#);
    caller
        .publish(&name, notes.as_bytes(), caller.properties("c-notes"))
        .await;
    let single = format!(
        r#"{{"jsonrpc":"2.0","method":"{name}.lookup","params":{{"message_id":"z"}},"id":9}}"#
    );
    caller
        .publish(&name, single.as_bytes(), caller.properties("c-after"))
        .await;
    let (correlation_id, _) =
        within(10, "the reply after the notifications", caller.next_reply()).await;
    assert_eq!(
        correlation_id, "c-after",
        "the notification batch got no reply"
    );
    caller.close().await;
}

/// Malformed bodies straight into the queue — random bytes, invalid UTF-8, 10 000 levels of
/// nesting, 10 MiB of garbage — are each answered (-32700, or -32600 for the nested arrays,
/// which are JSON but no request) and dead-lettered, and the worker keeps serving.
#[tokio::test]
async fn malformed_bodies_are_answered_and_the_worker_stays_up() {
    let name = unique("we");
    let _worker = spawn_worker(lookup_worker(&name)).await;
    let mut caller = RawCaller::new().await;
    let random: Vec<u8> = (0..512u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let invalid_utf8 = b"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\xfe\",\"id\":1}".to_vec();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let huge = vec![b'x'; 10 * 1024 * 1024];
    let bodies = [random, invalid_utf8, deep, huge];
    for (index, body) in bodies.iter().enumerate() {
        caller
            .publish(&name, body, caller.properties(&format!("bad-{index}")))
            .await;
    }
    let mut answered = std::collections::HashSet::new();
    for _ in 0..bodies.len() {
        let (correlation_id, reply) = caller.next_reply().await;
        let error = if reply.is_array() {
            &reply[0]["error"]
        } else {
            &reply["error"]
        };
        let expected = if correlation_id == "bad-2" {
            -32600
        } else {
            -32700
        };
        assert_eq!(error["code"], expected, "{correlation_id}: {reply}");
        answered.insert(correlation_id);
    }
    assert_eq!(answered.len(), bodies.len());
    caller.dead_letters(&name, bodies.len()).await;
    let client = client().await;
    let fine: serde_json::Value = client
        .call(
            &format!("{name}.lookup"),
            &json!({"message_id": "still-here"}),
            &CallOptions::default(),
        )
        .await
        .expect("the worker is still up");
    assert_eq!(fine["message_id"], "still-here");
    client.close().await;
    caller.close().await;
}

/// A job with a `traceparent` is answered with the contract's reply properties and no headers:
/// the trace reaches the handler (`roundtrip::context_carries_user_deadline_and_trace`), and a
/// headers table on every reply would cost the broker for nobody (docs/BENCHMARKS.md).
#[tokio::test]
async fn replies_carry_the_contracts_properties_and_no_headers() {
    let name = unique("we");
    let _worker = spawn_worker(lookup_worker(&name)).await;
    let mut caller = RawCaller::new().await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut headers = FieldTable::default();
    headers.insert(
        "traceparent".into(),
        AMQPValue::LongString(LongString::from(parent)),
    );
    let body = format!(
        r#"{{"jsonrpc":"2.0","method":"{name}.lookup","params":{{"message_id":"t"}},"id":1}}"#
    );
    caller
        .publish(
            &name,
            body.as_bytes(),
            caller.properties("c-trace").with_headers(headers),
        )
        .await;
    let delivery = caller.next_delivery().await;
    let properties = &delivery.properties;
    assert_eq!(
        properties.correlation_id().as_ref().map(|id| id.as_str()),
        Some("c-trace")
    );
    assert_eq!(
        properties.content_type().as_ref().map(|ct| ct.as_str()),
        Some("application/json")
    );
    assert_eq!(*properties.delivery_mode(), Some(2));
    assert!(
        properties.headers().is_none(),
        "the reply has headers: {:?}",
        properties.headers()
    );
    caller.close().await;
}
