//! The service-level report for a synthetic audit file whose every number was
//! worked out by hand (see the comments at each record).
//!
//! November 2026: 21 opening days (the 1st is a Sunday; alla helgons dag falls on
//! Saturday 31 October), 21 × 540 = 11 340 opening minutes. Central European
//! Time (UTC+1) all month: 08:00 local is 07:00Z, 17:00 local is 16:00Z.

mod support;

use std::path::PathBuf;

use relay_audit::{AuditRecord, OutputFormat, PseudonymKey, SlaConfig, run_sla_report, sla_report};
use support::*;

fn synthetic(dir: &std::path::Path) -> PathBuf {
    let k = PseudonymKey::from_bytes(&[5u8; 32]);
    let r = |time, tx, n, latency, result, calls: &[(&str, &str, u64)]| {
        request_n(&k, time, tx, n, latency, result, calls)
    };
    let records: Vec<AuditRecord> = vec![
        // October: another month entirely (Friday 30 Oct, in hours).
        r(
            "2026-10-30T09:00:00Z",
            "oct",
            1,
            100,
            "answered",
            &[("AF", "data", 90)],
        ),
        // Monday 2 November.
        // r1: 08:00:00 local, the first open second.
        r(
            "2026-11-02T07:00:00Z",
            "r1",
            1,
            2000,
            "answered",
            &[("AF", "data", 1500), ("CSN", "data", 1800)],
        ),
        // r2: exactly 7 s is within 7 s.
        r(
            "2026-11-02T07:00:30Z",
            "r2",
            1,
            7000,
            "answered",
            &[("AF", "data", 6500), ("CSN", "data", 6900)],
        ),
        // r3: 7.001 s; AF and CSN failed: disturbance run 1 begins.
        r(
            "2026-11-02T07:10:00Z",
            "r3",
            1,
            7001,
            "answered",
            &[
                ("AF", "timeout", 7000),
                ("CSN", "timeout", 7000),
                ("FK", "data", 500),
            ],
        ),
        // r4: three persons, limit 7 + 2 × 1.5 = 10 s; two failed: run 1 goes on.
        r(
            "2026-11-02T07:11:00Z",
            "r4",
            3,
            10000,
            "answered",
            &[("AF", "unavailable", 10), ("CSN", "provider_error", 300)],
        ),
        // r5: caller's fault, not fanned out: neither in nor breaking the run.
        r(
            "2026-11-02T07:12:00Z",
            "r5",
            1,
            5,
            "refused:validation",
            &[],
        ),
        // r6: exactly 12 s; AF and CSN failed, FK withdrawn (not a failure): run 1.
        r(
            "2026-11-02T07:13:00Z",
            "r6",
            1,
            12000,
            "answered",
            &[
                ("AF", "overloaded", 5),
                ("CSN", "invalid_answer", 400),
                ("FK", "withdrawn", 0),
            ],
        ),
        // r7: 12.001 s, one failed provider: ends run 1.
        r(
            "2026-11-02T07:20:00Z",
            "r7",
            1,
            12001,
            "answered",
            &[("AF", "data", 11900), ("CSN", "timeout", 12000)],
        ),
        // r8: the only request of 08:30 failed: an unavailable minute.
        r("2026-11-02T07:30:00Z", "r8", 1, 50, "error", &[]),
        // r9 failed but r10 was answered in the same minute: available.
        r("2026-11-02T07:31:00Z", "r9", 1, 40, "error", &[]),
        r(
            "2026-11-02T07:31:20Z",
            "r10",
            1,
            1000,
            "answered",
            &[("AF", "data", 900)],
        ),
        // r11: refused on the relay's side: failed, an unavailable minute.
        r(
            "2026-11-02T07:32:00Z",
            "r11",
            1,
            1,
            "refused:overloaded",
            &[],
        ),
        // r12: caller's fault only: the minute stays available.
        r(
            "2026-11-02T07:33:00Z",
            "r12",
            1,
            2,
            "refused:no_agreement",
            &[],
        ),
        // Outside: 07:59:59 and 17:00:00 local.
        r(
            "2026-11-02T06:59:59Z",
            "o1",
            1,
            30000,
            "answered",
            &[("AF", "data", 29000)],
        ),
        r("2026-11-02T16:00:00Z", "o2", 1, 10, "error", &[]),
        // r13: 16:59:59 local, the last open second; CSN and FK failed: run 2.
        r(
            "2026-11-02T15:59:59Z",
            "r13",
            1,
            3000,
            "answered",
            &[
                ("AF", "data", 2900),
                ("CSN", "timeout", 7000),
                ("FK", "unavailable", 20),
            ],
        ),
        // Tuesday 3 November.
        // r14: two persons, limit 8.5 s, exactly met; two calls to AF.
        r(
            "2026-11-03T09:00:00Z",
            "r14",
            2,
            8500,
            "answered",
            &[
                ("AF", "data", 8000),
                ("AF", "data", 8100),
                ("CSN", "data", 8400),
            ],
        ),
        // r15: failed in a minute with an answer; AF and CSN failed: run 3.
        r(
            "2026-11-03T09:00:10Z",
            "r15",
            1,
            100,
            "error",
            &[("AF", "timeout", 7000), ("CSN", "timeout", 7000)],
        ),
        r(
            "2026-11-03T10:00:00Z",
            "r16",
            1,
            500,
            "answered",
            &[("AF", "data", 400)],
        ),
        // Wednesday 4 November: 07:50-08:05:30 local, six minutes of opening hours.
        outage("2026-11-04T06:50:00Z", "2026-11-04T07:05:30Z"),
        // An evening outage and a weekend outage: no opening minutes.
        outage("2026-11-05T19:00:00Z", "2026-11-05T21:00:00Z"),
        outage("2026-11-07T08:00:00Z", "2026-11-08T16:00:00Z"),
        // Saturday 21 and Sunday 22 November: outside.
        r(
            "2026-11-21T10:00:00Z",
            "sat",
            1,
            100,
            "answered",
            &[("AF", "data", 90)],
        ),
        r(
            "2026-11-22T10:00:00Z",
            "sun",
            1,
            1,
            "error",
            &[("AF", "timeout", 7000), ("CSN", "timeout", 7000)],
        ),
        // 00:30 local on 1 December: December, outside.
        r("2026-11-30T23:30:00Z", "dec-night", 1, 100, "answered", &[]),
        // December: the 23rd is open, julafton (Thursday 24th) is not.
        r(
            "2026-12-23T09:00:00Z",
            "dec23",
            1,
            4000,
            "answered",
            &[("AF", "data", 3900)],
        ),
        r(
            "2026-12-24T09:00:00Z",
            "julafton",
            1,
            4000,
            "answered",
            &[("AF", "data", 3900)],
        ),
        // October across the end of summer time (Sunday 25 October):
        // Friday 23rd 06:30Z is 08:30 CEST (open), Monday 26th 06:30Z is 07:30 CET (closed).
        r("2026-10-23T06:30:00Z", "oct-cest", 1, 100, "answered", &[]),
        r("2026-10-26T06:30:00Z", "oct-cet", 1, 100, "answered", &[]),
    ];
    let path = dir.join("audit.jsonl");
    write_jsonl(&path, &records);
    // And a torn last line.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(r#"{"kind":"request","time":"2026-11-"#);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_november_report_has_exactly_the_hand_computed_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let files = [synthetic(dir.path())];
    let rep = sla_report(&files, "2026-11", &SlaConfig::default()).unwrap();

    assert_eq!(rep.month, "2026-11");
    assert_eq!(rep.opening_days, 21);
    assert_eq!(rep.read.skipped_lines, 1);

    // r1-r16; o1, o2, Saturday and Sunday outside; October and December not counted.
    let q = &rep.requests;
    assert_eq!(q.in_opening_hours, 16);
    assert_eq!(q.answered, 10);
    assert_eq!(q.refused_caller_fault, 2);
    assert_eq!(q.failed, 4);
    assert_eq!(q.outside_opening_hours, 4);

    // Answered latencies: 500 1000 2000 3000 7000 7001 8500 10000 12000 12001.
    // Within the fast limit: r1 r2 r4 r10 r13 r14 r16; within the slow: all but r7.
    let t = &rep.answer_times;
    assert_eq!(t.measured, 10);
    assert_eq!(t.within_fast, 7);
    assert_eq!(t.within_slow, 9);
    assert_eq!(t.fast_percent, Some(70.0));
    assert_eq!(t.slow_percent, Some(90.0));
    assert_eq!(t.fast_met, Some(false));
    assert_eq!(t.slow_met, Some(false));
    // Nearest rank: ranks 5, 9 and 10 of 10.
    assert_eq!(
        (t.p50_ms, t.p90_ms, t.p99_ms),
        (Some(7000), Some(12000), Some(12001))
    );

    // 10 answered of 16 − 2 caller's fault.
    let a = &rep.answered_share;
    assert_eq!((a.answered, a.eligible), (10, 14));
    assert_eq!(a.percent, Some(1000.0 / 14.0));
    assert_eq!(a.met, Some(false));

    // 08:30 and 08:32 on the 2nd, six outage minutes on the 4th.
    let av = &rep.availability;
    assert_eq!(av.opening_minutes, 11_340);
    assert_eq!(av.minutes_from_failures, 2);
    assert_eq!(av.minutes_from_outages, 6);
    assert_eq!(av.unavailable_minutes, 8);
    assert_eq!(av.percent, 11_332.0 * 100.0 / 11_340.0);

    let runs: Vec<(String, String, u64, Vec<String>)> = rep
        .disturbances
        .iter()
        .map(|d| {
            (
                d.start.to_rfc3339(),
                d.end.to_rfc3339(),
                d.requests,
                d.providers.clone(),
            )
        })
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        runs,
        [
            (
                "2026-11-02T07:10:00+00:00".into(),
                "2026-11-02T07:13:00+00:00".into(),
                3,
                s(&["AF", "CSN"])
            ),
            (
                "2026-11-02T15:59:59+00:00".into(),
                "2026-11-02T15:59:59+00:00".into(),
                1,
                s(&["CSN", "FK"])
            ),
            (
                "2026-11-03T09:00:10+00:00".into(),
                "2026-11-03T09:00:10+00:00".into(),
                1,
                s(&["AF", "CSN"])
            ),
        ]
    );

    let names: Vec<&str> = rep.providers.iter().map(|p| p.provider.as_str()).collect();
    assert_eq!(names, ["AF", "CSN", "FK"]);
    let outcomes = |i: usize| -> Vec<(String, u64)> {
        rep.providers[i]
            .outcomes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(o, n)| (o.clone(), *n))
            .collect()
    };
    let o = |v: &[(&str, u64)]| {
        v.iter()
            .map(|(a, b)| (a.to_string(), *b))
            .collect::<Vec<_>>()
    };
    // AF: 5 10 400 900 1500 2900 6500 7000 7000 8000 8100 11900.
    let af = &rep.providers[0];
    assert_eq!(af.calls, 12);
    assert_eq!(
        outcomes(0),
        o(&[
            ("data", 8),
            ("overloaded", 1),
            ("timeout", 2),
            ("unavailable", 1)
        ])
    );
    assert_eq!(
        (af.p50_ms, af.p90_ms, af.p99_ms),
        (Some(2900), Some(8100), Some(11900))
    );
    // CSN: 300 400 1800 6900 7000 7000 7000 8400 12000.
    let csn = &rep.providers[1];
    assert_eq!(csn.calls, 9);
    assert_eq!(
        outcomes(1),
        o(&[
            ("data", 3),
            ("invalid_answer", 1),
            ("provider_error", 1),
            ("timeout", 4)
        ])
    );
    assert_eq!(
        (csn.p50_ms, csn.p90_ms, csn.p99_ms),
        (Some(7000), Some(12000), Some(12000))
    );
    // FK: 0 20 500.
    let fk = &rep.providers[2];
    assert_eq!(fk.calls, 3);
    assert_eq!(
        outcomes(2),
        o(&[("data", 1), ("unavailable", 1), ("withdrawn", 1)])
    );
    assert_eq!(
        (fk.p50_ms, fk.p90_ms, fk.p99_ms),
        (Some(20), Some(500), Some(500))
    );
    assert_eq!(fk.outcomes.len(), 7, "every outcome has a column");

    assert_eq!(rep.daily.len(), 21);
    assert!(rep.daily.iter().all(|d| d.date.to_string() != "2026-11-22"));
    let day = |date: &str| {
        rep.daily
            .iter()
            .find(|d| d.date.to_string() == date)
            .unwrap()
    };
    let d2 = day("2026-11-02");
    assert_eq!((d2.requests, d2.answered), (13, 8));
    // 1000 2000 3000 7000 7001 10000 12000 12001: ranks 4 and 8.
    assert_eq!((d2.p50_ms, d2.p90_ms), (Some(7000), Some(12001)));
    assert_eq!(d2.unavailable_minutes, 2);
    assert_eq!(d2.availability_percent, 538.0 * 100.0 / 540.0);
    let d3 = day("2026-11-03");
    assert_eq!(
        (d3.requests, d3.answered, d3.p50_ms, d3.p90_ms),
        (3, 2, Some(500), Some(8500))
    );
    assert_eq!(d3.availability_percent, 100.0);
    let d4 = day("2026-11-04");
    assert_eq!(
        (d4.requests, d4.p50_ms, d4.unavailable_minutes),
        (0, None, 6)
    );
    assert_eq!(d4.availability_percent, 534.0 * 100.0 / 540.0);
    let d30 = day("2026-11-30");
    assert_eq!((d30.requests, d30.availability_percent), (0, 100.0));
}

