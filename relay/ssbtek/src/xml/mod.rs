//! SSBTEK's XML layer on the relay's one XML foundation (`relay-xml`): the
//! SSBTEK dialect and bounds for its bounded reader ([`read`]), a
//! content-model matcher for XSD sequences ([`sequence`]), and a writer whose
//! escaping is `relay-xml`'s ([`write`]).

pub(crate) mod read;
pub(crate) mod sequence;
pub(crate) mod write;

/// The XML Schema instance namespace (`xsi:schemaLocation` may appear anywhere).
pub(crate) const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
