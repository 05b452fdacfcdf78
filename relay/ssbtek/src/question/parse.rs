//! The validator: from a [`crate::xml::read::Element`] tree to a [`Question`],
//! checking everything the v10 XSD requires and the relay's own rules on top.

use relay_ident::{Organisationsnummer, Personnummer};

use super::write::slot_standalone;
use super::{
    FkFraga, Generella, Ingivare, Period, Personuppgiftsbitrade, Question, SlotQuestion,
    ValidationLimits,
};
use crate::NS_SSBT;
use crate::error::{Path, QuestionError, Rule};
use crate::lexical;
use crate::slot::Slot;
use crate::text::{Blob, Text};
use crate::xml::NS_XSI;
use crate::xml::read::Element;
use crate::xml::sequence::{Particle, SequenceError, Wildcard, match_sequence};

const SSBT: Option<&str> = Some(NS_SSBT);
const ORGNR_PATTERN: &str = r"\d{4}[2-9]\d{7}";
const PERSON_PATTERN: &str = "[0-9]{12}";

/// The children of an element, grouped by the particle they matched.
struct Groups<'e> {
    path: Path,
    names: Vec<&'static str>,
    groups: Vec<Vec<&'e Element>>,
}

impl<'e> Groups<'e> {
    /// The child that matched particle `k`, which occurs exactly once (the
    /// sequence matcher has checked that; a miss is still an error, not a panic).
    fn one(&self, k: usize) -> Result<&'e Element, QuestionError> {
        self.optional(k).ok_or_else(|| {
            let name = self.names.get(k).copied().unwrap_or_default();
            self.path.child(name).error(Rule::Missing)
        })
    }

    /// The child that matched particle `k`, if any.
    fn optional(&self, k: usize) -> Option<&'e Element> {
        self.many(k).first().copied()
    }

    /// Every child that matched particle `k`.
    fn many(&self, k: usize) -> &[&'e Element] {
        self.groups.get(k).map_or(&[], Vec::as_slice)
    }
}

/// The children of `el`, grouped by the particle they matched.
fn sequence<'e>(
    el: &'e Element,
    path: &Path,
    particles: &[Particle],
) -> Result<Groups<'e>, QuestionError> {
    if !lexical::is_blank(&el.text) {
        return Err(path.error(Rule::UnexpectedText));
    }
    let names: Vec<_> = el
        .children
        .iter()
        .map(|c| (c.ns.as_deref(), c.local.as_str()))
        .collect();
    let at = |k: usize| path.child(particles.get(k).map_or("", |p| p.local));
    let matched = match_sequence(&names, particles, Wildcard::None).map_err(|e| match e {
        SequenceError::Missing(k) => at(k).error(Rule::Missing),
        SequenceError::OutOfOrder(k) => at(k).error(Rule::OutOfOrder),
        SequenceError::TooMany(k) => at(k).error(Rule::TooMany),
        SequenceError::WrongNamespace(k) => at(k).error(Rule::WrongNamespace),
        SequenceError::Unknown(i) => path.error(Rule::UnknownElement { position: i + 1 }),
    })?;
    let mut groups = vec![Vec::new(); particles.len()];
    for (child, k) in el.children.iter().zip(matched) {
        // Without a wildcard every child matched a particle.
        if let Some(group) = k.and_then(|k| groups.get_mut(k)) {
            group.push(child);
        }
    }
    Ok(Groups {
        path: path.clone(),
        names: particles.iter().map(|p| p.local).collect(),
        groups,
    })
}

/// The value of the unqualified attribute `allowed`, if present; any other
/// attribute but `xsi:schemaLocation`/`xsi:noNamespaceSchemaLocation` is refused.
fn attributes<'e>(
    el: &'e Element,
    path: &Path,
    allowed: Option<&str>,
) -> Result<Option<&'e str>, QuestionError> {
    let mut value = None;
    for a in &el.attrs {
        match (a.ns.as_deref(), a.local.as_str()) {
            (None, local) if Some(local) == allowed => value = Some(a.value.as_str()),
            (Some(NS_XSI), "schemaLocation" | "noNamespaceSchemaLocation") => {}
            _ => return Err(path.error(Rule::UnknownAttribute)),
        }
    }
    Ok(value)
}

/// The text of a simple-typed element.
fn simple<'e>(el: &'e Element, path: &Path) -> Result<&'e str, QuestionError> {
    attributes(el, path, None)?;
    if !el.children.is_empty() {
        return Err(path.error(Rule::UnexpectedChildren));
    }
    Ok(&el.text)
}

/// `NonEmptyString`, and for `syfte`/`lagtext` the relay's rule: not just whitespace.
fn non_blank(el: &Element, path: &Path) -> Result<Text, QuestionError> {
    let s = simple(el, path)?;
    if lexical::is_blank(s) {
        return Err(path.error(Rule::Empty));
    }
    Ok(Text::from(s))
}

fn boolean(el: &Element, path: &Path) -> Result<bool, QuestionError> {
    lexical::boolean(simple(el, path)?).ok_or_else(|| path.error(Rule::NotBoolean))
}

