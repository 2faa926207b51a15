//! The seed system end to end: the messages, subscriptions and users workers on a real database,
//! the gateway with the repository's `schemas/`, pushes over the WebSocket and SSE.
//!
//! These workers have fixed names (`rpc_queue_messages`, …), so the tests here take a lock and
//! run one at a time; nothing else in the suite uses those names.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use intercomm_core::{CallOptions, Error, Settings};
use intercomm_gateway::auth::{AuthSettings, Secret, mint_hs256};
use intercomm_gateway::{Application, GatewaySettings};
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestWorker, amqp_url, client, spawn_worker, unique, within};

const SECRET: &str = "seed-flow-secret";

/// One seed system at a time: the workers' names are fixed.
pub(crate) static SEED: Mutex<()> = Mutex::const_new(());

struct Seed {
    url: String,
    http: reqwest::Client,
    workers: Vec<TestWorker>,
    stop_gateway: Option<oneshot::Sender<()>>,
    database: std::path::PathBuf,
}

impl Drop for Seed {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_gateway.take() {
            let _ = stop.send(());
        }
        // The messages workers keep their shared queue; it goes once they all have.
        drop(std::mem::take(&mut self.workers));
        crate::helpers::delete_queues_blocking(vec![
            intercomm_core::topology::worker_queue("messages"),
            intercomm_core::topology::dead_letter_queue("messages"),
        ]);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.database.display()));
        }
    }
}

async fn start_seed(messages_workers: usize) -> Seed {
    let database = std::env::temp_dir().join(format!("{}.db", unique("seed")));
    let services = crate::helpers::seed_services(&database).await;
    let mut workers = Vec::new();
    for _ in 0..messages_workers {
        let worker = intercomm_workers::build("messages", &services).expect("messages worker");
        workers.push(spawn_worker(worker.prefetch(16)).await.keep_queues());
    }
    for name in ["subscriptions", "users"] {
        let worker = intercomm_workers::build(name, &services).expect("worker");
        workers.push(spawn_worker(worker).await);
    }
    let auth = AuthSettings {
        hs256_secret: Some(Secret::new(SECRET.into())),
        ..AuthSettings::default()
    };
    let core = Settings {
        amqp_url: amqp_url(),
        ..Settings::default()
    };
    let mut settings = GatewaySettings::new(core, auth);
    settings.schemas_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let application = Application::build_with_listener(settings, listener)
        .await
        .expect("gateway");
    let url = format!("http://127.0.0.1:{}", application.port());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Seed {
        url,
        http: reqwest::Client::new(),
        workers,
        stop_gateway: Some(stop),
        database,
    }
}

fn token(sub: &str) -> String {
    mint_hs256(
        &Secret::new(SECRET.into()),
        sub,
        Duration::from_secs(600),
        None,
        None,
    )
    .expect("token")
}

impl Seed {
    /// Send and wait (Prefer: wait) for the job; returns (status, body).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        sub: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token(sub))
            .header("prefer", "wait=10");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn websocket(
        &self,
        sub: &str,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let ws_url = format!(
            "{}/v1/ws?access_token={}",
            self.url.replace("http://", "ws://"),
            token(sub)
        );
        let (socket, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("websocket connects");
        socket
    }
}

/// Wait on a WebSocket for the first JSON message satisfying `matches`.
async fn next_matching<S>(socket: &mut S, what: &str, matches: impl Fn(&Value) -> bool) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    within(15, what, async {
        loop {
            let message = socket.next().await.expect("socket open").expect("frame");
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).expect("JSON frames");
                if matches(&value) {
                    return value;
                }
            }
        }
    })
    .await
}

