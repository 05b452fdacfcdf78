//! Properties: a question built from arbitrary valid parts parses back to the
//! same parts, and every such question (and its echoing answer) is valid
//! against the v10 XSD.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod common;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone};
use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use relay_ident::{Organisationsnummer, Personnummer, luhn_check_digit};
use relay_ssbtek::{
    Answer, FkFraga, Ingivare, LefiRequest, Period, Personuppgiftsbitrade, Question,
    QuestionBuilder, Slot, SlotOutcome,
};

fn with_check_digit(nine: String) -> String {
    let c = luhn_check_digit(nine.as_bytes());
    format!("{nine}{c}")
}

fn personnummer() -> impl Strategy<Value = Personnummer> {
    (
        1900i32..=2024,
        1u32..=12,
        1u32..=31,
        0u32..=999,
        any::<bool>(),
    )
        .prop_filter_map("a real date", |(y, m, d, n, samordning)| {
            NaiveDate::from_ymd_opt(y, m, d)?;
            let day = if samordning { d + 60 } else { d };
            let ten = with_check_digit(format!("{:02}{m:02}{day:02}{n:03}", y % 100));
            Personnummer::parse(&format!("{}{ten}", y / 100)).ok()
        })
}

fn organisationsnummer() -> impl Strategy<Value = Organisationsnummer> {
    (
        prop::sample::select(vec![2u8, 5, 7, 8, 9]),
        0u8..=9,
        2u8..=9,
        0u32..=999_999,
    )
        .prop_map(|(g, a, b, rest)| {
            Organisationsnummer::parse(&with_check_digit(format!("{g}{a}{b}{rest:06}"))).unwrap()
        })
}

/// Any text XML can carry, with the characters that need escaping well represented.
fn any_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 åäöÅÄÖé§<>&\"'\\]\\r\\n\\t/:.-]{0,24}"
}

fn non_blank_text() -> impl Strategy<Value = String> {
    any_text().prop_filter("not blank", |s| {
        !s.trim_matches([' ', '\t', '\r', '\n']).is_empty()
    })
}

fn period() -> impl Strategy<Value = Period> {
    (0i64..12_000, 0i64..=700).prop_map(|(start, len)| {
        let from = NaiveDate::from_ymd_opt(1995, 1, 1).unwrap() + Duration::days(start);
        Period::new(from, from + Duration::days(len)).unwrap()
    })
}

fn frage_tidpunkt() -> impl Strategy<Value = DateTime<FixedOffset>> {
    (0i64..1_000_000_000, -12i32..=14).prop_map(|(secs, h)| {
        FixedOffset::east_opt(h * 3600)
            .unwrap()
            .timestamp_opt(1_000_000_000 + secs, 0)
            .unwrap()
    })
}

fn lefi_codes() -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(
        vec!["FK:ABB", "FK:BOB", "FK:SJP", "PM:AP", "FK:GEPI"],
        0..=3,
    )
    .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

/// FK's `fraga`: version, aktorsid, förmånsgrupper, övrig information.
type FkParts = (Option<String>, String, Vec<String>, Vec<String>);

#[derive(Debug, Clone)]
struct Parts {
    person: Personnummer,
    ingivare: (Organisationsnummer, String, String),
    arende: String,
    period: Period,
    syfte: String,
    lagtext: String,
    frage_tidpunkt: Option<DateTime<FixedOffset>>,
    korrelationsid: Option<String>,
    echo: bool,
    bitraden: Vec<(Option<i16>, Organisationsnummer, String)>,
    included: [bool; 7],
    slot_periods: [Option<Period>; 4],
    fk: Option<FkParts>,
}

fn parts() -> impl Strategy<Value = Parts> {
    let who = (
        personnummer(),
        (organisationsnummer(), non_blank_text(), non_blank_text()),
        non_blank_text(),
        period(),
        non_blank_text(),
        non_blank_text(),
    );
    let how = (
        prop::option::of(frage_tidpunkt()),
        prop::option::of(any_text()),
        any::<bool>(),
        prop::collection::vec(
            (
                prop::option::of(any::<i16>()),
                organisationsnummer(),
                non_blank_text(),
            ),
            0..3,
        ),
        any::<[bool; 7]>(),
        [
            prop::option::of(period()),
            prop::option::of(period()),
            prop::option::of(period()),
            prop::option::of(period()),
        ],
        prop::option::of((
            prop::option::of(any_text()),
            non_blank_text(),
            lefi_codes(),
            lefi_codes(),
        )),
    );
    (who, how).prop_map(
        |(
            (person, ingivare, arende, period, syfte, lagtext),
            (frage_tidpunkt, korrelationsid, echo, bitraden, included, slot_periods, fk),
        )| Parts {
            person,
            ingivare,
            arende,
            period,
            syfte,
            lagtext,
            frage_tidpunkt,
            korrelationsid,
            echo,
            bitraden,
            included,
            slot_periods,
            fk,
        },
    )
}

const PERIOD_SLOTS: [Slot; 4] = [Slot::Af, Slot::Csn, Slot::So, Slot::Tns];

