//! The relay's own small XML layer: a bounded, DTD-free reader that turns one
//! element of an untrusted document into a tree ([`read`]), a content-model
//! matcher for XSD sequences ([`sequence`]), and an escaping writer ([`write`]).
//! Built on quick-xml; everything that quick-xml leaves to the caller (XML
//! characters, references, a single root, declared prefixes) is checked here.

pub(crate) mod read;
pub(crate) mod sequence;
pub(crate) mod write;

/// The XML Schema instance namespace (`xsi:schemaLocation` may appear anywhere).
pub(crate) const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
