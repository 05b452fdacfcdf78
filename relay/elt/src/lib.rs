//! # relay-elt
//!
//! ELT (elektronisk tidredovisning för assistansersättning): what the relay, the
//! Försäkringskassan adapter and the `shs elt` commands share.
//!
//! - [`report`]: the `Tidredovisning` format (`schema/tidredovisning_1.xsd`), read
//!   strictly, and the service's rules (one assistant × one insured person × one
//!   month, rows inside the month, no overlapping rows, valid identity numbers);
//! - [`signature`]: detached CMS SignedData over the report's exact bytes, signed
//!   and verified (chain to trust anchors, validity at the signing time);
//! - [`revocation`]: signer certificates against the signing CA's CRLs and
//!   an OCSP response sent with the signature, at the signing time;
//! - [`calendar`]: the reported month against the arrival day (future months,
//!   rows after arrival, late reports and the payment day that applies);
//! - [`soap`]: the `SkickaTidredovisning` SOAP 1.1 shapes (request, response,
//!   faults) and the bundled WSDL;
//! - [`receipt`]: the mottagningsbekräftelse returned for an accepted report;
//! - [`example`]: a valid example report for a test person.
//! - [`xml`]: the bounded XML reader under all of them, with [`XmlLimits`].
//!
//! No input reaches a panic: `unwrap`, `expect`, indexing and string slicing
//! are denied outside tests (see `docs/robustness.md`).

pub mod calendar;
pub mod example;
pub mod receipt;
pub mod report;
pub mod revocation;
pub mod signature;
pub mod soap;
pub mod xml;

pub use receipt::Receipt;
pub use report::{Report, ReportError};
pub use signature::{SignatureError, Signer, TrustAnchors, Verified};
pub use xml::{REPORT_LIMITS, XmlLimits, envelope_limits, report_limits};

/// Namespace of `Tidredovisning`.
pub const NS_TIDREDOVISNING: &str =
    "http://schema.forsakringskassan.se/integration/isassistansersattning/tidredovisning/1";

/// The report schema.
pub const TIDREDOVISNING_XSD: &str = include_str!("../schema/tidredovisning_1.xsd");
/// The receipt schema.
pub const MOTTAGNINGSBEKRAFTELSE_XSD: &str = include_str!("../schema/mottagningsbekraftelse_1.xsd");

/// SHS `datapartType` of the report part.
pub const DATAPART_REPORT: &str = "tidredovisning";
/// SHS `datapartType`s of the two signature parts.
pub const DATAPART_ASSISTANT_SIGNATURE: &str = "assistent-signatur";
pub const DATAPART_ANORDNARE_SIGNATURE: &str = "anordnare-signatur";
/// MIME type of a signature part.
pub const SIGNATURE_MIME: &str = "application/pkcs7-signature";
/// SHS `datapartType` of the receipt in the reply.
pub const DATAPART_RECEIPT: &str = "mottagningsbekraftelse";

/// Which signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerRole {
    /// The assistant who did the work.
    Assistent,
    /// The assistance company's representative.
    Anordnare,
}

impl SignerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assistent => "assistent",
            Self::Anordnare => "anordnare",
        }
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
