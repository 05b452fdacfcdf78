//! The SSBTEK v10 web service: SOAP 1.1 document/literal over the same mutual-TLS
//! front, implementing `Sammansatt_Bastjanst_v10.wsdl`, so a case system that
//! calls SSBTEK today can point at the relay and change nothing else.
//!
//! `POST {path}`: `hamtaBastjanstInformation` (through the same validation,
//! policy, fan-out, combine and deletion path as the SHS product) and
//! `testaBastjanstInformation` (the adapters' health). `GET {path}?wsdl` serves the
//! WSDL with the real address, `GET {path}?xsd=...` every schema it references.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures::future::join_all;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relay_ssbtek::{
    Fault, FaultFelkod, Operation, PingAnswer, RelayFelkod, Slot, SlotError, SoapCall,
};
use zeroize::Zeroizing;

pub mod elt;

use crate::Relay;
use crate::admission::{self, Admitted, Way};
use crate::failure::{By, Code, Failure, PolicyKind, PolicyRefusal};
use crate::identity::Caller;
use crate::products::ssbtek;

const SOAP11: &str = relay_ssbtek::envelope::NS_SOAP11;

fn envelope(body: &[u8]) -> Vec<u8> {
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{SOAP11}\"><soap:Body>").into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"</soap:Body></soap:Envelope>");
    out
}

