//! CPU time and memory of this process, of the role processes and of the broker (`beam.smp`),
//! read from `/proc` (Linux only; elsewhere the figures are absent).

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: u64 = 100;

/// The role processes a sample reads besides this one (the load generator) and the broker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Roles {
    /// The worker process serving the jobs.
    pub worker: Option<u32>,
    /// The gateway process (the HTTP side only).
    pub gateway: Option<u32>,
}

/// CPU used by each role between `start` and `stop`.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    roles: Roles,
    broker_pid: Option<u32>,
    at_start: CpuSpent,
}

/// CPU time of each role (since its start, or during a sample).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSpent {
    /// This process: the load generator and the client library it drives.
    pub load: Option<Duration>,
    /// The worker process.
    pub worker: Option<Duration>,
    /// The gateway process.
    pub gateway: Option<Duration>,
    /// The broker.
    pub broker: Option<Duration>,
}

impl CpuClock {
    /// Read every clock now.
    #[must_use]
    pub fn start(roles: Roles) -> Self {
        let broker_pid = find_broker();
        Self {
            roles,
            broker_pid,
            at_start: read(roles, broker_pid),
        }
    }

    /// CPU used since `start`.
    #[must_use]
    pub fn stop(self) -> CpuSpent {
        let now = read(self.roles, self.broker_pid);
        let since = |now: Option<Duration>, then: Option<Duration>| {
            now.zip(then).map(|(b, a)| b.saturating_sub(a))
        };
        CpuSpent {
            load: since(now.load, self.at_start.load),
            worker: since(now.worker, self.at_start.worker),
            gateway: since(now.gateway, self.at_start.gateway),
            broker: since(now.broker, self.at_start.broker),
        }
    }
}

fn read(roles: Roles, broker_pid: Option<u32>) -> CpuSpent {
    let of_pid = |pid: Option<u32>| pid.and_then(|pid| cpu_of(&pid.to_string()));
    CpuSpent {
        load: cpu_of("self"),
        worker: of_pid(roles.worker),
        gateway: of_pid(roles.gateway),
        broker: of_pid(broker_pid),
    }
}

/// utime + stime of `/proc/<pid>/stat`.
fn cpu_of(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SEC,
    ))
}

/// The pid of the local RabbitMQ (Erlang's `beam.smp`), if it runs on this machine.
fn find_broker() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == "beam.smp").then_some(pid)
        })
}

/// Peak resident set size of a process so far (`VmHWM` of `/proc/<pid>/status`, KiB; `"self"`
/// for this one).
///
/// A high-water mark: it never goes down, so a reading after a run is the largest footprint of
/// that process up to then, not of that run alone.
#[must_use]
pub fn peak_rss_kib(pid: &str) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Resident set size of a process now (`VmRSS`, KiB).
#[must_use]
pub fn rss_kib(pid: &str) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, field)
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::parse_status_kib;

    #[test]
    fn reads_status_fields() {
        let status =
            "Name:\tintercomm\nVmPeak:\t  123456 kB\nVmHWM:\t   45678 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(45_678));
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(40_000));
        assert_eq!(parse_status_kib("Name:\tx\n", "VmHWM:"), None);
    }
}
