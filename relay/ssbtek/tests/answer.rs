//! The combine step writes answers that validate against the v10 XSD whatever
//! the providers sent, and the ping and fault builders do too.

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
use relay_ssbtek::answer::NotIncluded;
use relay_ssbtek::{
    Answer, Fault, FaultFelkod, Operation, PayloadError, PingAnswer, Question, QuestionBuilder,
    RelayFelkod, Slot, SlotError, SlotOutcome, SlotStatus,
};

fn text(xml: &[u8]) -> &str {
    std::str::from_utf8(xml).unwrap()
}

#[test]
fn the_schema_check_really_refuses_an_invalid_answer() {
    let invalid = br#"<ssbt:hamtaBastjanstInformationResponse xmlns:ssbt="http://schema.forsakringskassan.se/integration/ssbt/10"><ssbt:svarsdata><ssbt:FK/></ssbt:svarsdata></ssbt:hamtaBastjanstInformationResponse>"#;
    let result = std::panic::catch_unwind(|| assert_schema_valid(&[invalid]));
    assert!(
        result.is_err(),
        "xmllint accepted an FK slot with neither data nor error"
    );
}

#[test]
fn an_answer_with_all_seven_provider_payloads_validates() {
    let q = all_slots_question(false);
    let mut answer = Answer::new(&q).with_declaration(true);
    for slot in Slot::ALL {
        answer
            .record(slot, SlotOutcome::Data(payload(slot)))
            .unwrap();
    }
    let combined = answer.build();
    assert!(
        combined.slots.iter().all(|r| r.status == SlotStatus::Data),
        "{:?}",
        combined.slots
    );
    assert_eq!(
        combined.slots.iter().map(|r| r.slot).collect::<Vec<_>>(),
        Slot::ALL.to_vec()
    );
    let xml = text(&combined.xml);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(xml.contains(
        "<ssbt:korrelationsid>00000000-0000-0000-0000-000000000001</ssbt:korrelationsid>"
    ));
    assert!(!xml.contains("<ssbt:fraga>"), "no echo unless asked");
    // Payloads are inserted verbatim.
    for slot in Slot::ALL {
        assert!(
            xml.contains(text(&payload(slot))),
            "{slot} payload not verbatim"
        );
    }
    // Slots appear in XSD order.
    let positions: Vec<_> = Slot::ALL
        .iter()
        .map(|s| xml.find(&format!("<ssbt:{}>", s.as_str())).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    // Unqualified SKV and MIV data are shielded from any default namespace around the answer.
    assert_eq!(xml.matches("<ssbt:data xmlns=\"\">").count(), 2);
    assert_schema_valid(&[&combined.xml]);
}

#[test]
fn the_composite_fixture_payloads_each_fit_their_slot() {
    for slot in Slot::ALL {
        relay_ssbtek::check_payload(slot, &payload(slot)).unwrap_or_else(|e| panic!("{slot}: {e}"));
        // And none fits another slot's shape, except that MIV's `response` is optional.
        for other in Slot::ALL.into_iter().filter(|o| *o != slot) {
            assert!(
                relay_ssbtek::check_payload(other, &payload(slot)).is_err(),
                "{slot} payload accepted as {other}"
            );
        }
    }
}

#[test]
fn an_answer_with_data_provider_errors_and_relay_errors_validates() {
    let q = all_slots_question(false);
    let mut answer = Answer::new(&q);
    answer
        .record(Slot::Af, SlotOutcome::Data(payload(Slot::Af)))
        .unwrap();
    answer
        .record(
            Slot::Csn,
            SlotOutcome::ProviderError {
                code: "CSN-17".into(),
                messages: vec![
                    "Tjänsten är stängd för underhåll <nattetid> & helger".into(),
                    "Closed\u{1} for maintenance".into(),
                ],
            },
        )
        .unwrap();
    answer
        .record(Slot::Fk, SlotOutcome::RelayError(RelayFelkod::Timeout))
        .unwrap();
    answer
        .record(Slot::Skv, SlotOutcome::Data(payload(Slot::Skv)))
        .unwrap();
    answer
        .record(
            Slot::So,
            SlotOutcome::ProviderError {
                code: String::new(),
                messages: vec![],
            },
        )
        .unwrap();
    answer
        .record(Slot::Tns, SlotOutcome::RelayError(RelayFelkod::Withdrawn))
        .unwrap();
    // MIV: nothing recorded.
    let combined = answer.build();
    let status: Vec<_> = combined.slots.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        status,
        [
            SlotStatus::Data,
            SlotStatus::ProviderError,
            SlotStatus::RelayError(RelayFelkod::Timeout),
            SlotStatus::Data,
            SlotStatus::ProviderError,
            SlotStatus::RelayError(RelayFelkod::Withdrawn),
            SlotStatus::NoOutcome,
        ]
    );
    let xml = text(&combined.xml);
    assert!(xml.contains("<ssbt:CSN><ssbt:error><ssbt:kalla>BT</ssbt:kalla><ssbt:felkod>CSN-17</ssbt:felkod><ssbt:felmeddelande>Tjänsten är stängd för underhåll &lt;nattetid&gt; &amp; helger</ssbt:felmeddelande><ssbt:felmeddelande>Closed\u{FFFD} for maintenance</ssbt:felmeddelande></ssbt:error></ssbt:CSN>"));
    assert!(xml.contains(
        "<ssbt:FK><ssbt:error><ssbt:kalla>SSBT</ssbt:kalla><ssbt:felkod>SSBT-TIMEOUT</ssbt:felkod>"
    ));
    assert!(xml.contains("<ssbt:SO><ssbt:error><ssbt:kalla>BT</ssbt:kalla><ssbt:felkod></ssbt:felkod><ssbt:felmeddelande>Bastjänsten rapporterade"));
    assert!(xml.contains("<ssbt:MIV><ssbt:error><ssbt:kalla>SSBT</ssbt:kalla><ssbt:felkod>SSBT-INTERNAL</ssbt:felkod>"));
    assert_schema_valid(&[&combined.xml]);
}

