//! The question: `hamtaBastjanstInformation` (`SammansattBastjanstFraga`) as a
//! typed, fully validated value. [`Question::parse`] is the only way in from the
//! wire; [`crate::QuestionBuilder`] the only way to make one in code. Both end in
//! the same validator (`question::parse`, private) and write through the same
//! serialiser (`question::write`).

mod parse;
pub(crate) mod write;

use chrono::NaiveDate;
use relay_ident::{Organisationsnummer, Personnummer};
use zeroize::Zeroizing;

use crate::NS_SSBT;
use crate::error::QuestionError;
use crate::slot::Slot;
use crate::text::{Blob, Text};
use crate::xml::read::{Find, read_element};

/// Bounds on what a question may be. The document bounds keep pathological
/// input cheap to refuse; the period bound mirrors LEFI, which refuses periods
/// longer than two years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationLimits {
    /// Whole document, in bytes (for a SOAP envelope: the envelope).
    pub max_document_bytes: usize,
    /// Element nesting depth, counted from the document element.
    pub max_depth: usize,
    /// Elements in the whole document.
    pub max_elements: usize,
    /// Character data of one element, or one attribute value, in bytes.
    pub max_text_bytes: usize,
    /// Attributes on one element (namespace declarations included).
    pub max_attributes: usize,
    /// One element or attribute name as written (prefix included), in bytes.
    pub max_name_bytes: usize,
    /// FK's decoded LEFI JSON request, in bytes.
    pub max_lefi_json_bytes: usize,
    /// Nesting of arrays and objects in the LEFI JSON request.
    pub max_lefi_json_depth: usize,
    /// Longest period (general or per slot): `tomDatum` may be at most this
    /// many months after `fromDatum`.
    pub max_period_months: u32,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            max_document_bytes: 1024 * 1024,
            max_depth: 32,
            max_elements: 4096,
            max_text_bytes: 64 * 1024,
            max_attributes: 32,
            max_name_bytes: 256,
            max_lefi_json_bytes: 16 * 1024,
            max_lefi_json_depth: 16,
            max_period_months: 24,
        }
    }
}

/// A period of calendar days, `from` to `tom` inclusive, with `from <= tom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    from: NaiveDate,
    tom: NaiveDate,
}

impl Period {
    /// `None` when `from` is after `tom`.
    pub fn new(from: NaiveDate, tom: NaiveDate) -> Option<Self> {
        (from <= tom).then_some(Self { from, tom })
    }

    /// First day (`fromDatum`).
    pub fn from(&self) -> NaiveDate {
        self.from
    }

    /// Last day (`tomDatum`).
    pub fn tom(&self) -> NaiveDate {
        self.tom
    }

    /// Whether `tom` is at most `months` months after `from`.
    pub fn within_months(&self, months: u32) -> bool {
        self.from
            .checked_add_months(chrono::Months::new(months))
            .is_none_or(|limit| self.tom <= limit)
    }
}

/// `ingivare`: the organisation asking, its name and the case worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingivare {
    orgnr: Organisationsnummer,
    namn: Text,
    handlaggare: Text,
}

impl Ingivare {
    pub fn new(
        orgnr: Organisationsnummer,
        namn: impl Into<Text>,
        handlaggare: impl Into<Text>,
    ) -> Self {
        Self {
            orgnr,
            namn: namn.into(),
            handlaggare: handlaggare.into(),
        }
    }

    pub fn orgnr(&self) -> Organisationsnummer {
        self.orgnr
    }

    /// For example the municipality's name.
    pub fn namn(&self) -> &str {
        &self.namn
    }

    /// Name or user id of the case worker. Personal data.
    pub fn handlaggare(&self) -> &str {
        &self.handlaggare
    }
}

/// `personuppgiftsbitrade`: a data processor acting for the ingivare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personuppgiftsbitrade {
    ordningsnummer: Option<i16>,
    orgnr: Organisationsnummer,
    namn: Text,
}

impl Personuppgiftsbitrade {
    pub fn new(
        ordningsnummer: Option<i16>,
        orgnr: Organisationsnummer,
        namn: impl Into<Text>,
    ) -> Self {
        Self {
            ordningsnummer,
            orgnr,
            namn: namn.into(),
        }
    }