fn date(el: &Element, path: &Path) -> Result<chrono::NaiveDate, QuestionError> {
    lexical::date(simple(el, path)?).ok_or_else(|| path.error(Rule::NotDate))
}

fn organisationsnummer(el: &Element, path: &Path) -> Result<Organisationsnummer, QuestionError> {
    let s = lexical::collapse(simple(el, path)?);
    if !lexical::organisationsnummer_pattern(s) {
        return Err(path.error(Rule::Pattern {
            pattern: ORGNR_PATTERN,
        }));
    }
    Organisationsnummer::parse(s).map_err(|e| path.error(Rule::Organisationsnummer(e)))
}

fn period(el: &Element, path: &Path, limits: &ValidationLimits) -> Result<Period, QuestionError> {
    let g = sequence(
        el,
        path,
        &[
            Particle::one(SSBT, "fromDatum"),
            Particle::one(SSBT, "tomDatum"),
        ],
    )?;
    let from = date(g.one(0)?, &path.child("fromDatum"))?;
    let tom = date(g.one(1)?, &path.child("tomDatum"))?;
    let p = Period::new(from, tom).ok_or_else(|| path.error(Rule::PeriodReversed))?;
    if !p.within_months(limits.max_period_months) {
        return Err(path.error(Rule::PeriodTooLong {
            max_months: limits.max_period_months,
        }));
    }
    Ok(p)
}

pub(super) fn question(
    root: &Element,
    limits: &ValidationLimits,
) -> Result<Question, QuestionError> {
    let path = Path::root();
    attributes(root, &path, None)?;
    let g = sequence(
        root,
        &path,
        &[
            Particle::one(SSBT, "generellaFrageparametrar"),
            Particle::one(SSBT, "specifikaFrageparametrar"),
        ],
    )?;
    let generella = generella(g.one(0)?, &path.child("generellaFrageparametrar"), limits)?;
    let slots = specifika(
        g.one(1)?,
        &path.child("specifikaFrageparametrar"),
        &generella,
        limits,
    )?;
    Ok(Question { generella, slots })
}

