//! A job store shared by several gateways, in Redis: a job submitted through one gateway is
//! readable, long-pollable and pushed through any other, and survives a gateway restart.
//!
//! Keys (under a prefix, default `intercomm`): `<prefix>:job:<id>` the job (JSON, expiring with
//! the retention), `<prefix>:idem:<subject>:<key>` an idempotency key's job id, `<prefix>:done:<id>`
//! the first completion's claim (`SET NX`: the first reply wins across gateways). Completions are
//! published on `<prefix>:completions` and every gateway's store relays them to its own
//! listeners (long-polls, SSE, WebSockets).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::StreamExt;
use intercomm_core::RpcError;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::jobs::{
    Completion, Created, Finished, Job, JobLinks, JobStatus, JobStore, StoreError, finish,
};

/// Completions buffered for slow local listeners.
const EVENT_BUFFER: usize = 4096;

/// Claim a job's completion (`KEYS[1]`, `SET NX`) and, only if the claim is this one, write the
/// final job (`KEYS[2]` = `ARGV[1]`); both expire after `ARGV[2]` ms. Returns 1 if claimed.
static CLAIM_AND_WRITE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('SET', KEYS[1], 1, 'NX', 'PX', ARGV[2]) then
            redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
            return 1
        end
        return 0",
    )
});

/// A job as stored: everything, the owner and key included.
#[derive(Serialize, Deserialize)]
struct Stored {
    job_id: String,
    method: String,
    owner: String,
    status: JobStatus,
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<RpcError>,
    created_at: String,
    #[serde(default)]
    completed_at: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
    accepted_unix_ms: u64,
    /// Which store published this completion (each relays only the others').
    #[serde(default)]
    origin: Option<String>,
}

impl Stored {
    fn from_job(job: &Job) -> Self {
        let age = job.accepted.elapsed();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            job_id: job.job_id.clone(),
            method: job.method.clone(),
            owner: job.owner.clone(),
            status: job.status,
            result: job.result.clone(),
            error: job.error.clone(),
            created_at: job.created_at.clone(),
            completed_at: job.completed_at.clone(),
            idempotency_key: job.idempotency_key.clone(),
            accepted_unix_ms: u64::try_from(now.saturating_sub(age).as_millis()).unwrap_or(0),
            origin: None,
        }
    }

    fn into_job(self) -> Job {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let age = now.saturating_sub(Duration::from_millis(self.accepted_unix_ms));
        Job {
            links: JobLinks {
                this: format!("/v1/jobs/{}", self.job_id),
            },
            job_id: self.job_id,
            method: self.method,
            owner: self.owner,
            status: self.status,
            result: self.result,
            error: self.error,
            created_at: self.created_at,
            completed_at: self.completed_at,
            idempotency_key: self.idempotency_key,
            accepted: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
        }
    }
}

