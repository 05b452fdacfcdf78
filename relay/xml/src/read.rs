//! The bounded reader: from untrusted bytes to a small tree, in one pass.

use std::collections::HashSet;

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::{NsReader, Reader};
use zeroize::Zeroizing;

use crate::escape::is_xml_char;
use crate::{Dialect, Limits, XmlError};

/// Which character encodings a [`Dialect`] reads. A UTF-8 byte-order mark is
/// always skipped; UTF-16 is always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 only (declared so, or not declared).
    Utf8,
    /// UTF-8, or declared ISO-8859-1 or US-ASCII.
    Utf8OrLatin1,
    /// As [`Encoding::Utf8OrLatin1`], and windows-1252 read as ISO-8859-1,
    /// and undeclared or UTF-8-declared bytes that are not UTF-8 read as
    /// ISO-8859-1 (SHS nodes are sloppy about this).
    Lenient,
}

/// Whether a `DOCTYPE` may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doctype {
    /// Any `DOCTYPE` is refused.
    Refused,
    /// A `DOCTYPE` naming an external DTD is accepted and never resolved; an
    /// internal subset is refused.
    ExternalOnly,
}

/// Which element [`read`] returns. The whole document is read either way (it
/// must be well-formed and within the limits end to end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select<'a> {
    /// The document element.
    Root,
    /// The document element, which must have this namespace and local name.
    RootNamed { ns: &'a str, local: &'a str },
    /// The first element with this namespace and local name anywhere (such
    /// as inside a SOAP `Body`); only its subtree is kept.
    First { ns: &'a str, local: &'a str },
}

/// One element: its name as written, its resolved namespace and local name
/// (with [`Dialect::namespaces`]; otherwise no namespace and the name as
/// written), attributes, child elements, and all character data directly
/// inside it.
#[derive(Clone, Default)]
pub struct Element {
    pub name: String,
    pub ns: Option<String>,
    pub local: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    pub text: Zeroizing<String>,
}

/// One attribute (namespace declarations are left out when names are
/// resolved).
#[derive(Clone, Default)]
pub struct Attr {
    pub name: String,
    pub ns: Option<String>,
    pub local: String,
    pub value: Zeroizing<String>,
}

impl std::fmt::Debug for Element {
    /// Names only: text and values may be personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Element")
            .field("name", &self.name)
            .field("ns", &self.ns)
            .field("children", &self.children)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attr")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Attr {
    /// Whether this attribute has namespace `ns` (`""`: none) and local name
    /// `local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns.as_deref().unwrap_or("") == ns && self.local == local
    }
}

impl Element {
    /// The value of the attribute with this name as written.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }

    /// Child elements with this name as written.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first child element with this name as written.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Whether this element has namespace `ns` (`""`: none) and local name
    /// `local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns.as_deref().unwrap_or("") == ns && self.local == local
    }

    /// The namespace, `""` when there is none.
    pub fn namespace(&self) -> &str {
        self.ns.as_deref().unwrap_or("")
    }

    /// Descendants with local name `local` (any namespace).
    pub fn count(&self, local: &str) -> usize {
        self.children
            .iter()
            .map(|c| usize::from(c.local == local) + c.count(local))
            .sum()
    }
}

/// Reads a whole document within `limits` and returns the element `select`
/// names.
pub fn read(
    bytes: &[u8],
    limits: &Limits,
    dialect: &Dialect,
    select: Select<'_>,
) -> Result<Element, XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let text = decode(bytes, dialect)?;
    let mut tree = Tree {
        limits,
        dialect,
        select,
        stack: Vec::new(),
        text_lens: Vec::new(),
        found: None,
        elements: 0,
        root_seen: false,
    };
    tree.run(text.as_str())?;
    tree.found.ok_or(match select {
        Select::First { .. } => XmlError::NotFound,
        _ => XmlError::NotWellFormed("no root element"),
    })
}

/// A declared encoding.
enum Declared {
    Utf8,
    Latin1,
    Ascii,
    Windows1252,
    Other,
}

