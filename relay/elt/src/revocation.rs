//! Revocation of signer certificates, checked at the signing time: the CRLs of
//! the signing CA (configured files; a CRL past its `nextUpdate` refuses every
//! report until a fresh one is loaded) and an OCSP response sent with a
//! signature (verified: the responder's signature, that the responder is the CA
//! or delegated by it, the status of exactly this certificate, and the time:
//! its thisUpdate lies between the signing time and now, give or take the
//! configured skew, so it speaks for the certificate at the signing time).
//!
//! A certificate revoked because its key was compromised (`keyCompromise`,
//! `cACompromise`) is refused whatever signing time the signature claims: the
//! signing time is the signer's own statement, and a stolen key can backdate.
//! Other revocations refuse signatures made at or after the revocation time.
//!
//! [`OcspResponder`] builds OCSP responses, for the demo and test teams.
//!
//! Not here: the chain and the signature itself ([`crate::signature`]).

use chrono::{DateTime, NaiveDateTime, Utc};
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus};
use openssl::pkey::{Id, PKey, Private};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{CrlStatus, ReasonCode, X509, X509Crl};

use crate::signature::{SignatureError, err, parse_signed_data};

/// Why revocation refused a signature. Texts name the check, never a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// The signer certificate is revoked (by a CRL or an OCSP response).
    #[error("the signer certificate is revoked ({0})")]
    Revoked(String),
    /// The OCSP response sent with the signature does not verify.
    #[error("the OCSP response does not verify: {0}")]
    Ocsp(String),
    /// The CRL for the signer's CA is past its nextUpdate: revocation cannot be
    /// checked until a fresh CRL is loaded.
    #[error(
        "the certificate revocation list of the signing CA expired at its nextUpdate; revocation cannot be checked until a fresh list is loaded"
    )]
    CrlExpired,
    /// The signature could not be read.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// Clock skew allowed on OCSP thisUpdate/nextUpdate.
pub const DEFAULT_OCSP_SKEW_S: u32 = 300;

/// The CA certificates signers are issued by, and their CRLs.
pub struct Revocation {
    issuers: Vec<X509>,
    crls: Vec<X509Crl>,
    ocsp_skew_s: u32,
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocation")
            .field("issuers", &self.issuers.len())
            .field("crls", &self.crls.len())
            .finish()
    }
}

impl Revocation {
    /// `issuers_pem`: the signing CA certificate(s); `crls`: each CRL, PEM or
    /// DER, which must be signed by one of them.
    pub fn new(
        issuers_pem: &[u8],
        crls: &[Vec<u8>],
        ocsp_skew_s: u32,
    ) -> Result<Self, SignatureError> {
        let issuers =
            X509::stack_from_pem(issuers_pem).map_err(|_| err("the signing CA is not PEM"))?;
        if issuers.is_empty() {
            return Err(err("no signing CA certificate found"));
        }
        let mut loaded = Vec::new();
        for (i, bytes) in crls.iter().enumerate() {
            let crl = X509Crl::from_pem(bytes)
                .or_else(|_| X509Crl::from_der(bytes))
                .map_err(|_| err(format!("CRL {}: neither PEM nor DER", i + 1)))?;
            let issuer = issuers
                .iter()
                .find(|c| same_name(c.subject_name(), crl.issuer_name()))
                .ok_or_else(|| err(format!("CRL {}: not issued by the signing CA", i + 1)))?;
            let key = issuer.public_key().map_err(|e| err(e.to_string()))?;
            if !crl.verify(&key).unwrap_or(false) {
                return Err(err(format!(
                    "CRL {}: its signature does not verify with the signing CA's key",
                    i + 1
                )));
            }
            loaded.push(crl);
        }
        Ok(Self {
            issuers,
            crls: loaded,
            ocsp_skew_s,
        })
    }