#[test]
fn julafton_is_closed_in_the_december_report() {
    let dir = tempfile::tempdir().unwrap();
    let files = [synthetic(dir.path())];
    let rep = sla_report(&files, "2026-12", &SlaConfig::default()).unwrap();
    assert_eq!(rep.opening_days, 20);
    assert_eq!(rep.requests.in_opening_hours, 1, "only the 23rd");
    // Julafton, and 00:30 local on the 1st.
    assert_eq!(rep.requests.outside_opening_hours, 2);
    assert_eq!(rep.answer_times.fast_percent, Some(100.0));
    assert!(rep.daily.iter().all(|d| d.date.to_string() != "2026-12-24"));
}

#[test]
fn the_october_report_uses_summer_and_winter_time_on_either_side_of_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let files = [synthetic(dir.path())];
    let rep = sla_report(&files, "2026-10", &SlaConfig::default()).unwrap();
    // 30 Oct 09:00Z and 23 Oct 06:30Z (08:30 CEST) are open; 26 Oct 06:30Z (07:30 CET) is not.
    assert_eq!(rep.requests.in_opening_hours, 2);
    assert_eq!(rep.requests.outside_opening_hours, 1);
    // October 2026: 22 weekdays, no weekday holiday.
    assert_eq!(rep.opening_days, 22);
}