    pub fn ordningsnummer(&self) -> Option<i16> {
        self.ordningsnummer
    }

    pub fn orgnr(&self) -> Organisationsnummer {
        self.orgnr
    }

    pub fn namn(&self) -> &str {
        &self.namn
    }
}

/// `generellaFrageparametrar`: what every provider is asked.
#[derive(Debug, Clone)]
pub struct Generella {
    pub(crate) frage_tidpunkt: Option<Text>,
    pub(crate) korrelationsid: Option<Text>,
    pub(crate) fragan_skall_inkluderas: bool,
    pub(crate) ingivare: Ingivare,
    pub(crate) person: Personnummer,
    pub(crate) arendeidentitet: Text,
    pub(crate) tidsperiod: Period,
    pub(crate) personuppgiftsbitrade: Vec<Personuppgiftsbitrade>,
    pub(crate) syfte: Text,
    pub(crate) lagtext: Text,
}

impl Generella {
    /// `frageTidpunkt`, in the lexical form the caller sent (a valid `xsd:dateTime`).
    pub fn frage_tidpunkt(&self) -> Option<&str> {
        self.frage_tidpunkt.as_deref()
    }

    /// `korrelationsid`, echoed in the answer.
    pub fn korrelationsid(&self) -> Option<&str> {
        self.korrelationsid.as_deref()
    }

    /// `fraganSkallInkluderasISvaret`: echo the question in the answer.
    pub fn fragan_skall_inkluderas(&self) -> bool {
        self.fragan_skall_inkluderas
    }

    pub fn ingivare(&self) -> &Ingivare {
        &self.ingivare
    }

    /// `personidentitet`: the person asked about.
    pub fn person(&self) -> Personnummer {
        self.person
    }

    /// `arendeidentitet`: the case id, unique within the ingivare.
    pub fn arendeidentitet(&self) -> &str {
        &self.arendeidentitet
    }

    pub fn tidsperiod(&self) -> Period {
        self.tidsperiod
    }

    pub fn personuppgiftsbitrade(&self) -> &[Personuppgiftsbitrade] {
        &self.personuppgiftsbitrade
    }

    /// Why the ingivare asks (non-blank).
    pub fn syfte(&self) -> &str {
        &self.syfte
    }

    /// The rule that lifts secrecy for this question (non-blank).
    pub fn lagtext(&self) -> &str {
        &self.lagtext
    }
}

impl Drop for Generella {
    fn drop(&mut self) {
        wipe_personnummer(&mut self.person);
    }
}

