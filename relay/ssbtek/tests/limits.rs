//! Hostile questions, envelopes and LEFI requests: every bound of
//! [`ValidationLimits`] is refused with a document rule (`VALIDERINGSFEL` on
//! the wire), an element with hundreds of thousands of attributes costs
//! linear time, and no input panics (including the inputs the fuzzer found,
//! replayed from `fuzz/regressions/`).

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use relay_ssbtek::{
    EnvelopeError, Question, Rule, SoapCall, ValidationLimits, lefi, read_envelope,
};

const ROOT: &str = "<ssbt:hamtaBastjanstInformation ";

fn sundsvall() -> String {
    String::from_utf8(fixture("questions/sundsvall_all_slots.xml")).unwrap()
}

fn soap() -> String {
    String::from_utf8(fixture("questions/soap_csn_skv.xml")).unwrap()
}

fn rule_of(r: Result<Question, relay_ssbtek::QuestionError>, name: &str) -> Rule {
    match r {
        Err(e) => e.rule().clone(),
        Ok(_) => panic!("{name}: accepted"),
    }
}

#[test]
fn attribute_count_name_size_and_repeats_are_bounded_in_a_question() {
    let limits = ValidationLimits::default();
    let q = sundsvall();
    let attrs: String = (0..=limits.max_attributes)
        .map(|i| format!(" xmlns:p{i}=\"urn:p{i}\""))
        .collect();
    let many = q.replacen(ROOT, &format!("{}{attrs} ", ROOT.trim_end()), 1);
    assert_eq!(
        rule_of(Question::parse(many.as_bytes()), "attributes"),
        Rule::TooManyAttributes {
            limit: limits.max_attributes
        }
    );
    let long = "n".repeat(limits.max_name_bytes + 1);
    let long_attr = q.replacen(ROOT, &format!("{ROOT}{long}=\"v\" "), 1);
    assert_eq!(
        rule_of(Question::parse(long_attr.as_bytes()), "attribute name"),
        Rule::NameTooLong {
            limit: limits.max_name_bytes
        }
    );
    let long_el = q.replacen(
        "</ssbt:generellaFrageparametrar>",
        &format!("<{long}/></ssbt:generellaFrageparametrar>"),
        1,
    );
    assert_eq!(
        rule_of(Question::parse(long_el.as_bytes()), "element name"),
        Rule::NameTooLong {
            limit: limits.max_name_bytes
        }
    );
    // The same attribute under two prefixes bound to one namespace.
    let repeated = q.replacen(
        ROOT,
        &format!("{ROOT}xmlns:a=\"urn:x\" xmlns:b=\"urn:x\" a:v=\"1\" b:v=\"2\" "),
        1,
    );
    assert_eq!(
        rule_of(Question::parse(repeated.as_bytes()), "repeated"),
        Rule::RepeatedAttribute
    );
    for rule in [
        Rule::TooManyAttributes { limit: 1 },
        Rule::NameTooLong { limit: 1 },
        Rule::RepeatedAttribute,
    ] {
        assert_eq!(rule.kind(), relay_ssbtek::RuleKind::Document);
    }
}

#[test]
fn the_lefi_request_is_bounded_before_it_is_parsed() {
    let person = person();
    let limits = ValidationLimits::default();
    lefi::check_request(br#"{"personnummer":"191212121212"}"#, person, &limits).unwrap();
    let deep = format!(
        "{{\"a\":{}1{}}}",
        "[".repeat(limits.max_lefi_json_depth),
        "]".repeat(limits.max_lefi_json_depth)
    );
    assert_eq!(
        lefi::check_request(deep.as_bytes(), person, &limits),
        Err(Rule::LefiTooDeep {
            limit: limits.max_lefi_json_depth
        })
    );
    // serde_json's own recursion limit is far above ours; ours answers first
    // even for a nesting serde_json would refuse.
    let very_deep = "[".repeat(100_000);
    let roomy = ValidationLimits {
        max_lefi_json_bytes: usize::MAX,
        ..limits
    };
    assert_eq!(
        lefi::check_request(very_deep.as_bytes(), person, &roomy),
        Err(Rule::LefiTooDeep {
            limit: limits.max_lefi_json_depth
        })
    );
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(limits.max_lefi_json_bytes));
    assert_eq!(
        lefi::check_request(big.as_bytes(), person, &limits),
        Err(Rule::LefiTooLarge {
            limit: limits.max_lefi_json_bytes
        })
    );
    // Through the question: FK's lefiJsonFraga is checked with the same limits.
    let tight = ValidationLimits {
        max_lefi_json_depth: 1,
        ..limits
    };
    assert_eq!(
        rule_of(
            Question::parse_with(sundsvall().as_bytes(), &tight),
            "lefi in question"
        ),
        Rule::LefiTooDeep { limit: 1 }
    );
}

