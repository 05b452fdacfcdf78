//! # relay-ident
//!
//! Swedish identifiers shared by the relay, the provider adapters and the simulator:
//!
//! - [`Personnummer`]: a personnummer or samordningsnummer, parsed once (century, date,
//!   Luhn check digit) and after that known to be well-formed.
//! - [`Organisationsnummer`]: a Swedish organisation number (10 digits, or the
//!   `16`-prefixed 12-digit form used by SSBTEK's `ingivare`).
//!
//! Parse, don't validate: every constructor checks everything, so a value of these
//! types is always valid. A personnummer is personal data: its `Debug` and `Display`
//! print a masked form, so it cannot leak into a log line or an error text by
//! accident. The full number is only available through the explicit
//! [`Personnummer::as_str`] (12 digits) and [`Personnummer::short_form`] accessors.
//!
//! No input reaches a panic: `unwrap`, `expect`, indexing and string slicing
//! are denied outside tests (see `docs/robustness.md`).
//!
//! Not for: checking that a person exists, or anything that needs a register.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

/// Why an identifier was refused. The texts never contain the input itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("wrong length or characters: expected {expected}")]
    Format { expected: &'static str },
    #[error("century must be 18, 19 or 20")]
    Century,
    #[error("not a valid date")]
    Date,
    #[error("check digit does not match")]
    CheckDigit,
    #[error("third digit of an organisation number must be 2 or more")]
    NotAnOrganisation,
    #[error("a 12-digit organisation number must start with 16")]
    OrganisationPrefix,
}

/// The Luhn (modulus 10, weights 2,1,2,1,...) check digit for the given digits
/// (ASCII `0`-`9`), as used by personnummer and organisationsnummer.
pub fn luhn_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d.wrapping_sub(b'0')) * if i % 2 == 0 { 2 } else { 1 };
            v / 10 + v % 10
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn luhn_ok(ten: &[u8]) -> bool {
    match ten.split_last() {
        Some((check, body)) if body.len() == 9 => {
            luhn_check_digit(body) == check.wrapping_sub(b'0')
        }
        _ => false,
    }
}

/// Two ASCII digits as a number (0 for anything but two bytes).
fn two(d: &[u8]) -> u32 {
    match d {
        [hi, lo] => u32::from(hi.wrapping_sub(b'0')) * 10 + u32::from(lo.wrapping_sub(b'0')),
        _ => 0,
    }
}

/// `b` without the byte at `at` (a dash or plus sign).
fn without(b: &[u8], at: usize) -> Vec<u8> {
    b.iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, c)| *c)
        .collect()
}

/// Personnummer or samordningsnummer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersonKind {
    Personnummer,
    /// Day of birth + 60; Skatteverket also uses month `00` and day `60` for an
    /// unknown month or day, which are accepted.
    Samordningsnummer,
}

/// A valid personnummer or samordningsnummer, stored as 12 ASCII digits
/// (`YYYYMMDDNNNC`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Personnummer {
    digits: [u8; 12],
}

impl Personnummer {
    /// Parses the 12-digit forms (`YYYYMMDDNNNC`, `YYYYMMDD-NNNC`) and the 10-digit
    /// forms (`YYMMDDNNNC`, `YYMMDD-NNNC`, `YYMMDD+NNNC`). The century of a 10-digit
    /// form is resolved against today's date (`+` means 100 years or older).
    pub fn parse(s: &str) -> Result<Self, IdentError> {
        Self::parse_at(s, chrono::Local::now().date_naive())
    }

