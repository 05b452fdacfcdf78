//! Lexical forms of the XSD simple types the v10 contract uses (`xsd:boolean`,
//! `xsd:date`, `xsd:dateTime`, `xsd:short`, `xsd:base64Binary`) and the XML
//! character and name classes. Pure functions on `&str`; no XML parsing here.

use base64::Engine as _;
use chrono::NaiveDate;

/// XML whitespace (`S` production): space, tab, CR, LF.
pub(crate) const fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// The whitespace-collapsed value of a single-token type: every simple type here
/// except `xsd:string` has `whiteSpace=collapse`, so surrounding whitespace is
/// allowed and any whitespace left inside fails the type's own grammar.
pub(crate) fn collapse(s: &str) -> &str {
    s.trim_matches(is_xml_space)
}

/// Whether the text holds anything but XML whitespace.
pub(crate) fn is_blank(s: &str) -> bool {
    s.chars().all(is_xml_space)
}

/// The `Char` production of XML 1.0: characters a document may contain at all.
pub(crate) use relay_xml::is_xml_char;

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// An `NCName`: an XML name without a colon.
pub(crate) fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// A `QName`: an `NCName`, optionally prefixed with another one and a colon.
pub(crate) fn is_qname(s: &str) -> bool {
    match s.split_once(':') {
        Some((prefix, local)) => is_ncname(prefix) && is_ncname(local),
        None => is_ncname(s),
    }
}

