//! `intercomm call`: prints the result, and its exit code tells the outcomes apart; the runtime
//! thread setting every command reads.

use std::process::Output;
use std::time::Duration;

use intercomm_core::{Context, RpcError, Worker};
use lapin::options::QueueDeleteOptions;
use serde_json::json;

use crate::helpers::{amqp_url, raw_channel, spawn_worker, unique};

async fn intercomm(args: &[&str]) -> Output {
    intercomm_with(args, &[]).await
}

/// Run `intercomm <args>` against the test broker, `envs` set last (they may name another).
pub(crate) async fn intercomm_with(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_intercomm"));
    command
        .args(args)
        .env("AMQP_URL", amqp_url())
        .env("RUST_LOG", "error")
        .envs(envs.iter().copied());
    crate::helpers::within(30, "the intercomm command", command.output())
        .await
        .expect("the binary runs")
}

/// `intercomm call` prints the result and exits 0; a remote error exits 3.
#[tokio::test]
async fn call_prints_the_result_or_the_remote_error() {
    let name = unique("cli");
    let method = format!("{name}.greet");
    let greet = |context: Context, params: serde_json::Value| async move {
        match params["name"].as_str() {
            Some(name) => Ok(json!({"greeting": format!("hello {name}"), "user": context.user()})),
            None => Err(RpcError::invalid_params("/name", "required")),
        }
    };
    let _worker = spawn_worker(Worker::new(&name).method(method.clone(), greet)).await;
    let output = intercomm(&["call", &method, r#"{"name":"ada"}"#, "--user", "user_1"]).await;
    assert!(output.status.success(), "{output:?}");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("prints JSON");
    assert_eq!(printed, json!({"greeting": "hello ada", "user": "user_1"}));

    let output = intercomm(&["call", &method, "{}"]).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let printed: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("prints the error");
    assert_eq!(printed["code"], -32602);
}

/// Unroutable exits 4, timeout exits 5, bad params JSON exits 1 with a message.
#[tokio::test]
async fn call_exit_codes_tell_failures_apart() {
    let method = unique("nobody").replace('_', ".");
    let output = intercomm(&["call", &method, "{}"]).await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("unroutable"));

    let (connection, channel) = raw_channel().await;
    let idle = unique("idle").replace('_', ".");
    let queue = crate::client::bind_without_consumer(&channel, &idle).await;
    let started = std::time::Instant::now();
    let output = intercomm(&["call", &idle, "{}", "--timeout", "300ms"]).await;
    assert_eq!(output.status.code(), Some(5), "{output:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("delete");
    let _ = connection.close(200, "done".into()).await;

    let output = intercomm(&["call", "echo", "{not json"]).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("not JSON"));
}

/// `INTERCOMM_RUNTIME_THREADS` picks the runtime's threads for any command: a multi-threaded
/// client still calls, and a value that is not a thread count stops the process, naming it.
#[tokio::test]
async fn runtime_threads_are_honoured_and_checked() {
    let name = unique("cli");
    let method = format!("{name}.echo");
    let echo = |_: Context, params: serde_json::Value| async move { Ok::<_, RpcError>(params) };
    let _worker = spawn_worker(Worker::new(&name).method(method.clone(), echo)).await;
    let output = intercomm_with(
        &["call", &method, r#"{"n":1}"#],
        &[("INTERCOMM_RUNTIME_THREADS", "3")],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("prints JSON");
    assert_eq!(printed, json!({"n": 1}));

    for bad in ["0", "two"] {
        let output = intercomm_with(
            &["call", &method, "{}"],
            &[("INTERCOMM_RUNTIME_THREADS", bad)],
        )
        .await;
        assert!(!output.status.success(), "{bad}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("INTERCOMM_RUNTIME_THREADS"),
            "{bad}: {stderr}"
        );
    }
}
