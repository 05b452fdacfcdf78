//! What a peer certificate says about its holder.

use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

/// The parts of a certificate subject that identify an organisation or system,
/// plus the certificate's SHA-256 fingerprint (lower-case hex of the DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSubject {
    pub serial_number: Option<String>,
    pub organisation: Option<String>,
    pub common_name: Option<String>,
    pub sha256_fingerprint: String,
}

impl PeerSubject {
    /// Reads the subject of a DER certificate. `None` if it does not parse.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let subject = cert.subject();
        let first = |attrs: &mut dyn Iterator<Item = &AttributeTypeAndValue<'_>>| {
            attrs
                .next()
                .and_then(|a| a.as_str().ok())
                .map(str::to_owned)
        };
        let serial_number =
            first(&mut subject.iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER));
        Some(Self {
            serial_number,
            organisation: first(&mut subject.iter_organization()),
            common_name: first(&mut subject.iter_common_name()),
            sha256_fingerprint: Sha256::digest(der)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        })
    }
}
