//! Recording the broker client's reply events in the job store. A reply stays unacknowledged on
//! the callback queue (its `Receipt` held) until the store has it; while the store fails (Redis
//! away) the recording is retried with backoff, so a store outage delays results instead of
//! losing them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use intercomm_core::connection::Backoff;
use intercomm_core::protocol::{ResponseBody, parse_response};
use intercomm_core::{Receipt, ReplyEvent};

use crate::jobs::{Completion, JobStore};
use crate::metrics::Metrics;

/// The longest pause between two attempts to record a completion while the store fails.
const RETRY_AT_MOST_EVERY: Duration = Duration::from_secs(5);

/// The reply handler of the gateway's broker client: each event becomes a completion in
/// `store`, recorded where the handler runs when the store need not wait (the memory store),
/// in a task otherwise.
pub fn recorder(
    store: Arc<dyn JobStore>,
    metrics: Metrics,
) -> impl Fn(ReplyEvent) + Send + Sync + 'static {
    let handle = tokio::runtime::Handle::current();
    move |event| {
        let (job_id, body, receipt) = match event {
            ReplyEvent::Completed(reply) | ReplyEvent::Late(reply) => {
                (reply.correlation_id, Some(reply.body), Some(reply.receipt))
            }
            ReplyEvent::Expired { correlation_id } => (correlation_id, None, None),
        };
        let record = record(Arc::clone(&store), metrics.clone(), job_id, body, receipt);
        run_now_or_spawn(&handle, record);
    }
}

/// Record one job's completion: its reply `body`, or its expiry when `None`, retrying while
/// the store fails; the receipt is dropped (the reply acknowledged) only after the store has it.
/// There is no giving up: a reply dropped would leave its job `queued` for good, while one that
/// waits holds only one slot of the callback queue's prefetch (and if the gateway stops
/// meanwhile, a durable callback queue hands the reply to its next run).
async fn record(
    store: Arc<dyn JobStore>,
    metrics: Metrics,
    job_id: String,
    body: Option<Vec<u8>>,
    receipt: Option<Receipt>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), RETRY_AT_MOST_EVERY);
    loop {
        // Parsed again on a retry rather than cloned up front: the first attempt is the hot path.
        let Some(completion) = completion(body.as_deref()) else {
            tracing::warn!(correlation_id = %job_id, "unreadable reply dropped");
            return;
        };
        match store.complete(&job_id, completion).await {
            Ok(Some(finished)) => {
                let seconds = finished.accepted.elapsed().as_secs_f64();
                metrics.completed(&finished.method, finished.status, seconds);
                metrics.set_pending(store.queued());
                break;
            }
            Ok(None) => break,
            Err(error) => {
                metrics.store_error();
                let retry_in = backoff.next_delay();
                tracing::warn!(%job_id, %error, ?retry_in, "could not record a job's completion; retrying");
                tokio::time::sleep(retry_in).await;
            }
        }
    }
    drop(receipt);
}

/// The completion a reply body (or its absence: the deadline passed) stands for; `None` for a
/// body that is not one JSON-RPC response.
fn completion(body: Option<&[u8]>) -> Option<Completion> {
    let Some(body) = body else {
        return Some(Completion::Expired);
    };
    match parse_response(body) {
        Ok(ResponseBody::Single(response)) => Some(Completion::Reply(response.outcome)),
        Ok(ResponseBody::Batch(_)) | Err(_) => None,
    }
}

/// Poll `task` once right here and spawn it only if it has to wait. Recording a reply in the
/// memory store never waits, and a task spawned per reply was a scheduler hand-off (and, while
/// another runtime thread is idle, a wake-up for it to steal the task) for a microsecond of work;
/// a shared store that awaits the network goes on in its own task as before.
fn run_now_or_spawn(
    handle: &tokio::runtime::Handle,
    task: impl Future<Output = ()> + Send + 'static,
) {
    let mut task = Box::pin(task);
    // A future that returns `Pending` here registers the real waker again when the spawned
    // task polls it, so nothing is lost by this first poll's waker being a no-op.
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    if task.as_mut().poll(&mut context).is_pending() {
        handle.spawn(task);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::run_now_or_spawn;

    /// Work that needs no waiting is done before `run_now_or_spawn` returns.
    #[tokio::test]
    async fn ready_work_runs_at_once() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        run_now_or_spawn(&tokio::runtime::Handle::current(), async move {
            flag.store(true, Ordering::SeqCst);
        });
        assert!(done.load(Ordering::SeqCst), "ran inline");
    }

    /// Work that has to wait goes on in a task and finishes once what it waits for comes.
    #[tokio::test]
    async fn waiting_work_finishes_in_a_task() {
        let (release, released) = tokio::sync::oneshot::channel::<u32>();
        let (report, reported) = tokio::sync::oneshot::channel::<u32>();
        run_now_or_spawn(&tokio::runtime::Handle::current(), async move {
            if let Ok(value) = released.await {
                let _ = report.send(value + 1);
            }
        });
        release.send(41).expect("the task still waits");
        let value = tokio::time::timeout(Duration::from_secs(5), reported)
            .await
            .expect("the spawned task finished in time")
            .expect("it reported");
        assert_eq!(value, 42);
    }
}
