//! A worker process's Prometheus metrics: jobs by method and outcome, handler latency, jobs in
//! flight, redeliveries and dead letters. One registry per worker (no globals); the process
//! serving them is the binary's business (`intercomm worker --metrics-listen`).

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    method: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

/// Cheap to clone; every clone records into the same registry.
#[derive(Clone)]
pub struct WorkerMetrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    latency: Family<MethodLabel, Histogram>,
    in_flight: Gauge<i64, AtomicI64>,
    redelivered: Counter,
    dead_lettered: Counter,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerMetrics")
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("intercomm_worker");
        let jobs = Family::<JobLabels, Counter>::default();
        let latency = Family::<MethodLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0001, 2.0, 20))) as fn() -> Histogram,
        );
        let in_flight = Gauge::<i64, AtomicI64>::default();
        let redelivered = Counter::default();
        let dead_lettered = Counter::default();
        registry.register(
            "jobs",
            "Calls handled, by method and outcome (succeeded, failed)",
            jobs.clone(),
        );
        registry.register(
            "handler_duration_seconds",
            "Time handlers took, by method",
            latency.clone(),
        );
        registry.register(
            "jobs_in_flight",
            "Deliveries being handled now",
            in_flight.clone(),
        );
        registry.register(
            "redeliveries",
            "Deliveries that had been delivered before",
            redelivered.clone(),
        );
        registry.register(
            "dead_lettered",
            "Deliveries sent to the dead-letter queue",
            dead_lettered.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            jobs,
            latency,
            in_flight,
            redelivered,
            dead_lettered,
        }))
    }
}

/// One method's series, looked up once: recording a call through it takes no lock, no hashing
/// and no allocation.
#[derive(Clone, Debug)]
pub struct MethodMetrics {
    succeeded: Counter,
    failed: Counter,
    latency: Histogram,
}

impl MethodMetrics {
    /// A call ended after `elapsed`.
    pub fn handled(&self, succeeded: bool, elapsed: Duration) {
        if succeeded {
            self.succeeded.inc();
        } else {
            self.failed.inc();
        }
        self.latency.observe(elapsed.as_secs_f64());
    }
}

impl WorkerMetrics {
    /// The series of `method`, to record its calls with [`MethodMetrics::handled`].
    #[must_use]
    pub fn method(&self, method: &str) -> MethodMetrics {
        let jobs = |outcome| {
            self.0
                .jobs
                .get_or_create(&JobLabels {
                    method: method.to_owned(),
                    outcome,
                })
                .clone()
        };
        MethodMetrics {
            succeeded: jobs("succeeded"),
            failed: jobs("failed"),
            latency: self
                .0
                .latency
                .get_or_create(&MethodLabel {
                    method: method.to_owned(),
                })
                .clone(),
        }
    }

    /// A call of `method` ended after `elapsed` (looks the series up each time; the worker keeps
    /// [`WorkerMetrics::method`] handles instead).
    pub fn handled(&self, method: &str, succeeded: bool, elapsed: Duration) {
        self.method(method).handled(succeeded, elapsed);
    }

    /// A delivery started (the guard ends it).
    #[must_use]
    pub fn in_flight(&self) -> InFlight {
        self.0.in_flight.inc();
        InFlight(self.clone())
    }

    /// A delivery had been delivered before.
    pub fn redelivered(&self) {
        self.0.redelivered.inc();
    }

    /// A delivery went to the dead-letter queue.
    pub fn dead_lettered(&self) {
        self.0.dead_lettered.inc();
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.0.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Counts one delivery in flight until dropped.
#[derive(Debug)]
pub struct InFlight(WorkerMetrics);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.0.in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_by_method_and_outcome() {
        let metrics = WorkerMetrics::default();
        metrics.handled("echo", true, Duration::from_millis(2));
        metrics.handled("echo", false, Duration::from_millis(3));
        let guard = metrics.in_flight();
        let text = metrics.render();
        assert!(
            text.contains(r#"intercomm_worker_jobs_total{method="echo",outcome="succeeded"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"intercomm_worker_jobs_total{method="echo",outcome="failed"} 1"#),
            "{text}"
        );
        assert!(text.contains("intercomm_worker_jobs_in_flight 1"), "{text}");
        drop(guard);
        assert!(
            metrics
                .render()
                .contains("intercomm_worker_jobs_in_flight 0")
        );
    }
}
