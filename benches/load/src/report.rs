//! The printed report.

use std::fmt::Write;
use std::time::Duration;

use crate::procstat::ProcSample;
use crate::stats::Summary;

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// One run's throughput, percentiles and errors as text.
pub fn summary(title: &str, s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== {title}");
    let _ = writeln!(
        out,
        "  {} ok, {} errors in {:.1} s: {:.1} q/s",
        s.ok,
        s.error_count(),
        s.elapsed.as_secs_f64(),
        s.throughput
    );
    let _ = writeln!(
        out,
        "  latency ms: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        ms(s.p50),
        ms(s.p90),
        ms(s.p99),
        ms(s.p999),
        ms(s.max)
    );
    for (kind, n) in &s.errors {
        let _ = writeln!(out, "  error {kind}: {n}");
    }
    out
}

/// A process's CPU per completed query and its memory.
pub fn process(name: &str, before: ProcSample, after: ProcSample, queries: u64) -> String {
    let cpu = after.cpu.saturating_sub(before.cpu);
    let per_query = if queries == 0 {
        Duration::ZERO
    } else {
        cpu / u32::try_from(queries).unwrap_or(u32::MAX)
    };
    format!(
        "  {name:<16} cpu {:>8.1} ms total, {:>6.3} ms/query; rss {:>6.1} MB, peak (VmHWM) {:>6.1} MB\n",
        cpu.as_secs_f64() * 1e3,
        per_query.as_secs_f64() * 1e3,
        after.rss_kb as f64 / 1024.0,
        after.peak_rss_kb as f64 / 1024.0
    )
}

/// The relay against the bare fan-out at the same load: throughput ratio, and
/// the latency the relay adds at p50 and p99 (its percentile less the
/// baseline's: the baseline's latency is the slowest of the seven calls).
pub fn comparison(relay: &Summary, baseline: &Summary) -> String {
    let ratio = if baseline.throughput > 0.0 {
        relay.throughput / baseline.throughput
    } else {
        0.0
    };
    let added = |r: Duration, b: Duration| {
        let sign = if r >= b { "" } else { "-" };
        format!("{sign}{}", ms(r.abs_diff(b)))
    };
    format!(
        "== relay ÷ baseline\n  throughput ratio {ratio:.2}\n  added latency ms: p50 {}  p99 {}\n",
        added(relay.p50, baseline.p50),
        added(relay.p99, baseline.p99)
    )
}

/// Smallest, median and largest of some figures (the median of an even
/// count is the lower middle one: a figure that was measured).
fn min_median_max(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    v.sort_by(f64::total_cmp);
    let first = *v.first()?;
    let last = *v.last()?;
    let median = *v.get((v.len() - 1) / 2)?;
    Some((first, median, last))
}

fn spread_line(name: &str, unit: &str, v: Vec<f64>) -> String {
    match min_median_max(v) {
        Some((lo, mid, hi)) => {
            format!("  {name:<22} min {lo:>9.2}  median {mid:>9.2}  max {hi:>9.2} {unit}\n")
        }
        None => String::new(),
    }
}

/// The spread of repeated runs of one workload (`--repeat`): throughput and
/// latency percentiles, smallest, median and largest.
pub fn spread(title: &str, runs: &[Summary]) -> String {
    let ms_of = |f: fn(&Summary) -> Duration| {
        runs.iter()
            .map(|s| f(s).as_secs_f64() * 1e3)
            .collect::<Vec<_>>()
    };
    let mut out = format!("== spread over {} runs: {title}\n", runs.len());
    out += &spread_line(
        "throughput",
        "q/s",
        runs.iter().map(|s| s.throughput).collect(),
    );
    out += &spread_line("latency p50", "ms", ms_of(|s| s.p50));
    out += &spread_line("latency p99", "ms", ms_of(|s| s.p99));
    out
}

/// The spread of the relay's added latency over repeated runs, each relay run
/// paired with the baseline run of the same repetition.
pub fn comparison_spread(relay: &[Summary], baseline: &[Summary]) -> String {
    let added = |f: fn(&Summary) -> Duration| {
        relay
            .iter()
            .zip(baseline)
            .map(|(r, b)| (f(r).as_secs_f64() - f(b).as_secs_f64()) * 1e3)
            .collect::<Vec<_>>()
    };
    let ratio = relay
        .iter()
        .zip(baseline)
        .filter(|(_, b)| b.throughput > 0.0)
        .map(|(r, b)| r.throughput / b.throughput)
        .collect();
    let mut out = format!(
        "== spread over {} runs: relay ÷ baseline\n",
        relay.len().min(baseline.len())
    );
    out += &spread_line("throughput ratio", "", ratio);
    out += &spread_line("added latency p50", "ms", added(|s| s.p50));
    out += &spread_line("added latency p99", "ms", added(|s| s.p99));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Recorder;

    fn summary_of(ms: &[u64], secs: u64) -> Summary {
        let mut r = Recorder::default();
        for v in ms {
            r.ok(Duration::from_millis(*v));
        }
        r.summary(Duration::from_secs(secs))
    }

    #[test]
    fn the_comparison_divides_throughput_and_subtracts_percentiles() {
        let relay = summary_of(&[5, 5, 6, 9], 2);
        let baseline = summary_of(&[2, 2, 3, 3, 3, 3, 3, 4], 2);
        let text = comparison(&relay, &baseline);
        assert!(text.contains("throughput ratio 0.50"), "{text}");
        assert!(text.contains("p50 2.00"), "{text}");
        assert!(text.contains("p99 5.00"), "{text}");
    }

    #[test]
    fn cpu_per_query_divides_the_difference_of_two_samples() {
        let before = ProcSample {
            cpu: Duration::from_millis(100),
            peak_rss_kb: 1024,
            rss_kb: 1024,
        };
        let after = ProcSample {
            cpu: Duration::from_millis(600),
            peak_rss_kb: 40 * 1024,
            rss_kb: 30 * 1024,
        };
        let text = process("shs-relay", before, after, 1000);
        assert!(text.contains("0.500 ms/query"), "{text}");
        assert!(text.contains("peak (VmHWM)   40.0 MB"), "{text}");
    }
    #[test]
    fn the_spread_gives_smallest_median_and_largest() {
        let runs = [
            summary_of(&[4, 4, 4, 4], 1),
            summary_of(&[2, 2, 2, 2], 1),
            summary_of(&[9, 9, 9, 9], 1),
        ];
        let text = spread("SHS", &runs);
        assert!(text.contains("over 3 runs"), "{text}");
        assert!(
            text.contains(
                "latency p50            min      2.00  median      4.00  max      9.00 ms"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_added_latency_spread_pairs_runs_of_one_repetition() {
        let relay = [summary_of(&[5, 5], 1), summary_of(&[3, 3], 1)];
        let baseline = [summary_of(&[4, 4], 1), summary_of(&[4, 4], 1)];
        let text = comparison_spread(&relay, &baseline);
        assert!(
            text.contains(
                "added latency p50      min     -1.00  median     -1.00  max      1.00 ms"
            ),
            "{text}"
        );
        assert!(
            text.contains("throughput ratio       min      1.00"),
            "{text}"
        );
    }
}
