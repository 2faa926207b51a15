//! The job store: each accepted job's state from `queued` to its final state, behind a small
//! trait so that one process can keep it in memory and several gateways can share one.
//!
//! The in-memory store is bounded by count and by age, so memory stays flat under any load.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use intercomm_core::RpcError;
use intercomm_core::envelope::format_rfc3339;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast;

/// Jobs kept by default before the oldest are forgotten.
pub const DEFAULT_MAX_JOBS: usize = 100_000;
/// How long a job stays readable by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3600);
/// Completions buffered for slow event-stream readers.
const EVENT_BUFFER: usize = 4096;

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Published, no reply yet.
    Queued,
    /// The worker answered a result.
    Succeeded,
    /// The worker answered an error.
    Failed,
    /// No reply before the deadline (-32000).
    Expired,
}

impl JobStatus {
    /// True for the three final states.
    #[must_use]
    pub fn is_final(self) -> bool {
        self != Self::Queued
    }
}

/// A job as the API shows it (`GET /v1/jobs/{id}`), plus who owns it.
#[derive(Clone, Debug, Serialize)]
pub struct Job {
    /// The job id (= JSON-RPC id = correlation id).
    pub job_id: String,
    /// The method.
    pub method: String,
    /// The subject that submitted it; only it may read the job.
    #[serde(skip)]
    pub owner: String,
    /// Where it is.
    pub status: JobStatus,
    /// The result, when `succeeded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
    /// The JSON-RPC error, when `failed` or `expired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
    /// When it was accepted (RFC 3339).
    pub created_at: String,
    /// When it reached its final state (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// The `Idempotency-Key` it was submitted with.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    /// Links.
    pub links: JobLinks,
    /// When it was accepted, for latency and retention.
    #[serde(skip)]
    pub accepted: Instant,
}

/// A job's links.
#[derive(Clone, Debug, Serialize)]
pub struct JobLinks {
    /// `GET` here for its state.
    #[serde(rename = "self")]
    pub this: String,
}

impl Job {
    /// A new queued job.
    #[must_use]
    pub fn queued(
        job_id: String,
        method: String,
        owner: String,
        idempotency_key: Option<String>,
    ) -> Self {
        Self {
            links: JobLinks {
                this: format!("/v1/jobs/{job_id}"),
            },
            job_id,
            method,
            owner,
            status: JobStatus::Queued,
            result: None,
            error: None,
            created_at: format_rfc3339(SystemTime::now()).unwrap_or_default(),
            completed_at: None,
            idempotency_key,
            accepted: Instant::now(),
        }
    }
}

/// How a job ended.
#[derive(Clone, Debug)]
pub enum Completion {
    /// The worker's reply.
    Reply(Result<Box<RawValue>, RpcError>),
    /// The deadline passed with no reply.
    Expired,
}

/// What [`JobStore::complete`] reports of the completion it recorded: enough for the metrics,
/// without building the whole [`Job`] again on every reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The job's method.
    pub method: String,
    /// Its final state.
    pub status: JobStatus,
    /// When it was accepted.
    pub accepted: Instant,
}

impl From<&Job> for Finished {
    fn from(job: &Job) -> Self {
        Self {
            method: job.method.clone(),
            status: job.status,
            accepted: job.accepted,
        }
    }
}

/// What [`JobStore::create`] did.
#[derive(Debug)]
pub enum Created {
    /// Recorded a new job.
    New,
    /// The same subject already submitted with this idempotency key: here is that job.
    Existing(Box<Job>),
}

/// A job store failed (the shared store is unreachable).
#[derive(Debug, thiserror::Error)]
#[error("job store: {0}")]
pub struct StoreError(pub String);

