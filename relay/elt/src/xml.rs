//! The bounded XML reader under the report, the SOAP envelope and the receipt:
//! UTF-8 only, no DOCTYPE, no entity other than the five predefined ones, and
//! every document read within [`XmlLimits`] in one linear pass.
//!
//! The total size is checked before a byte is parsed; depth, element count,
//! attributes per element, name and text sizes while reading. Repeated
//! attributes are found with a set of expanded names (quick-xml checks the
//! names as written, also with a set once a tag has more than a few), so even
//! an element with hundreds of thousands of attributes costs linear time; the
//! attribute bound refuses such an element long before that.
//!
//! Not for: schema or domain rules (those are in [`crate::report`] and
//! [`crate::soap`]).

use std::collections::HashSet;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use crate::report::ReportError;

/// Bounds on one XML document. Every bound exceeded is refused before the
/// document is looked at further ([`ReportError::TooLarge`] for the size,
/// [`ReportError::OverLimit`] for the others; both are `XmlValidationError` on
/// the SOAP way in and `IllegalDatapartContent` on the SHS way in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// The whole document, in bytes.
    pub max_bytes: usize,
    /// Element nesting depth (the root element is depth 1).
    pub max_depth: usize,
    /// Elements in the whole document.
    pub max_elements: usize,
    /// Attributes on one element (namespace declarations included).
    pub max_attributes: usize,
    /// One element or attribute name as written (prefix included), in bytes.
    pub max_name_bytes: usize,
    /// Character data of one element, or one attribute value, in bytes.
    pub max_text_bytes: usize,
}

impl XmlLimits {
    /// A `Tidredovisning`: 1 MiB, depth 32, 16 384 elements (500 rows of 8
    /// are about 4 000), 32 attributes per element, 256-byte names, 64 KiB of
    /// text per element.
    pub const REPORT: Self = Self {
        max_bytes: crate::report::DEFAULT_MAX_REPORT_BYTES,
        max_depth: 32,
        max_elements: 16 * 1024,
        max_attributes: 32,
        max_name_bytes: 256,
        max_text_bytes: 64 * 1024,
    };

