//! CPU time and peak memory of a local process, from `/proc` (Linux).

use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// Peak resident set size (`VmHWM`), KiB.
    pub peak_rss_kb: u64,
    /// Resident set size now (`VmRSS`), KiB.
    pub rss_kb: u64,
}

/// User + system time from the text of `/proc/PID/stat`. The command name
/// (field 2) is in parentheses and may itself hold spaces and parentheses, so
/// fields are counted from the last `)`.
pub fn cpu_of_stat(stat: &str, ticks_per_second: u64) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state (3), ppid (4), ... utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    let hz = ticks_per_second.max(1);
    Some(Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz))
}

/// A `Key:   123 kB` line of `/proc/PID/status`, in KiB.
pub fn kb_of_status(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        v.split_whitespace().next()?.parse().ok()
    })
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless
/// that cannot be run).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` when the process is gone.
pub fn sample(pid: u32, ticks_per_second: u64) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        cpu: cpu_of_stat(&stat, ticks_per_second)?,
        peak_rss_kb: kb_of_status(&status, "VmHWM").unwrap_or(0),
        rss_kb: kb_of_status(&status, "VmRSS").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_system_ticks_are_added_even_with_parentheses_in_the_name() {
        let stat = "4242 (shs (a) b) S 1 4242 4242 0 -1 4194304 1234 0 0 0 250 75 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615";
        assert_eq!(cpu_of_stat(stat, 100), Some(Duration::from_millis(3_250)));
        assert_eq!(cpu_of_stat(stat, 1000), Some(Duration::from_millis(325)));
        assert_eq!(cpu_of_stat("4242 (x) S 1", 100), None);
    }

    #[test]
    fn status_lines_are_read_in_kib() {
        let status =
            "Name:\tshs-relay\nVmPeak:\t  900000 kB\nVmHWM:\t   41234 kB\nVmRSS:\t   30000 kB\n";
        assert_eq!(kb_of_status(status, "VmHWM"), Some(41_234));
        assert_eq!(kb_of_status(status, "VmRSS"), Some(30_000));
        assert_eq!(kb_of_status(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(std::process::id(), ticks_per_second()).unwrap();
        assert!(s.peak_rss_kb > 0 && s.peak_rss_kb >= s.rss_kb, "{s:?}");
    }
}