#[test]
fn an_empty_month_is_fully_available_with_no_measurements() {
    let dir = tempfile::tempdir().unwrap();
    let files = [synthetic(dir.path())];
    let rep = sla_report(&files, "2027-02", &SlaConfig::default()).unwrap();
    assert_eq!(rep.requests.in_opening_hours, 0);
    assert_eq!(rep.answer_times.fast_percent, None);
    assert_eq!(rep.answer_times.fast_met, None);
    assert_eq!(rep.answered_share.percent, None);
    assert_eq!(rep.availability.percent, 100.0);
    assert_eq!(rep.opening_days, 20);
}

#[test]
fn the_html_report_is_one_self_contained_file_with_two_charts() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(dir.path());
    let html = run_sla_report(&[dir.path().to_owned()], "2026-11", OutputFormat::Html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("<style>"));
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(html.contains("7 s limit") && html.contains("12 s limit"));
    let lower = html.to_ascii_lowercase();
    for external in [
        "src=", "href=", "http:", "https:", "<script", "<link", "@import", "url(",
    ] {
        assert!(!lower.contains(external), "{external} in the HTML");
    }
    // 21 latency groups and 21 availability bars, one per opening day.
    assert_eq!(html.matches("min unavailable)</title>").count(), 21);
    let p90_bars = html
        .split("<title>")
        .filter(|t| t.split("</title>").next().unwrap().contains(" p90 "))
        .count();
    assert_eq!(p90_bars, 2, "only the 2nd and the 3rd had answers");
    assert!(html.contains("NOT met"));
}

