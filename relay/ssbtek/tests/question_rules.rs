//! Every validation rule has an input that breaks it, and no refusal ever
//! repeats the person's number or any other value from the question.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod common;

use common::*;
use relay_ident::IdentError;
use relay_ssbtek::{Fault, Question, QuestionError, Rule, RuleKind, ValidationLimits};

fn base() -> String {
    String::from_utf8(fixture("questions/sundsvall_all_slots.xml")).unwrap()
}

fn replaced(from: &str, to: &str) -> String {
    let doc = base();
    assert!(doc.contains(from), "fixture lacks {from}");
    doc.replacen(from, to, 1)
}

/// Parses `doc`, expects a refusal, and checks the refusal leaks nothing.
fn refused(doc: &str) -> QuestionError {
    refused_with(doc, &ValidationLimits::default())
}

fn refused_with(doc: &str, limits: &ValidationLimits) -> QuestionError {
    let e = Question::parse_with(doc.as_bytes(), limits).expect_err("should be refused");
    assert_no_leak(&e);
    e
}

fn assert_no_leak(e: &QuestionError) {
    let fault = Fault::from(e);
    let texts = [
        e.to_string(),
        e.swedish(),
        format!("{e:?}"),
        fault.felmeddelande().join(" | "),
    ];
    for t in texts {
        for secret in [
            PERSON,
            PERSON_SHORT,
            "191212121213",
            "19121212121",
            "HL000001",
            "AID00000001",
            "Tolvan",
        ] {
            assert!(!t.contains(secret), "{t:?} leaks {secret}");
        }
    }
}

fn assert_refusal(doc: &str, field: &str, rule: Rule) {
    let e = refused(doc);
    assert_eq!((e.field(), e.rule()), (field, &rule), "{e}");
}

const PID: &str = "generellaFrageparametrar/personidentitet";

#[test]
fn the_fixture_itself_is_accepted() {
    Question::parse(base().as_bytes()).unwrap();
}

#[test]
fn a_personnummer_with_a_wrong_check_digit_is_refused() {
    let doc = replaced(">191212121212<", ">191212121213<");
    assert_refusal(&doc, PID, Rule::Personnummer(IdentError::CheckDigit));
    let e = refused(&doc);
    assert_eq!(e.rule().kind(), RuleKind::Content);
    assert_eq!(
        e.to_string(),
        "generellaFrageparametrar/personidentitet: not a valid personnummer or samordningsnummer: check digit does not match"
    );
    assert!(e.swedish().contains("kontrollsiffran"));
}

#[test]
fn a_personnummer_with_an_impossible_date_is_refused() {
    // 1912-13-12: month 13.
    assert_refusal(
        &replaced(">191212121212<", ">191213121212<"),
        PID,
        Rule::Personnummer(IdentError::Date),
    );
    // Samordningsnummer day 92 (= 32).
    assert_refusal(
        &replaced(">191212121212<", ">201901922391<"),
        PID,
        Rule::Personnummer(IdentError::Date),
    );
}

#[test]
fn eleven_or_thirteen_digits_or_a_dash_break_the_personidentitet_pattern() {
    for bad in [
        "19121212121",
        "1912121212120",
        "19121212-1212",
        "1212121212",
        "",
    ] {
        let doc = replaced(">191212121212<", &format!(">{bad}<"));
        assert_refusal(
            &doc,
            PID,
            Rule::Pattern {
                pattern: "[0-9]{12}",
            },
        );
    }
    // Surrounding whitespace is allowed: the type is a token.
    Question::parse(replaced(">191212121212<", ">\n 191212121212 \n<").as_bytes()).unwrap();
}

#[test]
fn an_organisation_number_with_a_wrong_check_digit_is_refused() {
    assert_refusal(
        &replaced(">162120002411<", ">162120002412<"),
        "generellaFrageparametrar/ingivare/organisationsnummer",
        Rule::Organisationsnummer(IdentError::CheckDigit),
    );
    assert_refusal(
        &replaced(">165566770011<", ">165566770012<"),
        "generellaFrageparametrar/personuppgiftsbitrade[1]/organisationsnummer",
        Rule::Organisationsnummer(IdentError::CheckDigit),
    );
}

