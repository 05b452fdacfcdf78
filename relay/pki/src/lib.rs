//! # relay-pki
//!
//! Certificates and TLS set-up shared by every shs-relay process.
//!
//! - [`DevCa`] generates a development PKI with rcgen at run time: a CA, server
//!   certificates for the relay, the adapters and the simulator, client certificates
//!   for organisations (organisation number in the subject's `serialNumber`, name in
//!   `O`), document-signing certificates, delegated OCSP responder certificates
//!   and CRLs (the demo's revoked ELT signer). Nothing generated here is meant for
//!   production, and nothing is ever committed to the repository.
//! - [`tls`] builds rustls configurations from PEM files: servers that require a
//!   client certificate chaining to a configured CA, and clients that present one.
//! - [`identity`] reads the subject of a peer certificate, so a server can tell which
//!   organisation is calling.
//! - [`expiry`] reads when certificates (`notAfter`) and CRLs (`nextUpdate`) run
//!   out, for the relay's expiry metrics.
//!
//! Not for: production key management, checking revocation, or certificate policy; operators
//! bring their own PKI and point the configuration at its PEM files.

pub mod expiry;
pub mod identity;
pub mod tls;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};

/// OID of the X.520 `serialNumber` attribute, where Swedish organisation
/// certificates carry the organisation number.
pub const OID_SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];

/// Errors from generating or loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("certificate: {0}")]
    Certificate(String),
}

/// A certificate to list in a CRL ([`DevCa::crl`]).
#[derive(Debug, Clone)]
pub struct Revoked<'a> {
    /// The certificate (PEM), issued by the CA that signs the CRL.
    pub cert_pem: &'a str,
    /// When the CA revoked it.
    pub at: std::time::SystemTime,
    /// Revoked because its key was compromised (`keyCompromise`), else for
    /// `cessationOfOperation`.
    pub key_compromise: bool,
}

fn offset(t: std::time::SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(t)
}

/// A certificate and its private key (PKCS#8), both PEM.
#[derive(Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert").finish_non_exhaustive()
    }
}

/// Paths of a certificate and key written to disk.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl IssuedCert {
    /// Writes `DIR/STEM.pem` and `DIR/STEM-key.pem` (the key readable by the owner only).
    pub fn write(&self, dir: &Path, stem: &str) -> Result<CertFiles, PkiError> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}-key.pem"));
        write_file(&cert, self.cert_pem.as_bytes(), 0o644)?;
        write_file(&key, self.key_pem.as_bytes(), 0o600)?;
        Ok(CertFiles { cert, key })
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::write(path, bytes).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}

/// Who a client certificate is issued to.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// Goes into the subject's `serialNumber` (e.g. an organisation number).
    pub serial_number: Option<&'a str>,
    /// Goes into `O`.
    pub organisation: Option<&'a str>,
    /// Goes into `CN`.
    pub common_name: &'a str,
}

/// A development certificate authority.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

