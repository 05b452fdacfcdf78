//! ELT over synchronous SHS: decode the message (one report part, two
//! signature parts) into a [`Submission`], submit it through the product's
//! one entry point, encode the receipt as the reply.

use bytes::Bytes;
use relay_shs::{DataPart, Label, ShsMessage};
use zeroize::Zeroizing;

use super::{ReportCount, Signature, Submission};
use crate::Relay;
use crate::failure::Failure;
use crate::identity::Caller;
use crate::products::reply;

/// A synchronous ELT message: decode, submit, encode.
pub async fn answer(
    relay: &Relay,
    caller: &Caller,
    message: ShsMessage,
) -> Result<ShsMessage, Failure> {
    let label = message.label.clone();
    let submission = decode(message);
    let receipt = super::submit(
        relay,
        caller,
        relay_audit::Channel::Shs,
        &label.tx_id,
        submission,
    )
    .await
    .map_err(|r| Failure::from(r).audited())?;
    Ok(encode(&label, &receipt))
}

/// ELT over SHS: one data part with the report and two signature parts
/// (`application/pkcs7-signature`, datapartType `assistent-signatur` and
/// `anordnare-signatur`; untyped signature parts are taken in that order).
pub fn decode(mut message: ShsMessage) -> Submission {
    let is_signature = |p: &DataPart| {
        p.headers
            .mime_type
            .eq_ignore_ascii_case(relay_elt::SIGNATURE_MIME)
            || p.headers
                .mime_type
                .eq_ignore_ascii_case("application/x-pkcs7-signature")
            || p.datapart_type == relay_elt::DATAPART_ASSISTANT_SIGNATURE
            || p.datapart_type == relay_elt::DATAPART_ANORDNARE_SIGNATURE
    };
    let mut reports = Vec::new();
    let mut typed: [Option<Vec<u8>>; 2] = [None, None];
    let mut untyped = Vec::new();
    for part in message.parts.iter_mut() {
        let body = std::mem::take(&mut part.body).to_vec();
        if !is_signature(part) {
            reports.push(Zeroizing::new(body));
        } else if part.datapart_type == relay_elt::DATAPART_ASSISTANT_SIGNATURE {
            typed[0] = Some(body);
        } else if part.datapart_type == relay_elt::DATAPART_ANORDNARE_SIGNATURE {
            typed[1] = Some(body);
        } else {
            untyped.push(body);
        }
    }
    let mut untyped = untyped.into_iter();
    let [assistant, anordnare] = typed;
    let assistant = assistant.or_else(|| untyped.next());
    let anordnare = anordnare.or_else(|| untyped.next());
    let reports_in_call = reports.len();
    let report = reports.into_iter().next().unwrap_or_default();
    let signature = |der: Option<Vec<u8>>| {
        der.map(|der| Signature {
            // A part may carry the DER, or PEM or base64 text of it.
            der: relay_elt::signature::der_of(&der).into_owned(),
            date: None,
            ocsp: None,
        })
    };
    Submission {
        report,
        reports_in_call: ReportCount::Exactly(reports_in_call),
        assistant_signature: signature(assistant),
        anordnare_signature: signature(anordnare),
        status: Some(match message.label.status {
            relay_shs::label::Status::Test => crate::config::Environment::Test,
            relay_shs::label::Status::Production => crate::config::Environment::Production,
        }),
    }
}

/// The receipt as the SHS reply: one `mottagningsbekraftelse` data part.
pub fn encode(request: &Label, receipt: &relay_elt::Receipt) -> ShsMessage {
    let part = reply::text_part(
        "text/xml",
        relay_elt::DATAPART_RECEIPT,
        Some("mottagningsbekraftelse.xml".into()),
        Bytes::from(receipt.to_xml()),
    );
    reply::synch_reply(request, vec![part])
}