/// The `encoding` of an XML declaration at the very start. A declaration whose
/// `encoding` is not followed by `=` and a quoted value is refused (the value
/// is delimited by `"` or `'` only; any other character, ASCII or not, is not
/// a quote).
fn declared_encoding(xml: &[u8]) -> Result<Option<Declared>, XmlError> {
    let Some(rest) = xml.strip_prefix(b"<?xml") else {
        return Ok(None);
    };
    if !rest.first().is_some_and(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let Some(end) = rest.windows(2).take(512).position(|w| w == b"?>") else {
        return Ok(None);
    };
    let decl = rest.get(..end).unwrap_or_default();
    let Some(at) = decl.windows(8).position(|w| w == b"encoding") else {
        return Ok(None);
    };
    let bad = XmlError::MalformedDeclaration;
    let after = decl.get(at + 8..).unwrap_or_default().trim_ascii_start();
    let after = after.strip_prefix(b"=").ok_or(bad.clone())?;
    let after = after.trim_ascii_start();
    let quote = *after.first().ok_or(bad.clone())?;
    if quote != b'"' && quote != b'\'' {
        return Err(bad);
    }
    let value = after.get(1..).unwrap_or_default();
    let label = value
        .iter()
        .position(|&b| b == quote)
        .and_then(|end| value.get(..end))
        .ok_or(bad)?;
    Ok(Some(match label.to_ascii_lowercase().as_slice() {
        b"utf-8" | b"utf8" => Declared::Utf8,
        b"iso-8859-1" | b"iso8859-1" | b"iso_8859-1" | b"latin1" | b"latin-1" | b"l1"
        | b"iso-ir-100" | b"cp819" | b"ibm819" => Declared::Latin1,
        b"us-ascii" | b"ascii" => Declared::Ascii,
        b"windows-1252" | b"cp1252" => Declared::Windows1252,
        _ => Declared::Other,
    }))
}

/// A document as UTF-8 text: borrowed when it already is, otherwise a
/// transcoded copy that is wiped on drop.
pub enum Decoded<'a> {
    Borrowed(&'a str),
    Owned(Zeroizing<String>),
}

impl Decoded<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Decoded::Borrowed(s) => s,
            Decoded::Owned(s) => s,
        }
    }
}

/// The document's bytes as text, by its declared encoding and what
/// `dialect` accepts (for a caller that scans the text itself). With
/// [`Dialect::strict`], every character is checked to be an XML character.
pub fn decode<'a>(xml: &'a [u8], dialect: &Dialect) -> Result<Decoded<'a>, XmlError> {
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    if xml.starts_with(&[0xFE, 0xFF])
        || xml.starts_with(&[0xFF, 0xFE])
        || xml.starts_with(&[0, b'<'])
        || xml.starts_with(&[b'<', 0])
    {
        return Err(XmlError::UnsupportedEncoding);
    }
    // ISO-8859-1 maps every byte to the code point of the same value.
    let latin1 =
        |b: &[u8]| Decoded::Owned(Zeroizing::new(b.iter().map(|&c| char::from(c)).collect()));
    let utf8 = |b: &'a [u8]| std::str::from_utf8(b).map_err(|_| XmlError::InvalidEncoding);
    let declared = declared_encoding(xml)?;
    let lenient = |b: &'a [u8]| match std::str::from_utf8(b) {
        Ok(s) => Decoded::Borrowed(s),
        Err(_) => latin1(b),
    };
    let text = match (declared, dialect.encoding) {
        (None | Some(Declared::Utf8), Encoding::Lenient) => lenient(xml),
        (None | Some(Declared::Utf8), _) => Decoded::Borrowed(utf8(xml)?),
        (Some(Declared::Latin1), Encoding::Utf8OrLatin1 | Encoding::Lenient) => latin1(xml),
        (Some(Declared::Ascii), Encoding::Utf8OrLatin1) if xml.is_ascii() => {
            Decoded::Borrowed(utf8(xml)?)
        }
        (Some(Declared::Ascii), Encoding::Utf8OrLatin1) => return Err(XmlError::InvalidEncoding),
        (Some(Declared::Ascii), Encoding::Lenient) => lenient(xml),
        (Some(Declared::Windows1252), Encoding::Lenient) => latin1(xml),
        (Some(_), _) => return Err(XmlError::UnsupportedEncoding),
    };
    if dialect.strict && !text.as_str().chars().all(is_xml_char) {
        return Err(XmlError::InvalidCharacter);
    }
    Ok(text)
}

