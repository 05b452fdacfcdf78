//! The relay's one XML foundation: a bounded, DTD-free reader ([`read`]) that
//! turns an untrusted document into a small tree of [`Element`]s, and one
//! escaper ([`escape_text`], [`escape_attr`], [`escape_into`]) for everything
//! the relay writes.
//!
//! Every wire crate reads through [`read`]: SHS labels, management documents
//! and message lists (`relay-shs`), ELT reports, envelopes and receipts
//! (`relay-elt`), SSBTEK questions and SOAP envelopes (`relay-ssbtek`). What
//! differs between them is a [`Dialect`] (which encodings, whether a
//! `DOCTYPE` naming an external DTD is tolerated, whether names are resolved
//! against namespaces, whether every character is checked against XML's
//! `Char` production) and the [`Limits`]; the bounds and the order in which
//! they are checked are the same for all.
//!
//! **Bounded.** The total size is checked before a byte is parsed; depth,
//! element count, attributes per element, name length, text per element and
//! attribute value length while reading, each check a constant amount of work
//! per byte read, so refusing a hostile document costs one linear pass.
//! Repeated attributes are found with a set of names. No entity other than
//! the five predefined ones and character references is expanded, and no DTD
//! is ever resolved, so there is no XXE and no entity expansion. The reader
//! never panics. Text and attribute values are wiped when the tree is dropped.
//!
//! Errors ([`XmlError`]) hold only limits and fixed words, never input: each
//! crate maps them into its own protocol error.
//!
//! Not for: schema or domain rules (each wire crate checks its own content
//! model on the tree), and not for writing whole documents (each format has
//! its own small writer; they all escape through this crate).

mod escape;
mod read;

pub use escape::{Sink, escape_attr, escape_into, escape_text, is_xml_char};
pub use read::{Attr, Decoded, Doctype, Element, Encoding, Select, decode, read};

/// Bounds on one XML document. The total size is checked first, everything
/// else while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole document, in bytes (as received, before any transcoding).
    pub max_bytes: usize,
    /// Element nesting depth (the root element is depth 1).
    pub max_depth: usize,
    /// Elements in the whole document.
    pub max_elements: usize,
    /// Attributes on one element (namespace declarations included).
    pub max_attributes: usize,
    /// One element or attribute name as written (prefix included), in bytes.
    pub max_name_bytes: usize,
    /// Character data of one element, or one attribute value, in bytes
    /// (after references are resolved).
    pub max_text_bytes: usize,
}

/// How strict the reader is about what surrounds the elements: the parts in
/// which the formats the relay reads really differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// Which character encodings are read.
    pub encoding: Encoding,
    /// Whether a `DOCTYPE` may appear at all.
    pub doctype: Doctype,
    /// Resolve element and attribute names against namespace declarations
    /// (an undeclared prefix is refused, namespace declarations are left out
    /// of [`Element::attrs`]); otherwise names are kept as written and
    /// `xmlns` attributes are ordinary attributes.
    pub namespaces: bool,
    /// Check strictly: every character (in the text, in character
    /// references and in attribute values) against XML 1.0's `Char`
    /// production, and the XML declaration only at the very start.
    pub strict: bool,
}

/// Why a document was refused. The texts hold limits and fixed words only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    #[error("document larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("elements nested deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("more than {limit} elements")]
    TooManyElements { limit: usize },
    #[error("more than {limit} attributes on one element")]
    TooManyAttributes { limit: usize },
    #[error("a name longer than {limit} bytes")]
    NameTooLong { limit: usize },
    #[error("text longer than {limit} bytes in one element")]
    TextTooLong { limit: usize },
    #[error("an attribute value longer than {limit} bytes")]
    ValueTooLong { limit: usize },
    #[error("encoding not supported")]
    UnsupportedEncoding,
    #[error("bytes not valid in the declared encoding")]
    InvalidEncoding,
    #[error("malformed encoding in the XML declaration")]
    MalformedDeclaration,
    #[error("a DOCTYPE is not accepted")]
    Doctype,
    #[error("DOCTYPE with an internal subset is not accepted")]
    InternalSubset,
    #[error("entity references other than the predefined ones are not accepted")]
    UndeclaredEntity,
    #[error("character not allowed in XML")]
    InvalidCharacter,
    #[error("an attribute is repeated")]
    RepeatedAttribute,
    #[error("XML not well-formed: {0}")]
    NotWellFormed(&'static str),
    /// [`Select::RootNamed`]: the root element has another name.
    #[error("the root element is not the expected one")]
    WrongRoot,
    /// [`Select::RootNamed`]: the root element has the expected local name
    /// in another namespace.
    #[error("the root element is in the wrong namespace")]
    WrongNamespace,
    /// [`Select::First`]: no such element in the document.
    #[error("the expected element is not in the document")]
    NotFound,
}

impl XmlError {
    /// One of the [`Limits`] other than the total size was exceeded.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::TooDeep { .. }
                | Self::TooManyElements { .. }
                | Self::TooManyAttributes { .. }
                | Self::NameTooLong { .. }
                | Self::TextTooLong { .. }
                | Self::ValueTooLong { .. }
        )
    }

    /// The document's encoding was refused (declared or actual).
    pub fn is_encoding(&self) -> bool {
        matches!(self, Self::UnsupportedEncoding | Self::InvalidEncoding)
    }
}
