//! The SOAP 1.1 envelope around an SSBTEK call: which operation it asks for,
//! read within [`ValidationLimits`] before anything else is done with it.
//!
//! [`read_envelope`] checks the size first, decodes the document as the
//! question reader does (UTF-8 or declared ISO-8859-1, no DOCTYPE), refuses
//! SOAP 1.2 and anything that is not a SOAP 1.1 `Envelope`, refuses a header
//! entry marked `mustUnderstand`, and names the operation from the `Body`'s
//! first element. It stops there: the question itself is read by
//! [`crate::Question::parse_element`]. Depth, element count, attributes per
//! element and name sizes are bounded on the way, so a hostile envelope costs
//! one linear pass at most.
//!
//! Not for: writing envelopes or faults (the relay's SOAP front does that).

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::NS_SSBT;
use crate::error::{QuestionError, Rule};
use crate::question::ValidationLimits;

/// The SOAP 1.1 envelope namespace.
pub const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The SOAP 1.2 envelope namespace (refused with `VersionMismatch`).
pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";

/// The operation an envelope asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapCall {
    /// `hamtaBastjanstInformation`.
    Hamta,
    /// `testaBastjanstInformation`.
    Testa,
}

/// Why an envelope was refused. Texts name no input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not a SOAP 1.1 envelope: `soap:VersionMismatch`.
    #[error("{0}")]
    VersionMismatch(&'static str),
    /// A header entry marked `mustUnderstand`: `soap:MustUnderstand`.
    #[error("a SOAP header marked mustUnderstand is not understood by this service")]
    MustUnderstand,
    /// Not acceptable XML, over a limit, or no known operation:
    /// `VALIDERINGSFEL`.
    #[error("{0}")]
    Invalid(Cow<'static, str>),
}

impl From<QuestionError> for EnvelopeError {
    fn from(e: QuestionError) -> Self {
        EnvelopeError::Invalid(Cow::Owned(e.to_string()))
    }
}

fn invalid(m: &'static str) -> EnvelopeError {
    EnvelopeError::Invalid(Cow::Borrowed(m))
}

fn over(rule: Rule) -> EnvelopeError {
    QuestionError::document(rule).into()
}

/// Reads the envelope up to the `Body`'s first element.
pub fn read_envelope(bytes: &[u8], limits: &ValidationLimits) -> Result<SoapCall, EnvelopeError> {
    if bytes.len() > limits.max_document_bytes {
        return Err(over(Rule::DocumentTooLarge {
            limit: limits.max_document_bytes,
        }));
    }
    let source = crate::xml::read::decode(bytes).map_err(QuestionError::document)?;
    let mut reader = quick_xml::NsReader::from_str(source.as_str());
    let mut depth = 0usize;
    let mut elements = 0usize;
    let mut in_header = false;
    let mut in_body = false;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|_| invalid("the request is not well-formed XML"))?;
        let ns = match ns {
            ResolveResult::Bound(n) => n.into_inner(),
            _ => "",
        };
        let opened = matches!(event, Event::Start(_));
        match event {
            Event::DocType(_) => return Err(invalid("a DOCTYPE is not accepted")),
            Event::Start(e) | Event::Empty(e) => {
                elements += 1;
                if elements > limits.max_elements {
                    return Err(over(Rule::TooManyElements {
                        limit: limits.max_elements,
                    }));
                }
                if depth >= limits.max_depth {
                    return Err(over(Rule::TooDeep {
                        limit: limits.max_depth,
                    }));
                }
                if e.name().as_ref().len() > limits.max_name_bytes {
                    return Err(over(Rule::NameTooLong {
                        limit: limits.max_name_bytes,
                    }));
                }
                let mut must_understand = false;
                for (n, a) in e.attributes().enumerate() {
                    if n >= limits.max_attributes {
                        return Err(over(Rule::TooManyAttributes {
                            limit: limits.max_attributes,
                        }));
                    }
                    let a = a.map_err(|_| over(Rule::NotWellFormed))?;
                    if a.key.as_ref().len() > limits.max_name_bytes {
                        return Err(over(Rule::NameTooLong {
                            limit: limits.max_name_bytes,
                        }));
                    }
                    if a.key.local_name().as_ref() == "mustUnderstand"
                        && matches!(a.value.as_ref(), "1" | "true")
                    {
                        must_understand = true;
                    }
                }
                let local = e.local_name().into_inner();
                if depth == 0 {
                    if ns == NS_SOAP12 {
                        return Err(EnvelopeError::VersionMismatch(
                            "SOAP 1.2 is not supported; use SOAP 1.1",
                        ));
                    }
                    if ns != NS_SOAP11 || local != "Envelope" {
                        return Err(EnvelopeError::VersionMismatch("not a SOAP 1.1 envelope"));
                    }
                } else if depth == 1 {
                    in_header = ns == NS_SOAP11 && local == "Header";
                    in_body = ns == NS_SOAP11 && local == "Body";
                } else if depth == 2 && in_header && must_understand {
                    return Err(EnvelopeError::MustUnderstand);
                } else if depth == 2 && in_body {
                    return match (ns, local) {
                        (NS_SSBT, "hamtaBastjanstInformation") => Ok(SoapCall::Hamta),
                        (NS_SSBT, "testaBastjanstInformation") => Ok(SoapCall::Testa),
                        _ => Err(invalid(
                            "unknown operation: the Body must hold hamtaBastjanstInformation or testaBastjanstInformation",
                        )),
                    };
                }
                if opened {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => return Err(invalid("the SOAP Body is empty")),
            _ => {}
        }
    }
}
