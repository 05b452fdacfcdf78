//! A small, bounded XML reader and an ISO-8859-1 writer for SHS documents.
//!
//! SHS documents (labels, management and message-list documents) are small. The
//! reader turns one into a tree of [`Element`]s. A `DOCTYPE` naming an external
//! DTD is accepted and **never resolved**; an internal subset, and any entity
//! other than the five predefined ones and character references, is refused, so
//! there is no XXE and no entity expansion.

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::error::ShsError;

/// One element: name, attributes, text content and child elements.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Bounds on one SHS XML document (a label, a management document or a message
/// list). Every bound exceeded is `IllegalMessageStructure`. The total size is
/// checked before anything else is read, and every other bound while reading,
/// so refusing a hostile document costs at most one linear pass over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    /// The whole document, in bytes.
    pub max_bytes: usize,
    /// Element nesting depth (the root element is depth 1).
    pub max_depth: usize,
    /// Elements in the whole document.
    pub max_elements: usize,
    /// Attributes on one element (namespace declarations included).
    pub max_attributes: usize,
    /// One element or attribute name, in bytes.
    pub max_name_bytes: usize,
    /// Character data of one element, or one attribute value, in bytes (after
    /// references are resolved).
    pub max_text_bytes: usize,
}

impl DocumentLimits {
    /// A label: 64 KiB (as Axel), depth 16, 1024 elements, 32 attributes per
    /// element, 128-byte names, 16 KiB of text per element or value.
    pub const LABEL: Self = Self {
        max_bytes: 64 * 1024,
        max_depth: 16,
        max_elements: 1024,
        max_attributes: 32,
        max_name_bytes: 128,
        max_text_bytes: 16 * 1024,
    };

    /// A `shs.management` document (confirm or error): 1 MiB, depth 16, 4096
    /// elements, 32 attributes, 128-byte names, 64 KiB of text.
    pub const MANAGEMENT: Self = Self {
        max_bytes: 1024 * 1024,
        max_depth: 16,
        max_elements: 4096,
        max_attributes: 32,
        max_name_bytes: 128,
        max_text_bytes: 64 * 1024,
    };

    /// A `shs.message-list`: 64 MiB, depth 16, a million elements (tens of
    /// thousands of listed messages), 32 attributes, 128-byte names, 64 KiB of
    /// text.
    pub const MESSAGE_LIST: Self = Self {
        max_bytes: 64 * 1024 * 1024,
        max_depth: 16,
        max_elements: 1_000_000,
        max_attributes: 32,
        max_name_bytes: 128,
        max_text_bytes: 64 * 1024,
    };
}

impl Default for DocumentLimits {
    /// [`DocumentLimits::LABEL`].
    fn default() -> Self {
        Self::LABEL
    }
}

/// Decodes the bytes by the XML declaration's encoding (UTF-8, ISO-8859-1,
/// US-ASCII, windows-1252 read as ISO-8859-1); without a declaration, UTF-8, or
/// ISO-8859-1 when the bytes are not UTF-8 (SHS nodes are sloppy about this).
pub(crate) fn decode(bytes: &[u8]) -> Result<String, ShsError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let declared = declared_encoding(bytes)?.map(|e| e.to_ascii_lowercase());
    let latin1 = |b: &[u8]| b.iter().map(|&c| char::from(c)).collect::<String>();
    Ok(match declared.as_deref() {
        Some("iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "windows-1252" | "cp1252") => {
            latin1(bytes)
        }
        Some("utf-8" | "utf8" | "us-ascii" | "ascii") | None => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => latin1(bytes),
        },
        Some(_) => return Err(ShsError::structure("unsupported XML encoding")),
    })
}

/// The `encoding` of an XML declaration in the first 200 bytes. A declaration
/// whose `encoding=` is not followed by a quoted value is refused (the value
/// is delimited by `"` or `'` only; any other character, ASCII or not, is not
/// a quote).
fn declared_encoding(bytes: &[u8]) -> Result<Option<String>, ShsError> {
    let head = bytes.get(..bytes.len().min(200)).unwrap_or(bytes);
    if !head.starts_with(b"<?xml") {
        return Ok(None);
    }
    let Some(decl) = memchr::memmem::find(head, b"?>").and_then(|end| head.get(..end)) else {
        return Ok(None);
    };
    let Ok(decl) = std::str::from_utf8(decl) else {
        return Ok(None);
    };
    let Some((_, after)) = decl.split_once("encoding") else {
        return Ok(None);
    };
    let bad = || ShsError::structure("malformed encoding in the XML declaration");
    let rest = after.trim_start().strip_prefix('=').ok_or_else(bad)?;
    let rest = rest.trim_start();
    let mut chars = rest.chars();
    let quote = chars
        .next()
        .filter(|q| *q == '"' || *q == '\'')
        .ok_or_else(bad)?;
    let (value, _) = chars.as_str().split_once(quote).ok_or_else(bad)?;
    Ok(Some(value.to_owned()))
}