    /// A report of at most `max_bytes` bytes, with the other bounds of
    /// [`XmlLimits::REPORT`].
    pub const fn report(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            ..Self::REPORT
        }
    }

    /// A `SkickaTidredovisning` envelope carrying a report of at most
    /// `max_report_bytes` bytes (base64, possibly in lines): text up to 1.5
    /// times the report plus 64 KiB, the whole envelope up to twice the report
    /// plus 1 MiB (the two signature blocks with their certificates and OCSP
    /// responses), depth 32, 1024 elements, 32 attributes, 256-byte names.
    pub const fn envelope(max_report_bytes: usize) -> Self {
        let max_text_bytes = max_report_bytes
            .saturating_add(max_report_bytes / 2)
            .saturating_add(64 * 1024);
        Self {
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
}

impl Default for XmlLimits {
    /// [`XmlLimits::REPORT`].
    fn default() -> Self {
        Self::REPORT
    }
}

/// A minimal element tree: enough to check the schema's sequences exactly.
#[derive(Debug)]
pub(crate) struct Element {
    pub ns: String,
    pub local: String,
    pub children: Vec<Element>,
    pub text: String,
    /// Attributes other than namespace declarations and xsi:*.
    pub attributes: Vec<(String, String, String)>,
}

const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

fn malformed(m: &str) -> ReportError {
    ReportError::Malformed(m.to_owned())
}

fn over(m: String) -> ReportError {
    ReportError::OverLimit(m)
}

fn resolved(ns: ResolveResult<'_>, what: &str) -> Result<String, ReportError> {
    match ns {
        ResolveResult::Bound(n) => Ok(n.0.to_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(_) => Err(ReportError::Malformed(format!(
            "{what} uses an undeclared namespace prefix"
        ))),
    }
}

/// Refuses an XML declaration that names an encoding other than UTF-8.
fn check_declaration(text: &str) -> Result<(), ReportError> {
    let Some(decl) = text.strip_prefix("<?xml") else {
        return Ok(());
    };
    let decl = decl.split_once("?>").map_or(decl, |(d, _)| d);
    match decl.to_ascii_lowercase().split_once("encoding") {
        Some((_, rest)) if !(rest.contains("utf-8") || rest.contains("utf8")) => {
            Err(malformed("the report must be UTF-8"))
        }
        _ => Ok(()),
    }
}

impl Element {
    /// Reads a whole document within `limits`.
    pub(crate) fn parse(bytes: &[u8], limits: &XmlLimits) -> Result<Element, ReportError> {
        if bytes.len() > limits.max_bytes {
            return Err(ReportError::TooLarge(limits.max_bytes));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| malformed("the report must be UTF-8"))?;
        let head = text.trim_start_matches('\u{feff}');
        check_declaration(head)?;
        let mut reader = quick_xml::NsReader::from_str(head);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_unmatched_ends = false;
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        let mut elements = 0usize;
        loop {
            let (ns, event) = reader
                .read_resolved_event()
                .map_err(|e| ReportError::Malformed(xml_error_text(&e)))?;
            let ns = resolved(ns, "an element")?;
            match event {
                Event::DocType(_) => return Err(malformed("a DOCTYPE is not accepted")),
                Event::Start(_) | Event::Empty(_) if root.is_some() => {
                    return Err(malformed("content after the root element"));
                }
                Event::Start(ref e) | Event::Empty(ref e) => {
                    if stack.len() >= limits.max_depth {
                        return Err(over(format!(
                            "elements nested deeper than {}",
                            limits.max_depth
                        )));
                    }
                    elements += 1;
                    if elements > limits.max_elements {
                        return Err(over(format!("more than {} elements", limits.max_elements)));
                    }
                    let element = Element {
                        ns,
                        local: e.local_name().into_inner().to_owned(),
                        children: Vec::new(),
                        text: String::new(),
                        attributes: attributes(&reader, e, limits)?,
                    };
                    if matches!(event, Event::Empty(_)) {
                        match stack.last_mut() {
                            Some(parent) => parent.children.push(element),
                            None => root = Some(element),
                        }
                    } else {
                        stack.push(element);
                    }
                }
                Event::End(_) => {
                    let element = stack.pop().ok_or_else(|| malformed("unbalanced end tag"))?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => root = Some(element),
                    }
                }
                Event::Text(t) => {
                    let s = t.xml10_content();
                    match stack.last_mut() {
                        Some(el) => append(el, &s, limits)?,
                        None if s.trim().is_empty() => {}
                        None => return Err(malformed("text outside the root element")),
                    }
                }
                Event::GeneralRef(r) => {
                    let mut one = [0u8; 4];
                    let resolved: &str = if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) => c.encode_utf8(&mut one),
                            _ => return Err(malformed("a broken character reference")),
                        }
                    } else {
                        quick_xml::escape::resolve_predefined_entity(&r)
                            .ok_or_else(|| malformed("an unknown entity reference"))?
                    };
                    match stack.last_mut() {
                        Some(el) => append(el, resolved, limits)?,
                        None => return Err(malformed("text outside the root element")),
                    }
                }
                Event::CData(c) => {
                    let s = c.xml10_content();
                    match stack.last_mut() {
                        Some(el) => append(el, &s, limits)?,
                        None => return Err(malformed("text outside the root element")),
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !stack.is_empty() {
            return Err(malformed("the document ends inside an element"));
        }
        root.ok_or_else(|| malformed("the document has no root element"))
    }

    /// Descendants named `local` (any namespace).
    pub(crate) fn count(&self, local: &str) -> usize {
        self.children
            .iter()
            .map(|c| usize::from(c.local == local) + c.count(local))
            .sum()
    }
}

/// An element's attributes (namespace declarations and `xsi:*` left out),
/// within the limits, each expanded name once.
fn attributes(
    reader: &quick_xml::NsReader<&[u8]>,
    e: &BytesStart<'_>,
    limits: &XmlLimits,
) -> Result<Vec<(String, String, String)>, ReportError> {
    let name_too_long = || {
        over(format!(
            "a name longer than {} bytes",
            limits.max_name_bytes
        ))
    };
    if e.name().as_ref().len() > limits.max_name_bytes {
        return Err(name_too_long());
    }
    let mut kept: Vec<(String, String, String)> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for (n, a) in e.attributes().enumerate() {
        if n >= limits.max_attributes {
            return Err(over(format!(
                "more than {} attributes on one element",
                limits.max_attributes
            )));
        }
        let a = a.map_err(|_| malformed("a broken attribute"))?;
        if a.key.as_ref().len() > limits.max_name_bytes {
            return Err(name_too_long());
        }
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|_| malformed("a broken attribute value"))?;
        if value.len() > limits.max_text_bytes {
            return Err(over(format!(
                "an attribute value longer than {} bytes",
                limits.max_text_bytes
            )));
        }
        if a.key.as_namespace_binding().is_some() {
            continue;
        }
        let (ans, local) = reader.resolver().resolve_attribute(a.key);
        let ans = resolved(ans, "an attribute")?;
        let local = local.into_inner().to_owned();
        if !seen.insert((ans.clone(), local.clone())) {
            return Err(malformed("an attribute is repeated"));
        }
        if ans == XSI {
            continue;
        }
        kept.push((ans, local, value.into_owned()));
    }
    Ok(kept)
}

fn append(el: &mut Element, s: &str, limits: &XmlLimits) -> Result<(), ReportError> {
    if el.text.len().saturating_add(s.len()) > limits.max_text_bytes {
        return Err(over(format!(
            "text longer than {} bytes in one element",
            limits.max_text_bytes
        )));
    }
    el.text.push_str(s);
    Ok(())
}

fn xml_error_text(e: &quick_xml::Error) -> String {
    // quick-xml's messages name tags and positions, not content values.
    let text = e.to_string();
    if text.len() > 200 {
        "syntax error".into()
    } else {
        text
    }
}
