//! `POST /shs/rs`: the SHS receive service for synchronous messages.
//!
//! The path is straight: admit (in-flight limit) → who is calling (certificate) →
//! read the body (size limit, read timeout) → decode the MIME message and label →
//! check the label against the caller, the node and the agreements → the
//! product handler → encode the reply message. SHS errors are HTTP 400 with
//! `X-shs-errorcode` and a plain-text body, as Axel answers them; overload is
//! HTTP 503 with `Retry-After`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use relay_ident::Organisationsnummer;
use relay_shs::{
    DataPart, ErrorCode, Label, PartHeaders, ShsError, ShsMessage, TransferEncoding, TransferType,
};
use relay_ssbtek::Question;
use zeroize::Zeroizing;

use crate::Relay;
use crate::config::ProductName;
use crate::identity::{self, PeerCert};
use crate::metrics::METRICS;
use crate::policy;
use crate::products::{ping, ssbtek};

/// An SHS error response, as Axel writes it: 400, `X-shs-errorcode`, and a
/// plain-text body naming the exception, ids, code and info (never content).
pub fn shs_error(error: &ShsError, label: Option<&Label>) -> Response {
    let (content_id, corr_id) = label
        .map(|l| (l.content.content_id.as_str(), l.corr_id.as_str()))
        .unwrap_or(("", ""));
    let body = format!(
        "{}Exception [contentId={content_id}, corrId={corr_id}, errorCode={}, errorInfo={}]\n",
        error.code, error.code, error.info
    );
    let mut response = (StatusCode::BAD_REQUEST, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "X-shs-errorcode",
        HeaderValue::from_static(error.code.as_str()),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=ISO-8859-1"),
    );
    if let Some(s) = error.retry_after_s {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    response
}

/// HTTP 503 with `Retry-After`: the relay is at its in-flight limit.
pub fn overloaded(retry_after_s: u32) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        "the relay is at its limit of requests in flight; retry later\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    response
}

/// Reads the whole body within the size limit and the read timeout. A body over
/// the limit is read on and discarded (up to four times the limit) so that the
/// client, still sending, gets the error answer instead of a broken connection.
pub async fn read_body(
    relay: &Relay,
    headers: &HeaderMap,
    mut body: impl tokio::io::AsyncRead + Unpin,
) -> Result<Zeroizing<Vec<u8>>, ShsError> {
    use tokio::io::AsyncReadExt;
    let limit = relay.live().config.limits.max_request_bytes;
    let too_large = || ShsError::structure(format!("message larger than {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let cap = limit.saturating_mul(4).max(64 * 1024 * 1024);
    if declared.is_some_and(|len| len > cap) {
        return Err(too_large());
    }
    let timeout = Duration::from_millis(relay.live().config.limits.read_timeout_ms);
    let mut bytes = Zeroizing::new(Vec::new());
    let mut seen: u64 = 0;
    let read = async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = body
                .read(&mut chunk)
                .await
                .map_err(|_| ShsError::structure("reading the message failed"))?;
            if n == 0 {
                break;
            }
            seen += n as u64;
            if seen > cap {
                break;
            }
            if seen <= limit {
                bytes.extend_from_slice(&chunk[..n]);
            }
        }
        Ok::<(), ShsError>(())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => return Err(ShsError::structure("timed out reading the message")),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(())) => {}
    }
    if seen > limit || declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The request body as an `AsyncRead`.
pub type BodyReader = tokio_util::io::StreamReader<
    std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<Bytes>> + Send>>,
    Bytes,
>;

/// The request body as an `AsyncRead`.
pub fn body_reader(body: Body) -> BodyReader {
    use futures::StreamExt;
    let stream: std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<Bytes>> + Send>> =
        Box::pin(
            body.into_data_stream()
                .map(|r| r.map_err(std::io::Error::other)),
        );
    tokio_util::io::StreamReader::new(stream)
}