#[test]
fn every_relay_felkod_has_a_documented_code_and_two_messages_and_validates() {
    let codes: Vec<_> = RelayFelkod::ALL.iter().map(|c| c.code()).collect();
    assert_eq!(
        codes,
        [
            "SSBT-TIMEOUT",
            "SSBT-UNAVAILABLE",
            "SSBT-WITHDRAWN",
            "SSBT-OVERLOAD",
            "SSBT-INVALID-ANSWER",
            "SSBT-INTERNAL"
        ]
    );
    let q = all_slots_question(false);
    let mut answer = Answer::new(&q);
    for (slot, code) in Slot::ALL.into_iter().zip(RelayFelkod::ALL) {
        assert!(!code.swedish().is_empty() && !code.english().is_empty());
        answer.record(slot, SlotOutcome::RelayError(code)).unwrap();
    }
    assert_schema_valid(&[&answer.build().xml]);
}

#[test]
fn a_malformed_provider_payload_becomes_an_ssbt_error_and_the_answer_still_validates() {
    let q = all_slots_question(false);
    let broken: Vec<(Slot, Vec<u8>, PayloadError)> = vec![
        (Slot::Af, b"<er:Svar xmlns:er=\"http://api.arbetsformedlingen.se/arbetssokande/ersattningsstod/v2\">".to_vec(), PayloadError::NotWellFormed),
        (Slot::Csn, b"<ssbt:svar>not base64</ssbt:svar>".to_vec(), PayloadError::NotBase64),
        (Slot::Fk, b"</ssbt:data><ssbt:data>".to_vec(), PayloadError::NotWellFormed),
        (Slot::Skv, b"<svar>&nbsp;</svar>".to_vec(), PayloadError::UndeclaredEntity),
        (Slot::So, payload(Slot::Tns), PayloadError::Shape { expected: "so:GetUnemploymentBenefitPaymentResponseType (OrganisationsnummerIngivare … ArbetsloshetsersattningLista)" }),
        (Slot::Tns, b"<?xml version=\"1.0\"?><x/>".to_vec(), PayloadError::Prolog),
        (Slot::Miv, vec![0xC3, 0x28], PayloadError::NotUtf8),
    ];
    let mut answer = Answer::new(&q);
    for (slot, bytes, _) in &broken {
        answer
            .record(*slot, SlotOutcome::Data(bytes.clone()))
            .unwrap();
    }
    let combined = answer.build();
    for ((slot, _, want), report) in broken.iter().zip(&combined.slots) {
        assert_eq!(report.slot, *slot);
        assert_eq!(
            report.status,
            SlotStatus::PayloadRejected(want.clone()),
            "{slot}"
        );
    }
    let xml = text(&combined.xml);
    assert_eq!(xml.matches("SSBT-INVALID-ANSWER").count(), 7);
    assert!(!xml.contains("not base64"));
    assert_schema_valid(&[&combined.xml]);
}

#[test]
fn the_question_is_echoed_when_asked_for() {
    let q = all_slots_question(true);
    let mut answer = Answer::new(&q);
    for slot in Slot::ALL {
        answer
            .record(slot, SlotOutcome::Data(payload(slot)))
            .unwrap();
    }
    let combined = answer.build();
    let xml = text(&combined.xml);
    let fraga = xml
        .find("<ssbt:fraga><ssbt:generellaFrageparametrar>")
        .expect("echo");
    let korr = xml.find("<ssbt:korrelationsid>").unwrap();
    let svar = xml.find("<ssbt:svarsdata>").unwrap();
    assert!(fraga < korr && korr < svar);
    assert!(xml.contains("<ssbt:personidentitet>191212121212</ssbt:personidentitet>"));
    assert_schema_valid(&[&combined.xml]);
}

