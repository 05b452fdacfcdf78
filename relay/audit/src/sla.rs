//! The monthly service-level report, computed from the audit files alone.
//!
//! Requests count only when they **arrived within opening hours** (see
//! [`crate::calendar`]) on a Stockholm local date within the month; requests
//! outside them are counted once, as `outside_opening_hours`, and otherwise
//! ignored. A month-to-date report (the month of `now`) stops at `now`: the rest
//! of the month has not happened and is neither available nor unavailable.
//!
//! Each measured request falls in exactly one class:
//!
//! - **complete**: answered before its deadline, every asked provider delivered
//!   data or answered for itself (`kalla=BT`) ([`Answer::Complete`]);
//! - **partial**: answered before its deadline, some slots with relay-side errors
//!   (`kalla=SSBT`) and some not ([`Answer::Partial`]);
//! - **nothing delivered**: answered, but every asked slot holds a relay-side
//!   error: not counted as answered;
//! - **late**: answered after its deadline: not answered in time;
//! - **caller's fault**: `refused:<code>` written with `by = caller`, or (older
//!   records without `by`) with a code in [`SlaConfig::caller_fault_codes`];
//!   excluded from the answered share's denominator (the service did its job
//!   by refusing);
//! - **failed**: `failed:<code>` (older files: `error`), or a refusal by the
//!   relay or a provider, or (without `by`) with a code not in that list (older
//!   files wrote relay-side refusals that way);
//! - **overloaded**, **deadline passed**: turned away, no answer (an overload
//!   with `by = caller`, the caller over its own share of the in-flight
//!   limit, is the caller's fault like a rate limit).
//!
//! Definitions:
//!
//! - **Answered share** = (complete + partial) / (all − caller's fault), held
//!   against the 95 % target by default ([`AnsweredBasis`]); the complete share
//!   is shown beside it. See `docs/audit.md` for the reading of the terms.
//! - **Answer times**: over every request that got an answer (whatever it held);
//!   a request about `n` persons is within the fast limit when
//!   `latency_ms <= fast_ms + (n - 1) * per_extra_person_ms` (7 s + 1.5 s per
//!   extra person), likewise for the slow limit (12 s + ...).
//! - **Availability** comes from `probe` and `outage` records
//!   ([`crate::availability`]): a minute of opening hours (Stockholm local, on
//!   the minute) is *unavailable* when it overlaps an unplanned outage (a run of
//!   failed probes, prober silence, or an operator's unplanned outage record) and
//!   no planned window; *planned* when it overlaps a planned window (counted from
//!   its announcement); *unmeasured* before the first probe record and not in
//!   any outage. Availability = 1 − unavailable / (opening − planned − unmeasured).
//! - **Reliability**: unplanned outages (merged periods) that cover at least one
//!   minute of opening hours outside planned windows, this month and this year
//!   to date; down time this year to date.
//! - **Incidents** are the `incident` records (disturbances, see
//!   [`crate::disturbance`]), paired by start. One without an end record ends
//!   where the probe records next fall silent (the relay stopped, and its
//!   tracker with it); failing that it is ongoing and runs to the period's end.
//! - **Percentiles** are nearest-rank: the p-th percentile of n sorted values is
//!   the value at 1-based rank ⌈p·n/100⌉ (rank 1 when that is 0); none when n = 0.
//!
//! Memory: one small sample per request inside opening hours is kept (exact
//! percentiles need every value), plus the probe records of the year (for the
//! year's outages and down time); the files themselves are streamed, from the
//! files closed in the last days of the previous year on, and request lines of
//! other months are passed over without being parsed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::availability::{OutageDetector, PROBER, merge};
use crate::calendar::{self, MINUTES_PER_DAY};
use crate::error::{AuditError, Result};
use crate::files::{ReadStats, for_each_record_except};
use crate::record::{
    Answer, AuditRecord, FailedBy, FetchResult, OutageKind, Outcome, ProbeRecord, RequestRecord,
    RequestResult, SlotSide, rfc3339, rfc3339_opt,
};

