//! Reading one element of an untrusted document into a small tree.
//!
//! The whole document is read (so it must be well-formed end to end), but only
//! the wanted element is kept. No DTD is accepted and no entity other than the
//! five predefined ones is expanded, so there is nothing to expand into a bomb.
//! Size (checked first), depth, element count, attributes per element, name
//! and text length are bounded by [`ValidationLimits`], and every check is a
//! constant amount of work per byte read, so a refusal costs one linear pass. Text and attribute values are wiped when the tree is
//! dropped.

use std::borrow::Cow;
use std::collections::HashSet;

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use zeroize::Zeroizing;

use crate::error::{QuestionError, Rule};
use crate::lexical::{is_blank, is_xml_char};
use crate::question::ValidationLimits;

/// An element with its resolved name, attributes (namespace declarations
/// removed), child elements, and all character data directly inside it.
pub(crate) struct Element {
    pub(crate) ns: Option<String>,
    pub(crate) local: String,
    pub(crate) attrs: Vec<Attr>,
    pub(crate) children: Vec<Element>,
    pub(crate) text: Zeroizing<String>,
}

pub(crate) struct Attr {
    pub(crate) ns: Option<String>,
    pub(crate) local: String,
    pub(crate) value: Zeroizing<String>,
}

/// Where the wanted element must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Find {
    /// It is the document element (an SHS data part).
    Root,
    /// The first one anywhere in the document (a SOAP envelope).
    First,
}

/// The document as UTF-8 text: borrowed when it already is, otherwise a
/// transcoded copy that is wiped on drop.
pub(crate) enum Source<'a> {
    Borrowed(&'a str),
    Owned(Zeroizing<String>),
}

impl Source<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Source::Borrowed(s) => s,
            Source::Owned(s) => s,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

/// The `encoding` pseudo-attribute of an XML declaration at the very start.
fn declared_encoding(xml: &[u8]) -> Option<Result<Encoding, Rule>> {
    let rest = xml.strip_prefix(b"<?xml")?;
    if !rest.first().is_some_and(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let end = rest.windows(2).take(512).position(|w| w == b"?>")?;
    let decl = rest.get(..end)?;
    let at = decl.windows(8).position(|w| w == b"encoding")?;
    let after = decl.get(at + 8..)?.trim_ascii_start();
    let after = after.strip_prefix(b"=")?.trim_ascii_start();
    let quote = *after.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value = after.get(1..)?;
    let label = value.get(..value.iter().position(|&b| b == quote)?)?;
    let label = label.to_ascii_lowercase();
    Some(match label.as_slice() {
        b"utf-8" | b"utf8" => Ok(Encoding::Utf8),
        b"iso-8859-1" | b"iso8859-1" | b"iso_8859-1" | b"latin1" | b"latin-1" | b"l1"
        | b"iso-ir-100" | b"cp819" | b"ibm819" => Ok(Encoding::Latin1),
        b"us-ascii" | b"ascii" => Ok(Encoding::Ascii),
        _ => Err(Rule::UnsupportedEncoding),
    })
}

pub(crate) fn decode(xml: &[u8]) -> Result<Source<'_>, Rule> {
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    if xml.starts_with(&[0xFE, 0xFF])
        || xml.starts_with(&[0xFF, 0xFE])
        || xml.starts_with(&[0, b'<'])
        || xml.starts_with(&[b'<', 0])
    {
        return Err(Rule::UnsupportedEncoding);
    }
    let encoding = declared_encoding(xml)
        .transpose()?
        .unwrap_or(Encoding::Utf8);
    let text = match encoding {
        Encoding::Utf8 => {
            Source::Borrowed(std::str::from_utf8(xml).map_err(|_| Rule::InvalidEncoding)?)
        }
        Encoding::Ascii if xml.is_ascii() => {
            Source::Borrowed(std::str::from_utf8(xml).map_err(|_| Rule::InvalidEncoding)?)
        }
        Encoding::Ascii => return Err(Rule::InvalidEncoding),
        // ISO-8859-1 maps every byte to the code point of the same value.
        Encoding::Latin1 => {
            Source::Owned(Zeroizing::new(xml.iter().map(|&b| char::from(b)).collect()))
        }
    };
    if !text.as_str().chars().all(is_xml_char) {
        return Err(Rule::InvalidCharacter);
    }
    Ok(text)
}

