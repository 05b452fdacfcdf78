//! SHS documents on the relay's one XML foundation (`relay-xml`): the bounds
//! for labels, management documents and message lists, the SHS dialect, and
//! an ISO-8859-1 writer.
//!
//! SHS documents (labels, management and message-list documents) are small. A
//! `DOCTYPE` naming an external DTD is accepted and **never resolved**; an
//! internal subset, and any entity other than the five predefined ones and
//! character references, is refused, so there is no XXE and no entity
//! expansion. Every bound exceeded is `IllegalMessageStructure`.

use relay_xml::{Dialect, Doctype, Encoding, Select};

use crate::error::ShsError;

pub(crate) use relay_xml::Element;

/// Bounds on one SHS XML document (a label, a management document or a
/// message list): the relay's one [`relay_xml::Limits`]. Every bound exceeded
/// is `IllegalMessageStructure`. The total size is checked before anything
/// else is read, and every other bound while reading, so refusing a hostile
/// document costs at most one linear pass over it.
pub type DocumentLimits = relay_xml::Limits;

/// A label: 64 KiB (as Axel), depth 16, 1024 elements, 32 attributes per
/// element, 128-byte names, 16 KiB of text per element or value.
pub const LABEL_LIMITS: DocumentLimits = DocumentLimits {
    max_bytes: 64 * 1024,
    max_depth: 16,
    max_elements: 1024,
    max_attributes: 32,
    max_name_bytes: 128,
    max_text_bytes: 16 * 1024,
};

/// A `shs.management` document (confirm or error): 1 MiB, depth 16, 4096
/// elements, 32 attributes, 128-byte names, 64 KiB of text.
pub const MANAGEMENT_LIMITS: DocumentLimits = DocumentLimits {
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
pub const MESSAGE_LIST_LIMITS: DocumentLimits = DocumentLimits {
    max_bytes: 64 * 1024 * 1024,
    max_depth: 16,
    max_elements: 1_000_000,
    max_attributes: 32,
    max_name_bytes: 128,
    max_text_bytes: 64 * 1024,
};

/// What SHS nodes send: UTF-8, ISO-8859-1 or windows-1252 (read as
/// ISO-8859-1), with ISO-8859-1 assumed when undeclared bytes are not UTF-8;
/// an external DTD named and never resolved; names as written.
const SHS: Dialect = Dialect {
    encoding: Encoding::Lenient,
    doctype: Doctype::ExternalOnly,
    namespaces: false,
    strict: false,
};

/// Parses a whole document into its root element, within `limits`.
pub(crate) fn parse_document(bytes: &[u8], limits: &DocumentLimits) -> Result<Element, ShsError> {
    let mut root = relay_xml::read(bytes, limits, &SHS, Select::Root).map_err(|e| match e {
        relay_xml::XmlError::UnsupportedEncoding | relay_xml::XmlError::InvalidEncoding => {
            ShsError::structure("unsupported XML encoding")
        }
        e => ShsError::structure(e.to_string()),
    })?;
    strip_line_breaks(&mut root);
    Ok(root)
}

/// Attribute-value normalisation: line breaks inside a value (as some SHS
/// nodes write them, as character references) become nothing rather than
/// spaces in ids.
fn strip_line_breaks(element: &mut Element) {
    let mut todo = vec![element];
    while let Some(el) = todo.pop() {
        for a in &mut el.attrs {
            if a.value.contains(['\n', '\r']) {
                a.value.retain(|c| c != '\n' && c != '\r');
            }
        }
        todo.extend(el.children.iter_mut());
    }
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
                relay_xml::escape_into(&mut self.out, v, true);
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
        relay_xml::escape_into(&mut self.out, text, false);
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
