//! The service-level report for a synthetic audit trail whose every number was
//! worked out by hand (see the comments at each record).
//!
//! May 2026: summer time (UTC+2) all month, so opening hours 08:00-17:00 local
//! are 06:00Z-15:00Z. 21 weekdays, less första maj (Friday 1st) and Kristi
//! himmelsfärdsdag (Thursday 14th): 19 opening days, 19 × 540 = 10 260 opening
//! minutes. The prober writes a record every 60 s from 30 April 00:00Z.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use relay_audit::{
    AuditRecord, Channel, FetchRecord, FetchResult, IncidentRecord, OutageKind, OutageRecord,
    OutputFormat, ProbeRecord, ProbeResult, PseudonymKey, SlaConfig, run_sla_report_at, sla_report,
};
use support::*;

/// Failed probes, by minute (UTC), start inclusive, end exclusive.
const FAILING: [(&str, &str); 5] = [
    // B. Tuesday 5 May, 11:00-11:30 local: 30 failed probes, an unplanned outage.
    ("2026-05-05T09:00:00Z", "2026-05-05T09:30:00Z"),
    // D. Thursday 7 May: maintenance 07:00-08:30 local (planned), but probes fail
    // 07:10-08:40: 10 minutes of overrun in opening hours.
    ("2026-05-07T05:10:00Z", "2026-05-07T06:40:00Z"),
    // E. Saturday 9 May: two hours, no opening hours.
    ("2026-05-09T08:00:00Z", "2026-05-09T10:00:00Z"),
    // F. Kristi himmelsfärdsdag, 14 May: an hour, no opening hours.
    ("2026-05-14T07:00:00Z", "2026-05-14T08:00:00Z"),
    // A. Monday 4 May: one failed probe between successes, no outage.
    ("2026-05-04T08:00:00Z", "2026-05-04T08:01:00Z"),
];

/// C. Wednesday 6 May: the relay is stopped after its 10:00Z probe and back at
/// 10:45Z; no probe records in between (44 missing).
const SILENT: (&str, &str) = ("2026-05-06T10:01:00Z", "2026-05-06T10:45:00Z");

fn probes() -> Vec<AuditRecord> {
    let within = |t: DateTime<Utc>, (a, b): (&str, &str)| t >= at(a) && t < at(b);
    let mut out = Vec::new();
    let mut t = at("2026-04-30T00:00:00Z");
    while t < at("2026-06-01T00:00:00Z") {
        if !within(t, SILENT) {
            let failed = FAILING.iter().any(|w| within(t, *w));
            out.push(
                ProbeRecord {
                    time: t,
                    interval_s: 60,
                    result: if failed {
                        ProbeResult::Failed("providers".into())
                    } else {
                        ProbeResult::Ok
                    },
                    latency_ms: 900,
                }
                .into(),
            );
        }
        t += Duration::seconds(60);
    }
    out
}

fn outage_of(kind: OutageKind, written: &str, start: &str, end: &str, reason: &str) -> AuditRecord {
    OutageRecord {
        time: at(written),
        start: at(start),
        end: at(end),
        who: "operator:drift-1".into(),
        reason: reason.into(),
        kind,
    }
    .into()
}

fn incident(time: &str, start: &str, end: Option<&str>, providers: &[&str]) -> AuditRecord {
    IncidentRecord {
        time: at(time),
        start: at(start),
        end: end.map(at),
        providers: providers.iter().map(|p| p.to_string()).collect(),
    }
    .into()
}

fn fetch(time: &str, result: FetchResult) -> AuditRecord {
    FetchRecord {
        time: at(time),
        channel: Channel::Shs,
        caller_org: "2120002411".into(),
        tx_id: "msg-1".into(),
        result,
    }
    .into()
}

