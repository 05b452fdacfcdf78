//! The combine step: one [`SlotOutcome`] per included slot, plus the question
//! for the echo, become one `hamtaBastjanstInformationResponse`.
//!
//! Partial answers are normal: each slot holds either `data` (the adapter's
//! payload, inserted verbatim once [`crate::payload`] has accepted it) or an
//! `error` whose `kalla` says who failed: `BT` for the provider, `SSBT` for the
//! relay ([`RelayFelkod`]). A payload that fails the check becomes
//! `SSBT-INVALID-ANSWER`; it can never break the document.

use std::fmt;

use zeroize::Zeroizing;

use crate::NS_SSBT;
use crate::payload::{self, PayloadError};
use crate::ping::SlotError;
use crate::question::Question;
use crate::question::write::{question_content, size_hint};
use crate::slot::Slot;
use crate::text::Blob;
use crate::xml::write::XmlWriter;

/// `kalla`: which side a slot error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kalla {
    /// The composite service (the relay): timeouts, unreachable providers, invalid answers.
    Ssbt,
    /// The base service (the provider) itself.
    Bt,
}

impl Kalla {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kalla::Ssbt => "SSBT",
            Kalla::Bt => "BT",
        }
    }
}

/// The relay's own `felkod` values for a slot (`kalla` = `SSBT`).
///
/// | felkod | when |
/// |---|---|
/// | `SSBT-TIMEOUT` | the provider did not answer in time |
/// | `SSBT-UNAVAILABLE` | the provider could not be reached |
/// | `SSBT-WITHDRAWN` | the provider does not serve this ingivare |
/// | `SSBT-OVERLOAD` | the relay shed the call under load |
/// | `SSBT-INVALID-ANSWER` | the provider's answer was not valid |
/// | `SSBT-INTERNAL` | an error inside the relay |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelayFelkod {
    Timeout,
    Unavailable,
    Withdrawn,
    Overload,
    InvalidAnswer,
    Internal,
}

impl RelayFelkod {
    pub const ALL: [RelayFelkod; 6] = [
        RelayFelkod::Timeout,
        RelayFelkod::Unavailable,
        RelayFelkod::Withdrawn,
        RelayFelkod::Overload,
        RelayFelkod::InvalidAnswer,
        RelayFelkod::Internal,
    ];

    /// The `felkod` text.
    pub const fn code(self) -> &'static str {
        match self {
            RelayFelkod::Timeout => "SSBT-TIMEOUT",
            RelayFelkod::Unavailable => "SSBT-UNAVAILABLE",
            RelayFelkod::Withdrawn => "SSBT-WITHDRAWN",
            RelayFelkod::Overload => "SSBT-OVERLOAD",
            RelayFelkod::InvalidAnswer => "SSBT-INVALID-ANSWER",
            RelayFelkod::Internal => "SSBT-INTERNAL",
        }
    }

    /// The first `felmeddelande`.
    pub const fn swedish(self) -> &'static str {
        match self {
            RelayFelkod::Timeout => "Bastjänsten svarade inte inom den tillåtna tiden.",
            RelayFelkod::Unavailable => "Bastjänsten kunde inte nås.",
            RelayFelkod::Withdrawn => "Bastjänsten lämnar inte uppgifter till denna ingivare.",
            RelayFelkod::Overload => {
                "Den sammansatta bastjänsten är överbelastad. Försök igen senare."
            }
            RelayFelkod::InvalidAnswer => "Bastjänstens svar var inte giltigt.",
            RelayFelkod::Internal => "Internt fel i den sammansatta bastjänsten.",
        }
    }

    /// The second `felmeddelande`.
    pub const fn english(self) -> &'static str {
        match self {
            RelayFelkod::Timeout => "The base service did not answer in time.",
            RelayFelkod::Unavailable => "The base service could not be reached.",
            RelayFelkod::Withdrawn => "The base service does not serve this organisation.",
            RelayFelkod::Overload => "The relay is overloaded. Try again later.",
            RelayFelkod::InvalidAnswer => "The base service's answer was not valid.",
            RelayFelkod::Internal => "Internal error in the relay.",
        }
    }

    /// Whether the provider's side caused it (as opposed to the relay's).
    pub const fn caused_by_provider(self) -> bool {
        matches!(
            self,
            RelayFelkod::Timeout | RelayFelkod::Unavailable | RelayFelkod::InvalidAnswer
        )
    }
}

impl fmt::Display for RelayFelkod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What one included slot produced.
pub enum SlotOutcome {
    /// The exact content of `<ssbt:data>` as the adapter produced it.
    Data(Vec<u8>),
    /// The provider reported an error (`kalla` = `BT`). An empty `messages`
    /// gets a generic one: the XSD requires at least one `felmeddelande`.
    ProviderError { code: String, messages: Vec<String> },
    /// The relay could not get an answer (`kalla` = `SSBT`).
    RelayError(RelayFelkod),
}

impl fmt::Debug for SlotOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotOutcome::Data(d) => write!(f, "Data({} bytes)", d.len()),
            SlotOutcome::ProviderError { code, messages } => f
                .debug_struct("ProviderError")
                .field("code", code)
                .field("messages", &messages.len())
                .finish(),
            SlotOutcome::RelayError(c) => write!(f, "RelayError({c})"),
        }
    }
}

