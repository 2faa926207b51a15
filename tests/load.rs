//! Load through the real processes: a gateway process and a worker process, 64 concurrent
//! clients. Small in CI; `INTERCOMM_LOAD_JOBS=50000 cargo test --release --test e2e load -- --nocapture`
//! runs the full size and prints the figures for docs/BENCHMARKS.md.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use intercomm_core::topology::{dead_letter_queue, worker_queue};
use serde_json::{Value, json};

use crate::faults::{ECHO_QUEUE, intercomm, wait_for_line};
use crate::helpers::{delete_queues_blocking, within};

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// Every job submitted with 64 concurrent clients ends `succeeded` exactly once (none lost,
/// none twice), and the gateway's and the worker's memory stay flat from the first fifth of
/// the jobs to the last (the job store is bounded to a fifth of the jobs).
#[tokio::test]
async fn load_through_the_gateway_loses_nothing_and_stays_flat() {
    let _only_us = ECHO_QUEUE.lock().await;
    let jobs: usize = std::env::var("INTERCOMM_LOAD_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    let concurrency = 64;
    let (mut worker, mut worker_log) = intercomm(&["worker", "echo"], &[("RUST_LOG", "info")]);
    wait_for_line(&mut worker_log, "worker ready", "the worker process").await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        listener.local_addr().expect("addr").port()
    };
    let listen = format!("127.0.0.1:{port}");
    let secret = format!("load-{}", uuid::Uuid::new_v4().simple());
    let max_jobs = (jobs / 5).max(100).to_string();
    let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
    let (mut gateway, mut gateway_log) = intercomm(
        &["gateway", "--listen", &listen, "--schemas", schemas],
        &[
            ("INTERCOMM_JWT_SECRET", secret.as_str()),
            ("INTERCOMM_RATE_LIMIT", "0"),
            ("INTERCOMM_MAX_JOBS", max_jobs.as_str()),
            ("RUST_LOG", "info"),
        ],
    );
    wait_for_line(&mut gateway_log, "gateway listening", "the gateway process").await;
    let token = intercomm_gateway::auth::mint_hs256(
        &intercomm_gateway::auth::Secret::new(secret),
        "load",
        Duration::from_secs(3600),
        None,
        None,
    )
    .expect("token");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let url = format!("http://{listen}/v1/jobs/echo");
    let gateway_pid = gateway.id().expect("running");
    let worker_pid = worker.id().expect("running");

    let issued = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(std::sync::Mutex::new(HashSet::with_capacity(jobs)));
    let mark = jobs / 5;
    let early_rss = Arc::new(std::sync::Mutex::new(None::<(u64, u64)>));
    let started = Instant::now();
    let lanes: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            let (issued, ids, early_rss) = (
                Arc::clone(&issued),
                Arc::clone(&ids),
                Arc::clone(&early_rss),
            );
            tokio::spawn(async move {
                loop {
                    let n = issued.fetch_add(1, Ordering::Relaxed);
                    if n >= jobs {
                        return;
                    }
                    if n == mark {
                        *early_rss.lock().expect("lock") =
                            Some((rss_kib(gateway_pid), rss_kib(worker_pid)));
                    }
                    let response = http
                        .post(&url)
                        .bearer_auth(&token)
                        .header("prefer", "wait=30")
                        .json(&json!({"n": n}))
                        .send()
                        .await
                        .expect("the gateway answers");
                    assert_eq!(response.status(), 200, "job {n} not final within its wait");
                    let job: Value = response.json().await.expect("JSON");
                    assert_eq!(job["status"], "succeeded", "job {n}: {job}");
                    assert_eq!(job["result"], json!({"n": n}));
                    let fresh = ids
                        .lock()
                        .expect("lock")
                        .insert(job["job_id"].as_str().expect("id").to_owned());
                    assert!(fresh, "a job id came back twice");
                }
            })
        })
        .collect();
    for lane in lanes {
        within(600, "the load", lane).await.expect("lane");
    }
    let elapsed = started.elapsed();
    let (early_gateway, early_worker) = early_rss.lock().expect("lock").unwrap_or((0, 0));
    let (late_gateway, late_worker) = (rss_kib(gateway_pid), rss_kib(worker_pid));
    assert_eq!(
        ids.lock().expect("lock").len(),
        jobs,
        "every job accepted and final once"
    );

    let metrics = http
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let completed = metrics
        .lines()
        .find(|line| {
            line.starts_with("intercomm_jobs_completed_total{") && line.contains("succeeded")
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert_eq!(
        completed as usize, jobs,
        "one final state per job, none twice: {metrics}"
    );

    eprintln!(
        "load: {jobs} jobs, {concurrency} clients, {:.1} s, {:.0} jobs/s; RSS gateway {early_gateway} → {late_gateway} KiB, worker {early_worker} → {late_worker} KiB",
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64()
    );
    let flat = |early: u64, late: u64| late <= early + early / 4 + 16 * 1024;
    assert!(
        flat(early_gateway, late_gateway),
        "gateway memory grew: {early_gateway} → {late_gateway} KiB"
    );
    assert!(
        flat(early_worker, late_worker),
        "worker memory grew: {early_worker} → {late_worker} KiB"
    );

    let _ = gateway.start_kill();
    let _ = worker.start_kill();
    let _ = gateway.wait().await;
    let _ = worker.wait().await;
    delete_queues_blocking(vec![worker_queue("echo"), dead_letter_queue("echo")]);
}
