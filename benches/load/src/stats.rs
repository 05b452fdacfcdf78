//! Latency percentiles and the error tally of one run.

use std::collections::BTreeMap;
use std::time::Duration;

/// The `q` quantile (0.0..=1.0) of `sorted` by the nearest-rank method: the
/// smallest sample such that at least `q` of all samples are at or below it.
/// `None` for no samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// What one run measured.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    ok: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn ok(&mut self, latency: Duration) {
        self.ok.push(latency);
    }

    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.ok.sort_unstable();
        let p = |q| percentile(&self.ok, q).unwrap_or_default();
        let secs = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        Summary {
            ok: self.ok.len() as u64,
            errors: self.errors.clone(),
            elapsed,
            throughput: self.ok.len() as f64 / secs,
            p50: p(0.50),
            p90: p(0.90),
            p99: p(0.99),
            p999: p(0.999),
            max: self.ok.last().copied().unwrap_or_default(),
        }
    }
}

/// Throughput and latency percentiles of the successful queries; errors by kind.
#[derive(Debug, Clone)]
pub struct Summary {
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Successful queries per second of wall time.
    pub throughput: f64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Every query that completed, with or without an error.
    pub fn completed(&self) -> u64 {
        self.ok + self.error_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn percentiles_of_one_to_a_thousand_milliseconds_are_the_nearest_ranks() {
        let samples: Vec<Duration> = (1..=1000).map(ms).collect();
        assert_eq!(percentile(&samples, 0.50), Some(ms(500)));
        assert_eq!(percentile(&samples, 0.90), Some(ms(900)));
        assert_eq!(percentile(&samples, 0.99), Some(ms(990)));
        assert_eq!(percentile(&samples, 0.999), Some(ms(999)));
        assert_eq!(percentile(&samples, 1.0), Some(ms(1000)));
        assert_eq!(percentile(&samples, 0.0), Some(ms(1)));
    }

    #[test]
    fn a_high_percentile_of_few_samples_is_the_largest_not_an_interpolation() {
        let samples = [ms(1), ms(2), ms(3), ms(100)];
        assert_eq!(percentile(&samples, 0.99), Some(ms(100)));
        assert_eq!(percentile(&samples, 0.999), Some(ms(100)));
        assert_eq!(percentile(&samples, 0.5), Some(ms(2)));
        assert_eq!(percentile(&[ms(7)], 0.5), Some(ms(7)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn a_summary_sorts_counts_errors_by_kind_and_divides_by_wall_time() {
        let mut r = Recorder::default();
        for v in [30, 10, 20, 40] {
            r.ok(ms(v));
        }
        r.error("timeout");
        r.error("timeout");
        r.error("http_503");
        let s = r.summary(Duration::from_secs(2));
        assert_eq!(s.ok, 4);
        assert_eq!(s.throughput, 2.0);
        assert_eq!(s.p50, ms(20));
        assert_eq!(s.max, ms(40));
        assert_eq!(s.errors["timeout"], 2);
        assert_eq!(s.error_count(), 3);
        assert_eq!(s.completed(), 7);
    }
}
