//! Checking a provider adapter's `<ssbt:data>` content before the relay inserts
//! it verbatim into the answer.
//!
//! The payload is the content of `<ssbt:data>` exactly as the adapter produced
//! it: one or more elements that declare the namespaces they use (the `ssbt`
//! prefix may be used undeclared: the answer binds it). The check makes sure
//! inserting it cannot break the answer document: it must be well-formed UTF-8
//! XML, hold no declaration, DOCTYPE, processing instruction or unknown entity,
//! and its top-level elements must have the shape the v10 XSD gives the slot's
//! `data` type (for CSN and FK: one `svar`/`lefiJsonSvar` of base64, for SKV one
//! unqualified `svar` string, and so on). Deeper content is the adapter's
//! responsibility; the provider SDK validates it against the provider's own XSD.

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use zeroize::Zeroizing;

use crate::NS_SSBT;
use crate::lexical::{is_blank, is_qname, is_xml_char};
use crate::slot::Slot;
use crate::xml::NS_XSI;
use crate::xml::sequence::{Particle, Wildcard, match_sequence};

/// Deepest nesting accepted inside a payload.
pub const MAX_PAYLOAD_DEPTH: usize = 64;

const NS_AF: &str = "http://api.arbetsformedlingen.se/arbetssokande/ersattningsstod/v2";
const NS_SO: &str = "http://INT014.UBPService.Schemas";
const NS_TNS: &str = "http://schema.transportstyrelsen.se/ssbtek/hamtauppgifterresponder/1";

/// Why a payload was not inserted. The texts never hold payload content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    #[error("payload is not UTF-8")]
    NotUtf8,
    #[error("payload holds a character not allowed in XML")]
    InvalidCharacter,
    #[error("payload is not well-formed XML")]
    NotWellFormed,
    #[error("payload holds an XML declaration, DOCTYPE or processing instruction")]
    Prolog,
    #[error("payload uses an undeclared namespace prefix")]
    UndeclaredPrefix,
    #[error("payload uses an entity other than the five predefined ones")]
    UndeclaredEntity,
    #[error("payload holds text outside its elements")]
    StrayText,
    #[error("payload nested deeper than {MAX_PAYLOAD_DEPTH}")]
    TooDeep,
    #[error("payload does not have the shape of the slot's data type: {expected}")]
    Shape { expected: &'static str },
    #[error("payload's base64 content is not valid base64")]
    NotBase64,
}

/// What the single top-level element of CSN, FK and SKV data holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leaf {
    /// Not a single-leaf type.
    No,
    Base64,
    Text,
}

struct Shape {
    particles: &'static [Particle],
    wildcard: Wildcard,
    leaf: Leaf,
    expected: &'static str,
}

const SSBT: Option<&str> = Some(NS_SSBT);

