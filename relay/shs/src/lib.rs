//! # relay-shs
//!
//! SHS 1.2 ("Spridnings- och hämtningssystem") as Inera Axel implements it: the
//! wire formats, with no networking and no storage.
//!
//! # Layout
//!
//! - [`error`]: the SHS error codes ([`ErrorCode`]) with Axel's default texts, and
//!   [`ShsError`], the crate's one error type.
//! - [`address`]: actor addresses ([`ShsAddress`], with internal ids) and product
//!   ids ([`ProductId`]), in plain and `urn:X-shs:` form.
//! - [`label`]: the label ([`Label`]): parse (ISO-8859-1 and UTF-8), write (DTD
//!   order, ISO-8859-1 with DOCTYPE), validate, and build reply/confirm/error labels.
//! - [`mime`]: the `multipart/mixed` container: a streaming reader
//!   ([`MessageReader`]) with [`Limits`], a streaming writer ([`write_message`]),
//!   and [`ShsMessage`] for small messages.
//! - [`management`]: `shs.management` (confirm and error bodies) and adm messages.
//! - [`message_list`]: `shs.message-list` (the delivery service's list).
//! - `xml` (private): the bounded, DTD-free XML reader and the ISO-8859-1 writer.
//!   A DOCTYPE is never resolved and no entity other than the predefined ones is
//!   expanded: no XXE, no billion laughs. Every document is read within
//!   [`DocumentLimits`] (size first, then depth, elements, attributes per
//!   element, name and text sizes), in one linear pass.
//!
//! No input reaches a panic: `unwrap`, `expect`, indexing and string slicing
//! are denied outside tests (see `docs/robustness.md`).
//!
//! Not for: HTTP, TLS, routing, agreements or storage; those belong to the relay.

pub mod address;
pub mod error;
pub mod label;
pub mod management;
pub mod message_list;
pub mod mime;
mod xml;

pub use address::{ProductId, ShsAddress, URN_PREFIX, strip_urn};
pub use error::{ErrorCode, ShsError};
pub use label::{
    AdmKind, Content, ContentBody, DataRef, EndRecipient, From, History, Label, MessageType, Meta,
    Originator, Product, SequenceType, Status, To, TransferType,
};
pub use management::{Management, ManagementBody, adm_message};
pub use message_list::{ListedMessage, MessageList};
pub use mime::{
    DataPart, Limits, MessageReader, OutPart, PartHeaders, ShsMessage, TransferEncoding,
    new_boundary, write_message,
};
pub use xml::{
    DocumentLimits, LABEL_LIMITS, MANAGEMENT_LIMITS, MESSAGE_LIST_LIMITS, OutputEncoding,
};
