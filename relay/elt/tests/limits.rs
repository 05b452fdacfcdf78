//! Hostile documents against the ELT reader: every bound of [`XmlLimits`] is
//! refused (an XML validation error on either way in), an element with
//! hundreds of thousands of attributes costs linear time, and no input panics
//! (including the inputs the fuzzer found, replayed from `fuzz/regressions/`).

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use relay_elt::XmlLimits;
use relay_elt::example::ExampleReport;
use relay_elt::report::{Report, ReportError, count_reports_within};
use relay_elt::soap::{self, RequestError, SignatureBlock};

fn example() -> String {
    ExampleReport {
        insured: "191212121212",
        assistant: "190308189802",
        anordnare: "5566778899",
        month: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        id: uuid::Uuid::nil(),
    }
    .to_xml()
}

fn block() -> SignatureBlock {
    SignatureBlock {
        signature: vec![0x30, 0x03, 0x02, 0x01, 0x01],
        ocsp_response: None,
        datum_for_signatur: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
    }
}

fn envelope() -> String {
    String::from_utf8(soap::request_xml(example().as_bytes(), &block(), &block())).unwrap()
}

/// The report with `attrs` on its root element and `extra` as its last child.
fn report_with(attrs: &str, extra: &str) -> String {
    let doc = example();
    let root_end = doc.find("<tr:Tidredovisning ").unwrap() + "<tr:Tidredovisning".len();
    let close = doc.rfind("</tr:Tidredovisning>").unwrap();
    format!(
        "{}{attrs}{}{extra}{}",
        &doc[..root_end],
        &doc[root_end..close],
        &doc[close..]
    )
}

fn over_limit(r: Result<Report, ReportError>, name: &str, expected: &str) {
    match r {
        Err(ReportError::OverLimit(m)) => assert!(m.contains(expected), "{name}: {m}"),
        Err(other) => panic!("{name}: expected an over-limit error, got {other}"),
        Ok(_) => panic!("{name}: accepted"),
    }
}

#[test]
fn the_base_documents_are_valid() {
    Report::parse(report_with("", "").as_bytes()).unwrap();
    soap::parse_request(envelope().as_bytes()).unwrap();
}

#[test]
fn every_report_limit_is_refused_before_the_schema_is_looked_at() {
    let limits = relay_elt::REPORT_LIMITS;
    let wide = XmlLimits {
        max_bytes: usize::MAX,
        ..limits
    };
    let deep = format!(
        "{}{}",
        "<x>".repeat(limits.max_depth),
        "</x>".repeat(limits.max_depth)
    );
    let many = "<x/>".repeat(limits.max_elements);
    let attrs: String = (0..=limits.max_attributes)
        .map(|i| format!(" a{i}=\"v\""))
        .collect();
    let long_name = format!("<{}/>", "n".repeat(limits.max_name_bytes + 1));
    let long_attr = format!(" {}=\"v\"", "n".repeat(limits.max_name_bytes + 1));
    let long_text = format!("<x>{}</x>", "t".repeat(limits.max_text_bytes + 1));
    let long_refs = format!("<x>{}</x>", "&#65;".repeat(limits.max_text_bytes + 1));
    let long_value = format!(" v=\"{}\"", "t".repeat(limits.max_text_bytes + 1));
    let cases = [
        ("depth", report_with("", &deep), "nested deeper"),
        ("elements", report_with("", &many), "elements"),
        ("attributes", report_with(&attrs, ""), "attributes"),
        ("element name", report_with("", &long_name), "name longer"),
        ("attribute name", report_with(&long_attr, ""), "name longer"),
        ("text", report_with("", &long_text), "text longer"),
        (
            "text from references",
            report_with("", &long_refs),
            "text longer",
        ),
        (
            "attribute value",
            report_with(&long_value, ""),
            "value longer",
        ),
    ];
    for (name, doc, expected) in cases {
        over_limit(Report::parse_within(doc.as_bytes(), &wide), name, expected);
        assert_eq!(count_reports_within(doc.as_bytes(), &wide), None, "{name}");
    }
    let big = report_with("", &" ".repeat(limits.max_bytes));
    assert!(matches!(
        Report::parse(big.as_bytes()),
        Err(ReportError::TooLarge(_))
    ));
    assert_eq!(
        count_reports_within(big.as_bytes(), &relay_elt::REPORT_LIMITS),
        None
    );
}

