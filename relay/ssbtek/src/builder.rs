//! [`QuestionBuilder`]: valid v10 questions from typed parts, for the `shs`
//! CLI and for tests. The builder writes the question with the same serialiser
//! the answer echo uses and runs it through [`Question::parse_with`], so a built
//! question has passed exactly the checks a received one does.

use chrono::{DateTime, FixedOffset};
use relay_ident::Personnummer;

use crate::error::QuestionError;
use crate::lefi::LefiRequest;
use crate::question::{
    FkFraga, Generella, Ingivare, Period, Personuppgiftsbitrade, Question, SlotQuestion,
    ValidationLimits,
};
use crate::slot::Slot;
use crate::text::Text;

/// Sundsvall's `syfte` for financial aid.
pub const SYFTE_EKONOMISKT_BISTAND: &str = "Beslut om eller kontroll av ekonomiskt bistånd";

/// The legal basis for SSBTEK in financial-aid cases.
pub const LAGTEXT_EKONOMISKT_BISTAND: &str = "11 kap. 11 a § socialtjänstlagen (2001:453), 5 § förordning (2008:975) om uppgiftsskyldighet i vissa fall enligt socialtjänstlagen";

/// Builds a [`Question`]. No slot is included until asked for.
#[derive(Debug, Clone)]
pub struct QuestionBuilder {
    person: Personnummer,
    ingivare: Ingivare,
    arendeidentitet: Text,
    tidsperiod: Period,
    syfte: Text,
    lagtext: Text,
    frage_tidpunkt: Option<Text>,
    korrelationsid: Option<Text>,
    fragan_skall_inkluderas: bool,
    personuppgiftsbitrade: Vec<Personuppgiftsbitrade>,
    slots: [SlotQuestion; 7],
    limits: ValidationLimits,
}

impl QuestionBuilder {
    /// A question about `person` from `ingivare` in case `arendeidentitet`
    /// over `period`, with the financial-aid `syfte` and `lagtext`.
    pub fn new(
        person: Personnummer,
        ingivare: Ingivare,
        arendeidentitet: &str,
        period: Period,
    ) -> Self {
        Self {
            person,
            ingivare,
            arendeidentitet: Text::from(arendeidentitet),
            tidsperiod: period,
            syfte: Text::from(SYFTE_EKONOMISKT_BISTAND),
            lagtext: Text::from(LAGTEXT_EKONOMISKT_BISTAND),
            frage_tidpunkt: None,
            korrelationsid: None,
            fragan_skall_inkluderas: false,
            personuppgiftsbitrade: Vec::new(),
            slots: Slot::ALL.map(|s| SlotQuestion::new(s, false)),
            limits: ValidationLimits::default(),
        }
    }

    pub fn syfte(mut self, syfte: &str) -> Self {
        self.syfte = Text::from(syfte);
        self
    }

    pub fn lagtext(mut self, lagtext: &str) -> Self {
        self.lagtext = Text::from(lagtext);
        self
    }

    pub fn frage_tidpunkt(mut self, at: DateTime<FixedOffset>) -> Self {
        self.frage_tidpunkt = Some(Text::new(at.format("%Y-%m-%dT%H:%M:%S%:z").to_string()));
        self
    }

    pub fn korrelationsid(mut self, id: &str) -> Self {
        self.korrelationsid = Some(Text::from(id));
        self
    }

    /// `fraganSkallInkluderasISvaret`: have the question echoed in the answer.
    pub fn fragan_skall_inkluderas(mut self, echo: bool) -> Self {
        self.fragan_skall_inkluderas = echo;
        self
    }

    pub fn personuppgiftsbitrade(mut self, bitrade: Personuppgiftsbitrade) -> Self {
        self.personuppgiftsbitrade.push(bitrade);
        self
    }

    /// Asks `slot` (`inkludera="true"`).
    pub fn include(mut self, slot: Slot) -> Self {
        slot.pick_mut(&mut self.slots).inkludera = true;
        self
    }

    /// Asks every slot in `slots`.
    pub fn include_all(mut self, slots: impl IntoIterator<Item = Slot>) -> Self {
        for slot in slots {
            slot.pick_mut(&mut self.slots).inkludera = true;
        }
        self
    }

    /// A slot's own period. Only AF, CSN, SO and TNS take one; for the others
    /// [`QuestionBuilder::build`] fails.
    pub fn slot_period(mut self, slot: Slot, period: Period) -> Self {
        slot.pick_mut(&mut self.slots).tidsperiod = Some(period);
        self
    }

    /// FK's `fraga`.
    pub fn fk_fraga(mut self, fraga: FkFraga) -> Self {
        Slot::Fk.pick_mut(&mut self.slots).fk_fraga = Some(fraga);
        self
    }

    /// Includes FK with a `fraga` for LEFI `v9` carrying `request`.
    pub fn fk_lefi(self, aktorsid: &str, request: &LefiRequest) -> Self {
        self.include(Slot::Fk)
            .fk_fraga(FkFraga::new(Some("v9"), aktorsid, request.to_json()))
    }

    /// The limits the built question is checked against (default: the defaults).
    pub fn limits(mut self, limits: ValidationLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Writes the question and parses it back, so every rule a received
    /// question must pass applies (non-blank texts, period length, LEFI person).
    pub fn build(self) -> Result<Question, QuestionError> {
        let limits = self.limits;
        let draft = Question::from_parts(
            Generella {
                frage_tidpunkt: self.frage_tidpunkt,
                korrelationsid: self.korrelationsid,
                fragan_skall_inkluderas: self.fragan_skall_inkluderas,
                ingivare: self.ingivare,
                person: self.person,
                arendeidentitet: self.arendeidentitet,
                tidsperiod: self.tidsperiod,
                personuppgiftsbitrade: self.personuppgiftsbitrade,
                syfte: self.syfte,
                lagtext: self.lagtext,
            },
            self.slots,
        );
        Question::parse_with(&draft.to_xml(false), &limits)
    }
}