/// Reads the document and returns the wanted element (`ns`, `local`).
pub(crate) fn read_element(
    xml: &[u8],
    limits: &ValidationLimits,
    ns: &str,
    local: &str,
    find: Find,
) -> Result<Element, QuestionError> {
    if xml.len() > limits.max_document_bytes {
        return Err(QuestionError::document(Rule::DocumentTooLarge {
            limit: limits.max_document_bytes,
        }));
    }
    let source = decode(xml).map_err(QuestionError::document)?;
    let mut tree = TreeBuilder {
        limits,
        want_ns: ns,
        want_local: local,
        find,
        stack: Vec::new(),
        found: None,
        depth: 0,
        elements: 0,
        root_seen: false,
    };
    tree.run(source.as_str())?;
    tree.found
        .ok_or_else(|| QuestionError::document(Rule::NotFound))
}

struct TreeBuilder<'l> {
    limits: &'l ValidationLimits,
    want_ns: &'l str,
    want_local: &'l str,
    find: Find,
    stack: Vec<Element>,
    found: Option<Element>,
    depth: usize,
    elements: usize,
    root_seen: bool,
}

fn owned_namespace(ns: ResolveResult<'_>) -> Result<Option<String>, QuestionError> {
    match ns {
        ResolveResult::Bound(ns) => Ok(Some(ns.0.to_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(_) => Err(QuestionError::document(Rule::NotWellFormed)),
    }
}

impl TreeBuilder<'_> {
    fn run(&mut self, text: &str) -> Result<(), QuestionError> {
        let bad = || QuestionError::document(Rule::NotWellFormed);
        let mut reader = NsReader::from_str(text);
        let config = reader.config_mut();
        config.check_comments = true;
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        let mut first = true;
        loop {
            let (ns, event) = match reader.read_resolved_event() {
                Ok((ns, event)) => (owned_namespace(ns)?, event),
                Err(_) => return Err(bad()),
            };
            let was_first = std::mem::replace(&mut first, false);
            match event {
                Event::Decl(_) if was_first => {}
                Event::Decl(_) => return Err(bad()),
                Event::DocType(_) => return Err(QuestionError::document(Rule::Doctype)),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Start(e) => self.open(&reader, &e, ns, false)?,
                Event::Empty(e) => self.open(&reader, &e, ns, true)?,
                Event::End(_) => {
                    if self.depth == 0 {
                        return Err(bad());
                    }
                    self.close();
                    self.depth -= 1;
                }
                Event::Text(t) => {
                    let raw: &str = &t;
                    if raw.contains("]]>") || (self.depth == 0 && !is_blank(raw)) {
                        return Err(bad());
                    }
                    self.append(&t.xml10_content())?;
                }
                Event::CData(c) => {
                    if self.depth == 0 {
                        return Err(bad());
                    }
                    self.append(&c.xml10_content())?;
                }
                Event::GeneralRef(r) => {
                    if self.depth == 0 {
                        return Err(bad());
                    }
                    let mut one = [0u8; 4];
                    let replacement: &str = if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) if is_xml_char(c) => c.encode_utf8(&mut one),
                            _ => return Err(QuestionError::document(Rule::InvalidCharacter)),
                        }
                    } else {
                        resolve_predefined_entity(&r)
                            .ok_or_else(|| QuestionError::document(Rule::UndeclaredEntity))?
                    };
                    self.append(replacement)?;
                }
                Event::Eof => {
                    return if self.depth != 0 || !self.root_seen {
                        Err(bad())
                    } else {
                        Ok(())
                    };
                }
            }
        }
    }

    fn open(
        &mut self,
        reader: &NsReader<&[u8]>,
        e: &BytesStart<'_>,
        ns: Option<String>,
        empty: bool,
    ) -> Result<(), QuestionError> {
        if self.depth == 0 && self.root_seen {
            return Err(QuestionError::document(Rule::NotWellFormed));
        }
        self.root_seen = true;
        self.depth += 1;
        self.elements += 1;
        if self.depth > self.limits.max_depth {
            return Err(QuestionError::document(Rule::TooDeep {
                limit: self.limits.max_depth,
            }));
        }
        if self.elements > self.limits.max_elements {
            return Err(QuestionError::document(Rule::TooManyElements {
                limit: self.limits.max_elements,
            }));
        }
        if e.name().as_ref().len() > self.limits.max_name_bytes {
            return Err(QuestionError::document(Rule::NameTooLong {
                limit: self.limits.max_name_bytes,
            }));
        }
        let local = e.local_name().into_inner().to_owned();
        let wanted = self.found.is_none()
            && self.stack.is_empty()
            && ns.as_deref() == Some(self.want_ns)
            && local == self.want_local;
        if self.find == Find::Root && self.depth == 1 && !wanted {
            return Err(if local == self.want_local {
                QuestionError::new("hamtaBastjanstInformation", Rule::WrongNamespace)
            } else {
                QuestionError::document(Rule::WrongRoot)
            });
        }
        let keep = wanted || !self.stack.is_empty();
        let attrs = self.attributes(reader, e, keep)?;
        if keep {
            self.stack.push(Element {
                ns,
                local,
                attrs,
                children: Vec::new(),
                text: Zeroizing::new(String::new()),
            });
        }
        if empty {
            self.close();
            self.depth -= 1;
        }
        Ok(())
    }

    /// Checks every attribute (well-formed, known references, XML characters,
    /// the count and size limits, each expanded name once, with a set);
    /// returns them resolved when the element is kept.
    fn attributes(
        &self,
        reader: &NsReader<&[u8]>,
        e: &BytesStart<'_>,
        keep: bool,
    ) -> Result<Vec<Attr>, QuestionError> {
        let mut attrs = Vec::new();
        let mut seen: HashSet<(Option<&[u8]>, &[u8])> = HashSet::new();
        for (n, attr) in e.attributes().enumerate() {
            if n >= self.limits.max_attributes {
                return Err(QuestionError::document(Rule::TooManyAttributes {
                    limit: self.limits.max_attributes,
                }));
            }
            let attr = attr.map_err(|_| QuestionError::document(Rule::NotWellFormed))?;
            if attr.key.as_ref().len() > self.limits.max_name_bytes {
                return Err(QuestionError::document(Rule::NameTooLong {
                    limit: self.limits.max_name_bytes,
                }));
            }
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            if attr.value.contains('<') {
                return Err(QuestionError::document(Rule::NotWellFormed));
            }
            let value: Cow<'_, str> = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|_| QuestionError::document(Rule::UndeclaredEntity))?;
            if !value.chars().all(is_xml_char) {
                return Err(QuestionError::document(Rule::InvalidCharacter));
            }
            if value.len() > self.limits.max_text_bytes {
                return Err(QuestionError::document(Rule::TextTooLong {
                    limit: self.limits.max_text_bytes,
                }));
            }
            let (ns, local) = reader.resolver().resolve_attribute(attr.key);
            let ns = match ns {
                ResolveResult::Bound(ns) => Some(ns.into_inner()),
                ResolveResult::Unbound => None,
                ResolveResult::Unknown(_) => {
                    return Err(QuestionError::document(Rule::NotWellFormed));
                }
            };
            if !seen.insert((ns.map(str::as_bytes), local.into_inner().as_bytes())) {
                return Err(QuestionError::document(Rule::RepeatedAttribute));
            }
            if keep {
                attrs.push(Attr {
                    ns: ns.map(str::to_owned),
                    local: local.into_inner().to_owned(),
                    value: Zeroizing::new(value.into_owned()),
                });
            }
        }
        Ok(attrs)
    }

    fn close(&mut self) {
        if let Some(element) = self.stack.pop() {
            match self.stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => self.found = Some(element),
            }
        }
    }

    fn append(&mut self, s: &str) -> Result<(), QuestionError> {
        let Some(top) = self.stack.last_mut() else {
            return Ok(());
        };
        if top.text.len() + s.len() > self.limits.max_text_bytes {
            return Err(QuestionError::document(Rule::TextTooLong {
                limit: self.limits.max_text_bytes,
            }));
        }
        top.text.push_str(s);
        Ok(())
    }
}
