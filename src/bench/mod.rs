//! `intercomm bench rpc`: the same echo round trip, (a) written directly on lapin, (b) through
//! RpcClient + Worker and (c) through the gateway over HTTP, against the same broker in one run,
//! so the ratios (b)/(a) and (c)/(a) are what intercomm costs.
//!
//! Both (a) and (b) use the same queue type, persistent messages, publisher confirms, a consumer
//! prefetch of 64 and one spawned task per delivery on the worker side; the load generator is the
//! same code for all. Each worker and the gateway run in their own processes (this binary again,
//! see [`roles`]), so each role's CPU and memory are measured apart.

mod drive;
mod http;
mod http_client;
mod process_cpu;
mod raw;
mod report;
mod roles;
mod soak;
mod svg;

use std::time::Duration;

use anyhow::Context as _;
use intercomm_core::{CallOptions, Connector, RpcClient, Settings, Worker, WorkerState};
use serde_json::value::RawValue;

use crate::cli::{BenchRpcArgs, BenchSide, ServeEchoArgs, ServeRawArgs};
use process_cpu::Roles;
pub use report::{BenchReport, Level, Sample};
use roles::RoleProcess;
pub use soak::run as soak;

/// Jobs run before each measured sample, so connections and queues are warm.
const WARMUP_JOBS: usize = 500;
/// The worker prefetch on both sides.
const PREFETCH: u16 = 64;

