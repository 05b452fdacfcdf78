//! When certificates and CRLs run out: each certificate's `notAfter` and each
//! CRL's `nextUpdate`, read from PEM files, for the relay's expiry metrics
//! (`shs_relay_certificate_expiry_timestamp_seconds`) and the alerts on them.
//! A certificate is named by a short SHA-256 fingerprint, never by its subject:
//! a subject may name a person or a municipality.

use std::path::Path;

use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

use crate::PkiError;

/// One certificate or CRL and when it runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// The first 16 hex digits of the SHA-256 of the DER (certificate or CRL):
    /// what `openssl x509 -noout -fingerprint -sha256` starts with.
    pub fingerprint: String,
    /// `notAfter` of a certificate, `nextUpdate` of a CRL, in Unix seconds.
    pub at: i64,
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every certificate in a PEM file (a chain or a CA bundle), in file order.
pub fn certificates(path: &Path) -> Result<Vec<Expiry>, PkiError> {
    let certs = crate::tls::load_certs(path)?;
    certs
        .iter()
        .map(|der| {
            let (_, cert) = X509Certificate::from_der(der.as_ref())
                .map_err(|e| PkiError::Certificate(format!("{}: {e}", path.display())))?;
            Ok(Expiry {
                fingerprint: fingerprint(der.as_ref()),
                at: cert.validity().not_after.timestamp(),
            })
        })
        .collect()
}

/// Every CRL in a PEM (or single DER) file with its `nextUpdate`; a CRL
/// without one never runs out and is left out.
pub fn crls(path: &Path) -> Result<Vec<Expiry>, PkiError> {
    let bytes = std::fs::read(path)
        .map_err(|e| PkiError::Certificate(format!("{}: {e}", path.display())))?;
    let ders: Vec<Vec<u8>> = if bytes.starts_with(b"-----") {
        Pem::iter_from_buffer(&bytes)
            .filter_map(Result::ok)
            .filter(|p| p.label == "X509 CRL")
            .map(|p| p.contents)
            .collect()
    } else {
        vec![bytes]
    };
    let mut out = Vec::new();
    for der in ders {
        let (_, crl) = CertificateRevocationList::from_der(&der)
            .map_err(|e| PkiError::Certificate(format!("{}: {e}", path.display())))?;
        if let Some(next) = crl.next_update() {
            out.push(Expiry {
                fingerprint: fingerprint(&der),
                at: next.timestamp(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn a_bundle_gives_every_certificate_and_a_crl_its_next_update() {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::DevCa::new("Expiry Test CA").unwrap();
        let server = ca.server_cert("relay", &["localhost"]).unwrap();
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, format!("{}{}", server.cert_pem, ca.cert_pem())).unwrap();
        let found = certificates(&bundle).unwrap();
        assert_eq!(found.len(), 2);
        assert_ne!(found[0].fingerprint, found[1].fingerprint);
        assert_eq!(found[0].fingerprint.len(), 16);
        assert!(found.iter().all(|e| e.at > 0));

        let next = SystemTime::now() + Duration::from_secs(10 * 24 * 3600);
        let crl = ca.crl(&[], SystemTime::now(), next).unwrap();
        let crl_path = dir.path().join("ca.crl.pem");
        std::fs::write(&crl_path, crl).unwrap();
        let found = crls(&crl_path).unwrap();
        let want = next.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        assert_eq!(found.len(), 1);
        assert!((found[0].at - want).abs() <= 1, "{found:?} vs {want}");
    }

    #[test]
    fn a_file_that_is_not_a_certificate_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let e = certificates(&path).unwrap_err().to_string();
        assert!(e.contains("garbage.pem"), "{e}");
    }
}
