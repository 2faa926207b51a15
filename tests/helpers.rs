//! Test set-up: unique names, in-process workers and clients, raw publishing, broker-side
//! connection closing, bounded waits.

use std::future::Future;
use std::time::Duration;

use intercomm_core::topology::{dead_letter_queue, worker_queue};
use intercomm_core::{Connector, Error, ReplyEvent, RpcClient, Worker, WorkerState, WorkerStats};
use lapin::options::QueueDeleteOptions;
use lapin::{Channel, Connection};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The broker the tests use.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL")
        .unwrap_or_else(|_| intercomm_core::config::DEFAULT_AMQP_URL.to_owned())
}

/// `prefix` plus a short random suffix: a valid worker or method name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A connector with a unique connection name (so a test can close its own connection).
pub fn connector(role: &str) -> Connector {
    Connector::new(amqp_url(), unique(&format!("test_{role}")))
        .with_backoff(Duration::from_millis(50), Duration::from_millis(500))
}

/// Await `future` for at most `seconds`, failing the test with `what` otherwise.
pub async fn within<T>(seconds: u64, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(seconds), future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {seconds} s waiting for {what}"),
    }
}

/// A worker running in this process; its queues are deleted when it is dropped.
#[derive(Debug)]
pub struct TestWorker {
    pub name: String,
    pub connection_name: String,
    pub stats: Arc<WorkerStats>,
    pub state: tokio::sync::watch::Receiver<WorkerState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), Error>>>,
    keep_queues: bool,
}

/// Start `worker` and wait until it consumes.
pub async fn spawn_worker(worker: Worker) -> TestWorker {
    let name = worker.name().to_owned();
    let connector = connector(&format!("worker_{name}"));
    let connection_name = connector.name().to_owned();
    let stats = worker.stats();
    let mut state = worker.state();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        worker
            .run(&connector, async {
                let _ = stopped.await;
            })
            .await
    });
    within(
        20,
        "the worker to become ready",
        state.wait_for(|s| *s == WorkerState::Ready),
    )
    .await
    .expect("worker state channel open");
    TestWorker {
        name,
        connection_name,
        stats,
        state,
        stop: Some(stop),
        task: Some(task),
        keep_queues: false,
    }
}

impl TestWorker {
    /// Ask the worker to stop and wait (bounded) until it did; returns what `run` returned.
    pub async fn stop(&mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => within(30, "the worker to stop", task)
                .await
                .expect("worker task panicked"),
            None => Ok(()),
        }
    }

    /// Keep the queues when dropped (another worker process of the same name still uses them).
    pub fn keep_queues(mut self) -> Self {
        self.keep_queues = true;
        self
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if !self.keep_queues {
            delete_queues_blocking(vec![
                worker_queue(&self.name),
                dead_letter_queue(&self.name),
            ]);
        }
    }
}

/// Delete queues from a fresh thread and runtime, so it works from `Drop` (even in a panic).
pub fn delete_queues_blocking(queues: Vec<String>) {
    let deleted = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let connection = Connector::new(amqp_url(), "test_cleanup").connect().await?;
            let channel = connection.create_channel().await?;
            for queue in &queues {
                let _ = channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            let _ = connection.close(200, "cleanup".into()).await;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
    })
    .join();
    if let Ok(Err(error)) = deleted {
        eprintln!("cleanup failed: {error}");
    }
}

/// A client with a unique callback queue and connection name.
pub async fn client() -> RpcClient {
    RpcClient::builder(connector("client"))
        .connect()
        .await
        .expect("the broker is reachable")
}

/// A client whose reply events (completions, expiries, late replies) arrive on a channel.
pub async fn client_with_events() -> (RpcClient, tokio::sync::mpsc::UnboundedReceiver<ReplyEvent>) {
    let (events, received) = tokio::sync::mpsc::unbounded_channel();
    let client = RpcClient::builder(connector("client"))
        .on_reply(move |event| {
            let _ = events.send(event);
        })
        .connect()
        .await
        .expect("connected");
    (client, received)
}

/// A plain lapin connection and channel, for publishing hand-made messages.
pub async fn raw_channel() -> (Connection, Channel) {
    let connection = connector("raw")
        .connect()
        .await
        .expect("the broker is reachable");
    let channel = connection.create_channel().await.expect("a channel");
    (connection, channel)
}

