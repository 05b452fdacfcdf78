//! ELT end to end over the demo stack (relay, fk adapter and simulator as separate
//! processes, real mTLS, real CMS signatures): receipts over SHS and SOAP, and
//! every rule of the terms. One stack, one vendor, so calls are paced to the
//! vendor's one-call-per-second limit except where the limit is the point.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::path::Path;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use relay_demo::{ELT_ANORDNARE, ELT_ASSISTANT, ELT_PRODUCT, ELT_VENDOR, NODE_ORG};
use relay_elt::example::ExampleReport;
use relay_elt::soap::{self, SignatureBlock};
use relay_elt::{Receipt, Signer};
use relay_pki::{DevCa, Subject};
use shs_tests::{LabelSpec, Stack, shs_message, split_message, xmllint};

const INSURED: &str = "191212121212";

/// A report for `months_ago` months before this one (0: this month).
fn report_of(months_ago: u32, id: uuid::Uuid) -> Vec<u8> {
    let this_month = chrono::Utc::now().date_naive().with_day(1).unwrap();
    ExampleReport {
        insured: INSURED,
        assistant: ELT_ASSISTANT,
        anordnare: ELT_ANORDNARE,
        month: this_month - chrono::Months::new(months_ago),
        id,
    }
    .to_xml()
    .into_bytes()
}

/// A report for last month: complete, and not late.
fn report() -> Vec<u8> {
    report_of(1, uuid::Uuid::new_v4())
}

fn elt_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../relay/elt"))
}

/// The outcome of one call, protocol-neutral.
#[derive(Debug)]
enum Outcome {
    Receipt(Receipt),
    TxId(String),
    /// SHS: (X-shs-errorcode, errorInfo, Retry-After); SOAP: (detail, faultstring, Retry-After).
    Refused(String, String, Option<String>),
}

impl Outcome {
    fn refused(&self) -> (&str, &str) {
        match self {
            Self::Refused(code, text, _) => (code, text),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    fn is_rate_limited(&self) -> bool {
        matches!(self, Self::Refused(_, text, _) if text.contains("ELT-RATE-LIMIT"))
    }
}

struct Vendor<'a> {
    stack: &'a Stack,
    client: reqwest::Client,
    assistant: Signer,
    anordnare: Signer,
}

impl Vendor<'_> {
    fn signatures(&self, report: &[u8]) -> (Vec<u8>, Vec<u8>) {
        (
            self.assistant.sign(report).unwrap(),
            self.anordnare.sign(report).unwrap(),
        )
    }

    async fn shs(&self, status: &str, parts: &[(&str, &str, Vec<u8>)]) -> Outcome {
        let mut label = LabelSpec::synch_request(ELT_VENDOR, NODE_ORG, ELT_PRODUCT, parts.len());
        label.status = status;
        label.datapart_types = parts.iter().map(|(t, _, _)| *t).collect();
        let bodies: Vec<(&str, &[u8])> = parts.iter().map(|(_, ct, b)| (*ct, &b[..])).collect();
        let response = self
            .client
            .post(format!("{}/shs/rs", self.stack.relay_url()))
            .header("Content-Type", "message/rfc822")
            .body(shs_message(&label.to_xml(), &bodies))
            .send()
            .await
            .expect("the relay answers");
        let status = response.status();
        let code = response
            .headers()
            .get("X-shs-errorcode")
            .map(|v| v.to_str().unwrap().to_owned());
        let retry = response
            .headers()
            .get("Retry-After")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.bytes().await.unwrap();
        if status.is_success() {
            let parts = split_message(&body);
            assert_eq!(parts.len(), 2, "label and the receipt");
            let receipt_xml = &parts[1].body;
            xmllint(
                receipt_xml,
                &elt_dir().join("schema/mottagningsbekraftelse_1.xsd"),
            )
            .expect("the receipt is valid against its schema");
            Outcome::Receipt(Receipt::parse(receipt_xml).expect("a receipt"))
        } else {
            let text = String::from_utf8_lossy(&body).into_owned();
            // Försäkringskassan's side failing is a 5xx; every rule a 400.
            if ["ELT-PROVIDER", "ELT-UNAVAILABLE", "ELT-TIMEOUT"]
                .iter()
                .any(|c| text.contains(c))
            {
                assert!(status.is_server_error(), "{status}: {text}");
            } else {
                assert_eq!(status.as_u16(), 400, "{text}");
            }
            Outcome::Refused(code.expect("X-shs-errorcode"), text, retry)
        }
    }

    async fn shs_report(&self, status: &str, report: &[u8]) -> Outcome {
        let (a, b) = self.signatures(report);
        self.shs(status, &parts(&[report], &a, &b)).await
    }