#[test]
fn an_organisation_number_breaking_the_pattern_is_refused() {
    // Fifth digit below 2, and the 10-digit form.
    for bad in ["162110002411", "2120002411"] {
        assert_refusal(
            &replaced(">162120002411<", &format!(">{bad}<")),
            "generellaFrageparametrar/ingivare/organisationsnummer",
            Rule::Pattern {
                pattern: r"\d{4}[2-9]\d{7}",
            },
        );
    }
    // Matches the pattern but is not the 16-prefixed form of a legal person.
    assert_refusal(
        &replaced(">162120002411<", ">192120002411<"),
        "generellaFrageparametrar/ingivare/organisationsnummer",
        Rule::Organisationsnummer(IdentError::OrganisationPrefix),
    );
}

#[test]
fn a_period_ending_before_it_starts_is_refused() {
    assert_refusal(
        &replaced("<ssbt:fromDatum>2024-01-01<", "<ssbt:fromDatum>2024-04-01<"),
        "generellaFrageparametrar/tidsperiod",
        Rule::PeriodReversed,
    );
    assert_refusal(
        &replaced("<ssbt:fromDatum>2023-10-01<", "<ssbt:fromDatum>2024-04-01<"),
        "specifikaFrageparametrar/CSN/tidsperiod",
        Rule::PeriodReversed,
    );
}

#[test]
fn a_period_of_two_years_is_accepted_and_two_years_and_a_day_refused() {
    let two_years = replaced("<ssbt:fromDatum>2024-01-01<", "<ssbt:fromDatum>2022-03-31<");
    Question::parse(two_years.as_bytes()).unwrap();
    let one_day_more = replaced("<ssbt:fromDatum>2024-01-01<", "<ssbt:fromDatum>2022-03-30<");
    assert_refusal(
        &one_day_more,
        "generellaFrageparametrar/tidsperiod",
        Rule::PeriodTooLong { max_months: 24 },
    );
    let csn = replaced("<ssbt:fromDatum>2023-10-01<", "<ssbt:fromDatum>2022-03-30<");
    assert_refusal(
        &csn,
        "specifikaFrageparametrar/CSN/tidsperiod",
        Rule::PeriodTooLong { max_months: 24 },
    );
    // The maximum is configuration.
    let limits = ValidationLimits {
        max_period_months: 36,
        ..ValidationLimits::default()
    };
    Question::parse_with(one_day_more.as_bytes(), &limits).unwrap();
    let e = refused_with(
        &base(),
        &ValidationLimits {
            max_period_months: 2,
            ..limits
        },
    );
    assert_eq!(e.rule(), &Rule::PeriodTooLong { max_months: 2 });
}

#[test]
fn an_empty_or_blank_syfte_or_lagtext_is_refused() {
    let syfte = base()
        .split("<ssbt:syfte>")
        .nth(1)
        .unwrap()
        .split("</ssbt:syfte>")
        .next()
        .unwrap()
        .to_owned();
    for blank in ["", "   ", "\n\t"] {
        let doc = replaced(
            &format!("<ssbt:syfte>{syfte}</ssbt:syfte>"),
            &format!("<ssbt:syfte>{blank}</ssbt:syfte>"),
        );
        assert_refusal(&doc, "generellaFrageparametrar/syfte", Rule::Empty);
    }
    assert_refusal(
        &replaced(
            &format!("<ssbt:syfte>{syfte}</ssbt:syfte>"),
            "<ssbt:syfte/>",
        ),
        "generellaFrageparametrar/syfte",
        Rule::Empty,
    );
    let lagtext = base()
        .split("<ssbt:lagtext>")
        .nth(1)
        .unwrap()
        .split("</ssbt:lagtext>")
        .next()
        .unwrap()
        .to_owned();
    assert_refusal(
        &replaced(
            &format!("<ssbt:lagtext>{lagtext}</ssbt:lagtext>"),
            "<ssbt:lagtext> </ssbt:lagtext>",
        ),
        "generellaFrageparametrar/lagtext",
        Rule::Empty,
    );
    assert_refusal(
        &replaced(
            "<ssbt:handlaggare>HL000001</ssbt:handlaggare>",
            "<ssbt:handlaggare></ssbt:handlaggare>",
        ),
        "generellaFrageparametrar/ingivare/handlaggare",
        Rule::Empty,
    );
}