/// `relay_ident::Personnummer` is `Copy` without `Zeroize`; overwrite it in
/// place with Skatteverket's public test number, the way `zeroize` does:
/// a volatile write the compiler may not drop, then a fence.
fn wipe_personnummer(person: &mut Personnummer) {
    if let Ok(blank) = Personnummer::parse_at("191212121212", NaiveDate::MIN) {
        // SAFETY: `person` is a valid, aligned, exclusive reference, and
        // `Personnummer` is `Copy` (no destructor to skip).
        unsafe { std::ptr::write_volatile(person, blank) };
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

/// FK's `fraga` (`ForsakringskassanFraga`): which LEFI version, for which
/// actor, and the LEFI JSON request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FkFraga {
    version: Option<Text>,
    aktorsid: Text,
    lefi_json: Blob,
}

impl FkFraga {
    /// `lefi_json` is the LEFI request as JSON (not base64; the XML carries it
    /// base64-encoded).
    pub fn new(version: Option<&str>, aktorsid: &str, lefi_json: impl Into<Blob>) -> Self {
        Self {
            version: version.map(Text::from),
            aktorsid: Text::from(aktorsid),
            lefi_json: lefi_json.into(),
        }
    }

    /// `version`, such as `v9` (LEFI defaults to v9 when absent).
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// `aktorsid`: the LEFI actor (municipality or nämnd).
    pub fn aktorsid(&self) -> &str {
        &self.aktorsid
    }

    /// The decoded LEFI JSON request. Personal data.
    pub fn lefi_json(&self) -> &[u8] {
        &self.lefi_json
    }
}

/// One slot's part of `specifikaFrageparametrar`.
#[derive(Debug, Clone)]
pub struct SlotQuestion {
    pub(crate) slot: Slot,
    pub(crate) inkludera: bool,
    pub(crate) tidsperiod: Option<Period>,
    pub(crate) fk_fraga: Option<FkFraga>,
    pub(crate) parameters_xml: Blob,
}

impl SlotQuestion {
    pub(crate) fn new(slot: Slot, inkludera: bool) -> Self {
        Self {
            slot,
            inkludera,
            tidsperiod: None,
            fk_fraga: None,
            parameters_xml: Blob::default(),
        }
    }

    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// `inkludera`: whether the caller wants this provider asked.
    pub fn inkludera(&self) -> bool {
        self.inkludera
    }

    /// The slot's own `tidsperiod` (AF, CSN, SO and TNS only), overriding the general one.
    pub fn tidsperiod(&self) -> Option<Period> {
        self.tidsperiod
    }

    /// FK's `fraga`, when sent.
    pub fn fk_fraga(&self) -> Option<&FkFraga> {
        self.fk_fraga.as_ref()
    }

    /// The slot's element as a standalone document for the provider adapter, such as
    /// `<FK xmlns="http://schema.forsakringskassan.se/integration/ssbt/10" inkludera="true"><fraga>…</fraga></FK>`.
    pub fn parameters_xml(&self) -> &[u8] {
        &self.parameters_xml
    }
}

/// A validated SSBTEK v10 question.
#[derive(Debug, Clone)]
pub struct Question {
    generella: Generella,
    slots: [SlotQuestion; 7],
}

impl Question {
    /// Parses and validates a document whose root is `hamtaBastjanstInformation`
    /// (an SHS data part), with the default [`ValidationLimits`].
    pub fn parse(xml: &[u8]) -> Result<Question, QuestionError> {
        Self::parse_with(xml, &ValidationLimits::default())
    }

    /// As [`Question::parse`], with the given limits.
    pub fn parse_with(xml: &[u8], limits: &ValidationLimits) -> Result<Question, QuestionError> {
        let root = read_element(
            xml,
            limits,
            NS_SSBT,
            "hamtaBastjanstInformation",
            Find::Root,
        )?;
        parse::question(&root, limits)
    }

    /// Parses and validates the first `hamtaBastjanstInformation` in the ssbt/10
    /// namespace anywhere in the document, such as inside a SOAP `Body`. Prefixes
    /// declared on the ancestors (the envelope) apply. The whole document must be
    /// well-formed and within the limits.
    pub fn parse_element(xml: &[u8], limits: &ValidationLimits) -> Result<Question, QuestionError> {
        let root = read_element(
            xml,
            limits,
            NS_SSBT,
            "hamtaBastjanstInformation",
            Find::First,
        )?;
        parse::question(&root, limits)
    }

    pub(crate) fn from_parts(generella: Generella, slots: [SlotQuestion; 7]) -> Self {
        Self { generella, slots }
    }

    pub fn generella(&self) -> &Generella {
        &self.generella
    }

    /// The person asked about (`personidentitet`).
    pub fn person(&self) -> Personnummer {
        self.generella.person
    }

    pub fn ingivare(&self) -> &Ingivare {
        &self.generella.ingivare
    }

    pub fn slot(&self, slot: Slot) -> &SlotQuestion {
        slot.pick(&self.slots)
    }

    /// All seven slots in XSD order.
    pub fn slots(&self) -> &[SlotQuestion; 7] {
        &self.slots
    }

    /// The slots with `inkludera="true"`, in XSD order.
    pub fn included_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots.iter().filter(|s| s.inkludera).map(|s| s.slot)
    }

    /// The period to ask `slot` about: its own `tidsperiod` if it has one, else
    /// the general one.
    pub fn period_for(&self, slot: Slot) -> Period {
        self.slot(slot)
            .tidsperiod
            .unwrap_or(self.generella.tidsperiod)
    }

    /// The question as a standalone `hamtaBastjanstInformation` document (UTF-8).
    pub fn to_xml(&self, declaration: bool) -> Zeroizing<Vec<u8>> {
        write::question_document(self, declaration)
    }
}
