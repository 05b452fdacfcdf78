//! The monthly service-level report, computed from the audit files alone.
//!
//! Everything counts only requests that **arrived within opening hours** (see
//! [`crate::calendar`]) on a Stockholm local date within the month; requests
//! outside them are counted once, as `outside_opening_hours`, and otherwise
//! ignored. Each request falls in exactly one class:
//!
//! - **answered**: result `answered` (also when some provider slots hold errors:
//!   partial answers are normal in SSBTEK);
//! - **caller's fault**: `refused:<code>` with a code in
//!   [`SlaConfig::caller_fault_codes`] (invalid question, no agreement, not the
//!   ingivare, suspended, over the caller's rate or retry limit). These are
//!   excluded from the denominator of the answered share: the service did its
//!   job by refusing them;
//! - **failed**: result `error`, or a refusal with any other code (overloaded,
//!   maintenance, ...): the relay's side did not answer.
//!
//! Definitions:
//!
//! - **Answer times**: over answered requests; a request about `n` persons is
//!   within the fast limit when `latency_ms <= fast_ms + (n - 1) * per_extra_person_ms`
//!   (7 s + 1.5 s per extra person), likewise for the slow limit (12 s + ...).
//!   Targets: 90 % within the fast limit, 100 % within the slow one.
//! - **Answered share** = answered / (all − caller's fault). Target ≥ 95 %.
//! - **Unavailable minute**: a minute of opening hours (Stockholm local, on the
//!   minute) in which at least one request failed and none was answered, or
//!   that overlaps an `outage` record. Minutes without requests count as
//!   available: the audit file holds no evidence against them.
//!   Availability = 1 − unavailable minutes / opening minutes (540 per opening day).
//! - **Disturbance**: a request in which 2 or more distinct providers failed
//!   (any outcome but `data` and `withdrawn`). A disturbance period is a maximal
//!   run of such requests in arrival order; requests that were not fanned out
//!   (refused before asking, no provider calls) neither extend nor break a run.
//!   A period is reported with the arrival time of its first and last request.
//! - **Percentiles** are nearest-rank: the p-th percentile of n sorted values is
//!   the value at 1-based rank ⌈p·n/100⌉ (rank 1 when that is 0); none when n = 0.
//!   Overall and daily latency percentiles are over answered requests; provider
//!   percentiles over every call to that provider, whatever its outcome.
//!
//! Memory: one small sample per request inside opening hours is kept (exact
//! percentiles need every value); the files themselves are streamed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

use crate::calendar::{self, MINUTES_PER_DAY};
use crate::error::{AuditError, Result};
use crate::files::{ReadStats, for_each_record};
use crate::record::{AuditRecord, Outcome, RequestRecord, RequestResult, rfc3339};

/// The service levels to measure against. [`Default`] is the SSBTEK agreement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaConfig {
    /// Answer-time limit for the 90 % target, one person.
    pub fast_ms: u64,
    /// Answer-time limit for everything, one person.
    pub slow_ms: u64,
    /// Added to both limits per person beyond the first.
    pub per_extra_person_ms: u64,
    /// Share (percent) to answer within the fast limit.
    pub fast_target_percent: f64,
    /// Share (percent) to answer within the slow limit.
    pub slow_target_percent: f64,
    /// Share (percent) of calls to answer.
    pub answered_target_percent: f64,
    /// Refusal codes that are the caller's fault (excluded from the answered share).
    pub caller_fault_codes: Vec<String>,
    /// Failed providers in one request that make it a disturbance.
    pub disturbance_failed_providers: usize,
}

impl Default for SlaConfig {
    fn default() -> Self {
        Self {
            fast_ms: 7_000,
            slow_ms: 12_000,
            per_extra_person_ms: 1_500,
            fast_target_percent: 90.0,
            slow_target_percent: 100.0,
            answered_target_percent: 95.0,
            caller_fault_codes: [
                "validation",
                "no_agreement",
                "not_ingivare_or_processor",
                "not_authorised",
                "suspended",
                "too_many_persons",
                "rate_limited",
                "too_many_retries",
                "too_large",
            ]
            .map(String::from)
            .to_vec(),
            disturbance_failed_providers: 2,
        }
    }
}

