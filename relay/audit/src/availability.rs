//! Unavailable periods from the prober's records: the one definition the relay
//! uses live (to write an `outage` record when a period ends) and the report uses
//! after the fact (recomputing from the `probe` records, so that a relay that was
//! down and wrote nothing still shows as unavailable).
//!
//! Definitions ([`OutageDetector::new`]):
//!
//! - An **unavailable period** is a run of at least `failures_needed` consecutive
//!   failed probes (default 2): it begins at the first failed probe and ends at
//!   the next successful one. A single failed probe between successes is not a
//!   period: one probe can fail for reasons of its own (a provider's slow
//!   answer, a garbage-collection pause), and at a 60 s interval two in a row
//!   mean the service was really out for about a minute or more.
//! - **Silence** counts as unavailable: when more than `gap_intervals` probe
//!   intervals (default 3) pass without any probe record, the relay was down (or
//!   could not write). The period begins one interval after the last record (the
//!   probe that never came) and runs to the next successful probe, or to the end
//!   of the period asked for. Three intervals, not one, so that a late probe
//!   (a slow round, a busy disk) is not a gap.
//! - Before the first probe record nothing is known: the report names that time
//!   unmeasured rather than calling it available or not.
//!
//! Pure: no clock, no I/O. Feed probes in time order.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::record::{OutageKind, OutageRecord, ProbeRecord, rfc3339};

/// Who the prober's outage records name (`OutageRecord::who`).
pub const PROBER: &str = "prober";

/// An unavailable period found in the probe records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeOutage {
    #[serde(with = "rfc3339")]
    pub start: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub end: DateTime<Utc>,
    /// No probe records at all for part of it: the relay was not running.
    pub silent: bool,
    /// The steps that failed, in order of first failure, each once.
    pub failed_steps: Vec<String>,
}

impl ProbeOutage {
    /// The audit record for it, written at `now` (an unplanned outage by the prober).
    pub fn record(&self, now: DateTime<Utc>) -> OutageRecord {
        let reason = if self.silent {
            "no probe records: the relay was down".to_owned()
        } else {
            format!("probes failed: {}", self.failed_steps.join(", "))
        };
        OutageRecord {
            time: now,
            start: self.start,
            end: self.end,
            who: PROBER.to_owned(),
            reason,
            kind: OutageKind::Unplanned,
        }
    }
}

#[derive(Debug, Clone)]
struct Run {
    start: DateTime<Utc>,
    failures: u32,
    silent: bool,
    steps: Vec<String>,
}

/// Follows the probe records and reports each unavailable period when it ends.
#[derive(Debug, Clone)]
pub struct OutageDetector {
    failures_needed: u32,
    gap_intervals: u32,
    /// The latest probe: its time and interval.
    last: Option<(DateTime<Utc>, u32)>,
    first: Option<DateTime<Utc>>,
    run: Option<Run>,
}

impl OutageDetector {
    /// `failures_needed` consecutive failed probes make a period (at least 1);
    /// more than `gap_intervals` intervals without a probe make one too.
    pub fn new(failures_needed: u32, gap_intervals: u32) -> Self {
        Self {
            failures_needed: failures_needed.max(1),
            gap_intervals: gap_intervals.max(1),
            last: None,
            first: None,
            run: None,
        }
    }

    /// One probe record (in time order). Returns the period it ended, if any.
    pub fn observe(&mut self, probe: &ProbeRecord) -> Option<ProbeOutage> {
        self.first.get_or_insert(probe.time);
        self.gap_before(probe.time);
        self.last = Some((probe.time, probe.interval_s.max(1)));
        match &probe.result {
            crate::record::ProbeResult::Ok => {
                let run = self.run.take()?;
                self.confirmed(&run).then_some(ProbeOutage {
                    start: run.start,
                    end: probe.time,
                    silent: run.silent,
                    failed_steps: run.steps,
                })
            }
            crate::record::ProbeResult::Failed(step) => {
                let run = self.run.get_or_insert_with(|| Run {
                    start: probe.time,
                    failures: 0,
                    silent: false,
                    steps: Vec::new(),
                });
                run.failures += 1;
                if !run.steps.contains(step) {
                    run.steps.push(step.clone());
                }
                None
            }
        }
    }

    /// The period still going on at `end` (cut there), including silence since
    /// the last probe. The detector is unchanged: the period may go on.
    pub fn open_at(&self, end: DateTime<Utc>) -> Option<ProbeOutage> {
        let mut this = self.clone();
        this.gap_before(end);
        let run = this.run.take()?;
        (this.confirmed(&run) && run.start < end).then_some(ProbeOutage {
            start: run.start,
            end,
            silent: run.silent,
            failed_steps: run.steps,
        })
    }

    /// When the first probe was seen: measurement begins there.
    pub fn measured_from(&self) -> Option<DateTime<Utc>> {
        self.first
    }

    /// Whether an unavailable period is going on (as of the latest probe).
    pub fn is_unavailable(&self) -> bool {
        self.run.as_ref().is_some_and(|r| self.confirmed(r))
    }