fn synthetic(dir: &std::path::Path) -> PathBuf {
    let k = PseudonymKey::from_bytes(&[5u8; 32]);
    let r = |time, tx, n, latency, result, calls: &[(&str, &str, u64)]| {
        request_n(&k, time, tx, n, latency, result, calls)
    };
    let mut records: Vec<AuditRecord> = vec![
        // H. March: an unplanned outage declared by the operator, Tuesday 10th
        // 10:00-11:00 CET (60 opening minutes), and one in the evening (none).
        outage_of(
            OutageKind::Unplanned,
            "2026-03-10T12:00:00Z",
            "2026-03-10T09:00:00Z",
            "2026-03-10T10:00:00Z",
            "storage failure",
        ),
        outage_of(
            OutageKind::Unplanned,
            "2026-03-11T22:00:00Z",
            "2026-03-11T20:00:00Z",
            "2026-03-11T21:00:00Z",
            "network",
        ),
        // April: not this month.
        r(
            "2026-04-30T08:00:00Z",
            "apr",
            1,
            100,
            "answered",
            &[("AF", "data", 90)],
        ),
        incident(
            "2026-04-20T08:00:00Z",
            "2026-04-20T08:00:00Z",
            None,
            &["AF", "FK"],
        ),
        incident(
            "2026-04-20T09:00:00Z",
            "2026-04-20T08:00:00Z",
            Some("2026-04-20T09:00:00Z"),
            &["AF", "FK"],
        ),
        fetch("2026-04-30T08:00:00Z", FetchResult::Delivered),
        // D. The maintenance window of 7 May, announced on 1 May.
        outage_of(
            OutageKind::Planned,
            "2026-05-01T10:00:00Z",
            "2026-05-07T05:00:00Z",
            "2026-05-07T06:30:00Z",
            "release 4.2",
        ),
        // G. Wednesday 20 May 08:00-09:00 local, announced only at 08:20: the
        // first 20 minutes are unplanned, the other 40 planned.
        outage_of(
            OutageKind::Planned,
            "2026-05-20T06:20:00Z",
            "2026-05-20T06:00:00Z",
            "2026-05-20T07:00:00Z",
            "certificate renewal",
        ),
        // Monday 4 May.
        r(
            "2026-05-04T07:00:00Z",
            "r1",
            1,
            1200,
            "answered",
            &[
                ("AF", "data", 800),
                ("CSN", "data", 900),
                ("FK", "data", 1000),
            ],
        ),
        // r2: AF answered for itself (kalla=BT): complete.
        r(
            "2026-05-04T07:05:00Z",
            "r2",
            1,
            2000,
            "answered",
            &[("AF", "provider_error", 300), ("CSN", "data", 950)],
        ),
        // r3: a random single relay-side error: partial; 7.1 s is over 7 s.
        r(
            "2026-05-04T07:10:00Z",
            "r3",
            1,
            7100,
            "answered",
            &[("AF", "timeout", 7000), ("CSN", "data", 1000)],
        ),
        r(
            "2026-05-04T07:15:00Z",
            "r4",
            1,
            5,
            "refused:validation",
            &[],
        ),
        r("2026-05-04T07:20:00Z", "r5", 1, 1, "overloaded", &[]),
        r("2026-05-04T07:25:00Z", "r6", 1, 30, "failed:internal", &[]),
        // Outside: 07:59:59 local.
        r("2026-05-04T05:59:59Z", "r17", 1, 100, "answered", &[]),
        // An ELT submission: no SSBTEK service levels.
        {
            let mut elt = request(
                &k,
                "2026-05-04T08:00:00Z",
                "elt",
                &[tolvan()],
                100,
                "failed:internal",
                &[],
            );
            elt.product = "elt".into();
            elt.into()
        },
        // Saturday 9 May: outside.
        r("2026-05-09T08:00:00Z", "r16", 1, 100, "answered", &[]),
        // I. Tuesday 12 May: AF and CSN disturbed 09:00-11:00 local.
        incident(
            "2026-05-12T07:00:00Z",
            "2026-05-12T07:00:00Z",
            None,
            &["AF"],
        ),
        // r7: two persons (limit 8.5 s); partial.
        r(
            "2026-05-12T07:30:00Z",
            "r7",
            2,
            7050,
            "answered",
            &[
                ("AF", "timeout", 7000),
                ("CSN", "unavailable", 10),
                ("FK", "data", 500),
            ],
        ),
        // r8: an answer with nothing in it: not answered.
        r(
            "2026-05-12T07:31:00Z",
            "r8",
            1,
            7020,
            "answered",
            &[("AF", "timeout", 7000), ("CSN", "timeout", 7000)],
        ),
        // r9: after its 15 s deadline: late.
        r(
            "2026-05-12T08:00:00Z",
            "r9",
            1,
            16000,
            "answered",
            &[("FK", "data", 15900)],
        ),
        r(
            "2026-05-12T08:01:00Z",
            "r10",
            1,
            15000,
            "deadline_passed",
            &[],
        ),
        incident(
            "2026-05-12T09:00:00Z",
            "2026-05-12T07:00:00Z",
            Some("2026-05-12T09:00:00Z"),
            &["AF", "CSN"],
        ),
        // An incident the relay could not end: it stopped at 10:01Z (C).
        incident(
            "2026-05-06T09:00:00Z",
            "2026-05-06T09:00:00Z",
            None,
            &["SO", "TNS"],
        ),
        // Wednesday 13 May.
        r(
            "2026-05-13T10:00:00Z",
            "r11",
            1,
            500,
            "answered",
            &[("AF", "data", 400)],
        ),
        // Older spellings: `error`, and a relay-side refusal: both failed.
        r("2026-05-13T10:01:00Z", "r12", 1, 40, "error", &[]),
        r(
            "2026-05-13T10:02:00Z",
            "r13",
            1,
            1,
            "refused:overloaded",
            &[],
        ),
        r(
            "2026-05-13T10:03:00Z",
            "r14",
            1,
            2,
            "refused:no_agreement",
            &[],
        ),
        // Kristi himmelsfärdsdag: outside.
        r(
            "2026-05-14T08:00:00Z",
            "r15",
            1,
            100,
            "answered",
            &[("AF", "data", 90)],
        ),
        fetch("2026-05-13T11:00:00Z", FetchResult::Delivered),
        fetch("2026-05-13T11:01:00Z", FetchResult::NotFound),
        // A disturbance still going on at the end of the month.
        incident(
            "2026-05-29T14:00:00Z",
            "2026-05-29T14:00:00Z",
            None,
            &["FK", "SKV"],
        ),
    ];
    records.extend(probes());
    records.sort_by_key(AuditRecord::time);
    let path = dir.join("audit.jsonl");
    write_jsonl(&path, &records);
    // And a torn last line.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(r#"{"kind":"probe","time":"2026-06-"#);
    std::fs::write(&path, text).unwrap();
    path
}

