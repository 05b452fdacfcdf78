//! Signer certificates against the signing CA's CRLs and OCSP responses, at the
//! signing time.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::time::{Duration, SystemTime};

use chrono::{NaiveDate, Utc};
use relay_elt::Signer;
use relay_elt::example::ExampleReport;
use relay_elt::revocation::{OcspResponder, OcspStatus, Revocation, RevocationError};
use relay_pki::{DevCa, IssuedCert, Revoked, Subject};

const HOUR: Duration = Duration::from_secs(3600);

struct Pki {
    ca: DevCa,
    signer: IssuedCert,
    responder: OcspResponder,
}

fn pki() -> Pki {
    let ca = DevCa::new("ELT signing CA").unwrap();
    let signer = ca
        .signing_cert(&Subject {
            serial_number: Some("190308189802"),
            organisation: None,
            common_name: "Assistent Testsson",
        })
        .unwrap();
    let r = ca.ocsp_responder_cert("ELT OCSP responder").unwrap();
    let responder = OcspResponder::from_pem(r.cert_pem.as_bytes(), r.key_pem.as_bytes()).unwrap();
    Pki {
        ca,
        signer,
        responder,
    }
}

fn signature(cert: &IssuedCert) -> Vec<u8> {
    let report = ExampleReport {
        insured: "191212121212",
        assistant: "190308189802",
        anordnare: "5566778899",
        month: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        id: uuid::Uuid::new_v4(),
    }
    .to_xml();
    Signer::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
        .unwrap()
        .sign(report.as_bytes())
        .unwrap()
}

fn crl(p: &Pki, revoked: &[Revoked<'_>], next_update: SystemTime) -> Vec<u8> {
    p.ca.crl(revoked, SystemTime::now() - 48 * HOUR, next_update)
        .unwrap()
        .into_bytes()
}

fn revocation(p: &Pki, crls: &[Vec<u8>]) -> Revocation {
    Revocation::new(p.ca.cert_pem().as_bytes(), crls, 300).unwrap()
}

#[test]
fn a_signer_revoked_before_the_signing_time_is_refused() {
    let p = pki();
    let list = crl(
        &p,
        &[Revoked {
            cert_pem: &p.signer.cert_pem,
            at: SystemTime::now() - HOUR,
            key_compromise: false,
        }],
        SystemTime::now() + 24 * HOUR,
    );
    let e = revocation(&p, &[list])
        .check(&signature(&p.signer), None, Utc::now())
        .unwrap_err();
    assert!(matches!(e, RevocationError::Revoked(_)), "{e}");
    assert!(e.to_string().contains("revoked"), "{e}");
}

#[test]
fn a_signature_made_before_an_ordinary_revocation_stands_but_not_after_a_key_compromise() {
    let p = pki();
    let later = |key_compromise| {
        crl(
            &p,
            &[Revoked {
                cert_pem: &p.signer.cert_pem,
                at: SystemTime::now() + HOUR,
                key_compromise,
            }],
            SystemTime::now() + 24 * HOUR,
        )
    };
    let sig = signature(&p.signer);
    revocation(&p, &[later(false)])
        .check(&sig, None, Utc::now())
        .unwrap();
    let e = revocation(&p, &[later(true)])
        .check(&sig, None, Utc::now())
        .unwrap_err();
    assert!(e.to_string().contains("key compromised"), "{e}");
}

#[test]
fn a_crl_past_its_next_update_refuses_every_signature() {
    let p = pki();
    let expired = crl(&p, &[], SystemTime::now() - HOUR);
    let e = revocation(&p, &[expired])
        .check(&signature(&p.signer), None, Utc::now())
        .unwrap_err();
    assert_eq!(e, RevocationError::CrlExpired);
    let fresh = crl(&p, &[], SystemTime::now() + HOUR);
    revocation(&p, &[fresh])
        .check(&signature(&p.signer), None, Utc::now())
        .unwrap();
}

#[test]
fn a_crl_from_another_ca_is_refused_at_load() {
    let p = pki();
    let other = DevCa::new("Other CA").unwrap();
    let list = other
        .crl(&[], SystemTime::now(), SystemTime::now() + HOUR)
        .unwrap()
        .into_bytes();
    assert!(Revocation::new(p.ca.cert_pem().as_bytes(), &[list], 300).is_err());
    assert!(Revocation::new(p.ca.cert_pem().as_bytes(), &[b"junk".to_vec()], 300).is_err());
}

#[test]
fn a_good_ocsp_response_from_the_delegated_responder_is_accepted() {
    let p = pki();
    let sig = signature(&p.signer);
    let now = Utc::now();
    let good = p
        .responder
        .respond(
            p.ca.cert_pem().as_bytes(),
            p.signer.cert_pem.as_bytes(),
            OcspStatus::Good,
            now,
            now + chrono::Duration::days(1),
        )
        .unwrap();
    revocation(&p, &[]).check(&sig, Some(&good), now).unwrap();
}

#[test]
fn forged_foreign_stale_and_revoked_ocsp_responses_are_refused() {
    let p = pki();
    let sig = signature(&p.signer);
    let now = Utc::now();
    let day = chrono::Duration::days(1);
    let respond = |responder: &OcspResponder, subject: &str, status, this_update| {
        responder
            .respond(
                p.ca.cert_pem().as_bytes(),
                subject.as_bytes(),
                status,
                this_update,
                this_update + day,
            )
            .unwrap()
    };
    let check = |der: &[u8]| revocation(&p, &[]).check(&sig, Some(der), now);

    // A flipped bit in the responder's signature.
    let mut forged = respond(&p.responder, &p.signer.cert_pem, OcspStatus::Good, now);
    let at = forged.len() - 700;
    forged[at] ^= 0x01;
    assert!(matches!(check(&forged), Err(RevocationError::Ocsp(_))));
    // Signed by a responder of another CA.
    let rogue = DevCa::new("Rogue CA").unwrap();
    let r = rogue.ocsp_responder_cert("Rogue responder").unwrap();
    let rogue = OcspResponder::from_pem(r.cert_pem.as_bytes(), r.key_pem.as_bytes()).unwrap();
    let e = check(&respond(&rogue, &p.signer.cert_pem, OcspStatus::Good, now)).unwrap_err();
    assert!(e.to_string().contains("not trusted"), "{e}");
    // About another certificate.
    let other =
        p.ca.signing_cert(&Subject {
            serial_number: Some("191212121212"),
            organisation: None,
            common_name: "Someone Else",
        })
        .unwrap();
    let e = check(&respond(
        &p.responder,
        &other.cert_pem,
        OcspStatus::Good,
        now,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("does not cover"), "{e}");
    // Fetched a day before the signing.
    let e = check(&respond(
        &p.responder,
        &p.signer.cert_pem,
        OcspStatus::Good,
        now - day,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("thisUpdate"), "{e}");
    // Revoked, and unknown.
    let revoked = OcspStatus::Revoked {
        at: now - day,
        key_compromise: false,
    };
    assert!(matches!(
        check(&respond(&p.responder, &p.signer.cert_pem, revoked, now)),
        Err(RevocationError::Revoked(_))
    ));
    let e = check(&respond(
        &p.responder,
        &p.signer.cert_pem,
        OcspStatus::Unknown,
        now,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("does not know"), "{e}");
    assert!(matches!(check(b"junk"), Err(RevocationError::Ocsp(_))));
}
