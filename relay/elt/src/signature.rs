//! Detached CMS (PKCS#7) SignedData signatures over a report's exact bytes.
//!
//! Signing: OpenSSL's `CMS_sign` with `DETACHED | BINARY` (the signed attributes
//! carry content type, signing time and the SHA-256 message digest).
//!
//! Verifying, in order, each failure with its own message:
//! 1. the DER is a CMS SignedData with exactly one signer, detached, with a
//!    signing-time attribute that is not in the future;
//! 2. the signature over the signed attributes and the message digest over the
//!    exact report bytes (OpenSSL `CMS_verify`);
//! 3. the signer certificate chains to a configured trust anchor, was valid at
//!    the signing time, and may sign documents (S/MIME signing purpose).

use std::time::Duration;

use chrono::{DateTime, Utc};
use der::{Decode, Encode};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509PurposeId, X509StoreContext};

/// Why a signature was refused. Texts never contain report content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignatureError(pub String);

pub(crate) fn err(m: impl Into<String>) -> SignatureError {
    SignatureError(m.into())
}

/// Signing time allowed ahead of the verifier's clock.
const CLOCK_SKEW: Duration = Duration::from_secs(300);
const OID_SIGNING_TIME: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const OID_SIGNED_DATA: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");

/// The DER of a signature as a sender may have written it: DER as it is, or
/// PEM (`-----BEGIN PKCS7-----` / `CMS`), or base64 text of the DER. Anything
/// else is returned unchanged (and fails verification with a clear message).
pub fn der_of(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use base64::Engine;
    if bytes.first() == Some(&0x30) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return std::borrow::Cow::Borrowed(bytes);
    };
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    match base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
        Ok(der) if der.first() == Some(&0x30) => std::borrow::Cow::Owned(der),
        _ => std::borrow::Cow::Borrowed(bytes),
    }
}

/// A signer: certificate and PKCS#8 private key.
pub struct Signer {
    cert: X509,
    key: PKey<Private>,
}

impl Signer {
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, SignatureError> {
        Ok(Self {
            cert: X509::from_pem(cert_pem).map_err(|_| err("the signer certificate is not PEM"))?,
            key: PKey::private_key_from_pem(key_pem)
                .map_err(|_| err("the signer key is not a PEM private key"))?,
        })
    }

    /// The signer certificate's subject `serialNumber` (the personnummer or
    /// organisation number a verifier compares with the report), if it has one.
    pub fn serial_number(&self) -> Option<String> {
        subject_serial_number(&self.cert.to_der().ok()?)
    }

    /// A detached CMS SignedData (DER) over `content`.
    pub fn sign(&self, content: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let cms = CmsContentInfo::sign(
            Some(&self.cert),
            Some(&self.key),
            None,
            Some(content),
            CMSOptions::DETACHED | CMSOptions::BINARY,
        )
        .map_err(|e| err(format!("signing failed: {e}")))?;
        cms.to_der()
            .map_err(|e| err(format!("encoding the signature failed: {e}")))
    }
}

/// The certificates signer chains must end in.
pub struct TrustAnchors {
    certs: Vec<X509>,
}

impl TrustAnchors {
    /// One or more PEM certificates.
    pub fn from_pem(pem: &[u8]) -> Result<Self, SignatureError> {
        let certs = X509::stack_from_pem(pem).map_err(|_| err("the trust anchors are not PEM"))?;
        if certs.is_empty() {
            return Err(err("no trust anchor certificate found"));
        }
        Ok(Self { certs })
    }

    /// A store of the anchors that checks chains at `time` for document signing.
    fn store_at(&self, time: DateTime<Utc>) -> Result<X509Store, SignatureError> {
        let mut store = X509StoreBuilder::new().map_err(|e| err(e.to_string()))?;
        for c in &self.certs {
            store.add_cert(c.clone()).map_err(|e| err(e.to_string()))?;
        }
        let mut param = X509VerifyParam::new().map_err(|e| err(e.to_string()))?;
        param.set_time(time.timestamp() as _);
        store.set_param(&param).map_err(|e| err(e.to_string()))?;
        store
            .set_purpose(X509PurposeId::SMIME_SIGN)
            .map_err(|e| err(e.to_string()))?;
        Ok(store.build())
    }

    pub fn load(path: &std::path::Path) -> Result<Self, SignatureError> {
        let pem =
            std::fs::read(path).map_err(|e| err(format!("reading {}: {e}", path.display())))?;
        Self::from_pem(&pem)
    }
}

/// A signature that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The signer certificate's subject `serialNumber` (a personnummer or an
    /// organisation number in Swedish e-identity certificates).
    pub serial_number: Option<String>,
    /// The signer certificate's SHA-256 fingerprint, lower-case hex.
    pub fingerprint: String,
    pub signing_time: DateTime<Utc>,
}

