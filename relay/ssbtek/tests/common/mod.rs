//! Shared by the integration tests: fixtures, a sample question, and schema
//! validation with `xmllint` against the v10 XSD in the shared contracts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDate;
use relay_ident::{Organisationsnummer, Personnummer};
use relay_ssbtek::{Ingivare, LefiRequest, Period, Question, QuestionBuilder, Slot};

pub const PERSON: &str = "191212121212";
pub const PERSON_SHORT: &str = "1212121212";
pub const SUNDSVALL: &str = "162120002411";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The v10 XSD; vendored in the repository's `contracts/`.
pub fn xsd() -> PathBuf {
    manifest_dir().join(
        "../../contracts/ssbtek-v10/schemas/se/forsakringskassan/schema/integration/ssbt/_10/sammansatt_bastjanst_v10.xsd",
    )
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let path = manifest_dir().join("tests/fixtures").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn payload(slot: Slot) -> Vec<u8> {
    fixture(&format!("payloads/{}.xml", slot.as_str().to_lowercase()))
}

/// Validates each document against the v10 XSD in one `xmllint` run. Fails
/// (does not skip) when xmllint is missing: CI installs libxml2-utils.
pub fn assert_schema_valid(docs: &[&[u8]]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let p = dir.path().join(format!("doc{i}.xml"));
        std::fs::write(&p, doc).expect("write");
        paths.push(p);
    }
    let xsd = xsd();
    assert!(xsd.exists(), "v10 XSD not found at {}", xsd.display());
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(&xsd)
        .args(&paths)
        .output()
        .expect("xmllint not found: install libxml2-utils (apt-get install -y libxml2-utils)");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut shown = String::new();
        for (p, doc) in paths.iter().zip(docs) {
            if stderr.contains(&*p.to_string_lossy()) {
                shown.push_str(&format!(
                    "--- {}\n{}\n",
                    p.display(),
                    String::from_utf8_lossy(doc)
                ));
            }
        }
        panic!("xmllint refused:\n{stderr}\n{shown}");
    }
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn period(from: NaiveDate, tom: NaiveDate) -> Period {
    Period::new(from, tom).unwrap()
}

pub fn person() -> Personnummer {
    Personnummer::parse(PERSON).unwrap()
}

pub fn sundsvall() -> Ingivare {
    Ingivare::new(
        Organisationsnummer::parse(SUNDSVALL).unwrap(),
        "Sundsvalls kommun",
        "HL000001",
    )
}

/// A question over the first quarter of 2024 with every slot included.
pub fn all_slots_question(echo: bool) -> Question {
    let p = period(date(2024, 1, 1), date(2024, 3, 31));
    QuestionBuilder::new(person(), sundsvall(), "AID00000001", p)
        .korrelationsid("00000000-0000-0000-0000-000000000001")
        .fragan_skall_inkluderas(echo)
        .include_all(Slot::ALL)
        .fk_lefi("026-51", &LefiRequest::ekonomiskt_bistand(person(), p))
        .build()
        .expect("valid question")
}
