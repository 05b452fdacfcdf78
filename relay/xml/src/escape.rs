//! The one escaper: every text and attribute value the relay writes into XML
//! (or HTML) goes through [`escape_into`]. Characters XML cannot carry at all
//! are replaced with U+FFFD, so whatever a provider or caller sent, the output
//! stays well-formed.

use std::borrow::Cow;

/// Where escaped text goes: a `String`, or a byte buffer (which may be one
/// that is wiped on drop, so no unwiped copy is made on the way).
pub trait Sink {
    fn push_str(&mut self, s: &str);
}

impl Sink for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
}

impl Sink for Vec<u8> {
    fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// The `Char` production of XML 1.0: characters a document may contain at all.
pub const fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// What `c` becomes, or `None` when it is written as it is.
fn replacement(c: char, attribute: bool) -> Option<&'static str> {
    Some(match c {
        '&' => "&amp;",
        '<' => "&lt;",
        '>' => "&gt;",
        '"' if attribute => "&quot;",
        '\'' if attribute => "&#39;",
        // Attribute-value normalisation would turn these into spaces.
        '\t' if attribute => "&#x9;",
        '\n' if attribute => "&#xA;",
        // A literal CR would be read back as LF.
        '\r' => "&#xD;",
        c if is_xml_char(c) => return None,
        _ => "\u{FFFD}",
    })
}

/// Appends `s` to `out`, escaped for element content or (`attribute`) for a
/// quoted attribute value (either quote).
pub fn escape_into<S: Sink + ?Sized>(out: &mut S, s: &str, attribute: bool) {
    let mut rest = s;
    while let Some((at, c)) = rest
        .char_indices()
        .find(|&(_, c)| replacement(c, attribute).is_some())
    {
        let (plain, tail) = rest.split_at(at);
        out.push_str(plain);
        out.push_str(replacement(c, attribute).unwrap_or("\u{FFFD}"));
        rest = tail.get(c.len_utf8()..).unwrap_or("");
    }
    out.push_str(rest);
}

fn escaped(s: &str, attribute: bool) -> Cow<'_, str> {
    if s.chars().all(|c| replacement(c, attribute).is_none()) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    escape_into(&mut out, s, attribute);
    Cow::Owned(out)
}

/// `s` escaped for element content (`&`, `<`, `>`, CR; characters XML cannot
/// carry become U+FFFD).
pub fn escape_text(s: &str) -> Cow<'_, str> {
    escaped(s, false)
}

/// `s` escaped for an attribute value in either quote: as [`escape_text`],
/// and also both quotes, tab and line feed. Safe in HTML text and attributes.
pub fn escape_attr(s: &str) -> Cow<'_, str> {
    escaped(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_markup_and_replaces_forbidden_characters() {
        assert_eq!(
            escape_text("1 < 2 & 3 > 2\r\n\u{1} \"'"),
            "1 &lt; 2 &amp; 3 &gt; 2&#xD;\n\u{FFFD} \"'"
        );
    }

    #[test]
    fn attributes_also_escape_quotes_and_whitespace_normalisation_would_eat() {
        assert_eq!(escape_attr("\"<&\n'\t"), "&quot;&lt;&amp;&#xA;&#39;&#x9;");
    }

    #[test]
    fn plain_text_is_borrowed_and_unicode_kept() {
        assert!(matches!(escape_text("Åsa Öberg"), Cow::Borrowed(_)));
        let mut bytes = Vec::new();
        escape_into(&mut bytes, "é<😀", false);
        assert_eq!(bytes, "é&lt;😀".as_bytes());
    }
}