/// What the 95 % answered target is held against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBasis {
    /// Complete and partial answers in time (the default; see `docs/audit.md`).
    AnsweredInTime,
    /// Complete answers in time only.
    Complete,
}

/// The targets and the definitions' parameters. Defaults are the terms'
/// (SSBTEK Bilaga 4, 3.7-3.9). Reads from the relay's TOML, its
/// `[service_levels]` table (every key optional, defaults below, unknown keys
/// refused); the probe parameters come from `[probe]`. Opening hours are not
/// configurable: they are the terms' (see [`crate::calendar`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Which answers count towards `answered_target_percent`.
    pub answered_basis: AnsweredBasis,
    /// Refusal codes that are the caller's fault (excluded from the answered share).
    pub caller_fault_codes: Vec<String>,
    /// Availability in opening hours (percent), 3.8.1.
    pub availability_target_percent: f64,
    /// Maximum down time in opening hours per year, 3.8.1 (62 h).
    pub max_down_hours_per_year: f64,
    /// Maximum unplanned outages per month, 3.8.1.
    pub max_unplanned_outages_per_month: u64,
    /// Maximum unplanned outages per year, 3.8.1.
    pub max_unplanned_outages_per_year: u64,
    /// Consecutive failed probes that make an unavailable period. Not read
    /// from the TOML: the relay sets it from its `[probe] failures_for_outage`,
    /// so the report and the live detector share one definition.
    #[serde(skip_deserializing)]
    pub probe_failures_for_outage: u32,
    /// Probe intervals without any probe record that count as the relay down.
    /// Likewise from `[probe] gap_intervals`.
    #[serde(skip_deserializing)]
    pub probe_gap_intervals: u32,
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
            answered_basis: AnsweredBasis::AnsweredInTime,
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
                // The relay's refusals of the caller (relay-server `Failure`
                // labels written with `by = caller`).
                "environment",
                "principal_no_agreement",
                "principal_suspended",
                "recipient_no_agreement",
                "quota",
                "not_found",
                "version_mismatch",
                "must_understand",
                "UnresolvedReceiver",
                "UnknownReceiver",
                "UnknownSender",
                "UnknownProductType",
                "IllegalReceiver",
                "IllegalSender",
                "IllegalOriginator",
                "IllegalEndRecipient",
                "IllegalProductType",
                "IllegalMessageStructure",
                "IllegalDatapartContent",
                "MissingAgreement",
                "MissingDeliveryAddress",
                "MissingDeliveryExecution",
                "not_offered",
                "suspended_vendor",
                "rate_limit",
                "one_report",
                "xml_validation",
                "suspended_anordnare",
                "retry_limit",
                "signature",
                "no_mandate",
                "conflict",
                "test_data",
                "future_month",
            ]
            .map(String::from)
            .to_vec(),
            availability_target_percent: 90.0,
            max_down_hours_per_year: 62.0,
            max_unplanned_outages_per_month: 1,
            max_unplanned_outages_per_year: 4,
            probe_failures_for_outage: 2,
            probe_gap_intervals: 3,
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
        // The next month's first day must exist too (the period's end).
        Month { year, month }
            .next_first_day()
            .ok_or(AuditError::Month)?;
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
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    fn next_first_day(self) -> Option<NaiveDate> {
        self.first_day().checked_add_months(chrono::Months::new(1))
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
    /// Complete and partial: answered in time.
    pub answered: u64,
    pub complete: u64,
    pub partial: u64,
    /// An answer went out with every asked slot a relay-side error.
    pub nothing_delivered: u64,
    /// An answer went out after the deadline.
    pub late: u64,
    pub refused_caller_fault: u64,
    /// The relay failed (`failed:<code>`, `error`, or a relay-side refusal).
    pub failed: u64,
    pub overloaded: u64,
    pub deadline_passed: u64,
    /// Requests in the month outside opening hours (not measured).
    pub outside_opening_hours: u64,
}

/// Answer times against the limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerTimes {
    /// Requests that got an answer, measured.
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