impl SlaConfig {
    fn limit(&self, base_ms: u64, persons: u32) -> u64 {
        base_ms + u64::from(persons.max(1) - 1) * self.per_extra_person_ms
    }
}

/// A month, as `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl std::str::FromStr for Month {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Self> {
        let (y, m) = s.trim().split_once('-').ok_or(AuditError::Month)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(AuditError::Month);
        }
        let year = y.parse().map_err(|_| AuditError::Month)?;
        let month = m.parse().map_err(|_| AuditError::Month)?;
        NaiveDate::from_ymd_opt(year, month, 1).ok_or(AuditError::Month)?;
        Ok(Self { year, month })
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Month {
    fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("checked when parsed")
    }

    fn contains(self, day: NaiveDate) -> bool {
        day.year() == self.year && day.month() == self.month
    }
}

/// How the month's requests divide up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// Requests that arrived within opening hours; everything below counts these.
    pub in_opening_hours: u64,
    pub answered: u64,
    pub refused_caller_fault: u64,
    /// `error`, or refused for a reason on the relay's side.
    pub failed: u64,
    /// Requests in the month outside opening hours (not measured).
    pub outside_opening_hours: u64,
}

/// Answer times against the limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerTimes {
    /// Answered requests measured.
    pub measured: u64,
    pub within_fast: u64,
    pub within_slow: u64,
    pub fast_percent: Option<f64>,
    pub slow_percent: Option<f64>,
    pub fast_target_percent: f64,
    pub slow_target_percent: f64,
    /// `None` when nothing was measured.
    pub fast_met: Option<bool>,
    pub slow_met: Option<bool>,
    pub p50_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

/// Answered / (all − caller's fault).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnsweredShare {
    pub eligible: u64,
    pub answered: u64,
    pub percent: Option<f64>,
    pub target_percent: f64,
    pub met: Option<bool>,
}

/// Unavailable minutes of opening hours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Availability {
    pub opening_minutes: u64,
    pub unavailable_minutes: u64,
    /// Minutes with failed and no answered requests.
    pub minutes_from_failures: u64,
    /// Minutes covered by outage records.
    pub minutes_from_outages: u64,
    pub percent: f64,
}

/// A maximal run of disturbed requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disturbance {
    #[serde(with = "rfc3339")]
    pub start: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub end: DateTime<Utc>,
    pub requests: u64,
    /// Every provider that failed in the run.
    pub providers: Vec<String>,
}

/// One provider's calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderStats {
    pub provider: String,
    pub calls: u64,
    /// By outcome label, every label present (zero when none).
    pub outcomes: BTreeMap<String, u64>,
    pub p50_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

/// One opening day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyStats {
    pub date: NaiveDate,
    pub requests: u64,
    pub answered: u64,
    /// Over answered requests.
    pub p50_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    pub unavailable_minutes: u64,
    pub availability_percent: f64,
}

/// The month's service levels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaReport {
    pub month: String,
    pub config: SlaConfig,
    pub opening_days: u64,
    pub requests: RequestCounts,
    pub answer_times: AnswerTimes,
    pub answered_share: AnsweredShare,
    pub availability: Availability,
    pub disturbances: Vec<Disturbance>,
    pub providers: Vec<ProviderStats>,
    pub daily: Vec<DailyStats>,
    pub read: ReadStats,
}

/// The nearest-rank percentile of ascending `sorted` (see the module docs).
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (u64::from(p) * n).div_ceil(100).clamp(1, n);
    Some(sorted[(rank - 1) as usize])
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Answered,
    CallerFault,
    Failed,
}

