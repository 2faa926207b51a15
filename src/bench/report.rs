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
    /// CPU of the bench process — the load generator and the client it drives (the raw lapin
    /// client, `RpcClient`, or the HTTP client) — per 1 000 jobs (ms).
    pub load_cpu_ms_per_1k: Option<f64>,
    /// CPU of the worker process per 1 000 jobs (ms).
    pub worker_cpu_ms_per_1k: Option<f64>,
    /// CPU of the gateway process per 1 000 jobs (ms; the HTTP side only).
    pub gateway_cpu_ms_per_1k: Option<f64>,
    /// CPU of the broker per 1 000 jobs (ms).
    pub broker_cpu_ms_per_1k: Option<f64>,
    /// Peak resident set size (`VmHWM`, KiB) of the bench process, read right after this run: a
    /// high-water mark since the process started, not of this run alone.
    pub load_peak_rss_kib: Option<u64>,
    /// Peak resident set size of the worker process (KiB), likewise.
    pub worker_peak_rss_kib: Option<u64>,
    /// Peak resident set size of the gateway process (KiB), likewise.
    pub gateway_peak_rss_kib: Option<u64>,
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
            load_cpu_ms_per_1k: per_1k(cpu.load),
            worker_cpu_ms_per_1k: per_1k(cpu.worker),
            gateway_cpu_ms_per_1k: per_1k(cpu.gateway),
            broker_cpu_ms_per_1k: per_1k(cpu.broker),
            load_peak_rss_kib: None,
            worker_peak_rss_kib: None,
            gateway_peak_rss_kib: None,
        }
    }
}

impl Sample {
    /// CPU per 1 000 jobs of everything intercomm (or the baseline) runs: the bench process, the
    /// worker and the gateway, not the broker.
    #[must_use]
    pub fn client_cpu_ms_per_1k(&self) -> Option<f64> {
        let load = self.load_cpu_ms_per_1k?;
        Some(load + self.worker_cpu_ms_per_1k? + self.gateway_cpu_ms_per_1k.unwrap_or(0.0))
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
    /// (c) `POST /v1/jobs/{method}` answered 202, the run lasting until the job store recorded
    /// every result; latencies are those of the 202 answers. The median round.
    pub http_accepted: Option<Sample>,
    /// (c) `POST /v1/jobs/{method}` with `Prefer: wait`, the median round.
    pub http_submit: Option<Sample>,
    /// (c) `POST /v1/rpc`, the median round.
    pub http_rpc: Option<Sample>,
    /// (c 202)/(a) throughput.
    pub http_accepted_ratio: Option<f64>,
    /// (c submit)/(a) throughput.
    pub http_submit_ratio: Option<f64>,
    /// (c rpc)/(a) throughput.
    pub http_rpc_ratio: Option<f64>,
    /// (b)/(a) CPU per job of everything but the broker (load generator + worker).
    pub cpu_ratio: Option<f64>,
    /// (a') raw lapin sending the contract's whole envelope (what `RpcClient` sends), the median
    /// round: what the envelope itself costs, apart from intercomm's code.
    pub raw_contract: Option<Sample>,
    /// (b)/(a') throughput: intercomm's code against the same messages on raw lapin.
    pub contract_throughput_ratio: Option<f64>,
}

impl Level {
    /// Pick medians and compute ratios.
    #[must_use]
    pub fn new(inflight: usize, jobs: usize, raw: Vec<Sample>, intercomm: Vec<Sample>) -> Self {
        let raw_rounds: Vec<f64> = raw.iter().map(|s| s.jobs_per_sec).collect();
        let intercomm_rounds: Vec<f64> = intercomm.iter().map(|s| s.jobs_per_sec).collect();
        let raw = median(raw);
        let intercomm = median(intercomm);
        let cpu_ratio = intercomm
            .client_cpu_ms_per_1k()
            .zip(raw.client_cpu_ms_per_1k())
            .map(|(b, a)| b / a.max(1e-9));
        Self {
            inflight,
            jobs,
            throughput_ratio: intercomm.jobs_per_sec / raw.jobs_per_sec.max(1e-9),
            p50_ratio: f64::from(intercomm.p50_us) / f64::from(raw.p50_us.max(1)),
            raw,
            intercomm,
            raw_rounds,
            intercomm_rounds,
            http_accepted: None,
            http_submit: None,
            http_rpc: None,
            http_accepted_ratio: None,
            http_submit_ratio: None,
            http_rpc_ratio: None,
            cpu_ratio,
            raw_contract: None,
            contract_throughput_ratio: None,
        }
    }