/// Long after May.
fn december() -> DateTime<Utc> {
    at("2026-12-01T12:00:00Z")
}

#[test]
fn the_may_report_has_exactly_the_hand_computed_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let files = [synthetic(dir.path())];
    let rep = sla_report(&files, "2026-05", &SlaConfig::default(), december()).unwrap();

    assert_eq!(rep.month, "2026-05");
    assert!(!rep.month_to_date);
    assert_eq!(rep.period_end, at("2026-05-31T22:00:00Z"));
    assert_eq!(rep.opening_days, 19);
    assert_eq!(rep.read.skipped_lines, 1);

    let q = &rep.requests;
    assert_eq!(q.in_opening_hours, 14, "r1-r14");
    assert_eq!((q.complete, q.partial, q.answered), (3, 2, 5));
    assert_eq!((q.nothing_delivered, q.late), (1, 1));
    assert_eq!(q.refused_caller_fault, 2);
    assert_eq!(q.failed, 3, "failed:internal, error, refused:overloaded");
    assert_eq!((q.overloaded, q.deadline_passed), (1, 1));
    assert_eq!(q.outside_opening_hours, 3, "07:59:59, Saturday, holiday");

    // Answers that went out: 500 1200 2000 7020 7050 7100 16000.
    // Within 7 s (8.5 s for r7's two persons): r1 r2 r7 r11. Within 12 s: all but r9.
    let t = &rep.answer_times;
    assert_eq!((t.measured, t.within_fast, t.within_slow), (7, 4, 6));
    assert_eq!(t.fast_percent, Some(400.0 / 7.0));
    assert_eq!(t.fast_met, Some(false));
    assert_eq!(
        (t.p50_ms, t.p90_ms, t.p99_ms),
        (Some(7020), Some(16000), Some(16000))
    );

    // 5 answered in time (3 complete) of 14 − 2 caller's fault.
    let a = &rep.answered_share;
    assert_eq!((a.answered, a.complete, a.eligible), (5, 3, 12));
    assert_eq!(a.answered_percent, Some(500.0 / 12.0));
    assert_eq!(a.complete_percent, Some(25.0));
    assert_eq!(a.met, Some(false));

    // Unavailable: B 30 + C 44 + D's overrun 10 + G before its announcement 20.
    // Planned: D 30 (08:00-08:30 local) + G 40.
    let av = &rep.availability;
    assert_eq!(av.measured_from, Some(at("2026-04-30T00:00:00Z")));
    assert_eq!(av.opening_minutes, 10_260);
    assert_eq!(av.planned_minutes, 70);
    assert_eq!(av.unmeasured_minutes, 0);
    assert_eq!(av.measured_minutes, 10_190);
    assert_eq!(av.unavailable_minutes, 104);
    assert_eq!(av.available_minutes, 10_086);
    assert_eq!(av.percent, Some(10_086.0 * 100.0 / 10_190.0));
    assert_eq!(av.met, Some(true));

    // B, C, D and G cost opening minutes; the weekend and holiday outages did not.
    // The year adds March 10th (60 min); the March evening outage costs nothing.
    let rel = &rep.reliability;
    assert_eq!((rel.unplanned_outages_month, rel.month_met), (4, false));
    assert_eq!((rel.unplanned_outages_year, rel.year_met), (5, false));
    assert_eq!(rel.down_minutes_year, 164);
    assert_eq!(rel.max_down_minutes_year, 62 * 60);
    assert!(rel.down_met);

    let outages: Vec<(OutageKind, String, String, u64, u64, Vec<String>)> = rep
        .outages
        .iter()
        .map(|o| {
            (
                o.kind,
                o.start.to_rfc3339(),
                o.end.to_rfc3339(),
                o.minutes,
                o.opening_minutes,
                o.sources.clone(),
            )
        })
        .collect();
    let row = |kind, s: &str, e: &str, m, om, who: &str| {
        (
            kind,
            format!("{s}+00:00"),
            format!("{e}+00:00"),
            m,
            om,
            vec![who.to_string()],
        )
    };
    use OutageKind::{Planned, Unplanned};
    let op = "operator:drift-1";
    assert_eq!(
        outages,
        [
            row(
                Unplanned,
                "2026-05-05T09:00:00",
                "2026-05-05T09:30:00",
                30,
                30,
                "prober"
            ),
            row(
                Unplanned,
                "2026-05-06T10:01:00",
                "2026-05-06T10:45:00",
                44,
                44,
                "prober"
            ),
            row(
                Planned,
                "2026-05-07T05:00:00",
                "2026-05-07T06:30:00",
                90,
                30,
                op
            ),
            row(
                Unplanned,
                "2026-05-07T05:10:00",
                "2026-05-07T06:40:00",
                90,
                10,
                "prober"
            ),
            row(
                Unplanned,
                "2026-05-09T08:00:00",
                "2026-05-09T10:00:00",
                120,
                0,
                "prober"
            ),
            row(
                Unplanned,
                "2026-05-14T07:00:00",
                "2026-05-14T08:00:00",
                60,
                0,
                "prober"
            ),
            row(
                Unplanned,
                "2026-05-20T06:00:00",
                "2026-05-20T06:20:00",
                20,
                20,
                op
            ),
            row(
                Planned,
                "2026-05-20T06:20:00",
                "2026-05-20T07:00:00",
                40,
                40,
                op
            ),
        ]
    );
    assert_eq!(rep.outages[0].reasons, ["probes failed: providers"]);
    assert_eq!(
        rep.outages[1].reasons,
        ["no probe records: the relay was down"]
    );
    assert_eq!(
        rep.outages[6].reasons,
        ["certificate renewal (before it was announced)"]
    );

    // The April incident is not May's; the one of the 6th ended when the relay
    // stopped; the one of the 29th is still going on and runs to the end of the
    // month (56 h).
    let incidents: Vec<(String, Option<String>, u64, Vec<String>)> = rep
        .incidents
        .iter()
        .map(|i| {
            (
                i.start.to_rfc3339(),
                i.end.map(|e| e.to_rfc3339()),
                i.minutes,
                i.providers.clone(),
            )
        })
        .collect();
    assert_eq!(
        incidents,
        [
            (
                "2026-05-06T09:00:00+00:00".to_string(),
                Some("2026-05-06T10:01:00+00:00".to_string()),
                61,
                vec!["SO".to_string(), "TNS".to_string()]
            ),
            (
                "2026-05-12T07:00:00+00:00".to_string(),
                Some("2026-05-12T09:00:00+00:00".to_string()),
                120,
                vec!["AF".to_string(), "CSN".to_string()]
            ),
            (
                "2026-05-29T14:00:00+00:00".to_string(),
                None,
                56 * 60,
                vec!["FK".to_string(), "SKV".to_string()]
            ),
        ]
    );

    let names: Vec<&str> = rep.providers.iter().map(|p| p.provider.as_str()).collect();
    assert_eq!(names, ["AF", "CSN", "FK"]);
    // AF: 300 400 800 7000 7000 7000; three timeouts of six calls.
    let af = &rep.providers[0];
    assert_eq!((af.calls, af.relay_errors), (6, 3));
    assert_eq!(af.relay_error_percent, Some(50.0));
    assert_eq!((af.p50_ms, af.p90_ms), (Some(800), Some(7000)));
    let csn = &rep.providers[1];
    assert_eq!((csn.calls, csn.relay_errors), (5, 2));
    assert_eq!(csn.relay_error_percent, Some(40.0));
    let fk = &rep.providers[2];
    assert_eq!(
        (fk.calls, fk.relay_errors, fk.relay_error_percent),
        (3, 0, Some(0.0))
    );

    // 31 days of probes less the 44 missing; failed: A 1, B 30, D 90, E 120, F 60.
    let v = &rep.volumes;
    assert_eq!((v.probes, v.probes_failed), (31 * 1440 - 44, 301));
    assert_eq!((v.fetches, v.fetches_delivered), (2, 1));

    assert_eq!(rep.daily.len(), 19);
    for closed in ["2026-05-01", "2026-05-09", "2026-05-14"] {
        assert!(
            rep.daily.iter().all(|d| d.date.to_string() != closed),
            "{closed}"
        );
    }
    let day = |date: &str| {
        rep.daily
            .iter()
            .find(|d| d.date.to_string() == date)
            .unwrap()
    };
    let d4 = day("2026-05-04");
    assert_eq!(
        (d4.requests, d4.answered, d4.complete, d4.partial),
        (6, 3, 2, 1)
    );
    assert_eq!(
        (d4.unavailable_minutes, d4.availability_percent),
        (0, Some(100.0))
    );
    assert_eq!(
        day("2026-05-05").availability_percent,
        Some(510.0 * 100.0 / 540.0)
    );
    assert_eq!(day("2026-05-06").unavailable_minutes, 44);
    let d7 = day("2026-05-07");
    assert_eq!((d7.planned_minutes, d7.unavailable_minutes), (30, 10));
    assert_eq!(d7.availability_percent, Some(500.0 * 100.0 / 510.0));
    let d12 = day("2026-05-12");
    assert_eq!((d12.requests, d12.answered, d12.partial), (4, 1, 1));
    // 7020 7050 16000: ranks 2 and 3.
    assert_eq!((d12.p50_ms, d12.p90_ms), (Some(7050), Some(16000)));
    let d20 = day("2026-05-20");
    assert_eq!((d20.planned_minutes, d20.unavailable_minutes), (40, 20));
    assert_eq!(d20.availability_percent, Some(480.0 * 100.0 / 500.0));
}

