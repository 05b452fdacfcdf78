//! `POST /shs/rs`: the SHS receive service, the SHS dialect of the request path.
//!
//! The path is straight: admitted (by [`crate::admission`]: caller identified, an
//! in-flight permit from its share) → the label, read as the first MIME part by
//! the real MIME reader within `limits.label_timeout_ms` ([`open_label`]) → the
//! label checked against the caller and the node ([`check_label`]) → an
//! asynchronous message to another organisation streams into the mailbox
//! ([`crate::asynch`]); everything else is read whole (size limit, read
//! timeout), parsed, and its label must equal the one read first → the product
//! entry point ([`crate::products`], which runs the policy gate) → the reply
//! message. Refusals are [`Failure`]s, rendered as SHS errors (`X-shs-errorcode`)
//! by [`crate::admission::refuse`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use relay_ident::Organisationsnummer;
use relay_shs::{
    DataPart, ErrorCode, Label, PartHeaders, ShsError, ShsMessage, TransferEncoding, TransferType,
};
use relay_ssbtek::CombinedAnswer;
use zeroize::Zeroizing;

use crate::Relay;
use crate::admission::{self, Admitted, Caller, Shs};
use crate::config::ProductName;
use crate::failure::{Code, Failure};
use crate::products::{elt, ping, ssbtek};

/// `POST /shs/rs`.
pub async fn receive(
    State(relay): State<Arc<Relay>>,
    admitted: Admitted<Shs>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = &admitted.caller;
    match receive_message(&relay, caller, &headers, body).await {
        Ok((response, outcome)) => {
            relay
                .metrics
                .request("shs_rs", outcome, admitted.started.elapsed());
            response
        }
        Err(failure) => {
            admission::refuse::<Shs>(&relay, Some(caller), &failure, admitted.started).await
        }
    }
}

async fn receive_message(
    relay: &Arc<Relay>,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Response, &'static str), Failure> {
    let content_type = multipart_type(headers);
    let opened = open_label(relay, content_type.as_deref(), body).await?;
    let label = opened.label.clone();
    let about = |f: Failure| f.about(&label);
    let to = check_label(relay, caller, &label).map_err(about)?;
    let asynch = label.transfer_type == TransferType::Asynch;
    if asynch && relay.mailbox.is_none() {
        return Err(about(Failure::caller(
            Code::Shs(ErrorCode::MissingDeliveryExecution),
            "asynchronous transfer is not configured on this node",
        )));
    }
    if asynch && !to.is_node {
        // Streamed into the mailbox: never held in memory.
        let reader = opened.into_reader();
        let response = crate::asynch::accept_stream(
            relay.clone(),
            caller,
            label.clone(),
            to,
            content_type,
            reader,
        )
        .await
        .map_err(about)?;
        return Ok((response, "accepted"));
    }
    let bytes = read_body(relay, headers, opened.into_reader())
        .await
        .map_err(|e| about(e.into()))?;
    let limits = shs_limits(relay, relay.live().config.limits.max_request_bytes);
    let message = ShsMessage::parse(&bytes, content_type.as_deref(), limits)
        .await
        .map_err(|e| about(e.into()))?;
    same_label(&label, &message.label).map_err(about)?;
    if asynch {
        let response = crate::asynch::accept(relay.clone(), caller, message, bytes)
            .await
            .map_err(about)?;
        return Ok((response, "accepted"));
    }
    drop(bytes);
    let (reply, product) = answer(relay, caller, message).await.map_err(about)?;
    tracing::info!(
        route = "shs/rs",
        tx = %reply.label.tx_id,
        caller = %caller.org,
        product = product.as_str(),
        outcome = "answered",
        "request answered"
    );
    Ok((reply_response(reply).await, "answered"))
}

/// Where a label's `to` points, normalised to the 10-digit organisation number
/// (`16NNNNNNNNNN` and `NNNNNN-NNNN` address the same outbox as `NNNNNNNNNN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub org: Organisationsnummer,
    /// The address as a mailbox key: the organisation number, and `.internal`
    /// when the address names a unit within it.
    pub outbox: String,
    /// Whether it is this relay's own node (which answers the product itself).
    pub is_node: bool,
}

