//! Open-loop arithmetic: when each query is due, and its latency counted from
//! then. A query that starts late because the system (or the bench) was
//! stalled is charged for the stall; measuring from the actual send time
//! instead would hide it ("coordinated omission").

use std::time::{Duration, Instant};

/// Queries at a fixed rate: query `i` is due at `start + i / rate`.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoop {
    rate: f64,
}

impl OpenLoop {
    /// `rate` queries per second; `None` unless finite and positive.
    pub fn new(rate: f64) -> Option<Self> {
        (rate.is_finite() && rate > 0.0).then_some(Self { rate })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// How long after the start query `i` is due. Computed from `i` (not by
    /// adding intervals), so rounding never accumulates.
    pub fn due_after(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// How many queries fall due within `run` of the start.
    pub fn count_within(&self, run: Duration) -> u64 {
        (run.as_secs_f64() * self.rate).ceil() as u64
    }
}

/// The latency of a query that was due at `due` and was answered at `done`
/// (zero if answered "before" it was due, which a clock cannot do).
pub fn latency_from_due(due: Instant, done: Instant) -> Duration {
    done.saturating_duration_since(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_two_hundred_per_second_queries_are_five_milliseconds_apart() {
        let s = OpenLoop::new(200.0).unwrap();
        assert_eq!(s.due_after(0), Duration::ZERO);
        assert_eq!(s.due_after(1), Duration::from_millis(5));
        assert_eq!(s.due_after(200), Duration::from_secs(1));
        assert_eq!(s.due_after(6_000), Duration::from_secs(30));
        assert_eq!(s.count_within(Duration::from_secs(30)), 6_000);
        assert_eq!(s.count_within(Duration::from_millis(7)), 2);
    }

    #[test]
    fn a_rate_that_does_not_divide_a_second_does_not_drift() {
        let s = OpenLoop::new(3.0).unwrap();
        assert_eq!(s.due_after(3_000_000), Duration::from_secs(1_000_000));
        let third = s.due_after(1).as_nanos();
        assert!((333_333_333..=333_333_334).contains(&third), "{third}");
    }

    #[test]
    fn only_a_positive_finite_rate_makes_a_schedule() {
        assert!(OpenLoop::new(0.0).is_none());
        assert!(OpenLoop::new(-1.0).is_none());
        assert!(OpenLoop::new(f64::NAN).is_none());
        assert!(OpenLoop::new(f64::INFINITY).is_none());
    }

    #[test]
    fn a_query_sent_late_is_charged_from_when_it_was_due() {
        let start = Instant::now();
        let s = OpenLoop::new(100.0).unwrap();
        let due = start + s.due_after(10); // 100 ms
        // The bench was stalled for 30 ms, then the answer took 10 ms.
        let sent = due + Duration::from_millis(30);
        let done = sent + Duration::from_millis(10);
        assert_eq!(latency_from_due(due, done), Duration::from_millis(40));
        assert_eq!(latency_from_due(done, due), Duration::ZERO);
    }
}