    /// As [`Personnummer::parse`], with the reference date for 10-digit forms given.
    pub fn parse_at(s: &str, today: NaiveDate) -> Result<Self, IdentError> {
        const EXPECTED: &str = "12 digits (YYYYMMDDNNNC) or 10 digits (YYMMDD-NNNC)";
        let b = s.trim().as_bytes();
        let mut digits = [0u8; 12];
        match b.len() {
            12 if b.iter().all(u8::is_ascii_digit) => digits.copy_from_slice(b),
            13 if matches!(b.get(8), Some(b'-' | b'+')) => {
                for (d, c) in digits.iter_mut().zip(without(b, 8)) {
                    *d = c;
                }
                if !digits.iter().all(u8::is_ascii_digit) {
                    return Err(IdentError::Format { expected: EXPECTED });
                }
            }
            10 | 11 => {
                let (ten, plus) = if b.len() == 10 {
                    (b.to_vec(), false)
                } else if matches!(b.get(6), Some(b'-' | b'+')) {
                    (without(b, 6), b.get(6) == Some(&b'+'))
                } else {
                    return Err(IdentError::Format { expected: EXPECTED });
                };
                if !ten.iter().all(u8::is_ascii_digit) {
                    return Err(IdentError::Format { expected: EXPECTED });
                }
                let yy = two(ten.get(..2).unwrap_or_default()) as i32;
                let mut year = today.year() - today.year().rem_euclid(100) + yy;
                if year > today.year() {
                    year -= 100;
                }
                if plus {
                    year -= 100;
                }
                if !(1800..=2099).contains(&year) {
                    return Err(IdentError::Century);
                }
                let century = (year / 100) as u8;
                digits[0] = b'0' + century / 10;
                digits[1] = b'0' + century % 10;
                for (d, c) in digits.iter_mut().skip(2).zip(&ten) {
                    *d = *c;
                }
            }
            _ => return Err(IdentError::Format { expected: EXPECTED }),
        }
        Self::from_digits(digits)
    }

    fn from_digits(digits: [u8; 12]) -> Result<Self, IdentError> {
        if !matches!(&digits[..2], b"18" | b"19" | b"20") {
            return Err(IdentError::Century);
        }
        let p = Self { digits };
        p.check_date()?;
        if !luhn_ok(&digits[2..]) {
            return Err(IdentError::CheckDigit);
        }
        Ok(p)
    }

    fn check_date(&self) -> Result<(), IdentError> {
        let d = &self.digits;
        let year = (two(&d[..2]) * 100 + two(&d[2..4])) as i32;
        let month = two(&d[4..6]);
        let day = two(&d[6..8]);
        if day > 60 {
            // Samordningsnummer: day + 60, month 00 allowed for an unknown month.
            if month == 0 {
                return if day <= 91 {
                    Ok(())
                } else {
                    Err(IdentError::Date)
                };
            }
            NaiveDate::from_ymd_opt(year, month, day - 60).ok_or(IdentError::Date)?;
            Ok(())
        } else if day == 60 {
            // Samordningsnummer with an unknown day.
            if month <= 12 {
                Ok(())
            } else {
                Err(IdentError::Date)
            }
        } else {
            NaiveDate::from_ymd_opt(year, month, day).ok_or(IdentError::Date)?;
            Ok(())
        }
    }

    /// Personnummer or samordningsnummer.
    pub fn kind(&self) -> PersonKind {
        if two(&self.digits[6..8]) >= 60 {
            PersonKind::Samordningsnummer
        } else {
            PersonKind::Personnummer
        }
    }

    /// The birth date, when the number carries a full one.
    pub fn birth_date(&self) -> Option<NaiveDate> {
        let d = &self.digits;
        let year = (two(&d[..2]) * 100 + two(&d[2..4])) as i32;
        let day = two(&d[6..8]);
        let day = if day > 60 { day - 60 } else { day };
        NaiveDate::from_ymd_opt(year, two(&d[4..6]), day)
    }

    /// The full 12 digits (`YYYYMMDDNNNC`). Personal data: never log it.
    pub fn as_str(&self) -> &str {
        // The digits are ASCII by construction.
        std::str::from_utf8(&self.digits).unwrap_or_default()
    }

