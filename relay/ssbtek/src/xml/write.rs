//! Writing XML: names are the relay's own constants, every text and attribute
//! value is escaped by `relay-xml`'s one escaper, and characters XML cannot
//! carry are replaced with U+FFFD, so whatever a provider or caller sent, the
//! output stays well-formed.

use zeroize::Zeroizing;

/// The XML declaration the relay writes when asked to.
pub(crate) const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// An append-only UTF-8 XML writer whose element names all carry `prefix`
/// (`"ssbt:"` or `""`). Its buffer is wiped on drop.
pub(crate) struct XmlWriter {
    buf: Zeroizing<Vec<u8>>,
    prefix: &'static str,
}

impl XmlWriter {
    /// `capacity` should cover the whole output: a buffer that grows leaves
    /// unwiped copies of what it held behind.
    pub(crate) fn new(prefix: &'static str, capacity: usize) -> Self {
        Self {
            buf: Zeroizing::new(Vec::with_capacity(capacity)),
            prefix,
        }
    }

    pub(crate) fn declaration(&mut self) {
        self.buf.extend_from_slice(DECLARATION.as_bytes());
    }

    fn name(&mut self, local: &str) {
        self.buf.extend_from_slice(self.prefix.as_bytes());
        self.buf.extend_from_slice(local.as_bytes());
    }

    /// `<name a="v" ...>`; attribute names are written as given.
    pub(crate) fn open_with(&mut self, local: &str, attrs: &[(&str, &str)]) {
        self.buf.push(b'<');
        self.name(local);
        for (name, value) in attrs {
            self.buf.push(b' ');
            self.buf.extend_from_slice(name.as_bytes());
            self.buf.extend_from_slice(b"=\"");
            relay_xml::escape_into(&mut *self.buf, value, true);
            self.buf.push(b'"');
        }
        self.buf.push(b'>');
    }

    pub(crate) fn open(&mut self, local: &str) {
        self.open_with(local, &[]);
    }

    pub(crate) fn close(&mut self, local: &str) {
        self.buf.extend_from_slice(b"</");
        self.name(local);
        self.buf.push(b'>');
    }

    /// `<name>text</name>`.
    pub(crate) fn leaf(&mut self, local: &str, text: &str) {
        self.open(local);
        relay_xml::escape_into(&mut *self.buf, text, false);
        self.close(local);
    }

    /// Bytes the caller has checked to be well-formed content.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub(crate) fn finish(self) -> Zeroizing<Vec<u8>> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_replaces_forbidden_characters() {
        let mut w = XmlWriter::new("ssbt:", 64);
        w.open_with("a", &[("x", "\"<&\n")]);
        w.leaf("b", "1 < 2 & 3 > 2\r\n\u{1}");
        w.close("a");
        let out = String::from_utf8(w.finish().to_vec()).unwrap();
        assert_eq!(
            out,
            "<ssbt:a x=\"&quot;&lt;&amp;&#xA;\"><ssbt:b>1 &lt; 2 &amp; 3 &gt; 2&#xD;\n\u{FFFD}</ssbt:b></ssbt:a>"
        );
    }
}
