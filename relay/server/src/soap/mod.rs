//! The SSBTEK v10 web service: SOAP 1.1 document/literal over the same mutual-TLS
//! front, implementing `Sammansatt_Bastjanst_v10.wsdl`, so a case system that
//! calls SSBTEK today can point at the relay and change nothing else.
//!
//! `POST {path}`: `hamtaBastjanstInformation` (through the same validation,
//! policy, fan-out, combine and deletion path as the SHS product) and
//! `testaBastjanstInformation` (the adapters' health). `GET {path}?wsdl` serves the
//! WSDL with the real address, `GET {path}?xsd=...` every schema it references.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures::future::join_all;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relay_ident::Organisationsnummer;
use relay_ssbtek::{
    EnvelopeError, Fault, FaultFelkod, Operation, PingAnswer, Question, RelayFelkod, Slot,
    SlotError, SoapCall, ValidationLimits,
};
use zeroize::Zeroizing;

pub mod elt;

use crate::Relay;
use crate::config::ProductName;
use crate::identity::{self, PeerCert};
use crate::policy;
use crate::products::ssbtek;

const SOAP11: &str = relay_ssbtek::envelope::NS_SOAP11;

/// The bundled contract: (path relative to the schema root, bytes). The WSDL and
/// XSDs are the public SSBTEK v10 contract (MIT, Sundsvalls kommun; see
/// `contracts/ssbtek-v10/LICENSE` at the repository root).
const CONTRACT: &[(&str, &[u8])] = &[
    (
        "se/forsakringskassan/schema/integration/ssbt/_10/Sammansatt_Bastjanst_v10.wsdl",
        include_bytes!(concat!(
            "../../../../contracts/ssbtek-v10/schemas/",
            "se/forsakringskassan/schema/integration/ssbt/_10/Sammansatt_Bastjanst_v10.wsdl"
        )),
    ),
    (
        "se/forsakringskassan/schema/integration/ssbt/_10/sammansatt_bastjanst_v10.xsd",
        include_bytes!(concat!(
            "../../../../contracts/ssbtek-v10/schemas/",
            "se/forsakringskassan/schema/integration/ssbt/_10/sammansatt_bastjanst_v10.xsd"
        )),
    ),
    (
        "se/rsv/zg/bs/service/ws/beskattningws/ZgBsBeskattningWSService_schema.xsd",
        include_bytes!(concat!(
            "../../../../contracts/ssbtek-v10/schemas/",
            "se/rsv/zg/bs/service/ws/beskattningws/ZgBsBeskattningWSService_schema.xsd"
        )),
    ),
    (
        "se/arbetsformedlingen/api/arbetssokande/ersattningsstod/v2/ers_stod.xsd",
        include_bytes!(concat!(
            "../../../../contracts/ssbtek-v10/schemas/",
            "se/arbetsformedlingen/api/arbetssokande/ersattningsstod/v2/ers_stod.xsd"
        )),
    ),
    (
        "schemas/ubpservice/int014/UnemploymentBenefitPaymentService.xsd",
        include_bytes!(
            "../../../../contracts/ssbtek-v10/schemas/schemas/ubpservice/int014/UnemploymentBenefitPaymentService.xsd"
        ),
    ),
    (
        "se/transportstyrelsen/schema/ssbtek/hamtauppgifterresponder/_1/HamtaUppgifterResponder_1.0.xsd",
        include_bytes!(concat!(
            "../../../../contracts/ssbtek-v10/schemas/",
            "se/transportstyrelsen/schema/ssbtek/hamtauppgifterresponder/_1/HamtaUppgifterResponder_1.0.xsd"
        )),
    ),
    (
        "se/transportstyrelsen/schema/ssbtek/fordon/_1/fordon_1.0.xsd",
        include_bytes!(
            "../../../../contracts/ssbtek-v10/schemas/se/transportstyrelsen/schema/ssbtek/fordon/_1/fordon_1.0.xsd"
        ),
    ),
    (
        "se/transportstyrelsen/schema/ssbtek/person/_1/person_1.0.xsd",
        include_bytes!(
            "../../../../contracts/ssbtek-v10/schemas/se/transportstyrelsen/schema/ssbtek/person/_1/person_1.0.xsd"
        ),
    ),
    (
        "se/migrationsverket/schema/ssbtek/_1/SSBTEKWebService_schema1.xsd",
        include_bytes!(concat!(
            "../../../../contracts/ssbtek-v10/schemas/",
            "se/migrationsverket/schema/ssbtek/_1/SSBTEKWebService_schema1.xsd"
        )),
    ),
];

const WSDL: &str = "se/forsakringskassan/schema/integration/ssbt/_10/Sammansatt_Bastjanst_v10.wsdl";

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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

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
/// the question's limits) and turns a refusal into its SOAP fault.
fn inspect(bytes: &[u8], limits: &ValidationLimits) -> Result<SoapCall, Box<Response>> {
    relay_ssbtek::read_envelope(bytes, limits).map_err(|e| {
        Box::new(match e {
            EnvelopeError::VersionMismatch(m) => soap_fault("soap:VersionMismatch", m),
            EnvelopeError::MustUnderstand => soap_fault("soap:MustUnderstand", &e.to_string()),
            EnvelopeError::Invalid(m) => fault(Operation::Hamta, FaultFelkod::Valideringsfel, &m),
        })
    })
}