    async fn soap_raw(&self, envelope: Vec<u8>) -> Outcome {
        let response = self
            .client
            .post(format!(
                "{}{}",
                self.stack.relay_url(),
                self.stack.demo().info.elt.soap_path
            ))
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"{}\"", soap::SOAP_ACTION))
            .body(envelope)
            .send()
            .await
            .expect("the relay answers");
        let status = response.status();
        let retry = response
            .headers()
            .get("Retry-After")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.bytes().await.unwrap();
        let xsd = elt_dir().join("wsdl/SkickaTidredovisningResponder_1.0.xsd");
        let text = String::from_utf8_lossy(&body).into_owned();
        match soap::parse_response(&body).expect("a SOAP envelope") {
            soap::Response::TxId(tx) => {
                assert_eq!(status.as_u16(), 200);
                let start = text.find("<soap:Body>").unwrap() + "<soap:Body>".len();
                let end = text.find("</soap:Body>").unwrap();
                xmllint(&body[start..end], &xsd).expect("the response follows the WSDL");
                Outcome::TxId(tx)
            }
            soap::Response::Fault {
                detail,
                faultstring,
                ..
            } => {
                assert_eq!(status.as_u16(), 500);
                if detail == "XmlValidationError" || detail == "SignatureValidationError" {
                    let start = text.find("<detail>").unwrap() + "<detail>".len();
                    let end = text.find("</detail>").unwrap();
                    xmllint(&body[start..end], &xsd).expect("the fault detail follows the WSDL");
                }
                Outcome::Refused(detail, faultstring, retry)
            }
        }
    }

    async fn soap_report(&self, report: &[u8]) -> Outcome {
        let (a, b) = self.signatures(report);
        self.soap_raw(soap::request_xml(report, &block(a), &block(b)))
            .await
    }
}

/// SHS data parts: the reports, then the two signatures.
fn parts(reports: &[&[u8]], a: &[u8], b: &[u8]) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut parts: Vec<_> = reports
        .iter()
        .map(|r| ("tidredovisning", "text/xml", r.to_vec()))
        .collect();
    parts.push((
        "assistent-signatur",
        "application/pkcs7-signature",
        a.to_vec(),
    ));
    parts.push((
        "anordnare-signatur",
        "application/pkcs7-signature",
        b.to_vec(),
    ));
    parts
}

/// A SOAP signature block dated the last day of the example's month.
fn block(der: Vec<u8>) -> SignatureBlock {
    SignatureBlock {
        signature: der,
        ocsp_response: None,
        datum_for_signatur: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
    }
}

/// Runs `call` until it is not refused for rate (the limit is per vendor and
/// this test is one vendor); each try waits the relay's Retry-After first.
async fn paced<F, Fut>(call: F) -> Outcome
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let outcome = call().await;
        if !outcome.is_rate_limited() {
            return outcome;
        }
    }
    panic!("still rate limited after 20 tries");
}

/// How many time reports the simulator has registered.
async fn sim_registrations(stack: &Stack) -> u64 {
    let stats: serde_json::Value =
        reqwest::get(format!("{}/admin/stats", stack.demo().info.sim.admin))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    stats["ELT"]["requests"].as_u64().unwrap_or(0)
}