    fn confirmed(&self, run: &Run) -> bool {
        run.silent || run.failures >= self.failures_needed
    }

    /// Silence between the last probe and `t` longer than the gap opens (or
    /// extends) a period from the first probe that never came.
    fn gap_before(&mut self, t: DateTime<Utc>) {
        let Some((last, interval_s)) = self.last else {
            return;
        };
        let interval = Duration::seconds(i64::from(interval_s));
        if t - last > interval * self.gap_intervals as i32 {
            let run = self.run.get_or_insert_with(|| Run {
                start: last + interval,
                failures: 0,
                silent: false,
                steps: Vec::new(),
            });
            run.silent = true;
        }
    }
}

/// Merges intervals into disjoint ones, in order (touching ones merge too).
pub(crate) fn merge(
    mut v: Vec<(DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    v.retain(|(s, e)| s < e);
    v.sort();
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some((_, end)) if s <= *end => *end = (*end).max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ProbeResult;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn probe(min: i64, ok: bool) -> ProbeRecord {
        ProbeRecord {
            time: t(min),
            interval_s: 60,
            result: if ok {
                ProbeResult::Ok
            } else {
                ProbeResult::Failed(
                    if min % 2 == 0 {
                        "providers"
                    } else {
                        "shs_ping"
                    }
                    .into(),
                )
            },
            latency_ms: 10,
        }
    }

    fn run(d: &mut OutageDetector, probes: &[(i64, bool)]) -> Vec<ProbeOutage> {
        probes
            .iter()
            .filter_map(|(m, ok)| d.observe(&probe(*m, *ok)))
            .collect()
    }

    #[test]
    fn a_single_failed_probe_between_successes_is_not_a_period() {
        let mut d = OutageDetector::new(2, 3);
        let found = run(
            &mut d,
            &[(0, true), (1, false), (2, true), (3, false), (4, true)],
        );
        assert!(found.is_empty());
        assert!(!d.is_unavailable());
        assert_eq!(d.open_at(t(5)), None);
        assert_eq!(d.measured_from(), Some(t(0)));
    }

    #[test]
    fn two_failed_probes_in_a_row_are_a_period_until_the_next_success() {
        let mut d = OutageDetector::new(2, 3);
        let found = run(
            &mut d,
            &[
                (0, true),
                (1, false),
                (2, false),
                (3, false),
                (4, true),
                (5, true),
            ],
        );
        assert_eq!(
            found,
            [ProbeOutage {
                start: t(1),
                end: t(4),
                silent: false,
                failed_steps: vec!["shs_ping".into(), "providers".into()],
            }]
        );
        let rec = found[0].record(t(4));
        assert_eq!(rec.kind, OutageKind::Unplanned);
        assert_eq!(rec.who, "prober");
        assert_eq!(rec.reason, "probes failed: shs_ping, providers");
        // The number needed is configurable.
        let mut three = OutageDetector::new(3, 3);
        assert!(run(&mut three, &[(0, true), (1, false), (2, false), (3, true)]).is_empty());
    }

    #[test]
    fn silence_longer_than_the_gap_is_a_period_from_the_missing_probe() {
        let mut d = OutageDetector::new(2, 3);
        // 3 intervals late is still no gap; 3 min 1 s would be.
        assert!(run(&mut d, &[(0, true), (3, true)]).is_empty());
        let found = run(&mut d, &[(10, true)]);
        assert_eq!(
            found,
            [ProbeOutage {
                start: t(4),
                end: t(10),
                silent: true,
                failed_steps: vec![],
            }]
        );
        // A restart into failing probes: the silence and the failures are one period.
        let found = run(&mut d, &[(20, false), (21, true)]);
        assert_eq!(
            (found[0].start, found[0].end, found[0].silent),
            (t(11), t(21), true)
        );
        assert_eq!(found[0].failed_steps, ["providers"]);
    }

    #[test]
    fn an_open_period_is_cut_at_the_end_asked_for_and_silence_at_the_end_counts() {
        let mut d = OutageDetector::new(2, 3);
        run(&mut d, &[(0, true), (1, false), (2, false)]);
        assert!(d.is_unavailable());
        assert_eq!(
            d.open_at(t(2)).map(|o| (o.start, o.end)),
            Some((t(1), t(2)))
        );
        let mut quiet = OutageDetector::new(2, 3);
        run(&mut quiet, &[(0, true)]);
        assert_eq!(quiet.open_at(t(3)), None);
        let o = quiet.open_at(t(30)).unwrap();
        assert_eq!((o.start, o.end, o.silent), (t(1), t(30), true));
        // Nothing seen, nothing known.
        assert_eq!(OutageDetector::new(2, 3).open_at(t(30)), None);
    }

    #[test]
    fn intervals_merge_when_they_overlap_or_touch() {
        let merged = merge(vec![
            (t(5), t(7)),
            (t(0), t(2)),
            (t(2), t(3)),
            (t(6), t(9)),
            (t(4), t(4)),
        ]);
        assert_eq!(merged, [(t(0), t(3)), (t(5), t(9))]);
    }
}