fn build(p: &Parts) -> Question {
    let (orgnr, namn, handlaggare) = &p.ingivare;
    let mut b = QuestionBuilder::new(
        p.person,
        Ingivare::new(*orgnr, namn.as_str(), handlaggare.as_str()),
        &p.arende,
        p.period,
    )
    .syfte(&p.syfte)
    .lagtext(&p.lagtext)
    .fragan_skall_inkluderas(p.echo)
    .include_all(
        Slot::ALL
            .into_iter()
            .zip(p.included)
            .filter(|(_, inc)| *inc)
            .map(|(s, _)| s),
    );
    if let Some(t) = p.frage_tidpunkt {
        b = b.frage_tidpunkt(t);
    }
    if let Some(k) = &p.korrelationsid {
        b = b.korrelationsid(k);
    }
    for (n, orgnr, namn) in &p.bitraden {
        b = b.personuppgiftsbitrade(Personuppgiftsbitrade::new(*n, *orgnr, namn.as_str()));
    }
    for (slot, period) in PERIOD_SLOTS.into_iter().zip(p.slot_periods) {
        if let Some(period) = period {
            b = b.slot_period(slot, period);
        }
    }
    if let Some((version, aktorsid, formaner, ovrigt)) = &p.fk {
        let mut lefi = LefiRequest::new(p.person, p.period);
        lefi.formansinformation = formaner.clone();
        lefi.ovrig_information = ovrigt.clone();
        b = b.fk_fraga(FkFraga::new(version.as_deref(), aktorsid, lefi.to_json()));
    }
    b.build()
        .unwrap_or_else(|e| panic!("built question refused: {e}"))
}

fn assert_matches_parts(q: &Question, p: &Parts) {
    let g = q.generella();
    assert_eq!(q.person(), p.person);
    assert_eq!(g.ingivare().orgnr(), p.ingivare.0);
    assert_eq!(g.ingivare().namn(), p.ingivare.1);
    assert_eq!(g.ingivare().handlaggare(), p.ingivare.2);
    assert_eq!(g.arendeidentitet(), p.arende);
    assert_eq!(g.tidsperiod(), p.period);
    assert_eq!(g.syfte(), p.syfte);
    assert_eq!(g.lagtext(), p.lagtext);
    assert_eq!(
        g.frage_tidpunkt()
            .map(|t| DateTime::parse_from_rfc3339(t).unwrap()),
        p.frage_tidpunkt
    );
    assert_eq!(g.korrelationsid(), p.korrelationsid.as_deref());
    assert_eq!(g.fragan_skall_inkluderas(), p.echo);
    let bitraden: Vec<_> = g
        .personuppgiftsbitrade()
        .iter()
        .map(|b| (b.ordningsnummer(), b.orgnr(), b.namn().to_owned()))
        .collect();
    assert_eq!(bitraden, p.bitraden);
    for (slot, inc) in Slot::ALL.into_iter().zip(p.included) {
        assert_eq!(q.slot(slot).inkludera(), inc, "{slot}");
    }
    for (slot, period) in PERIOD_SLOTS.into_iter().zip(p.slot_periods) {
        assert_eq!(q.slot(slot).tidsperiod(), period);
        assert_eq!(q.period_for(slot), period.unwrap_or(p.period));
    }
    match (&p.fk, q.slot(Slot::Fk).fk_fraga()) {
        (None, None) => {}
        (Some((version, aktorsid, _, _)), Some(f)) => {
            assert_eq!(f.version(), version.as_deref());
            assert_eq!(f.aktorsid(), aktorsid);
            let lefi: serde_json::Value = serde_json::from_slice(f.lefi_json()).unwrap();
            assert_eq!(lefi["personnummer"], p.person.as_str());
        }
        other => panic!("FK fraga mismatch: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_built_question_parses_back_to_its_parts(p in parts()) {
        let q = build(&p);
        assert_matches_parts(&q, &p);
        let xml = q.to_xml(true);
        let again = Question::parse(&xml).unwrap();
        assert_matches_parts(&again, &p);
        prop_assert_eq!(&*again.to_xml(true), &*xml);
        for slot in Slot::ALL {
            prop_assert_eq!(again.slot(slot).parameters_xml(), q.slot(slot).parameters_xml());
        }
    }
}

/// One xmllint run over many generated questions and their answers.
#[test]
fn built_questions_and_their_answers_are_schema_valid() {
    let mut runner = TestRunner::deterministic();
    let strategy = parts();
    let mut docs = Vec::new();
    for _ in 0..40 {
        let p = strategy.new_tree(&mut runner).unwrap().current();
        let q = build(&p);
        docs.push(q.to_xml(true).to_vec());
        let mut answer = Answer::new(&q);
        for (i, slot) in q
            .included_slots()
            .collect::<Vec<_>>()
            .into_iter()
            .enumerate()
        {
            let outcome = match i % 3 {
                0 => SlotOutcome::Data(payload(slot)),
                1 => SlotOutcome::ProviderError {
                    code: p.arende.clone(),
                    messages: vec![p.syfte.clone()],
                },
                _ => SlotOutcome::RelayError(relay_ssbtek::RelayFelkod::Unavailable),
            };
            answer.record(slot, outcome).unwrap();
        }
        docs.push(answer.build().xml.to_vec());
    }
    assert_schema_valid(&docs.iter().map(Vec::as_slice).collect::<Vec<_>>());
}