fn is_blank(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// quick-xml with or without namespace resolution.
enum Parser<'a> {
    Plain(Reader<&'a [u8]>),
    Ns(NsReader<&'a [u8]>),
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, namespaces: bool) -> Self {
        let mut parser = if namespaces {
            Parser::Ns(NsReader::from_str(text))
        } else {
            Parser::Plain(Reader::from_str(text))
        };
        let config = match &mut parser {
            Parser::Plain(r) => r.config_mut(),
            Parser::Ns(r) => r.config_mut(),
        };
        config.check_comments = true;
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        parser
    }

    /// The next event, with the element's namespace when names are resolved.
    fn next(&mut self) -> Result<(Option<String>, Event<'a>), XmlError> {
        let syntax = |_| XmlError::NotWellFormed("syntax");
        match self {
            Parser::Plain(r) => Ok((None, r.read_event().map_err(syntax)?)),
            Parser::Ns(r) => {
                let (ns, event) = r.read_resolved_event().map_err(syntax)?;
                Ok((namespace(ns)?, event))
            }
        }
    }
}

fn namespace(ns: ResolveResult<'_>) -> Result<Option<String>, XmlError> {
    match ns {
        ResolveResult::Bound(ns) => Ok(Some(ns.into_inner().to_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(_) => Err(XmlError::NotWellFormed("undeclared namespace prefix")),
    }
}

struct Tree<'l> {
    limits: &'l Limits,
    dialect: &'l Dialect,
    select: Select<'l>,
    /// The kept elements that are open: always the innermost ones.
    stack: Vec<Element>,
    /// Text read so far in each open element, kept or not.
    text_lens: Vec<usize>,
    found: Option<Element>,
    elements: usize,
    root_seen: bool,
}

impl Tree<'_> {
    fn depth(&self) -> usize {
        self.text_lens.len()
    }

    fn run(&mut self, text: &str) -> Result<(), XmlError> {
        let bad = XmlError::NotWellFormed;
        let mut parser = Parser::new(text, self.dialect.namespaces);
        let mut first = true;
        loop {
            let (ns, event) = parser.next()?;
            let was_first = std::mem::replace(&mut first, false);
            match event {
                Event::Decl(_) if was_first || !self.dialect.strict => {}
                Event::Decl(_) => return Err(bad("XML declaration not at the start")),
                Event::DocType(d) => match self.dialect.doctype {
                    Doctype::Refused => return Err(XmlError::Doctype),
                    Doctype::ExternalOnly if d.contains('[') => {
                        return Err(XmlError::InternalSubset);
                    }
                    Doctype::ExternalOnly => {}
                },
                Event::Comment(_) | Event::PI(_) => {}
                Event::Start(e) => self.open(&parser, &e, ns, false)?,
                Event::Empty(e) => self.open(&parser, &e, ns, true)?,
                Event::End(_) => {
                    if self.depth() == 0 {
                        return Err(bad("unmatched end tag"));
                    }
                    self.close();
                }
                Event::Text(t) => {
                    let raw: &str = &t;
                    if raw.contains("]]>") {
                        return Err(bad("']]>' in text"));
                    }
                    if self.depth() == 0 {
                        if !is_blank(raw) {
                            return Err(bad("text outside the root element"));
                        }
                        continue;
                    }
                    self.append(&t.xml10_content())?;
                }
                Event::CData(c) => {
                    if self.depth() == 0 {
                        return Err(bad("text outside the root element"));
                    }
                    self.append(&c.xml10_content())?;
                }
                Event::GeneralRef(r) => {
                    if self.depth() == 0 {
                        return Err(bad("reference outside the root element"));
                    }
                    let mut one = [0u8; 4];
                    let replacement: &str = if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) if !self.dialect.strict || is_xml_char(c) => {
                                c.encode_utf8(&mut one)
                            }
                            _ => return Err(XmlError::InvalidCharacter),
                        }
                    } else {
                        resolve_predefined_entity(&r).ok_or(XmlError::UndeclaredEntity)?
                    };
                    self.append(replacement)?;
                }
                Event::Eof => {
                    return if self.depth() != 0 {
                        Err(bad("unclosed element"))
                    } else if !self.root_seen {
                        Err(bad("no root element"))
                    } else {
                        Ok(())
                    };
                }
            }
        }
    }

    fn open(
        &mut self,
        parser: &Parser<'_>,
        e: &BytesStart<'_>,
        ns: Option<String>,
        empty: bool,
    ) -> Result<(), XmlError> {
        let limits = self.limits;
        if self.depth() == 0 && self.root_seen {
            return Err(XmlError::NotWellFormed("content after the root element"));
        }
        self.root_seen = true;
        if self.depth() >= limits.max_depth {
            return Err(XmlError::TooDeep {
                limit: limits.max_depth,
            });
        }
        self.elements += 1;
        if self.elements > limits.max_elements {
            return Err(XmlError::TooManyElements {
                limit: limits.max_elements,
            });
        }
        if e.name().as_ref().len() > limits.max_name_bytes {
            return Err(XmlError::NameTooLong {
                limit: limits.max_name_bytes,
            });
        }
        self.text_lens.push(0);
        let name = e.name().as_ref().to_owned();
        let local = if self.dialect.namespaces {
            e.local_name().as_ref().to_owned()
        } else {
            name.clone()
        };
        let wanted = |want_ns: &str, want_local: &str| {
            ns.as_deref().unwrap_or("") == want_ns && local == want_local
        };
        let keep = match self.select {
            Select::Root => true,
            Select::RootNamed {
                ns: want_ns,
                local: want_local,
            } => {
                if self.depth() == 1 && !wanted(want_ns, want_local) {
                    return Err(if local == want_local {
                        XmlError::WrongNamespace
                    } else {
                        XmlError::WrongRoot
                    });
                }
                true
            }
            Select::First {
                ns: want_ns,
                local: want_local,
            } => !self.stack.is_empty() || (self.found.is_none() && wanted(want_ns, want_local)),
        };
        let attrs = self.attributes(parser, e, keep)?;
        if keep {
            self.stack.push(Element {
                name,
                ns,
                local,
                attrs,
                children: Vec::new(),
                text: Zeroizing::new(String::new()),
            });
        }
        if empty {
            self.close();
        }
        Ok(())
    }

    /// Checks every attribute (well-formed, known references, the count and
    /// size limits, each name once, with a set); returns them when the
    /// element is kept.
    fn attributes(
        &self,
        parser: &Parser<'_>,
        e: &BytesStart<'_>,
        keep: bool,
    ) -> Result<Vec<Attr>, XmlError> {
        let limits = self.limits;
        let mut attrs = Vec::new();
        let mut seen: HashSet<(Option<String>, String)> = HashSet::new();
        for (n, attr) in e.attributes().enumerate() {
            if n >= limits.max_attributes {
                return Err(XmlError::TooManyAttributes {
                    limit: limits.max_attributes,
                });
            }
            let attr = attr.map_err(|e| match e {
                AttrError::Duplicated(..) => XmlError::RepeatedAttribute,
                _ => XmlError::NotWellFormed("attribute"),
            })?;
            if attr.key.as_ref().len() > limits.max_name_bytes {
                return Err(XmlError::NameTooLong {
                    limit: limits.max_name_bytes,
                });
            }
            if attr.value.contains('<') {
                return Err(XmlError::NotWellFormed("attribute"));
            }
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|_| XmlError::UndeclaredEntity)?;
            if self.dialect.strict && !value.chars().all(is_xml_char) {
                return Err(XmlError::InvalidCharacter);
            }
            if value.len() > limits.max_text_bytes {
                return Err(XmlError::ValueTooLong {
                    limit: limits.max_text_bytes,
                });
            }
            let name = attr.key.as_ref().to_owned();
            let (ns, local) = match parser {
                Parser::Plain(_) => (None, name.clone()),
                Parser::Ns(reader) => {
                    if attr.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ns, local) = reader.resolver().resolve_attribute(attr.key);
                    (namespace(ns)?, local.as_ref().to_owned())
                }
            };
            if !seen.insert((ns.clone(), local.clone())) {
                return Err(XmlError::RepeatedAttribute);
            }
            if keep {
                attrs.push(Attr {
                    name,
                    ns,
                    local,
                    value: Zeroizing::new(value.into_owned()),
                });
            }
        }
        Ok(attrs)
    }

    fn close(&mut self) {
        // Kept elements are the innermost open ones: when any is open, the
        // element closing is one.
        if let Some(element) = self.stack.pop() {
            match self.stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => self.found = Some(element),
            }
        }
        self.text_lens.pop();
    }

    fn append(&mut self, s: &str) -> Result<(), XmlError> {
        let limit = self.limits.max_text_bytes;
        let Some(len) = self.text_lens.last_mut() else {
            return Ok(());
        };
        *len = len.saturating_add(s.len());
        if *len > limit {
            return Err(XmlError::TextTooLong { limit });
        }
        if let Some(top) = self.stack.last_mut() {
            top.text.push_str(s);
        }
        Ok(())
    }
}
