//! SSBTEK documents on the relay's one XML foundation (`relay-xml`): a
//! question (an SHS data part) or a SOAP envelope is read within
//! [`ValidationLimits`] as UTF-8, ISO-8859-1 or US-ASCII, with no DTD, names
//! resolved against their namespaces, every character checked, and only the
//! wanted element kept. Text and attribute values are wiped when the tree is
//! dropped.

use relay_xml::{Decoded, Dialect, Doctype, Encoding, Select, XmlError};

use crate::error::{QuestionError, Rule};
use crate::question::ValidationLimits;

pub(crate) use relay_xml::Element;

/// Where the wanted element must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Find {
    /// It is the document element (an SHS data part).
    Root,
    /// The first one anywhere in the document (a SOAP envelope).
    First,
}

/// The SSBTEK dialect: UTF-8, ISO-8859-1 or US-ASCII, no DOCTYPE, namespaces
/// resolved, strict.
const SSBTEK: Dialect = Dialect {
    encoding: Encoding::Utf8OrLatin1,
    doctype: Doctype::Refused,
    namespaces: true,
    strict: true,
};

impl ValidationLimits {
    /// The document bounds, for the XML reader.
    pub(crate) fn document(&self) -> relay_xml::Limits {
        relay_xml::Limits {
            max_bytes: self.max_document_bytes,
            max_depth: self.max_depth,
            max_elements: self.max_elements,
            max_attributes: self.max_attributes,
            max_name_bytes: self.max_name_bytes,
            max_text_bytes: self.max_text_bytes,
        }
    }
}

/// The rule an XML refusal breaks.
fn rule(e: XmlError) -> Rule {
    match e {
        XmlError::TooLarge { limit } => Rule::DocumentTooLarge { limit },
        XmlError::TooDeep { limit } => Rule::TooDeep { limit },
        XmlError::TooManyElements { limit } => Rule::TooManyElements { limit },
        XmlError::TooManyAttributes { limit } => Rule::TooManyAttributes { limit },
        XmlError::NameTooLong { limit } => Rule::NameTooLong { limit },
        XmlError::TextTooLong { limit } | XmlError::ValueTooLong { limit } => {
            Rule::TextTooLong { limit }
        }
        XmlError::UnsupportedEncoding => Rule::UnsupportedEncoding,
        XmlError::InvalidEncoding => Rule::InvalidEncoding,
        XmlError::Doctype | XmlError::InternalSubset => Rule::Doctype,
        XmlError::UndeclaredEntity => Rule::UndeclaredEntity,
        XmlError::InvalidCharacter => Rule::InvalidCharacter,
        XmlError::RepeatedAttribute => Rule::RepeatedAttribute,
        XmlError::NotFound => Rule::NotFound,
        XmlError::WrongRoot => Rule::WrongRoot,
        XmlError::WrongNamespace => Rule::WrongNamespace,
        _ => Rule::NotWellFormed,
    }
}

/// The document as text, in the SSBTEK dialect (for the envelope scanner).
pub(crate) fn decode(xml: &[u8]) -> Result<Decoded<'_>, Rule> {
    relay_xml::decode(xml, &SSBTEK).map_err(rule)
}

/// Reads the document and returns the wanted element (`ns`, `local`).
pub(crate) fn read_element(
    xml: &[u8],
    limits: &ValidationLimits,
    ns: &str,
    local: &str,
    find: Find,
) -> Result<Element, QuestionError> {
    let select = match find {
        Find::Root => Select::RootNamed { ns, local },
        Find::First => Select::First { ns, local },
    };
    relay_xml::read(xml, &limits.document(), &SSBTEK, select).map_err(|e| match e {
        XmlError::WrongNamespace => {
            QuestionError::new("hamtaBastjanstInformation", Rule::WrongNamespace)
        }
        e => QuestionError::document(rule(e)),
    })
}
