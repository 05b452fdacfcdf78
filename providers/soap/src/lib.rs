//! # providers-soap
//!
//! What the six SOAP-speaking adapters (AF, CSN, SKV, SO, TNS, MIV) share: call a
//! base service with a SOAP 1.1 envelope, tell an answer from a fault, and turn
//! elements of the answer into standalone XML (every namespace in scope declared
//! on the element itself) so they can be placed inside `<ssbt:data>`.
//!
//! Not for: any agency's own document shapes; each adapter owns those.

use std::time::Duration;

use providers_sdk::{AdapterConfig, BackendError, Description, Health, QueryOutcome};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, Writer};

/// What a SOAP call came to.
#[derive(Debug)]
pub enum SoapReply {
    /// The Body's first element, as XML text (standalone).
    Body(String),
    /// A SOAP Fault: `faultstring` and the `detail` content (standalone XML).
    Fault { faultstring: String, detail: String },
}

/// An agency's base service as an adapter sees it: an HTTPS client built from
/// the adapter's `[backend]` configuration and the base URL.
pub struct BaseService {
    client: reqwest::Client,
    base: String,
}

impl BaseService {
    pub fn new(cfg: &AdapterConfig) -> anyhow::Result<Self> {
        Ok(Self {
            client: providers_sdk::base_service_client(&cfg.backend)?,
            base: cfg.backend.url.trim_end_matches('/').to_owned(),
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The base URL + `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET {base}/{agency}/health` == 200 within 2 s.
    pub async fn health(&self, agency: &str) -> Health {
        health(&self.client, &self.url(&format!("/{agency}/health"))).await
    }
}

/// The `Describe` answer of an SSBTEK adapter for `slot`.
pub fn description(slot: &str, display_name: &str, adapter_version: &str) -> Description {
    Description {
        provider_id: slot.into(),
        display_name: display_name.into(),
        adapter_version: adapter_version.into(),
        payload_format: format!("ssbtek-v10/{slot}"),
        submit_document_types: Vec::new(),
    }
}

/// The common mapping of a SOAP answer: a fault is the agency's own error (code
/// from the faultstring), a body's `element` children are the slot payload.
pub fn payload_of(reply: SoapReply, element: &str) -> Result<QueryOutcome, BackendError> {
    match reply {
        SoapReply::Fault { faultstring, .. } => {
            let (code, messages) = split_fault(&faultstring);
            Ok(QueryOutcome::ProviderError { code, messages })
        }
        SoapReply::Body(body) => {
            let children = children(&body, element)
                .ok_or_else(|| BackendError::Internal(format!("the answer is not a {element}")))?;
            Ok(QueryOutcome::Data {
                payload: children.concat().into_bytes(),
            })
        }
    }
}

/// The query's period (`from`, `to`, ISO dates).
pub fn period(q: &providers_sdk::proto::QueryRequest) -> (String, String) {
    q.period
        .as_ref()
        .map(|p| (p.from.clone(), p.to.clone()))
        .unwrap_or_default()
}

/// The query's caller: organisation number, name, case worker.
pub fn caller(q: &providers_sdk::proto::QueryRequest) -> (String, String, String) {
    q.caller
        .as_ref()
        .map(|c| {
            (
                c.organisation_number.clone(),
                c.name.clone(),
                c.case_worker.clone(),
            )
        })
        .unwrap_or_default()
}

/// `code message` from a faultstring that starts with the agency's code.
pub fn split_fault(faultstring: &str) -> (String, Vec<String>) {
    match faultstring.split_once(' ') {
        Some((code, text)) => (code.to_owned(), vec![text.to_owned()]),
        None => (
            faultstring.to_owned(),
            vec!["Bastjänsten svarade med fel".to_owned()],
        ),
    }
}

/// Escapes text for XML content and attributes (the project's one escaper).
pub use relay_xml::escape_attr as esc;

/// POSTs `body_xml` in a SOAP 1.1 envelope to `url`, with the call's
/// `traceparent` when it has one. HTTP 503, connection errors
/// and non-SOAP answers are `Unavailable`; client time-outs are `DeadlineExceeded`.
pub async fn call(
    client: &reqwest::Client,
    url: &str,
    soap_action: &str,
    body_xml: &str,
) -> Result<SoapReply, BackendError> {
    let envelope = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>{body_xml}</soap:Body></soap:Envelope>"
    );
    let mut request = client
        .post(url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", format!("\"{soap_action}\""));
    if let Some(t) = providers_sdk::base_service_traceparent() {
        request = request.header("traceparent", t);
    }
    let response = request.body(envelope).send().await.map_err(request_error)?;
    let status = response.status();
    if status.as_u16() == 503 || status.as_u16() == 502 || status.as_u16() == 504 {
        return Err(BackendError::Unavailable(format!(
            "base service answered HTTP {status}"
        )));
    }
    let text = response.text().await.map_err(request_error)?;
    parse_envelope(&text).ok_or_else(|| {
        BackendError::Unavailable(format!(
            "base service answered HTTP {status} without a SOAP envelope"
        ))
    })
}

/// Maps a reqwest error onto the SDK's error.
pub fn request_error(e: reqwest::Error) -> BackendError {
    if e.is_timeout() {
        BackendError::DeadlineExceeded
    } else {
        BackendError::Unavailable(format!("base service unreachable: {}", without_url(&e)))
    }
}

/// reqwest errors name the URL; keep only the kind (no query data in logs).
fn without_url(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "bad response body"
    } else {
        "request failed"
    }
}

