//! Service levels end to end: two agencies down in the simulator make a
//! disturbance (gauge, `/admin/status`, an incident record), the node stays
//! ready and answers stay partial and in time; the prober writes probe records;
//! refusals reach the audit trail; a relay that was stopped shows as an
//! unplanned outage in `shs-relay sla-report`, against the configured targets.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::time::{Duration, Instant};

use relay_demo::{NODE_ORG, SSBTEK_PRODUCT};
use relay_ident::{Organisationsnummer, Personnummer};
use relay_ssbtek::{Ingivare, Period, QuestionBuilder, Slot};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";

fn question() -> Vec<u8> {
    let today = chrono::Local::now().date_naive();
    let period = Period::new(today - chrono::Months::new(3), today).unwrap();
    QuestionBuilder::new(
        Personnummer::parse("191212121212").unwrap(),
        Ingivare::new(
            Organisationsnummer::parse(SUNDSVALL).unwrap(),
            "Kommunen",
            "handlaggare-7",
        ),
        "ARENDE-2026-1",
        period,
    )
    .include_all([Slot::Csn, Slot::Tns, Slot::Skv])
    .build()
    .unwrap()
    .to_xml(true)
    .to_vec()
}

async fn admin_get(stack: &Stack, path: &str) -> (u16, String) {
    let url = &stack.demo().info.admin["url"];
    let r = reqwest::get(format!("{url}{path}")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Waits until `pred` holds for the audit file, or fails with its content.
async fn audit_until(stack: &Stack, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let audit = std::fs::read_to_string(&stack.demo().info.audit["file"]).unwrap_or_default();
        if pred(&audit) {
            return audit;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in the audit trail:\n{audit}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_agencies_down_are_a_disturbance_not_an_outage() {
    let stack = Stack::start_with(|o| o.probe_extra = "interval_s = 1\n".into()).await;
    let info = stack.demo().info.clone();
    let r = reqwest::Client::new()
        .put(format!("{}/admin/scenario", info.sim.admin))
        .body("[agency.CSN]\ndown = true\n\n[agency.TNS]\ndown = true\n")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let client = stack.client(SUNDSVALL);
    for _ in 0..4 {
        let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, SSBTEK_PRODUCT, 1);
        let started = Instant::now();
        let r = client
            .post(format!("{}/shs/rs", stack.relay_url()))
            .header("Content-Type", "message/rfc822")
            .body(shs_message(&spec.to_xml(), &[("text/xml", &question())]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "a partial answer, not a failure");
        let body = r.text().await.unwrap();
        assert!(body.contains("SSBT-UNAVAILABLE"), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "in time: {:?}",
            started.elapsed()
        );
    }

    let (status, json) = admin_get(&stack, "/admin/status").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let providers = v["disturbance"]["providers"].to_string();
    assert!(
        providers.contains("CSN") && providers.contains("TNS"),
        "{json}"
    );
    assert!(!providers.contains("SKV"), "{json}");
    let (_, metrics) = admin_get(&stack, "/metrics").await;
    assert!(metrics.contains("shs_relay_disturbance 1"), "{metrics}");
    let (status, text) = admin_get(&stack, "/readyz").await;
    assert_eq!(status, 200, "a disturbance keeps the node ready: {text}");
    assert!(text.contains("disturbance"), "{text}");

    audit_until(&stack, "incident record", |a| {
        a.lines()
            .any(|l| l.contains("\"incident\"") && l.contains("CSN") && l.contains("TNS"))
    })
    .await;
    audit_until(&stack, "probe record", |a| a.contains("\"probe\"")).await;

    // A refusal is an outcome in the trail too.
    let spec = LabelSpec::synch_request("2120000142", NODE_ORG, SSBTEK_PRODUCT, 1);
    let r = client
        .post(format!("{}/shs/rs", stack.relay_url()))
        .header("Content-Type", "message/rfc822")
        .body(shs_message(&spec.to_xml(), &[("text/xml", &question())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    audit_until(&stack, "refusal record", |a| {
        a.contains("refused:IllegalSender")
    })
    .await;
    stack.stop().await;
}

/// The instant an RFC 3339 text names.
fn instant(v: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .with_timezone(&chrono::Utc)
}

/// `shs-relay sla-report --config FILE --month MONTH --format json`.
fn sla_report(config: &std::path::Path, month: &str) -> serde_json::Value {
    let out = std::process::Command::new(relay_demo::default_bin_dir().unwrap().join("shs-relay"))
        .args([
            "sla-report",
            "--format",
            "json",
            "--month",
            month,
            "--config",
        ])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sla-report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_relay_is_an_unplanned_outage_in_the_report() {
    // A probe a second; more than five seconds without one is the relay down.
    let mut stack = Stack::start_with(|o| {
        o.probe_extra = "interval_s = 1\ngap_intervals = 5\n".into();
        o.relay_extra = "\n[service_levels]\navailability_target_percent = 99.9\n".into();
    })
    .await;
    audit_until(&stack, "probe record", |a| a.contains("\"probe\"")).await;
    let killed = chrono::Utc::now();
    stack.kill_relay().await;
    // Down for well over the gap, however slow the machine.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let restarting = chrono::Utc::now();
    stack.restart_relay().await;
    // The restarted relay's first successful probe ends the outage.
    probe_since(&stack, restarting, "ok").await;

    // Whatever the weekday and hour: the outage list holds every outage, in
    // opening hours or not (only those count against the targets). The month
    // is Stockholm's; one of these is it, even at a month's turn.
    let config = stack.demo().info.relay.config.clone();
    let mut months: Vec<String> = [-1, 0, 1]
        .map(|d| {
            (killed + chrono::Duration::days(d))
                .format("%Y-%m")
                .to_string()
        })
        .to_vec();
    months.dedup();
    let mut seen = Vec::new();
    let mut found = false;
    for month in &months {
        let report = sla_report(&config, month);
        // The configured targets and probe definitions, not the terms' defaults.
        assert_eq!(report["config"]["availability_target_percent"], 99.9);
        assert_eq!(report["availability"]["target_percent"], 99.9);
        assert_eq!(report["config"]["probe_gap_intervals"], 5);
        for o in report["outages"].as_array().unwrap() {
            seen.push(o.clone());
            let covers = instant(&o["start"]) <= killed + chrono::Duration::seconds(5)
                && instant(&o["end"]) >= restarting;
            if o["kind"] == "unplanned" && o["sources"].to_string().contains("prober") && covers {
                found = true;
            }
        }
    }
    assert!(
        found,
        "no unplanned outage from {killed} to {restarting} in {months:?}: {seen:#?}"
    );
    stack.stop().await;
}

/// Waits for a probe record with `result` written at or after `since`.
async fn probe_since(stack: &Stack, since: chrono::DateTime<chrono::Utc>, result: &str) {
    audit_until(stack, &format!("probe {result} since {since}"), |a| {
        a.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["kind"] == "probe" && v["result"] == result && instant(&v["time"]) >= since)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probe_pings_through_the_front_and_fails_when_the_front_refuses() {
    // The demo gives the prober a client certificate of its own: each probe is
    // a real SHS ping over mutual TLS, through admission and the gate.
    let stack = Stack::start_with(|o| o.probe_extra = "interval_s = 1\n".into()).await;
    let start = chrono::Utc::now();
    probe_since(&stack, start, "ok").await;

    // The operator suspends the prober's organisation: the front refuses its
    // ping (the port still accepts connections, so only a real round sees it).
    let admin = &stack.demo().info.admin["url"];
    let client = reqwest::Client::new();
    let operator = |action: &str| {
        client
            .post(format!("{admin}/admin/{action}?org={NODE_ORG}"))
            .header("X-SHS-Admin", "1")
            .send()
    };
    let suspended = chrono::Utc::now();
    assert!(operator("suspend").await.unwrap().status().is_success());
    probe_since(&stack, suspended, "failed:front").await;
    let (_, status) = admin_get(&stack, "/admin/status").await;
    assert!(status.contains("failed:front"), "{status}");

    let resumed = chrono::Utc::now();
    assert!(operator("resume").await.unwrap().status().is_success());
    probe_since(&stack, resumed, "ok").await;
    stack.stop().await;
}