fn xml_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(bytes::Bytes::from_owner(Zeroizing::new(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

// One escaping for the whole project: relay-xml's.
use relay_xml::escape_attr as esc;

/// A SOAP 1.1 fault with an SSBTEK fault detail (HTTP 500, as SOAP 1.1 prescribes).
fn fault(operation: Operation, felkod: FaultFelkod, message: &str) -> Response {
    let detail = Fault::new(felkod)
        .with_message(message)
        .to_xml(operation, false);
    let mut body = format!(
        "<soap:Fault><faultcode>{}</faultcode><faultstring>{}: {}</faultstring><detail>",
        felkod.soap_fault_code(),
        felkod.code(),
        esc(message)
    )
    .into_bytes();
    body.extend_from_slice(&detail);
    body.extend_from_slice(b"</detail></soap:Fault>");
    xml_response(StatusCode::INTERNAL_SERVER_ERROR, envelope(&body))
}

/// A SOAP-level fault without an SSBTEK detail (version mismatch, mustUnderstand).
fn soap_fault(code: &str, text: &str) -> Response {
    let body = format!(
        "<soap:Fault><faultcode>{code}</faultcode><faultstring>{}</faultstring></soap:Fault>",
        esc(text)
    );
    xml_response(StatusCode::INTERNAL_SERVER_ERROR, envelope(body.as_bytes()))
}

/// The SSBTEK v10 SOAP service as a way in: refusals are SOAP faults with
/// `felkod`.
pub struct SsbtekSoap;

impl Way for SsbtekSoap {
    const ROUTE: &'static str = "soap_ssbtek";
    fn render(failure: &Failure) -> Response {
        fault_for(failure)
    }
}

/// The SSBTEK v10 fault code of a refusal.
fn felkod(failure: &Failure) -> FaultFelkod {
    match (&failure.code, &failure.by) {
        (Code::Overloaded | Code::Quota, _) => FaultFelkod::Overbelastad,
        (_, By::Relay | By::Provider(_)) => FaultFelkod::TeknisktFel,
        (
            Code::Policy(PolicyRefusal {
                kind: PolicyKind::NoAgreement,
                ..
            }),
            _,
        ) => FaultFelkod::AvtalSaknas,
        (Code::Policy(_) | Code::Shs(relay_shs::ErrorCode::UnknownSender), _) => {
            FaultFelkod::Behorighet
        }
        _ => FaultFelkod::Valideringsfel,
    }
}

/// The SSBTEK fault for any refusal (the renderer of [`SsbtekSoap`]):
/// SOAP-level faults for the envelope, else a `felkod` fault; `Retry-After`
/// when overloaded.
fn fault_for(failure: &Failure) -> Response {
    let mut response = match &failure.code {
        Code::Envelope(e) => soap_fault(e.faultcode(), &failure.info),
        Code::InvalidQuestion => {
            let felkod = FaultFelkod::Valideringsfel;
            let detail = Fault::new(felkod)
                .with_message(felkod.swedish())
                .with_message(failure.info.as_str())
                .to_xml(Operation::Hamta, false);
            let mut body = format!(
                "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>VALIDERINGSFEL: {}</faultstring><detail>",
                esc(&failure.info)
            )
            .into_bytes();
            body.extend_from_slice(&detail);
            body.extend_from_slice(b"</detail></soap:Fault>");
            xml_response(StatusCode::INTERNAL_SERVER_ERROR, envelope(&body))
        }
        _ => fault(Operation::Hamta, felkod(failure), &failure.info),
    };
    failure.set_retry_after(&mut response);
    response
}

/// `POST {path}`.
pub async fn handle(
    State(relay): State<Arc<Relay>>,
    admitted: Admitted<SsbtekSoap>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = &admitted.caller;
    match call(&relay, caller, &headers, body).await {
        Ok((operation, response)) => {
            relay
                .metrics
                .request(SsbtekSoap::ROUTE, "answered", admitted.started.elapsed());
            tracing::info!(
                route = "soap/ssbtek",
                operation,
                caller = %caller.org,
                latency_ms = admitted.started.elapsed().as_millis() as u64,
                "SOAP call answered"
            );
            response
        }
        Err(f) => admission::refuse::<SsbtekSoap>(&relay, Some(caller), &f, admitted.started).await,
    }
}

/// Reads the body, decodes the envelope and runs the operation through the
/// product (`testa` through the same policy gate as `hamta`), encodes the
/// answer. The product's gate runs once, after the decode.
async fn call(
    relay: &Relay,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<(&'static str, Response), Failure> {
    let bytes = crate::body::read_body(relay, headers, crate::body::body_reader(body)).await?;
    match ssbtek::soap::decode(relay, &bytes)? {
        SoapCall::Testa => {
            ssbtek::gate_caller(relay, caller)?;
            Ok(("testa", testa(relay).await))
        }
        SoapCall::Hamta => {
            let tx = uuid::Uuid::new_v4().to_string();
            tracing::Span::current().record("shs.tx_id", tx.as_str());
            let xml = ssbtek::soap::hamta(relay, caller, &tx, bytes).await?;
            Ok(("hamta", xml_response(StatusCode::OK, envelope(&xml))))
        }
    }
}

/// `testaBastjanstInformation`: each configured provider's health, checked in
/// parallel with a short deadline.
async fn testa(relay: &Relay) -> Response {
    let timeout = Duration::from_millis(relay.live().config.soap.ping_timeout_ms);
    let checks = Slot::ALL.into_iter().map(|slot| async move {
        let configured = relay.live().providers.contains(slot.as_str());
        let serving = configured
            && relay
                .live()
                .providers
                .is_serving(slot.as_str(), timeout)
                .await;
        (slot, configured, serving)
    });
    let mut answer = PingAnswer::new();
    for (slot, configured, serving) in join_all(checks).await {
        if !configured {
            continue;
        }
        let error = (!serving).then_some(SlotError::Relay(RelayFelkod::Unavailable));
        answer.slot(slot, serving, error);
    }
    xml_response(StatusCode::OK, envelope(&answer.to_xml(false)))
}

/// What a contract request asks for: (path, the service's base URL, the file:
/// `wsdl` for `?wsdl`, else `?xsd=NAME`), or a 404. The base URL is
/// `front.public_url` when set; otherwise the `Host` the caller named, taken only
/// when it is a plain host name or address (never echoed unchecked into a
/// document), else the listen address.
pub(crate) fn contract_request(
    relay: &Relay,
    headers: &HeaderMap,
    query: &[(String, String)],
    uri: &http::Uri,
    wsdl: &str,
) -> Result<(String, String, String), Box<Response>> {
    let live = relay.live();
    let base = match &live.config.front.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
                .or_else(|| uri.authority().map(|a| a.to_string()))
                .filter(|h| plain_host(h))
                .unwrap_or_else(|| live.config.front.listen.to_string());
            format!("https://{host}")
        }
    };
    let wanted = if query.iter().any(|(k, _)| k.eq_ignore_ascii_case("wsdl")) {
        Some(wsdl.to_owned())
    } else {
        query
            .iter()
            .find(|(k, _)| k == "xsd")
            .map(|(_, v)| v.clone())
    };
    match wanted {
        Some(name) => Ok((uri.path().to_owned(), base, name)),
        None => Err(Box::new(
            (StatusCode::NOT_FOUND, "use ?wsdl or ?xsd=NAME\n").into_response(),
        )),
    }
}

/// A `Host` value that is only a host name or address and a port.
fn plain_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// `GET {path}?wsdl` and `GET {path}?xsd=NAME`.
pub async fn contract(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    uri: http::Uri,
) -> Response {
    let wsdl = relay_ssbtek::contract::WSDL.path;
    let (path, base, name) = match contract_request(&relay, &headers, &query, &uri, wsdl) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    // The bundled WSDL and XSDs (each slot's by an exhaustive match on `Slot`).
    let Some(file) = relay_ssbtek::contract::file(&name) else {
        return (StatusCode::NOT_FOUND, "no such schema\n").into_response();
    };
    let body = rewrite(&name, file.bytes, &path, &format!("{base}{path}"));
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}

/// Points every `schemaLocation` at this service and fills in the address.
fn rewrite(name: &str, bytes: &[u8], path: &str, address: &str) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        // UTF-16 schemas (INT014) import nothing; serve them as they are.
        return bytes.to_vec();
    };
    let dir: Vec<&str> = name.split('/').collect::<Vec<_>>();
    let dir = &dir[..dir.len() - 1];
    let mut out = text.replace("REPLACE_WITH_ACTUAL_URL", address);
    let mut from = 0;
    while let Some(i) = out[from..].find("schemaLocation=\"") {
        let start = from + i + "schemaLocation=\"".len();
        let Some(len) = out[start..].find('"') else {
            break;
        };
        let rel = out[start..start + len].to_owned();
        let mut parts: Vec<&str> = dir.to_vec();
        for seg in rel.split('/') {
            match seg {
                ".." => {
                    parts.pop();
                }
                "." | "" => {}
                s => parts.push(s),
            }
        }
        let target = format!("{path}?xsd={}", parts.join("/"));
        out.replace_range(start..start + len, &target);
        from = start + target.len();
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Refusal;

    #[test]
    fn the_felkod_falls_out_of_the_type() {
        let no_agreement = Failure::from(Refusal::NoAgreement {
            product: "ssbtek",
            environment: "test",
        });
        assert_eq!(felkod(&no_agreement), FaultFelkod::AvtalSaknas);
        assert_eq!(
            felkod(&Failure::from(Refusal::Suspended)),
            FaultFelkod::Behorighet
        );
        assert_eq!(
            felkod(&Failure::relay("the mailbox failed")),
            FaultFelkod::TeknisktFel
        );
        let r = fault_for(&Failure::overloaded(By::Relay, 2, "busy"));
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }
}