/// `GET {base}/{agency}/health` == 200 within 2 s.
pub async fn health(client: &reqwest::Client, url: &str) -> Health {
    match client.get(url).timeout(Duration::from_secs(2)).send().await {
        Ok(r) if r.status().is_success() => Health::Serving,
        _ => Health::NotServing,
    }
}

/// Reads a SOAP 1.1 envelope: the Body's first element, or its Fault.
pub fn parse_envelope(xml: &str) -> Option<SoapReply> {
    let body = children(xml, "Body")?;
    let first = body.into_iter().next()?;
    if local_name_of(&first) == "Fault" {
        let faultstring = text_of(&first, "faultstring").unwrap_or_default();
        let detail = children(&first, "detail")
            .map(|c| c.concat())
            .unwrap_or_default();
        Some(SoapReply::Fault {
            faultstring,
            detail,
        })
    } else {
        Some(SoapReply::Body(first))
    }
}

fn local_name_of(element_xml: &str) -> String {
    let mut reader = Reader::from_str(element_xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                return e.local_name().as_ref().to_owned();
            }
            Ok(Event::Eof) | Err(_) => return String::new(),
            _ => {}
        }
    }
}

/// The text of the first element with local name `name`.
pub fn text_of(xml: &str, name: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    let mut text = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == name => inside = true,
            Ok(Event::Text(t)) if inside => text.push_str(&t.xml10_content()),
            Ok(Event::CData(t)) if inside => text.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) if inside => {
                if let Some(c) = quick_xml::escape::resolve_predefined_entity(&r) {
                    text.push_str(c);
                } else if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                }
            }
            Ok(Event::End(e)) if inside && e.local_name().as_ref() == name => {
                return Some(text.trim().to_owned());
            }
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