#[test]
fn frage_tidpunkt_and_korrelationsid_are_echoed_and_only_included_slots_answered() {
    let q = Question::parse(&fixture("questions/latin1_af_so_tns.xml")).unwrap();
    let mut answer = Answer::new(&q);
    assert_eq!(
        answer.record(Slot::Fk, SlotOutcome::RelayError(RelayFelkod::Internal)),
        Err(NotIncluded(Slot::Fk))
    );
    for slot in [Slot::Af, Slot::So, Slot::Tns] {
        answer
            .record(slot, SlotOutcome::Data(payload(slot)))
            .unwrap();
    }
    let combined = answer.build();
    let xml = text(&combined.xml);
    assert!(
        xml.contains("<ssbt:fraga>"),
        "this fixture asks for the echo"
    );
    assert!(xml.contains("Åsa Öberg"));
    assert!(!xml.contains("<ssbt:FK>") && !xml.contains("<ssbt:CSN>"));
    assert_eq!(combined.slots.len(), 3);

    let p = period(date(2024, 1, 1), date(2024, 1, 31));
    let stamped = QuestionBuilder::new(person(), sundsvall(), "AID-9", p)
        .frage_tidpunkt(chrono::DateTime::parse_from_rfc3339("2024-02-01T08:00:00+01:00").unwrap())
        .korrelationsid("corr-<1>")
        .include(Slot::Miv)
        .build()
        .unwrap();
    let mut answer = Answer::new(&stamped);
    answer
        .record(Slot::Miv, SlotOutcome::Data(Vec::new()))
        .unwrap();
    let combined = answer.build();
    let xml = text(&combined.xml);
    assert!(xml.contains("<ssbt:frageTidpunkt>2024-02-01T08:00:00+01:00</ssbt:frageTidpunkt><ssbt:korrelationsid>corr-&lt;1&gt;</ssbt:korrelationsid>"));
    assert!(
        xml.contains("<ssbt:MIV><ssbt:data></ssbt:data></ssbt:MIV>"),
        "an empty MIV answer is valid"
    );
    assert_schema_valid(&[&combined.xml]);
}

#[test]
fn a_question_with_no_slots_gets_an_empty_svarsdata() {
    let p = period(date(2024, 1, 1), date(2024, 1, 31));
    let q = QuestionBuilder::new(person(), sundsvall(), "AID-0", p)
        .build()
        .unwrap();
    let combined = Answer::new(&q).build();
    assert!(combined.slots.is_empty());
    assert!(
        text(&combined.xml).ends_with(
            "<ssbt:svarsdata></ssbt:svarsdata></ssbt:hamtaBastjanstInformationResponse>"
        )
    );
    assert_schema_valid(&[&combined.xml]);
}

#[test]
fn ping_answers_validate() {
    let mut ping = PingAnswer::new();
    ping.slot(Slot::Af, true, None)
        .slot(Slot::Csn, false, None)
        .slot(
            Slot::Fk,
            true,
            Some(SlotError::Relay(RelayFelkod::Unavailable)),
        )
        .slot(
            Slot::Skv,
            true,
            Some(SlotError::Provider {
                code: "9071001".into(),
                messages: vec!["Tekniskt fel".into()],
            }),
        )
        .slot(
            Slot::Miv,
            true,
            Some(SlotError::Provider {
                code: "X".into(),
                messages: vec![],
            }),
        );
    let full = ping.to_xml(true);
    let xml = text(&full);
    assert!(xml.contains("<ssbt:AF><ssbt:anropad>true</ssbt:anropad></ssbt:AF><ssbt:CSN><ssbt:anropad>false</ssbt:anropad></ssbt:CSN>"));
    assert!(xml.contains("<ssbt:FK><ssbt:anropad>true</ssbt:anropad><ssbt:error><ssbt:kalla>SSBT</ssbt:kalla><ssbt:felkod>SSBT-UNAVAILABLE</ssbt:felkod>"));
    assert!(!xml.contains("<ssbt:SO>"));
    let empty = PingAnswer::new().to_xml(false);
    assert_schema_valid(&[&full, &empty]);
}

#[test]
fn fault_details_validate_for_both_operations() {
    let codes: Vec<_> = FaultFelkod::ALL.iter().map(|c| c.code()).collect();
    assert_eq!(
        codes,
        [
            "VALIDERINGSFEL",
            "BEHORIGHET",
            "AVTAL_SAKNAS",
            "OVERBELASTAD",
            "TEKNISKT_FEL"
        ]
    );
    let mut docs = Vec::new();
    for code in FaultFelkod::ALL {
        let fault = Fault::new(code).with_message("detalj <med> & tecken");
        assert_eq!(fault.felmeddelande().len(), 3);
        let hamta = fault.to_xml(Operation::Hamta, false);
        assert!(text(&hamta).starts_with("<ssbt:hamtaBastjanstInformationFault "));
        docs.push(hamta);
        docs.push(fault.to_xml(Operation::Testa, true));
    }
    assert_eq!(FaultFelkod::Valideringsfel.soap_fault_code(), "soap:Client");
    assert_eq!(FaultFelkod::TeknisktFel.soap_fault_code(), "soap:Server");
    assert_schema_valid(&docs.iter().map(Vec::as_slice).collect::<Vec<_>>());
}
