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

const MAX_DEPTH: usize = 16;

/// Decodes the bytes by the XML declaration's encoding (UTF-8, ISO-8859-1,
/// US-ASCII, windows-1252 read as ISO-8859-1); without a declaration, UTF-8, or
/// ISO-8859-1 when the bytes are not UTF-8 (SHS nodes are sloppy about this).
pub(crate) fn decode(bytes: &[u8]) -> Result<String, ShsError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let declared = declared_encoding(bytes).map(|e| e.to_ascii_lowercase());
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

fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(200)];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = memchr::memmem::find(head, b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + 8..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next()?;
    let value = rest[1..].split(quote).next()?;
    Some(value.to_owned())
}

/// Parses a whole document into its root element.
pub(crate) fn parse_document(bytes: &[u8], max_bytes: usize) -> Result<Element, ShsError> {
    if bytes.len() > max_bytes {
        return Err(ShsError::structure(format!(
            "document larger than {max_bytes} bytes"
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
                if stack.len() >= MAX_DEPTH {
                    return Err(bad("too deep"));
                }
                if root.is_some() {
                    return Err(bad("content after the root element"));
                }
                stack.push(element(&e)?);
            }
            Event::Empty(e) => {
                let el = element(&e)?;
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
                    Some(top) => top.text.push_str(&t.xml10_content()),
                    None if s.trim().is_empty() => {}
                    None => return Err(bad("text outside the root element")),
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(top) => top.text.push_str(&c.xml10_content()),
                None => return Err(bad("text outside the root element")),
            },
            Event::GeneralRef(r) => {
                let top = stack
                    .last_mut()
                    .ok_or_else(|| bad("reference outside the root"))?;
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => top.text.push(c),
                        _ => return Err(bad("invalid character reference")),
                    }
                } else {
                    let c = resolve_predefined_entity(&r).ok_or_else(|| {
                        ShsError::structure(
                            "entity references other than the predefined ones are not accepted",
                        )
                    })?;
                    top.text.push_str(c);
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

fn element(e: &BytesStart<'_>) -> Result<Element, ShsError> {
    let bad = || ShsError::structure("XML not well-formed: attribute");
    let name = e.name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|_| bad())?;
        let key = a.key.as_ref().to_owned();
        let value = a.normalized_value(XmlVersion::Implicit1_0).map_err(|_| {
            ShsError::structure("entity references other than the predefined ones are not accepted")
        })?;
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
