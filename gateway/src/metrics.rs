//! The gateway's Prometheus metrics: one registry per gateway (no globals), rendered at
//! `GET /metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::jobs::JobStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    method: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

/// Cheap to clone; every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    accepted: Family<MethodLabel, Counter>,
    completed: Family<OutcomeLabels, Counter>,
    unroutable: Family<MethodLabel, Counter>,
    latency: Family<MethodLabel, Histogram>,
    pending: Gauge<i64, AtomicI64>,
    http: Family<StatusLabel, Counter>,
    store_errors: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every gateway metric.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("intercomm");
        let accepted = Family::<MethodLabel, Counter>::default();
        let completed = Family::<OutcomeLabels, Counter>::default();
        let unroutable = Family::<MethodLabel, Counter>::default();
        let latency = Family::<MethodLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 18))) as fn() -> Histogram,
        );
        let pending = Gauge::<i64, AtomicI64>::default();
        let http = Family::<StatusLabel, Counter>::default();
        let store_errors = Counter::default();
        registry.register(
            "jobs_accepted",
            "Jobs accepted (answered 202)",
            accepted.clone(),
        );
        registry.register(
            "jobs_completed",
            "Jobs that reached a final state, by outcome (succeeded, failed, expired)",
            completed.clone(),
        );
        registry.register(
            "jobs_unroutable",
            "Submits refused because no worker is bound",
            unroutable.clone(),
        );
        registry.register(
            "job_duration_seconds",
            "Time from accepting a job to its final state",
            latency.clone(),
        );
        registry.register(
            "jobs_pending",
            "Jobs accepted and not yet final",
            pending.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by status",
            http.clone(),
        );
        registry.register(
            "job_store_completion_errors",
            "Attempts to record a job's completion that the job store failed (each retry counts)",
            store_errors.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            accepted,
            completed,
            unroutable,
            latency,
            pending,
            http,
            store_errors,
        }))
    }

    /// A job was accepted.
    pub fn accepted(&self, method: &str) {
        self.0.accepted.get_or_create(&method_label(method)).inc();
    }

    /// A job reached `status` after `seconds`.
    pub fn completed(&self, method: &str, status: JobStatus, seconds: f64) {
        let outcome = match status {
            JobStatus::Queued => return,
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Expired => "expired",
        };
        self.0
            .completed
            .get_or_create(&OutcomeLabels {
                method: method.to_owned(),
                outcome,
            })
            .inc();
        self.0
            .latency
            .get_or_create(&method_label(method))
            .observe(seconds);
    }

    /// A submit found no worker bound.
    pub fn unroutable(&self, method: &str) {
        self.0.unroutable.get_or_create(&method_label(method)).inc();
    }

    /// The job store failed to record a completion.
    pub fn store_error(&self) {
        self.0.store_errors.inc();
    }

    /// Set the pending gauge.
    pub fn set_pending(&self, pending: usize) {
        self.0
            .pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// An HTTP request was answered with `status`.
    pub fn http_response(&self, status: u16) {
        self.0.http.get_or_create(&StatusLabel { status }).inc();
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

fn method_label(method: &str) -> MethodLabel {
    MethodLabel {
        method: method.to_owned(),
    }
}