/// Answered in time / (all − caller's fault), and the complete share beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnsweredShare {
    pub eligible: u64,
    /// Complete and partial answers in time.
    pub answered: u64,
    pub complete: u64,
    pub answered_percent: Option<f64>,
    pub complete_percent: Option<f64>,
    /// Which of the two the target is held against.
    pub basis: AnsweredBasis,
    pub target_percent: f64,
    pub met: Option<bool>,
}

/// Minutes of opening hours in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Availability {
    /// When the first probe record was seen (from the day before the year on).
    #[serde(with = "rfc3339_opt")]
    pub measured_from: Option<DateTime<Utc>>,
    /// Opening minutes in the period (up to now for a month to date).
    pub opening_minutes: u64,
    /// In planned maintenance windows.
    pub planned_minutes: u64,
    /// Before the first probe record and in no outage: nothing known.
    pub unmeasured_minutes: u64,
    /// Opening − planned − unmeasured.
    pub measured_minutes: u64,
    pub unavailable_minutes: u64,
    pub available_minutes: u64,
    /// `None` when nothing was measured.
    pub percent: Option<f64>,
    pub target_percent: f64,
    pub met: Option<bool>,
}

/// Unplanned outages and down time against the yearly limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reliability {
    pub unplanned_outages_month: u64,
    pub max_per_month: u64,
    pub month_met: bool,
    /// From 1 January to the end of the period.
    pub unplanned_outages_year: u64,
    pub max_per_year: u64,
    pub year_met: bool,
    /// Unavailable minutes of opening hours, 1 January to the end of the period.
    pub down_minutes_year: u64,
    pub max_down_minutes_year: u64,
    pub down_met: bool,
}

/// One outage (merged from every source) that touches the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutageEntry {
    pub kind: OutageKind,
    #[serde(with = "rfc3339")]
    pub start: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub end: DateTime<Utc>,
    /// The whole length, in minutes (rounded up).
    pub minutes: u64,
    /// Of it, unavailable (unplanned) or planned minutes of opening hours.
    pub opening_minutes: u64,
    /// Who recorded it (`prober`, operators), each once.
    pub sources: Vec<String>,
    /// Operators' reasons and the prober's failed steps, each once.
    pub reasons: Vec<String>,
}

/// A disturbance from the `incident` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    #[serde(with = "rfc3339")]
    pub start: DateTime<Utc>,
    /// `None` while it goes on (the duration then runs to the period's end).
    #[serde(with = "rfc3339_opt")]
    pub end: Option<DateTime<Utc>>,
    /// No end record: it ended where the probe records fall silent (the relay
    /// stopped, and with it the tracker that would have written the end).
    pub closed_by_silence: bool,
    pub minutes: u64,
    pub providers: Vec<String>,
}

/// One provider's calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderStats {
    pub provider: String,
    pub calls: u64,
    /// By outcome label, every label present (zero when none).
    pub outcomes: BTreeMap<String, u64>,
    /// Calls whose slot held a relay-side error (`kalla=SSBT`).
    pub relay_errors: u64,
    /// Relay-side errors per asked call (withdrawn ones are not asked).
    pub relay_error_percent: Option<f64>,
    pub p50_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

/// One opening day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyStats {
    pub date: NaiveDate,
    pub requests: u64,
    /// Complete and partial.
    pub answered: u64,
    pub complete: u64,
    pub partial: u64,
    /// Over requests that got an answer.
    pub p50_ms: Option<u64>,
    pub p90_ms: Option<u64>,
    pub unavailable_minutes: u64,
    pub planned_minutes: u64,
    /// Over the day's measured minutes; `None` when none were measured.
    pub availability_percent: Option<f64>,
}

/// Probe and fetch volumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Volumes {
    pub probes: u64,
    pub probes_failed: u64,
    pub fetches: u64,
    pub fetches_delivered: u64,
}