    /// The century (`18`, `19` or `20`), for schemas that carry it separately.
    pub fn century(&self) -> &str {
        self.as_str().get(..2).unwrap_or_default()
    }

    /// The 10 digits without century (`YYMMDDNNNC`), as CSN and TNS expect.
    /// Personal data: never log it.
    pub fn short_form(&self) -> &str {
        self.as_str().get(2..).unwrap_or_default()
    }

    /// A form safe for logs: the kind and nothing of the number.
    pub fn masked(&self) -> &'static str {
        match self.kind() {
            PersonKind::Personnummer => "personnummer(********-****)",
            PersonKind::Samordningsnummer => "samordningsnummer(********-****)",
        }
    }
}

impl fmt::Debug for Personnummer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

impl fmt::Display for Personnummer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

impl FromStr for Personnummer {
    type Err = IdentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A valid Swedish organisation number, stored as its 10 digits.
///
/// Organisation numbers of legal persons are public register data, not personal
/// data, and the relay must be able to say which organisation asked; so `Display`
/// prints the 10 digits. (A sole trader uses a personnummer, which this type
/// refuses: the third digit of an organisation number is 2 or more.)
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Organisationsnummer {
    digits: [u8; 10],
}

impl Organisationsnummer {
    /// Parses `NNNNNNNNNN`, `NNNNNN-NNNN`, and the 12-digit `16NNNNNNNNNN` /
    /// `16NNNNNN-NNNN` forms.
    pub fn parse(s: &str) -> Result<Self, IdentError> {
        const EXPECTED: &str = "10 digits (NNNNNN-NNNN) or 12 digits starting with 16";
        let cleaned: Vec<u8> = {
            let b = s.trim().as_bytes();
            match b.len() {
                11 if b.get(6) == Some(&b'-') => without(b, 6),
                13 if b.get(8) == Some(&b'-') => without(b, 8),
                _ => b.to_vec(),
            }
        };
        if !cleaned.iter().all(u8::is_ascii_digit) {
            return Err(IdentError::Format { expected: EXPECTED });
        }
        let ten: &[u8] = match cleaned.len() {
            10 => &cleaned,
            12 if cleaned.starts_with(b"16") => cleaned.get(2..).unwrap_or_default(),
            12 => return Err(IdentError::OrganisationPrefix),
            _ => return Err(IdentError::Format { expected: EXPECTED }),
        };
        if ten.get(2).is_none_or(|d| *d < b'2') {
            return Err(IdentError::NotAnOrganisation);
        }
        if !luhn_ok(ten) {
            return Err(IdentError::CheckDigit);
        }
        let mut digits = [0u8; 10];
        for (d, c) in digits.iter_mut().zip(ten) {
            *d = *c;
        }
        Ok(Self { digits })
    }

    /// The 10 digits, no dash (`2120002411`): the SHS address form.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits).unwrap_or_default()
    }

    /// The 12-digit form with the `16` prefix (`162120002411`), as SSBTEK's
    /// `ingivare/organisationsnummer` expects.
    pub fn twelve_digits(&self) -> String {
        format!("16{}", self.as_str())
    }

    /// `NNNNNN-NNNN`.
    pub fn dashed(&self) -> String {
        let s = self.as_str();
        let (head, tail) = s.split_at_checked(6).unwrap_or((s, ""));
        format!("{head}-{tail}")
    }
}

impl fmt::Display for Organisationsnummer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Organisationsnummer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Organisationsnummer({})", self.as_str())
    }
}

