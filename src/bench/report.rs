//! Figures of a benchmark run: samples, medians, ratios, and their table and JSON forms.

use std::fmt::Write as _;
use std::time::Duration;

use intercomm_core::QueueType;
use serde::Serialize;

use super::process_cpu::CpuSpent;

/// One measured run of one side.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Round trips measured.
    pub jobs: usize,
    /// Round trips per second.
    pub jobs_per_sec: f64,
    /// Median latency (µs).
    pub p50_us: u32,
    /// 99th percentile latency (µs).
    pub p99_us: u32,
    /// Slowest round trip (µs).
    pub max_us: u32,
    /// CPU of this process (client + worker + lapin I/O) per 1 000 jobs (ms).
    pub own_cpu_ms_per_1k: Option<f64>,
    /// CPU of the broker per 1 000 jobs (ms).
    pub broker_cpu_ms_per_1k: Option<f64>,
    /// Peak resident set size of the bench process (`VmHWM`, KiB), read right after this run.
    /// A high-water mark of the whole process since it started, not of this run alone.
    pub peak_rss_kib: Option<u64>,
}

impl Sample {
    /// Summarise latencies (µs) of a run that took `elapsed`.
    #[must_use]
    pub fn from_latencies(mut latencies: Vec<u32>, elapsed: Duration, cpu: CpuSpent) -> Self {
        latencies.sort_unstable();
        let jobs = latencies.len();
        let at = |q: f64| -> u32 {
            if latencies.is_empty() {
                return 0;
            }
            let index = ((jobs as f64 - 1.0) * q).round() as usize;
            latencies[index.min(jobs - 1)]
        };
        let per_1k = |spent: Option<Duration>| {
            spent
                .filter(|_| jobs > 0)
                .map(|d| d.as_secs_f64() * 1000.0 * 1000.0 / jobs as f64)
        };
        Self {
            jobs,
            jobs_per_sec: jobs as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_us: at(0.50),
            p99_us: at(0.99),
            max_us: latencies.last().copied().unwrap_or(0),
            own_cpu_ms_per_1k: per_1k(cpu.own),
            broker_cpu_ms_per_1k: per_1k(cpu.broker),
            peak_rss_kib: None,
        }
    }
}

/// Both sides at one in-flight level: the median round of each, and the ratios.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Round trips in flight at once.
    pub inflight: usize,
    /// Jobs per round.
    pub jobs: usize,
    /// (a) raw lapin, the round with the median throughput.
    pub raw: Sample,
    /// (b) intercomm, the round with the median throughput.
    pub intercomm: Sample,
    /// Throughput of every (a) round, for the spread.
    pub raw_rounds: Vec<f64>,
    /// Throughput of every (b) round.
    pub intercomm_rounds: Vec<f64>,
    /// (b)/(a) throughput.
    pub throughput_ratio: f64,
    /// (b)/(a) median latency.
    pub p50_ratio: f64,
    /// (c) `POST /v1/jobs/{method}` with `Prefer: wait`, the median round.
    pub http_submit: Option<Sample>,
    /// (c) `POST /v1/rpc`, the median round.
    pub http_rpc: Option<Sample>,
    /// (c submit)/(a) throughput.
    pub http_submit_ratio: Option<f64>,
    /// (c rpc)/(a) throughput.
    pub http_rpc_ratio: Option<f64>,
}

impl Level {
    /// Pick medians and compute ratios.
    #[must_use]
    pub fn new(inflight: usize, jobs: usize, raw: Vec<Sample>, intercomm: Vec<Sample>) -> Self {
        let raw_rounds: Vec<f64> = raw.iter().map(|s| s.jobs_per_sec).collect();
        let intercomm_rounds: Vec<f64> = intercomm.iter().map(|s| s.jobs_per_sec).collect();
        let raw = median(raw);
        let intercomm = median(intercomm);
        Self {
            inflight,
            jobs,
            throughput_ratio: intercomm.jobs_per_sec / raw.jobs_per_sec.max(1e-9),
            p50_ratio: f64::from(intercomm.p50_us) / f64::from(raw.p50_us.max(1)),
            raw,
            intercomm,
            raw_rounds,
            intercomm_rounds,
            http_submit: None,
            http_rpc: None,
            http_submit_ratio: None,
            http_rpc_ratio: None,
        }
    }

