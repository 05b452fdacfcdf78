//! # relay-ssbtek
//!
//! SSBTEK v10 (`Sammansatt bastjänst ekonomiskt bistånd`, namespace
//! `http://schema.forsakringskassan.se/integration/ssbt/10`): a municipality asks
//! one question about one person; the relay asks up to seven providers and
//! combines their answers into one `hamtaBastjanstInformationResponse`. This
//! crate is the model of that exchange and the combine step, as pure functions
//! on bytes.
//!
//! # Layout
//!
//! - [`slot`]: the seven provider slots (AF, CSN, FK, SKV, SO, TNS, MIV) in XSD
//!   order, and their payload format ids.
//! - [`question`]: [`Question`], parsed and fully validated from
//!   `hamtaBastjanstInformation` (as a document or inside a SOAP body), with
//!   [`ValidationLimits`]; each slot's standalone parameters for its adapter.
//! - [`error`]: [`QuestionError`] and [`Rule`]: which field broke which rule,
//!   never the value.
//! - [`builder`]: [`QuestionBuilder`], the only way to make a question in code
//!   (the `shs` CLI and tests); [`lefi`]: the LEFI v9 JSON request FK's slot carries.
//! - [`answer`]: the combine step: [`Answer`] takes the question and one
//!   [`SlotOutcome`] per included slot and writes the response; relay-side
//!   slot errors are [`RelayFelkod`].
//! - [`payload`]: checks an adapter's `<ssbt:data>` content before it is
//!   inserted verbatim.
//! - [`ping`]: builds `testaBastjanstInformationResponse`.
//! - [`fault`]: `hamtaBastjanstInformationFault` / `testaBastjanstInformationFault`
//!   details and their [`FaultFelkod`] values.
//! - [`text`]: [`Text`] and [`Blob`], values wiped on drop.
//! - `xml`, `lexical` (private): the bounded DTD-free reader, the escaping
//!   writer, XSD sequence matching, and XSD lexical forms.
//!
//! Not for: networking, SOAP envelopes, SHS labels, calling providers,
//! authorisation decisions, or storing anything. Those belong to `relay-server`
//! and `relay-shs`; this crate only turns bytes into checked values and back.

pub mod answer;
pub mod builder;
pub mod error;
pub mod fault;
pub mod lefi;
mod lexical;
pub mod payload;
pub mod ping;
pub mod question;
pub mod slot;
pub mod text;
mod xml;

pub use answer::{Answer, CombinedAnswer, Kalla, RelayFelkod, SlotOutcome, SlotReport, SlotStatus};
pub use builder::{LAGTEXT_EKONOMISKT_BISTAND, QuestionBuilder, SYFTE_EKONOMISKT_BISTAND};
pub use error::{QuestionError, Rule, RuleKind};
pub use fault::{Fault, FaultFelkod, Operation};
pub use lefi::LefiRequest;
pub use payload::{PayloadError, check_payload};
pub use ping::{PingAnswer, SlotError};
pub use question::{
    FkFraga, Generella, Ingivare, Period, Personuppgiftsbitrade, Question, SlotQuestion,
    ValidationLimits,
};
pub use slot::{Slot, UnknownSlot};
pub use text::{Blob, Text};

/// The SSBTEK v10 namespace.
pub const NS_SSBT: &str = "http://schema.forsakringskassan.se/integration/ssbt/10";
