//! The products the relay answers itself: a registry.
//!
//! Each product is one folder, `products/<name>/`, holding its answer (the
//! product's one entry point, which runs the policy gate) and, for each way in
//! it supports, its decode and encode: `shs.rs` (SHS synchronous, and for
//! SSBTEK asynchronous), `soap.rs` (its SOAP service). The ways in (`rs`,
//! `asynch`, `soap`) read bytes, render refusals and call into this registry;
//! a product never calls back into a way in. [`ProductName`] is the one list
//! of products; [`answer_shs`] and [`admit_asynch`] are the one dispatch.

pub mod elt;
pub mod ping;
pub mod reply;
pub mod ssbtek;

use relay_shs::{ErrorCode, Label, SequenceType, ShsError, ShsMessage};

use crate::Relay;
pub use crate::config::ProductName;
use crate::failure::{Code, Failure};
use crate::identity::Caller;

/// The configured product a label names.
pub fn named(relay: &Relay, label: &Label) -> Result<ProductName, Failure> {
    label
        .product_id()
        .and_then(|p| p.as_uuid())
        .and_then(|u| relay.live().config.products.name_of(&u))
        .ok_or_else(|| ShsError::from(ErrorCode::UnknownProductType).into())
}

/// A synchronous SHS message to the node: decoded, answered and encoded by
/// the product its label names. The one dispatch of SHS.
pub async fn answer_shs(
    relay: &Relay,
    caller: &Caller,
    message: ShsMessage,
) -> Result<(ShsMessage, ProductName), Failure> {
    let product = named(relay, &message.label)?;
    let reply = match product {
        ProductName::Ping => ping::answer_shs(relay, caller, &message.label)?,
        ProductName::Ssbtek => ssbtek::shs::answer(relay, caller, message).await?,
        ProductName::Elt => elt::shs::answer(relay, caller, message).await?,
    };
    Ok((reply, product))
}

/// What the node accepted asynchronously (before its 202) and answers later:
/// a question set the product admitted and parsed.
pub enum Queued {
    Ssbtek(ssbtek::Questions),
}

/// An asynchronous SHS message to the node: decoded and admitted by its
/// product before the 202 (so a refused caller gets its SHS error, not a 202
/// and an error message later). Only SSBTEK is answered asynchronously.
pub async fn admit_asynch(
    relay: &Relay,
    caller: &Caller,
    message: ShsMessage,
) -> Result<Queued, Failure> {
    let not_asynch = || {
        Failure::caller(
            Code::Shs(ErrorCode::MissingDeliveryExecution),
            "only SSBTEK is answered asynchronously by this node",
        )
    };
    let product = named(relay, &message.label)?;
    if message.label.sequence_type == Some(SequenceType::Adm) {
        return Err(not_asynch());
    }
    match product {
        ProductName::Ssbtek => Ok(Queued::Ssbtek(
            ssbtek::shs::admit(relay, caller, message).await?,
        )),
        ProductName::Ping | ProductName::Elt => Err(not_asynch()),
    }
}

/// Answers what the node accepted asynchronously: the reply message, to go to
/// the sender's outbox.
pub async fn answer_queued(
    relay: &Relay,
    caller: &Caller,
    request: &Label,
    queued: Queued,
) -> Result<ShsMessage, Failure> {
    match queued {
        Queued::Ssbtek(questions) => {
            ssbtek::shs::answer_admitted(relay, caller, request, questions).await
        }
    }
}