/// The month's service levels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaReport {
    pub month: String,
    /// Where the period stops: the month's end, or `now` for a month to date.
    #[serde(with = "rfc3339")]
    pub period_end: DateTime<Utc>,
    pub month_to_date: bool,
    pub config: SlaConfig,
    /// Opening days begun within the period.
    pub opening_days: u64,
    pub requests: RequestCounts,
    pub answer_times: AnswerTimes,
    pub answered_share: AnsweredShare,
    pub availability: Availability,
    pub reliability: Reliability,
    /// Unplanned and planned outages touching the month, in time order.
    pub outages: Vec<OutageEntry>,
    /// Disturbances touching the month, in time order.
    pub incidents: Vec<Incident>,
    pub providers: Vec<ProviderStats>,
    pub daily: Vec<DailyStats>,
    pub volumes: Volumes,
    pub read: ReadStats,
}

/// The nearest-rank percentile of ascending `sorted` (see the module docs).
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (u64::from(p) * n).div_ceil(100).clamp(1, n);
    sorted.get((rank - 1) as usize).copied()
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Answered(Answer),
    CallerFault,
    Failed,
    Overloaded,
    DeadlinePassed,
}

impl Class {
    fn answered_in_time(self) -> bool {
        matches!(self, Self::Answered(Answer::Complete | Answer::Partial))
    }
}

/// What the report keeps of one request in opening hours.
struct Sample {
    day: NaiveDate,
    class: Class,
    latency_ms: u64,
    persons: u32,
}

type Interval = (DateTime<Utc>, DateTime<Utc>);

type IncidentSoFar = (Option<DateTime<Utc>>, BTreeSet<String>);

/// An outage interval with where it came from.
struct Source {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    who: String,
    reason: String,
}

/// How far before 1 January the report looks for the last probe record.
const LOOKBACK: Duration = Duration::days(2);

