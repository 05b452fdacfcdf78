//! The report format against its XSD (cross-checked with xmllint), the domain
//! rules, detached CMS signatures, and the SOAP shapes against the WSDL's schema.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::path::Path;
use std::process::Command;

use chrono::{NaiveDate, Utc};
use relay_elt::example::ExampleReport;
use relay_elt::report::{Report, ReportError, count_reports};
use relay_elt::soap::{self, FaultKind, SignatureBlock};
use relay_elt::{Receipt, Signer, TrustAnchors};
use relay_pki::{DevCa, Subject};

const INSURED: &str = "191212121212";
const ASSISTANT: &str = "190308189802";
const ANORDNARE: &str = "5566778899";

fn example() -> String {
    ExampleReport {
        insured: INSURED,
        assistant: ASSISTANT,
        anordnare: ANORDNARE,
        month: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        id: uuid::Uuid::parse_str("0b5c7f3e-2f4a-4c1e-9d2b-3a4e5f607182").unwrap(),
    }
    .to_xml()
}

fn schema_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/schema"))
}

/// xmllint's verdict: Ok(()) when valid.
fn xmllint(schema: &Path, doc: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.xml");
    std::fs::write(&file, doc).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(schema)
        .arg(&file)
        .output()
        .expect("xmllint (Debian libxml2-utils) must be installed");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn the_example_report_is_valid_against_the_xsd_and_every_rule() {
    let xml = example();
    xmllint(&schema_dir().join("tidredovisning_1.xsd"), xml.as_bytes()).unwrap();
    let report = Report::parse(xml.as_bytes()).unwrap();
    assert_eq!(report.insured.as_str(), INSURED);
    assert_eq!(report.assistant.as_str(), ASSISTANT);
    assert_eq!(report.anordnare.as_str(), ANORDNARE);
    assert_eq!(report.month, NaiveDate::from_ymd_opt(2026, 10, 1).unwrap());
    // October 2026: 22 weekdays of 7 h active + 1 h waiting, 5 Saturdays of 4 h on call.
    assert_eq!(report.totals(), (22 * 7 * 60, 22 * 60, 5 * 4 * 60));
}

/// The reader and the XSD agree: every mutation that xmllint refuses, the reader
/// refuses as malformed or schema-invalid, and the other way round.
#[test]
fn the_reader_accepts_exactly_what_the_xsd_accepts() {
    let base = example();
    let xsd = schema_dir().join("tidredovisning_1.xsd");
    let swap = |a: &str, b: &str| {
        assert!(base.contains(a), "{a}");
        base.replacen(a, b, 1)
    };
    let cases: Vec<(&str, String)> = vec![
        ("unchanged", base.clone()),
        ("id not a uuid", swap("0b5c7f3e-2f4a", "0b5c7f3e-2f4x")),
        ("month 13", swap(">2026-10<", ">2026-13<")),
        ("month without dash", swap(">2026-10<", ">202610<")),
        ("pnr 10 digits", swap(">191212121212<", ">1212121212<")),
        ("pnr with dash", swap(">191212121212<", ">19121212-1212<")),
        ("pnr with blank", swap(">191212121212<", "> 191212121212<")),
        (
            "elements out of order",
            swap(
                "<tr:fornamn>Tolvan</tr:fornamn><tr:efternamn>Tolvansson</tr:efternamn>",
                "<tr:efternamn>Tolvansson</tr:efternamn><tr:fornamn>Tolvan</tr:fornamn>",
            ),
        ),
        (
            "missing element",
            swap("<tr:kollektivavtal>true</tr:kollektivavtal>", ""),
        ),
        (
            "bad boolean",
            swap("<tr:kollektivavtal>true<", "<tr:kollektivavtal>TRUE<"),
        ),
        (
            "boolean with blanks",
            swap("<tr:kollektivavtal>true<", "<tr:kollektivavtal> true <"),
        ),
        (
            "boolean 1",
            swap("<tr:kollektivavtal>true<", "<tr:kollektivavtal>1<"),
        ),
        (
            "unknown element",
            swap("<tr:tidrapport>", "<tr:extra>x</tr:extra><tr:tidrapport>"),
        ),
        (
            "wrong namespace",
            swap("<tr:id>", "<id xmlns=\"urn:other\">").replacen("</tr:id>", "</id>", 1),
        ),
        ("attribute", swap("<tr:id>", "<tr:id kind=\"x\">")),
        (
            "bad date",
            swap("<tr:fromDag>2026-10-01<", "<tr:fromDag>2026-10-32<"),
        ),
        (
            "date with zone",
            swap("<tr:fromDag>2026-10-01<", "<tr:fromDag>2026-10-01Z<"),
        ),
        ("time 25.00", swap("<tr:tomTid>12.00<", "<tr:tomTid>25.00<")),
        ("time 24.00", swap("<tr:tomTid>24.00<", "<tr:tomTid>24.00<")),
        ("time 8.60", swap("<tr:fromTid>8.00<", "<tr:fromTid>8.60<")),
        (
            "time with colon",
            swap("<tr:fromTid>8.00<", "<tr:fromTid>8:00<"),
        ),
        ("day 1 digit", swap("<tr:dag>01<", "<tr:dag>1<")),
        ("day 32", swap("<tr:dag>01<", "<tr:dag>32<")),
        ("empty tidrapport", {
            let start = base.find("<tr:tidrapport>").unwrap() + "<tr:tidrapport>".len();
            let end = base.find("</tr:tidrapport>").unwrap();
            format!("{}{}", &base[..start], &base[end..])
        }),
        ("empty name", swap("<tr:fornamn>Tolvan<", "<tr:fornamn><")),
        ("orgnr 12 digits", swap(">5566778899<", ">165566778899<")),
        (
            "phone letters",
            swap(
                ">08-123 456 78</tr:telefonnummer>",
                ">call me</tr:telefonnummer>",
            ),
        ),
        (
            "annanArbetsgivare present",
            swap(
                "<tr:assistentEgenForetagare>",
                "<tr:annanArbetsgivare><tr:arbetsgivareNamn>Annan AB</tr:arbetsgivareNamn><tr:organisationsnummer>2021005489</tr:organisationsnummer></tr:annanArbetsgivare><tr:assistentEgenForetagare>",
            ),
        ),
        (
            "samordningsnummer element",
            swap(
                "<tr:personnummer>190308189802</tr:personnummer>",
                "<tr:samordningsnummer>190308189802</tr:samordningsnummer>",
            ),
        ),
        (
            "text in complex element",
            swap("<tr:assistent>", "<tr:assistent>text"),
        ),
        (
            "wrong root",
            swap("<tr:Tidredovisning ", "<tr:Tidredovisningar ")
                .replace("</tr:Tidredovisning>", "</tr:Tidredovisningar>"),
        ),
    ];
    for (name, doc) in cases {
        let xsd_ok = xmllint(&xsd, doc.as_bytes()).is_ok();
        let ours = Report::parse(doc.as_bytes());
        let reader_ok = !matches!(
            ours,
            Err(ReportError::Malformed(_) | ReportError::Schema(_))
        );
        assert_eq!(
            reader_ok, xsd_ok,
            "{name}: reader said {ours:?}, xmllint said valid={xsd_ok}"
        );
    }
}

#[test]
fn domain_rules_are_enforced_with_texts_that_name_no_values() {
    let base = example();
    let swap = |a: &str, b: &str| {
        assert!(base.contains(a), "{a}");
        base.replacen(a, b, 1)
    };
    let cases = [
        (
            "overlap",
            swap(
                "<tr:tomTid>12.00</tr:tomTid>",
                "<tr:tomTid>12.30</tr:tomTid>",
            ),
            "overlap",
        ),
        (
            "from after to",
            swap(
                "<tr:fromTid>8.00</tr:fromTid><tr:tomTid>12.00</tr:tomTid>",
                "<tr:fromTid>12.00</tr:fromTid><tr:tomTid>8.00</tr:tomTid>",
            ),
            "before tomTid",
        ),
        (
            "row outside month",
            swap("<tr:dag>01<", "<tr:dag>31<").replacen(
                "<tr:tomDag>2026-10-31<",
                "<tr:tomDag>2026-10-30<",
                1,
            ),
            "outside berakningsperiod",
        ),
        (
            "day 31 in a 30-day month",
            base.replace("2026-10", "2026-11")
                .replace("2026-11-31", "2026-11-30"),
            "",
        ),
        (
            "period outside month",
            swap("<tr:tomDag>2026-10-31<", "<tr:tomDag>2026-11-01<"),
            "inside redovisningsmanad",
        ),
        (
            "bad check digit",
            swap(">191212121212<", ">191212121213<"),
            "not a valid personnummer",
        ),
        (
            "bad orgnr",
            swap(">5566778899<", ">5566778898<"),
            "not a valid organisationsnummer",
        ),
        (
            "two kinds",
            swap(
                "<tr:vanteTid>false</tr:vanteTid>",
                "<tr:vanteTid>true</tr:vanteTid>",
            ),
            "exactly one",
        ),
        (
            "assistant is insured",
            swap(">190308189802<", ">191212121212<"),
            "cannot be the person",
        ),
        (
            "samordningsnummer as personnummer",
            swap(">190308189802<", ">202601622380<"),
            "samordningsnummer, not a personnummer",
        ),
    ];
    for (name, doc, expected) in cases {
        match Report::parse(doc.as_bytes()) {
            Err(ReportError::Rule(m)) => {
                assert!(m.contains(expected), "{name}: {m}");
                for value in [INSURED, ASSISTANT, "191212121213", "Tolvan"] {
                    assert!(!m.contains(value), "{name}: {m}");
                }
            }
            other => panic!("{name}: expected a rule error, got {other:?}"),
        }
    }
}

#[test]
fn a_batch_document_and_junk_are_refused() {
    let one = example();
    let body = one.split_once("?>").unwrap().1;
    let batch =
        format!("<b:Tidredovisningar xmlns:b=\"urn:batch\">{body}{body}</b:Tidredovisningar>");
    assert_eq!(count_reports(batch.as_bytes()), Some(2));
    assert!(matches!(
        Report::parse(batch.as_bytes()),
        Err(ReportError::Batch(_))
    ));
    for junk in [
        &b"not xml"[..],
        b"<a><b></a>",
        b"<!DOCTYPE x [<!ENTITY e \"x\">]><x>&e;</x>",
        b"\xff\xfe",
    ] {
        assert!(
            matches!(Report::parse(junk), Err(ReportError::Malformed(_))),
            "{junk:?}"
        );
    }
    let big = vec![b' '; 2 * 1024 * 1024];
    assert!(matches!(Report::parse(&big), Err(ReportError::TooLarge(_))));
}

struct Pki {
    ca: DevCa,
    assistant: Signer,
    anordnare: Signer,
}

fn pki() -> Pki {
    let ca = DevCa::new("ELT signing CA").unwrap();
    let signer = |serial: &str, cn: &str| {
        let c = ca
            .signing_cert(&Subject {
                serial_number: Some(serial),
                organisation: None,
                common_name: cn,
            })
            .unwrap();
        Signer::from_pem(c.cert_pem.as_bytes(), c.key_pem.as_bytes()).unwrap()
    };
    Pki {
        assistant: signer(ASSISTANT, "Assistent Testsson"),
        anordnare: signer(ANORDNARE, "Exempel Assistans AB"),
        ca,
    }
}

#[test]
fn detached_signatures_verify_over_the_exact_bytes_and_chain_to_the_anchor() {
    let p = pki();
    let anchors = TrustAnchors::from_pem(p.ca.cert_pem().as_bytes()).unwrap();
    let report = example().into_bytes();
    let sig = p.assistant.sign(&report).unwrap();
    let ok = relay_elt::signature::verify(&sig, &report, &anchors, Utc::now()).unwrap();
    assert_eq!(ok.serial_number.as_deref(), Some(ASSISTANT));
    assert!((Utc::now() - ok.signing_time).num_seconds().abs() < 300);
    let sig2 = p.anordnare.sign(&report).unwrap();
    let ok2 = relay_elt::signature::verify(&sig2, &report, &anchors, Utc::now()).unwrap();
    assert_eq!(ok2.serial_number.as_deref(), Some(ANORDNARE));

    // One byte changed in the report.
    let mut tampered = report.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    let e = relay_elt::signature::verify(&sig, &tampered, &anchors, Utc::now()).unwrap_err();
    assert!(e.0.contains("exact bytes"), "{e}");

    // A signer from another CA.
    let other = pki();
    let foreign = other.assistant.sign(&report).unwrap();
    let e = relay_elt::signature::verify(&foreign, &report, &anchors, Utc::now()).unwrap_err();
    assert!(e.0.contains("not trusted"), "{e}");

    // A signing time in the future of the verifier's clock.
    let e = relay_elt::signature::verify(
        &sig,
        &report,
        &anchors,
        Utc::now() - chrono::Duration::hours(1),
    )
    .unwrap_err();
    assert!(e.0.contains("future"), "{e}");

    // Not a signature at all, and a truncated one.
    assert!(relay_elt::signature::verify(b"junk", &report, &anchors, Utc::now()).is_err());
    assert!(
        relay_elt::signature::verify(&sig[..sig.len() / 2], &report, &anchors, Utc::now()).is_err()
    );
}

/// A SkickaTidredovisning envelope for `report`, signed by the two signers.
fn signed_request(p: &Pki, report: &[u8]) -> String {
    let block = |s: &Signer| SignatureBlock {
        signature: s.sign(report).unwrap(),
        ocsp_response: None,
        datum_for_signatur: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
    };
    String::from_utf8(soap::request_xml(
        report,
        &block(&p.assistant),
        &block(&p.anordnare),
    ))
    .unwrap()
}

fn body_of(envelope: &[u8]) -> String {
    let text = String::from_utf8(envelope.to_vec()).unwrap();
    let start = text.find("<soap:Body>").unwrap() + "<soap:Body>".len();
    let end = text.find("</soap:Body>").unwrap();
    text[start..end].to_owned()
}

#[test]
fn soap_request_response_and_faults_follow_the_wsdl_schema() {
    let p = pki();
    let report = example().into_bytes();
    let date = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    let block = |s: &Signer| SignatureBlock {
        signature: s.sign(&report).unwrap(),
        ocsp_response: None,
        datum_for_signatur: date,
    };
    let envelope = soap::request_xml(&report, &block(&p.assistant), &block(&p.anordnare));
    let wsdl_dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/wsdl"));
    let xsd = wsdl_dir.join("SkickaTidredovisningResponder_1.0.xsd");
    xmllint(&xsd, body_of(&envelope).as_bytes()).unwrap();
    let request = soap::parse_request(&envelope).unwrap();
    assert_eq!(&request.tidredovisning[..], &report[..]);
    assert_eq!(request.content_type.as_deref(), Some("text/xml"));
    assert_eq!(request.anordnare.datum_for_signatur, date);

    let receipt = Receipt {
        tx_id: "5b1f0c1e-0000-4000-8000-000000000001".into(),
        report_id: "0b5c7f3e-2f4a-4c1e-9d2b-3a4e5f607182".into(),
        received_at: "2026-11-30T10:00:00Z".into(),
        sha256: relay_elt::sha256_hex(b"report"),
        repeat: true,
        late: None,
    };
    let response = soap::response_xml(&receipt);
    xmllint(&xsd, body_of(&response).as_bytes()).unwrap();
    assert_eq!(
        soap::parse_response(&response),
        Some(soap::Response::TxId(
            "5b1f0c1e-0000-4000-8000-000000000001".into()
        ))
    );
    assert_eq!(soap::receipt_of_response(&response), Some(receipt));
    for (kind, detail) in [
        (FaultKind::XmlValidation, "XmlValidationError"),
        (FaultKind::SignatureValidation, "SignatureValidationError"),
    ] {
        let fault = soap::fault_xml(&kind, "what went wrong");
        let text = String::from_utf8(fault.clone()).unwrap();
        let start = text.find("<detail>").unwrap() + "<detail>".len();
        let end = text.find("</detail>").unwrap();
        xmllint(&xsd, &text.as_bytes()[start..end]).unwrap();
        match soap::parse_response(&fault) {
            Some(soap::Response::Fault {
                detail: d,
                message,
                faultcode,
                ..
            }) => {
                assert_eq!(d, detail);
                assert_eq!(message, "what went wrong");
                assert_eq!(faultcode, "soap:Client");
            }
            other => panic!("{other:?}"),
        }
    }

    // Two reports in one call.
    let text = String::from_utf8(envelope).unwrap();
    let i = text.find("<assistent-signatur>").unwrap();
    let j = text.find("<tidredovisning").unwrap();
    let twice = format!("{}{}{}", &text[..i], &text[j..i], &text[i..]);
    assert!(matches!(
        soap::parse_request(twice.as_bytes()),
        Err(soap::RequestError::MoreThanOneReport)
    ));
    // SOAP 1.2 and mustUnderstand.
    let v12 = text.replace(soap::SOAP11, "http://www.w3.org/2003/05/soap-envelope");
    assert!(matches!(
        soap::parse_request(v12.as_bytes()),
        Err(soap::RequestError::VersionMismatch(_))
    ));
    let must = text.replace(
        "<soap:Body>",
        "<soap:Header><x:h xmlns:x=\"urn:x\" soap:mustUnderstand=\"1\"/></soap:Header><soap:Body>",
    );
    assert!(matches!(
        soap::parse_request(must.as_bytes()),
        Err(soap::RequestError::MustUnderstand)
    ));
    let no_sig = text.replacen("<anordnare-signatur>", "<x>", 1);
    assert!(matches!(
        soap::parse_request(no_sig.as_bytes()),
        Err(soap::RequestError::Xml(_))
    ));
}

#[test]
fn the_receipt_is_valid_against_its_schema_and_reads_back() {
    let receipt = Receipt {
        tx_id: "5b1f0c1e-0000-4000-8000-000000000001".into(),
        report_id: "0b5c7f3e-2f4a-4c1e-9d2b-3a4e5f607182".into(),
        received_at: "2026-11-30T10:00:00Z".into(),
        sha256: relay_elt::sha256_hex(b"report"),
        repeat: false,
        late: None,
    };
    let late = Receipt {
        repeat: true,
        late: Some(relay_elt::receipt::Late {
            due: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(),
            payment_day: NaiveDate::from_ymd_opt(2026, 12, 20).unwrap(),
        }),
        ..receipt.clone()
    };
    for receipt in [receipt, late] {
        let xml = receipt.to_xml();
        xmllint(
            &schema_dir().join("mottagningsbekraftelse_1.xsd"),
            xml.as_bytes(),
        )
        .unwrap();
        assert_eq!(Receipt::parse(xml.as_bytes()), Some(receipt));
    }
}

#[test]
fn signatures_written_as_pem_or_base64_text_are_read_as_their_der() {
    use base64::Engine;
    let p = pki();
    let anchors = TrustAnchors::from_pem(p.ca.cert_pem().as_bytes()).unwrap();
    let report = example().into_bytes();
    let der = p.assistant.sign(&report).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let pem = format!("-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n", b64);
    for form in [der.clone(), b64.into_bytes(), pem.into_bytes()] {
        let normalised = relay_elt::signature::der_of(&form);
        assert_eq!(&normalised[..], &der[..]);
        relay_elt::signature::verify(&normalised, &report, &anchors, Utc::now()).unwrap();
    }
    assert_eq!(&relay_elt::signature::der_of(b"junk")[..], b"junk");
}

#[test]
fn soap_children_qualified_with_the_service_namespace_are_accepted() {
    let p = pki();
    let report = example().into_bytes();
    let text = signed_request(&p, &report);
    let mut qualified = text.clone();
    for name in [
        "tidredovisning",
        "assistent-signatur",
        "anordnare-signatur",
        "signature",
        "datumForSignatur",
    ] {
        qualified = qualified
            .replace(&format!("<{name}>"), &format!("<ns:{name}>"))
            .replace(&format!("<{name} "), &format!("<ns:{name} "))
            .replace(&format!("</{name}>"), &format!("</ns:{name}>"));
    }
    assert_ne!(qualified, text);
    let request = soap::parse_request(qualified.as_bytes()).unwrap();
    assert_eq!(&request.tidredovisning[..], &report[..]);
}

#[test]
fn an_iso_8859_1_envelope_is_read_and_the_report_keeps_its_exact_bytes() {
    let p = pki();
    let report = example().into_bytes();
    let text = signed_request(&p, &report)
        .replacen("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"", 1)
        .replacen("<soap:Body>", "<!-- Förfrågan --><soap:Body>", 1);
    let latin1: Vec<u8> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    assert!(std::str::from_utf8(&latin1).is_err(), "really ISO-8859-1");
    let request = soap::parse_request(&latin1).unwrap();
    assert_eq!(&request.tidredovisning[..], &report[..]);
}

#[test]
fn the_report_id_is_read_from_a_report_that_breaks_the_schema() {
    let xml = example().replacen("<tr:kollektivavtal>true</tr:kollektivavtal>", "", 1);
    assert!(Report::parse(xml.as_bytes()).is_err());
    assert_eq!(
        relay_elt::report::id_of(xml.as_bytes()).map(|u| u.to_string()),
        Some("0b5c7f3e-2f4a-4c1e-9d2b-3a4e5f607182".into())
    );
    assert_eq!(relay_elt::report::id_of(b"<not-xml"), None);
    assert_eq!(relay_elt::report::id_of(b"<Other><id>x</id></Other>"), None);
}

#[test]
fn a_report_naming_a_published_test_person_is_test_data() {
    // The example's persons are Skatteverket's test persons; the others are the
    // well-known documentation examples 811218-9876 and 640823-3234.
    assert!(
        Report::parse(example().as_bytes())
            .unwrap()
            .names_test_person()
    );
    let real = ExampleReport {
        insured: "198112189876",
        assistant: "196408233234",
        anordnare: ANORDNARE,
        month: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        id: uuid::Uuid::new_v4(),
    }
    .to_xml();
    let report = Report::parse(real.as_bytes()).unwrap();
    assert!(!report.names_test_person());
}
