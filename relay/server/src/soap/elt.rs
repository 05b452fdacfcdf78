//! The ELT web service `SkickaTidredovisning` (SOAP 1.1, SHS e-mottagning basic
//! profile 1.0) on the mutual-TLS front: the same rules and the same adapter as
//! the SHS product. `GET {path}?wsdl` serves the WSDL with the real address,
//! `?xsd=NAME` its schemas.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relay_elt::soap::{self, FaultKind};
use zeroize::Zeroizing;

use crate::Relay;
use crate::admission::{self, Admitted, Way};
use crate::failure::{Code, Failure, PolicyKind};
use crate::identity::Caller;
use crate::products::elt;

fn xml(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(bytes::Bytes::from_owner(Zeroizing::new(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

/// The ELT `SkickaTidredovisning` SOAP service as a way in: refusals are ELT
/// faults.
pub struct EltSoap;

impl Way for EltSoap {
    const ROUTE: &'static str = "soap_elt";
    fn render(failure: &Failure) -> Response {
        fault_for(failure)
    }
}

/// The ELT fault kind of a refusal: a product's own (ELT's rules) as the
/// product mapped it, the gate's and the relay's by their kind.
fn fault_kind(failure: &Failure) -> FaultKind {
    let policy = |code: &str| FaultKind::Policy {
        code: code.into(),
        retry_after_s: failure.retry_after,
    };
    match &failure.code {
        Code::Product(r) => match &r.fault {
            FaultKind::Policy {
                code,
                retry_after_s: None,
            } => policy(code),
            kind => kind.clone(),
        },
        Code::Envelope(e) => FaultKind::Soap {
            faultcode: e.faultcode().into(),
        },
        Code::Overloaded => policy("ELT-OVERLOADED"),
        Code::Quota => policy("ELT-QUOTA"),
        Code::Policy(p) => match p.kind {
            PolicyKind::Suspended => policy("ELT-SUSPENDED-VENDOR"),
            PolicyKind::WrongEnvironment => policy("ELT-ENVIRONMENT"),
            _ => policy("ELT-NO-AGREEMENT"),
        },
        Code::Shs(relay_shs::ErrorCode::UnknownSender) => policy("ELT-NO-AGREEMENT"),
        Code::Shs(_) | Code::InvalidQuestion => FaultKind::XmlValidation,
        Code::NotFound | Code::Internal | Code::Unavailable => FaultKind::Server {
            code: "ELT-INTERNAL".into(),
        },
    }
}

/// The ELT fault for any refusal (the renderer of [`EltSoap`]): a SOAP 1.1
/// fault (HTTP 500), with `Retry-After` when the refusal says when to retry.
fn fault_for(failure: &Failure) -> Response {
    let text = match &failure.code {
        Code::Product(r) => r.fault_text.as_str(),
        _ => failure.info.as_str(),
    };
    let kind = fault_kind(failure);
    let mut r = xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        soap::fault_xml(&kind, text),
    );
    if matches!(kind, FaultKind::Policy { .. }) {
        failure.set_retry_after(&mut r);
    }
    r
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
                .request(EltSoap::ROUTE, "answered", admitted.started.elapsed());
            response
        }
        Err(f) => admission::refuse::<EltSoap>(&relay, Some(caller), &f, admitted.started).await,
    }
}

/// Reads the body; the product decodes the envelope into a submission,
/// submits it through its one entry point (which runs the policy gate, once)
/// and encodes the receipt.
async fn call(
    relay: &Relay,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let bytes = crate::body::read_body(relay, headers, crate::body::body_reader(body)).await?;
    let tx = uuid::Uuid::new_v4().to_string();
    let submission = elt::soap::decode(relay, bytes).await?;
    let receipt = elt::submit(relay, caller, relay_audit::Channel::Soap, &tx, submission)
        .await
        .map_err(|r| Failure::from(r).audited())?;
    Ok(xml(StatusCode::OK, elt::soap::encode(&receipt)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_elt_fault_falls_out_of_the_type() {
        let suspended = Failure::from(crate::policy::Refusal::Suspended);
        assert!(matches!(
            fault_kind(&suspended),
            FaultKind::Policy { code, .. } if code == "ELT-SUSPENDED-VENDOR"
        ));
        let rate = Failure::from(elt::Refusal::RateLimited {
            retry_after: std::time::Duration::from_millis(400),
            per_second: 1.0,
        });
        let r = fault_for(&rate);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let fk_down = Failure::from(elt::Refusal::Unavailable);
        assert!(matches!(
            fault_kind(&fk_down),
            FaultKind::Server { code } if code == "ELT-UNAVAILABLE"
        ));
        assert!(
            fault_for(&fk_down)
                .headers()
                .get(header::RETRY_AFTER)
                .is_none()
        );
    }
}