/// Where the gateway keeps jobs.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Record a new queued job, unless its owner already submitted one with the same
    /// idempotency key (then that one is returned and nothing is recorded).
    async fn create(&self, job: Job) -> Result<Created, StoreError>;
    /// The job with this id.
    async fn get(&self, job_id: &str) -> Result<Option<Job>, StoreError>;
    /// Move a job to its final state; `Some` only for the first completion (the first reply
    /// wins), `None` for later ones and for unknown jobs.
    async fn complete(
        &self,
        job_id: &str,
        completion: Completion,
    ) -> Result<Option<Finished>, StoreError>;
    /// Forget a job that was never accepted (its publish failed).
    async fn forget(&self, job_id: &str) -> Result<(), StoreError>;
    /// Jobs as they reach their final state.
    fn completions(&self) -> broadcast::Receiver<Job>;

    /// Wait up to `limit` for the job to be final: `Some(job)` once it is (or already was),
    /// `None` if it is still queued then or unknown. The default watches [`completions`];
    /// a store that can wake exactly the waiters of one job should.
    ///
    /// [`completions`]: JobStore::completions
    async fn wait_final(&self, job_id: &str, limit: Duration) -> Result<Option<Job>, StoreError> {
        use tokio::sync::broadcast::error::RecvError;
        // Subscribe before looking, so a completion between the two is not missed.
        let mut completions = self.completions();
        let deadline = tokio::time::Instant::now() + limit;
        match self.get(job_id).await? {
            Some(job) if job.status.is_final() => return Ok(Some(job)),
            None => return Ok(None),
            Some(_) => {}
        }
        loop {
            match tokio::time::timeout_at(deadline, completions.recv()).await {
                Err(_) | Ok(Err(RecvError::Closed)) => return Ok(None),
                Ok(Ok(job)) if job.job_id == job_id => return Ok(Some(job)),
                Ok(Ok(_)) => {}
                Ok(Err(RecvError::Lagged(_))) => {
                    if let Some(job) = self.get(job_id).await?.filter(|job| job.status.is_final()) {
                        return Ok(Some(job));
                    }
                }
            }
        }
    }
    /// Jobs currently queued (for the pending gauge).
    fn queued(&self) -> usize;
}

/// Apply a completion to a job (shared by stores).
pub fn finish(job: &mut Job, completion: Completion) {
    job.completed_at = format_rfc3339(SystemTime::now());
    let (status, outcome) = final_state(completion);
    job.status = status;
    match outcome {
        Ok(result) => job.result = Some(result),
        Err(error) => job.error = Some(error),
    }
}

/// The final state a completion puts a job in, and its result or error.
fn final_state(completion: Completion) -> (JobStatus, Result<Box<RawValue>, RpcError>) {
    match completion {
        Completion::Reply(Ok(result)) => (JobStatus::Succeeded, Ok(result)),
        Completion::Reply(Err(error)) => {
            let status = if error.code == intercomm_core::ErrorCode::DeadlineExceeded.code() {
                JobStatus::Expired
            } else {
                JobStatus::Failed
            };
            (status, Err(error))
        }
        Completion::Expired => (
            JobStatus::Expired,
            Err(RpcError::new(
                intercomm_core::ErrorCode::DeadlineExceeded,
                "no reply before the job's deadline",
            )),
        ),
    }
}

/// The default store: one process, in memory, bounded by count and age.
#[derive(Clone)]
pub struct MemoryJobStore {
    inner: Arc<Mutex<Book>>,
    completions: broadcast::Sender<Job>,
    max_jobs: usize,
    retention: Duration,
}

impl std::fmt::Debug for MemoryJobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryJobStore")
            .field("max_jobs", &self.max_jobs)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// A job as the memory store keeps it: the [`Job`] without its derivable parts (links), with
/// boxed strings and a boxed outcome, so that a full store stays small; a [`Job`] is built again
/// when it is read.
struct Entry {
    job_id: Arc<str>,
    method: Box<str>,
    owner: Box<str>,
    status: JobStatus,
    outcome: Option<Box<Result<Box<RawValue>, RpcError>>>,
    created_at: Box<str>,
    completed_at: Option<Box<str>>,
    idempotency_key: Option<Box<str>>,
    accepted: Instant,
}