    /// Reads the CA file and the CRL files.
    pub fn load(
        issuers: &std::path::Path,
        crls: &[std::path::PathBuf],
        ocsp_skew_s: u32,
    ) -> Result<Self, SignatureError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| err(format!("{}: {e}", p.display())))
        };
        let pem = read(issuers)?;
        let crls = crls
            .iter()
            .map(|p| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(&pem, &crls, ocsp_skew_s)
    }

    /// Checks the signer of `signature` (a CMS SignedData, DER) at its signing
    /// time against the CRLs and, when sent, its OCSP response. A signer from
    /// another CA passes here (the chain check refuses it).
    pub fn check(
        &self,
        signature: &[u8],
        ocsp: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> Result<(), RevocationError> {
        let parsed = parse_signed_data(signature)?;
        let cert =
            X509::from_der(&parsed.signer).map_err(|_| err("the signer certificate is broken"))?;
        let Some(issuer) = self
            .issuers
            .iter()
            .find(|c| same_name(c.subject_name(), cert.issuer_name()))
        else {
            return Ok(());
        };
        let signed = parsed.signing_time;
        for crl in self
            .crls
            .iter()
            .filter(|c| same_name(c.issuer_name(), cert.issuer_name()))
        {
            let next = crl.next_update().map(to_utc).transpose()?;
            if next.is_none_or(|n| n < now) {
                return Err(RevocationError::CrlExpired);
            }
            if let CrlStatus::Revoked(entry) = crl.get_by_cert(&cert) {
                let reason = entry
                    .extension::<ReasonCode>()
                    .ok()
                    .flatten()
                    .and_then(|(_, r)| r.get_i64().ok());
                let at = to_utc(entry.revocation_date())?;
                refuse_if_revoked(reason, at, signed, "listed in the CA's revocation list")?;
            }
        }
        if let Some(der) = ocsp {
            self.check_ocsp(der, &cert, issuer, signed, now)?;
        }
        Ok(())
    }

    fn check_ocsp(
        &self,
        der: &[u8],
        cert: &X509,
        issuer: &X509,
        signed: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), RevocationError> {
        let bad = |m: &str| RevocationError::Ocsp(m.to_owned());
        let response = OcspResponse::from_der(der).map_err(|_| bad("not a DER OCSP response"))?;
        if response.status() != OcspResponseStatus::SUCCESSFUL {
            return Err(bad("the responder did not answer successfully"));
        }
        let basic = response
            .basic()
            .map_err(|_| bad("not a basic OCSP response"))?;
        let mut store = X509StoreBuilder::new().map_err(|e| err(e.to_string()))?;
        for c in &self.issuers {
            store.add_cert(c.clone()).map_err(|e| err(e.to_string()))?;
        }
        let store = store.build();
        let none = Stack::new().map_err(|e| err(e.to_string()))?;
        basic.verify(&none, &store, OcspFlag::empty()).map_err(|_| {
            bad("its signature, or its responder (the CA or a responder the CA delegated), is not trusted")
        })?;
        let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)
            .map_err(|e| err(e.to_string()))?;
        let status = basic
            .find_status(&id)
            .ok_or_else(|| bad("it does not cover the signer certificate"))?;
        // Evidence of the status at the signing time: produced at or after the
        // signing (less the skew) and not in the future.
        let skew = chrono::Duration::seconds(i64::from(self.ocsp_skew_s));
        let this_update = generalized(&status.this_update.to_string())?;
        if this_update < signed - skew || this_update > now + skew {
            return Err(bad(
                "its thisUpdate is not between the signing time and now: fetch it when signing",
            ));
        }
        if let Some(next) = status.next_update()
            && generalized(&next.to_string())? < this_update
        {
            return Err(bad("its nextUpdate is before its thisUpdate"));
        }
        if status.status == OcspCertStatus::GOOD {
            Ok(())
        } else if status.status == OcspCertStatus::REVOKED {
            let at = status
                .revocation_time
                .map(|t| generalized(&t.to_string()))
                .transpose()?
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            refuse_if_revoked(
                Some(i64::from(status.reason.as_raw())),
                at,
                signed,
                "by its OCSP response",
            )
        } else {
            Err(bad("the responder does not know the signer certificate"))
        }
    }
}

/// RFC 5280 reason codes that make every signature of the key suspect.
const KEY_COMPROMISE: i64 = 1;
const CA_COMPROMISE: i64 = 2;

fn refuse_if_revoked(
    reason: Option<i64>,
    at: DateTime<Utc>,
    signed: DateTime<Utc>,
    how: &str,
) -> Result<(), RevocationError> {
    if matches!(reason, Some(KEY_COMPROMISE | CA_COMPROMISE)) {
        return Err(RevocationError::Revoked(format!(
            "{how}: key compromised, so no signing time is trusted"
        )));
    }
    if at <= signed {
        return Err(RevocationError::Revoked(format!(
            "{how}: revoked before the signing time"
        )));
    }
    Ok(())
}

fn same_name(a: &openssl::x509::X509NameRef, b: &openssl::x509::X509NameRef) -> bool {
    match (a.to_der(), b.to_der()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn to_utc(t: &openssl::asn1::Asn1TimeRef) -> Result<DateTime<Utc>, SignatureError> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(|e| err(e.to_string()))?;
    let d = epoch.diff(t).map_err(|e| err(e.to_string()))?;
    DateTime::from_timestamp(i64::from(d.days) * 86_400 + i64::from(d.secs), 0)
        .ok_or_else(|| err("a time out of range"))
}

/// OpenSSL prints a GeneralizedTime as `Dec  1 07:02:53 2026 GMT`.
fn generalized(text: &str) -> Result<DateTime<Utc>, SignatureError> {
    NaiveDateTime::parse_from_str(text, "%b %e %H:%M:%S %Y GMT")
        .map(|t| t.and_utc())
        .map_err(|_| err("an OCSP time OpenSSL printed unexpectedly"))
}

/// What an OCSP response says about a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    Good,
    Revoked {
        at: DateTime<Utc>,
        key_compromise: bool,
    },
    Unknown,
}

