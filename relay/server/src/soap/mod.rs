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
    EnvelopeError, Fault, FaultFelkod, Operation, PingAnswer, RelayFelkod, Slot, SlotError,
    SoapCall,
};
use zeroize::Zeroizing;

pub mod elt;

use crate::Relay;
use crate::admission::{self, Admitted, Caller, SsbtekSoap};
use crate::config::ProductName;
use crate::failure::{Code, Envelope, Failure};
use crate::policy;
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

/// Reads the envelope (relay-ssbtek's [`relay_ssbtek::read_envelope`], within
/// the question's limits: SOAP 1.1 only, no DOCTYPE, `mustUnderstand` headers
/// refused, the operation from the Body's first element).
fn inspect(relay: &Relay, bytes: &[u8]) -> Result<SoapCall, Failure> {
    relay_ssbtek::read_envelope(bytes, &ssbtek::validation_limits(relay)).map_err(|e| match e {
        EnvelopeError::VersionMismatch(m) => {
            Failure::caller(Code::Envelope(Envelope::VersionMismatch), m)
        }
        EnvelopeError::MustUnderstand => {
            Failure::caller(Code::Envelope(Envelope::MustUnderstand), e.to_string())
        }
        EnvelopeError::Invalid(m) => Failure::caller(Code::InvalidQuestion, m.into_owned()),
    })
}

/// The SSBTEK fault for any refusal (the renderer of
/// [`crate::admission::SsbtekSoap`]): SOAP-level faults for the envelope, else a
/// `felkod` fault; `Retry-After` when overloaded.
pub fn fault_for(failure: &Failure) -> Response {
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
        _ => fault(Operation::Hamta, failure.ssbtek_felkod(), &failure.info),
    };
    if let Some(s) = failure.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
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
                .request("soap_ssbtek", "answered", admitted.started.elapsed());
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

/// Decodes the envelope, runs the operation through the product's entry point
/// (`testa` through the same policy gate), encodes the answer.
async fn call(
    relay: &Relay,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<(&'static str, Response), Failure> {
    let bytes = crate::rs::read_body(relay, headers, crate::rs::body_reader(body)).await?;
    // Both operations are the SSBTEK product: the cheap gate before any parsing
    // (the product runs it again, with the question's ingivare).
    policy::gate(
        &relay.metrics,
        &relay.live().config,
        &relay.operator,
        &policy::Ask::product(caller, ProductName::Ssbtek),
    )?;
    match inspect(relay, &bytes)? {
        SoapCall::Testa => Ok(("testa", testa(relay).await)),
        SoapCall::Hamta => {
            let tx = uuid::Uuid::new_v4().to_string();
            tracing::Span::current().record("shs.tx_id", tx.as_str());
            let call = ssbtek::Call {
                channel: relay_audit::Channel::Soap,
                tx_id: &tx,
                corr_id: None,
                declaration: false,
            };
            let answers =
                ssbtek::answer(relay, caller, call, ssbtek::Documents::SoapBody(bytes)).await?;
            let xml = answers
                .into_iter()
                .next()
                .map(|a| a.xml)
                .ok_or_else(|| Failure::relay("no answer was built"))?;
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