/// Verifies `signature` (DER, or base64 of DER is not accepted here) over the
/// exact `content` bytes against `anchors`, at `now`.
pub fn verify(
    signature: &[u8],
    content: &[u8],
    anchors: &TrustAnchors,
    now: DateTime<Utc>,
) -> Result<Verified, SignatureError> {
    let parsed = parse_signed_data(signature)?;
    if parsed.signing_time > now + chrono::Duration::from_std(CLOCK_SKEW).unwrap_or_default() {
        return Err(err("the signing time is in the future"));
    }
    // 2. Signature and digest over the exact bytes (the chain comes next, at the
    //    signing time rather than now).
    let cms = CmsContentInfo::from_der(signature)
        .map_err(|_| err("the signature is not a CMS structure"))?;
    let mut cms = cms;
    let empty = X509StoreBuilder::new()
        .map_err(|e| err(e.to_string()))?
        .build();
    cms.verify(
        None,
        Some(&empty),
        Some(content),
        None,
        CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY,
    )
    .map_err(|_| {
        err("the signature does not verify over the report's exact bytes (digest or signature mismatch)")
    })?;
    // 3. The chain, at the signing time.
    let cert =
        X509::from_der(&parsed.signer).map_err(|_| err("the signer certificate is broken"))?;
    let mut chain = Stack::new().map_err(|e| err(e.to_string()))?;
    for other in &parsed.others {
        if let Ok(c) = X509::from_der(other) {
            chain.push(c).map_err(|e| err(e.to_string()))?;
        }
    }
    let store = anchors.store_at(parsed.signing_time)?;
    let mut ctx = X509StoreContext::new().map_err(|e| err(e.to_string()))?;
    let outcome = ctx
        .init(&store, &cert, &chain, |c| {
            let ok = c.verify_cert()?;
            Ok((ok, c.error()))
        })
        .map_err(|e| err(format!("verifying the certificate chain failed: {e}")))?;
    if !outcome.0 {
        return Err(err(format!(
            "the signer certificate is not trusted at the signing time: {}",
            outcome.1.error_string()
        )));
    }
    let digest = openssl::sha::sha256(&parsed.signer);
    Ok(Verified {
        serial_number: subject_serial_number(&parsed.signer),
        fingerprint: digest.iter().map(|b| format!("{b:02x}")).collect(),
        signing_time: parsed.signing_time,
    })
}

pub(crate) struct Parsed {
    pub(crate) signer: Vec<u8>,
    pub(crate) others: Vec<Vec<u8>>,
    pub(crate) signing_time: DateTime<Utc>,
}

pub(crate) fn parse_signed_data(der_bytes: &[u8]) -> Result<Parsed, SignatureError> {
    use cms::cert::CertificateChoices;
    use cms::content_info::ContentInfo;
    use cms::signed_data::{SignedData, SignerIdentifier};
    let info = ContentInfo::from_der(der_bytes)
        .map_err(|_| err("the signature is not a DER CMS ContentInfo"))?;
    if info.content_type != OID_SIGNED_DATA {
        return Err(err("the signature is not a CMS SignedData"));
    }
    let content = info
        .content
        .to_der()
        .map_err(|_| err("the SignedData is broken"))?;
    let signed = SignedData::from_der(&content).map_err(|_| err("the SignedData is broken"))?;
    if signed.encap_content_info.econtent.is_some() {
        return Err(err(
            "the signature must be detached (it must not carry the report itself)",
        ));
    }
    let signers: Vec<_> = signed.signer_infos.0.iter().collect();
    let [signer] = signers.as_slice() else {
        return Err(err("the signature must have exactly one signer"));
    };
    let time = signer
        .signed_attrs
        .as_ref()
        .and_then(|attrs| attrs.iter().find(|a| a.oid == OID_SIGNING_TIME))
        .and_then(|a| a.values.iter().next())
        .and_then(|v| v.to_der().ok())
        .and_then(|d| x509_time::Time::from_der(&d).ok())
        .ok_or_else(|| err("the signature has no signing-time attribute"))?;
    let signing_time = DateTime::<Utc>::from(std::time::UNIX_EPOCH + time.to_unix_duration());
    let mut found = None;
    let mut others = Vec::new();
    for choice in signed.certificates.iter().flat_map(|set| set.0.iter()) {
        let CertificateChoices::Certificate(cert) = choice else {
            continue;
        };
        let der_cert = cert
            .to_der()
            .map_err(|_| err("a certificate in the signature is broken"))?;
        let is_signer = match &signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(isn) => {
                cert.tbs_certificate.issuer == isn.issuer
                    && cert.tbs_certificate.serial_number == isn.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                subject_key_id(&der_cert).is_some_and(|k| k == ski.0.as_bytes())
            }
        };
        if is_signer && found.is_none() {
            found = Some(der_cert);
        } else {
            others.push(der_cert);
        }
    }
    let signer = found.ok_or_else(|| err("the signature does not carry its signer certificate"))?;
    Ok(Parsed {
        signer,
        others,
        signing_time,
    })
}

use cms::cert::x509::time as x509_time;

fn subject_key_id(der_cert: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der_cert).ok()?;
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

fn subject_serial_number(der_cert: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der_cert).ok()?;
    cert.subject()
        .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned)
}