#[test]
fn a_month_to_date_stops_at_now_and_counts_an_outage_still_going_on() {
    let dir = tempfile::tempdir().unwrap();
    let files = [synthetic(dir.path())];
    // 11:15 local on Tuesday 5 May, a quarter of an hour into outage B.
    let now = at("2026-05-05T09:15:00Z");
    let rep = sla_report(&files, "2026-05", &SlaConfig::default(), now).unwrap();
    assert!(rep.month_to_date);
    assert_eq!(rep.period_end, now);
    assert_eq!(rep.opening_days, 2);
    // Monday's 540 minutes and Tuesday's 06:00Z-09:15Z.
    assert_eq!(rep.availability.opening_minutes, 540 + 195);
    assert_eq!(rep.availability.unavailable_minutes, 15);
    assert_eq!(rep.reliability.unplanned_outages_month, 1);
    assert_eq!(rep.outages.len(), 1);
    assert_eq!(rep.outages[0].end, now);
    assert_eq!(rep.requests.in_opening_hours, 6, "Monday's only");
    assert_eq!(rep.daily.len(), 2);
    // Nothing of the future: the incidents began after now.
    assert!(rep.incidents.is_empty());
}

#[test]
fn a_relay_that_stops_writing_is_down_until_the_end_of_the_period() {
    let dir = tempfile::tempdir().unwrap();
    let files = [synthetic(dir.path())];
    // The trail ends on 1 June 00:00Z; a report as of 1 June 08:00 local sees
    // silence from the missing 00:00Z probe on (no opening hours yet), and the
    // July report, with no probes at all, is silent the whole month.
    let rep = sla_report(&files, "2026-07", &SlaConfig::default(), december()).unwrap();
    assert_eq!(
        rep.availability.measured_from,
        Some(at("2026-04-30T00:00:00Z"))
    );
    // July 2026: 23 weekdays, no holiday.
    assert_eq!(rep.availability.opening_minutes, 23 * 540);
    assert_eq!(rep.availability.unavailable_minutes, 23 * 540);
    assert_eq!(rep.availability.percent, Some(0.0));
    assert_eq!(rep.reliability.unplanned_outages_month, 1);
    assert_eq!(rep.outages.len(), 1);
    assert_eq!(rep.outages[0].start, at("2026-06-01T00:00:00Z"));
}

