//! `intercomm bench soak`: the gateway's memory over many jobs with its default job store bounds.
//!
//! The in-memory job store keeps the newest `INTERCOMM_MAX_JOBS` jobs (100 000 by default), so a
//! gateway's resident memory grows while the store fills and must stay flat once it is full. The
//! soak first runs that many jobs (the fill), then `--jobs` more, and reads the gateway's and the
//! worker's resident set size (`VmRSS`) at every checkpoint.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context as _;
use intercomm_core::Settings;
use serde::Serialize;

use super::process_cpu::{Roles, rss_kib};
use super::{delete_worker_queues, drive, http, start_echo_worker};
use crate::cli::BenchSoakArgs;

/// One reading.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    /// Jobs completed so far (fill included).
    pub jobs: usize,
    /// Gateway `VmRSS` (KiB).
    pub gateway_rss_kib: Option<u64>,
    /// Worker `VmRSS` (KiB).
    pub worker_rss_kib: Option<u64>,
    /// Throughput of the stretch that ended here (jobs/s).
    pub jobs_per_sec: f64,
}

/// The whole soak.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Jobs run to fill the store to its default bound.
    pub fill_jobs: usize,
    /// Jobs run after the fill.
    pub measured_jobs: usize,
    /// Requests in flight.
    pub inflight: usize,
    /// Every reading, the first before any job.
    pub checkpoints: Vec<Checkpoint>,
    /// Gateway RSS growth while the store filled (KiB).
    pub fill_growth_kib: Option<i64>,
    /// Gateway RSS growth over the jobs after the fill (KiB): flat means near zero.
    pub measured_growth_kib: Option<i64>,
}

/// Run the soak and print its figures.
///
/// # Errors
/// When the broker is unreachable or a job fails.
pub async fn run(args: BenchSoakArgs) -> anyhow::Result<()> {
    let suffix = super::new_suffix();
    let worker_name = format!("bench_soak_{suffix}");
    let queues = [
        intercomm_core::topology::worker_queue(&worker_name),
        intercomm_core::topology::dead_letter_queue(&worker_name),
    ];
    let report = super::until_interrupted(measure(&args, &suffix), &suffix, &queues).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

async fn measure(args: &BenchSoakArgs, suffix: &str) -> anyhow::Result<SoakReport> {
    let settings = Settings::from_env().context("reading settings")?;
    let worker_name = format!("bench_soak_{suffix}");
    let method = format!("bench.{suffix}.echo");
    let worker = start_echo_worker(&worker_name, &method, "classic").await?;
    let side = http::HttpSide::start(&method, &worker_name).await?;
    let roles = Roles {
        worker: Some(worker.pid()),
        gateway: Some(side.gateway_pid()),
    };
    let params = hyper::body::Bytes::from_static(br#"{"message_id":"X9J0UI76GBWQTF","n":1}"#);
    let submit = || side.submit_and_wait(&params);

    let fill = args
        .fill
        .unwrap_or(intercomm_gateway::jobs::DEFAULT_MAX_JOBS);
    let total = fill + args.jobs;
    let every = args.every.max(1);
    let reading = |jobs, jobs_per_sec| Checkpoint {
        jobs,
        gateway_rss_kib: roles.gateway.and_then(|pid| rss_kib(&pid.to_string())),
        worker_rss_kib: roles.worker.and_then(|pid| rss_kib(&pid.to_string())),
        jobs_per_sec,
    };
    let mut checkpoints = vec![reading(0, 0.0)];
    let mut done = 0;
    let result = async {
        while done < total {
            let stretch = every.min(total - done);
            let started = Instant::now();
            drive::drive(args.inflight, stretch, roles, &submit).await?;
            done += stretch;
            let checkpoint = reading(
                done,
                stretch as f64 / started.elapsed().as_secs_f64().max(1e-9),
            );
            eprintln!(
                "{done:>7} jobs: gateway RSS {} MiB, worker RSS {} MiB, {:.0} jobs/s",
                mib(checkpoint.gateway_rss_kib),
                mib(checkpoint.worker_rss_kib),
                checkpoint.jobs_per_sec
            );
            checkpoints.push(checkpoint);
        }
        anyhow::Ok(())
    }
    .await;
    side.stop().await;
    worker.stop().await;
    delete_worker_queues(
        &settings.amqp_url,
        suffix,
        &[
            &intercomm_core::topology::worker_queue(&worker_name),
            &intercomm_core::topology::dead_letter_queue(&worker_name),
        ],
    )
    .await?;
    result?;

    let gateway_at = |jobs: usize| {
        checkpoints
            .iter()
            .rev()
            .find(|c| c.jobs <= jobs)
            .and_then(|c| c.gateway_rss_kib)
    };
    let growth = |from: Option<u64>, to: Option<u64>| {
        from.zip(to)
            .map(|(a, b)| i64::try_from(b).unwrap_or(i64::MAX) - i64::try_from(a).unwrap_or(0))
    };
    Ok(SoakReport {
        fill_jobs: fill,
        measured_jobs: args.jobs,
        inflight: args.inflight,
        fill_growth_kib: growth(gateway_at(0), gateway_at(fill)),
        measured_growth_kib: growth(gateway_at(fill), gateway_at(total)),
        checkpoints,
    })
}

impl SoakReport {
    /// The readings as a Markdown table and the two growth figures.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "gateway soak: POST /v1/jobs (Prefer: wait), {} in flight, default job store bounds\n",
            self.inflight
        );
        let _ = writeln!(out, "| jobs | gateway RSS MiB | worker RSS MiB | jobs/s |");
        let _ = writeln!(out, "|---:|---:|---:|---:|");
        for checkpoint in &self.checkpoints {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} |",
                checkpoint.jobs,
                mib(checkpoint.gateway_rss_kib),
                mib(checkpoint.worker_rss_kib),
                checkpoint.jobs_per_sec
            );
        }
        let per_job = |kib: i64, jobs: usize| kib as f64 * 1024.0 / jobs.max(1) as f64;
        if let Some(kib) = self.fill_growth_kib {
            let _ = writeln!(
                out,
                "\nwhile the store filled ({} jobs): {:+.1} MiB ({:.0} bytes per job)",
                self.fill_jobs,
                kib as f64 / 1024.0,
                per_job(kib, self.fill_jobs)
            );
        }
        if let Some(kib) = self.measured_growth_kib {
            let _ = writeln!(
                out,
                "with the store at its bound (the next {} jobs): {:+.1} MiB",
                self.measured_jobs,
                kib as f64 / 1024.0
            );
        }
        out
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}
