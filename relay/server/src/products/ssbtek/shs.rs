//! SSBTEK over SHS, synchronous and asynchronous: decode (one
//! `hamtaBastjanstInformation` document per data part), admit and answer
//! through the product's entry points, encode (one
//! `hamtaBastjanstInformationResponse` data part per person, in request order).

use bytes::Bytes;
use relay_shs::{Label, ShsMessage};
use relay_ssbtek::CombinedAnswer;
use zeroize::Zeroizing;

use super::{Call, Documents, Questions};
use crate::Relay;
use crate::failure::Failure;
use crate::identity::Caller;
use crate::products::reply;

/// The data parts of an SSBTEK message, taken out of it (so they are wiped
/// when the questions have been parsed). A part's buffer is moved, not copied,
/// when nothing else holds it, so the bytes that are wiped are the only ones.
pub fn documents(mut message: ShsMessage) -> Documents {
    Documents::Parts(
        message
            .parts
            .iter_mut()
            .map(|p| Zeroizing::new(Vec::from(std::mem::take(&mut p.body))))
            .collect(),
    )
}

/// Which call an SHS message is, for logs and the audit trail.
fn call(label: &Label) -> Call<'_> {
    Call {
        channel: relay_audit::Channel::Shs,
        tx_id: &label.tx_id,
        corr_id: Some(&label.corr_id),
        declaration: true,
    }
}

/// The SSBTEK reply: one `hamtaBastjanstInformationResponse` data part per
/// person, in request order.
pub fn encode(request: &Label, answers: Vec<CombinedAnswer>) -> ShsMessage {
    let parts = answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            reply::text_part(
                "text/xml",
                "xml",
                Some(format!("svar-{}.xml", i + 1)),
                Bytes::from_owner(a.xml),
            )
        })
        .collect();
    reply::synch_reply(request, parts)
}

/// Decodes and admits the questions of an SSBTEK message (the gate, the
/// parse, the gate for each ingivare): what an asynchronous message to the
/// node is before its 202, and what a stored one is again after a restart.
pub async fn admit(
    relay: &Relay,
    caller: &Caller,
    message: ShsMessage,
) -> Result<Questions, Failure> {
    let label = message.label.clone();
    super::admit(relay, caller, call(&label), documents(message)).await
}

/// Answers admitted questions: the reply message to `request`.
pub async fn answer_admitted(
    relay: &Relay,
    caller: &Caller,
    request: &Label,
    questions: Questions,
) -> Result<ShsMessage, Failure> {
    let answers = super::answer(relay, caller, call(request), questions).await?;
    Ok(encode(request, answers))
}

/// A synchronous SSBTEK message: decode, admit, answer, encode.
pub async fn answer(
    relay: &Relay,
    caller: &Caller,
    message: ShsMessage,
) -> Result<ShsMessage, Failure> {
    let label = message.label.clone();
    let questions = admit(relay, caller, message).await?;
    answer_admitted(relay, caller, &label, questions).await
}
