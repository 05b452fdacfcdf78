//! The register of connected parties end to end against the demo stack: a new
//! ELT vendor from application to production (refused while applied; test
//! reports only while in test; promotion refused with the missing checks named
//! until its own test traffic has passed them), caseworkers' declarations
//! (§9.2.9) over SHS and SOAP, certificates about to expire in the metric and on
//! the console's Parties page (headless Chromium), and two nodes on PostgreSQL
//! reading one register.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use relay_demo::{ELT_ANORDNARE, ELT_ASSISTANT, ELT_PRODUCT, NODE_ORG};
use relay_elt::Signer;
use relay_elt::example::ExampleReport;
use relay_pki::{DevCa, Subject};
use serde_json::{Value, json};
use shs_tests::*;

const NEW_VENDOR: &str = "5566770037";
const SUNDSVALL: &str = "2120002411";
const STOCKHOLM: &str = "2120000142";
const GOTEBORG: &str = "2120001355";

/// A client certificate for `org` from the demo's CA, expiring in `days` days
/// (`None`: the CA's usual validity); its (cert, key) files.
fn issue(stack: &Stack, org: &str, name: &str, days: Option<i64>) -> (PathBuf, PathBuf) {
    let pki = stack.dir().join("pki");
    let ca = DevCa::load(
        &std::fs::read_to_string(pki.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(pki.join("ca-key.pem")).unwrap(),
    )
    .unwrap();
    let subject = Subject {
        serial_number: Some(org),
        organisation: Some(name),
        common_name: name,
    };
    let issued = match days {
        Some(d) => ca.client_cert_expiring(&subject, d).unwrap(),
        None => ca.client_cert(&subject).unwrap(),
    };
    let files = issued
        .write(
            &pki,
            &format!("extra-{org}-{}", uuid::Uuid::new_v4().simple()),
        )
        .unwrap();
    (files.cert, files.key)
}

fn admin_url(stack: &Stack) -> String {
    stack.demo().info.admin["url"].clone()
}

async fn admin_post(url: &str, path: &str, body: Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("X-SHS-Admin", "1")
        .header("X-Operator", "anna.operator")
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn admin_get(url: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{url}{path}")).await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

struct Vendor {
    client: reqwest::Client,
    url: String,
    assistant: Signer,
    anordnare: Signer,
}

impl Vendor {
    fn report() -> Vec<u8> {
        let this_month = chrono::Utc::now().date_naive();
        let first = chrono::NaiveDate::from_ymd_opt(
            chrono::Datelike::year(&this_month),
            chrono::Datelike::month(&this_month),
            1,
        )
        .unwrap();
        ExampleReport {
            insured: "191212121212",
            assistant: ELT_ASSISTANT,
            anordnare: ELT_ANORDNARE,
            month: first - chrono::Months::new(1),
            id: uuid::Uuid::new_v4(),
        }
        .to_xml()
        .into_bytes()
    }

    /// Sends `reports` in one SHS call with `status`; (HTTP status, error code, text).
    async fn send(&self, status: &str, reports: &[&[u8]]) -> (u16, Option<String>, String) {
        let report = reports[0];
        let a = self.assistant.sign(report).unwrap();
        let b = self.anordnare.sign(report).unwrap();
        let mut parts: Vec<(&str, &str, &[u8])> = reports
            .iter()
            .map(|r| ("tidredovisning", "text/xml", *r))
            .collect();
        parts.push(("assistent-signatur", "application/pkcs7-signature", &a));
        parts.push(("anordnare-signatur", "application/pkcs7-signature", &b));
        let mut label = LabelSpec::synch_request(NEW_VENDOR, NODE_ORG, ELT_PRODUCT, parts.len());
        label.status = status;
        label.datapart_types = parts.iter().map(|(t, _, _)| *t).collect();
        let bodies: Vec<(&str, &[u8])> = parts.iter().map(|(_, ct, b)| (*ct, *b)).collect();
        let r = self
            .client
            .post(format!("{}/shs/rs", self.url))
            .header("Content-Type", "message/rfc822")
            .body(shs_message(&label.to_xml(), &bodies))
            .send()
            .await
            .unwrap();
        let code = r
            .headers()
            .get("X-shs-errorcode")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), code, r.text().await.unwrap())
    }
}

fn signer(stack: &Stack, role: &str) -> Signer {
    let s = stack
        .demo()
        .info
        .elt
        .signers
        .iter()
        .find(|s| s.role == role)
        .unwrap();
    Signer::from_pem(
        &std::fs::read(&s.cert).unwrap(),
        &std::fs::read(&s.key).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_vendor_goes_from_applied_through_its_test_checks_to_production() {
    let stack = Stack::start_with(|o| o.elt_calls_per_second = Some(50.0)).await;
    let admin = admin_url(&stack);
    let (cert, key) = issue(&stack, NEW_VENDOR, "Ny Leverantör AB", None);
    let v = Vendor {
        client: https_client(&stack.demo().info.relay.ca, Some((&cert, &key))),
        url: stack.relay_url().to_owned(),
        assistant: signer(&stack, "assistant"),
        anordnare: signer(&stack, "anordnare"),
    };
    let (s, t) = admin_post(
        &admin,
        &format!("/admin/elt/grant-mandate?vendor={NEW_VENDOR}&anordnare={ELT_ANORDNARE}"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{t}");

    // Input is checked, naming the bad value.
    let (s, t) = admin_post(
        &admin,
        "/admin/parties",
        json!({"org": "5566770038", "name": "X", "role": "elt-vendor"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        t.contains("\"5566770038\" is not a valid organisation number"),
        "{t}"
    );
    let (s, t) = admin_post(
        &admin,
        "/admin/parties",
        json!({"org": NEW_VENDOR, "name": "X", "role": "elt-vendor", "products": ["eltt"]}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(t.contains("\"eltt\" is not a product"), "{t}");

    // Applied: refused, whatever the status.
    let (s, t) = admin_post(
        &admin,
        "/admin/parties",
        json!({"org": NEW_VENDOR, "name": "Ny Leverantör AB", "role": "elt-vendor", "products": ["elt"]}),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    let r = Vendor::report();
    let (s, code, t) = v.send("test", &[&r]).await;
    assert_eq!((s, code.as_deref()), (400, Some("MissingAgreement")), "{t}");
    assert!(t.contains("state applied"), "{t}");

    // In test: test reports only.
    let (s, t) = admin_post(
        &admin,
        &format!("/admin/parties/{NEW_VENDOR}/state"),
        json!({"product": "elt", "state": "test", "reason": "order form received"}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let (s, _, t) = v.send("production", &[&r]).await;
    assert_eq!(s, 400);
    assert!(
        t.contains("ELT-ENVIRONMENT") && t.contains("state test"),
        "{t}"
    );

    // Promotion before the checks names every missing one.
    let (s, t) = admin_post(
        &admin,
        &format!("/admin/parties/{NEW_VENDOR}/promote"),
        json!({"product": "elt"}),
    )
    .await;
    assert_eq!(s, 409, "{t}");
    for check in [
        "signed-report-accepted",
        "refused-then-corrected",
        "receipt-fetched-again",
    ] {
        assert!(t.contains(check), "{check}: {t}");
    }

    // Its test traffic: a report accepted; a report refused for a rule (two
    // reports in one call) and the same report sent again correctly; the first
    // report sent again, which fetches its receipt again.
    let (s, _, t) = v.send("test", &[&r]).await;
    assert_eq!(s, 200, "{t}");
    let second = Vendor::report();
    let (s, _, t) = v.send("test", &[&second, &r]).await;
    assert_eq!(s, 400);
    assert!(t.contains("ELT-ONE-REPORT"), "{t}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (s, _, t) = v.send("test", &[&second]).await;
    assert_eq!(s, 200, "{t}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (s, _, t) = v.send("test", &[&r]).await;
    assert_eq!(s, 200, "{t}");

    let (s, party) = admin_get(&admin, &format!("/admin/parties/{NEW_VENDOR}")).await;
    assert_eq!(s, 200);
    let elt = &party["products"]["elt"];
    assert_eq!(elt["state"], "verified", "{party}");
    assert_eq!(elt["checks_missing"], json!([]));
    for c in elt["checks"].as_array().unwrap() {
        assert!(c["passed_at"].is_string(), "{c}");
    }
    // On a loopback admin listener the operator is `loopback`; X-Operator is
    // only a note beside it (issue 28).
    assert_eq!(
        elt["history"][1]["operator"],
        "loopback (X-Operator: anna.operator)"
    );
    assert_eq!(elt["history"][1]["reason"], "order form received");

    // Promoted: production reports pass the register. This demo relay serves
    // the test environment, so take it to production the way elt.rs does; the
    // report then passes the register and meets the next rule (the demo's
    // persons are Skatteverket's test persons, which production refuses).
    let (s, t) = admin_post(
        &admin,
        &format!("/admin/parties/{NEW_VENDOR}/promote"),
        json!({"product": "elt"}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    // Past the vendor's call rate (50 a second in this test).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (s, _, t) = v.send("test", &[&Vendor::report()]).await;
    assert_eq!(s, 200, "test reports still accepted: {t}");
    let path = &stack.demo().info.relay.config;
    let original = std::fs::read_to_string(path).unwrap();
    std::fs::write(
        path,
        original.replace("environment = \"test\"", "environment = \"production\""),
    )
    .unwrap();
    let (s, t) = admin_post(&admin, "/admin/reload", json!({})).await;
    assert_eq!(s, 200, "{t}");
    let (s, _, t) = v.send("production", &[&Vendor::report()]).await;
    assert_eq!(s, 400);
    assert!(!t.contains("state "), "the register admits it: {t}");
    assert!(t.contains("ELT-TEST-DATA"), "{t}");
    // A vendor back in test is refused production reports by the same relay.
    let (s, t) = admin_post(
        &admin,
        &format!("/admin/parties/{NEW_VENDOR}/state"),
        json!({"product": "elt", "state": "suspended", "reason": "certificate lost"}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let (s, _, t) = v.send("production", &[&Vendor::report()]).await;
    assert_eq!(s, 400);
    assert!(t.contains("state suspended"), "{t}");

    // Every change is in the audit trail, with its operator.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let audit = std::fs::read_to_string(&stack.demo().info.audit["file"]).unwrap();
    for action in [
        "party-register",
        "party-state",
        "party-verified",
        "party-promote",
    ] {
        assert!(audit.contains(action), "{action} audited");
    }
    assert!(audit.contains("anna.operator"));
}

fn soap_question(handlaggare: &str) -> String {
    let today = chrono::Local::now().date_naive();
    let from = today - chrono::Months::new(3);
    let specifika: String = ["AF", "CSN", "FK", "SKV", "SO", "TNS", "MIV"]
        .iter()
        .map(|s| format!("<ssbt:{s} inkludera=\"{}\"/>", *s == "CSN"))
        .collect();
    let body = format!(
        "<ssbt:hamtaBastjanstInformation xmlns:ssbt=\"http://schema.forsakringskassan.se/integration/ssbt/10\"><ssbt:generellaFrageparametrar><ssbt:korrelationsid>k-1</ssbt:korrelationsid><ssbt:fraganSkallInkluderasISvaret>false</ssbt:fraganSkallInkluderasISvaret><ssbt:ingivare><ssbt:organisationsnummer>162120002411</ssbt:organisationsnummer><ssbt:namn>Sundsvalls kommun</ssbt:namn><ssbt:handlaggare>{handlaggare}</ssbt:handlaggare></ssbt:ingivare><ssbt:personidentitet>191212121212</ssbt:personidentitet><ssbt:arendeidentitet>A-1</ssbt:arendeidentitet><ssbt:tidsperiod><ssbt:fromDatum>{from}</ssbt:fromDatum><ssbt:tomDatum>{today}</ssbt:tomDatum></ssbt:tidsperiod><ssbt:syfte>Beslut om eller kontroll av ekonomiskt bistånd</ssbt:syfte><ssbt:lagtext>11 kap. 11 a § socialtjänstlagen (2001:453)</ssbt:lagtext></ssbt:generellaFrageparametrar><ssbt:specifikaFrageparametrar>{specifika}</ssbt:specifikaFrageparametrar></ssbt:hamtaBastjanstInformation>"
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Header/><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
}

async fn soap(stack: &Stack, handlaggare: &str) -> (u16, String) {
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/ssbtek/v10", stack.relay_url()))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(soap_question(handlaggare))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_municipality_requiring_declarations_is_answered_only_for_registered_caseworkers() {
    let stack = Stack::start().await;
    let admin = admin_url(&stack);
    // The register seeded from the running configuration, twice: idempotent.
    let (s, t) = admin_post(&admin, "/admin/parties/import", json!(null)).await;
    assert_eq!(s, 400, "a JSON null is not a configuration: {t}");
    let import = |body: &'static str| {
        let admin = admin.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{admin}/admin/parties/import"))
                .header("X-SHS-Admin", "1")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, t) = import("").await;
    assert_eq!(s, 200, "{t}");
    let first: Value = serde_json::from_str(&t).unwrap();
    assert!(first["parties_added"].as_array().unwrap().len() >= 5, "{t}");
    // Again, from the shell with the configuration file: nothing new.
    let out = shs_relay(&[
        "parties",
        "--admin",
        &admin,
        "import",
        stack.demo().info.relay.config.to_str().unwrap(),
    ]);
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["parties_added"], json!([]), "{out}");
    assert_eq!(again["products_added"], json!([]), "{out}");
    let (_, sundsvall) = admin_get(&admin, &format!("/admin/parties/{SUNDSVALL}")).await;
    assert_eq!(sundsvall["role"], "municipality");
    assert_eq!(sundsvall["products"]["ssbtek"]["state"], "production");

    // Before the rule is switched on, any caseworker is answered.
    let q = question("191212121212", SUNDSVALL, &[relay_ssbtek::Slot::Csn], false);
    let reply = ask(&stack, SUNDSVALL, std::slice::from_ref(&q)).await;
    assert_eq!(reply.status, 200);

    let (s, t) = admin_post(
        &admin,
        &format!("/admin/parties/{SUNDSVALL}/declarations"),
        json!({"require_declaration": true, "declarations": [{"caseworker": "hl-9", "signed": "2026-11-30"}]}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let (s, t) = admin_post(
        &admin,
        &format!("/admin/parties/{SUNDSVALL}/declarations"),
        json!({"declarations": [{"caseworker": "hl-9", "signed": "30/11/2026"}]}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(t.contains("\"30/11/2026\" is not a date"), "{t}");

    // handlaggare-7 has not signed: refused over SHS and SOAP, naming the rule,
    // never the caseworker.
    let reply = ask(&stack, SUNDSVALL, std::slice::from_ref(&q)).await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert_eq!(reply.status, 400, "{text}");
    assert_eq!(reply.errorcode.as_deref(), Some("MissingAgreement"));
    assert!(
        text.contains("declaration") && text.contains("9.2.9"),
        "{text}"
    );
    assert!(!text.contains("handlaggare-7"), "{text}");
    let (s, t) = soap(&stack, "hl-1").await;
    assert_eq!(s, 500, "{t}");
    assert!(t.contains("9.2.9") && !t.contains("hl-1"), "{t}");

    // Registered by CSV: answered.
    let r = reqwest::Client::new()
        .post(format!("{admin}/admin/parties/{SUNDSVALL}/declarations"))
        .header("X-SHS-Admin", "1")
        .header("Content-Type", "text/csv")
        .body("caseworker,signed\nhandlaggare-7,2026-12-01\nhl-1,2026-12-01\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let reply = ask(&stack, SUNDSVALL, std::slice::from_ref(&q)).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let (s, t) = soap(&stack, "hl-1").await;
    assert_eq!(s, 200, "{t}");
    let (_, listed) = admin_get(&admin, &format!("/admin/parties/{SUNDSVALL}/declarations")).await;
    assert_eq!(listed["require_declaration"], true);
    assert_eq!(listed["declarations"].as_array().unwrap().len(), 3);
    let (_, sundsvall) = admin_get(&admin, &format!("/admin/parties/{SUNDSVALL}")).await;
    assert_eq!(
        sundsvall["products"]["ssbtek"]["checks"][0]["passed_at"],
        Value::Null,
        "production traffic is no test check"
    );

    // Göteborg back in test: its test questions pass the SSBTEK checks, one
    // answered by every agency, one while the simulator has CSN down.
    let (s, t) = admin_post(
        &admin,
        &format!("/admin/parties/{GOTEBORG}/state"),
        json!({"product": "ssbtek", "state": "test", "reason": "new case system"}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let (s, t) = admin_post(
        &admin,
        &format!("/admin/parties/{GOTEBORG}/promote"),
        json!({"product": "ssbtek"}),
    )
    .await;
    assert_eq!(s, 409);
    assert!(
        t.contains("composite-answered, partial-answer-handled"),
        "{t}"
    );
    let slots = [relay_ssbtek::Slot::Csn, relay_ssbtek::Slot::Af];
    let q = question("191212121212", GOTEBORG, &slots, false);
    let reply = ask(&stack, GOTEBORG, std::slice::from_ref(&q)).await;
    assert_eq!(reply.status, 200);
    let r = reqwest::Client::new()
        .put(format!("{}/admin/scenario", stack.demo().info.sim.admin))
        .body("[agency.CSN]\ndown = true\n")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let reply = ask(&stack, GOTEBORG, std::slice::from_ref(&q)).await;
    assert_eq!(reply.status, 200, "a partial answer is an answer");
    let (_, goteborg) = admin_get(&admin, &format!("/admin/parties/{GOTEBORG}")).await;
    assert_eq!(
        goteborg["products"]["ssbtek"]["state"], "verified",
        "{goteborg}"
    );
    let out = shs_relay(&[
        "parties",
        "--admin",
        &admin,
        "promote",
        GOTEBORG,
        "--product",
        "ssbtek",
    ]);
    let promoted: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(promoted["products"]["ssbtek"]["state"], "production");
    let out = shs_relay(&[
        "parties",
        "--admin",
        &admin,
        "list",
        "--state",
        "production",
    ]);
    assert!(out.contains(GOTEBORG), "{out}");
}

/// Runs `shs-relay ARGS`, which must succeed; its standard output.
fn shs_relay(args: &[&str]) -> String {
    let out = Command::new(relay_demo::default_bin_dir().unwrap().join("shs-relay"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shs-relay {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs headless Chromium and returns the DOM of `url`.
fn dom(profile: &Path, url: &str) -> String {
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium (Debian's `chromium`) must be installed: apt-get install chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_about_to_expire_shows_in_the_metric_and_on_the_parties_page() {
    let stack = Stack::start().await;
    let admin = admin_url(&stack);
    let r = reqwest::Client::new()
        .post(format!("{admin}/admin/parties/import"))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Stockholm connects with its certificate, then with a new one that
    // expires in 30 days: the old one is shown renewed.
    let ping = |client: reqwest::Client| {
        let url = stack.relay_url().to_owned();
        async move {
            let spec = LabelSpec::synch_request(STOCKHOLM, NODE_ORG, relay_demo::SSBTEK_PRODUCT, 1);
            let q = question("191212121212", STOCKHOLM, &[relay_ssbtek::Slot::Csn], false);
            post(
                &client,
                &url,
                shs_message(&spec.to_xml(), &[("text/xml", &q)]),
            )
            .await
        }
    };
    assert_eq!(ping(stack.client(STOCKHOLM)).await.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (cert, key) = issue(&stack, STOCKHOLM, "Stockholms stad", Some(30));
    let short = https_client(&stack.demo().info.relay.ca, Some((&cert, &key)));
    assert_eq!(ping(short).await.status, 200);

    let deadline = Instant::now() + Duration::from_secs(30);
    let metric = loop {
        let text = reqwest::get(format!("{admin}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "shs_relay_party_certificate_expiry_timestamp_seconds{{org=\"{STOCKHOLM}\"}}"
                ))
            })
            .map(str::to_owned);
        if let Some(l) = line.filter(|l| {
            let v: i64 = l.rsplit(' ').next().unwrap().parse().unwrap_or(0);
            v < chrono::Utc::now().timestamp() + 31 * 86_400
        }) {
            assert!(text.ends_with("# EOF\n"));
            break l;
        }
        assert!(Instant::now() < deadline, "no expiring metric:\n{text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let expires: i64 = metric.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        expires > chrono::Utc::now().timestamp() + 29 * 86_400,
        "{metric}"
    );

    let (_, party) = admin_get(&admin, &format!("/admin/parties/{STOCKHOLM}")).await;
    let certs = party["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2, "{party}");
    assert_eq!(certs[0]["renewed"], true);
    assert_eq!(certs[1]["renewed"], false);
    let (_, expiring) = admin_get(&admin, "/admin/parties?expiring_within_days=60").await;
    let orgs: Vec<&str> = expiring
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["org"].as_str().unwrap())
        .collect();
    assert_eq!(orgs, [STOCKHOLM]);
    let (s, bad) = admin_get(&admin, "/admin/parties?state=live").await;
    assert_eq!(s, 400);
    assert!(bad.as_str().unwrap().contains("\"live\" is not a state"));

    // The console's Parties page, in a real browser, filtered.
    let profile = tempfile::tempdir().unwrap();
    let html = dom(
        profile.path(),
        &format!("{admin}/parties?expiring_within_days=60"),
    );
    assert!(
        html.contains(&format!("data-org=\"{STOCKHOLM}\""))
            && html.contains("data-expiring=\"true\""),
        "{html}"
    );
    assert!(
        !html.contains(&format!("data-org=\"{SUNDSVALL}\"")),
        "{html}"
    );
    let all = dom(profile.path(), &format!("{admin}/parties"));
    assert!(all.contains(&format!("data-org=\"{SUNDSVALL}\"")), "{all}");
    assert!(all.contains("(renewed)"), "{all}");
}

fn postgres_url() -> String {
    std::env::var("SHS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgresql_see_one_register() {
    let url = postgres_url();
    let stack = Stack::start_with(|o| {
        o.nodes = 2;
        o.postgres = Some(url.clone());
    })
    .await;
    let nodes = stack.demo().info.relays.clone().expect("two nodes");
    let (first, second) = (&nodes[0], &nodes[1]);
    let (s, t) = admin_post(
        &first.admin,
        "/admin/parties",
        json!({"org": NEW_VENDOR, "name": "Ny Leverantör AB", "role": "elt-vendor", "products": ["elt"]}),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    let (s, party) = admin_get(&second.admin, &format!("/admin/parties/{NEW_VENDOR}")).await;
    assert_eq!(s, 200, "{party}");
    assert_eq!(party["products"]["elt"]["state"], "applied");
    // A state changed through the second node admits at the first.
    let (cert, key) = issue(&stack, NEW_VENDOR, "Ny Leverantör AB", None);
    let client = https_client(&stack.demo().info.relay.ca, Some((&cert, &key)));
    let (s, t) = admin_post(
        &second.admin,
        &format!("/admin/parties/{NEW_VENDOR}/state"),
        json!({"product": "elt", "state": "test"}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = admin_get(&first.admin, "/admin/parties?state=test").await;
        if list.as_array().is_some_and(|l| l.len() == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The first node's gate now says "test" for it, not "applied".
    let mut label = LabelSpec::synch_request(NEW_VENDOR, NODE_ORG, ELT_PRODUCT, 1);
    label.status = "production";
    let reply = post(
        &client,
        &first.url,
        shs_message(&label.to_xml(), &[("text/xml", b"<x/>")]),
    )
    .await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(text.contains("state test"), "{text}");
    // An operator may promote before the checks, with a reason.
    let (s, t) = admin_post(
        &first.admin,
        &format!("/admin/parties/{NEW_VENDOR}/promote"),
        json!({"product": "elt", "override": "verified with Försäkringskassan by hand"}),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let promoted: Value = serde_json::from_str(&t).unwrap();
    let history = promoted["products"]["elt"]["history"].as_array().unwrap();
    let last = history.last().unwrap();
    assert_eq!(last["to"], "production");
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("override of the missing checks signed-report-accepted"),
        "{last}"
    );
}
