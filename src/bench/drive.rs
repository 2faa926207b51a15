//! The load generator both sides share: `inflight` lanes in one task, each doing round trips
//! back to back until `jobs` are done.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::process_cpu::{CpuClock, peak_rss_kib};
use super::report::Sample;

/// Run `jobs` round trips with `inflight` at once.
///
/// # Errors
/// The first failed round trip.
pub async fn drive<F, Fut, T, E>(inflight: usize, jobs: usize, call: &F) -> anyhow::Result<Sample>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let issued = Cell::new(0usize);
    let latencies = RefCell::new(Vec::with_capacity(jobs));
    let cpu = CpuClock::start();
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
    let elapsed = started.elapsed();
    let cpu = cpu.stop();
    let mut sample = Sample::from_latencies(latencies.into_inner(), elapsed, cpu);
    sample.peak_rss_kib = peak_rss_kib();
    Ok(sample)
}