/// The whole seed flow: A messages B, B is pushed the event on its WebSocket and fetches the
/// message; C cannot read it; A's buffer flow with BUFFER_READY and octet-stream; typed user
/// messages; subscriptions fan out; GET_SID.
#[tokio::test]
async fn seed_flow_end_to_end() {
    let _one_at_a_time = SEED.lock().await;
    let seed = start_seed(1).await;
    let (alice, bob, carol) = (unique("alice"), unique("bob"), unique("carol"));

    let mut bob_ws = seed.websocket(&bob).await;
    bob_ws
        .send(Message::Text(r#"{"type":"GET_SID"}"#.into()))
        .await
        .expect("send");
    let sid = next_matching(&mut bob_ws, "the session id", |v| v["type"] == "SID").await;
    assert!(sid["sid"].as_str().is_some_and(|s| !s.is_empty()), "{sid}");

    // A sends B a message; B is pushed NEW_MESSAGE and fetches it.
    let (status, job) = seed
        .send(
            reqwest::Method::POST,
            "/v1/messages",
            &alice,
            Some(json!({"sender": alice, "receiver": bob, "body": "merhaba"})),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["status"], "succeeded", "{job}");
    let message_id = job["result"]["message_id"]
        .as_str()
        .expect("message id")
        .to_owned();
    let event = next_matching(&mut bob_ws, "B's NEW_MESSAGE event", |v| {
        v["type"] == "event" && v["event"]["type"] == "NEW_MESSAGE"
    })
    .await;
    assert_eq!(event["event"]["message_id"], message_id.as_str());
    let (status, fetched) = seed
        .send(
            reqwest::Method::GET,
            &format!("/v1/messages/{message_id}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["result"]["body"], "merhaba", "{fetched}");
    assert_eq!(fetched["result"]["sender"], alice.as_str());

    // C may not read it: the job fails with -32002, as for a message that does not exist.
    let (_, refused) = seed
        .send(
            reqwest::Method::GET,
            &format!("/v1/messages/{message_id}"),
            &carol,
            None,
        )
        .await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["error"]["code"], -32002);
    // And C's own list is C's alone: B asking for it is refused by the gateway (claimer).
    let (status, _) = seed
        .send(
            reqwest::Method::GET,
            &format!("/v1/users/{carol}/messages"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, listed) = seed
        .send(
            reqwest::Method::GET,
            &format!("/v1/users/{bob}/messages?limit=10"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        listed["result"]["messages"][0]["message_id"],
        message_id.as_str(),
        "{listed}"
    );

    // A's buffer flow: raw bytes in, BUFFER_READY pushed, fetched as JSON and as bytes.
    let mut alice_ws = seed.websocket(&alice).await;
    let bytes: Vec<u8> = vec![0, 159, 146, 150, 255, b'x'];
    let response = seed
        .http
        .post(format!("{}/v1/users/{alice}/buffers", seed.url))
        .bearer_auth(token(&alice))
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 202);
    let ready = next_matching(&mut alice_ws, "BUFFER_READY", |v| {
        v["type"] == "event" && v["event"]["type"] == "BUFFER_READY"
    })
    .await;
    let buffer_uuid = ready["event"]["buffer_uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let (status, as_json) = seed
        .send(
            reqwest::Method::GET,
            &format!("/v1/buffers/{buffer_uuid}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let decoded = BASE64
        .decode(as_json["result"]["buffer_msg"].as_str().expect("base64"))
        .expect("valid base64");
    assert_eq!(decoded, bytes);
    let raw = seed
        .http
        .get(format!("{}/v1/buffers/{buffer_uuid}", seed.url))
        .bearer_auth(token(&alice))
        .header("accept", "application/octet-stream")
        .send()
        .await
        .expect("answer");
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.headers()["content-type"], "application/octet-stream");
    assert_eq!(raw.bytes().await.expect("bytes").to_vec(), bytes);
    let other = seed
        .http
        .get(format!("{}/v1/buffers/{buffer_uuid}", seed.url))
        .bearer_auth(token(&bob))
        .header("accept", "application/octet-stream")
        .send()
        .await
        .expect("answer");
    assert_eq!(
        other.status(),
        404,
        "another user's buffer does not exist for them"
    );

    // Typed user messages: the allowed types are recorded; others refused.
    let (status, typed) = seed
        .send(
            reqwest::Method::POST,
            &format!("/v1/users/{alice}/messages/typed"),
            &alice,
            Some(json!({"type": "FRAME_RENDERED", "data": {"frame": 12}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(typed["status"], "succeeded", "{typed}");
    let (status, _) = seed
        .send(
            reqwest::Method::POST,
            &format!("/v1/users/{alice}/messages/typed"),
            &alice,
            Some(json!({"type": "EXPLODED", "data": {}})),
        )
        .await;
    assert_eq!(status, 422, "the gateway's schema refuses unknown types");
    let direct = client().await;
    let error = direct
        .call::<_, Value>(
            "user_message",
            &json!({"user_id": alice, "type": "EXPLODED", "data": {}}),
            &CallOptions::timeout(Duration::from_secs(10)),
        )
        .await
        .expect_err("the worker refuses unknown types too");
    let Error::Remote(remote) = error else {
        panic!("expected a remote error, got {error}")
    };
    assert_eq!(remote.code, -32602);
    let said = serde_json::to_string(&remote).expect("JSON");
    assert!(
        said.contains("FRAME_RENDERED")
            && said.contains("RENDER_COMPLETED")
            && said.contains("TEST"),
        "{said}"
    );
    direct.close().await;

    // Subscriptions fan out: B and C subscribe; A publishes; B is pushed the payload.
    let topic = unique("news").replace('_', "-");
    for user in [&bob, &carol] {
        let (status, _) = seed
            .send(
                reqwest::Method::POST,
                &format!("/v1/users/{user}/subscriptions"),
                user,
                Some(json!({"topic": topic})),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, published) = seed
        .send(
            reqwest::Method::POST,
            &format!("/v1/topics/{topic}/events"),
            &alice,
            Some(json!({"payload": {"headline": "hi"}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(published["result"]["delivered"], 2, "{published}");
    let pushed = next_matching(&mut bob_ws, "the topic event", |v| {
        v["type"] == "event" && v["event"]["type"] == "TOPIC_EVENT"
    })
    .await;
    assert_eq!(pushed["event"]["payload"], json!({"headline": "hi"}));
    let (_, listed) = seed
        .send(
            reqwest::Method::GET,
            &format!("/v1/users/{bob}/subscriptions"),
            &bob,
            None,
        )
        .await;
    assert_eq!(listed["result"]["topics"], json!([topic]));
}

/// Three workers of `messages` on one queue take 2 000 jobs: every job is answered once and
/// each worker handled some.
#[tokio::test]
async fn three_messages_workers_share_two_thousand_jobs() {
    let _one_at_a_time = SEED.lock().await;
    let database = std::env::temp_dir().join(format!("{}.db", unique("scale")));
    let services = crate::helpers::seed_services(&database).await;
    let mut workers = Vec::new();
    for _ in 0..3 {
        let worker = intercomm_workers::build("messages", &services)
            .expect("worker")
            .prefetch(8);
        workers.push(spawn_worker(worker).await.keep_queues());
    }
    let client = client().await;
    let sender = unique("sender");
    let semaphore = Arc::new(tokio::sync::Semaphore::new(64));
    let calls = (0..2000).map(|i| {
        let client = client.clone();
        let sender = sender.clone();
        let semaphore = Arc::clone(&semaphore);
        async move {
            let _permit = semaphore.acquire().await.expect("open");
            client
                .call::<_, Value>(
                    "send_message",
                    &json!({"sender": sender, "receiver": "bob", "body": format!("m{i}")}),
                    &CallOptions::timeout(Duration::from_secs(60)),
                )
                .await
        }
    });
    let results = within(120, "2 000 calls", futures_util::future::join_all(calls)).await;
    let mut ids = std::collections::HashSet::new();
    for result in results {
        let reply = result.expect("every job is answered");
        assert!(
            ids.insert(reply["message_id"].as_str().expect("id").to_owned()),
            "no job answered twice"
        );
    }
    assert_eq!(ids.len(), 2000);
    let handled: Vec<u64> = workers
        .iter()
        .map(|w| w.stats.succeeded.load(Ordering::Relaxed))
        .collect();
    assert_eq!(handled.iter().sum::<u64>(), 2000, "{handled:?}");
    assert!(
        handled.iter().all(|&n| n > 0),
        "each worker handled some: {handled:?}"
    );
    assert_eq!(client.stats().late_replies.load(Ordering::Relaxed), 0);
    client.close().await;
    let last = workers.pop().map(|w| w.name.clone());
    drop(workers);
    if let Some(name) = last {
        crate::helpers::delete_queues_blocking(vec![
            intercomm_core::topology::worker_queue(&name),
            intercomm_core::topology::dead_letter_queue(&name),
        ]);
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
}
