//! The ELT web service `SkickaTidredovisning` (SOAP 1.1, SHS e-mottagning basic
//! profile 1.0) on the mutual-TLS front: the same rules and the same adapter as
//! the SHS product. `GET {path}?wsdl` serves the WSDL with the real address,
//! `?xsd=NAME` its schemas.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relay_elt::soap::{self, FaultKind, RequestError};
use zeroize::Zeroizing;

use crate::Relay;
use crate::admission::{self, Admitted, Caller, EltSoap};
use crate::failure::{Code, Envelope, Failure};
use crate::products::elt::{self, Signature, Submission};

fn xml(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(bytes::Bytes::from_owner(Zeroizing::new(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

/// A SOAP 1.1 fault (HTTP 500), with `Retry-After` when the fault is about rate.
fn fault(kind: &FaultKind, message: &str) -> Response {
    let mut r = xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        soap::fault_xml(kind, message),
    );
    if let FaultKind::Policy {
        retry_after_s: Some(s),
        ..
    } = kind
    {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*s));
    }
    r
}

/// The ELT fault for any refusal (the renderer of [`crate::admission::EltSoap`]).
pub fn fault_for(failure: &Failure) -> Response {
    let mut kind = failure.elt_fault_kind();
    if let FaultKind::Policy { retry_after_s, .. } = &mut kind
        && retry_after_s.is_none()
    {
        *retry_after_s = failure.retry_after;
    }
    fault(&kind, &failure.elt_message())
}

/// `POST {elt.soap_path}`.
pub async fn handle(
    State(relay): State<Arc<Relay>>,
    admitted: Admitted<EltSoap>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = &admitted.caller;
    match call(&relay, caller, &headers, body).await {
        Ok(response) => {
            relay
                .metrics
                .request("soap_elt", "answered", admitted.started.elapsed());
            response
        }
        Err(f) => admission::refuse::<EltSoap>(&relay, Some(caller), &f, admitted.started).await,
    }
}

/// Decodes the envelope into a [`Submission`], submits it through the ELT
/// product's one entry point, and encodes the receipt.
async fn call(
    relay: &Relay,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let bytes = crate::rs::read_body(relay, headers, crate::rs::body_reader(body)).await?;
    // The cheap gate before any parsing (the product runs it again).
    crate::policy::gate(
        &relay.metrics,
        &relay.live().config,
        &relay.operator,
        &crate::policy::Ask::product(caller, crate::config::ProductName::Elt),
    )?;
    let tx = uuid::Uuid::new_v4().to_string();
    let max_report = relay
        .live()
        .config
        .elt
        .as_ref()
        .map_or(1024 * 1024, |e| e.max_report_bytes);
    let limits = relay_elt::envelope_limits(max_report);
    // Bounded and linear, but a large envelope is parsed off the async workers.
    let size = bytes.len();
    let parsed =
        crate::cpu::parse(size, move || soap::parse_request_within(&bytes, &limits)).await?;
    let submission = match parsed {
        Ok(request) => {
            let signature = |s: soap::SignatureBlock| Signature {
                der: s.signature,
                date: Some(s.datum_for_signatur),
                ocsp: s.ocsp_response,
            };
            Submission {
                report: request.tidredovisning,
                reports_in_call: 1,
                assistant_signature: Some(signature(request.assistent)),
                anordnare_signature: Some(signature(request.anordnare)),
                status: None,
            }
        }
        Err(RequestError::MoreThanOneReport) => Submission {
            report: Zeroizing::new(Vec::new()),
            reports_in_call: 2,
            assistant_signature: None,
            anordnare_signature: None,
            status: None,
        },
        Err(RequestError::VersionMismatch(m)) => {
            return Err(Failure::caller(
                Code::Envelope(Envelope::VersionMismatch),
                m,
            ));
        }
        Err(RequestError::MustUnderstand) => {
            return Err(Failure::caller(
                Code::Envelope(Envelope::MustUnderstand),
                "a SOAP header marked mustUnderstand is not understood by this service",
            ));
        }
        Err(RequestError::Xml(m)) => {
            return Err(Failure::caller(
                Code::Shs(relay_shs::ErrorCode::IllegalDatapartContent),
                m,
            ));
        }
    };
    let receipt = elt::submit(relay, caller, relay_audit::Channel::Soap, &tx, submission)
        .await
        .map_err(|r| Failure::from(r).audited())?;
    Ok(xml(StatusCode::OK, soap::response_xml(&receipt)))
}

/// `GET {path}?wsdl` and `GET {path}?xsd=NAME`.
pub async fn contract(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    uri: http::Uri,
) -> Response {
    let (path, base, name) =
        match super::contract_request(&relay, &headers, &query, &uri, soap::CONTRACT[0].0) {
            Ok(r) => r,
            Err(r) => return *r,
        };
    let Some((_, text)) = soap::CONTRACT.iter().find(|(n, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such schema\n").into_response();
    };
    let mut out = text.replace("REPLACE_WITH_ACTUAL_URL", &format!("{base}{path}"));
    for (n, _) in soap::CONTRACT {
        out = out.replace(
            &format!("schemaLocation=\"{n}\""),
            &format!("schemaLocation=\"{path}?xsd={n}\""),
        );
    }
    let mut r = Response::new(Body::from(out));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}
