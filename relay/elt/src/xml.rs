//! ELT documents on the relay's one XML foundation (`relay-xml`): the report,
//! the SOAP envelope and the receipt are read as UTF-8 only, with no DOCTYPE,
//! no entity other than the five predefined ones, names resolved against
//! their namespaces, and every document within [`XmlLimits`] in one linear
//! pass.
//!
//! Not for: schema or domain rules (those are in [`crate::report`] and
//! [`crate::soap`]).

use relay_xml::{Dialect, Doctype, Encoding, Select, XmlError};

use crate::report::ReportError;

pub(crate) use relay_xml::{Attr, Element};

/// Bounds on one XML document: the relay's one [`relay_xml::Limits`]. Every
/// bound exceeded is refused before the document is looked at further
/// ([`ReportError::TooLarge`] for the size, [`ReportError::OverLimit`] for the
/// others; both are `XmlValidationError` on the SOAP way in and
/// `IllegalDatapartContent` on the SHS way in).
pub type XmlLimits = relay_xml::Limits;

/// A `Tidredovisning`: 1 MiB, depth 32, 16 384 elements (500 rows of 8 are
/// about 4 000), 32 attributes per element, 256-byte names, 64 KiB of text
/// per element.
pub const REPORT_LIMITS: XmlLimits = report_limits(crate::report::DEFAULT_MAX_REPORT_BYTES);

/// A report of at most `max_bytes` bytes, with the other bounds of
/// [`REPORT_LIMITS`].
pub const fn report_limits(max_bytes: usize) -> XmlLimits {
    XmlLimits {
        max_bytes,
        max_depth: 32,
        max_elements: 16 * 1024,
        max_attributes: 32,
        max_name_bytes: 256,
        max_text_bytes: 64 * 1024,
    }
}

/// A `SkickaTidredovisning` envelope carrying a report of at most
/// `max_report_bytes` bytes (base64, possibly in lines): text up to 1.5 times
/// the report plus 64 KiB, the whole envelope up to twice the report plus
/// 1 MiB (the two signature blocks with their certificates and OCSP
/// responses), depth 32, 1024 elements, 32 attributes, 256-byte names.
pub const fn envelope_limits(max_report_bytes: usize) -> XmlLimits {
    let max_text_bytes = max_report_bytes
        .saturating_add(max_report_bytes / 2)
        .saturating_add(64 * 1024);
    XmlLimits {
        max_bytes: max_report_bytes
            .saturating_mul(2)
            .saturating_add(1024 * 1024),
        max_depth: 32,
        max_elements: 1024,
        max_attributes: 32,
        max_name_bytes: 256,
        max_text_bytes,
    }
}

/// The ELT dialect: UTF-8, no DOCTYPE, namespaces resolved.
const ELT: Dialect = Dialect {
    encoding: Encoding::Utf8,
    doctype: Doctype::Refused,
    namespaces: true,
    strict: false,
};

const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Reads a whole document within `limits`.
pub(crate) fn parse(bytes: &[u8], limits: &XmlLimits) -> Result<Element, ReportError> {
    relay_xml::read(bytes, limits, &ELT, Select::Root).map_err(|e| match e {
        XmlError::TooLarge { limit } => ReportError::TooLarge(limit),
        e if e.is_limit() => ReportError::OverLimit(e.to_string()),
        e if e.is_encoding() => ReportError::Malformed("the report must be UTF-8".into()),
        e => ReportError::Malformed(e.to_string()),
    })
}

/// An element's attributes other than `xsi:*` (namespace declarations are
/// never among them).
pub(crate) fn attributes(el: &Element) -> impl Iterator<Item = &Attr> {
    el.attrs.iter().filter(|a| a.ns.as_deref() != Some(XSI))
}
