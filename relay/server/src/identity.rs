//! Who is calling: the caller's organisation comes only from its TLS client
//! certificate, mapped by the configured rule.

use relay_ident::Organisationsnummer;
use relay_pki::identity::PeerSubject;

use crate::Relay;
use crate::config::{IdentityRules, SubjectField};
use crate::failure::{Code, Failure};

/// The verified client certificate of a connection (DER), attached to every request.
#[derive(Clone, Debug)]
pub struct PeerCert(pub std::sync::Arc<Vec<u8>>);

/// The caller of one request, as its certificate and the configuration say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub org: Organisationsnummer,
    /// SHA-256 (lower-case hex) of the client certificate's DER.
    pub fingerprint: Option<String>,
    pub role: Role,
}

/// What the configuration makes of the caller's organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An organisation acting for itself (a municipality, a vendor, an agency).
    Organisation,
    /// A configured personuppgiftsbiträde, which may act for named municipalities.
    Processor,
}

impl Caller {
    /// The caller an accepted message came from, when it is processed again
    /// after a restart (its certificate was checked when it came).
    pub fn of_org(relay: &Relay, org: Organisationsnummer) -> Caller {
        let role = if relay.live().config.processors.iter().any(|p| p.org == org) {
            Role::Processor
        } else {
            Role::Organisation
        };
        Caller {
            org,
            fingerprint: None,
            role,
        }
    }

    /// Identifies the caller from a verified peer certificate.
    pub fn identify(relay: &Relay, der: Option<&[u8]>) -> Result<Caller, Failure> {
        let live = relay.live();
        let org = organisation_of(&live.config.identity, der).map_err(|e| {
            Failure::caller(
                Code::Shs(relay_shs::ErrorCode::UnknownSender),
                e.to_string(),
            )
        })?;
        let role = if live.config.processors.iter().any(|p| p.org == org) {
            Role::Processor
        } else {
            Role::Organisation
        };
        Ok(Caller {
            org,
            fingerprint: fingerprint_of(der),
            role,
        })
    }
}

/// Why a certificate could not be mapped to an organisation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("no client certificate")]
    NoCertificate,
    #[error("client certificate does not parse")]
    Unparseable,
    #[error("client certificate subject has no {0}")]
    MissingField(&'static str),
    #[error("client certificate {0} is not a valid organisation number")]
    NotAnOrganisation(&'static str),
}

/// The SHA-256 fingerprint (lower-case hex) of a peer certificate, as
/// `identity.fingerprints` and `elt.test_only_certificates` name certificates.
pub fn fingerprint_of(der: Option<&[u8]>) -> Option<String> {
    der.and_then(PeerSubject::from_der)
        .map(|s| s.sha256_fingerprint)
}

/// Maps a verified peer certificate to the caller's organisation number.
pub fn organisation_of(
    rules: &IdentityRules,
    der: Option<&[u8]>,
) -> Result<Organisationsnummer, IdentityError> {
    let der = der.ok_or(IdentityError::NoCertificate)?;
    let subject = PeerSubject::from_der(der).ok_or(IdentityError::Unparseable)?;
    if let Some(f) = rules.fingerprints.iter().find(|f| {
        f.sha256
            .replace(':', "")
            .eq_ignore_ascii_case(&subject.sha256_fingerprint)
    }) {
        return Ok(f.org);
    }
    let (name, value) = match rules.from {
        SubjectField::SerialNumber => ("serialNumber", subject.serial_number),
        SubjectField::Organisation => ("O", subject.organisation),
        SubjectField::CommonName => ("CN", subject.common_name),
    };
    let value = value.ok_or(IdentityError::MissingField(name))?;
    // Certificates often write the number with a country prefix ("SE2120002411")
    // or a dash; keep the digits.
    let digits: String = value
        .trim()
        .trim_start_matches("SE")
        .chars()
        .filter(|c| *c != '-')
        .collect();
    Organisationsnummer::parse(&digits).map_err(|_| IdentityError::NotAnOrganisation(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FingerprintIdentity;
    use relay_pki::{DevCa, Subject};

    fn der(subject: &Subject<'_>) -> Vec<u8> {
        let ca = DevCa::new("ca").unwrap();
        let pem = ca.client_cert(subject).unwrap().cert_pem;
        relay_pki::tls::parse_certs(pem.as_bytes(), std::path::Path::new("mem")).unwrap()[0]
            .to_vec()
    }

    #[test]
    fn the_organisation_comes_from_the_configured_subject_field() {
        let d = der(&Subject {
            serial_number: Some("SE2120002411"),
            organisation: Some("2120000142"),
            common_name: "not a number",
        });
        let mut rules = IdentityRules::default();
        assert_eq!(
            organisation_of(&rules, Some(&d)).unwrap().as_str(),
            "2120002411"
        );
        rules.from = SubjectField::Organisation;
        assert_eq!(
            organisation_of(&rules, Some(&d)).unwrap().as_str(),
            "2120000142"
        );
        rules.from = SubjectField::CommonName;
        assert_eq!(
            organisation_of(&rules, Some(&d)),
            Err(IdentityError::NotAnOrganisation("CN"))
        );
    }

    #[test]
    fn a_fingerprint_rule_wins() {
        let d = der(&Subject {
            serial_number: None,
            organisation: None,
            common_name: "x",
        });
        let fp = PeerSubject::from_der(&d).unwrap().sha256_fingerprint;
        let rules = IdentityRules {
            from: SubjectField::SerialNumber,
            fingerprints: vec![FingerprintIdentity {
                sha256: fp.to_uppercase(),
                org: Organisationsnummer::parse("2120001355").unwrap(),
            }],
        };
        assert_eq!(
            organisation_of(&rules, Some(&d)).unwrap().as_str(),
            "2120001355"
        );
        assert_eq!(
            organisation_of(&IdentityRules::default(), Some(&d)),
            Err(IdentityError::MissingField("serialNumber"))
        );
        assert_eq!(
            organisation_of(&rules, None),
            Err(IdentityError::NoCertificate)
        );
    }
}