#[test]
fn without_probe_records_availability_is_not_measured_rather_than_perfect() {
    let dir = tempfile::tempdir().unwrap();
    let k = PseudonymKey::from_bytes(&[5u8; 32]);
    let path = dir.path().join("audit.jsonl");
    write_jsonl(
        &path,
        &[request_n(
            &k,
            "2026-05-04T07:00:00Z",
            "r",
            1,
            100,
            "answered",
            &[],
        )],
    );
    let rep = sla_report(&[path], "2026-05", &SlaConfig::default(), december()).unwrap();
    assert_eq!(rep.availability.measured_from, None);
    assert_eq!(rep.availability.unmeasured_minutes, 10_260);
    assert_eq!(rep.availability.percent, None);
    assert_eq!(rep.availability.met, None);
}

#[test]
fn who_failed_decides_between_the_callers_fault_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let k = PseudonymKey::from_bytes(&[5u8; 32]);
    let path = dir.path().join("audit.jsonl");
    let by = |code: &str, by: Option<relay_audit::FailedBy>| {
        let mut r = request_n(&k, "2026-05-04T07:00:00Z", code, 1, 100, code, &[]);
        if let AuditRecord::Request(r) = &mut r {
            r.by = by;
        }
        r
    };
    use relay_audit::FailedBy::{Caller, Relay};
    write_jsonl(
        &path,
        &[
            // A code outside the list, but the relay says the caller failed.
            by("refused:odd_new_rule", Some(Caller)),
            // A code in the list, but the relay says it failed itself.
            by("refused:validation", Some(Relay)),
            // Older records: the list decides.
            by("refused:validation", None),
            by("refused:odd_new_rule", None),
            // The caller over its own share, and the relay's whole limit full.
            by("overloaded", Some(Caller)),
            by("overloaded", Some(Relay)),
            by("overloaded", None),
        ],
    );
    let rep = sla_report(&[path], "2026-05", &SlaConfig::default(), december()).unwrap();
    assert_eq!(rep.requests.refused_caller_fault, 3);
    assert_eq!(rep.requests.failed, 2);
    assert_eq!(rep.requests.overloaded, 2);
    assert_eq!(rep.answered_share.eligible, 4);
}