/// The label rules of this node, for synchronous and asynchronous messages alike:
/// the DTD's rules, a UUID tx.id, `from` = the certificate's organisation, a
/// resolvable `to` (the node itself for a synchronous request).
pub fn check_label(relay: &Relay, caller: &Caller, label: &Label) -> Result<Destination, Failure> {
    label.validate()?;
    tracing::Span::current().record("shs.tx_id", relay_telemetry::tx_attribute(&label.tx_id));
    if uuid::Uuid::parse_str(&label.tx_id).is_err() {
        return Err(ShsError::structure("tx.id must be a UUID").into());
    }
    let from = label
        .from_address()
        .and_then(|f| Organisationsnummer::parse(f.org_number()).ok());
    if from != Some(caller.org) {
        return Err(ShsError::new(
            ErrorCode::IllegalSender,
            "from is required and must be the client certificate's organisation",
        )
        .into());
    }
    let to = label.to_address().ok_or_else(|| {
        ShsError::new(
            ErrorCode::UnresolvedReceiver,
            "to is required: product addressing is not offered",
        )
    })?;
    let org = Organisationsnummer::parse(to.org_number()).map_err(|_| {
        ShsError::new(
            ErrorCode::UnknownReceiver,
            "to is not an organisation number",
        )
    })?;
    let is_node = org == relay.live().config.node.org;
    if label.transfer_type == TransferType::Synch && !is_node {
        return Err(ShsError::new(
            ErrorCode::UnknownReceiver,
            "to must be this node's organisation",
        )
        .into());
    }
    let outbox = match to.internal_id() {
        Some(unit) if !unit.is_empty() => format!("{org}.{unit}"),
        _ => org.to_string(),
    };
    Ok(Destination {
        org,
        outbox,
        is_node,
    })
}

/// The label read first (to route the message) and the label of the full parse
/// must agree, or the message is refused and not kept.
pub fn same_label(first: &Label, full: &Label) -> Result<(), Failure> {
    let key = |l: &Label| {
        (
            l.tx_id.clone(),
            l.corr_id.clone(),
            l.from.as_ref().map(|f| f.value.clone()),
            l.to.as_ref().map(|t| t.value.clone()),
            l.product.value.clone(),
            l.content.content_id.clone(),
            l.transfer_type,
        )
    };
    if key(first) == key(full) {
        Ok(())
    } else {
        Err(ShsError::structure("the message carries more than one SHS label").into())
    }
}

/// The configured product a label names.
pub fn product_of(relay: &Relay, label: &Label) -> Result<ProductName, Failure> {
    label
        .product_id()
        .and_then(|p| p.as_uuid())
        .and_then(|u| relay.live().config.products.name_of(&u))
        .ok_or_else(|| ShsError::from(ErrorCode::UnknownProductType).into())
}

/// A synchronous message to the node: the product's entry point, then the
/// reply message.
async fn answer(
    relay: &Relay,
    caller: &Caller,
    message: ShsMessage,
) -> Result<(ShsMessage, ProductName), Failure> {
    let product = product_of(relay, &message.label)?;
    let label = message.label.clone();
    let reply = match product {
        ProductName::Ping => ping_message(&label, ping::answer(relay, caller)?),
        ProductName::Ssbtek => {
            let call = ssbtek::Call {
                channel: relay_audit::Channel::Shs,
                tx_id: &label.tx_id,
                corr_id: Some(&label.corr_id),
                declaration: true,
            };
            let answers = ssbtek::answer(relay, caller, call, ssbtek_documents(message)).await?;
            ssbtek_message(&label, answers)
        }
        ProductName::Elt => {
            let submission = elt_submission(message);
            let receipt = elt::submit(
                relay,
                caller,
                relay_audit::Channel::Shs,
                &label.tx_id,
                submission,
            )
            .await
            .map_err(|r| Failure::from(r).audited())?;
            receipt_message(&label, &receipt)
        }
    };
    Ok((reply, product))
}

/// The data parts of an SSBTEK message, taken out of it (so they are wiped
/// when the questions have been parsed).
pub fn ssbtek_documents(mut message: ShsMessage) -> ssbtek::Documents {
    ssbtek::Documents::Parts(
        message
            .parts
            .iter_mut()
            .map(|p| Zeroizing::new(std::mem::take(&mut p.body).to_vec()))
            .collect(),
    )
}

fn text_part(
    mime_type: &str,
    datapart_type: &str,
    filename: Option<String>,
    body: Bytes,
) -> DataPart {
    DataPart {
        headers: PartHeaders {
            mime_type: mime_type.into(),
            charset: Some(
                if mime_type == "text/plain" {
                    "ISO-8859-1"
                } else {
                    "UTF-8"
                }
                .into(),
            ),
            transfer_encoding: TransferEncoding::Binary,
            filename,
        },
        datapart_type: datapart_type.into(),
        body,
    }
}

fn ping_message(request: &Label, text: &'static str) -> ShsMessage {
    ShsMessage {
        label: request.synch_reply(relay_shs::label::now()),
        parts: vec![text_part(
            "text/plain",
            "txt",
            None,
            Bytes::from_static(text.as_bytes()),
        )],
    }
}