    /// Add the rounds of raw lapin with the contract envelope (none when not measured).
    #[must_use]
    pub fn with_raw_contract(mut self, samples: Vec<Sample>) -> Self {
        if !samples.is_empty() {
            let sample = median(samples);
            self.contract_throughput_ratio =
                Some(self.intercomm.jobs_per_sec / sample.jobs_per_sec.max(1e-9));
            self.raw_contract = Some(sample);
        }
        self
    }

    /// Add the HTTP side's rounds (none when it was not measured).
    #[must_use]
    pub fn with_http(
        mut self,
        accepted: Vec<Sample>,
        submit: Vec<Sample>,
        rpc: Vec<Sample>,
    ) -> Self {
        if !accepted.is_empty() {
            let accepted = median(accepted);
            self.http_accepted_ratio =
                Some(accepted.jobs_per_sec / self.raw.jobs_per_sec.max(1e-9));
            self.http_accepted = Some(accepted);
        }
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
            "CPU: ms per 1 000 jobs of each process (load = the bench process: load generator and \
             client). RSS: peak (VmHWM) of each process after the run, MiB.\n"
        );
        let _ = writeln!(
            out,
            "| in flight | side | jobs/s | p50 µs | p99 µs | max µs | CPU load | CPU worker | CPU gateway | CPU broker | RSS worker | RSS gateway | rounds (jobs/s) |"
        );
        let _ = writeln!(
            out,
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for level in &self.levels {
            let no_rounds = Vec::new();
            let mut sides = vec![("(a) raw lapin", &level.raw, &level.raw_rounds)];
            if let Some(sample) = &level.raw_contract {
                sides.push(("(a') raw lapin, contract envelope", sample, &no_rounds));
            }
            sides.push(("(b) intercomm", &level.intercomm, &level.intercomm_rounds));
            if let Some(sample) = &level.http_accepted {
                sides.push(("(c) HTTP submit → 202", sample, &no_rounds));
            }
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
                    "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    level.inflight,
                    side,
                    sample.jobs_per_sec,
                    sample.p50_us,
                    sample.p99_us,
                    sample.max_us,
                    fmt_opt(sample.load_cpu_ms_per_1k),
                    fmt_opt(sample.worker_cpu_ms_per_1k),
                    fmt_opt(sample.gateway_cpu_ms_per_1k),
                    fmt_opt(sample.broker_cpu_ms_per_1k),
                    fmt_mib(sample.worker_peak_rss_kib),
                    fmt_mib(sample.gateway_peak_rss_kib),
                    rounds.join(", "),
                );
            }
        }
        out.push('\n');
        for level in &self.levels {
            let _ = writeln!(
                out,
                "in flight {:>3}: (b)/(a) throughput {:.2}x, p50 {:.2}x, CPU outside the broker {}",
                level.inflight,
                level.throughput_ratio,
                level.p50_ratio,
                level
                    .cpu_ratio
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x")),
            );
            if let Some(ratio) = level.contract_throughput_ratio {
                let _ = writeln!(
                    out,
                    "in flight {:>3}: (b)/(a') throughput {ratio:.2}x (same messages on raw lapin)",
                    level.inflight
                );
            }
            if let (Some(accepted), Some(submit), Some(rpc)) = (
                level.http_accepted_ratio,
                level.http_submit_ratio,
                level.http_rpc_ratio,
            ) {
                let _ = writeln!(
                    out,
                    "in flight {:>3}: (c)/(a) throughput: submit → 202 {accepted:.2}x, submit+wait {submit:.2}x, /v1/rpc {rpc:.2}x",
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