/// Parses a whole document into its root element, within `limits`.
pub(crate) fn parse_document(bytes: &[u8], limits: &DocumentLimits) -> Result<Element, ShsError> {
    if bytes.len() > limits.max_bytes {
        return Err(ShsError::structure(format!(
            "document larger than {} bytes",
            limits.max_bytes
        )));
    }
    let text = decode(bytes)?;
    let bad = |why: &str| ShsError::structure(format!("XML not well-formed: {why}"));
    let mut reader = Reader::from_str(&text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_unmatched_ends = false;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let event = reader.read_event().map_err(|_| bad("syntax"))?;
        match event {
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(d) => {
                if d.contains('[') {
                    return Err(ShsError::structure(
                        "DOCTYPE with an internal subset is not accepted",
                    ));
                }
            }
            Event::Start(e) => {
                if stack.len() >= limits.max_depth {
                    return Err(ShsError::structure(format!(
                        "elements nested deeper than {}",
                        limits.max_depth
                    )));
                }
                if root.is_some() {
                    return Err(bad("content after the root element"));
                }
                stack.push(element(&e, limits, &mut elements)?);
            }
            Event::Empty(e) => {
                if stack.len() >= limits.max_depth {
                    return Err(ShsError::structure(format!(
                        "elements nested deeper than {}",
                        limits.max_depth
                    )));
                }
                let el = element(&e, limits, &mut elements)?;
                close(&mut stack, &mut root, el)
                    .map_err(|_| bad("content after the root element"))?;
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| bad("unmatched end tag"))?;
                close(&mut stack, &mut root, el)
                    .map_err(|_| bad("content after the root element"))?;
            }
            Event::Text(t) => {
                let s: &str = &t;
                match stack.last_mut() {
                    Some(top) => append(top, &t.xml10_content(), limits)?,
                    None if s.trim().is_empty() => {}
                    None => return Err(bad("text outside the root element")),
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(top) => append(top, &c.xml10_content(), limits)?,
                None => return Err(bad("text outside the root element")),
            },
            Event::GeneralRef(r) => {
                let top = stack
                    .last_mut()
                    .ok_or_else(|| bad("reference outside the root"))?;
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => append(top, c.encode_utf8(&mut [0u8; 4]), limits)?,
                        _ => return Err(bad("invalid character reference")),
                    }
                } else {
                    let c = resolve_predefined_entity(&r).ok_or_else(|| {
                        ShsError::structure(
                            "entity references other than the predefined ones are not accepted",
                        )
                    })?;
                    append(top, c, limits)?;
                }
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(bad("unclosed element"));
    }
    root.ok_or_else(|| bad("no root element"))
}

fn append(top: &mut Element, s: &str, limits: &DocumentLimits) -> Result<(), ShsError> {
    if top.text.len().saturating_add(s.len()) > limits.max_text_bytes {
        return Err(ShsError::structure(format!(
            "text longer than {} bytes",
            limits.max_text_bytes
        )));
    }
    top.text.push_str(s);
    Ok(())
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) -> Result<(), ()> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(el);
            Ok(())
        }
        None if root.is_none() => {
            *root = Some(el);
            Ok(())
        }
        None => Err(()),
    }
}

