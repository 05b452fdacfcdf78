//! The ELT web service `SkickaTidredovisning` (SOAP 1.1, SHS e-mottagning basic
//! profile 1.0) on the mutual-TLS front: the same rules and the same adapter as
//! the SHS product. `GET {path}?wsdl` serves the WSDL with the real address,
//! `?xsd=NAME` its schemas.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relay_elt::soap::{self, FaultKind, RequestError};
use zeroize::Zeroizing;

use crate::Relay;
use crate::identity::{self, PeerCert};
use crate::products::elt::{self, Caller, Refusal, Signature, Submission};

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

fn refusal(r: &Refusal) -> Response {
    fault(&r.fault_kind(), &r.message())
}

/// `POST {elt.soap_path}`.
pub async fn handle(
    State(relay): State<Arc<Relay>>,
    peer: Option<axum::Extension<PeerCert>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(_permit) = relay.try_admit() else {
        return fault(
            &FaultKind::Policy {
                code: "ELT-OVERLOADED".into(),
                retry_after_s: Some(u64::from(relay.live().config.limits.retry_after_s)),
            },
            "the relay is at its limit of requests in flight; retry later",
        );
    };
    let der = peer.as_ref().map(|p| p.0.0.as_slice());
    let caller = match identity::organisation_of(&relay.live().config.identity, der) {
        Ok(org) => org,
        Err(e) => {
            return refusal(&Refusal::NoAgreement(e.to_string()));
        }
    };
    let fingerprint = identity::fingerprint_of(der);
    let bytes = match crate::rs::read_body(&relay, &headers, crate::rs::body_reader(body)).await {
        Ok(b) => b,
        Err(e) => return fault(&FaultKind::XmlValidation, &e.info),
    };
    let tx = uuid::Uuid::new_v4().to_string();
    let submission = match soap::parse_request(&bytes) {
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
            return fault(
                &FaultKind::Soap {
                    faultcode: "soap:VersionMismatch".into(),
                },
                &m,
            );
        }
        Err(RequestError::MustUnderstand) => {
            return fault(
                &FaultKind::Soap {
                    faultcode: "soap:MustUnderstand".into(),
                },
                "a SOAP header marked mustUnderstand is not understood by this service",
            );
        }
        Err(RequestError::Xml(m)) => {
            crate::metrics::METRICS.request("soap_elt", "refused", started.elapsed());
            return fault(&FaultKind::XmlValidation, &m);
        }
    };
    drop(bytes);
    let result = elt::submit(
        &relay,
        Caller {
            org: &caller,
            fingerprint: fingerprint.as_deref(),
        },
        relay_audit::Channel::Soap,
        &tx,
        submission,
    )
    .await;
    crate::metrics::METRICS.request(
        "soap_elt",
        if result.is_ok() {
            "answered"
        } else {
            "refused"
        },
        started.elapsed(),
    );
    match result {
        Ok(receipt) => xml(StatusCode::OK, soap::response_xml(&receipt)),
        Err(r) => refusal(&r),
    }
}

/// `GET {path}?wsdl` and `GET {path}?xsd=NAME`.
pub async fn contract(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    uri: http::Uri,
) -> Response {
    let (path, host, name) =
        match super::contract_request(&relay, &headers, &query, &uri, soap::CONTRACT[0].0) {
            Ok(r) => r,
            Err(r) => return *r,
        };
    let Some((_, text)) = soap::CONTRACT.iter().find(|(n, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such schema\n").into_response();
    };
    let mut out = text.replace("REPLACE_WITH_ACTUAL_URL", &format!("https://{host}{path}"));
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