impl Entry {
    fn new(job: Job) -> Self {
        let mut entry = Self {
            job_id: Arc::from(job.job_id),
            method: job.method.into_boxed_str(),
            owner: job.owner.into_boxed_str(),
            status: job.status,
            outcome: None,
            created_at: job.created_at.into_boxed_str(),
            completed_at: None,
            idempotency_key: job.idempotency_key.map(String::into_boxed_str),
            accepted: job.accepted,
        };
        entry.set_outcome(job.completed_at, job.result, job.error);
        entry
    }

    fn set_outcome(
        &mut self,
        completed_at: Option<String>,
        result: Option<Box<RawValue>>,
        error: Option<RpcError>,
    ) {
        self.completed_at = completed_at.map(String::into_boxed_str);
        self.outcome = match (result, error) {
            (_, Some(error)) => Some(Box::new(Err(error))),
            (Some(result), None) => Some(Box::new(Ok(result))),
            (None, None) => None,
        };
    }

    fn to_job(&self) -> Job {
        let (result, error) = match self.outcome.as_deref() {
            Some(Ok(result)) => (Some(result.clone()), None),
            Some(Err(error)) => (None, Some(error.clone())),
            None => (None, None),
        };
        Job {
            job_id: self.job_id.to_string(),
            method: self.method.to_string(),
            owner: self.owner.to_string(),
            status: self.status,
            result,
            error,
            created_at: self.created_at.to_string(),
            completed_at: self.completed_at.as_deref().map(str::to_owned),
            idempotency_key: self.idempotency_key.as_deref().map(str::to_owned),
            links: JobLinks {
                this: format!("/v1/jobs/{}", self.job_id),
            },
            accepted: self.accepted,
        }
    }
}

#[derive(Default)]
struct Book {
    /// Boxed entries: the table keeps spare buckets (and doubles once when the tombstones of
    /// evicted jobs fill it), so a bucket should be two pointers, not a whole job.
    jobs: HashMap<Arc<str>, Box<Entry>>,
    order: VecDeque<(Instant, Arc<str>)>,
    idempotency: HashMap<(Box<str>, Box<str>), Arc<str>>,
    queued: usize,
    /// Long-polls waiting for one job each: woken by that job's completion only.
    waiters: HashMap<Arc<str>, Vec<tokio::sync::oneshot::Sender<Job>>>,
}

impl Book {
    fn remove(&mut self, job_id: &str) {
        self.waiters.remove(job_id);
        if let Some(entry) = self.jobs.remove(job_id) {
            if entry.status == JobStatus::Queued {
                self.queued -= 1;
            }
            let Entry {
                owner,
                idempotency_key,
                ..
            } = *entry;
            if let Some(key) = idempotency_key {
                self.idempotency.remove(&(owner, key));
            }
        }
    }
}