/// The child elements of the first element with local name `parent`, each as
/// standalone XML: the namespace declarations in scope are added to the child's
/// start tag. `None` when there is no such parent or the XML is not well-formed.
pub fn children(xml: &str, parent: &str) -> Option<Vec<String>> {
    let mut reader = Reader::from_str(xml);
    // Stack of the namespace declarations of each open element.
    let mut scopes: Vec<Vec<(String, String)>> = Vec::new();
    let mut parent_depth: Option<usize> = None;
    let mut out: Vec<String> = Vec::new();
    let mut writer: Option<Writer<Vec<u8>>> = None;
    loop {
        let event = reader.read_event().ok()?;
        match event {
            Event::Start(e) => {
                let decls = ns_decls(&e);
                let depth = scopes.len();
                match (parent_depth, &mut writer) {
                    (Some(p), None) if depth == p + 1 => {
                        let mut w = Writer::new(Vec::new());
                        w.write_event(Event::Start(with_scope(&e, &scopes))).ok()?;
                        writer = Some(w);
                    }
                    (_, Some(w)) => w.write_event(Event::Start(e.borrow())).ok()?,
                    (None, None) if e.local_name().as_ref() == parent => parent_depth = Some(depth),
                    _ => {}
                }
                scopes.push(decls);
            }
            Event::Empty(e) => {
                let depth = scopes.len();
                match (parent_depth, &mut writer) {
                    (Some(p), None) if depth == p + 1 => {
                        let mut w = Writer::new(Vec::new());
                        w.write_event(Event::Empty(with_scope(&e, &scopes))).ok()?;
                        out.push(String::from_utf8(w.into_inner()).ok()?);
                    }
                    (_, Some(w)) => w.write_event(Event::Empty(e.borrow())).ok()?,
                    (None, None) if e.local_name().as_ref() == parent => return Some(Vec::new()),
                    _ => {}
                }
            }
            Event::End(e) => {
                scopes.pop();
                let depth = scopes.len();
                if let Some(w) = &mut writer {
                    w.write_event(Event::End(e.borrow())).ok()?;
                    if Some(depth) == parent_depth.map(|p| p + 1) {
                        let w = writer.take()?;
                        out.push(String::from_utf8(w.into_inner()).ok()?);
                    }
                } else if Some(depth) == parent_depth {
                    return Some(out);
                }
            }
            Event::Eof => return None,
            other => {
                if let Some(w) = &mut writer {
                    w.write_event(other).ok()?;
                }
            }
        }
    }
}

fn ns_decls(e: &BytesStart<'_>) -> Vec<(String, String)> {
    e.attributes()
        .flatten()
        .filter_map(|a| {
            let key = a.key.as_ref().to_owned();
            (key == "xmlns" || key.starts_with("xmlns:")).then(|| {
                (
                    key,
                    String::from_utf8_lossy(a.value.as_bytes()).into_owned(),
                )
            })
        })
        .collect()
}

/// `e` with every in-scope declaration it does not itself make.
fn with_scope<'a>(e: &BytesStart<'a>, scopes: &[Vec<(String, String)>]) -> BytesStart<'static> {
    let mut own: Vec<String> = ns_decls(e).into_iter().map(|(k, _)| k).collect();
    let mut start = e.to_owned();
    for scope in scopes.iter().rev() {
        for (k, v) in scope {
            if !own.contains(k) {
                start.push_attribute((k.as_str(), v.as_str()));
                own.push(k.clone());
            }
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_carry_the_namespaces_in_scope() {
        let xml = r#"<soap:Envelope xmlns:soap="s"><soap:Body><a:R xmlns:a="urn:a" xmlns:b="urn:b"><a:x>1</a:x><b:y z="2"/><a:w><b:q>&amp;</b:q></a:w></a:R></soap:Body></soap:Envelope>"#;
        let kids = children(xml, "R").unwrap();
        assert_eq!(kids.len(), 3);
        assert!(kids[0].starts_with("<a:x"));
        assert!(kids[0].contains("xmlns:a=\"urn:a\""), "{}", kids[0]);
        assert!(kids[1].contains("xmlns:b=\"urn:b\""), "{}", kids[1]);
        assert!(kids[2].contains("&amp;"), "{}", kids[2]);
    }

    #[test]
    fn a_fault_is_told_from_an_answer() {
        let fault = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>9071001 Tekniskt fel</faultstring><detail><e:Exception xmlns:e="urn:e"><MeddelandeKod>9071001</MeddelandeKod></e:Exception></detail></soap:Fault></soap:Body></soap:Envelope>"#;
        match parse_envelope(fault).unwrap() {
            SoapReply::Fault {
                faultstring,
                detail,
            } => {
                assert_eq!(faultstring, "9071001 Tekniskt fel");
                assert_eq!(
                    text_of(&detail, "MeddelandeKod").as_deref(),
                    Some("9071001")
                );
            }
            SoapReply::Body(_) => panic!("a fault"),
        }
        assert!(parse_envelope("not xml at all <").is_none());
    }
}