impl FromStr for Organisationsnummer {
    type Err = IdentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Organisationsnummer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Organisationsnummer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Skatteverket's published test personnummer and samordningsnummer (never assigned
/// to real people). The simulator, the demo and the examples use only these.
pub const TEST_PERSONS: &[&str] = &[
    "191212121212",
    "190308189802",
    "190312049802",
    "201901012391",
    "201903312385",
    "202601622380",
    "202601612381",
    "202601912393",
    "191401682396",
];

/// Every personnummer and samordningsnummer written in `text`, in any of the
/// shapes [`Personnummer::parse`] takes (`YYYYMMDDNNNC`, `YYYYMMDD-NNNC`,
/// `YYMMDDNNNC`, `YYMMDD-NNNC`, `YYMMDD+NNNC`; with a valid date and check
/// digit), replaced by `replace(person)`; the rest of the text unchanged.
/// A number must stand on its own: a digit right before or after it makes it
/// part of a longer number, which is left alone.
///
/// Linear in the text and bounded: each byte is looked at a fixed number of
/// times, each candidate is at most 13 bytes, no backtracking, no allocation
/// unless something is replaced.
pub fn replace_personnummer(
    text: &str,
    mut replace: impl FnMut(&Personnummer) -> String,
) -> std::borrow::Cow<'_, str> {
    let b = text.as_bytes();
    let digit_at = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let run_at = |i: usize| {
        b.get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if !digit_at(i) {
            i += 1;
            continue;
        }
        let run = run_at(i);
        // A separated form: 8 or 6 digits, `-` or `+`, exactly 4 digits.
        let separated = |head: usize| {
            run == head && matches!(b.get(i + head), Some(b'-' | b'+')) && run_at(i + head + 1) == 4
        };
        let len = match run {
            10 | 12 => Some(run),
            8 if separated(8) => Some(13),
            6 if separated(6) => Some(11),
            _ => None,
        };
        let person = len.and_then(|len| {
            let candidate = text.get(i..i + len)?;
            Personnummer::parse(candidate).ok().map(|p| (p, len))
        });
        match person {
            Some((p, len)) => {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(text.get(copied..i).unwrap_or_default());
                o.push_str(&replace(&p));
                i += len;
                copied = i;
            }
            None => i += run.max(1),
        }
    }
    match out {
        Some(mut o) => {
            o.push_str(text.get(copied..).unwrap_or_default());
            std::borrow::Cow::Owned(o)
        }
        None => std::borrow::Cow::Borrowed(text),
    }
}