/// The Redis job store. Cheap to clone.
#[derive(Clone)]
pub struct RedisJobStore {
    connection: ConnectionManager,
    origin: Arc<str>,
    prefix: Arc<str>,
    retention: Duration,
    completions: broadcast::Sender<Job>,
    /// Jobs this gateway accepted and has not seen complete (for its pending gauge).
    queued: Arc<AtomicI64>,
    relay: Arc<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for RedisJobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisJobStore")
            .field("prefix", &self.prefix)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisJobStore {
    fn drop(&mut self) {
        if Arc::strong_count(&self.relay) == 1 {
            self.relay.abort();
        }
    }
}

fn store_error(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

impl RedisJobStore {
    /// Connect to `url` (`redis://host:port/db`), keeping jobs under `prefix` for `retention`.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str, retention: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(store_error)?;
        let connection = client.get_connection_manager().await.map_err(store_error)?;
        let channel = format!("{prefix}:completions");
        let origin: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        // Subscribe once here, so a store that starts fine is known to relay.
        let mut pubsub = client.get_async_pubsub().await.map_err(store_error)?;
        pubsub.subscribe(&channel).await.map_err(store_error)?;
        let (completions, _) = broadcast::channel(EVENT_BUFFER);
        let relay = tokio::spawn(relay(
            client,
            channel,
            Arc::clone(&origin),
            completions.clone(),
            pubsub,
        ));
        Ok(Self {
            connection,
            origin,
            prefix: Arc::from(prefix),
            retention,
            completions,
            queued: Arc::default(),
            relay: Arc::new(relay),
        })
    }

    fn job_key(&self, job_id: &str) -> String {
        format!("{}:job:{job_id}", self.prefix)
    }

    fn idempotency_key(&self, owner: &str, key: &str) -> String {
        format!("{}:idem:{owner}:{key}", self.prefix)
    }

    /// One job this gateway accepted is no longer queued.
    fn settled(&self) {
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some((n - 1).max(0))
            });
    }

    fn retention_ms(&self) -> u64 {
        u64::try_from(self.retention.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    async fn read(&self, job_id: &str) -> Result<Option<Job>, StoreError> {
        let mut connection = self.connection.clone();
        let text: Option<String> = redis::cmd("GET")
            .arg(self.job_key(job_id))
            .query_async(&mut connection)
            .await
            .map_err(store_error)?;
        text.map(|text| {
            serde_json::from_str::<Stored>(&text)
                .map(Stored::into_job)
                .map_err(store_error)
        })
        .transpose()
    }
}

#[async_trait]
impl JobStore for RedisJobStore {
    async fn create(&self, job: Job) -> Result<Created, StoreError> {
        let mut connection = self.connection.clone();
        if let Some(key) = &job.idempotency_key {
            let index = self.idempotency_key(&job.owner, key);
            let claimed: Option<String> = redis::cmd("SET")
                .arg(&index)
                .arg(&job.job_id)
                .arg("NX")
                .arg("PX")
                .arg(self.retention_ms())
                .query_async(&mut connection)
                .await
                .map_err(store_error)?;
            if claimed.is_none() {
                let existing: Option<String> = redis::cmd("GET")
                    .arg(&index)
                    .query_async(&mut connection)
                    .await
                    .map_err(store_error)?;
                if let Some(existing) = existing
                    && let Some(job) = self.read(&existing).await?
                {
                    return Ok(Created::Existing(Box::new(job)));
                }
            }
        }
        let text = serde_json::to_string(&Stored::from_job(&job)).map_err(store_error)?;
        let () = redis::cmd("SET")
            .arg(self.job_key(&job.job_id))
            .arg(text)
            .arg("PX")
            .arg(self.retention_ms())
            .query_async(&mut connection)
            .await
            .map_err(store_error)?;
        self.queued.fetch_add(1, Ordering::Relaxed);
        Ok(Created::New)
    }

    async fn get(&self, job_id: &str) -> Result<Option<Job>, StoreError> {
        self.read(job_id).await
    }

    async fn complete(
        &self,
        job_id: &str,
        completion: Completion,
    ) -> Result<Option<Finished>, StoreError> {
        let Some(mut job) = self.read(job_id).await? else {
            return Ok(None);
        };
        if job.status.is_final() {
            return Ok(None);
        }
        let mut connection = self.connection.clone();
        finish(&mut job, completion);
        let mut stored = Stored::from_job(&job);
        stored.origin = Some(self.origin.to_string());
        let text = serde_json::to_string(&stored).map_err(store_error)?;
        // The first completion claims the job; every other gateway's reply for it loses here.
        // Claim and write are one script, so a failure between them cannot leave a job claimed
        // but never written, which a retried completion would then skip.
        let claimed: bool = CLAIM_AND_WRITE
            .key(format!("{}:done:{job_id}", self.prefix))
            .key(self.job_key(job_id))
            .arg(&text)
            .arg(self.retention_ms())
            .invoke_async(&mut connection)
            .await
            .map_err(store_error)?;
        if !claimed {
            return Ok(None);
        }
        let finished = Finished::from(&job);
        // Listeners of this gateway hear it at once; the others through the channel.
        let _ = self.completions.send(job);
        let published: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(format!("{}:completions", self.prefix))
            .arg(&text)
            .query_async(&mut connection)
            .await;
        if let Err(error) = published {
            tracing::warn!(%job_id, %error, "completion recorded but not announced to other gateways");
        }
        self.settled();
        Ok(Some(finished))
    }

    async fn forget(&self, job_id: &str) -> Result<(), StoreError> {
        let Some(job) = self.read(job_id).await? else {
            return Ok(());
        };
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("DEL");
        command.arg(self.job_key(job_id));
        if let Some(key) = &job.idempotency_key {
            command.arg(self.idempotency_key(&job.owner, key));
        }
        let _: i64 = command
            .query_async(&mut connection)
            .await
            .map_err(store_error)?;
        self.settled();
        Ok(())
    }

    fn completions(&self) -> broadcast::Receiver<Job> {
        self.completions.subscribe()
    }

    fn queued(&self) -> usize {
        usize::try_from(self.queued.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

/// Relay other gateways' completions to this store's listeners, resubscribing with backoff
/// whenever the subscription drops (a Redis restart).
async fn relay(
    client: redis::Client,
    channel: String,
    origin: Arc<str>,
    completions: broadcast::Sender<Job>,
    first: redis::aio::PubSub,
) {
    let mut pubsub = Some(first);
    let mut backoff = intercomm_core::connection::Backoff::new(
        Duration::from_millis(100),
        Duration::from_secs(5),
    );
    loop {
        let subscribed = match pubsub.take() {
            Some(subscribed) => Ok(subscribed),
            None => match client.get_async_pubsub().await {
                Ok(mut fresh) => fresh.subscribe(&channel).await.map(|()| fresh),
                Err(error) => Err(error),
            },
        };
        match subscribed {
            Ok(subscribed) => {
                backoff = intercomm_core::connection::Backoff::new(
                    Duration::from_millis(100),
                    Duration::from_secs(5),
                );
                let mut messages = subscribed.into_on_message();
                while let Some(message) = messages.next().await {
                    match serde_json::from_slice::<Stored>(message.get_payload_bytes()) {
                        Ok(stored) if stored.origin.as_deref() == Some(&*origin) => {}
                        Ok(stored) => {
                            let _ = completions.send(stored.into_job());
                        }
                        Err(error) => {
                            tracing::warn!(%error, "unreadable completion on the job store channel")
                        }
                    }
                }
                tracing::warn!(%channel, "the job store's completion channel dropped; resubscribing");
            }
            Err(error) => {
                tracing::warn!(%channel, %error, "cannot subscribe to the job store's completions; retrying")
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