#[test]
fn the_markdown_and_json_reports_carry_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(dir.path());
    let md = run_sla_report(&[dir.path().to_owned()], "2026-11", OutputFormat::Md).unwrap();
    assert!(md.starts_with("# Service levels 2026-11"));
    assert!(md.contains("| Answered within 7.0 s (+1.5 s per extra person) | 70.00 % (7 of 10) | ≥ 90 % | NOT met |"), "{md}");
    assert!(
        md.contains("| Calls answered | 71.43 % (10 of 14) | ≥ 95 % | NOT met |"),
        "{md}"
    );
    assert!(
        md.contains("| Availability | 99.93 % (8 of 11340 min unavailable) |"),
        "{md}"
    );
    assert!(
        md.contains("| 2026-11-02 | 13 | 8 | 7000 ms | 12001 ms | 99.63 % |"),
        "{md}"
    );
    assert!(
        md.contains("| AF | 12 | 8 | 0 | 2 | 1 | 0 | 1 | 0 | 2900 ms | 8100 ms | 11900 ms |"),
        "{md}"
    );

    let json = run_sla_report(&[dir.path().to_owned()], "2026-11", OutputFormat::Json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["requests"]["in_opening_hours"], 16);
    assert_eq!(v["availability"]["unavailable_minutes"], 8);
    assert_eq!(v["disturbances"].as_array().unwrap().len(), 3);
    assert_eq!(v["disturbances"][0]["start"], "2026-11-02T07:10:00.000Z");
    assert_eq!(v["daily"][0]["date"], "2026-11-02");
}

#[test]
fn a_bad_month_or_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(dir.path());
    assert!(run_sla_report(&[dir.path().to_owned()], "2026-13", OutputFormat::Md).is_err());
    assert!("pdf".parse::<OutputFormat>().is_err());
    assert_eq!("HTML".parse::<OutputFormat>().unwrap(), OutputFormat::Html);
}