/// Computes the report for `month` (`YYYY-MM`) from `files`, as of `now`: a
/// month that has not ended stops at `now`.
pub fn sla_report(
    files: &[PathBuf],
    month: &str,
    config: &SlaConfig,
    now: DateTime<Utc>,
) -> Result<SlaReport> {
    let month: Month = month.parse()?;
    let month_start = calendar::stockholm(month.first_day(), NaiveTime::MIN);
    let month_end = calendar::stockholm(
        month.next_first_day().ok_or(AuditError::Month)?,
        NaiveTime::MIN,
    );
    let period_end = month_end.min(now).max(month_start);
    let year_first = NaiveDate::from_ymd_opt(month.year, 1, 1).ok_or(AuditError::Month)?;
    let year_start = calendar::stockholm(year_first, NaiveTime::MIN);

    let mut counts = RequestCounts::default();
    let mut samples: Vec<Sample> = Vec::new();
    let mut provider_calls: BTreeMap<String, (BTreeMap<Outcome, u64>, Vec<u64>)> = BTreeMap::new();
    let mut probes: Vec<ProbeRecord> = Vec::new();
    let mut unplanned: Vec<Source> = Vec::new();
    let mut planned: Vec<Source> = Vec::new();
    // By start: the end (once known) and every provider named.
    let mut incidents: BTreeMap<DateTime<Utc>, IncidentSoFar> = BTreeMap::new();
    let mut volumes = Volumes::default();

    let requests_within = Some((month_start, period_end));
    let read = for_each_record_except(
        files,
        Some(year_start - LOOKBACK),
        requests_within,
        |rec| match rec {
            // The service levels are SSBTEK's (Bilaga 4); ELT submissions have none.
            AuditRecord::Request(r) if r.product == "elt" => {}
            AuditRecord::Request(r) => {
                let (day, _) = calendar::local_day_and_minute(r.time);
                if !month.contains(day) || r.time >= period_end {
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
            AuditRecord::Probe(p) if p.time < period_end => {
                if p.time >= month_start {
                    volumes.probes += 1;
                    volumes.probes_failed += u64::from(!p.result.is_ok());
                }
                probes.push(p);
            }
            AuditRecord::Outage(o) if o.end > o.start => match o.kind {
                OutageKind::Unplanned => unplanned.push(Source {
                    start: o.start,
                    end: o.end,
                    who: o.who,
                    reason: o.reason,
                }),
                // Only what was announced before it happened is planned (3.5.2):
                // the part before the announcement is counted as unplanned.
                OutageKind::Planned => {
                    if o.time > o.start {
                        unplanned.push(Source {
                            start: o.start,
                            end: o.time.min(o.end),
                            who: o.who.clone(),
                            reason: format!("{} (before it was announced)", o.reason),
                        });
                    }
                    planned.push(Source {
                        start: o.start.max(o.time),
                        end: o.end,
                        who: o.who,
                        reason: o.reason,
                    });
                }
            },
            AuditRecord::Incident(i) if i.start < period_end => {
                let entry = incidents.entry(i.start).or_default();
                entry.0 = entry.0.or(i.end);
                entry.1.extend(i.providers);
            }
            AuditRecord::Fetch(f) if f.time >= month_start && f.time < period_end => {
                volumes.fetches += 1;
                volumes.fetches_delivered += u64::from(f.result == FetchResult::Delivered);
            }
            _ => {}
        },
    )?;

    for s in &samples {
        counts.in_opening_hours += 1;
        match s.class {
            Class::Answered(Answer::Complete) => counts.complete += 1,
            Class::Answered(Answer::Partial) => counts.partial += 1,
            Class::Answered(Answer::NothingDelivered) => counts.nothing_delivered += 1,
            Class::Answered(Answer::Late) => counts.late += 1,
            Class::CallerFault => counts.refused_caller_fault += 1,
            Class::Failed => counts.failed += 1,
            Class::Overloaded => counts.overloaded += 1,
            Class::DeadlinePassed => counts.deadline_passed += 1,
        }
    }
    counts.answered = counts.complete + counts.partial;

    let answer_times = answer_times(&samples, config);
    let eligible = counts.in_opening_hours - counts.refused_caller_fault;
    let answered_percent = percent(counts.answered, eligible);
    let complete_percent = percent(counts.complete, eligible);
    let held = match config.answered_basis {
        AnsweredBasis::AnsweredInTime => answered_percent,
        AnsweredBasis::Complete => complete_percent,
    };
    let answered_share = AnsweredShare {
        eligible,
        answered: counts.answered,
        complete: counts.complete,
        answered_percent,
        complete_percent,
        basis: config.answered_basis,
        target_percent: config.answered_target_percent,
        met: held.map(|p| p >= config.answered_target_percent),
    };

    // Availability: the prober's periods and the operators' records.
    probes.sort_by_key(|p| p.time);
    let mut detector =
        OutageDetector::new(config.probe_failures_for_outage, config.probe_gap_intervals);
    // Where the probe records fall silent: the relay stopped there.
    let mut silences: Vec<DateTime<Utc>> = Vec::new();
    for p in &probes {
        if let Some(o) = detector.observe(p) {
            if o.silent {
                silences.push(o.start);
            }
            unplanned.push(prober_source(&o));
        }
    }
    if let Some(o) = detector.open_at(period_end) {
        if o.silent {
            silences.push(o.start);
        }
        unplanned.push(prober_source(&o));
    }
    let measured_from = detector.measured_from();

    let clip = |v: &[Source]| -> Vec<Interval> {
        v.iter()
            .map(|s| (s.start.max(year_start), s.end.min(period_end)))
            .collect()
    };
    let unplanned_merged = merge(clip(&unplanned));
    let planned_merged = merge(clip(&planned));

    let year = Minutes::new(year_first, period_end, month);
    let planned_min = year.overlapping(&planned_merged, &BTreeSet::new());
    let down_min = year.overlapping(&unplanned_merged, &planned_min);
    let unmeasured_min: BTreeSet<i64> = year
        .open
        .iter()
        .copied()
        .filter(|m| {
            measured_from.is_none_or(|f| *m < f.timestamp().div_euclid(60))
                && !planned_min.contains(m)
                && !down_min.contains(m)
        })
        .collect();

    let in_month = |m: &i64| year.month_minutes.contains(m);
    let opening = year.month_minutes.len() as u64;
    let planned_n = planned_min.iter().filter(|m| in_month(m)).count() as u64;
    let unmeasured_n = unmeasured_min.iter().filter(|m| in_month(m)).count() as u64;
    let down_n = down_min.iter().filter(|m| in_month(m)).count() as u64;
    let measured = opening - planned_n - unmeasured_n;
    let availability_pct = percent(measured - down_n, measured);
    let availability = Availability {
        measured_from,
        opening_minutes: opening,
        planned_minutes: planned_n,
        unmeasured_minutes: unmeasured_n,
        measured_minutes: measured,
        unavailable_minutes: down_n,
        available_minutes: measured - down_n,
        percent: availability_pct,
        target_percent: config.availability_target_percent,
        met: availability_pct.map(|p| p >= config.availability_target_percent),
    };

    // Outages: unplanned ones count when they cost opening minutes.
    let mut outages = Vec::new();
    let mut unplanned_year = 0u64;
    let mut unplanned_month = 0u64;
    for (kind, merged, sources, minutes) in [
        (
            OutageKind::Unplanned,
            &unplanned_merged,
            &unplanned,
            &down_min,
        ),
        (OutageKind::Planned, &planned_merged, &planned, &planned_min),
    ] {
        for &(start, end) in merged {
            let of_it = minute_range(start, end);
            let opening_minutes = of_it.clone().filter(|m| minutes.contains(m)).count() as u64;
            let touches_month = start < period_end && end > month_start;
            if kind == OutageKind::Unplanned && opening_minutes > 0 {
                unplanned_year += 1;
                if of_it.clone().any(|m| minutes.contains(&m) && in_month(&m)) {
                    unplanned_month += 1;
                }
            }
            if !touches_month {
                continue;
            }
            let mut who = BTreeSet::new();
            let mut reasons = Vec::new();
            for s in sources.iter().filter(|s| s.start < end && s.end > start) {
                who.insert(s.who.clone());
                if !reasons.contains(&s.reason) {
                    reasons.push(s.reason.clone());
                }
            }
            outages.push(OutageEntry {
                kind,
                start,
                end,
                minutes: of_it.count() as u64,
                opening_minutes,
                sources: who.into_iter().collect(),
                reasons,
            });
        }
    }
    outages.sort_by_key(|o| (o.start, o.end));
    let max_down_minutes_year = (config.max_down_hours_per_year * 60.0).round() as u64;
    let reliability = Reliability {
        unplanned_outages_month: unplanned_month,
        max_per_month: config.max_unplanned_outages_per_month,
        month_met: unplanned_month <= config.max_unplanned_outages_per_month,
        unplanned_outages_year: unplanned_year,
        max_per_year: config.max_unplanned_outages_per_year,
        year_met: unplanned_year <= config.max_unplanned_outages_per_year,
        down_minutes_year: down_min.len() as u64,
        max_down_minutes_year,
        down_met: down_min.len() as u64 <= max_down_minutes_year,
    };

    let incidents = incidents
        .into_iter()
        .map(|(start, (end, providers))| {
            // Without an end record the relay stopped during it (it writes the
            // end when it sees one) or it is still going on.
            let stopped = end
                .is_none()
                .then(|| silences.iter().copied().filter(|s| *s > start).min())
                .flatten();
            Incident {
                start,
                end: end.or(stopped),
                closed_by_silence: stopped.is_some(),
                minutes: minute_count(start, end.or(stopped).unwrap_or(period_end)),
                providers: providers.into_iter().collect(),
            }
        })
        .filter(|i| i.end.is_none_or(|e| e > month_start))
        .collect();

    let providers = provider_calls
        .into_iter()
        .map(|(provider, (outcomes, mut latencies))| {
            latencies.sort_unstable();
            let of = |side: SlotSide| {
                outcomes
                    .iter()
                    .filter(|(o, _)| o.side() == side)
                    .map(|(_, n)| *n)
                    .sum::<u64>()
            };
            let relay_errors = of(SlotSide::Relay);
            let asked = latencies.len() as u64 - of(SlotSide::NotAsked);
            ProviderStats {
                provider,
                calls: latencies.len() as u64,
                outcomes: Outcome::ALL
                    .iter()
                    .map(|o| (o.label().to_owned(), outcomes.get(o).copied().unwrap_or(0)))
                    .collect(),
                relay_errors,
                relay_error_percent: percent(relay_errors, asked),
                p50_ms: percentile(&latencies, 50),
                p90_ms: percentile(&latencies, 90),
                p99_ms: percentile(&latencies, 99),
            }
        })
        .collect();

    let daily = daily(&year, &samples, &down_min, &planned_min, &unmeasured_min);
    Ok(SlaReport {
        month: month.to_string(),
        period_end,
        month_to_date: period_end < month_end,
        config: config.clone(),
        opening_days: year.month_days.len() as u64,
        requests: counts,
        answer_times,
        answered_share,
        availability,
        reliability,
        outages,
        incidents,
        providers,
        daily,
        volumes,
        read,
    })
}

fn prober_source(o: &crate::availability::ProbeOutage) -> Source {
    let r = o.record(o.end);
    Source {
        start: o.start,
        end: o.end,
        who: PROBER.to_owned(),
        reason: r.reason,
    }
}

/// The Unix minutes an interval touches, rounded outwards.
fn minute_range(start: DateTime<Utc>, end: DateTime<Utc>) -> std::ops::Range<i64> {
    start.timestamp().div_euclid(60)..(end.timestamp() + 59).div_euclid(60)
}

fn minute_count(start: DateTime<Utc>, end: DateTime<Utc>) -> u64 {
    let r = minute_range(start, end);
    (r.end - r.start).max(0) as u64
}

/// The opening minutes (Unix minute numbers) of the year up to the period's end,
/// and which of them and which opening days are the month's.
struct Minutes {
    open: BTreeSet<i64>,
    month_minutes: BTreeSet<i64>,
    month_days: Vec<NaiveDate>,
    by_day: BTreeMap<i64, NaiveDate>,
}

impl Minutes {
    fn new(year_first: NaiveDate, end: DateTime<Utc>, month: Month) -> Self {
        let opens = NaiveTime::from_hms_opt(calendar::OPENS / 60, 0, 0).unwrap_or(NaiveTime::MIN);
        let mut this = Self {
            open: BTreeSet::new(),
            month_minutes: BTreeSet::new(),
            month_days: Vec::new(),
            by_day: BTreeMap::new(),
        };
        let end_minute = end.timestamp().div_euclid(60);
        for day in year_first
            .iter_days()
            .take_while(|d| d.year() == year_first.year() && d.month() <= month.month)
            .filter(|d| calendar::is_opening_day(*d))
        {
            let first = calendar::stockholm(day, opens).timestamp().div_euclid(60);
            if first >= end_minute {
                break;
            }
            // Whole minutes that have ended by the period's end.
            let minutes = first..(first + i64::from(MINUTES_PER_DAY)).min(end_minute);
            let mine = month.contains(day);
            if mine {
                this.month_days.push(day);
            }
            for m in minutes {
                this.open.insert(m);
                this.by_day.insert(m, day);
                if mine {
                    this.month_minutes.insert(m);
                }
            }
        }
        this
    }

    /// Opening minutes overlapping `intervals`, leaving out `except`.
    fn overlapping(&self, intervals: &[Interval], except: &BTreeSet<i64>) -> BTreeSet<i64> {
        let mut out = BTreeSet::new();
        for &(s, e) in intervals {
            let r = minute_range(s, e);
            out.extend(self.open.range(r).copied().filter(|m| !except.contains(m)));
        }
        out
    }
}

fn sample(r: &RequestRecord, day: NaiveDate, config: &SlaConfig) -> Sample {
    // Who failed, as the relay recorded it; older records only have the code.
    let callers_fault = |code: &String| match r.by {
        Some(by) => by == FailedBy::Caller,
        None => config.caller_fault_codes.contains(code),
    };
    let class = match (&r.result, r.answer()) {
        (_, Some(answer)) => Class::Answered(answer),
        (RequestResult::Refused(code), _) if callers_fault(code) => Class::CallerFault,
        // Over its own share of the in-flight limit: the caller's doing, like a
        // rate limit; the relay's whole limit full is the relay's.
        (RequestResult::Overloaded, _) if r.by == Some(FailedBy::Caller) => Class::CallerFault,
        (RequestResult::Overloaded, _) => Class::Overloaded,
        (RequestResult::DeadlinePassed, _) => Class::DeadlinePassed,
        _ => Class::Failed,
    };
    Sample {
        day,
        class,
        latency_ms: r.latency_ms,
        persons: r.persons_count,
    }
}

fn answer_times(samples: &[Sample], config: &SlaConfig) -> AnswerTimes {
    let answered: Vec<&Sample> = samples
        .iter()
        .filter(|s| matches!(s.class, Class::Answered(_)))
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

fn daily(
    minutes: &Minutes,
    samples: &[Sample],
    down: &BTreeSet<i64>,
    planned: &BTreeSet<i64>,
    unmeasured: &BTreeSet<i64>,
) -> Vec<DailyStats> {
    let per_day = |set: &BTreeSet<i64>| {
        let mut by: BTreeMap<NaiveDate, u64> = BTreeMap::new();
        for m in set.iter().filter(|m| minutes.month_minutes.contains(m)) {
            if let Some(day) = minutes.by_day.get(m) {
                *by.entry(*day).or_default() += 1;
            }
        }
        by
    };
    let (down, planned, unmeasured) = (per_day(down), per_day(planned), per_day(unmeasured));
    let mut open: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for m in &minutes.month_minutes {
        if let Some(day) = minutes.by_day.get(m) {
            *open.entry(*day).or_default() += 1;
        }
    }
    minutes
        .month_days
        .iter()
        .map(|day| {
            let of_day: Vec<&Sample> = samples.iter().filter(|s| s.day == *day).collect();
            let mut latencies: Vec<u64> = of_day
                .iter()
                .filter(|s| matches!(s.class, Class::Answered(_)))
                .map(|s| s.latency_ms)
                .collect();
            latencies.sort_unstable();
            let get = |m: &BTreeMap<NaiveDate, u64>| m.get(day).copied().unwrap_or(0);
            let measured = get(&open) - get(&planned) - get(&unmeasured);
            let count = |c: Class| of_day.iter().filter(|s| s.class == c).count() as u64;
            DailyStats {
                date: *day,
                requests: of_day.len() as u64,
                answered: of_day.iter().filter(|s| s.class.answered_in_time()).count() as u64,
                complete: count(Class::Answered(Answer::Complete)),
                partial: count(Class::Answered(Answer::Partial)),
                p50_ms: percentile(&latencies, 50),
                p90_ms: percentile(&latencies, 90),
                unavailable_minutes: get(&down),
                planned_minutes: get(&planned),
                availability_percent: percent(measured - get(&down), measured),
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

    #[test]
    fn the_config_reads_with_every_key_optional_and_unknown_keys_refused() {
        let c: SlaConfig = serde_json::from_str(
            r#"{"availability_target_percent": 99.5, "answered_basis": "complete"}"#,
        )
        .unwrap();
        assert_eq!(c.availability_target_percent, 99.5);
        assert_eq!(c.answered_basis, AnsweredBasis::Complete);
        assert_eq!(
            SlaConfig {
                availability_target_percent: 90.0,
                answered_basis: AnsweredBasis::AnsweredInTime,
                ..c
            },
            SlaConfig::default()
        );
        assert!(serde_json::from_str::<SlaConfig>(r#"{"availabilty": 1}"#).is_err());
        // The probe definitions have one home, the relay's `[probe]`.
        assert!(serde_json::from_str::<SlaConfig>(r#"{"probe_gap_intervals": 5}"#).is_err());
        let d: crate::DisturbanceConfig = serde_json::from_str(r#"{"window_s": 300}"#).unwrap();
        assert_eq!((d.window_s, d.min_calls), (300, 3));
    }
}