#[test]
fn the_envelope_names_its_operation_within_the_limits() {
    let limits = ValidationLimits::default();
    let env = soap();
    assert_eq!(read_envelope(env.as_bytes(), &limits), Ok(SoapCall::Hamta));
    let testa = env
        .replace("hamtaBastjanstInformation>", "testaBastjanstInformation>")
        .replace(
            "<v10:hamtaBastjanstInformation",
            "<v10:testaBastjanstInformation",
        );
    assert_eq!(
        read_envelope(testa.as_bytes(), &limits),
        Ok(SoapCall::Testa)
    );

    let v12 = env.replace(
        "http://schemas.xmlsoap.org/soap/envelope/",
        "http://www.w3.org/2003/05/soap-envelope",
    );
    assert!(matches!(
        read_envelope(v12.as_bytes(), &limits),
        Err(EnvelopeError::VersionMismatch(_))
    ));
    let must = env.replacen(
        "<wsa:MessageID ",
        "<wsa:MessageID soapenv:mustUnderstand=\"1\" ",
        1,
    );
    assert_eq!(
        read_envelope(must.as_bytes(), &limits),
        Err(EnvelopeError::MustUnderstand)
    );

    let header =
        |extra: &str| env.replacen("</soapenv:Header>", &format!("{extra}</soapenv:Header>"), 1);
    let attrs: String = (0..=limits.max_attributes)
        .map(|i| format!(" a{i}=\"v\""))
        .collect();
    let cases = [
        (
            "depth",
            header(&format!(
                "{}{}",
                "<x>".repeat(limits.max_depth),
                "</x>".repeat(limits.max_depth)
            )),
            "nested deeper",
        ),
        (
            "elements",
            header(&"<x/>".repeat(limits.max_elements)),
            "elements",
        ),
        ("attributes", header(&format!("<x{attrs}/>")), "attributes"),
        (
            "name",
            header(&format!("<{}/>", "n".repeat(limits.max_name_bytes + 1))),
            "name longer",
        ),
        (
            "size",
            header(&" ".repeat(limits.max_document_bytes)),
            "larger than",
        ),
        (
            "operation",
            env.replace("hamtaBastjanstInformation", "annanFraga"),
            "unknown operation",
        ),
    ];
    for (name, doc, expected) in cases {
        match read_envelope(doc.as_bytes(), &limits) {
            Err(EnvelopeError::Invalid(m)) => assert!(m.contains(expected), "{name}: {m}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// The finding's shape on the SSBTEK way in: hundreds of thousands of
/// attributes on one element of the envelope and of the question.
#[test]
fn two_hundred_thousand_attributes_are_refused_in_linear_time() {
    let attrs: String = (0..200_000)
        .map(|i| format!(" a{i}=\"vvvvvvvvvvvvvvvv\""))
        .collect();
    let env = soap().replacen("<soapenv:Body>", &format!("<soapenv:Body{attrs}>"), 1);
    assert!(env.len() > 5_000_000);
    let roomy = ValidationLimits {
        max_document_bytes: 10 * 1024 * 1024,
        ..ValidationLimits::default()
    };
    let started = Instant::now();
    match read_envelope(env.as_bytes(), &ValidationLimits::default()) {
        Err(EnvelopeError::Invalid(m)) => assert!(m.contains("larger than"), "{m}"),
        other => panic!("{other:?}"),
    }
    match read_envelope(env.as_bytes(), &roomy) {
        Err(EnvelopeError::Invalid(m)) => assert!(m.contains("attributes"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rule_of(Question::parse_element(env.as_bytes(), &roomy), "question"),
        Rule::TooManyAttributes {
            limit: roomy.max_attributes
        }
    );
    // Without an attribute bound every name goes through a set once.
    let unbounded = ValidationLimits {
        max_attributes: usize::MAX,
        ..roomy
    };
    let repeated = env.replacen(" a0=\"", " a0=\"x\" a199999=\"", 1);
    assert!(Question::parse_element(repeated.as_bytes(), &unbounded).is_err());
    assert_eq!(
        read_envelope(env.as_bytes(), &unbounded),
        Ok(SoapCall::Hamta)
    );
    let took = started.elapsed();
    eprintln!("200 000 attributes, five reads: {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// Every input the fuzzer found (`fuzz/regressions/ssbtek_*/`) is read again
/// here, so CI replays them without fuzzing: none may panic.
#[test]
fn fuzz_regression_inputs_do_not_panic() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/regressions");
    let limits = ValidationLimits::default();
    for target in ["ssbtek_question", "ssbtek_envelope", "ssbtek_lefi"] {
        let Ok(dir) = std::fs::read_dir(format!("{root}/{target}")) else {
            continue;
        };
        for entry in dir {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            match target {
                "ssbtek_question" => {
                    let _ = Question::parse(&data);
                }
                "ssbtek_envelope" => {
                    let _ = read_envelope(&data, &limits);
                    let _ = Question::parse_element(&data, &limits);
                }
                _ => {
                    let _ = lefi::check_request(&data, person(), &limits);
                }
            }
        }
    }
}
