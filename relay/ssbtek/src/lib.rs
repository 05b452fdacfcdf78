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
//!   order, and their payload format ids: **the one list of agencies**.
//! - [`contract`]: the bundled WSDL and XSDs, each slot's own schemas by an
//!   exhaustive `match` on [`Slot`].
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
//! - [`envelope`]: which operation a SOAP 1.1 envelope asks for, read within
//!   the same [`ValidationLimits`].
//! - `xml`, `lexical` (private): the bounded DTD-free reader, the escaping
//!   writer, XSD sequence matching, and XSD lexical forms.
//!
//! Every reader here (the question, its SOAP envelope, FK's LEFI JSON) checks
//! the total size first and then bounds depth, element count, attributes per
//! element, name and text sizes in one linear pass ([`ValidationLimits`]). No
//! input reaches a panic: `unwrap`, `expect`, indexing and string slicing are
//! denied outside tests (see `docs/robustness.md`).
//!
//! Not for: networking, writing SOAP envelopes, SHS labels, calling providers,
//! authorisation decisions, or storing anything. Those belong to `relay-server`
//! and `relay-shs`; this crate only turns bytes into checked values and back.

pub mod answer;
pub mod builder;
pub mod contract;
pub mod envelope;
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
pub use envelope::{EnvelopeError, SoapCall, read_envelope};
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