#[test]
fn the_targets_and_definitions_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let files = [synthetic(dir.path())];
    let config = SlaConfig {
        answered_basis: relay_audit::AnsweredBasis::Complete,
        answered_target_percent: 25.0,
        max_unplanned_outages_per_month: 4,
        // Three failed probes in a row: E and F (60+ failures) still count, and
        // so does every other run here; the single failure of A never did.
        probe_failures_for_outage: 3,
        ..SlaConfig::default()
    };
    let rep = sla_report(&files, "2026-05", &config, december()).unwrap();
    assert_eq!(rep.answered_share.met, Some(true), "25 % complete");
    assert!(rep.reliability.month_met);
    assert_eq!(rep.availability.unavailable_minutes, 104);
}

#[test]
fn julafton_is_closed_in_the_december_report() {
    let dir = tempfile::tempdir().unwrap();
    let files = [synthetic(dir.path())];
    let rep = sla_report(
        &files,
        "2026-12",
        &SlaConfig::default(),
        at("2027-01-05T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(rep.opening_days, 20);
    assert!(rep.daily.iter().all(|d| d.date.to_string() != "2026-12-24"));
}

#[test]
fn the_october_report_uses_summer_and_winter_time_on_either_side_of_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let k = PseudonymKey::from_bytes(&[5u8; 32]);
    let path = dir.path().join("audit.jsonl");
    write_jsonl(
        &path,
        &[
            // Friday 23rd 06:30Z is 08:30 CEST (open), Monday 26th 06:30Z is 07:30 CET (closed).
            request_n(&k, "2026-10-23T06:30:00Z", "cest", 1, 100, "answered", &[]),
            request_n(&k, "2026-10-26T06:30:00Z", "cet", 1, 100, "answered", &[]),
        ],
    );
    let rep = sla_report(&[path], "2026-10", &SlaConfig::default(), december()).unwrap();
    assert_eq!(rep.requests.in_opening_hours, 1);
    assert_eq!(rep.requests.outside_opening_hours, 1);
    // October 2026: 22 weekdays, no weekday holiday.
    assert_eq!(rep.opening_days, 22);
    assert_eq!(rep.availability.opening_minutes, 22 * 540);
}

#[test]
fn the_html_report_is_one_self_contained_file_with_two_charts() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(dir.path());
    let html = run_sla_report_at(
        &[dir.path().to_owned()],
        "2026-05",
        OutputFormat::Html,
        &SlaConfig::default(),
        december(),
    )
    .unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(html.contains("7 s limit") && html.contains("12 s limit"));
    let lower = html.to_ascii_lowercase();
    for external in [
        "src=", "href=", "http:", "https:", "<script", "<link", "@import", "url(",
    ] {
        assert!(!lower.contains(external), "{external} in the HTML");
    }
    // One availability bar per opening day, all measured.
    assert_eq!(html.matches("min unavailable)</title>").count(), 19);
    assert!(
        html.contains("<h2>Outages</h2>") && html.contains("<h2>Incidents (disturbances)</h2>")
    );
    assert!(html.contains("support cases"), "out of scope named");
    assert!(html.contains("NOT met"));
}