fn shape(slot: Slot) -> Shape {
    const AF: &[Particle] = &[
        Particle::one(Some(NS_AF), "Fraga"),
        Particle::one(Some(NS_AF), "Svar"),
    ];
    const CSN: &[Particle] = &[Particle::one(SSBT, "svar")];
    const FK: &[Particle] = &[Particle::one(SSBT, "lefiJsonSvar")];
    const SKV: &[Particle] = &[Particle::one(None, "svar")];
    const SO: &[Particle] = &[
        Particle::one(Some(NS_SO), "OrganisationsnummerIngivare"),
        Particle::one(Some(NS_SO), "NamnIngivare"),
        Particle::one(Some(NS_SO), "KontonamnHandlaggare"),
        Particle::one(Some(NS_SO), "Referensnummer"),
        Particle::one(Some(NS_SO), "From"),
        Particle::one(Some(NS_SO), "Tom"),
        Particle::one(Some(NS_SO), "Syfte"),
        Particle::one(Some(NS_SO), "Paragraf"),
        Particle::many(Some(NS_SO), "OrganisationsnummerPersonuppgiftsbitrade"),
        Particle::many(Some(NS_SO), "NamnPersonuppgiftsbitrade"),
        Particle::one(Some(NS_SO), "IdentificationNumber"),
        Particle::one(Some(NS_SO), "ArbetsloshetsersattningLista"),
    ];
    const TNS: &[Particle] = &[
        Particle::one(Some(NS_TNS), "resultat"),
        Particle::optional(Some(NS_TNS), "fordonsinnehav"),
        Particle::many(Some(NS_TNS), "felresultat"),
    ];
    const MIV: &[Particle] = &[Particle::optional(None, "response")];
    match slot {
        Slot::Af => Shape {
            particles: AF,
            wildcard: Wildcard::Any,
            leaf: Leaf::No,
            expected: "af:SvarMeddelande (Fraga, Svar, then any elements)",
        },
        Slot::Csn => Shape {
            particles: CSN,
            wildcard: Wildcard::None,
            leaf: Leaf::Base64,
            expected: "ssbt:CsnSvarsData (one ssbt:svar of base64)",
        },
        Slot::Fk => Shape {
            particles: FK,
            wildcard: Wildcard::None,
            leaf: Leaf::Base64,
            expected: "ssbt:FkSvarsData (one ssbt:lefiJsonSvar of base64)",
        },
        Slot::Skv => Shape {
            particles: SKV,
            wildcard: Wildcard::None,
            leaf: Leaf::Text,
            expected: "skv:BeskattningsuppgifterResponseTYPE (one unqualified svar string)",
        },
        Slot::So => Shape {
            particles: SO,
            wildcard: Wildcard::None,
            leaf: Leaf::No,
            expected: "so:GetUnemploymentBenefitPaymentResponseType (OrganisationsnummerIngivare … ArbetsloshetsersattningLista)",
        },
        Slot::Tns => Shape {
            particles: TNS,
            wildcard: Wildcard::Other(NS_TNS),
            leaf: Leaf::No,
            expected: "tns:HamtaUppgifterResponseType (resultat, fordonsinnehav?, felresultat*)",
        },
        Slot::Miv => Shape {
            particles: MIV,
            wildcard: Wildcard::None,
            leaf: Leaf::No,
            expected: "miv:findByPersonnummerResponse (an optional unqualified response)",
        },
    }
}

/// What the answer writer needs to know about an accepted payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// Some element relies on having no default namespace, so `<ssbt:data>`
    /// gets `xmlns=""` in case the answer is embedded under one.
    pub(crate) reset_default_namespace: bool,
}

/// Checks that `payload` can be inserted as the content of `slot`'s `<ssbt:data>`.
pub fn check_payload(slot: Slot, payload: &[u8]) -> Result<(), PayloadError> {
    inspect(slot, payload).map(|_| ())
}

pub(crate) fn inspect(slot: Slot, payload: &[u8]) -> Result<Accepted, PayloadError> {
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotUtf8)?;
    if !all_xml_chars(text) {
        return Err(PayloadError::InvalidCharacter);
    }
    // Read it exactly where it will stand: inside `<ssbt:data>`, `ssbt` bound.
    const OPEN: &str =
        "<ssbt:data xmlns:ssbt=\"http://schema.forsakringskassan.se/integration/ssbt/10\">";
    const CLOSE: &str = "</ssbt:data>";
    let mut wrapped = Zeroizing::new(String::with_capacity(OPEN.len() + text.len() + CLOSE.len()));
    wrapped.push_str(OPEN);
    wrapped.push_str(text);
    wrapped.push_str(CLOSE);
    let shape = shape(slot);
    let mut scan = Scan {
        collect_leaf: shape.leaf != Leaf::No,
        ..Scan::default()
    };
    scan.run(&wrapped)?;
    let names: Vec<_> = scan
        .top
        .iter()
        .map(|(ns, l)| (ns.as_deref(), l.as_str()))
        .collect();
    let bad_shape = PayloadError::Shape {
        expected: shape.expected,
    };
    match_sequence(&names, shape.particles, shape.wildcard).map_err(|_| bad_shape.clone())?;
    match shape.leaf {
        Leaf::No => {}
        Leaf::Text if scan.leaf_has_markup => return Err(bad_shape),
        Leaf::Text => {}
        Leaf::Base64 if scan.leaf_has_markup => return Err(bad_shape),
        Leaf::Base64 => {
            if !crate::lexical::is_base64(&scan.leaf_text) {
                return Err(PayloadError::NotBase64);
            }
        }
    }
    Ok(Accepted {
        reset_default_namespace: scan.relies_on_no_default,
    })
}