#[test]
fn a_slot_without_inkludera_is_refused() {
    assert_refusal(
        &replaced(r#"<ssbt:SKV inkludera="true"/>"#, "<ssbt:SKV/>"),
        "specifikaFrageparametrar/SKV/@inkludera",
        Rule::MissingAttribute,
    );
    assert_refusal(
        &replaced(
            r#"<ssbt:MIV inkludera="true"/>"#,
            r#"<ssbt:MIV inkludera="yes"/>"#,
        ),
        "specifikaFrageparametrar/MIV/@inkludera",
        Rule::NotBoolean,
    );
    // A namespaced attribute of that name is not the one.
    assert_refusal(
        &replaced(
            r#"<ssbt:SKV inkludera="true"/>"#,
            r#"<ssbt:SKV ssbt:inkludera="true"/>"#,
        ),
        "specifikaFrageparametrar/SKV",
        Rule::UnknownAttribute,
    );
}

#[test]
fn an_unknown_element_or_attribute_is_refused() {
    assert_refusal(
        &replaced(
            "<ssbt:syfte>",
            "<ssbt:extra>191212121212</ssbt:extra><ssbt:syfte>",
        ),
        "generellaFrageparametrar",
        Rule::UnknownElement { position: 9 },
    );
    assert_refusal(
        &replaced(
            r#"<ssbt:SKV inkludera="true"/>"#,
            r#"<ssbt:SKV inkludera="true"><ssbt:tidsperiod/></ssbt:SKV>"#,
        ),
        "specifikaFrageparametrar/SKV",
        Rule::UnknownElement { position: 1 },
    );
    assert_refusal(
        &replaced(
            "<ssbt:ingivare>",
            r#"<ssbt:ingivare kommun="191212121212">"#,
        ),
        "generellaFrageparametrar/ingivare",
        Rule::UnknownAttribute,
    );
    // xsi:schemaLocation is allowed anywhere.
    let with_xsi = replaced(
        "<ssbt:ingivare>",
        r#"<ssbt:ingivare xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:x x.xsd">"#,
    );
    Question::parse(with_xsi.as_bytes()).unwrap();
}

#[test]
fn a_question_in_the_wrong_namespace_is_refused() {
    let v9 = base().replace("integration/ssbt/10", "integration/ssbt/9");
    assert_refusal(&v9, "hamtaBastjanstInformation", Rule::WrongNamespace);
    let unqualified = replaced(
        "<ssbt:arendeidentitet>AID00000001</ssbt:arendeidentitet>",
        "<arendeidentitet>AID00000001</arendeidentitet>",
    );
    assert_refusal(
        &unqualified,
        "generellaFrageparametrar/arendeidentitet",
        Rule::WrongNamespace,
    );
}

#[test]
fn an_element_out_of_order_is_refused() {
    let doc = base();
    let syfte = doc
        .split("<ssbt:syfte>")
        .nth(1)
        .unwrap()
        .split("</ssbt:syfte>")
        .next()
        .unwrap();
    let lagtext = doc
        .split("<ssbt:lagtext>")
        .nth(1)
        .unwrap()
        .split("</ssbt:lagtext>")
        .next()
        .unwrap();
    let swapped = doc.replacen(
        &format!(
            "<ssbt:syfte>{syfte}</ssbt:syfte>\n        <ssbt:lagtext>{lagtext}</ssbt:lagtext>"
        ),
        &format!(
            "<ssbt:lagtext>{lagtext}</ssbt:lagtext>\n        <ssbt:syfte>{syfte}</ssbt:syfte>"
        ),
        1,
    );
    assert_ne!(swapped, doc);
    assert_refusal(&swapped, "generellaFrageparametrar/syfte", Rule::OutOfOrder);
    let slots = replaced(
        "<ssbt:SO inkludera=\"true\"/>\n        <ssbt:TNS inkludera=\"true\"/>",
        "<ssbt:TNS inkludera=\"true\"/>\n        <ssbt:SO inkludera=\"true\"/>",
    );
    assert_refusal(&slots, "specifikaFrageparametrar/SO", Rule::OutOfOrder);
}

#[test]
fn a_missing_or_repeated_element_is_refused() {
    assert_refusal(
        &replaced(
            "<ssbt:arendeidentitet>AID00000001</ssbt:arendeidentitet>",
            "",
        ),
        "generellaFrageparametrar/arendeidentitet",
        Rule::Missing,
    );
    assert_refusal(
        &replaced("<ssbt:MIV inkludera=\"true\"/>", ""),
        "specifikaFrageparametrar/MIV",
        Rule::Missing,
    );
    assert_refusal(
        &replaced(
            "<ssbt:arendeidentitet>AID00000001</ssbt:arendeidentitet>",
            "<ssbt:arendeidentitet>AID00000001</ssbt:arendeidentitet><ssbt:arendeidentitet>AID2</ssbt:arendeidentitet>",
        ),
        "generellaFrageparametrar/arendeidentitet",
        Rule::TooMany,
    );
}

#[test]
fn a_doctype_with_entities_is_refused_before_anything_expands() {
    let laughs = base().replacen(
        "<ssbt:hamtaBastjanstInformation",
        "<!DOCTYPE lol [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>\n<ssbt:hamtaBastjanstInformation",
        1,
    );
    let laughs = laughs.replacen(">HL000001<", ">&lol2;<", 1);
    assert_refusal(&laughs, "document", Rule::Doctype);
    let external = base().replacen(
        "<ssbt:hamtaBastjanstInformation",
        "<!DOCTYPE x SYSTEM \"file:///etc/passwd\">\n<ssbt:hamtaBastjanstInformation",
        1,
    );
    assert_refusal(&external, "document", Rule::Doctype);
    // Without a DTD, a custom entity is simply undeclared.
    assert_refusal(
        &replaced(">HL000001<", ">&handlaggare;<"),
        "document",
        Rule::UndeclaredEntity,
    );
    // The predefined ones and character references are fine.
    let q = Question::parse(replaced(">HL000001<", ">HL&amp;&#x31;&#50;&lt;<").as_bytes()).unwrap();
    assert_eq!(q.ingivare().handlaggare(), "HL&12<");
}

#[test]
fn xsd_lexical_forms_are_enforced() {
    assert_refusal(
        &replaced("<ssbt:tomDatum>2024-03-31<", "<ssbt:tomDatum>2024-02-30<"),
        "generellaFrageparametrar/tidsperiod/tomDatum",
        Rule::NotDate,
    );
    assert_refusal(
        &replaced("2024-04-02T09:15:00+02:00", "2024-04-02 09:15"),
        "generellaFrageparametrar/frageTidpunkt",
        Rule::NotDateTime,
    );
    assert_refusal(
        &replaced(
            ">false</ssbt:fraganSkallInkluderasISvaret>",
            ">nej</ssbt:fraganSkallInkluderasISvaret>",
        ),
        "generellaFrageparametrar/fraganSkallInkluderasISvaret",
        Rule::NotBoolean,
    );
    assert_refusal(
        &replaced("<ssbt:ordningsnummer>1<", "<ssbt:ordningsnummer>40000<"),
        "generellaFrageparametrar/personuppgiftsbitrade[1]/ordningsnummer",
        Rule::NotShort,
    );
    assert_refusal(
        &replaced("<ssbt:lefiJsonFraga>eyJ", "<ssbt:lefiJsonFraga>!eyJ"),
        "specifikaFrageparametrar/FK/fraga/lefiJsonFraga",
        Rule::NotBase64,
    );
    assert_refusal(
        &replaced(
            "<ssbt:aktorsid>026-51</ssbt:aktorsid>",
            "<ssbt:aktorsid> </ssbt:aktorsid>",
        ),
        "specifikaFrageparametrar/FK/fraga/aktorsid",
        Rule::Empty,
    );
    assert_refusal(
        &replaced(
            "<ssbt:namn>Sundsvalls kommun</ssbt:namn>",
            "<ssbt:namn>Sundsvalls <b>kommun</b></ssbt:namn>",
        ),
        "generellaFrageparametrar/ingivare/namn",
        Rule::UnexpectedChildren,
    );
    assert_refusal(
        &replaced("<ssbt:ingivare>", "<ssbt:ingivare>text"),
        "generellaFrageparametrar/ingivare",
        Rule::UnexpectedText,
    );
}

#[test]
fn a_lefi_request_must_be_json_about_the_same_person() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let doc = base();
    let current = doc
        .split("<ssbt:lefiJsonFraga>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let swap = |json: &str| doc.replacen(&current, &b64(json), 1);
    let other = swap(
        r#"{"personnummer":"194107086995","period":{"from":"2024-01-01","tom":"2024-03-31"}}"#,
    );
    assert_refusal(
        &other,
        "specifikaFrageparametrar/FK/fraga/lefiJsonFraga",
        Rule::LefiOtherPerson,
    );
    assert_no_leak(&Question::parse(other.as_bytes()).unwrap_err());
    assert!(
        !Question::parse(other.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("194107086995")
    );
    assert_refusal(
        &swap("[1,2]"),
        "specifikaFrageparametrar/FK/fraga/lefiJsonFraga",
        Rule::LefiNotJson,
    );
    assert_refusal(
        &swap("not json"),
        "specifikaFrageparametrar/FK/fraga/lefiJsonFraga",
        Rule::LefiNotJson,
    );
    // The 10-digit form of the same person is fine.
    Question::parse(
        swap(r#"{"personnummer":"1212121212","period":{"from":"2024-01-01","tom":"2024-03-31"}}"#)
            .as_bytes(),
    )
    .unwrap();
}

#[test]
fn malformed_documents_are_refused_as_documents() {
    let cases: Vec<(Vec<u8>, Rule)> = vec![
        (
            replaced("</ssbt:ingivare>", "</ssbt:ingivar>").into_bytes(),
            Rule::NotWellFormed,
        ),
        (
            base()
                .replace("</ssbt:hamtaBastjanstInformation>", "")
                .into_bytes(),
            Rule::NotWellFormed,
        ),
        (
            format!("{}<second/>", base()).into_bytes(),
            Rule::NotWellFormed,
        ),
        (
            replaced(">HL000001<", ">HL & 1<").into_bytes(),
            Rule::NotWellFormed,
        ),
        (
            replaced(">HL000001<", ">HL&#1;<").into_bytes(),
            Rule::InvalidCharacter,
        ),
        (
            replaced(">HL000001<", ">HL\u{1}<").into_bytes(),
            Rule::InvalidCharacter,
        ),
        (
            replaced(">HL000001<", ">HL]]>1<").into_bytes(),
            Rule::NotWellFormed,
        ),
        (
            replaced("xmlns:ssbt", "xmlns:other").into_bytes(),
            Rule::NotWellFormed,
        ),
        (
            b"\xFF\xFE<\x00a\x00/\x00>\x00".to_vec(),
            Rule::UnsupportedEncoding,
        ),
        (
            replaced("encoding=\"UTF-8\"", "encoding=\"EBCDIC\"").into_bytes(),
            Rule::UnsupportedEncoding,
        ),
        // A Latin-1 `å` in a document that does not declare Latin-1.
        (
            replaced(">HL000001<", ">HL@<")
                .replace('@', "\u{0}")
                .into_bytes()
                .into_iter()
                .map(|b| if b == 0 { 0xE5 } else { b })
                .collect(),
            Rule::InvalidEncoding,
        ),
        (b"".to_vec(), Rule::NotWellFormed),
        (b"<root xmlns='urn:x'/>".to_vec(), Rule::WrongRoot),
    ];
    for (i, (doc, rule)) in cases.into_iter().enumerate() {
        let e = Question::parse(&doc).expect_err(&format!("case {i} refused"));
        assert_eq!(e.rule(), &rule, "{e}");
        assert_eq!(e.rule().kind(), RuleKind::Document, "{e}");
        assert_no_leak(&e);
    }
}

#[test]
fn pathological_sizes_are_refused_by_the_limits() {
    let limits = ValidationLimits::default();
    let deep = replaced(
        "<ssbt:syfte>",
        &format!("{}{}<ssbt:syfte>", "<x>".repeat(40), "</x>".repeat(40)),
    );
    assert_eq!(
        refused(&deep).rule(),
        &Rule::TooDeep {
            limit: limits.max_depth
        }
    );
    let long = replaced(
        ">HL000001<",
        &format!(">{}<", "x".repeat(limits.max_text_bytes + 1)),
    );
    assert_eq!(
        refused(&long).rule(),
        &Rule::TextTooLong {
            limit: limits.max_text_bytes
        }
    );
    let big = format!("{}<!--{}-->", base(), " ".repeat(limits.max_document_bytes));
    assert_eq!(
        refused(&big).rule(),
        &Rule::DocumentTooLarge {
            limit: limits.max_document_bytes
        }
    );
    let many = replaced(
        "<ssbt:syfte>",
        &format!("{}<ssbt:syfte>", "<x/>".repeat(limits.max_elements)),
    );
    assert_eq!(
        refused(&many).rule(),
        &Rule::TooManyElements {
            limit: limits.max_elements
        }
    );
    let attr = replaced(
        "<ssbt:ingivare>",
        &format!(
            "<ssbt:ingivare a=\"{}\">",
            "x".repeat(limits.max_text_bytes + 1)
        ),
    );
    assert_eq!(
        refused(&attr).rule(),
        &Rule::TextTooLong {
            limit: limits.max_text_bytes
        }
    );
}

#[test]
fn refusals_map_to_a_valideringsfel_fault_that_validates() {
    let e = refused(&replaced(">191212121212<", ">191212121213<"));
    let fault = Fault::from(&e);
    assert_eq!(fault.felkod().code(), "VALIDERINGSFEL");
    assert_eq!(fault.felmeddelande().len(), 4);
    assert!(fault.felmeddelande()[2].contains("generellaFrageparametrar/personidentitet"));
    let xml = fault.to_xml(relay_ssbtek::Operation::Hamta, true);
    assert_schema_valid(&[&xml]);
}