fn generella(
    el: &Element,
    path: &Path,
    limits: &ValidationLimits,
) -> Result<Generella, QuestionError> {
    attributes(el, path, None)?;
    let g = sequence(
        el,
        path,
        &[
            Particle::optional(SSBT, "frageTidpunkt"),
            Particle::optional(SSBT, "korrelationsid"),
            Particle::one(SSBT, "fraganSkallInkluderasISvaret"),
            Particle::one(SSBT, "ingivare"),
            Particle::one(SSBT, "personidentitet"),
            Particle::one(SSBT, "arendeidentitet"),
            Particle::one(SSBT, "tidsperiod"),
            Particle::many(SSBT, "personuppgiftsbitrade"),
            Particle::one(SSBT, "syfte"),
            Particle::one(SSBT, "lagtext"),
        ],
    )?;
    let frage_tidpunkt = match g.optional(0) {
        Some(el) => {
            let p = path.child("frageTidpunkt");
            let s = simple(el, &p)?;
            if !lexical::date_time(s) {
                return Err(p.error(Rule::NotDateTime));
            }
            Some(Text::from(lexical::collapse(s)))
        }
        None => None,
    };
    let korrelationsid = match g.optional(1) {
        Some(el) => Some(Text::from(simple(el, &path.child("korrelationsid"))?)),
        None => None,
    };
    let fragan_skall_inkluderas = {
        let p = path.child("fraganSkallInkluderasISvaret");
        // The element's XSD default ("0") applies when it is empty.
        if lexical::collapse(simple(g.one(2)?, &p)?).is_empty() {
            false
        } else {
            boolean(g.one(2)?, &p)?
        }
    };
    let ingivare = ingivare(g.one(3)?, &path.child("ingivare"))?;
    let person = person(g.one(4)?, &path.child("personidentitet"))?;
    let arendeidentitet = non_blank(g.one(5)?, &path.child("arendeidentitet"))?;
    let tidsperiod = {
        let p = path.child("tidsperiod");
        attributes(g.one(6)?, &p, None)?;
        period(g.one(6)?, &p, limits)?
    };
    let personuppgiftsbitrade = g
        .many(7)
        .iter()
        .enumerate()
        .map(|(i, el)| {
            bitrade(
                el,
                &path.child(&format!("personuppgiftsbitrade[{}]", i + 1)),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let syfte = non_blank(g.one(8)?, &path.child("syfte"))?;
    let lagtext = non_blank(g.one(9)?, &path.child("lagtext"))?;
    Ok(Generella {
        frage_tidpunkt,
        korrelationsid,
        fragan_skall_inkluderas,
        ingivare,
        person,
        arendeidentitet,
        tidsperiod,
        personuppgiftsbitrade,
        syfte,
        lagtext,
    })
}

fn ingivare(el: &Element, path: &Path) -> Result<Ingivare, QuestionError> {
    attributes(el, path, None)?;
    let g = sequence(
        el,
        path,
        &[
            Particle::one(SSBT, "organisationsnummer"),
            Particle::one(SSBT, "namn"),
            Particle::one(SSBT, "handlaggare"),
        ],
    )?;
    Ok(Ingivare {
        orgnr: organisationsnummer(g.one(0)?, &path.child("organisationsnummer"))?,
        namn: non_blank(g.one(1)?, &path.child("namn"))?,
        handlaggare: non_blank(g.one(2)?, &path.child("handlaggare"))?,
    })
}

fn person(el: &Element, path: &Path) -> Result<Personnummer, QuestionError> {
    let s = lexical::collapse(simple(el, path)?);
    if !lexical::personidentitet_pattern(s) {
        return Err(path.error(Rule::Pattern {
            pattern: PERSON_PATTERN,
        }));
    }
    Personnummer::parse(s).map_err(|e| path.error(Rule::Personnummer(e)))
}

fn bitrade(el: &Element, path: &Path) -> Result<Personuppgiftsbitrade, QuestionError> {
    attributes(el, path, None)?;
    let g = sequence(
        el,
        path,
        &[
            Particle::optional(SSBT, "ordningsnummer"),
            Particle::one(SSBT, "organisationsnummer"),
            Particle::one(SSBT, "namn"),
        ],
    )?;
    let ordningsnummer = match g.optional(0) {
        Some(el) => {
            let p = path.child("ordningsnummer");
            Some(lexical::short(simple(el, &p)?).ok_or_else(|| p.error(Rule::NotShort))?)
        }
        None => None,
    };
    Ok(Personuppgiftsbitrade {
        ordningsnummer,
        orgnr: organisationsnummer(g.one(1)?, &path.child("organisationsnummer"))?,
        namn: non_blank(g.one(2)?, &path.child("namn"))?,
    })
}

fn specifika(
    el: &Element,
    path: &Path,
    generella: &Generella,
    limits: &ValidationLimits,
) -> Result<[SlotQuestion; 7], QuestionError> {
    attributes(el, path, None)?;
    let particles = Slot::ALL.map(|s| Particle::one(SSBT, s.as_str()));
    let g = sequence(el, path, &particles)?;
    let mut slots = Slot::ALL.map(|s| SlotQuestion::new(s, false));
    for (k, slot) in Slot::ALL.into_iter().enumerate() {
        let mut q = slot_question(
            slot,
            g.one(k)?,
            &path.child(slot.as_str()),
            generella,
            limits,
        )?;
        q.parameters_xml = Blob::from(slot_standalone(&q));
        *slot.pick_mut(&mut slots) = q;
    }
    Ok(slots)
}

fn slot_question(
    slot: Slot,
    el: &Element,
    path: &Path,
    generella: &Generella,
    limits: &ValidationLimits,
) -> Result<SlotQuestion, QuestionError> {
    let attr_path = path.attribute("inkludera");
    let inkludera = attributes(el, path, Some("inkludera"))?
        .ok_or_else(|| attr_path.error(Rule::MissingAttribute))?;
    let inkludera = lexical::boolean(inkludera).ok_or_else(|| attr_path.error(Rule::NotBoolean))?;
    let mut q = SlotQuestion::new(slot, inkludera);
    if slot.takes_period() {
        let g = sequence(el, path, &[Particle::optional(SSBT, "tidsperiod")])?;
        if let Some(p) = g.optional(0) {
            let p_path = path.child("tidsperiod");
            attributes(p, &p_path, None)?;
            q.tidsperiod = Some(period(p, &p_path, limits)?);
        }
    } else if slot == Slot::Fk {
        let g = sequence(el, path, &[Particle::optional(SSBT, "fraga")])?;
        if let Some(f) = g.optional(0) {
            q.fk_fraga = Some(fk_fraga(f, &path.child("fraga"), generella, limits)?);
        }
    } else {
        sequence(el, path, &[])?;
    }
    Ok(q)
}

fn fk_fraga(
    el: &Element,
    path: &Path,
    generella: &Generella,
    limits: &ValidationLimits,
) -> Result<FkFraga, QuestionError> {
    attributes(el, path, None)?;
    let g = sequence(
        el,
        path,
        &[
            Particle::optional(SSBT, "version"),
            Particle::one(SSBT, "aktorsid"),
            Particle::one(SSBT, "lefiJsonFraga"),
        ],
    )?;
    let version = match g.optional(0) {
        Some(el) => Some(Text::from(simple(el, &path.child("version"))?)),
        None => None,
    };
    let aktorsid = non_blank(g.one(1)?, &path.child("aktorsid"))?;
    let lefi_path = path.child("lefiJsonFraga");
    let lefi_json = Blob::new(
        lexical::base64(simple(g.one(2)?, &lefi_path)?)
            .ok_or_else(|| lefi_path.error(Rule::NotBase64))?,
    );
    if lefi_json.is_empty() {
        return Err(lefi_path.error(Rule::Empty));
    }
    crate::lefi::check_request(&lefi_json, generella.person, limits)
        .map_err(|rule| lefi_path.error(rule))?;
    Ok(FkFraga {
        version,
        aktorsid,
        lefi_json,
    })
}