/// Close the connection named `name` from the broker side (`rabbitmqctl close_connection`).
pub async fn close_connection_from_broker(name: &str) {
    let name = name.to_owned();
    let closed = tokio::task::spawn_blocking(move || {
        let listing = std::process::Command::new("rabbitmqctl")
            .args(["-q", "list_connections", "pid", "client_properties"])
            .output()
            .expect("rabbitmqctl runs");
        let text = String::from_utf8_lossy(&listing.stdout);
        let needle = format!("\"{name}\"");
        let pids: Vec<&str> = text
            .lines()
            .filter(|line| line.contains(&needle))
            .filter_map(|line| line.split_whitespace().next())
            .collect();
        assert!(!pids.is_empty(), "no broker connection named {name}");
        for pid in &pids {
            let status = std::process::Command::new("rabbitmqctl")
                .args(["-q", "close_connection", pid, "closed by an intercomm test"])
                .status()
                .expect("rabbitmqctl runs");
            assert!(status.success(), "closing {pid} failed");
        }
        pids.len()
    })
    .await
    .expect("rabbitmqctl task");
    assert!(closed > 0);
}

/// Publishes hand-made messages straight into a worker's queue and reads the replies, to test
/// what the worker does with messages RpcClient would never send.
#[derive(Debug)]
pub struct RawCaller {
    connection: Connection,
    pub channel: Channel,
    pub reply_queue: String,
    replies: lapin::Consumer,
}

impl RawCaller {
    pub async fn new() -> Self {
        use lapin::options::{BasicConsumeOptions, ConfirmSelectOptions, QueueDeclareOptions};
        let (connection, channel) = raw_channel().await;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        let reply_queue = unique("test_replies");
        channel
            .queue_declare(
                reply_queue.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..QueueDeclareOptions::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .expect("reply queue");
        let replies = channel
            .basic_consume(
                reply_queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .expect("consume replies");
        Self {
            connection,
            channel,
            reply_queue,
            replies,
        }
    }

    /// Properties of a well-formed job answered to this caller's queue.
    pub fn properties(&self, correlation_id: &str) -> lapin::BasicProperties {
        lapin::BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_correlation_id(correlation_id.into())
            .with_reply_to(self.reply_queue.as_str().into())
    }

    /// Publish `body` with `properties` straight into `rpc_queue_<worker>`.
    pub async fn publish(&self, worker: &str, body: &[u8], properties: lapin::BasicProperties) {
        let confirmation = self
            .channel
            .basic_publish(
                "".into(),
                worker_queue(worker).as_str().into(),
                lapin::options::BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(
            matches!(confirmation, lapin::Confirmation::Ack(None)),
            "{confirmation:?}"
        );
    }

    /// The next reply as delivered (properties included).
    pub async fn next_delivery(&mut self) -> lapin::message::Delivery {
        use futures_util::StreamExt;
        within(10, "a reply from the worker", self.replies.next())
            .await
            .expect("reply consumer open")
            .expect("reply delivery")
    }

    /// The next reply: (correlation id, parsed body).
    pub async fn next_reply(&mut self) -> (String, serde_json::Value) {
        let delivery = self.next_delivery().await;
        let correlation_id = delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        let body = serde_json::from_slice(&delivery.data).expect("replies are JSON");
        (correlation_id, body)
    }

    /// Wait until `rpc_queue_<worker>.dlq` holds `count` messages and return their bodies.
    pub async fn dead_letters(&self, worker: &str, count: usize) -> Vec<Vec<u8>> {
        let dlq = dead_letter_queue(worker);
        let mut bodies = Vec::new();
        within(10, "dead letters", async {
            while bodies.len() < count {
                match self
                    .channel
                    .basic_get(
                        dlq.as_str().into(),
                        lapin::options::BasicGetOptions { no_ack: true },
                    )
                    .await
                    .expect("basic.get on the DLQ")
                {
                    Some(message) => bodies.push(message.delivery.data.clone()),
                    None => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        bodies
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// The seed workers' services on a SQLite file at `database`, with events on their own
/// connection.
pub async fn seed_services(database: &std::path::Path) -> intercomm_workers::Services {
    let events = intercomm_core::events::EventPublisher::connect(connector("events"))
        .await
        .expect("events publisher");
    intercomm_workers::Services::connect(
        &format!("sqlite://{}", database.display()),
        Arc::new(events),
    )
    .await
    .expect("database opens and migrates")
}

/// Send `signal` (`-HUP`, `-TERM`) to a running child process.
pub fn send_signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("the process runs").to_string();
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} {pid} failed");
}

/// Submit `params` to `method` through the gateway at `base` (expecting 202); the job's id.
pub async fn submit_job(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: &str,
    params: serde_json::Value,
) -> String {
    let accepted: serde_json::Value = http
        .post(format!("{base}/v1/jobs/{method}"))
        .bearer_auth(token)
        .json(&params)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    accepted["job_id"].as_str().expect("a job id").to_owned()
}
