//! ELT over its SOAP 1.1 service `SkickaTidredovisning`: decode the envelope
//! into a [`Submission`] and encode the receipt as the response envelope.

use relay_elt::soap::{self, RequestError};
use zeroize::Zeroizing;

use super::{ReportCount, Signature, Submission};
use crate::Relay;
use crate::failure::{Code, Envelope, Failure};

/// Decodes the envelope (bounded and linear, a large one off the async
/// workers) into a [`Submission`]; a call with more than one report decodes
/// into one that says so, for the product's rule to refuse.
pub async fn decode(relay: &Relay, bytes: Zeroizing<Vec<u8>>) -> Result<Submission, Failure> {
    let max_report = relay
        .live()
        .config
        .elt
        .as_ref()
        .map_or(1024 * 1024, |e| e.max_report_bytes);
    let limits = relay_elt::envelope_limits(max_report);
    let size = bytes.len();
    let parsed =
        crate::cpu::parse(size, move || soap::parse_request_within(&bytes, &limits)).await?;
    match parsed {
        Ok(request) => {
            let signature = |s: soap::SignatureBlock| Signature {
                der: s.signature,
                date: Some(s.datum_for_signatur),
                ocsp: s.ocsp_response,
            };
            Ok(Submission {
                report: request.tidredovisning,
                reports_in_call: ReportCount::Exactly(1),
                assistant_signature: Some(signature(request.assistent)),
                anordnare_signature: Some(signature(request.anordnare)),
                status: None,
            })
        }
        Err(RequestError::MoreThanOneReport) => Ok(Submission {
            report: Zeroizing::new(Vec::new()),
            reports_in_call: ReportCount::MoreThanOne,
            assistant_signature: None,
            anordnare_signature: None,
            status: None,
        }),
        Err(RequestError::VersionMismatch(m)) => Err(Failure::caller(
            Code::Envelope(Envelope::VersionMismatch),
            m,
        )),
        Err(RequestError::MustUnderstand) => Err(Failure::caller(
            Code::Envelope(Envelope::MustUnderstand),
            "a SOAP header marked mustUnderstand is not understood by this service",
        )),
        Err(RequestError::Xml(m)) => Err(Failure::caller(
            Code::Shs(relay_shs::ErrorCode::IllegalDatapartContent),
            m,
        )),
    }
}

/// The response envelope with the receipt.
pub fn encode(receipt: &relay_elt::Receipt) -> Vec<u8> {
    soap::response_xml(receipt)
}