/// Reads up to the first 4 KiB of the body (where the SHS label must be), and
/// returns them with the rest of the body as a reader.
pub async fn read_prefix(body: Body) -> Result<(Vec<u8>, BodyReader), ShsError> {
    use tokio::io::AsyncReadExt;
    let mut reader = body_reader(body);
    let mut prefix = vec![0u8; 4096];
    let mut filled = 0;
    while filled < prefix.len() {
        let n = reader
            .read(&mut prefix[filled..])
            .await
            .map_err(|_| ShsError::structure("reading the message failed"))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    prefix.truncate(filled);
    Ok((prefix, reader))
}

/// The prefix, then the rest of the body.
pub fn prefix_then(
    prefix: Vec<u8>,
    rest: BodyReader,
) -> tokio::io::Chain<std::io::Cursor<Vec<u8>>, BodyReader> {
    use tokio::io::AsyncReadExt;
    std::io::Cursor::new(prefix).chain(rest)
}

/// `POST /shs/rs`.
pub async fn receive(
    State(relay): State<Arc<Relay>>,
    peer: Option<axum::Extension<PeerCert>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(_permit) = relay.try_admit() else {
        tracing::warn!(route = "shs/rs", "refused: in-flight limit reached");
        METRICS.rejection("shs_rs", "overloaded");
        METRICS.request("shs_rs", "overloaded", started.elapsed());
        return overloaded(relay.live().config.limits.retry_after_s);
    };
    let caller = match identity::organisation_of(
        &relay.live().config.identity,
        peer.as_ref().map(|p| p.0.0.as_slice()),
    ) {
        Ok(org) => org,
        Err(e) => {
            tracing::info!(route = "shs/rs", reason = %e, "refused: caller unknown");
            return shs_error(
                &ShsError::new(ErrorCode::UnknownSender, e.to_string()),
                None,
            );
        }
    };
    // Asynchronous messages to another organisation stream into the mailbox: the
    // label is read from the first 4 KiB (as Axel does) and the rest is never
    // held in memory. Everything else is read whole, within the size limit.
    let (prefix, body) = match read_prefix(body).await {
        Ok(p) => p,
        Err(e) => return refuse(&caller, &e, None, started),
    };
    if let Ok(label) = Label::from_message_prefix(&prefix)
        && label.transfer_type == TransferType::Asynch
        && relay.mailbox.is_some()
        && label
            .to_address()
            .is_some_and(|to| to.org_number() != relay.live().config.node.org.as_str())
    {
        let reader = prefix_then(prefix, body);
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|ct| ct.to_ascii_lowercase().starts_with("multipart/"))
            .map(str::to_owned);
        return match crate::asynch::accept_stream(
            relay.clone(),
            caller,
            label,
            content_type,
            reader,
        )
        .await
        {
            Ok(response) => {
                METRICS.request("shs_rs", "accepted", started.elapsed());
                response
            }
            Err((e, label)) => refuse(&caller, &e, label.as_ref(), started),
        };
    }
    let bytes = match read_body(&relay, &headers, prefix_then(prefix, body)).await {
        Ok(b) => b,
        Err(e) => return refuse(&caller, &e, None, started),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|ct| ct.to_ascii_lowercase().starts_with("multipart/"));
    let limits = relay_shs::Limits {
        max_label_bytes: relay.live().config.limits.max_label_bytes,
        max_total_bytes: relay.live().config.limits.max_request_bytes,
        max_part_bytes: relay.live().config.limits.max_request_bytes,
        ..relay_shs::Limits::default()
    };
    let message = match ShsMessage::parse(&bytes, content_type, limits).await {
        Ok(m) => m,
        Err(e) => {
            let label = Label::from_message_prefix(&bytes).ok();
            return refuse(&caller, &e, label.as_ref(), started);
        }
    };
    if message.label.transfer_type == TransferType::Asynch {
        if let Err(e) = message.label.validate() {
            return refuse(&caller, &e, Some(&message.label), started);
        }
        return match crate::asynch::accept(relay.clone(), caller, message, bytes).await {
            Ok(response) => {
                METRICS.request("shs_rs", "accepted", started.elapsed());
                response
            }
            Err((e, label)) => refuse(&caller, &e, label.as_ref(), started),
        };
    }
    drop(bytes);
    let fingerprint = identity::fingerprint_of(peer.as_ref().map(|p| p.0.0.as_slice()));
    match handle(&relay, &caller, fingerprint.as_deref(), message).await {
        Ok((reply, product)) => {
            tracing::info!(
                route = "shs/rs",
                tx = %reply.label.tx_id,
                caller = %caller,
                product = product.as_str(),
                outcome = "answered",
                latency_ms = started.elapsed().as_millis() as u64,
                "request answered"
            );
            METRICS.request("shs_rs", "answered", started.elapsed());
            reply_response(reply).await
        }
        Err((e, label)) => refuse(&caller, &e, label.as_ref(), started),
    }
}