#[cfg(test)]
#[allow(clippy::string_slice)] // clippy.toml has no allow-string-slice-in-tests
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    #[test]
    fn skatteverkets_test_numbers_are_valid() {
        for p in TEST_PERSONS {
            let pnr = Personnummer::parse_at(p, today()).unwrap();
            assert_eq!(pnr.as_str(), *p);
        }
    }

    #[test]
    fn the_worked_example_check_digit_is_four() {
        assert_eq!(luhn_check_digit(b"640823323"), 4);
        assert!(Personnummer::parse_at("640823-3234", today()).is_ok());
    }

    #[test]
    fn all_accepted_forms_give_the_same_number() {
        // Tolvan is over 100, so his short form carries a `+`.
        for s in ["19121212-1212", "191212121212", "121212+1212"] {
            assert_eq!(
                Personnummer::parse_at(s, today()).unwrap().as_str(),
                "191212121212",
                "{s}"
            );
        }
    }

    #[test]
    fn a_short_form_without_plus_is_under_a_hundred() {
        let p = Personnummer::parse_at("1212121212", today()).unwrap();
        assert_eq!(p.as_str(), "201212121212");
    }

    #[test]
    fn a_plus_sign_means_a_hundred_years_or_older() {
        let p = Personnummer::parse_at("031204+9802", today()).unwrap();
        assert_eq!(p.as_str(), "190312049802");
        let p = Personnummer::parse_at("190101-2391", today()).unwrap();
        assert_eq!(p.as_str(), "201901012391");
    }

    #[test]
    fn samordningsnummer_are_recognised_with_their_date() {
        let p = Personnummer::parse_at("202601622380", today()).unwrap();
        assert_eq!(p.kind(), PersonKind::Samordningsnummer);
        assert_eq!(p.birth_date(), NaiveDate::from_ymd_opt(2026, 1, 2));
        let p = Personnummer::parse_at("202601912393", today()).unwrap();
        assert_eq!(p.birth_date(), NaiveDate::from_ymd_opt(2026, 1, 31));
    }

    #[test]
    fn invalid_numbers_are_refused_with_the_reason() {
        assert_eq!(
            Personnummer::parse_at("811218-9875", today()),
            Err(IdentError::CheckDigit)
        );
        assert_eq!(
            Personnummer::parse_at("19900101-1234", today()),
            Err(IdentError::CheckDigit)
        );
        assert_eq!(
            Personnummer::parse_at("811318-1234", today()),
            Err(IdentError::Date)
        );
        assert_eq!(
            Personnummer::parse_at("811200-1234", today()),
            Err(IdentError::Date)
        );
        // Day 92 - 60 = 32.
        assert_eq!(
            Personnummer::parse_at("201901922391", today()),
            Err(IdentError::Date)
        );
        assert_eq!(
            Personnummer::parse_at("001212121212", today()),
            Err(IdentError::Century)
        );
        for bad in [
            "",
            "1912121212121",
            "19121212121",
            "19121212-12a2",
            "abcdefghijkl",
        ] {
            assert!(matches!(
                Personnummer::parse_at(bad, today()),
                Err(IdentError::Format { .. })
            ));
        }
    }

    #[test]
    fn debug_and_display_never_show_the_number() {
        let p = Personnummer::parse_at("191212121212", today()).unwrap();
        for shown in [format!("{p}"), format!("{p:?}"), format!("{:?}", Some(p))] {
            assert!(!shown.contains("1212"), "{shown}");
        }
    }

    #[test]
    fn errors_never_echo_the_input() {
        let e = Personnummer::parse_at("19121212-1213", today()).unwrap_err();
        assert!(!e.to_string().contains("1213"));
    }

    #[test]
    fn organisation_numbers_in_all_forms() {
        for s in ["2120002411", "212000-2411", "162120002411", "16212000-2411"] {
            let o = Organisationsnummer::parse(s).unwrap();
            assert_eq!(o.as_str(), "2120002411");
            assert_eq!(o.twelve_digits(), "162120002411");
            assert_eq!(o.dashed(), "212000-2411");
        }
        for s in ["2120000142", "2120001355", "5560360793"] {
            assert!(Organisationsnummer::parse(s).is_ok(), "{s}");
        }
        assert_eq!(
            Organisationsnummer::parse("2120002412"),
            Err(IdentError::CheckDigit)
        );
        // A personnummer is not an organisation number.
        assert_eq!(
            Organisationsnummer::parse("1212121212"),
            Err(IdentError::NotAnOrganisation)
        );
        assert_eq!(
            Organisationsnummer::parse("172120002411"),
            Err(IdentError::OrganisationPrefix)
        );
    }

    fn with_check_digit(nine: &str) -> String {
        format!("{nine}{}", luhn_check_digit(nine.as_bytes()))
    }

    proptest! {
        #[test]
        fn every_real_date_with_its_check_digit_parses(
            days in 0i64..(365 * 200),
            serial in 0u32..1000,
        ) {
            let date = NaiveDate::from_ymd_opt(1826, 1, 1).unwrap() + chrono::Days::new(days as u64);
            let nine = format!("{}{serial:03}", &date.format("%Y%m%d").to_string()[2..]);
            let twelve = format!("{}{}", &date.format("%Y").to_string()[..2], with_check_digit(&nine));
            let p = Personnummer::parse_at(&twelve, today()).unwrap();
            prop_assert_eq!(p.as_str(), twelve.as_str());
            prop_assert_eq!(p.birth_date(), Some(date));
            prop_assert_eq!(p.kind(), PersonKind::Personnummer);
            // Samordningsnummer: the same date with day + 60.
            let co = format!("{}{}{:02}{serial:03}", &twelve[..2], &nine[..4], date.day() + 60);
            let co = format!("{}{}", &co[..2], with_check_digit(&co[2..]));
            let s = Personnummer::parse_at(&co, today()).unwrap();
            prop_assert_eq!(s.kind(), PersonKind::Samordningsnummer);
            prop_assert_eq!(s.birth_date(), Some(date));
        }

        #[test]
        fn a_changed_check_digit_is_refused(days in 0i64..36500, serial in 0u32..1000, delta in 1u8..10) {
            let date = NaiveDate::from_ymd_opt(1926, 1, 1).unwrap() + chrono::Days::new(days as u64);
            let nine = format!("{}{serial:03}", &date.format("%Y%m%d").to_string()[2..]);
            let check = (luhn_check_digit(nine.as_bytes()) + delta) % 10;
            let twelve = format!("{}{nine}{check}", &date.format("%Y").to_string()[..2]);
            prop_assert_eq!(Personnummer::parse_at(&twelve, today()), Err(IdentError::CheckDigit));
        }

        #[test]
        fn ten_digit_forms_resolve_to_within_a_hundred_years(days in 0i64..36000, serial in 0u32..1000) {
            let date = today() - chrono::Days::new(days as u64);
            let nine = format!("{}{serial:03}", &date.format("%Y%m%d").to_string()[2..]);
            let ten = with_check_digit(&nine);
            let p = Personnummer::parse_at(&format!("{}-{}", &ten[..6], &ten[6..]), today()).unwrap();
            prop_assert_eq!(p.birth_date(), Some(date));
        }

        #[test]
        fn organisation_numbers_with_check_digit_parse(first in 1u32..10, third in 2u32..10, rest in 0u32..10_000_000) {
            let nine = format!("{first}0{third}{rest:06}");
            let nine = &nine[..9];
            let ten = with_check_digit(nine);
            let o = Organisationsnummer::parse(&ten).unwrap();
            prop_assert_eq!(o.as_str(), ten.as_str());
            prop_assert_eq!(Organisationsnummer::parse(&o.twelve_digits()).unwrap(), o);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,20}") {
            let _ = Personnummer::parse_at(&s, today());
            let _ = Organisationsnummer::parse(&s);
        }
    }
    #[test]
    fn every_written_shape_of_a_number_in_free_text_is_replaced_and_nothing_else() {
        let mark = |p: &Personnummer| format!("<{}>", p.as_str());
        for (text, want) in [
            ("case 191212121212 x", "case <191212121212> x"),
            ("case 19121212-1212 x", "case <191212121212> x"),
            ("case 19121212+1212 x", "case <191212121212> x"),
            ("ARENDE-1903081898-02", "ARENDE-1903081898-02"),
            ("1212121212", "<201212121212>"),
            ("121212-1212", "<201212121212>"),
            ("121212+1212", "<191212121212>"),
            ("Anna/190308189802/x", "Anna/<190308189802>/x"),
            // Samordningsnummer, 12 and 10 digits.
            ("samo 202601622380", "samo <202601622380>"),
            ("samo 260162-2380.", "samo <202601622380>."),
            // Not a number: wrong check digit, part of a longer run, bad date.
            ("191212121213", "191212121213"),
            ("1191212121212", "1191212121212"),
            ("19121212-12125", "19121212-12125"),
            ("191312121212", "191312121212"),
            (
                "ärende 19121212-1212 och 19030818-9802",
                "ärende <191212121212> och <190308189802>",
            ),
            ("", ""),
        ] {
            assert_eq!(replace_personnummer(text, mark), want, "{text}");
        }
    }

    #[test]
    fn replacing_numbers_in_a_long_text_stays_linear() {
        let text = "1".repeat(200_000) + " " + &"191212121212 ".repeat(20_000);
        let started = std::time::Instant::now();
        let out = replace_personnummer(&text, |_| "P".into());
        assert_eq!(out.matches('P').count(), 20_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