/// `xsd:boolean`: `true`, `false`, `1` or `0`.
pub(crate) fn boolean(s: &str) -> Option<bool> {
    match collapse(s) {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// `xsd:short`: an optionally signed decimal integer in `i16` range.
pub(crate) fn short(s: &str) -> Option<i16> {
    let s = collapse(s);
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // `i16::from_str` refuses a leading `+`, which XSD allows.
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

fn digits<const N: usize>(s: &[u8]) -> Option<u32> {
    if s.len() != N || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// The time zone suffix of XSD date/time types: `Z` or `±hh:mm` (at most 14:00).
fn timezone(s: &[u8]) -> bool {
    match s {
        [] | [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            match (digits::<2>(&[*h1, *h2]), digits::<2>(&[*m1, *m2])) {
                (Some(h), Some(m)) => (h < 14 && m < 60) || (h == 14 && m == 0),
                _ => false,
            }
        }
        _ => false,
    }
}

/// `YYYY-MM-DD` at the start of `s` as a calendar date. Years are four digits
/// from 0001 (stricter than XSD, which also allows longer and negative years).
fn date_part(s: &[u8]) -> Option<NaiveDate> {
    let Some([y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, ..]) = s.get(..10) else {
        return None;
    };
    let year = digits::<4>(&[*y0, *y1, *y2, *y3])?;
    let month = digits::<2>(&[*m0, *m1])?;
    let day = digits::<2>(&[*d0, *d1])?;
    if year == 0 {
        return None;
    }
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

/// `xsd:date`: `YYYY-MM-DD` with an optional time zone (`2016-11-18+01:00`), which
/// is checked and then dropped: periods in SSBTEK are calendar dates.
pub(crate) fn date(s: &str) -> Option<NaiveDate> {
    let s = collapse(s).as_bytes();
    let d = date_part(s)?;
    timezone(s.get(10..)?).then_some(d)
}

/// `xsd:dateTime`: `YYYY-MM-DDThh:mm:ss[.fff][zone]`, with `24:00:00` allowed as
/// the end of a day.
pub(crate) fn date_time(s: &str) -> bool {
    let s = collapse(s).as_bytes();
    if date_part(s).is_none() {
        return false;
    }
    let Some([b'T', h0, h1, b':', m0, m1, b':', s0, s1, rest @ ..]) = s.get(10..) else {
        return false;
    };
    let (Some(h), Some(m), Some(sec)) = (
        digits::<2>(&[*h0, *h1]),
        digits::<2>(&[*m0, *m1]),
        digits::<2>(&[*s0, *s1]),
    ) else {
        return false;
    };
    let mut rest = rest;
    let mut fraction_zero = true;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        let Some((digits, after)) = frac.split_at_checked(n).filter(|_| n > 0) else {
            return false;
        };
        fraction_zero = digits.iter().all(|&b| b == b'0');
        rest = after;
    }
    let time_ok =
        (h < 24 && m < 60 && sec < 60) || (h == 24 && m == 0 && sec == 0 && fraction_zero);
    time_ok && timezone(rest)
}

/// `xsd:base64Binary`, decoded. Whitespace between characters is allowed (the
/// type collapses whitespace and its grammar allows single spaces between
/// characters); the padding and unused trailing bits must be canonical.
pub(crate) fn base64(s: &str) -> Option<Vec<u8>> {
    let compact: String = s.chars().filter(|c| !is_xml_space(*c)).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
}

/// Whether [`base64`] would decode `s`, without keeping what it decodes: the
/// decoded bytes (personal data) are wiped at once.
pub(crate) fn is_base64(s: &str) -> bool {
    let engine = &base64::engine::general_purpose::STANDARD;
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    if !s.as_bytes().iter().any(space) {
        return engine
            .decode(s.as_bytes())
            .map(zeroize::Zeroizing::new)
            .is_ok();
    }
    let compact: zeroize::Zeroizing<Vec<u8>> =
        zeroize::Zeroizing::new(s.bytes().filter(|b| !space(b)).collect());
    engine
        .decode(compact.as_slice())
        .map(zeroize::Zeroizing::new)
        .is_ok()
}

/// The `ssbt:Organisationsnummer` pattern `\d{4}[2-9]\d{7}` (ASCII digits only).
pub(crate) fn organisationsnummer_pattern(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12 && b.iter().all(u8::is_ascii_digit) && b.get(4).is_some_and(|d| *d >= b'2')
}

/// The `ssbt:Personidentitet` pattern `[0-9]{12}`.
pub(crate) fn personidentitet_pattern(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_take_all_four_lexical_forms() {
        assert_eq!(boolean("true"), Some(true));
        assert_eq!(boolean(" 1\n"), Some(true));
        assert_eq!(boolean("0"), Some(false));
        assert_eq!(boolean("false"), Some(false));
        assert_eq!(boolean("TRUE"), None);
        assert_eq!(boolean("yes"), None);
        assert_eq!(boolean(""), None);
    }

    #[test]
    fn dates_take_an_optional_time_zone() {
        let d = NaiveDate::from_ymd_opt(2016, 11, 18).unwrap();
        assert_eq!(date("2016-11-18"), Some(d));
        assert_eq!(date("2016-11-18+01:00"), Some(d));
        assert_eq!(date("2016-11-18Z"), Some(d));
        assert_eq!(date(" 2016-11-18-14:00 "), Some(d));
        for bad in [
            "2016-11-31",
            "2016-13-01",
            "16-11-18",
            "2016-1-18",
            "2016-11-18+15:00",
            "2016-11-18+01",
            "2016/11/18",
            "0000-01-01",
            "2016-11-18T00:00:00",
            "",
        ] {
            assert_eq!(date(bad), None, "{bad}");
        }
        assert!(date("2024-02-29").is_some());
        assert!(date("2023-02-29").is_none());
    }

    #[test]
    fn date_times_follow_xsd() {
        for good in [
            "2024-05-01T12:30:00",
            "2024-05-01T12:30:00Z",
            "2024-05-01T12:30:00.123+02:00",
            "2024-05-01T24:00:00",
        ] {
            assert!(date_time(good), "{good}");
        }
        for bad in [
            "2024-05-01",
            "2024-05-01T12:30",
            "2024-05-01T25:00:00",
            "2024-05-01T12:60:00",
            "2024-05-01T12:30:00.",
            "2024-05-01T24:00:01",
            "2024-05-01 12:30:00",
        ] {
            assert!(!date_time(bad), "{bad}");
        }
    }

    #[test]
    fn shorts_and_patterns() {
        assert_eq!(short("+12"), Some(12));
        assert_eq!(short("-32768"), Some(-32768));
        assert_eq!(short("32768"), None);
        assert_eq!(short("1.0"), None);
        assert!(organisationsnummer_pattern("162120002411"));
        assert!(!organisationsnummer_pattern("162110002411"));
        assert!(!organisationsnummer_pattern("2120002411"));
        assert!(personidentitet_pattern("191212121212"));
        assert!(!personidentitet_pattern("19121212121"));
        assert!(!personidentitet_pattern("19121212-1212"));
    }

    #[test]
    fn base64_is_canonical_and_may_hold_whitespace() {
        assert_eq!(base64("aGVq").as_deref(), Some(&b"hej"[..]));
        assert_eq!(base64("aGVq\n aGVq").as_deref(), Some(&b"hejhej"[..]));
        assert_eq!(base64("").as_deref(), Some(&b""[..]));
        assert!(base64("aGV").is_none());
        assert!(base64("aGVq!").is_none());
        assert!(base64("aR==").is_none(), "non-zero unused bits");
        for s in [
            "aGVq",
            "aGVq\n aGVq",
            "",
            "aGV",
            "aGVq!",
            "aR==",
            "aG\tVq\r\n",
        ] {
            assert_eq!(is_base64(s), base64(s).is_some(), "{s:?}");
        }
    }

    #[test]
    fn names_and_characters() {
        assert!(is_qname("ssbt:data"));
        assert!(is_qname("svar"));
        assert!(!is_qname("1abc"));
        assert!(!is_qname("a:b:c"));
        assert!(!is_qname("a$b"));
        assert!(is_xml_char('å'));
        assert!(!is_xml_char('\u{1}'));
        assert!(!is_xml_char('\u{FFFE}'));
    }
}