fn refuse(
    caller: &Organisationsnummer,
    error: &ShsError,
    label: Option<&Label>,
    started: Instant,
) -> Response {
    METRICS.rejection("shs_rs", error.code.as_str());
    METRICS.request("shs_rs", "refused", started.elapsed());
    tracing::info!(
        route = "shs/rs",
        tx = label.map(|l| l.tx_id.as_str()).unwrap_or(""),
        caller = %caller,
        outcome = "refused",
        errorcode = error.code.as_str(),
        latency_ms = started.elapsed().as_millis() as u64,
        "request refused"
    );
    shs_error(error, label)
}

pub(crate) type Refusal = (ShsError, Option<Label>);

/// Checks the label against the caller and the node, then runs the product.
async fn handle(
    relay: &Relay,
    caller: &Organisationsnummer,
    fingerprint: Option<&str>,
    message: ShsMessage,
) -> Result<(ShsMessage, ProductName), Refusal> {
    let label = &message.label;
    let fail = |e: ShsError| (e, Some(label.clone()));
    label.validate().map_err(fail)?;
    tracing::Span::current().record("shs.tx_id", relay_telemetry::tx_attribute(&label.tx_id));
    if label.transfer_type != TransferType::Synch {
        return Err(fail(ShsError::new(
            ErrorCode::MissingDeliveryExecution,
            "asynchronous transfer is not offered by this node yet",
        )));
    }
    let from = label.from_address().ok_or_else(|| {
        fail(ShsError::new(
            ErrorCode::IllegalSender,
            "from is required and must be the certificate's organisation",
        ))
    })?;
    if from.org_number() != caller.as_str() {
        return Err(fail(ShsError::new(
            ErrorCode::IllegalSender,
            "from does not match the client certificate's organisation",
        )));
    }
    match label.to_address() {
        Some(to) if to.org_number() == relay.live().config.node.org.as_str() => {}
        _ => {
            return Err(fail(ShsError::new(
                ErrorCode::UnknownReceiver,
                "to must be this node's organisation",
            )));
        }
    }
    let product = label
        .product_id()
        .and_then(|p| p.as_uuid())
        .and_then(|u| relay.live().config.products.name_of(&u))
        .ok_or_else(|| fail(ShsError::from(ErrorCode::UnknownProductType)))?;
    if product == ProductName::Elt {
        // ELT checks its agreement itself (and answers with its own codes).
        return Ok((
            elt_reply(relay, caller, fingerprint, message).await?,
            product,
        ));
    }
    policy::check_caller(&relay.live().config, &relay.operator, caller, product)
        .map_err(|r| fail(ShsError::new(ErrorCode::MissingAgreement, r.to_string())))?;
    let reply = match product {
        ProductName::Ping => ping_reply(&message),
        ProductName::Ssbtek => ssbtek_reply(relay, caller, message).await?,
        ProductName::Elt => unreachable!("handled above"),
    };
    Ok((reply, product))
}

fn ping_reply(request: &ShsMessage) -> ShsMessage {
    ShsMessage {
        label: request.label.synch_reply(relay_shs::label::now()),
        parts: vec![DataPart {
            headers: PartHeaders {
                mime_type: "text/plain".into(),
                charset: Some("ISO-8859-1".into()),
                transfer_encoding: TransferEncoding::Binary,
                filename: None,
            },
            datapart_type: "txt".into(),
            body: Bytes::from_static(ping::PING_REPLY.as_bytes()),
        }],
    }
}