/// What the report keeps of one request in opening hours.
struct Sample {
    time: DateTime<Utc>,
    day: NaiveDate,
    minute: i64,
    class: Class,
    latency_ms: u64,
    persons: u32,
    fanned_out: bool,
    failed: Vec<String>,
}

/// Computes the report for `month` (`YYYY-MM`) from `files`.
pub fn sla_report(files: &[PathBuf], month: &str, config: &SlaConfig) -> Result<SlaReport> {
    let month: Month = month.parse()?;
    let days = calendar::opening_days(month.year, month.month);
    let month_start = calendar::stockholm(month.first_day(), NaiveTime::MIN);

    let mut counts = RequestCounts::default();
    let mut samples: Vec<Sample> = Vec::new();
    let mut provider_calls: BTreeMap<String, (BTreeMap<Outcome, u64>, Vec<u64>)> = BTreeMap::new();
    let mut outages: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();

    let read = for_each_record(files, Some(month_start), |rec| match rec {
        // The service levels are SSBTEK's (Bilaga 4); ELT submissions have none.
        AuditRecord::Request(r) if r.product == "elt" => {}
        AuditRecord::Request(r) => {
            let (day, _) = calendar::local_day_and_minute(r.time);
            if !month.contains(day) {
                return;
            }
            if !calendar::is_open(r.time) {
                counts.outside_opening_hours += 1;
                return;
            }
            for call in &r.providers {
                let (outcomes, latencies) =
                    provider_calls.entry(call.provider.clone()).or_default();
                *outcomes.entry(call.outcome).or_default() += 1;
                latencies.push(call.latency_ms);
            }
            samples.push(sample(&r, day, config));
        }
        AuditRecord::Outage(o) if o.end > o.start => outages.push((o.start, o.end)),
        _ => {}
    })?;

    // Arrival order; the sort is stable, so equal times keep file order.
    samples.sort_by_key(|s| s.time);
    for s in &samples {
        counts.in_opening_hours += 1;
        match s.class {
            Class::Answered => counts.answered += 1,
            Class::CallerFault => counts.refused_caller_fault += 1,
            Class::Failed => counts.failed += 1,
        }
    }

    let answer_times = answer_times(&samples, config);
    let eligible = counts.in_opening_hours - counts.refused_caller_fault;
    let answered_pct = percent(counts.answered, eligible);
    let answered_share = AnsweredShare {
        eligible,
        answered: counts.answered,
        percent: answered_pct,
        target_percent: config.answered_target_percent,
        met: answered_pct.map(|p| p >= config.answered_target_percent),
    };

    let failure_minutes = failure_minutes(&samples);
    let outage_minutes = outage_minutes(&days, &outages);
    let unavailable: BTreeSet<i64> = failure_minutes.union(&outage_minutes).copied().collect();
    let opening_minutes = days.len() as u64 * u64::from(MINUTES_PER_DAY);
    let availability = Availability {
        opening_minutes,
        unavailable_minutes: unavailable.len() as u64,
        minutes_from_failures: failure_minutes.len() as u64,
        minutes_from_outages: outage_minutes.len() as u64,
        percent: percent(opening_minutes - unavailable.len() as u64, opening_minutes)
            .unwrap_or(100.0),
    };

    let providers = provider_calls
        .into_iter()
        .map(|(provider, (outcomes, mut latencies))| {
            latencies.sort_unstable();
            ProviderStats {
                provider,
                calls: latencies.len() as u64,
                outcomes: Outcome::ALL
                    .iter()
                    .map(|o| (o.label().to_owned(), outcomes.get(o).copied().unwrap_or(0)))
                    .collect(),
                p50_ms: percentile(&latencies, 50),
                p90_ms: percentile(&latencies, 90),
                p99_ms: percentile(&latencies, 99),
            }
        })
        .collect();

    Ok(SlaReport {
        month: month.to_string(),
        config: config.clone(),
        opening_days: days.len() as u64,
        requests: counts,
        answer_times,
        answered_share,
        availability,
        disturbances: disturbances(&samples, config),
        providers,
        daily: daily(&days, &samples, &unavailable),
        read,
    })
}