/// Run the benchmark and print the figures.
///
/// # Errors
/// When the broker is unreachable or a round trip fails.
pub async fn run(args: BenchRpcArgs) -> anyhow::Result<()> {
    let suffix = new_suffix();
    let worker_name = format!("bench_{suffix}");
    let queues = [
        raw::job_queue(&suffix),
        intercomm_core::topology::worker_queue(&worker_name),
        intercomm_core::topology::dead_letter_queue(&worker_name),
    ];
    let report = until_interrupted(measure(&args, &suffix), &suffix, &queues).await?;
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

/// The suffix that keeps one run's queues and methods apart from any other's.
fn new_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Run `measure` unless Ctrl-C or SIGTERM comes first; then it is dropped, and with it the
/// role processes it started (killed on drop, not left running as orphans), and the run's
/// `queues` are deleted.
///
/// # Errors
/// `measure`'s error, or that the run was interrupted.
pub async fn until_interrupted<T>(
    measure: impl Future<Output = anyhow::Result<T>>,
    suffix: &str,
    queues: &[String],
) -> anyhow::Result<T> {
    tokio::select! {
        result = measure => return result,
        () = intercomm_core::shutdown::signal() => {}
    }
    let settings = Settings::from_env().context("reading settings")?;
    let queues: Vec<&str> = queues.iter().map(String::as_str).collect();
    if let Err(error) = delete_worker_queues(&settings.amqp_url, suffix, &queues).await {
        eprintln!("could not delete the bench's queues {queues:?}: {error:#}");
    }
    anyhow::bail!("interrupted")
}

/// Measure every in-flight level, `rounds` times each, and keep the medians.
///
/// # Errors
/// When the broker is unreachable or a round trip fails.
pub async fn measure(args: &BenchRpcArgs, suffix: &str) -> anyhow::Result<BenchReport> {
    let settings = Settings::from_env().context("reading settings")?;
    let queue_type = args.queue_type.into();
    let queue_type_arg = format!("{queue_type}");
    let prefetch = PREFETCH.to_string();
    let raw_worker = RoleProcess::serve(
        "raw lapin worker",
        &[
            "bench",
            "serve-raw",
            "--suffix",
            suffix,
            "--queue-type",
            &queue_type_arg,
            "--prefetch",
            &prefetch,
        ],
    )
    .await?;
    let raw = raw::RawClient::start(&settings.amqp_url, suffix, raw::Envelope::Minimal)
        .await
        .context("starting the raw lapin client")?;
    let raw_contract = raw::RawClient::start(&settings.amqp_url, suffix, raw::Envelope::Contract)
        .await
        .context("starting the raw lapin client with the contract envelope")?;

    let worker_name = format!("bench_{suffix}");
    let method = format!("bench.{suffix}.echo");
    let worker = start_echo_worker(&worker_name, &method, &queue_type_arg).await?;
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
        Some(http::HttpSide::start(&method, &worker_name).await?)
    };
    let http_params = hyper::body::Bytes::copy_from_slice(params.get().as_bytes());
    let options = CallOptions::timeout(Duration::from_secs(10));
    let intercomm_call = || client.call_raw(&method, Some(&params), &options);
    let raw_call = || raw.call(params.get().as_bytes());
    let raw_contract_call = || raw_contract.call(params.get().as_bytes());
    let raw_roles = Roles {
        worker: Some(raw_worker.pid()),
        gateway: None,
    };
    let intercomm_roles = Roles {
        worker: Some(worker.pid()),
        gateway: None,
    };
    let http_roles = Roles {
        worker: Some(worker.pid()),
        gateway: http_side.as_ref().map(http::HttpSide::gateway_pid),
    };

    let mut levels = Vec::new();
    let max_inflight = args.inflight.iter().copied().max().unwrap_or(1).max(1);
    for &inflight in &args.inflight {
        let inflight = inflight.max(1);
        // Fewer jobs at low concurrency, so each level takes about as long.
        let jobs = (args.jobs * inflight / max_inflight)
            .max(args.jobs / 4)
            .max(100);
        let mut raw_samples = Vec::new();
        let mut raw_contract_samples = Vec::new();
        let mut intercomm_samples = Vec::new();
        let mut accepted_samples = Vec::new();
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
            drive::drive(inflight, WARMUP_JOBS, raw_roles, &raw_call).await?;
            let sample =
                drive::drive(inflight, jobs_of(BenchSide::Raw), raw_roles, &raw_call).await?;
            eprintln!(
                "round {round}, in flight {inflight}: (a) raw lapin  {:>8.0} jobs/s",
                sample.jobs_per_sec
            );
            raw_samples.push(sample);
            if args.only.is_none() {
                drive::drive(inflight, WARMUP_JOBS, raw_roles, &raw_contract_call).await?;
                let sample = drive::drive(inflight, jobs, raw_roles, &raw_contract_call).await?;
                eprintln!(
                    "round {round}, in flight {inflight}: (a') + envelope {:>8.0} jobs/s",
                    sample.jobs_per_sec
                );
                raw_contract_samples.push(sample);
            }
            drive::drive(inflight, WARMUP_JOBS, intercomm_roles, &intercomm_call).await?;
            let sample = drive::drive(
                inflight,
                jobs_of(BenchSide::Intercomm),
                intercomm_roles,
                &intercomm_call,
            )
            .await?;
            eprintln!(
                "round {round}, in flight {inflight}: (b) intercomm  {:>8.0} jobs/s",
                sample.jobs_per_sec
            );
            intercomm_samples.push(sample);
            let measure_http = args.only.is_none_or(|only| only == BenchSide::Http);
            if let Some(side) = http_side.as_ref().filter(|_| measure_http) {
                // HTTP costs more per job: a third of the jobs keeps each level about as long.
                let http_jobs = (jobs / 3).max(100);
                let http_accept = || side.submit_accepted(&http_params);
                let http_submit = || side.submit_and_wait(&http_params);
                let http_rpc = || side.rpc();
                drive::drive_then(
                    inflight,
                    WARMUP_JOBS,
                    http_roles,
                    &http_accept,
                    side.wait_recorded(),
                )
                .await?;
                let sample = drive::drive_then(
                    inflight,
                    http_jobs,
                    http_roles,
                    &http_accept,
                    side.wait_recorded(),
                )
                .await?;
                eprintln!(
                    "round {round}, in flight {inflight}: (c) HTTP 202   {:>8.0} jobs/s",
                    sample.jobs_per_sec
                );
                accepted_samples.push(sample);
                drive::drive(inflight, WARMUP_JOBS, http_roles, &http_submit).await?;
                let sample = drive::drive(inflight, http_jobs, http_roles, &http_submit).await?;
                eprintln!(
                    "round {round}, in flight {inflight}: (c) HTTP submit {:>8.0} jobs/s",
                    sample.jobs_per_sec
                );
                submit_samples.push(sample);
                let sample = drive::drive(inflight, http_jobs, http_roles, &http_rpc).await?;
                eprintln!(
                    "round {round}, in flight {inflight}: (c) HTTP rpc    {:>8.0} jobs/s",
                    sample.jobs_per_sec
                );
                rpc_samples.push(sample);
            }
        }
        levels.push(
            Level::new(inflight, jobs, raw_samples, intercomm_samples)
                .with_raw_contract(raw_contract_samples)
                .with_http(accepted_samples, submit_samples, rpc_samples),
        );
    }

    if let Some(side) = http_side {
        side.stop().await;
    }
    client.close().await;
    worker.stop().await;
    raw.stop().await;
    raw_contract.stop().await;
    raw_worker.stop().await;
    delete_worker_queues(
        &settings.amqp_url,
        suffix,
        &[
            &raw::job_queue(suffix),
            &intercomm_core::topology::worker_queue(&worker_name),
            &intercomm_core::topology::dead_letter_queue(&worker_name),
        ],
    )
    .await?;
    Ok(BenchReport::new(queue_type, levels))
}