impl DevCa {
    /// A new self-signed CA with the given common name.
    pub fn new(common_name: &str) -> Result<Self, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "shs-relay development PKI");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let key_pem = key.serialize_pem();
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem,
            key_pem,
        })
    }

    /// Loads a CA written earlier by [`IssuedCert::write`] (e.g. the demo's), so
    /// more certificates can be issued under it.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Self {
            issuer: Issuer::from_ca_cert_pem(cert_pem, key)?,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA certificate and key, e.g. to write them beside the issued ones.
    pub fn as_issued(&self) -> IssuedCert {
        IssuedCert {
            cert_pem: self.cert_pem(),
            key_pem: self.key_pem.clone(),
        }
    }

    /// A TLS server certificate for the given names (DNS names or IP addresses).
    /// It is also valid as a client certificate, so one identity can serve both
    /// sides of a mutual-TLS link (the relay calling adapters, for example).
    pub fn server_cert(&self, common_name: &str, names: &[&str]) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*n).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.issue(params)
    }

    /// A TLS client certificate for an organisation or system.
    pub fn client_cert(&self, subject: &Subject<'_>) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = subject_dn(subject);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    /// A TLS client certificate, as [`DevCa::client_cert`], that expires in
    /// `days` days (to try certificate-expiry warnings).
    pub fn client_cert_expiring(
        &self,
        subject: &Subject<'_>,
        days: i64,
    ) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = subject_dn(subject);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(days);
        self.issue(params)
    }

    /// A document-signing certificate (e.g. for CMS signatures on ELT time reports).
    pub fn signing_cert(&self, subject: &Subject<'_>) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = subject_dn(subject);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
        self.issue(params)
    }

    /// A delegated OCSP responder certificate (extended key usage
    /// `id-kp-OCSPSigning`): OCSP responses signed with it are trusted for the
    /// certificates this CA issues.
    pub fn ocsp_responder_cert(&self, common_name: &str) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        self.issue(params)
    }

    /// A CRL (PEM) of this CA listing `revoked`, issued at `this_update` and
    /// valid until `next_update`.
    pub fn crl(
        &self,
        revoked: &[Revoked<'_>],
        this_update: std::time::SystemTime,
        next_update: std::time::SystemTime,
    ) -> Result<String, PkiError> {
        let revoked_certs = revoked
            .iter()
            .map(|r| {
                let (_, pem) = x509_parser::pem::parse_x509_pem(r.cert_pem.as_bytes())
                    .map_err(|e| PkiError::Certificate(e.to_string()))?;
                let cert = pem
                    .parse_x509()
                    .map_err(|e| PkiError::Certificate(e.to_string()))?;
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(cert.raw_serial()),
                    revocation_time: offset(r.at),
                    reason_code: Some(if r.key_compromise {
                        RevocationReason::KeyCompromise
                    } else {
                        RevocationReason::CessationOfOperation
                    }),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let number = this_update
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs());
        let params = CertificateRevocationListParams {
            this_update: offset(this_update),
            next_update: offset(next_update),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }

    fn issue(&self, mut params: CertificateParams) -> Result<IssuedCert, PkiError> {
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn subject_dn(subject: &Subject<'_>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, subject.common_name);
    if let Some(o) = subject.organisation {
        dn.push(DnType::OrganizationName, o);
    }
    if let Some(serial) = subject.serial_number {
        dn.push(DnType::CustomDnType(OID_SERIAL_NUMBER.to_vec()), serial);
    }
    dn.push(DnType::CountryName, "SE");
    dn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_certificate_carries_the_organisation_in_its_subject() {
        let ca = DevCa::new("test CA").unwrap();
        let cert = ca
            .client_cert(&Subject {
                serial_number: Some("2120002411"),
                organisation: Some("Sundsvalls kommun"),
                common_name: "Sundsvalls kommun SSBTEK",
            })
            .unwrap();
        let der = tls::parse_certs(cert.cert_pem.as_bytes(), Path::new("mem")).unwrap();
        let subject = identity::PeerSubject::from_der(der[0].as_ref()).unwrap();
        assert_eq!(subject.serial_number.as_deref(), Some("2120002411"));
        assert_eq!(subject.organisation.as_deref(), Some("Sundsvalls kommun"));
        assert_eq!(
            subject.common_name.as_deref(),
            Some("Sundsvalls kommun SSBTEK")
        );
        assert_eq!(subject.sha256_fingerprint.len(), 64);
    }

    #[test]
    fn a_loaded_ca_issues_certificates_that_chain_to_the_original() {
        let ca = DevCa::new("ca").unwrap();
        let again = DevCa::load(&ca.cert_pem(), &ca.as_issued().key_pem).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
        let issued = again
            .client_cert(&Subject {
                serial_number: None,
                organisation: None,
                common_name: "x",
            })
            .unwrap();
        let der = tls::parse_certs(issued.cert_pem.as_bytes(), Path::new("mem")).unwrap();
        let ca_der = tls::parse_certs(ca.cert_pem().as_bytes(), Path::new("mem")).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(der[0].as_ref()).unwrap();
        let (_, root) = x509_parser::parse_x509_certificate(ca_der[0].as_ref()).unwrap();
        assert!(leaf.verify_signature(Some(root.public_key())).is_ok());
    }

    #[test]
    fn written_keys_are_private_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::new("test CA").unwrap();
        let files = ca
            .server_cert("relay", &["localhost", "127.0.0.1"])
            .unwrap()
            .write(dir.path(), "relay")
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            std::fs::read_to_string(&files.cert)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
    }
}