#[derive(Default)]
struct Scan {
    /// Depth including the `<ssbt:data>` wrapper (which is depth 1).
    depth: usize,
    closed: bool,
    top: Vec<(Option<String>, String)>,
    collect_leaf: bool,
    leaf_text: Zeroizing<String>,
    /// A top-level element has children or attributes.
    leaf_has_markup: bool,
    relies_on_no_default: bool,
}

/// Every character may stand in an XML document: ASCII checked byte by byte,
/// the rest (rare in payloads) character by character.
fn all_xml_chars(text: &str) -> bool {
    let ascii_ok = |b: &u8| matches!(*b, b'\t' | b'\n' | b'\r' | 0x20..=0x7f);
    text.as_bytes().iter().all(ascii_ok) || text.chars().all(is_xml_char)
}

fn bound(ns: ResolveResult<'_>) -> Result<Option<&str>, PayloadError> {
    match ns {
        ResolveResult::Bound(ns) => Ok(Some(ns.0)),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(_) => Err(PayloadError::UndeclaredPrefix),
    }
}

impl Scan {
    fn run(&mut self, text: &str) -> Result<(), PayloadError> {
        let mut reader = NsReader::from_str(text);
        let config = reader.config_mut();
        config.check_comments = true;
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        loop {
            let event = reader
                .read_event()
                .map_err(|_| PayloadError::NotWellFormed)?;
            // Anything after the `<ssbt:data>` wrapper closes broke out of it.
            if self.closed && !matches!(event, Event::Eof) {
                return Err(PayloadError::NotWellFormed);
            }
            match event {
                Event::Decl(_) | Event::DocType(_) | Event::PI(_) => {
                    return Err(PayloadError::Prolog);
                }
                Event::Comment(_) => {}
                Event::Start(e) => self.open(&reader, &e, false)?,
                Event::Empty(e) => self.open(&reader, &e, true)?,
                Event::End(_) => {
                    self.depth = self
                        .depth
                        .checked_sub(1)
                        .ok_or(PayloadError::NotWellFormed)?;
                    self.closed = self.depth == 0;
                }
                Event::Text(t) => {
                    let raw: &str = &t;
                    if raw.contains("]]>") {
                        return Err(PayloadError::NotWellFormed);
                    }
                    if self.depth <= 1 && !is_blank(raw) {
                        return Err(PayloadError::StrayText);
                    }
                    self.leaf(&t.xml10_content());
                }
                Event::CData(c) => {
                    if self.depth <= 1 {
                        return Err(PayloadError::StrayText);
                    }
                    self.leaf(&c.xml10_content());
                }
                Event::GeneralRef(r) => {
                    if self.depth <= 1 {
                        return Err(PayloadError::StrayText);
                    }
                    let mut one = [0u8; 4];
                    let s: &str = if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) if is_xml_char(c) => c.encode_utf8(&mut one),
                            _ => return Err(PayloadError::InvalidCharacter),
                        }
                    } else {
                        resolve_predefined_entity(&r).ok_or(PayloadError::UndeclaredEntity)?
                    };
                    self.leaf(s);
                }
                Event::Eof => {
                    return if self.closed {
                        Ok(())
                    } else {
                        Err(PayloadError::NotWellFormed)
                    };
                }
            }
        }
    }

    fn leaf(&mut self, s: &str) {
        if self.collect_leaf && self.depth == 2 {
            self.leaf_text.push_str(s);
        }
    }

    fn open(
        &mut self,
        reader: &NsReader<&[u8]>,
        e: &BytesStart<'_>,
        empty: bool,
    ) -> Result<(), PayloadError> {
        let name = e.name();
        if !is_qname(name.into_inner()) {
            return Err(PayloadError::NotWellFormed);
        }
        let ns = bound(reader.resolver().resolve_element(name).0)?;
        if ns.is_none() {
            self.relies_on_no_default = true;
        }
        self.depth += 1;
        if self.depth > MAX_PAYLOAD_DEPTH + 1 {
            return Err(PayloadError::TooDeep);
        }
        let mut seen: Vec<(Option<&str>, &str)> = Vec::new();
        let mut plain_attributes = false;
        for attr in e.attributes() {
            let attr = attr.map_err(|_| PayloadError::NotWellFormed)?;
            if !is_qname(attr.key.into_inner()) || attr.value.contains('<') {
                return Err(PayloadError::NotWellFormed);
            }
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|_| PayloadError::UndeclaredEntity)?;
            if !value.chars().all(is_xml_char) {
                return Err(PayloadError::InvalidCharacter);
            }
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (ans, local) = reader.resolver().resolve_attribute(attr.key);
            let key = (bound(ans)?, local.into_inner());
            if seen.contains(&key) {
                return Err(PayloadError::NotWellFormed);
            }
            if key.0 != Some(NS_XSI) {
                plain_attributes = true;
            }
            seen.push(key);
        }
        match self.depth {
            2 => {
                self.top.push((
                    ns.map(str::to_owned),
                    e.local_name().into_inner().to_owned(),
                ));
                self.leaf_has_markup |= plain_attributes;
            }
            3 => self.leaf_has_markup = true,
            _ => {}
        }
        if empty {
            self.depth -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSN_OK: &str = "<ssbt:svar>aGVq</ssbt:svar>";

    #[test]
    fn a_self_contained_payload_is_accepted() {
        assert_eq!(
            inspect(Slot::Csn, CSN_OK.as_bytes()),
            Ok(Accepted {
                reset_default_namespace: false
            })
        );
        let fk = r#"<x:lefiJsonSvar xmlns:x="http://schema.forsakringskassan.se/integration/ssbt/10">e30=</x:lefiJsonSvar>"#;
        assert!(check_payload(Slot::Fk, fk.as_bytes()).is_ok());
        let skv = "<svar><![CDATA[<a>&</a>]]></svar>";
        assert_eq!(
            inspect(Slot::Skv, skv.as_bytes()),
            Ok(Accepted {
                reset_default_namespace: true
            })
        );
        assert!(check_payload(Slot::Miv, b"").is_ok());
        assert!(check_payload(Slot::Miv, b"<!-- nothing --> ").is_ok());
    }

    #[test]
    fn broken_payloads_are_refused() {
        let cases: &[(Slot, &str, PayloadError)] = &[
            (
                Slot::Csn,
                "<ssbt:svar>aGVq</ssbt:svar",
                PayloadError::NotWellFormed,
            ),
            (
                Slot::Csn,
                "<ssbt:svar>aGVq</ssbt:data><ssbt:data>",
                PayloadError::NotWellFormed,
            ),
            (
                Slot::Csn,
                "<?xml version=\"1.0\"?><ssbt:svar>aGVq</ssbt:svar>",
                PayloadError::Prolog,
            ),
            (
                Slot::Csn,
                "<ssbt:svar>&foo;</ssbt:svar>",
                PayloadError::UndeclaredEntity,
            ),
            (
                Slot::Csn,
                "<ssbt:svar>a&#1;</ssbt:svar>",
                PayloadError::InvalidCharacter,
            ),
            (
                Slot::Csn,
                "<q:svar>aGVq</q:svar>",
                PayloadError::UndeclaredPrefix,
            ),
            (
                Slot::Csn,
                "text<ssbt:svar>aGVq</ssbt:svar>",
                PayloadError::StrayText,
            ),
            (
                Slot::Csn,
                "<ssbt:svar>not base64!</ssbt:svar>",
                PayloadError::NotBase64,
            ),
            (
                Slot::Csn,
                "<ssbt:svar a=\"1\" a=\"2\">aGVq</ssbt:svar>",
                PayloadError::NotWellFormed,
            ),
            (
                Slot::Tns,
                "<resultat>OK</resultat>",
                PayloadError::Shape {
                    expected: shape(Slot::Tns).expected,
                },
            ),
        ];
        for (slot, payload, want) in cases {
            assert_eq!(
                check_payload(*slot, payload.as_bytes()).as_ref(),
                Err(want),
                "{payload}"
            );
        }
        assert_eq!(
            check_payload(Slot::Csn, &[0xff, 0xfe]),
            Err(PayloadError::NotUtf8)
        );
        let deep = "<a>".repeat(70) + &"</a>".repeat(70);
        assert_eq!(
            check_payload(Slot::Miv, deep.as_bytes()),
            Err(PayloadError::TooDeep)
        );
    }
}