    /// Add the HTTP side's rounds (none when it was not measured).
    #[must_use]
    pub fn with_http(mut self, submit: Vec<Sample>, rpc: Vec<Sample>) -> Self {
        if !submit.is_empty() {
            let submit = median(submit);
            self.http_submit_ratio = Some(submit.jobs_per_sec / self.raw.jobs_per_sec.max(1e-9));
            self.http_submit = Some(submit);
        }
        if !rpc.is_empty() {
            let rpc = median(rpc);
            self.http_rpc_ratio = Some(rpc.jobs_per_sec / self.raw.jobs_per_sec.max(1e-9));
            self.http_rpc = Some(rpc);
        }
        self
    }
}

fn median(mut samples: Vec<Sample>) -> Sample {
    samples.sort_by(|a, b| a.jobs_per_sec.total_cmp(&b.jobs_per_sec));
    let middle = samples.len() / 2;
    samples.swap_remove(middle)
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Queue type of both sides.
    pub queue_type: String,
    /// Persistent messages (always true).
    pub persistent: bool,
    /// Publisher confirms (always true).
    pub confirms: bool,
    /// Every in-flight level.
    pub levels: Vec<Level>,
}

impl BenchReport {
    /// Assemble a report.
    #[must_use]
    pub fn new(queue_type: QueueType, levels: Vec<Level>) -> Self {
        Self {
            queue_type: queue_type.to_string(),
            persistent: true,
            confirms: true,
            levels,
        }
    }

    /// The figures as a Markdown table.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "echo round trip, {} queues, persistent, publisher confirms, prefetch 64\n",
            self.queue_type
        );
        let _ = writeln!(
            out,
            "| in flight | side | jobs/s | p50 µs | p99 µs | max µs | bench CPU ms/1k | broker CPU ms/1k | bench peak RSS MiB (VmHWM: process high-water mark after this run) | rounds (jobs/s) |"
        );
        let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for level in &self.levels {
            let no_rounds = Vec::new();
            let mut sides = vec![
                ("(a) raw lapin", &level.raw, &level.raw_rounds),
                ("(b) intercomm", &level.intercomm, &level.intercomm_rounds),
            ];
            if let Some(sample) = &level.http_submit {
                sides.push(("(c) HTTP submit+wait", sample, &no_rounds));
            }
            if let Some(sample) = &level.http_rpc {
                sides.push(("(c) HTTP /v1/rpc", sample, &no_rounds));
            }
            for (side, sample, rounds) in sides {
                let rounds: Vec<String> = rounds.iter().map(|r| format!("{r:.0}")).collect();
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
                    level.inflight,
                    side,
                    sample.jobs_per_sec,
                    sample.p50_us,
                    sample.p99_us,
                    sample.max_us,
                    fmt_opt(sample.own_cpu_ms_per_1k),
                    fmt_opt(sample.broker_cpu_ms_per_1k),
                    fmt_mib(sample.peak_rss_kib),
                    rounds.join(", "),
                );
            }
        }
        out.push('\n');
        for level in &self.levels {
            let _ = writeln!(
                out,
                "in flight {:>3}: (b)/(a) throughput {:.2}x, p50 {:.2}x",
                level.inflight, level.throughput_ratio, level.p50_ratio
            );
            if let (Some(submit), Some(rpc)) = (level.http_submit_ratio, level.http_rpc_ratio) {
                let _ = writeln!(
                    out,
                    "in flight {:>3}: (c)/(a) throughput: submit+wait {submit:.2}x, /v1/rpc {rpc:.2}x",
                    level.inflight
                );
            }
        }
        out
    }
}

fn fmt_opt(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
}

fn fmt_mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}