/// Signs OCSP responses (RFC 6960, one SingleResponse, the responder's
/// certificate included): the demo and test teams make the responses a vendor
/// would fetch from the CA's responder.
pub struct OcspResponder {
    cert: X509,
    key: PKey<Private>,
}

impl OcspResponder {
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, SignatureError> {
        Ok(Self {
            cert: X509::from_pem(cert_pem)
                .map_err(|_| err("the responder certificate is not PEM"))?,
            key: PKey::private_key_from_pem(key_pem)
                .map_err(|_| err("the responder key is not a PEM private key"))?,
        })
    }

    /// A DER `OCSPResponse` about `subject_pem` (issued by `issuer_pem`).
    pub fn respond(
        &self,
        issuer_pem: &[u8],
        subject_pem: &[u8],
        status: OcspStatus,
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
    ) -> Result<Vec<u8>, SignatureError> {
        use der_out::*;
        let issuer = X509::from_pem(issuer_pem).map_err(|_| err("the issuer is not PEM"))?;
        let subject = X509::from_pem(subject_pem).map_err(|_| err("the subject is not PEM"))?;
        let sha1 = |b: &[u8]| openssl::sha::sha1(b).to_vec();
        let key_bits = |c: &X509| -> Result<Vec<u8>, SignatureError> {
            let der = c.to_der().map_err(|e| err(e.to_string()))?;
            let (_, parsed) = x509_parser::parse_x509_certificate(&der)
                .map_err(|_| err("a certificate is broken"))?;
            Ok(parsed.public_key().subject_public_key.data.to_vec())
        };
        let name = issuer
            .subject_name()
            .to_der()
            .map_err(|e| err(e.to_string()))?;
        let serial = subject
            .serial_number()
            .to_bn()
            .map(|b| b.to_vec())
            .map_err(|e| err(e.to_string()))?;
        let cert_id = seq(&[
            &seq(&[SHA1_OID, NULL]),
            &tlv(0x04, &sha1(&name)),
            &tlv(0x04, &sha1(&key_bits(&issuer)?)),
            &integer(&serial),
        ]);
        let cert_status = match status {
            OcspStatus::Good => vec![0x80, 0x00],
            OcspStatus::Revoked { at, key_compromise } => {
                let reason = if key_compromise { 1 } else { 5 };
                tlv(0xA1, &[time(at), tlv(0xA0, &tlv(0x0A, &[reason]))].concat())
            }
            OcspStatus::Unknown => vec![0x82, 0x00],
        };
        let single = seq(&[
            &cert_id,
            &cert_status,
            &time(this_update),
            &tlv(0xA0, &time(next_update)),
        ]);
        let tbs = seq(&[
            &tlv(0xA2, &tlv(0x04, &sha1(&key_bits(&self.cert)?))),
            &time(this_update),
            &seq(&[&single]),
        ]);
        let algorithm: Vec<u8> = match self.key.id() {
            Id::EC => seq(&[ECDSA_SHA256_OID]),
            Id::RSA => seq(&[RSA_SHA256_OID, NULL]),
            _ => return Err(err("the responder key must be EC or RSA")),
        };
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &self.key)
            .map_err(|e| err(e.to_string()))?;
        let signature = signer
            .sign_oneshot_to_vec(&tbs)
            .map_err(|e| err(e.to_string()))?;
        let responder = self.cert.to_der().map_err(|e| err(e.to_string()))?;
        let basic = seq(&[
            &tbs,
            &algorithm,
            &tlv(0x03, &[&[0u8][..], &signature].concat()),
            &tlv(0xA0, &seq(&[&responder])),
        ]);
        Ok(seq(&[
            &tlv(0x0A, &[0]),
            &tlv(0xA0, &seq(&[OCSP_BASIC_OID, &tlv(0x04, &basic)])),
        ]))
    }
}

/// Just enough DER writing for an OCSP response.
mod der_out {
    use chrono::{DateTime, Utc};

    pub const NULL: &[u8] = &[0x05, 0x00];
    pub const SHA1_OID: &[u8] = &[0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A];
    pub const ECDSA_SHA256_OID: &[u8] =
        &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
    pub const RSA_SHA256_OID: &[u8] = &[
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B,
    ];
    pub const OCSP_BASIC_OID: &[u8] = &[
        0x06, 0x09, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01,
    ];

    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes = n.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(bytes.get(skip..).unwrap_or_default());
        }
        out.extend_from_slice(content);
        out
    }

    pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    /// A non-negative INTEGER from big-endian magnitude bytes.
    pub fn integer(magnitude: &[u8]) -> Vec<u8> {
        let trimmed: Vec<u8> = match magnitude.iter().position(|b| *b != 0) {
            Some(i) => magnitude.get(i..).unwrap_or_default().to_vec(),
            None => vec![0],
        };
        if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
            tlv(0x02, &[&[0u8][..], &trimmed].concat())
        } else {
            tlv(0x02, &trimmed)
        }
    }

    pub fn time(t: DateTime<Utc>) -> Vec<u8> {
        tlv(0x18, t.format("%Y%m%d%H%M%SZ").to_string().as_bytes())
    }
}
