//! The operator's view: metrics after known traffic, readiness and maintenance.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::time::{Duration, Instant};

use relay_demo::{NODE_ORG, PING_PRODUCT};
use shs_tests::*;

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_sees_traffic_in_metrics_and_can_drain_the_node() {
    // Exact counts: without the prober's pings.
    let stack = Stack::start_with(|o| o.without_prober()).await;
    let admin = stack.demo().info.admin["url"].clone();
    let relay = stack.relay_url().to_owned();
    let sundsvall = stack.client("2120002411");

    // Known traffic: two pings answered, one refused (from ≠ certificate).
    for _ in 0..2 {
        let spec = LabelSpec::synch_request("2120002411", NODE_ORG, PING_PRODUCT, 1);
        let r = sundsvall
            .post(format!("{relay}/shs/rs"))
            .body(shs_message(&spec.to_xml(), &[("text/plain", b"x")]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let spec = LabelSpec::synch_request("2120000142", NODE_ORG, PING_PRODUCT, 1);
    let r = sundsvall
        .post(format!("{relay}/shs/rs"))
        .body(shs_message(&spec.to_xml(), &[("text/plain", b"x")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A handshake with a certificate from another CA.
    let other = relay_pki::DevCa::new("other").unwrap();
    let pki = stack.dir().join("pki");
    let foreign = other
        .client_cert(&relay_pki::Subject {
            serial_number: Some("2120002411"),
            organisation: None,
            common_name: "x",
        })
        .unwrap()
        .write(&pki, "foreign-ops")
        .unwrap();
    let client = https_client(
        &stack.demo().info.relay.ca,
        Some((&foreign.cert, &foreign.key)),
    );
    assert!(
        client
            .post(format!("{relay}/shs/rs"))
            .body("x")
            .send()
            .await
            .is_err()
    );

    let (status, metrics) = get(&format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(
        counter(
            &metrics,
            "shs_relay_requests_total{route=\"shs_rs\",outcome=\"answered\"}"
        ),
        2.0,
        "{metrics}"
    );
    assert_eq!(
        counter(
            &metrics,
            "shs_relay_rejections_total{route=\"shs_rs\",by=\"caller\",code=\"IllegalSender\"}"
        ),
        1.0,
        "{metrics}"
    );
    // The refused handshake is counted by the server side of the connection,
    // which may finish after the client has seen its error.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, m) = get(&format!("{admin}/metrics")).await;
        if m.contains("shs_relay_tls_handshake_failures_total{reason=") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "handshake failure never counted: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.contains("shs_relay_in_flight"));
    assert!(metrics.contains("shs_relay_build_info"));
    // No organisation numbers in labels, but for the register's party
    // certificate metric, whose `org` label is that party's by design (issue 31).
    let other_metrics: String = metrics
        .lines()
        .filter(|l| !l.starts_with("shs_relay_party_certificate_expiry_timestamp_seconds"))
        .collect();
    assert!(
        !other_metrics.contains("2120002411") && !other_metrics.contains("2120000142"),
        "no organisation numbers in labels"
    );

    // Ready once the adapters report their base services healthy.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, text) = get(&format!("{admin}/readyz")).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get(&format!("{admin}/livez")).await.0, 200);

    // Maintenance drains the node; switching it off makes it ready again.
    let r = reqwest::Client::new()
        .post(format!("{admin}/admin/maintenance/on"))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&format!("{admin}/readyz")).await.0, 503);
    reqwest::Client::new()
        .post(format!("{admin}/admin/maintenance/off"))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(get(&format!("{admin}/readyz")).await.0, 200);

    // Readiness means "can answer": one agency down is a partial answer, not a
    // reason to take the node out; every agency down is.
    reqwest::Client::new()
        .put(format!("{}/admin/scenario", stack.demo().info.sim.admin))
        .body("[agency.MIV]\ndown = true\n")
        .send()
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(get(&format!("{admin}/readyz")).await.0, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_down: String = ["AF", "CSN", "FK", "SKV", "SO", "TNS", "MIV"]
        .iter()
        .map(|a| format!("[agency.{a}]\ndown = true\n\n"))
        .collect();
    reqwest::Client::new()
        .put(format!("{}/admin/scenario", stack.demo().info.sim.admin))
        .body(all_down)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&format!("{admin}/readyz")).await.0 != 503 {
        assert!(
            Instant::now() < deadline,
            "readiness never followed the providers all going down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_trail_answers_who_asked_without_holding_personal_data() {
    use relay_ssbtek::{Ingivare, Period, QuestionBuilder, Slot};
    let stack = Stack::start().await;
    let today = chrono::Local::now().date_naive();
    let ask = |person: &str, case: &str| {
        let q = QuestionBuilder::new(
            relay_ident::Personnummer::parse(person).unwrap(),
            Ingivare::new(
                relay_ident::Organisationsnummer::parse("2120002411").unwrap(),
                "Sundsvalls kommun",
                "hl-anna",
            ),
            case,
            Period::new(today - chrono::Months::new(1), today).unwrap(),
        )
        .include(Slot::Tns)
        .build()
        .unwrap()
        .to_xml(true)
        .to_vec();
        let spec = LabelSpec::synch_request("2120002411", NODE_ORG, relay_demo::SSBTEK_PRODUCT, 1);
        shs_message(&spec.to_xml(), &[("text/xml", &q)])
    };
    for (person, case) in [
        ("191212121212", "CASE-TOLVAN"),
        ("190308189802", "CASE-OTHER"),
    ] {
        let r = stack
            .client("2120002411")
            .post(format!("{}/shs/rs", stack.relay_url()))
            .body(ask(person, case))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let audit_file = stack.demo().info.audit["file"].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&audit_file).unwrap_or_default();
        if text.matches("\"kind\":\"request\"").count() >= 2 {
            for secret in ["191212121212", "1212121212", "190308189802", "0308189802"] {
                assert!(
                    !text.contains(secret),
                    "the audit trail holds pseudonyms only"
                );
            }
            break;
        }
        assert!(Instant::now() < deadline, "no audit records: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Operator actions take effect at once and are audited with who did them.
    let admin = stack.demo().info.admin["url"].clone();
    let post = |path: &'static str| {
        let admin = admin.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{admin}{path}"))
                .header("X-SHS-Admin", "1")
                .header("X-Operator", "ops-eva")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post("/admin/suspend?org=2120002411&product=ssbtek").await,
        200
    );
    let r = stack
        .client("2120002411")
        .post(format!("{}/shs/rs", stack.relay_url()))
        .body(ask("191212121212", "C-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("x-shs-errorcode").unwrap(),
        "MissingAgreement"
    );
    assert_eq!(
        post("/admin/resume?org=2120002411&product=ssbtek").await,
        200
    );
    assert_eq!(
        post("/admin/withdraw?provider=TNS&org=2120002411").await,
        200
    );
    let r = stack
        .client("2120002411")
        .post(format!("{}/shs/rs", stack.relay_url()))
        .body(ask("191212121212", "C-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reply = r.bytes().await.unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("SSBT-WITHDRAWN"));
    assert_eq!(
        post("/admin/restore?provider=TNS&org=2120002411").await,
        200
    );
    assert_eq!(
        post("/admin/withdraw?provider=XX&org=2120002411").await,
        400
    );
    let providers: serde_json::Value = reqwest::get(format!("{admin}/admin/providers"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(providers.as_array().unwrap().len(), 7, "{providers}");
    assert!(
        providers
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["contract_version"] == "shs_relay.provider.v1"),
        "{providers}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&audit_file).unwrap_or_default();
        if text.matches("\"kind\":\"admin\"").count() >= 4 {
            assert!(
                text.contains("ops-eva") && text.contains("\"action\":\"withdraw\""),
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "admin actions not audited: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let relay = relay_demo::default_bin_dir().unwrap().join("shs-relay");
    let out = std::process::Command::new(&relay)
        .args([
            "audit",
            "who-asked",
            "--person",
            "19121212-1212",
            "--config",
        ])
        .arg(&stack.demo().info.relay.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("2120002411") && text.contains("hl-anna") && text.contains("CASE-TOLVAN"),
        "{text}"
    );
    assert!(
        !text.contains("CASE-OTHER"),
        "only the requests about that person: {text}"
    );
    let month = chrono::Local::now().format("%Y-%m").to_string();
    let out = std::process::Command::new(&relay)
        .args([
            "sla-report",
            "--month",
            &month,
            "--format",
            "json",
            "--config",
        ])
        .arg(&stack.demo().info.relay.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the report is JSON");
    assert!(report.is_object());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_changes_an_agreement_mid_traffic_and_a_broken_config_is_refused() {
    let stack = Stack::start().await;
    let admin = stack.demo().info.admin["url"].clone();
    let relay = stack.relay_url().to_owned();
    let config = stack.demo().info.relay.config.clone();
    let original = std::fs::read_to_string(&config).unwrap();
    let ping = |org: &'static str| {
        let client = stack.client(org);
        let relay = relay.clone();
        async move {
            let spec = LabelSpec::synch_request(org, NODE_ORG, PING_PRODUCT, 1);
            let r = client
                .post(format!("{relay}/shs/rs"))
                .body(shs_message(&spec.to_xml(), &[("text/plain", b"x")]))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.headers()
                    .get("x-shs-errorcode")
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        }
    };
    assert_eq!(ping("2120001355").await.0, 200);

    // Traffic from Sundsvall keeps flowing while the configuration changes.
    let traffic = {
        let client = stack.client("2120002411");
        let relay = relay.clone();
        tokio::spawn(async move {
            let mut failed = 0;
            for _ in 0..60 {
                let spec = LabelSpec::synch_request("2120002411", NODE_ORG, PING_PRODUCT, 1);
                let r = client
                    .post(format!("{relay}/shs/rs"))
                    .body(shs_message(&spec.to_xml(), &[("text/plain", b"x")]))
                    .send()
                    .await;
                if !matches!(r, Ok(ref r) if r.status() == 200) {
                    failed += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failed
        })
    };
    let changed = original.replacen(
        "org = \"2120001355\"\nname = \"Göteborgs stad\"\nproducts = [\"ssbtek\", \"ping\"]",
        "org = \"2120001355\"\nname = \"Göteborgs stad\"\nproducts = [\"ssbtek\"]",
        1,
    );
    assert_ne!(changed, original);
    std::fs::write(&config, &changed).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{admin}/admin/reload"))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        ping("2120001355").await.1.as_deref(),
        Some("MissingAgreement")
    );

    // A broken file is refused with the reason; the running configuration stays.
    std::fs::write(&config, "this is [[[ not toml").unwrap();
    let r = reqwest::Client::new()
        .post(format!("{admin}/admin/reload"))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("relay.toml"));
    assert_eq!(
        ping("2120001355").await.1.as_deref(),
        Some("MissingAgreement")
    );
    assert_eq!(
        traffic.await.unwrap(),
        0,
        "no request failed during the reloads"
    );

    // SIGHUP reloads too.
    std::fs::write(&config, &original).unwrap();
    let pid = stack.demo().pid_of("shs-relay").unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while ping("2120001355").await.0 != 200 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stop().await;
}
