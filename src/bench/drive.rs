//! The load generator both sides share: `inflight` lanes in one task, each doing round trips
//! back to back until `jobs` are done.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::process_cpu::{CpuClock, Roles, peak_rss_kib};
use super::report::Sample;

/// Run `jobs` round trips with `inflight` at once, reading the CPU and memory of this process and
/// of `roles`.
///
/// # Errors
/// The first failed round trip.
pub async fn drive<F, Fut, T, E>(
    inflight: usize,
    jobs: usize,
    roles: Roles,
    call: &F,
) -> anyhow::Result<Sample>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    drive_then(inflight, jobs, roles, call, async { Ok(()) }).await
}

/// As [`drive`], but the run (its duration and CPU) ends only once `settled` is done too: for
/// calls that return before the job they start is finished (a submit answered 202), `settled`
/// waits for the last job's result.
///
/// # Errors
/// The first failed call, or `settled`'s error.
pub async fn drive_then<F, Fut, T, E>(
    inflight: usize,
    jobs: usize,
    roles: Roles,
    call: &F,
    settled: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<Sample>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let issued = Cell::new(0usize);
    let latencies = RefCell::new(Vec::with_capacity(jobs));
    let cpu = CpuClock::start(roles);
    let started = Instant::now();
    let lane = || async {
        while issued.get() < jobs {
            issued.set(issued.get() + 1);
            let sent = Instant::now();
            call().await.map_err(Into::into)?;
            let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
            latencies.borrow_mut().push(micros);
        }
        anyhow::Ok(())
    };
    let mut lanes: FuturesUnordered<_> = (0..inflight.max(1)).map(|_| lane()).collect();
    while let Some(result) = lanes.next().await {
        result?;
    }
    drop(lanes);
    settled.await?;
    let elapsed = started.elapsed();
    let cpu = cpu.stop();
    let mut sample = Sample::from_latencies(latencies.into_inner(), elapsed, cpu);
    let peak_of = |pid: Option<u32>| pid.and_then(|pid| peak_rss_kib(&pid.to_string()));
    sample.load_peak_rss_kib = peak_rss_kib("self");
    sample.worker_peak_rss_kib = peak_of(roles.worker);
    sample.gateway_peak_rss_kib = peak_of(roles.gateway);
    Ok(sample)
}