#[test]
fn the_markdown_and_json_reports_carry_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(dir.path());
    let run = |format| {
        run_sla_report_at(
            &[dir.path().to_owned()],
            "2026-05",
            format,
            &SlaConfig::default(),
            december(),
        )
        .unwrap()
    };
    let md = run(OutputFormat::Md);
    assert!(md.starts_with("# Service levels 2026-05"));
    for line in [
        "| Answered within 7.0 s (+1.5 s per extra person) | 57.14 % (4 of 7) | ≥ 90 % | NOT met |",
        "| Calls answered (complete and partial answers in time) | 41.67 % (5 of 12) | ≥ 95 % | NOT met |",
        "| Calls answered completely (every provider data or its own answer) | 25.00 % (3 of 12) |  |  |",
        "| Availability in opening hours | 98.98 % (available 168 h 06 min of 169 h 50 min measured) | ≥ 90 % | met |",
        "| Unavailability in opening hours | 1 h 44 min |  |  |",
        "| Unplanned outages this month | 4 | ≤ 1 | NOT met |",
        "| Unplanned outages this year | 5 | ≤ 4 | NOT met |",
        "| Down time this year (opening hours) | 2 h 44 min | ≤ 62 h 00 min | met |",
        "| Disturbances (≥ 2 providers failing) | 3 |  |  |",
        "| 2026-05-06T09:00:00Z | 2026-05-06T10:01:00Z (relay stopped) | 1 h 01 min | SO, TNS |",
        "| unplanned | 2026-05-06T10:01:00Z | 2026-05-06T10:45:00Z | 0 h 44 min | 0 h 44 min | prober | no probe records: the relay was down |",
        "| 2026-05-12T07:00:00Z | 2026-05-12T09:00:00Z | 2 h 00 min | AF, CSN |",
        "| 2026-05-29T14:00:00Z | ongoing | 56 h 00 min | FK, SKV |",
        "| 2026-05-07 | 0 | 0 | 0 | 0 | – | – | 0 h 10 min | 98.04 % |",
    ] {
        assert!(md.contains(line), "{line}\n{md}");
    }

    let json = run(OutputFormat::Json);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["requests"]["in_opening_hours"], 14);
    assert_eq!(v["availability"]["unavailable_minutes"], 104);
    assert_eq!(v["reliability"]["unplanned_outages_year"], 5);
    assert_eq!(v["answered_share"]["basis"], "answered_in_time");
    assert_eq!(v["incidents"].as_array().unwrap().len(), 3);
    assert_eq!(v["incidents"][0]["closed_by_silence"], true);
    assert_eq!(v["incidents"][1]["closed_by_silence"], false);
    assert_eq!(v["incidents"][2]["end"], serde_json::Value::Null);
    assert_eq!(v["outages"][0]["start"], "2026-05-05T09:00:00.000Z");
    assert_eq!(v["daily"][0]["date"], "2026-05-04");
}

#[test]
fn a_bad_month_or_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(dir.path());
    let run = |month| {
        run_sla_report_at(
            &[dir.path().to_owned()],
            month,
            OutputFormat::Md,
            &SlaConfig::default(),
            december(),
        )
    };
    assert!(run("2026-13").is_err());
    assert!(run("2026-5").is_err());
    assert!("pdf".parse::<OutputFormat>().is_err());
    assert_eq!("HTML".parse::<OutputFormat>().unwrap(), OutputFormat::Html);
}
