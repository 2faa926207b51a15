//! CPU time of this process and of the broker (`beam.smp`), read from `/proc` (Linux only;
//! elsewhere the figures are absent).

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: u64 = 100;

/// CPU used by this process and the broker between `start` and `stop`.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    own: Option<Duration>,
    broker: Option<Duration>,
    broker_pid: Option<u32>,
}

/// CPU spent during a sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSpent {
    /// This process (client, worker and lapin's I/O threads).
    pub own: Option<Duration>,
    /// The broker.
    pub broker: Option<Duration>,
}

impl CpuClock {
    /// Read both clocks now.
    #[must_use]
    pub fn start() -> Self {
        let broker_pid = find_broker();
        Self {
            own: cpu_of("self"),
            broker: broker_pid.and_then(|pid| cpu_of(&pid.to_string())),
            broker_pid,
        }
    }

    /// CPU used since `start`.
    #[must_use]
    pub fn stop(self) -> CpuSpent {
        let own = cpu_of("self");
        let broker = self.broker_pid.and_then(|pid| cpu_of(&pid.to_string()));
        CpuSpent {
            own: own.zip(self.own).map(|(b, a)| b.saturating_sub(a)),
            broker: broker.zip(self.broker).map(|(b, a)| b.saturating_sub(a)),
        }
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

/// Peak resident set size of this process so far (`VmHWM` of `/proc/self/status`, KiB).
///
/// A high-water mark for the whole process: it never goes down, so a reading after a run is the
/// largest footprint of everything measured up to then, not of that run alone.
#[must_use]
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::parse_vm_hwm;

    #[test]
    fn reads_vm_hwm() {
        let status =
            "Name:\tintercomm\nVmPeak:\t  123456 kB\nVmHWM:\t   45678 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(45_678));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
    }
}
