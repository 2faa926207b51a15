//! `intercomm bench`: a short run measures every side with each role in its own process, reports
//! each role's CPU and memory, and leaves no queue or process behind.

use std::process::Output;

use serde_json::Value;

use crate::helpers::amqp_url;

async fn bench(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_intercomm"));
    command
        .arg("bench")
        .args(args)
        .env("AMQP_URL", amqp_url())
        .env("RUST_LOG", "error")
        .kill_on_drop(true);
    crate::helpers::within(240, "intercomm bench", command.output())
        .await
        .expect("the binary runs")
}

/// Names of the broker's queues that contain `needle`.
fn queues_named(needle: &str) -> Vec<String> {
    let listing = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "name"])
        .output()
        .expect("rabbitmqctl runs");
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter(|name| name.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// A CPU figure: present, and not negative (a short sample may take less than one 10 ms tick).
fn measured(sample: &Value, field: &str) {
    let value = sample[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {sample}"));
    assert!(value >= 0.0, "{field} is {value} in {sample}");
}

fn positive(sample: &Value, field: &str) -> f64 {
    let value = sample[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {sample}"));
    assert!(value > 0.0, "{field} is {value} in {sample}");
    value
}

/// `bench rpc --json`: (a), (a'), (b) and both (c) at each level, with per-role figures read from
/// the worker's and the gateway's own processes, and the ratios.
#[tokio::test]
async fn bench_rpc_measures_each_role_in_its_own_process() {
    let needles = ["bench_raw_", "raw_client_", "raw_contract_client_"];
    let before: Vec<Vec<String>> = needles.iter().map(|n| queues_named(n)).collect();
    let output = bench(&[
        "rpc",
        "--jobs",
        "200",
        "--rounds",
        "1",
        "--inflight",
        "1,4",
        "--json",
    ])
    .await;
    assert!(
        output.status.success(),
        "bench rpc failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    assert_eq!(report["queue_type"], "classic");
    let levels = report["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 2, "{report}");
    for level in levels {
        for side in [
            "raw",
            "raw_contract",
            "intercomm",
            "http_accepted",
            "http_submit",
            "http_rpc",
        ] {
            let sample = &level[side];
            positive(sample, "jobs_per_sec");
            assert!(
                sample["p50_us"].as_u64() <= sample["p99_us"].as_u64(),
                "{sample}"
            );
            measured(sample, "load_cpu_ms_per_1k");
            measured(sample, "worker_cpu_ms_per_1k");
            measured(sample, "broker_cpu_ms_per_1k");
            positive(sample, "worker_peak_rss_kib");
            if side.starts_with("http") {
                measured(sample, "gateway_cpu_ms_per_1k");
                positive(sample, "gateway_peak_rss_kib");
            } else {
                assert!(sample["gateway_cpu_ms_per_1k"].is_null(), "{sample}");
            }
        }
        positive(level, "throughput_ratio");
        positive(level, "contract_throughput_ratio");
        positive(level, "http_accepted_ratio");
        positive(level, "http_submit_ratio");
    }
    // The worker processes and the gateway stopped and the bench deleted its queues.
    for (needle, before) in needles.iter().zip(before) {
        let new: Vec<String> = queues_named(needle)
            .into_iter()
            .filter(|queue| !before.contains(queue))
            .collect();
        assert_eq!(new, Vec::<String>::new(), "left behind");
    }
}

/// `bench soak --json`: the gateway's RSS at every checkpoint, and the growth while the store
/// filled and after.
#[tokio::test]
async fn bench_soak_reads_the_gateways_memory_at_each_checkpoint() {
    let before = queues_named("bench_soak_");
    let output = bench(&[
        "soak",
        "--fill",
        "300",
        "--jobs",
        "300",
        "--every",
        "200",
        "--inflight",
        "8",
        "--json",
    ])
    .await;
    assert!(
        output.status.success(),
        "bench soak failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    let checkpoints = report["checkpoints"].as_array().expect("checkpoints");
    let jobs: Vec<u64> = checkpoints
        .iter()
        .filter_map(|c| c["jobs"].as_u64())
        .collect();
    assert_eq!(jobs, vec![0, 200, 400, 600], "{report}");
    for checkpoint in checkpoints {
        positive(checkpoint, "gateway_rss_kib");
        positive(checkpoint, "worker_rss_kib");
    }
    assert!(report["fill_growth_kib"].is_i64(), "{report}");
    assert!(report["measured_growth_kib"].is_i64(), "{report}");
    let new: Vec<String> = queues_named("bench_soak_")
        .into_iter()
        .filter(|queue| !before.contains(queue))
        .collect();
    assert_eq!(new, Vec::<String>::new(), "left behind");
}