/// The SSBTEK product over SHS: one question per data part (1 to `max_persons`),
/// all validated and authorised before any provider is asked.
pub(crate) async fn ssbtek_reply(
    relay: &Relay,
    caller: &Organisationsnummer,
    mut message: ShsMessage,
) -> Result<ShsMessage, Refusal> {
    let started = Instant::now();
    let label = message.label.clone();
    let fail = |e: ShsError| (e, Some(label.clone()));
    let audit_refusal = |questions: Vec<Question>, code: &'static str| {
        let label = label.clone();
        async move {
            ssbtek::audit(
                relay,
                relay_audit::Channel::Shs,
                &label.tx_id,
                Some(&label.corr_id),
                caller,
                &questions,
                &ssbtek::FanOutReport::default(),
                started,
                ssbtek::AuditResult::Refused(code),
            )
            .await;
        }
    };
    let max = relay.live().config.limits.max_persons;
    if message.parts.len() > max {
        audit_refusal(Vec::new(), "too_many_persons").await;
        return Err(fail(ShsError::new(
            ErrorCode::IllegalDatapartContent,
            format!(
                "{} data parts: at most {max} persons (data parts) per message",
                message.parts.len()
            ),
        )));
    }
    let limits = ssbtek::validation_limits(relay);
    let mut questions = Vec::with_capacity(message.parts.len());
    for (i, part) in message.parts.iter_mut().enumerate() {
        // Take the bytes out of the message so they are dropped (and the
        // question's copies wiped) as soon as the question is parsed.
        let body = Zeroizing::new(std::mem::take(&mut part.body).to_vec());
        let question = match Question::parse_with(&body, &limits) {
            Ok(q) => q,
            Err(e) => {
                audit_refusal(questions, "validation").await;
                return Err(fail(ShsError::new(
                    ErrorCode::IllegalDatapartContent,
                    format!("data part {}: {e}", i + 1),
                )));
            }
        };
        if let Err(r) = ssbtek::authorise(relay, caller, &question) {
            questions.push(question);
            audit_refusal(questions, "not_ingivare_or_processor").await;
            return Err(fail(ShsError::new(
                ErrorCode::IllegalDatapartContent,
                format!("data part {}: ingivare: {r}", i + 1),
            )));
        }
        questions.push(question);
    }
    let deadline = relay.live().config.limits.deadline_for(questions.len());
    let (answers, report) = ssbtek::ask(relay, &label.tx_id, &questions, deadline, true).await;
    ssbtek::audit(
        relay,
        relay_audit::Channel::Shs,
        &label.tx_id,
        Some(&label.corr_id),
        caller,
        &questions,
        &report,
        started,
        ssbtek::AuditResult::Answered,
    )
    .await;
    drop(questions);
    tracing::info!(
        tx = %label.tx_id,
        persons = answers.len(),
        calls = ?report.calls.iter().map(|(s, o)| format!("{}={o}", s.as_str())).collect::<Vec<_>>(),
        "fan-out done"
    );
    let parts = answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| DataPart {
            headers: PartHeaders {
                mime_type: "text/xml".into(),
                charset: Some("UTF-8".into()),
                transfer_encoding: TransferEncoding::Binary,
                filename: Some(format!("svar-{}.xml", i + 1)),
            },
            datapart_type: "xml".into(),
            body: Bytes::from_owner(a.xml),
        })
        .collect();
    Ok(ShsMessage {
        label: label.synch_reply(relay_shs::label::now()),
        parts,
    })
}

/// ELT over SHS: one data part with the report and two signature parts
/// (`application/pkcs7-signature`, datapartType `assistent-signatur` and
/// `anordnare-signatur`; untyped signature parts are taken in that order). The
/// reply's one data part is the mottagningsbekräftelse.
async fn elt_reply(
    relay: &Relay,
    caller: &Organisationsnummer,
    fingerprint: Option<&str>,
    mut message: ShsMessage,
) -> Result<ShsMessage, Refusal> {
    let label = message.label.clone();
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
        der.map(|der| crate::products::elt::Signature {
            // A part may carry the DER, or PEM or base64 text of it.
            der: relay_elt::signature::der_of(&der).into_owned(),
            date: None,
            ocsp: None,
        })
    };
    let submission = crate::products::elt::Submission {
        report,
        reports_in_call,
        assistant_signature: signature(assistant),
        anordnare_signature: signature(anordnare),
        status: Some(match label.status {
            relay_shs::label::Status::Test => crate::config::Environment::Test,
            relay_shs::label::Status::Production => crate::config::Environment::Production,
        }),
    };
    let receipt = crate::products::elt::submit(
        relay,
        crate::products::elt::Caller {
            org: caller,
            fingerprint,
        },
        relay_audit::Channel::Shs,
        &label.tx_id,
        submission,
    )
    .await
    .map_err(|r| {
        (
            r.shs_error().with_retry_after(r.retry_after_s()),
            Some(label.clone()),
        )
    })?;
    Ok(ShsMessage {
        label: label.synch_reply(relay_shs::label::now()),
        parts: vec![DataPart {
            headers: PartHeaders {
                mime_type: "text/xml".into(),
                charset: Some("UTF-8".into()),
                transfer_encoding: TransferEncoding::Binary,
                filename: Some("mottagningsbekraftelse.xml".into()),
            },
            datapart_type: relay_elt::DATAPART_RECEIPT.into(),
            body: Bytes::from(receipt.to_xml()),
        }],
    })
}

/// HTTP 200 with the reply message (`message/rfc822`). The bytes are wiped when
/// the response body is dropped.
async fn reply_response(reply: ShsMessage) -> Response {
    let bytes = Zeroizing::new(reply.to_bytes().await);
    drop(reply);
    let mut response = Response::new(Body::from(Bytes::from_owner(bytes)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    response
}