#[test]
fn an_attribute_repeated_under_two_prefixes_is_refused() {
    let doc = report_with(
        " xmlns:p=\"urn:x\" xmlns:q=\"urn:x\" p:a=\"1\" q:a=\"2\"",
        "",
    );
    match Report::parse(doc.as_bytes()) {
        Err(ReportError::Malformed(m)) => assert!(m.contains("repeated"), "{m}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn every_envelope_limit_is_an_xml_validation_error() {
    let limits = relay_elt::envelope_limits(relay_elt::report::DEFAULT_MAX_REPORT_BYTES);
    let base = envelope();
    let with_header = |header: &str| {
        base.replacen(
            "<soap:Body>",
            &format!("<soap:Header>{header}</soap:Header><soap:Body>"),
            1,
        )
    };
    let deep = format!(
        "{}{}",
        "<x>".repeat(limits.max_depth),
        "</x>".repeat(limits.max_depth)
    );
    let attrs: String = (0..=limits.max_attributes)
        .map(|i| format!(" a{i}=\"v\""))
        .collect();
    let cases = [
        ("depth", with_header(&deep), "nested deeper"),
        (
            "elements",
            with_header(&"<x/>".repeat(limits.max_elements)),
            "elements",
        ),
        (
            "attributes",
            with_header(&format!("<x{attrs}/>")),
            "attributes",
        ),
        (
            "text",
            with_header(&format!("<x>{}</x>", "t".repeat(limits.max_text_bytes + 1))),
            "text longer",
        ),
        (
            "size",
            with_header(&" ".repeat(limits.max_bytes)),
            "larger than",
        ),
    ];
    for (name, doc, expected) in cases {
        match soap::parse_request(doc.as_bytes()) {
            Err(RequestError::Xml(m)) => assert!(m.contains(expected), "{name}: {m}"),
            Err(other) => panic!("{name}: {other:?}"),
            Ok(_) => panic!("{name}: accepted"),
        }
    }
    // A larger configured report widens the envelope with it.
    let big_report = " ".repeat(2 * 1024 * 1024);
    let big =
        String::from_utf8(soap::request_xml(big_report.as_bytes(), &block(), &block())).unwrap();
    assert!(matches!(
        soap::parse_request(big.as_bytes()),
        Err(RequestError::Xml(_))
    ));
    soap::parse_request_within(big.as_bytes(), &relay_elt::envelope_limits(3 * 1024 * 1024))
        .unwrap();
}

/// The request of the finding: a 5 MB SOAP body with 200 000 attributes on
/// one element kept the relay busy for 67 s of CPU.
#[test]
fn two_hundred_thousand_attributes_on_one_element_are_refused_in_linear_time() {
    let attrs: String = (0..200_000)
        .map(|i| format!(" a{i}=\"vvvvvvvvvvvvvvvv\""))
        .collect();
    let body = envelope().replacen("<tidredovisning ", &format!("<tidredovisning{attrs} "), 1);
    assert!(body.len() > 5_000_000, "{}", body.len());
    let started = Instant::now();
    let phase = Instant::now();
    // By default: refused on its size alone.
    match soap::parse_request(body.as_bytes()) {
        Err(RequestError::Xml(m)) => assert!(m.contains("larger than"), "{m}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("accepted"),
    }
    eprintln!("refused on size: {:?}", phase.elapsed());
    let phase = Instant::now();
    // With room for the size: refused at the 33rd attribute.
    let roomy = XmlLimits {
        max_bytes: 10 * 1024 * 1024,
        ..relay_elt::envelope_limits(relay_elt::report::DEFAULT_MAX_REPORT_BYTES)
    };
    match soap::parse_request_within(body.as_bytes(), &roomy) {
        Err(RequestError::Xml(m)) => assert!(m.contains("attributes"), "{m}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("accepted"),
    }
    eprintln!("refused at the attribute bound: {:?}", phase.elapsed());
    let phase = Instant::now();
    // Without an attribute bound every expanded name goes through a set once:
    // a repeat at the very end is still found, in linear time.
    let repeated = body.replacen(" a0=\"", " a0=\"x\" a199999=\"", 1);
    let unbounded = XmlLimits {
        max_attributes: usize::MAX,
        ..roomy
    };
    assert!(matches!(
        soap::parse_request_within(repeated.as_bytes(), &unbounded),
        Err(RequestError::Xml(_))
    ));
    match soap::parse_request_within(body.as_bytes(), &unbounded) {
        Err(RequestError::Xml(m)) => assert!(m.contains("not allowed"), "{m}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("accepted"),
    }
    eprintln!(
        "all 200 000 attributes read twice, unbounded: {:?}",
        phase.elapsed()
    );
    // Well under a second in release and in this debug build with optimised
    // dependencies; the bound is generous for a loaded 2-core machine.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// Every input the fuzzer found (`fuzz/regressions/elt_*/`) is read again
/// here, so CI replays them without fuzzing: none may panic.
#[test]
fn fuzz_regression_inputs_do_not_panic() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/regressions");
    for target in ["elt_report", "elt_envelope"] {
        let Ok(dir) = std::fs::read_dir(format!("{root}/{target}")) else {
            continue;
        };
        for entry in dir {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if target == "elt_report" {
                let _ = Report::parse(&data);
                let _ = relay_elt::report::count_reports(&data);
                let _ = relay_elt::Receipt::parse(&data);
            } else {
                let _ = soap::parse_request(&data);
                let _ = soap::parse_response(&data);
            }
        }
    }
}