fn sample(r: &RequestRecord, day: NaiveDate, config: &SlaConfig) -> Sample {
    let class = match &r.result {
        RequestResult::Answered => Class::Answered,
        RequestResult::Refused(code) if config.caller_fault_codes.contains(code) => {
            Class::CallerFault
        }
        RequestResult::Refused(_) | RequestResult::Error => Class::Failed,
    };
    Sample {
        time: r.time,
        day,
        minute: r.time.timestamp().div_euclid(60),
        class,
        latency_ms: r.latency_ms,
        persons: r.persons_count,
        fanned_out: !r.providers.is_empty(),
        failed: r
            .failed_providers()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

fn answer_times(samples: &[Sample], config: &SlaConfig) -> AnswerTimes {
    let answered: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.class == Class::Answered)
        .collect();
    let within = |base| {
        answered
            .iter()
            .filter(|s| s.latency_ms <= config.limit(base, s.persons))
            .count() as u64
    };
    let measured = answered.len() as u64;
    let within_fast = within(config.fast_ms);
    let within_slow = within(config.slow_ms);
    let mut latencies: Vec<u64> = answered.iter().map(|s| s.latency_ms).collect();
    latencies.sort_unstable();
    let fast_percent = percent(within_fast, measured);
    let slow_percent = percent(within_slow, measured);
    AnswerTimes {
        measured,
        within_fast,
        within_slow,
        fast_percent,
        slow_percent,
        fast_target_percent: config.fast_target_percent,
        slow_target_percent: config.slow_target_percent,
        fast_met: fast_percent.map(|p| p >= config.fast_target_percent),
        slow_met: slow_percent.map(|p| p >= config.slow_target_percent),
        p50_ms: percentile(&latencies, 50),
        p90_ms: percentile(&latencies, 90),
        p99_ms: percentile(&latencies, 99),
    }
}

/// Minutes (Unix minute numbers) with a failed request and no answered one.
fn failure_minutes(samples: &[Sample]) -> BTreeSet<i64> {
    let mut by_minute: BTreeMap<i64, (bool, bool)> = BTreeMap::new();
    for s in samples {
        let (answered, failed) = by_minute.entry(s.minute).or_default();
        *answered |= s.class == Class::Answered;
        *failed |= s.class == Class::Failed;
    }
    by_minute
        .into_iter()
        .filter(|(_, (answered, failed))| *failed && !*answered)
        .map(|(m, _)| m)
        .collect()
}

/// Minutes of opening hours on `days` that overlap an outage.
fn outage_minutes(days: &[NaiveDate], outages: &[(DateTime<Utc>, DateTime<Utc>)]) -> BTreeSet<i64> {
    let mut minutes = BTreeSet::new();
    let opens = NaiveTime::from_hms_opt(calendar::OPENS / 60, 0, 0).expect("valid hour");
    let closes = NaiveTime::from_hms_opt(calendar::CLOSES / 60, 0, 0).expect("valid hour");
    for day in days {
        let open = calendar::stockholm(*day, opens).timestamp();
        let close = calendar::stockholm(*day, closes).timestamp();
        for (start, end) in outages {
            let from = start.timestamp().max(open);
            let to = end.timestamp().min(close);
            if from < to {
                // Every minute the outage touches, rounded outwards.
                minutes.extend(from.div_euclid(60)..(to + 59).div_euclid(60));
            }
        }
    }
    minutes
}

fn disturbances(samples: &[Sample], config: &SlaConfig) -> Vec<Disturbance> {
    let mut runs: Vec<Disturbance> = Vec::new();
    let mut open = false;
    for s in samples.iter().filter(|s| s.fanned_out) {
        if s.failed.len() >= config.disturbance_failed_providers {
            match runs.last_mut() {
                Some(run) if open => {
                    run.end = s.time;
                    run.requests += 1;
                    run.providers.extend(s.failed.iter().cloned());
                }
                _ => runs.push(Disturbance {
                    start: s.time,
                    end: s.time,
                    requests: 1,
                    providers: s.failed.clone(),
                }),
            }
            open = true;
        } else {
            open = false;
        }
    }
    for run in &mut runs {
        run.providers.sort_unstable();
        run.providers.dedup();
    }
    runs
}

fn daily(days: &[NaiveDate], samples: &[Sample], unavailable: &BTreeSet<i64>) -> Vec<DailyStats> {
    let mut unavailable_by_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for m in unavailable {
        if let Some(t) = DateTime::from_timestamp(m * 60, 0) {
            *unavailable_by_day
                .entry(calendar::local_day_and_minute(t).0)
                .or_default() += 1;
        }
    }
    days.iter()
        .map(|day| {
            let of_day = samples.iter().filter(|s| s.day == *day);
            let mut latencies: Vec<u64> = of_day
                .clone()
                .filter(|s| s.class == Class::Answered)
                .map(|s| s.latency_ms)
                .collect();
            latencies.sort_unstable();
            let down = unavailable_by_day.get(day).copied().unwrap_or(0);
            let minutes = u64::from(MINUTES_PER_DAY);
            DailyStats {
                date: *day,
                requests: of_day.count() as u64,
                answered: latencies.len() as u64,
                p50_ms: percentile(&latencies, 50),
                p90_ms: percentile(&latencies, 90),
                unavailable_minutes: down,
                availability_percent: percent(minutes - down, minutes).unwrap_or(100.0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 1), Some(7));
        assert_eq!(percentile(&[7], 99), Some(7));
        let v: Vec<u64> = (1..=10).map(|x| x * 100).collect();
        // rank = ceil(p * 10 / 100)
        assert_eq!(percentile(&v, 50), Some(500));
        assert_eq!(percentile(&v, 90), Some(900));
        assert_eq!(percentile(&v, 91), Some(1000));
        assert_eq!(percentile(&v, 99), Some(1000));
        assert_eq!(percentile(&v, 100), Some(1000));
        assert_eq!(percentile(&v, 0), Some(100));
        let four = [10, 20, 30, 40];
        assert_eq!(percentile(&four, 50), Some(20));
        assert_eq!(percentile(&four, 51), Some(30));
        assert_eq!(percentile(&four, 75), Some(30));
        assert_eq!(percentile(&four, 76), Some(40));
    }

    proptest::proptest! {
        /// The nearest-rank definition itself: at least p % of the values are at
        /// or below the percentile, and fewer than p % strictly below it.
        #[test]
        fn the_percentile_is_the_nearest_rank(
            mut v in proptest::collection::vec(0u64..20_000, 1..200),
            p in 1u32..=100,
        ) {
            v.sort_unstable();
            let x = percentile(&v, p).unwrap();
            let n = v.len() as u64;
            let at_or_below = v.iter().filter(|&&y| y <= x).count() as u64;
            let below = v.iter().filter(|&&y| y < x).count() as u64;
            proptest::prop_assert!(at_or_below * 100 >= u64::from(p) * n);
            proptest::prop_assert!(below * 100 < u64::from(p) * n);
        }
    }

    #[test]
    fn months_parse_strictly() {
        assert_eq!(
            "2026-11".parse::<Month>().unwrap(),
            Month {
                year: 2026,
                month: 11
            }
        );
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-00"] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_limits_grow_by_one_and_a_half_seconds_per_extra_person() {
        let c = SlaConfig::default();
        assert_eq!(c.limit(c.fast_ms, 1), 7_000);
        assert_eq!(c.limit(c.fast_ms, 0), 7_000);
        assert_eq!(c.limit(c.fast_ms, 3), 10_000);
        assert_eq!(c.limit(c.slow_ms, 10), 25_500);
    }
}
