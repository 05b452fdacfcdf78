//! `cargo bench -p relay-elt`: what one ELT call costs the relay and the fk
//! adapter in CPU: reading a month's report against the schema and rules,
//! signing, and verifying one detached CMS signature (chain included).

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use chrono::{NaiveDate, Utc};
use relay_elt::example::ExampleReport;
use relay_elt::{Report, Signer, TrustAnchors};
use relay_pki::{DevCa, Subject};

fn main() {
    divan::main();
}

fn report() -> Vec<u8> {
    ExampleReport {
        insured: "191212121212",
        assistant: "190308189802",
        anordnare: "5566770029",
        month: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        id: uuid::Uuid::nil(),
    }
    .to_xml()
    .into_bytes()
}

fn material() -> (Vec<u8>, Signer, TrustAnchors) {
    let ca = DevCa::new("bench CA").unwrap();
    let cert = ca
        .signing_cert(&Subject {
            serial_number: Some("190308189802"),
            organisation: None,
            common_name: "Assistent",
        })
        .unwrap();
    (
        report(),
        Signer::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap(),
        TrustAnchors::from_pem(ca.cert_pem().as_bytes()).unwrap(),
    )
}

/// A month of rows (the example: 71 rows, about 20 kB).
#[divan::bench]
fn read_report(b: divan::Bencher) {
    let r = report();
    b.counter(divan::counter::BytesCount::of_slice(&r))
        .bench(|| Report::parse(divan::black_box(&r)).unwrap());
}

#[divan::bench]
fn sign(b: divan::Bencher) {
    let (r, signer, _) = material();
    b.bench(|| signer.sign(divan::black_box(&r)).unwrap());
}

#[divan::bench]
fn verify_signature(b: divan::Bencher) {
    let (r, signer, anchors) = material();
    let sig = signer.sign(&r).unwrap();
    b.bench(|| {
        relay_elt::signature::verify(divan::black_box(&sig), &r, &anchors, Utc::now()).unwrap()
    });
}