/// One element's name and attributes, counted against `limits`. quick-xml's
/// attribute iterator refuses a repeated name (with a hash set beyond a few
/// attributes, so the check is linear); the count bound keeps it small anyway.
fn element(
    e: &BytesStart<'_>,
    limits: &DocumentLimits,
    elements: &mut usize,
) -> Result<Element, ShsError> {
    *elements += 1;
    if *elements > limits.max_elements {
        return Err(ShsError::structure(format!(
            "more than {} elements",
            limits.max_elements
        )));
    }
    let name_too_long = || {
        ShsError::structure(format!(
            "a name longer than {} bytes",
            limits.max_name_bytes
        ))
    };
    if e.name().as_ref().len() > limits.max_name_bytes {
        return Err(name_too_long());
    }
    let bad = || ShsError::structure("XML not well-formed: attribute");
    let name = e.name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        if attrs.len() >= limits.max_attributes {
            return Err(ShsError::structure(format!(
                "more than {} attributes on one element",
                limits.max_attributes
            )));
        }
        let a = a.map_err(|_| bad())?;
        if a.key.as_ref().len() > limits.max_name_bytes {
            return Err(name_too_long());
        }
        let key = a.key.as_ref().to_owned();
        let value = a.normalized_value(XmlVersion::Implicit1_0).map_err(|_| {
            ShsError::structure("entity references other than the predefined ones are not accepted")
        })?;
        if value.len() > limits.max_text_bytes {
            return Err(ShsError::structure(format!(
                "attribute value longer than {} bytes",
                limits.max_text_bytes
            )));
        }
        // Attribute-value normalisation: line breaks inside a value (as some SHS
        // nodes write them) become nothing rather than spaces in ids.
        let value: String = value.chars().filter(|c| *c != '\n' && *c != '\r').collect();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        ..Element::default()
    })
}

/// Writes XML text; [`XmlWriter::finish`] encodes it as ISO-8859-1 (characters
/// outside Latin-1 become character references) or UTF-8.
#[derive(Default)]
pub(crate) struct XmlWriter {
    out: String,
}

/// Output encoding of SHS documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputEncoding {
    /// What Axel writes (the default).
    #[default]
    Iso88591,
    Utf8,
}

impl OutputEncoding {
    pub fn name(self) -> &'static str {
        match self {
            Self::Iso88591 => "ISO-8859-1",
            Self::Utf8 => "UTF-8",
        }
    }
}

impl XmlWriter {
    pub fn prolog(&mut self, encoding: OutputEncoding, root: &str, dtd: &str) {
        self.out.push_str(&format!(
            "<?xml version=\"1.0\" encoding=\"{}\"?>\n<!DOCTYPE {root} SYSTEM \"{dtd}\">\n",
            encoding.name()
        ));
    }

    pub fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("    ");
        }
    }

    /// `<name a="v" ...` (attributes with `None` values are left out).
    pub fn open(&mut self, depth: usize, name: &str, attrs: &[(&str, Option<&str>)]) {
        self.indent(depth);
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            if let Some(v) = v {
                self.out.push(' ');
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_into(&mut self.out, v, true);
                self.out.push('"');
            }
        }
    }

    pub fn end_open(&mut self) {
        self.out.push_str(">\n");
    }

    pub fn end_empty(&mut self) {
        self.out.push_str("/>\n");
    }

    pub fn close(&mut self, depth: usize, name: &str) {
        self.indent(depth);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// `<name attrs>text</name>` on one line.
    pub fn leaf(&mut self, depth: usize, name: &str, attrs: &[(&str, Option<&str>)], text: &str) {
        self.open(depth, name, attrs);
        self.out.push('>');
        escape_into(&mut self.out, text, false);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// `<data datapartType=".." filename=".." no-of-bytes=".." no-of-records=".."/>`,
    /// as the label and the message list both write it.
    pub fn data_ref(&mut self, depth: usize, d: &crate::label::DataRef) {
        let bytes = d.no_of_bytes.map(|n| n.to_string());
        let records = d.no_of_records.map(|n| n.to_string());
        self.open(
            depth,
            "data",
            &[
                ("datapartType", Some(&d.datapart_type)),
                ("filename", d.filename.as_deref()),
                ("no-of-bytes", bytes.as_deref()),
                ("no-of-records", records.as_deref()),
            ],
        );
        self.end_empty();
    }

    pub fn finish(self, encoding: OutputEncoding) -> Vec<u8> {
        match encoding {
            OutputEncoding::Utf8 => self.out.into_bytes(),
            OutputEncoding::Iso88591 => {
                let mut bytes = Vec::with_capacity(self.out.len());
                for c in self.out.chars() {
                    match u8::try_from(u32::from(c)) {
                        Ok(b) => bytes.push(b),
                        Err(_) => {
                            bytes.extend_from_slice(format!("&#{};", u32::from(c)).as_bytes())
                        }
                    }
                }
                bytes
            }
        }
    }
}

fn escape_into(out: &mut String, s: &str, attribute: bool) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            _ => out.push(c),
        }
    }
}