async fn admin(stack: &Stack, path: &str) {
    let url = &stack.demo().info.admin["url"];
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("X-SHS-Admin", "1")
        .header("X-Operator", "test-operator")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

async fn reload_with(stack: &Stack, edit: impl Fn(&str) -> String) -> String {
    let path = &stack.demo().info.relay.config;
    let original = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, edit(&original)).unwrap();
    admin(stack, "/admin/reload").await;
    original
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_gets_receipts_and_every_rule_of_the_terms_is_enforced() {
    let stack = Stack::start().await;
    let info = &stack.demo().info;
    let signer = |role: &str| {
        let s = info.elt.signers.iter().find(|s| s.role == role).unwrap();
        Signer::from_pem(
            &std::fs::read(&s.cert).unwrap(),
            &std::fs::read(&s.key).unwrap(),
        )
        .unwrap()
    };
    let vendor_client = info
        .clients
        .iter()
        .find(|c| c.role == "elt-vendor")
        .expect("demo.json has an elt-vendor client");
    assert_eq!(vendor_client.org, ELT_VENDOR);
    // demo.json, as a vendor's test team reads it.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stack.dir().join("demo.json")).unwrap())
            .unwrap();
    assert_eq!(json["products"]["elt"], ELT_PRODUCT);
    assert_eq!(json["relay"]["environment"], "test");
    assert_eq!(json["soap"]["elt"], json["elt"]["soap_path"]);
    let roles: Vec<&str> = json["elt"]["signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["assistant", "anordnare"]);
    for s in json["elt"]["signers"].as_array().unwrap() {
        for k in ["cert", "key"] {
            assert!(Path::new(s[k].as_str().unwrap()).is_absolute());
        }
    }
    assert!(Path::new(json["elt"]["signing_ca"].as_str().unwrap()).is_file());
    let v = Vendor {
        stack: &stack,
        client: stack.client(ELT_VENDOR),
        assistant: signer("assistant"),
        anordnare: signer("anordnare"),
    };

    // 1. A valid report over SHS: a receipt whose digest is the report's.
    let r = report();
    let Outcome::Receipt(receipt) = paced(|| v.shs_report("test", &r)).await else {
        panic!("expected a receipt");
    };
    assert_eq!(receipt.sha256, relay_elt::sha256_hex(&r));
    assert!(uuid::Uuid::parse_str(&receipt.tx_id).is_ok());
    let id = relay_elt::Report::parse(&r).unwrap().id.to_string();
    assert_eq!(receipt.report_id, id);

    // 2. The same over SOAP: a tx-id.
    let r = report();
    let Outcome::TxId(tx) = paced(|| v.soap_report(&r)).await else {
        panic!("expected a tx-id");
    };
    assert!(uuid::Uuid::parse_str(&tx).is_ok());

    // 3. One byte changed after signing: a signature error.
    let r = report();
    let (a, b) = v.signatures(&r);
    let tampered: Vec<u8> = String::from_utf8(r.clone())
        .unwrap()
        .replacen("Tolvansson", "Tolvansspn", 1)
        .into_bytes();
    let tampered_parts = parts(&[&tampered], &a, &b);
    let outcome = paced(|| v.shs("test", &tampered_parts)).await;
    let (code, text) = outcome.refused();
    assert_eq!(code, "IllegalDatapartContent");
    assert!(
        text.contains("ELT-SIGNATURE") && text.contains("exact bytes"),
        "{text}"
    );
    let outcome = paced(|| {
        v.soap_raw(soap::request_xml(
            &tampered,
            &block(a.clone()),
            &block(b.clone()),
        ))
    })
    .await;
    assert_eq!(outcome.refused().0, "SignatureValidationError");

    // 4. A signer from an unknown CA: a signature error.
    let rogue_ca = DevCa::new("Rogue CA").unwrap();
    let rogue = rogue_ca
        .signing_cert(&Subject {
            serial_number: Some(ELT_ASSISTANT),
            organisation: None,
            common_name: "Assistent Testsson",
        })
        .unwrap();
    let rogue = Signer::from_pem(rogue.cert_pem.as_bytes(), rogue.key_pem.as_bytes()).unwrap();
    let r = report();
    let outcome = paced(|| {
        v.soap_raw(soap::request_xml(
            &r,
            &block(rogue.sign(&r).unwrap()),
            &block(v.anordnare.sign(&r).unwrap()),
        ))
    })
    .await;
    let (detail, text) = outcome.refused();
    assert_eq!(detail, "SignatureValidationError");
    assert!(text.contains("not trusted"), "{text}");
    // Signatures swapped: each is valid, but not by the right signer.
    let outcome = paced(|| {
        v.soap_raw(soap::request_xml(
            &r,
            &block(v.anordnare.sign(&r).unwrap()),
            &block(v.assistant.sign(&r).unwrap()),
        ))
    })
    .await;
    assert_eq!(outcome.refused().0, "SignatureValidationError");

    // 5. A second report in one call, and a batch document: refused.
    let (r1, r2) = (report(), report());
    let (a, b) = v.signatures(&r1);
    let two_reports = parts(&[&r1, &r2], &a, &b);
    let outcome = paced(|| v.shs("test", &two_reports)).await;
    let (code, text) = outcome.refused();
    assert_eq!(code, "IllegalMessageStructure");
    assert!(text.contains("ELT-ONE-REPORT"), "{text}");
    let envelope =
        String::from_utf8(soap::request_xml(&r1, &block(a.clone()), &block(b.clone()))).unwrap();
    let i = envelope.find("<assistent-signatur>").unwrap();
    let j = envelope.find("<tidredovisning").unwrap();
    let two = format!("{}{}{}", &envelope[..i], &envelope[j..i], &envelope[i..]);
    let outcome = paced(|| v.soap_raw(two.clone().into_bytes())).await;
    let (detail, text) = outcome.refused();
    assert_eq!(detail, "PolicyError");
    assert!(text.starts_with("ELT-ONE-REPORT"), "{text}");
    let body = |x: &[u8]| {
        String::from_utf8(x.to_vec())
            .unwrap()
            .split_once("?>")
            .unwrap()
            .1
            .to_owned()
    };
    let batch = format!(
        "<b:Tidredovisningar xmlns:b=\"urn:batch\">{}{}</b:Tidredovisningar>",
        body(&r1),
        body(&r2)
    )
    .into_bytes();
    let outcome = paced(|| v.shs_report("test", &batch)).await;
    assert!(outcome.refused().1.contains("ELT-ONE-REPORT"));

    // 6. Two calls within one second: one is refused at once with a hint; a
    //    third after a second is accepted.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (x, y) = (report(), report());
    let (first, second) = tokio::join!(v.shs_report("test", &x), v.soap_report(&y));
    let (refused, accepted) = if first.is_rate_limited() {
        (first, second)
    } else {
        (second, first)
    };
    assert!(refused.is_rate_limited(), "{refused:?}");
    assert!(
        matches!(accepted, Outcome::Receipt(_) | Outcome::TxId(_)),
        "{accepted:?}"
    );
    let Outcome::Refused(_, _, retry) = &refused else {
        unreachable!()
    };
    assert_eq!(retry.as_deref(), Some("1"), "Retry-After hint");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(
        v.shs_report("test", &x).await,
        Outcome::Receipt(_)
    ));

    // 7. The same call again (a lost answer): the original receipt, marked as
    //    a repeat, and one registration at Försäkringskassan; five retries are
    //    answered, the sixth refused.
    let registrations_before = sim_registrations(&stack).await;
    let r = report();
    let (a, b) = v.signatures(&r);
    let retried = parts(&[&r], &a, &b);
    let Outcome::Receipt(original) = paced(|| v.shs("test", &retried)).await else {
        panic!("expected a receipt");
    };
    assert!(!original.repeat);
    for attempt in 1..6 {
        let Outcome::Receipt(again) = paced(|| v.shs("test", &retried)).await else {
            panic!("attempt {attempt}: expected the original receipt");
        };
        assert!(again.repeat, "attempt {attempt}");
        assert_eq!(again.tx_id, original.tx_id, "attempt {attempt}");
        assert_eq!(again.received_at, original.received_at);
    }
    assert_eq!(
        sim_registrations(&stack).await,
        registrations_before + 1,
        "registered once"
    );
    let outcome = paced(|| v.shs("test", &retried)).await;
    let (_, text) = outcome.refused();
    assert!(
        text.contains("ELT-RETRY-LIMIT") && text.contains("a corrected call is a new call"),
        "{text}"
    );

    // 8. Malformed XML and XSD violations: XmlValidationError.
    let broken = b"<tr:Tidredovisning xmlns:tr=\"x\"><unclosed></tr:Tidredovisning>".to_vec();
    let outcome = paced(|| v.soap_report(&broken)).await;
    assert_eq!(outcome.refused().0, "XmlValidationError");
    let invalid = String::from_utf8(report())
        .unwrap()
        .replacen("<tr:kollektivavtal>true</tr:kollektivavtal>", "", 1)
        .into_bytes();
    let outcome = paced(|| v.soap_report(&invalid)).await;
    let (detail, text) = outcome.refused();
    assert_eq!(detail, "XmlValidationError");
    assert!(text.contains("kollektivavtal"), "{text}");
    let outcome = paced(|| v.shs_report("test", &invalid)).await;
    let (code, text) = outcome.refused();
    assert_eq!(code, "IllegalDatapartContent");
    assert!(text.contains("ELT-XML"), "{text}");

    // 9. A suspended vendor and a suspended assistance company are refused, and
    //    accepted again after lifting.
    admin(
        &stack,
        &format!("/admin/suspend?org={ELT_VENDOR}&product=elt"),
    )
    .await;
    let r = report();
    let outcome = paced(|| v.shs_report("test", &r)).await;
    assert!(outcome.refused().1.contains("ELT-SUSPENDED-VENDOR"));
    admin(
        &stack,
        &format!("/admin/resume?org={ELT_VENDOR}&product=elt"),
    )
    .await;
    assert!(matches!(
        paced(|| v.shs_report("test", &r)).await,
        Outcome::Receipt(_)
    ));
    admin(
        &stack,
        &format!("/admin/elt/suspend-anordnare?org={ELT_ANORDNARE}"),
    )
    .await;
    let r = report();
    let outcome = paced(|| v.soap_report(&r)).await;
    let (detail, text) = outcome.refused();
    assert_eq!(detail, "PolicyError");
    assert!(text.contains("ELT-SUSPENDED-ANORDNARE"), "{text}");
    admin(
        &stack,
        &format!("/admin/elt/resume-anordnare?org={ELT_ANORDNARE}"),
    )
    .await;
    assert!(matches!(
        paced(|| v.soap_report(&r)).await,
        Outcome::TxId(_)
    ));
    // ... and through configuration (a reload).
    let original = reload_with(&stack, |c| {
        c.replace(
            "[elt]\n",
            &format!("[elt]\nsuspended_anordnare = [\"{ELT_ANORDNARE}\"]\n"),
        )
    })
    .await;
    let outcome = paced(|| v.soap_report(&r)).await;
    assert!(outcome.refused().1.contains("ELT-SUSPENDED-ANORDNARE"));

    // 10. Environment: a production relay refuses status="test" and test-only
    //     certificates, and a test relay refuses status="production".
    let r = report();
    let outcome = paced(|| v.shs_report("production", &r)).await;
    assert!(
        outcome.refused().1.contains("ELT-ENVIRONMENT"),
        "test relay, production data"
    );
    reload_with(&stack, |_| {
        original.replace("environment = \"test\"", "environment = \"production\"")
    })
    .await;
    let outcome = paced(|| v.shs_report("test", &r)).await;
    let (code, text) = outcome.refused();
    assert_eq!(code, "MissingAgreement");
    assert!(
        text.contains("ELT-ENVIRONMENT") && text.contains("status=\"test\""),
        "{text}"
    );
    // The demo's persons are Skatteverket's test persons: test data, refused
    // by a production relay.
    let outcome = paced(|| v.shs_report("production", &r)).await;
    let (code, text) = outcome.refused();
    assert_eq!(code, "IllegalDatapartContent");
    assert!(
        text.contains("ELT-TEST-DATA") && text.contains("test person"),
        "{text}"
    );
    let der = std::fs::read_to_string(&vendor_client.cert).unwrap();
    let der = relay_pki::tls::parse_certs(der.as_bytes(), &vendor_client.cert)
        .unwrap()
        .remove(0);
    let fingerprint = relay_pki::identity::PeerSubject::from_der(&der)
        .unwrap()
        .sha256_fingerprint;
    reload_with(&stack, |_| {
        original
            .replace("environment = \"test\"", "environment = \"production\"")
            .replace(
                "[elt]\n",
                &format!("[elt]\ntest_only_certificates = [\"{fingerprint}\"]\n"),
            )
    })
    .await;
    let r = report();
    let outcome = paced(|| v.soap_report(&r)).await;
    let (detail, text) = outcome.refused();
    assert_eq!(detail, "PolicyError");
    assert!(text.contains("test environment only"), "{text}");
    reload_with(&stack, |_| original.clone()).await;

    // 11. The WSDL names the real address and its schemas.
    let wsdl = v
        .client
        .get(format!("{}{}?wsdl", stack.relay_url(), info.elt.soap_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(wsdl.contains(&format!(
        "location=\"{}{}\"",
        stack.relay_url(),
        info.elt.soap_path
    )));
    assert!(wsdl.contains("?xsd=SkickaTidredovisningResponder_1.0.xsd"));

    // 12. Försäkringskassan's side in trouble (simulator scenarios): its own
    //     error, and an outage.
    let scenario = |toml: &'static str| {
        let url = format!("{}/admin/scenario", info.sim.admin);
        async move {
            let r = reqwest::Client::new()
                .put(url)
                .body(toml)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    };
    scenario("[agency.ELT]\nerror_rate = 1.0\nerror_code = \"ELT_INTERNT_FEL\"\n").await;
    let r = report();
    let outcome = paced(|| v.shs_report("test", &r)).await;
    let (code, text) = outcome.refused();
    assert_eq!(code, "OtherError");
    assert!(
        text.contains("ELT-PROVIDER") && text.contains("ELT_INTERNT_FEL"),
        "{text}"
    );
    scenario("[agency.ELT]\ndown = true\n").await;
    let outcome = paced(|| v.soap_report(&r)).await;
    let (detail, text) = outcome.refused();
    assert_eq!(detail, "PolicyError");
    assert!(text.starts_with("ELT-UNAVAILABLE"), "{text}");
    scenario("").await;
    assert!(matches!(
        paced(|| v.soap_report(&r)).await,
        Outcome::TxId(_)
    ));

    // 13. Metrics count refusals by rule; the audit trail has pseudonyms only;
    //     nothing of any report is in any log.
    let metrics = reqwest::get(format!("{}/metrics", info.admin["url"]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for rule in [
        "rate_limit",
        "retry_limit",
        "one_report",
        "environment",
        "suspended_vendor",
        "suspended_anordnare",
    ] {
        assert!(
            metrics.contains(&format!(
                "shs_relay_elt_refusals_total{{reason=\"{rule}\"}}"
            )),
            "{rule} in\n{metrics}"
        );
    }
    assert!(metrics.contains("shs_relay_elt_submissions_total{reason=\"receipt\"}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let audit = std::fs::read_to_string(&info.audit["file"]).unwrap();
    assert!(audit.contains("\"product\":\"elt\""));
    let logs = stack.all_logs();
    for secret in [
        INSURED,
        "19121212-1212",
        ELT_ASSISTANT,
        "Tolvan",
        "Testsson",
        "08-123 456 78",
    ] {
        assert!(!logs.contains(secret), "{secret} appears in a log");
        assert!(
            !audit.contains(secret),
            "{secret} appears in the audit trail"
        );
    }
    stack.stop().await;
}

/// The report XML with its rows replaced by one active row on `day`.
fn with_one_row_on(report: &[u8], day: u32) -> Vec<u8> {
    let xml = String::from_utf8(report.to_vec()).unwrap();
    let start = xml.find("<tr:tidrapport>").unwrap() + "<tr:tidrapport>".len();
    let end = xml.find("</tr:tidrapport>").unwrap();
    format!(
        "{}<tr:rapportRad><tr:dag>{day:02}</tr:dag><tr:fromTid>8.00</tr:fromTid><tr:tomTid>12.00</tr:tomTid><tr:aktivTid>true</tr:aktivTid><tr:vanteTid>false</tr:vanteTid><tr:beredskapsTid>false</tr:beredskapsTid></tr:rapportRad>{}",
        &xml[..start],
        &xml[end..]
    )
    .into_bytes()
}

async fn admin_get(stack: &Stack, path: &str) -> serde_json::Value {
    let url = &stack.demo().info.admin["url"];
    reqwest::get(format!("{url}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_repeats_mandates_revocation_and_months_follow_the_terms() {
    let stack = Stack::start().await;
    let info = &stack.demo().info;
    let load = |cert: &Path, key: &Path| {
        Signer::from_pem(&std::fs::read(cert).unwrap(), &std::fs::read(key).unwrap()).unwrap()
    };
    let signer = |role: &str| {
        let s = info.elt.signers.iter().find(|s| s.role == role).unwrap();
        load(&s.cert, &s.key)
    };
    let v = Vendor {
        stack: &stack,
        client: stack.client(ELT_VENDOR),
        assistant: signer("assistant"),
        anordnare: signer("anordnare"),
    };
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stack.dir().join("demo.json")).unwrap())
            .unwrap();
    for key in ["crl", "revoked_signer", "ocsp_responder", "mandates"] {
        assert!(!json["elt"][key].is_null(), "demo.json elt.{key}");
    }

    // 1. Six identical invalid calls, sent at once: every one counts (rate
    //    refusals too), and the sixth retry is refused with how to reset.
    let invalid = String::from_utf8(report())
        .unwrap()
        .replacen("<tr:kollektivavtal>true</tr:kollektivavtal>", "", 1)
        .into_bytes();
    let (a, b) = v.signatures(&invalid);
    let invalid_parts = parts(&[&invalid], &a, &b);
    for attempt in 0..6 {
        let outcome = v.shs("test", &invalid_parts).await;
        let text = outcome.refused().1.to_owned();
        assert!(
            text.contains("ELT-XML") || text.contains("ELT-RATE-LIMIT"),
            "attempt {attempt}: {text}"
        );
    }
    let outcome = v.shs("test", &invalid_parts).await;
    let (code, text) = outcome.refused();
    assert_eq!(code, "OtherError");
    assert!(
        text.contains("ELT-RETRY-LIMIT") && text.contains("a corrected call is a new call"),
        "{text}"
    );
    // The corrected call is a new call.
    let corrected = report();
    assert!(matches!(
        paced(|| v.shs_report("test", &corrected)).await,
        Outcome::Receipt(_)
    ));

    // 2. An accepted report sent again over SOAP: the same tx-id, registered once.
    let r = report();
    let (a, b) = v.signatures(&r);
    let before = sim_registrations(&stack).await;
    let envelope = soap::request_xml(&r, &block(a.clone()), &block(b.clone()));
    let Outcome::TxId(first) = paced(|| v.soap_raw(envelope.clone())).await else {
        panic!("expected a tx-id");
    };
    let Outcome::TxId(again) = paced(|| v.soap_raw(envelope.clone())).await else {
        panic!("expected the original tx-id");
    };
    assert_eq!(first, again);
    // Over SHS too, with new signatures: the original receipt, a repeat.
    let Outcome::Receipt(receipt) = paced(|| v.shs_report("test", &r)).await else {
        panic!("expected the original receipt");
    };
    assert!(receipt.repeat);
    assert_eq!(receipt.tx_id, first);
    assert_eq!(sim_registrations(&stack).await, before + 1);

    // 3. The same report id with other content: a conflict.
    let id = relay_elt::Report::parse(&r).unwrap().id;
    let other = report_of(2, id);
    let outcome = paced(|| v.shs_report("test", &other)).await;
    assert!(outcome.refused().1.contains("ELT-CONFLICT"), "{outcome:?}");

    // ... and Försäkringskassan's adapter keeps its own record: a second relay
    // (here: a direct Submit) gets the original receipt, or a conflict.
    let submit = |report: &[u8]| {
        let (a, b) = v.signatures(report);
        let attachment = |name: &str, der: Vec<u8>| providers_sdk::proto::Attachment {
            name: name.into(),
            content_type: "application/pkcs7-signature".into(),
            content: der,
            attributes: Default::default(),
        };
        providers_sdk::proto::SubmitRequest {
            transaction_id: uuid::Uuid::new_v4().to_string(),
            caller: Some(providers_sdk::proto::Caller {
                organisation_number: ELT_VENDOR.into(),
                name: "Exempel Systemleverantör AB".into(),
                case_worker: String::new(),
            }),
            document_type: "tidredovisning".into(),
            document: report.to_vec(),
            attachments: vec![
                attachment("assistent-signatur", a),
                attachment("anordnare-signatur", b),
            ],
            environment: providers_sdk::proto::Environment::Test as i32,
            document_id: id.to_string(),
        }
    };
    let fk = &info.providers.iter().find(|p| p.id == "FK").unwrap().url;
    let pki = stack.dir().join("pki");
    let mut adapter = providers_sdk::connect(
        fk,
        "localhost",
        &info.relay.ca,
        &pki.join("relay.pem"),
        &pki.join("relay-key.pem"),
    )
    .unwrap();
    let reply = adapter.submit(submit(&r)).await.unwrap().into_inner();
    let Some(providers_sdk::proto::submit_reply::Outcome::Receipt(again)) = reply.outcome else {
        panic!("expected the original receipt: {reply:?}");
    };
    assert!(again.repeat);
    assert_eq!(again.receipt_id, first);
    let reply = adapter.submit(submit(&other)).await.unwrap().into_inner();
    let Some(providers_sdk::proto::submit_reply::Outcome::Error(e)) = reply.outcome else {
        panic!("expected a conflict: {reply:?}");
    };
    assert_eq!(
        e.kind,
        providers_sdk::proto::SubmitErrorKind::Conflict as i32
    );
    assert_eq!(sim_registrations(&stack).await, before + 1);

    // 4. Mandates: a report for an assistance company that did not appoint
    //    this vendor is refused; revoking the demo's mandate refuses its
    //    reports, granting it again lets them in.
    let foreign = String::from_utf8(report())
        .unwrap()
        .replace(ELT_ANORDNARE, "5566778899")
        .into_bytes();
    let outcome = paced(|| v.shs_report("test", &foreign)).await;
    let (code, text) = outcome.refused();
    assert_eq!(code, "MissingAgreement");
    assert!(text.contains("ELT-NO-MANDATE"), "{text}");
    let listed = admin_get(&stack, "/admin/elt/mandates").await;
    assert_eq!(listed[0]["vendor"], ELT_VENDOR);
    assert_eq!(listed[0]["anordnare"], ELT_ANORDNARE);
    let pair = format!("vendor={ELT_VENDOR}&anordnare={ELT_ANORDNARE}");
    admin(&stack, &format!("/admin/elt/revoke-mandate?{pair}")).await;
    let r = report();
    let outcome = paced(|| v.soap_report(&r)).await;
    let (detail, text) = outcome.refused();
    assert_eq!(detail, "PolicyError");
    assert!(text.starts_with("ELT-NO-MANDATE"), "{text}");
    admin(&stack, &format!("/admin/elt/grant-mandate?{pair}")).await;
    assert!(matches!(
        paced(|| v.soap_report(&r)).await,
        Outcome::TxId(_)
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = std::fs::read_to_string(&info.audit["file"]).unwrap();
    assert!(audit.contains("elt-revoke-mandate") && audit.contains("elt-grant-mandate"));

    // 5. A revoked signer: a signature error naming revocation.
    let revoked = load(&info.elt.revoked_signer.cert, &info.elt.revoked_signer.key);
    let r = report();
    let revoked_parts = parts(
        &[&r],
        &revoked.sign(&r).unwrap(),
        &v.anordnare.sign(&r).unwrap(),
    );
    let outcome = paced(|| v.shs("test", &revoked_parts)).await;
    let (code, text) = outcome.refused();
    assert_eq!(code, "IllegalDatapartContent");
    assert!(
        text.contains("ELT-SIGNATURE") && text.contains("revoked"),
        "{text}"
    );

    // 6. An OCSP response from the CA's responder is accepted; a forged one
    //    is refused.
    let responder = relay_elt::revocation::OcspResponder::from_pem(
        &std::fs::read(&info.elt.ocsp_responder.cert).unwrap(),
        &std::fs::read(&info.elt.ocsp_responder.key).unwrap(),
    )
    .unwrap();
    let assistant_cert = std::fs::read(
        &info
            .elt
            .signers
            .iter()
            .find(|s| s.role == "assistant")
            .unwrap()
            .cert,
    )
    .unwrap();
    let r = report();
    let (a, b) = v.signatures(&r);
    let now = chrono::Utc::now();
    let good = responder
        .respond(
            &std::fs::read(&info.elt.signing_ca).unwrap(),
            &assistant_cert,
            relay_elt::revocation::OcspStatus::Good,
            now,
            now + chrono::Duration::days(1),
        )
        .unwrap();
    let with_ocsp = |ocsp: Vec<u8>| {
        let mut block_a = block(a.clone());
        block_a.ocsp_response = Some(ocsp);
        soap::request_xml(&r, &block_a, &block(b.clone()))
    };
    let mut forged = good.clone();
    let last = forged.len() - 1;
    forged[last / 2] ^= 0x01;
    let outcome = paced(|| v.soap_raw(with_ocsp(forged.clone()))).await;
    let (detail, text) = outcome.refused();
    assert_eq!(detail, "SignatureValidationError");
    assert!(text.contains("OCSP"), "{text}");
    assert!(matches!(
        paced(|| v.soap_raw(with_ocsp(good.clone()))).await,
        Outcome::TxId(_)
    ));

    // 7. Months: a future month, and a row dated tomorrow, are refused; a
    //    report past its due date gets a receipt marked late.
    let this_month = String::from_utf8(report_of(0, uuid::Uuid::new_v4()))
        .unwrap()
        .into_bytes();
    let future = {
        let this_month = chrono::Utc::now().date_naive().with_day(1).unwrap();
        ExampleReport {
            insured: INSURED,
            assistant: ELT_ASSISTANT,
            anordnare: ELT_ANORDNARE,
            month: this_month + chrono::Months::new(1),
            id: uuid::Uuid::new_v4(),
        }
        .to_xml()
        .into_bytes()
    };
    let outcome = paced(|| v.shs_report("test", &future)).await;
    let (code, text) = outcome.refused();
    assert_eq!(code, "IllegalDatapartContent");
    assert!(
        text.contains("ELT-MONTH") && text.contains("has not begun"),
        "{text}"
    );
    let tomorrow = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .date_naive()
        + chrono::Days::new(1);
    if tomorrow.month() == chrono::Utc::now().date_naive().month() {
        let row_tomorrow = with_one_row_on(&this_month, tomorrow.day());
        let outcome = paced(|| v.shs_report("test", &row_tomorrow)).await;
        let text = outcome.refused().1;
        assert!(
            text.contains("ELT-MONTH") && text.contains("after the day the report arrived"),
            "{text}"
        );
    }
    let old = report_of(3, uuid::Uuid::new_v4());
    let Outcome::Receipt(late) = paced(|| v.shs_report("test", &old)).await else {
        panic!("a late report is accepted");
    };
    let late = late.late.expect("the receipt says it is late");
    let month = relay_elt::Report::parse(&old).unwrap().month;
    assert_eq!(late.due, relay_elt::calendar::due_date(month));
    assert!(late.payment_day > chrono::Utc::now().date_naive() - chrono::Days::new(1));
    assert!([5, 20].contains(&late.payment_day.day()));

    // 8. A CRL past its nextUpdate (loaded with a reload): ELT-CRL-EXPIRED.
    let ca_key = info.elt.signing_ca.with_file_name("elt-signing-ca-key.pem");
    let ca = DevCa::load(
        &std::fs::read_to_string(&info.elt.signing_ca).unwrap(),
        &std::fs::read_to_string(&ca_key).unwrap(),
    )
    .unwrap();
    let hour = Duration::from_secs(3600);
    let expired = ca
        .crl(
            &[],
            std::time::SystemTime::now() - 2 * hour,
            std::time::SystemTime::now() - hour,
        )
        .unwrap();
    let expired_path = stack.dir().join("expired-crl.pem");
    std::fs::write(&expired_path, expired).unwrap();
    let crl = info.elt.crl.display().to_string();
    let original = reload_with(&stack, |c| {
        c.replace(&crl, &expired_path.display().to_string())
    })
    .await;
    let r = report();
    let outcome = paced(|| v.soap_report(&r)).await;
    let (_, text) = outcome.refused();
    assert!(text.starts_with("ELT-CRL-EXPIRED"), "{text}");
    reload_with(&stack, |_| original.clone()).await;
    stack.stop().await;
}
