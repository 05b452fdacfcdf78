//! SSBTEK over its SOAP 1.1 service (`Sammansatt_Bastjanst_v10.wsdl`): decode
//! the envelope (which operation; the question is the Body's element), admit
//! and answer `hamtaBastjanstInformation` through the product's entry points,
//! and hand back the answer element for the way in to wrap in its envelope.

use relay_ssbtek::{EnvelopeError, SoapCall};
use zeroize::Zeroizing;

use super::{Call, Documents};
use crate::Relay;
use crate::failure::{Code, Envelope, Failure};
use crate::identity::Caller;

/// The operation of an envelope (its well-formedness, checked with the
/// question's limits: SOAP 1.1 only, no DOCTYPE, `mustUnderstand` headers
/// refused, the operation from the Body's first element).
pub fn decode(relay: &Relay, bytes: &[u8]) -> Result<SoapCall, Failure> {
    relay_ssbtek::read_envelope(bytes, &super::validation_limits(relay)).map_err(|e| match e {
        EnvelopeError::VersionMismatch(m) => {
            Failure::caller(Code::Envelope(Envelope::VersionMismatch), m)
        }
        EnvelopeError::MustUnderstand => {
            Failure::caller(Code::Envelope(Envelope::MustUnderstand), e.to_string())
        }
        EnvelopeError::Invalid(m) => Failure::caller(Code::InvalidQuestion, m.into_owned()),
    })
}

/// `hamtaBastjanstInformation`: admit the envelope's question, answer it, and
/// return the answer element (ready to embed in a SOAP body).
pub async fn hamta(
    relay: &Relay,
    caller: &Caller,
    tx_id: &str,
    envelope: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let call = Call {
        channel: relay_audit::Channel::Soap,
        tx_id,
        corr_id: None,
        declaration: false,
    };
    let questions = super::admit(relay, caller, call, Documents::SoapBody(envelope)).await?;
    let answers = super::answer(relay, caller, call, questions).await?;
    answers
        .into_iter()
        .next()
        .map(|a| a.xml)
        .ok_or_else(|| Failure::relay("no answer was built"))
}
