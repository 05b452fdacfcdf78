//! Pinning processes to CPUs (`--pin`), so that the relay's added latency is
//! measured on a core of its own instead of in the scheduling noise of ten
//! processes sharing every core.
//!
//! Uses `taskset -a -p -c LIST PID` (util-linux), which sets the affinity of
//! every thread the process has; threads it starts later inherit it.

use std::process::Command;

/// Which CPUs the relay gets and which everything else (adapters, simulator,
/// the bench itself) gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub relay: Vec<usize>,
    pub others: Vec<usize>,
}

impl Split {
    /// The relay on CPU 0, everything else on the remaining CPUs. `None` on a
    /// machine with a single CPU (nothing to split).
    pub fn of(cpus: usize) -> Option<Split> {
        (cpus >= 2).then(|| Split {
            relay: vec![0],
            others: (1..cpus).collect(),
        })
    }
}

/// The CPU list as `taskset -c` reads it (`1,2,3`).
pub fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Pins every thread of process `pid` to `cpus`.
pub fn pin(pid: u32, cpus: &[usize]) -> anyhow::Result<()> {
    let list = cpu_list(cpus);
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", &list, &pid.to_string()])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run taskset (util-linux): {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "taskset -a -p -c {list} {pid} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The CPUs this process may run on, as `taskset -p` reports them for `pid`
/// (for the report and the tests).
pub fn affinity(pid: u32) -> anyhow::Result<String> {
    let out = Command::new("taskset")
        .args(["-c", "-p", &pid.to_string()])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run taskset (util-linux): {e}"))?;
    anyhow::ensure!(out.status.success(), "taskset -c -p {pid} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .rsplit(':')
        .next()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_gets_cpu_zero_and_the_rest_the_others() {
        assert_eq!(Split::of(1), None);
        assert_eq!(
            Split::of(2),
            Some(Split {
                relay: vec![0],
                others: vec![1]
            })
        );
        let four = Split::of(4).unwrap();
        assert_eq!(cpu_list(&four.others), "1,2,3");
    }

    #[test]
    fn pinning_a_child_process_changes_its_affinity() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        pin(pid, &[0]).unwrap();
        let seen = affinity(pid);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen.unwrap(), "0", "on a machine with {cpus} CPUs");
    }
}