/// The SSBTEK reply: one `hamtaBastjanstInformationResponse` data part per
/// person, in request order.
pub fn ssbtek_message(request: &Label, answers: Vec<CombinedAnswer>) -> ShsMessage {
    let parts = answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            text_part(
                "text/xml",
                "xml",
                Some(format!("svar-{}.xml", i + 1)),
                Bytes::from_owner(a.xml),
            )
        })
        .collect();
    ShsMessage {
        label: request.synch_reply(relay_shs::label::now()),
        parts,
    }
}

fn receipt_message(request: &Label, receipt: &relay_elt::Receipt) -> ShsMessage {
    ShsMessage {
        label: request.synch_reply(relay_shs::label::now()),
        parts: vec![text_part(
            "text/xml",
            relay_elt::DATAPART_RECEIPT,
            Some("mottagningsbekraftelse.xml".into()),
            Bytes::from(receipt.to_xml()),
        )],
    }
}

/// ELT over SHS: one data part with the report and two signature parts
/// (`application/pkcs7-signature`, datapartType `assistent-signatur` and
/// `anordnare-signatur`; untyped signature parts are taken in that order).
fn elt_submission(mut message: ShsMessage) -> elt::Submission {
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
        der.map(|der| elt::Signature {
            // A part may carry the DER, or PEM or base64 text of it.
            der: relay_elt::signature::der_of(&der).into_owned(),
            date: None,
            ocsp: None,
        })
    };
    elt::Submission {
        report,
        reports_in_call,
        assistant_signature: signature(assistant),
        anordnare_signature: signature(anordnare),
        status: Some(match message.label.status {
            relay_shs::label::Status::Test => crate::config::Environment::Test,
            relay_shs::label::Status::Production => crate::config::Environment::Production,
        }),
    }
}

/// HTTP 200 with the reply message (`message/rfc822`). The bytes are wiped when
/// the response body is dropped.
pub async fn reply_response(reply: ShsMessage) -> Response {
    let bytes = Zeroizing::new(reply.to_bytes().await);
    drop(reply);
    let mut response = Response::new(Body::from(Bytes::from_owner(bytes)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    response
}

/// The HTTP `Content-Type` when it is a bare multipart body (its boundary).
fn multipart_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|ct| ct.to_ascii_lowercase().starts_with("multipart/"))
        .map(str::to_owned)
}

/// The MIME reader's limits for a message of at most `max_total` bytes.
pub fn shs_limits(relay: &Relay, max_total: u64) -> relay_shs::Limits {
    relay_shs::Limits {
        max_label_bytes: relay.live().config.limits.max_label_bytes,
        max_total_bytes: max_total,
        max_part_bytes: max_total,
        ..relay_shs::Limits::default()
    }
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

/// A message whose label has been read: the label, the bytes read so far, and
/// the rest of the body.
pub struct Opened {
    pub label: Label,
    head: Vec<u8>,
    rest: BodyReader,
}

impl Opened {
    /// The whole message again: the bytes read so far, then the rest.
    pub fn into_reader(self) -> tokio::io::Chain<std::io::Cursor<Vec<u8>>, BodyReader> {
        use tokio::io::AsyncReadExt;
        std::io::Cursor::new(self.head).chain(self.rest)
    }
}

/// Reads the message up to the end of its label with the real MIME reader (the
/// label is the first MIME part and nothing else: text before the first
/// boundary is never taken for one), within `limits.label_timeout_ms`. The
/// bytes it read are kept (at most the label limit and one read buffer) so the
/// message can be read again whole or streamed on.
pub async fn open_label(
    relay: &Relay,
    content_type: Option<&str>,
    body: Body,
) -> Result<Opened, Failure> {
    let limits = relay.live().config.limits.clone();
    let cap = limits.max_label_bytes + 256 * 1024;
    let mut recording = Recording {
        inner: body_reader(body),
        head: Vec::new(),
        cap,
    };
    let read = relay_shs::MessageReader::open(
        &mut recording,
        content_type,
        shs_limits(relay, limits.max_request_bytes.max(u64::MAX / 2)),
    );
    let label =
        match tokio::time::timeout(Duration::from_millis(limits.label_timeout_ms), read).await {
            Err(_) => return Err(ShsError::structure("timed out reading the SHS label").into()),
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok((_, label))) => label,
        };
    Ok(Opened {
        label,
        head: recording.head,
        rest: recording.inner,
    })
}

/// Keeps a copy of what is read (up to `cap` bytes; more is an error: the
/// label part is bounded).
struct Recording<R> {
    inner: R,
    head: Vec<u8>,
    cap: usize,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Recording<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            let data = buf.filled().get(before..).unwrap_or_default();
            if self.head.len() + data.len() > self.cap {
                return std::task::Poll::Ready(Err(std::io::Error::other(
                    "the SHS label part is larger than the label limit",
                )));
            }
            let data = data.to_vec();
            self.head.extend_from_slice(&data);
        }
        poll
    }
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
                bytes.extend_from_slice(chunk.get(..n).unwrap_or_default());
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