impl From<SlotError> for SlotOutcome {
    fn from(e: SlotError) -> Self {
        match e {
            SlotError::Provider { code, messages } => SlotOutcome::ProviderError { code, messages },
            SlotError::Relay(c) => SlotOutcome::RelayError(c),
        }
    }
}

/// Stored outcomes; a payload is held wiped-on-drop from the moment it is recorded.
enum Recorded {
    Data(Blob),
    Error(SlotError),
}

/// What happened to one slot in the written answer (for logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotStatus {
    Data,
    ProviderError,
    RelayError(RelayFelkod),
    /// The payload failed the check and was written as `SSBT-INVALID-ANSWER`.
    PayloadRejected(PayloadError),
    /// Nothing was recorded for an included slot; written as `SSBT-INTERNAL`.
    NoOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotReport {
    pub slot: Slot,
    pub status: SlotStatus,
}

/// The written answer. `xml` holds personal data and is wiped on drop.
#[derive(Debug)]
pub struct CombinedAnswer {
    pub xml: Zeroizing<Vec<u8>>,
    /// One report per included slot, in XSD order.
    pub slots: Vec<SlotReport>,
}

/// An outcome was recorded for a slot the question did not include.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("slot {0} is not included in the question")]
pub struct NotIncluded(pub Slot);

/// Builds `hamtaBastjanstInformationResponse` for a question.
pub struct Answer<'q> {
    question: &'q Question,
    outcomes: [Option<Recorded>; 7],
    declaration: bool,
}

impl<'q> Answer<'q> {
    pub fn new(question: &'q Question) -> Self {
        Self {
            question,
            outcomes: Default::default(),
            declaration: false,
        }
    }

    /// Start the document with `<?xml version="1.0" encoding="UTF-8"?>` (for a
    /// standalone SHS data part; leave it off inside a SOAP body).
    pub fn with_declaration(mut self, declaration: bool) -> Self {
        self.declaration = declaration;
        self
    }

    /// Records (or replaces) the outcome for `slot`.
    pub fn record(&mut self, slot: Slot, outcome: SlotOutcome) -> Result<(), NotIncluded> {
        if !self.question.slot(slot).inkludera() {
            return Err(NotIncluded(slot));
        }
        *slot.pick_mut(&mut self.outcomes) = Some(match outcome {
            SlotOutcome::Data(bytes) => Recorded::Data(Blob::from(bytes)),
            SlotOutcome::ProviderError { code, messages } => {
                Recorded::Error(SlotError::Provider { code, messages })
            }
            SlotOutcome::RelayError(c) => Recorded::Error(SlotError::Relay(c)),
        });
        Ok(())
    }

    /// Writes the answer: the echo if asked for, `frageTidpunkt`, `korrelationsid`,
    /// and every included slot in XSD order.
    pub fn build(mut self) -> CombinedAnswer {
        let q = self.question;
        let g = q.generella();
        let payloads: usize = self
            .outcomes
            .iter()
            .map(|o| match o {
                Some(Recorded::Data(b)) => b.len(),
                Some(Recorded::Error(e)) => e.size_hint(),
                None => 0,
            })
            .sum();
        let mut w = XmlWriter::new("ssbt:", 4096 + payloads + size_hint(q));
        if self.declaration {
            w.declaration();
        }
        w.open_with(
            "hamtaBastjanstInformationResponse",
            &[("xmlns:ssbt", NS_SSBT)],
        );
        if g.fragan_skall_inkluderas() {
            w.open("fraga");
            question_content(&mut w, q);
            w.close("fraga");
        }
        if let Some(t) = g.frage_tidpunkt() {
            w.leaf("frageTidpunkt", t);
        }
        if let Some(k) = g.korrelationsid() {
            w.leaf("korrelationsid", k);
        }
        w.open("svarsdata");
        let mut reports = Vec::new();
        for slot in q.included_slots() {
            w.open(slot.as_str());
            let status = match slot.pick_mut(&mut self.outcomes).take() {
                Some(Recorded::Data(payload)) => match payload::inspect(slot, &payload) {
                    Ok(accepted) => {
                        if accepted.reset_default_namespace {
                            w.open_with("data", &[("xmlns", "")]);
                        } else {
                            w.open("data");
                        }
                        w.raw(&payload);
                        w.close("data");
                        SlotStatus::Data
                    }
                    Err(e) => {
                        SlotError::Relay(RelayFelkod::InvalidAnswer).write(&mut w);
                        SlotStatus::PayloadRejected(e)
                    }
                },
                Some(Recorded::Error(e)) => {
                    e.write(&mut w);
                    match e {
                        SlotError::Provider { .. } => SlotStatus::ProviderError,
                        SlotError::Relay(c) => SlotStatus::RelayError(c),
                    }
                }
                None => {
                    SlotError::Relay(RelayFelkod::Internal).write(&mut w);
                    SlotStatus::NoOutcome
                }
            };
            w.close(slot.as_str());
            reports.push(SlotReport { slot, status });
        }
        w.close("svarsdata");
        w.close("hamtaBastjanstInformationResponse");
        CombinedAnswer {
            xml: w.finish(),
            slots: reports,
        }
    }
}