impl MemoryJobStore {
    /// A store keeping at most `max_jobs` jobs, each for at most `retention`.
    #[must_use]
    pub fn new(max_jobs: usize, retention: Duration) -> Self {
        let (completions, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            inner: Arc::default(),
            completions,
            max_jobs: max_jobs.max(1),
            retention,
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // Each operation leaves the maps consistent before it can panic, so poison is harmless.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Jobs held (for tests and the memory bound).
    #[must_use]
    pub fn len(&self) -> usize {
        self.book().jobs.len()
    }

    /// True when no job is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn evict(&self, book: &mut Book, now: Instant) {
        while let Some((accepted, _)) = book.order.front() {
            // `order` also holds forgotten ids until they age out; bounding it bounds both.
            let too_many = book.order.len() >= self.max_jobs;
            let too_old = now.duration_since(*accepted) > self.retention;
            if !too_many && !too_old {
                break;
            }
            if let Some((_, job_id)) = book.order.pop_front() {
                book.remove(&job_id);
            }
        }
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create(&self, job: Job) -> Result<Created, StoreError> {
        let entry = Box::new(Entry::new(job));
        let mut book = self.book();
        if let Some(key) = &entry.idempotency_key {
            let index = (entry.owner.clone(), key.clone());
            if let Some(existing) = book
                .idempotency
                .get(&index)
                .and_then(|id| book.jobs.get(id))
            {
                return Ok(Created::Existing(Box::new(existing.to_job())));
            }
            book.idempotency.insert(index, Arc::clone(&entry.job_id));
        }
        self.evict(&mut book, entry.accepted);
        book.order
            .push_back((entry.accepted, Arc::clone(&entry.job_id)));
        book.queued += 1;
        book.jobs.insert(Arc::clone(&entry.job_id), entry);
        Ok(Created::New)
    }

    async fn get(&self, job_id: &str) -> Result<Option<Job>, StoreError> {
        Ok(self.book().jobs.get(job_id).map(|entry| entry.to_job()))
    }

    async fn complete(
        &self,
        job_id: &str,
        completion: Completion,
    ) -> Result<Option<Finished>, StoreError> {
        let mut book = self.book();
        let Some(entry) = book.jobs.get_mut(job_id) else {
            return Ok(None);
        };
        if entry.status.is_final() {
            return Ok(None);
        }
        let (status, outcome) = final_state(completion);
        entry.status = status;
        entry.completed_at = format_rfc3339(SystemTime::now()).map(String::into_boxed_str);
        entry.outcome = Some(Box::new(outcome));
        let finished = Finished {
            method: entry.method.to_string(),
            status,
            accepted: entry.accepted,
        };
        // The whole job is built only for those who read it: long-polls of this job and event
        // streams. Most completions have neither, and the job is a dozen allocations.
        let listening = self.completions.receiver_count() > 0;
        let waiters = book.waiters.remove(job_id);
        if listening || waiters.is_some() {
            let job = book.jobs.get(job_id).map(|entry| entry.to_job());
            if let Some(job) = job {
                for waiter in waiters.unwrap_or_default() {
                    let _ = waiter.send(job.clone());
                }
                if listening {
                    let _ = self.completions.send(job);
                }
            }
        }
        book.queued -= 1;
        Ok(Some(finished))
    }

    async fn forget(&self, job_id: &str) -> Result<(), StoreError> {
        self.book().remove(job_id);
        Ok(())
    }

    fn completions(&self) -> broadcast::Receiver<Job> {
        self.completions.subscribe()
    }

    fn queued(&self) -> usize {
        self.book().queued
    }

    async fn wait_final(&self, job_id: &str, limit: Duration) -> Result<Option<Job>, StoreError> {
        let receiver = {
            let mut book = self.book();
            let key = match book.jobs.get(job_id) {
                None => return Ok(None),
                Some(entry) if entry.status.is_final() => return Ok(Some(entry.to_job())),
                Some(entry) => Arc::clone(&entry.job_id),
            };
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let waiters = book.waiters.entry(key).or_default();
            // Senders of long-polls that gave up are dropped here rather than piling up.
            waiters.retain(|waiter| !waiter.is_closed());
            waiters.push(sender);
            receiver
        };
        Ok(tokio::time::timeout(limit, receiver)
            .await
            .ok()
            .and_then(Result::ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, owner: &str, key: Option<&str>) -> Job {
        Job::queued(
            id.into(),
            "echo".into(),
            owner.into(),
            key.map(str::to_owned),
        )
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("JSON")
    }

    /// The first completion wins; later ones change nothing.
    #[tokio::test]
    async fn first_completion_wins() {
        let store = MemoryJobStore::new(10, DEFAULT_RETENTION);
        store.create(job("a", "u", None)).await.expect("created");
        let first = store
            .complete("a", Completion::Reply(Ok(raw("1"))))
            .await
            .expect("ok");
        assert_eq!(first.map(|j| j.status), Some(JobStatus::Succeeded));
        let second = store.complete("a", Completion::Expired).await.expect("ok");
        assert!(second.is_none());
        let stored = store.get("a").await.expect("ok").expect("kept");
        assert_eq!(stored.status, JobStatus::Succeeded);
        assert_eq!(
            stored.result.map(|r| r.get().to_owned()),
            Some("1".to_owned())
        );
        assert_eq!(store.queued(), 0);
    }

    /// The same key from the same subject returns the first job; another subject gets its own.
    #[tokio::test]
    async fn idempotency_keys_are_per_subject() {
        let store = MemoryJobStore::new(10, DEFAULT_RETENTION);
        assert!(matches!(
            store.create(job("a", "u1", Some("k"))).await,
            Ok(Created::New)
        ));
        let again = store.create(job("b", "u1", Some("k"))).await.expect("ok");
        assert!(matches!(again, Created::Existing(existing) if existing.job_id == "a"));
        assert!(matches!(
            store.create(job("c", "u2", Some("k"))).await,
            Ok(Created::New)
        ));
        assert!(store.get("b").await.expect("ok").is_none());
    }

    /// The store never holds more than its bound; the oldest go first.
    #[tokio::test]
    async fn store_is_bounded_by_count() {
        let store = MemoryJobStore::new(100, DEFAULT_RETENTION);
        for i in 0..1000 {
            store
                .create(job(&i.to_string(), "u", Some(&i.to_string())))
                .await
                .expect("ok");
        }
        assert_eq!(store.len(), 100);
        assert!(store.get("0").await.expect("ok").is_none());
        assert!(store.get("999").await.expect("ok").is_some());
        assert_eq!(store.book().idempotency.len(), 100);
        assert_eq!(store.queued(), 100);
    }

    /// Jobs older than the retention are forgotten.
    #[tokio::test]
    async fn store_is_bounded_by_age() {
        let store = MemoryJobStore::new(100, Duration::from_millis(1));
        store.create(job("old", "u", None)).await.expect("ok");
        std::thread::sleep(Duration::from_millis(5));
        store.create(job("new", "u", None)).await.expect("ok");
        assert!(store.get("old").await.expect("ok").is_none());
        assert!(store.get("new").await.expect("ok").is_some());
    }

    /// A long-poll wakes at its own job's completion, not at another's, and gives up at its limit.
    #[tokio::test]
    async fn waiting_wakes_for_its_own_job_only() {
        let store = MemoryJobStore::new(10, DEFAULT_RETENTION);
        store.create(job("a", "u", None)).await.expect("ok");
        store.create(job("b", "u", None)).await.expect("ok");
        let waiting = {
            let store = store.clone();
            tokio::spawn(async move { store.wait_final("a", Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        store.complete("b", Completion::Expired).await.expect("ok");
        assert!(
            !waiting.is_finished(),
            "b's completion does not wake a's waiter"
        );
        store
            .complete("a", Completion::Reply(Ok(raw("7"))))
            .await
            .expect("ok");
        let done = waiting.await.expect("task").expect("ok").expect("final");
        assert_eq!(done.status, JobStatus::Succeeded);
        assert!(store.book().waiters.is_empty(), "nothing left behind");
        let gave_up = store
            .wait_final("missing", Duration::from_millis(10))
            .await
            .expect("ok");
        assert!(gave_up.is_none());
        store.create(job("c", "u", None)).await.expect("ok");
        let timed_out = store
            .wait_final("c", Duration::from_millis(20))
            .await
            .expect("ok");
        assert!(timed_out.is_none(), "still queued at the limit");
    }

    /// A worker's -32000 answer marks the job expired; other errors mark it failed.
    #[tokio::test]
    async fn deadline_errors_are_expired() {
        let store = MemoryJobStore::new(10, DEFAULT_RETENTION);
        store.create(job("a", "u", None)).await.expect("ok");
        store.create(job("b", "u", None)).await.expect("ok");
        let expired = store
            .complete("a", Completion::Reply(Err(RpcError::deadline_exceeded())))
            .await
            .expect("ok")
            .expect("first");
        assert_eq!(expired.status, JobStatus::Expired);
        let failed = store
            .complete("b", Completion::Reply(Err(RpcError::not_found("x"))))
            .await
            .expect("ok")
            .expect("first");
        assert_eq!(failed.status, JobStatus::Failed);
    }
}
