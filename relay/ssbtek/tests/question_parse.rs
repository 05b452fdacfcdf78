//! Questions of the shapes municipalities send parse into the typed model.

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
use relay_ssbtek::{Question, QuestionError, Rule, Slot, ValidationLimits};

fn parse(rel: &str) -> Question {
    Question::parse(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_sundsvall_question_with_all_seven_slots_parses() {
    let q = parse("questions/sundsvall_all_slots.xml");
    let g = q.generella();
    assert_eq!(g.frage_tidpunkt(), Some("2024-04-02T09:15:00+02:00"));
    assert_eq!(
        g.korrelationsid(),
        Some("00000000-0000-0000-0000-000000000001")
    );
    assert!(!g.fragan_skall_inkluderas());
    assert_eq!(g.ingivare().orgnr().as_str(), "2120002411");
    assert_eq!(g.ingivare().namn(), "Sundsvalls kommun");
    assert_eq!(g.ingivare().handlaggare(), "HL000001");
    assert_eq!(q.person().as_str(), PERSON);
    assert_eq!(g.arendeidentitet(), "AID00000001");
    assert_eq!(g.tidsperiod(), period(date(2024, 1, 1), date(2024, 3, 31)));
    assert_eq!(g.personuppgiftsbitrade().len(), 1);
    assert_eq!(g.personuppgiftsbitrade()[0].ordningsnummer(), Some(1));
    assert_eq!(g.personuppgiftsbitrade()[0].orgnr().as_str(), "5566770011");
    assert!(g.syfte().starts_with("Beslut om"));
    assert!(g.lagtext().contains("2008:975"));
    assert_eq!(q.included_slots().collect::<Vec<_>>(), Slot::ALL.to_vec());

    // CSN has its own period; the others use the general one.
    assert_eq!(
        q.period_for(Slot::Csn),
        period(date(2023, 10, 1), date(2024, 3, 31))
    );
    assert_eq!(q.period_for(Slot::Af), g.tidsperiod());

    let fk = q.slot(Slot::Fk).fk_fraga().expect("FK fraga");
    assert_eq!(fk.version(), Some("v9"));
    assert_eq!(fk.aktorsid(), "026-51");
    let lefi: serde_json::Value = serde_json::from_slice(fk.lefi_json()).unwrap();
    assert_eq!(lefi["personnummer"], PERSON);
    assert_eq!(lefi["ovrigInformation"][0], "FK:GEPI");
}

#[test]
fn each_slot_gets_its_element_as_a_standalone_document() {
    let q = parse("questions/sundsvall_all_slots.xml");
    let ns = r#"xmlns="http://schema.forsakringskassan.se/integration/ssbt/10""#;
    let skv = String::from_utf8(q.slot(Slot::Skv).parameters_xml().to_vec()).unwrap();
    assert_eq!(skv, format!(r#"<SKV {ns} inkludera="true"></SKV>"#));
    let csn = String::from_utf8(q.slot(Slot::Csn).parameters_xml().to_vec()).unwrap();
    assert_eq!(
        csn,
        format!(
            r#"<CSN {ns} inkludera="true"><tidsperiod><fromDatum>2023-10-01</fromDatum><tomDatum>2024-03-31</tomDatum></tidsperiod></CSN>"#
        )
    );
    let fk = String::from_utf8(q.slot(Slot::Fk).parameters_xml().to_vec()).unwrap();
    assert!(fk.starts_with(&format!(r#"<FK {ns} inkludera="true"><fraga><version>v9</version><aktorsid>026-51</aktorsid><lefiJsonFraga>eyJ"#)));
    assert!(fk.ends_with("</lefiJsonFraga></fraga></FK>"));
    for slot in Slot::ALL {
        let standalone = q.slot(slot).parameters_xml();
        // Each is a well-formed document on its own.
        let mut reader = quick_xml::reader::NsReader::from_reader(standalone);
        while !matches!(
            reader.read_resolved_event().unwrap().1,
            quick_xml::events::Event::Eof
        ) {}
    }
}

#[test]
fn a_question_inside_a_soap_body_parses_with_the_envelopes_prefix() {
    let xml = fixture("questions/soap_csn_skv.xml");
    let q = Question::parse_element(&xml, &ValidationLimits::default()).unwrap();
    assert!(q.generella().fragan_skall_inkluderas(), "`1` is true");
    assert_eq!(q.generella().korrelationsid(), None);
    assert_eq!(
        q.included_slots().collect::<Vec<_>>(),
        [Slot::Csn, Slot::Skv]
    );
    // As a root it is refused: the root is the envelope.
    let e = Question::parse(&xml).unwrap_err();
    assert_eq!(e.rule(), &Rule::WrongRoot);
}

#[test]
fn a_default_namespace_question_about_a_samordningsnummer_parses() {
    let q = parse("questions/default_namespace_fk.xml");
    assert_eq!(
        q.person().kind(),
        relay_ident::PersonKind::Samordningsnummer
    );
    assert!(
        !q.generella().fragan_skall_inkluderas(),
        "empty element takes the XSD default"
    );
    assert_eq!(q.included_slots().collect::<Vec<_>>(), [Slot::Fk]);
    let fk = q.slot(Slot::Fk).fk_fraga().unwrap();
    assert_eq!(fk.version(), None);
    let lefi: serde_json::Value = serde_json::from_slice(fk.lefi_json()).unwrap();
    assert_eq!(
        lefi["personnummer"], "202601622380",
        "base64 split over lines decodes"
    );
}

#[test]
fn an_iso_8859_1_question_parses_with_its_swedish_letters() {
    let raw = fixture("questions/latin1_af_so_tns.xml");
    assert!(
        std::str::from_utf8(&raw).is_err(),
        "fixture really is Latin-1"
    );
    let q = parse("questions/latin1_af_so_tns.xml");
    assert_eq!(q.ingivare().namn(), "Socialförvaltningen Sundsvall");
    assert_eq!(q.ingivare().handlaggare(), "Åsa Öberg");
    assert_eq!(q.generella().arendeidentitet(), "ÄRENDE-0004");
    assert_eq!(
        q.generella().tidsperiod().from(),
        date(2024, 1, 1),
        "time zone dropped"
    );
    assert_eq!(
        q.included_slots().collect::<Vec<_>>(),
        [Slot::Af, Slot::So, Slot::Tns]
    );
    assert_eq!(q.period_for(Slot::Af).from(), date(2023, 7, 1));
    assert_eq!(q.period_for(Slot::So).from(), date(2024, 1, 1));
    // Written back it is UTF-8 and valid.
    let xml = q.to_xml(true);
    assert!(std::str::from_utf8(&xml).unwrap().contains("Åsa Öberg"));
    assert_schema_valid(&[&xml]);
}

#[test]
fn every_question_fixture_is_schema_valid_and_survives_a_write_and_reparse() {
    let mut written = Vec::new();
    for rel in [
        "questions/sundsvall_all_slots.xml",
        "questions/default_namespace_fk.xml",
        "questions/latin1_af_so_tns.xml",
    ] {
        let q = parse(rel);
        let xml = q.to_xml(false);
        let again = Question::parse(&xml).unwrap();
        assert_eq!(*again.to_xml(false), *xml, "{rel}");
        written.push(xml);
    }
    let soap = Question::parse_element(
        &fixture("questions/soap_csn_skv.xml"),
        &ValidationLimits::default(),
    )
    .unwrap();
    written.push(soap.to_xml(true));
    assert_schema_valid(&written.iter().map(|x| x.as_slice()).collect::<Vec<_>>());
}

#[test]
fn the_first_question_in_a_document_is_taken() {
    let one = String::from_utf8(fixture("questions/default_namespace_fk.xml")).unwrap();
    let doc =
        format!("<wrapper xmlns:o='urn:other'><o:hamtaBastjanstInformation/>{one}{one}</wrapper>");
    let q = Question::parse_element(doc.as_bytes(), &ValidationLimits::default()).unwrap();
    assert_eq!(q.generella().arendeidentitet(), "AID00000003");
    let none = Question::parse_element(b"<a><b/></a>", &ValidationLimits::default()).unwrap_err();
    assert_eq!(none, QuestionError::clone(&none));
    assert_eq!(none.rule(), &Rule::NotFound);
}

#[test]
fn debug_output_of_a_question_holds_no_personal_data() {
    let q = parse("questions/latin1_af_so_tns.xml");
    let debug = format!("{q:?}");
    assert!(
        !debug.contains(PERSON) && !debug.contains(PERSON_SHORT),
        "{debug}"
    );
    assert!(!debug.contains("Åsa"), "{debug}");
}

#[test]
fn a_utf8_byte_order_mark_and_single_quoted_declaration_are_accepted() {
    let mut doc = b"\xEF\xBB\xBF<?xml version='1.0' encoding='utf-8'?>\n".to_vec();
    doc.extend_from_slice(&fixture("questions/default_namespace_fk.xml"));
    let q = Question::parse(&doc).unwrap();
    assert_eq!(q.generella().arendeidentitet(), "AID00000003");
}