/// `POST {path}`.
pub async fn handle(
    State(relay): State<Arc<Relay>>,
    peer: Option<axum::Extension<PeerCert>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(_permit) = relay.try_admit() else {
        let mut r = fault(
            Operation::Hamta,
            FaultFelkod::Overbelastad,
            "the relay is at its limit; retry later",
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(relay.live().config.limits.retry_after_s),
        );
        return r;
    };
    let caller = match identity::organisation_of(
        &relay.live().config.identity,
        peer.as_ref().map(|p| p.0.0.as_slice()),
    ) {
        Ok(org) => org,
        Err(e) => return fault(Operation::Hamta, FaultFelkod::Behorighet, &e.to_string()),
    };
    let bytes = match crate::rs::read_body(&relay, &headers, crate::rs::body_reader(body)).await {
        Ok(b) => b,
        Err(e) => return fault(Operation::Hamta, FaultFelkod::Valideringsfel, &e.info),
    };
    let (operation, response) = match inspect(&bytes, &ssbtek::validation_limits(&relay)) {
        Err(r) => ("invalid", *r),
        Ok(SoapCall::Testa) => ("testa", testa(&relay).await),
        Ok(SoapCall::Hamta) => ("hamta", hamta(&relay, &caller, &bytes).await),
    };
    crate::metrics::METRICS.request(
        "soap_ssbtek",
        if response.status().is_success() {
            "answered"
        } else {
            "refused"
        },
        started.elapsed(),
    );
    tracing::info!(
        route = "soap/ssbtek",
        operation,
        caller = %caller,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_millis() as u64,
        "SOAP call"
    );
    response
}

async fn hamta(relay: &Relay, caller: &Organisationsnummer, bytes: &[u8]) -> Response {
    let started = Instant::now();
    let tx = uuid::Uuid::new_v4().to_string();
    tracing::Span::current().record("shs.tx_id", tx.as_str());
    let refused = |questions: Vec<Question>, code: &'static str| {
        let tx = tx.clone();
        async move {
            ssbtek::audit(
                relay,
                relay_audit::Channel::Soap,
                &tx,
                None,
                caller,
                &questions,
                &ssbtek::FanOutReport::default(),
                started,
                ssbtek::AuditResult::Refused(code),
            )
            .await;
        }
    };
    if let Err(r) = policy::check_caller(
        &relay.live().config,
        &relay.operator,
        caller,
        ProductName::Ssbtek,
    ) {
        refused(Vec::new(), r.label()).await;
        let felkod = match r {
            policy::Refusal::Suspended => FaultFelkod::Behorighet,
            _ => FaultFelkod::AvtalSaknas,
        };
        return fault(Operation::Hamta, felkod, &r.to_string());
    }
    let question = match Question::parse_element(bytes, &ssbtek::validation_limits(relay)) {
        Ok(q) => q,
        Err(e) => {
            refused(Vec::new(), "validation").await;
            let f = Fault::from(&e);
            let detail = f.to_xml(Operation::Hamta, false);
            let mut body = format!(
                "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>VALIDERINGSFEL: {}</faultstring><detail>",
                esc(&e.to_string())
            )
            .into_bytes();
            body.extend_from_slice(&detail);
            body.extend_from_slice(b"</detail></soap:Fault>");
            return xml_response(StatusCode::INTERNAL_SERVER_ERROR, envelope(&body));
        }
    };
    if let Err(r) = ssbtek::authorise(relay, caller, &question) {
        refused(vec![question], "not_ingivare_or_processor").await;
        return fault(Operation::Hamta, FaultFelkod::Behorighet, &r.to_string());
    }
    let questions = [question];
    let (answers, report) = ssbtek::ask(
        relay,
        &tx,
        &questions,
        relay.live().config.limits.deadline_for(1),
        false,
    )
    .await;
    ssbtek::audit(
        relay,
        relay_audit::Channel::Soap,
        &tx,
        None,
        caller,
        &questions,
        &report,
        started,
        ssbtek::AuditResult::Answered,
    )
    .await;
    tracing::info!(
        tx = %tx,
        calls = ?report.calls.iter().map(|(s, o)| format!("{}={o}", s.as_str())).collect::<Vec<_>>(),
        "fan-out done"
    );
    let answer = answers.into_iter().next().map(|a| a.xml);
    match answer {
        Some(xml) => xml_response(StatusCode::OK, envelope(&xml)),
        None => fault(
            Operation::Hamta,
            FaultFelkod::TeknisktFel,
            "no answer was built",
        ),
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

/// What a contract request asks for: (path, host as the caller named it, the
/// file: `wsdl` for `?wsdl`, else `?xsd=NAME`), or a 404.
pub(crate) fn contract_request(
    relay: &Relay,
    headers: &HeaderMap,
    query: &[(String, String)],
    uri: &http::Uri,
    wsdl: &str,
) -> Result<(String, String, String), Box<Response>> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| relay.live().config.front.listen.to_string());
    let wanted = if query.iter().any(|(k, _)| k.eq_ignore_ascii_case("wsdl")) {
        Some(wsdl.to_owned())
    } else {
        query
            .iter()
            .find(|(k, _)| k == "xsd")
            .map(|(_, v)| v.clone())
    };
    match wanted {
        Some(name) => Ok((uri.path().to_owned(), host, name)),
        None => Err(Box::new(
            (StatusCode::NOT_FOUND, "use ?wsdl or ?xsd=NAME\n").into_response(),
        )),
    }
}

/// `GET {path}?wsdl` and `GET {path}?xsd=NAME`.
pub async fn contract(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    uri: http::Uri,
) -> Response {
    let (path, host, name) = match contract_request(&relay, &headers, &query, &uri, WSDL) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let Some((_, bytes)) = CONTRACT.iter().find(|(p, _)| *p == name) else {
        return (StatusCode::NOT_FOUND, "no such schema\n").into_response();
    };
    let body = rewrite(&name, bytes, &path, &format!("https://{host}{path}"));
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
