//! `intercomm bench rpc`: the same echo round trip, (a) written directly on lapin and (b) through
//! RpcClient + Worker, against the same broker in one run, so the ratio (b)/(a) is what
//! intercomm costs.
//!
//! Both sides use the same queue type, persistent messages, publisher confirms, a consumer
//! prefetch of 64 and one spawned task per delivery on the worker side; the load generator is the
//! same code for both.

mod drive;
mod http;
mod process_cpu;
mod raw;
mod report;
mod svg;

use std::time::Duration;

use anyhow::Context as _;
use intercomm_core::{CallOptions, Connector, RpcClient, Settings, Worker, WorkerState};
use serde_json::value::RawValue;

use crate::cli::{BenchRpcArgs, BenchSide};
pub use report::{BenchReport, Level, Sample};

/// Jobs run before each measured sample, so connections and queues are warm.
const WARMUP_JOBS: usize = 500;
/// The worker prefetch on both sides.
const PREFETCH: u16 = 64;

/// Run the benchmark and print the figures.
///
/// # Errors
/// When the broker is unreachable or a round trip fails.
pub async fn run(args: BenchRpcArgs) -> anyhow::Result<()> {
    let report = measure(&args).await?;
    if let Some(path) = &args.svg {
        std::fs::write(path, svg::chart(&report))
            .with_context(|| format!("writing the chart to {}", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Measure every in-flight level, `rounds` times each, and keep the medians.
///
/// # Errors
/// When the broker is unreachable or a round trip fails.
pub async fn measure(args: &BenchRpcArgs) -> anyhow::Result<BenchReport> {
    let settings = Settings::from_env().context("reading settings")?;
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let queue_type = args.queue_type.into();
    let raw = raw::RawEcho::start(&settings.amqp_url, &suffix, queue_type, PREFETCH)
        .await
        .context("starting the raw lapin echo")?;

    let worker_name = format!("bench_{suffix}");
    let method = format!("bench.{suffix}.echo");
    let worker = Worker::new(worker_name.clone())
        .method(method.clone(), intercomm_workers::echo::echo)
        .queue_type(queue_type)
        .prefetch(PREFETCH)
        .grace_period(Duration::from_secs(5));
    let mut worker_state = worker.state();
    let (stop_worker, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker_connector = Connector::new(
        settings.amqp_url.clone(),
        format!("intercomm-bench-worker-{suffix}"),
    );
    let worker_task = tokio::spawn(async move {
        worker
            .run(&worker_connector, async {
                let _ = stopped.await;
            })
            .await
    });
    tokio::time::timeout(
        Duration::from_secs(10),
        worker_state.wait_for(|s| *s == WorkerState::Ready),
    )
    .await
    .context("the bench worker did not become ready within 10 s")??;
    let client = RpcClient::builder(Connector::new(
        settings.amqp_url.clone(),
        format!("intercomm-bench-client-{suffix}"),
    ))
    .connect()
    .await
    .context("connecting the RpcClient")?;

    let params = RawValue::from_string(r#"{"message_id":"X9J0UI76GBWQTF","n":1}"#.to_owned())?;
    let http_side = if args.no_http {
        None
    } else {
        Some(http::HttpSide::start(&settings.amqp_url, &method, &worker_name).await?)
    };
    let http_submit = || async {
        match &http_side {
            Some(side) => side.submit_and_wait(params.get().as_bytes()).await,
            None => Ok(()),
        }
    };
    let http_rpc = || async {
        match &http_side {
            Some(side) => side.rpc().await,
            None => Ok(()),
        }
    };
    let options = CallOptions::timeout(Duration::from_secs(10));
    let intercomm_call = || client.call_raw(&method, Some(&params), &options);
    let raw_call = || raw.call(params.get().as_bytes());

    let mut levels = Vec::new();
    let max_inflight = args.inflight.iter().copied().max().unwrap_or(1).max(1);
    for &inflight in &args.inflight {
        let inflight = inflight.max(1);
        // Fewer jobs at low concurrency, so each level takes about as long.
        let jobs = (args.jobs * inflight / max_inflight)
            .max(args.jobs / 4)
            .max(100);
        let mut raw_samples = Vec::new();
        let mut intercomm_samples = Vec::new();
        let mut submit_samples = Vec::new();
        let mut rpc_samples = Vec::new();
        let jobs_of = |side| {
            if args.only.is_some_and(|only| only != side) {
                100
            } else {
                jobs
            }
        };
        for round in 1..=args.rounds.max(1) {
            drive::drive(inflight, WARMUP_JOBS, &raw_call).await?;
            let sample = drive::drive(inflight, jobs_of(BenchSide::Raw), &raw_call).await?;
            eprintln!(
                "round {round}, in flight {inflight}: (a) raw lapin  {:>8.0} jobs/s",
                sample.jobs_per_sec
            );
            raw_samples.push(sample);
            drive::drive(inflight, WARMUP_JOBS, &intercomm_call).await?;
            let sample =
                drive::drive(inflight, jobs_of(BenchSide::Intercomm), &intercomm_call).await?;
            eprintln!(
                "round {round}, in flight {inflight}: (b) intercomm  {:>8.0} jobs/s",
                sample.jobs_per_sec
            );
            intercomm_samples.push(sample);
            if http_side.is_some() && args.only.is_none() {
                // HTTP costs more per job: a third of the jobs keeps each level about as long.
                let http_jobs = (jobs / 3).max(100);
                drive::drive(inflight, WARMUP_JOBS, &http_submit).await?;
                let sample = drive::drive(inflight, http_jobs, &http_submit).await?;
                eprintln!(
                    "round {round}, in flight {inflight}: (c) HTTP submit {:>8.0} jobs/s",
                    sample.jobs_per_sec
                );
                submit_samples.push(sample);
                let sample = drive::drive(inflight, http_jobs, &http_rpc).await?;
                eprintln!(
                    "round {round}, in flight {inflight}: (c) HTTP rpc    {:>8.0} jobs/s",
                    sample.jobs_per_sec
                );
                rpc_samples.push(sample);
            }
        }
        levels.push(
            Level::new(inflight, jobs, raw_samples, intercomm_samples)
                .with_http(submit_samples, rpc_samples),
        );
    }

    if let Some(side) = http_side {
        side.stop();
    }
    client.close().await;
    let _ = stop_worker.send(());
    worker_task.await.context("bench worker task")??;
    raw.stop().await;
    let cleanup = Connector::new(
        settings.amqp_url.clone(),
        format!("intercomm-bench-cleanup-{suffix}"),
    );
    raw::delete_queues(
        &cleanup,
        &[
            &intercomm_core::topology::worker_queue(&worker_name),
            &intercomm_core::topology::dead_letter_queue(&worker_name),
        ],
    )
    .await?;
    Ok(BenchReport::new(queue_type, levels))
}