/// Start the intercomm echo worker process serving `method` as `worker`.
///
/// # Errors
/// When it cannot start or does not become ready.
async fn start_echo_worker(
    worker: &str,
    method: &str,
    queue_type: &str,
) -> anyhow::Result<RoleProcess> {
    let prefetch = PREFETCH.to_string();
    RoleProcess::serve(
        "intercomm worker",
        &[
            "bench",
            "serve-echo",
            "--worker",
            worker,
            "--method",
            method,
            "--queue-type",
            queue_type,
            "--prefetch",
            &prefetch,
        ],
    )
    .await
}

/// Delete the queues a bench worker declared.
///
/// # Errors
/// When the broker is unreachable.
async fn delete_worker_queues(amqp_url: &str, suffix: &str, queues: &[&str]) -> anyhow::Result<()> {
    let cleanup = Connector::new(amqp_url, format!("intercomm-bench-cleanup-{suffix}"));
    raw::delete_queues(&cleanup, queues).await
}

/// `intercomm bench serve-raw`: the raw lapin echo worker, in its own process.
///
/// # Errors
/// When the broker is unreachable.
pub async fn serve_raw(args: ServeRawArgs) -> anyhow::Result<()> {
    let settings = Settings::from_env().context("reading settings")?;
    raw::serve_worker(
        &settings.amqp_url,
        &args.suffix,
        args.queue_type.into(),
        args.prefetch,
    )
    .await
}

/// `intercomm bench serve-echo`: the intercomm echo worker, in its own process.
///
/// # Errors
/// When the broker is unreachable or the worker fails.
pub async fn serve_echo(args: ServeEchoArgs) -> anyhow::Result<()> {
    let settings = Settings::from_env().context("reading settings")?;
    let worker = Worker::new(args.worker.clone())
        .method(args.method, intercomm_workers::echo::echo)
        .queue_type(args.queue_type.into())
        .prefetch(args.prefetch)
        .grace_period(Duration::from_secs(5));
    let mut state = worker.state();
    let (stop_worker, stopped) = tokio::sync::oneshot::channel::<()>();
    let connector = Connector::new(
        settings.amqp_url.clone(),
        format!("intercomm-bench-worker-{}", args.worker),
    );
    let running = tokio::spawn(async move {
        worker
            .run(&connector, async {
                let _ = stopped.await;
            })
            .await
    });
    tokio::time::timeout(
        Duration::from_secs(10),
        state.wait_for(|s| *s == WorkerState::Ready),
    )
    .await
    .context("the bench worker did not become ready within 10 s")??;
    roles::announce_ready_and_wait_for_stop().await;
    let _ = stop_worker.send(());
    running.await.context("bench worker task")??;
    Ok(())
}
