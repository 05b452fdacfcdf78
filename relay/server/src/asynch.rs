//! Asynchronous SHS: store-and-fetch on the durable, encrypted mailbox
//! (`relay-mailbox`).
//!
//! - `POST /shs/rs` with `transfer-type="asynch"`: the message is stored (synced)
//!   before **202** answers with the `X-shs-*` headers; a duplicate tx.id answers
//!   202 with `X-shs-duplicatemsg: yes` and the original arrival date.
//! - Processing after acceptance: a message to the relay's own node for SSBTEK is
//!   answered by the same fan-out, the reply (new tx.id, corr.id kept) put in the
//!   sender's outbox; a message to another organisation with an agreement is
//!   delivered to its outbox; any failure puts an SHS `error` message in the
//!   sender's outbox. Accepted but unprocessed messages resume after a restart.
//! - The delivery service `GET/POST /shs/ds/...`: list, fetch, ack (with a
//!   `confirm` to the original sender). An outbox is readable only by the
//!   organisation whose certificate owns it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use relay_ident::Organisationsnummer;
use relay_mailbox::{MailboxStore, MessageLabel, MessageState, Outbox, PutOutcome, RedbStore};
use relay_shs::{AdmKind, ErrorCode, Label, ShsError, ShsMessage, TransferType};
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use crate::Relay;
use crate::config::ProductName;
use crate::identity::{self, PeerCert};
use crate::metrics::METRICS;

/// The SHS datetime format for `X-shs-arrivaldate`.
const SHS_DATETIME: &str = "%Y-%m-%dT%H:%M:%S";

fn mailbox_label(label: &Label, to: &str) -> Result<MessageLabel, ShsError> {
    let outbox = Outbox::parse(to).map_err(|_| ShsError::from(ErrorCode::UnresolvedReceiver))?;
    let mut m = MessageLabel::new(label.tx_id.clone(), outbox, label.product.value.clone());
    m.corr_id = label.corr_id.clone();
    m.content_id = label.content.content_id.clone();
    m.from = label.from.as_ref().map(|f| f.value.clone());
    m.originator = label.originator.as_ref().map(|o| o.value.clone());
    m.end_recipient = label.end_recipient.as_ref().map(|e| e.value.clone());
    m.sequence_type = match label.sequence_type {
        Some(relay_shs::SequenceType::Request) => relay_mailbox::SequenceType::Request,
        Some(relay_shs::SequenceType::Reply) => relay_mailbox::SequenceType::Reply,
        Some(relay_shs::SequenceType::Adm) => relay_mailbox::SequenceType::Adm,
        _ => relay_mailbox::SequenceType::Event,
    };
    m.status = match label.status {
        relay_shs::Status::Test => relay_mailbox::Status::Test,
        relay_shs::Status::Production => relay_mailbox::Status::Production,
    };
    m.subject = label.subject.clone();
    m.meta = label
        .meta
        .iter()
        .map(|x| (x.name.clone(), x.value.clone()))
        .collect();
    m.data_parts = label
        .data()
        .iter()
        .map(|d| relay_mailbox::DataPart {
            datapart_type: d.datapart_type.clone(),
            filename: d.filename.clone(),
            no_of_bytes: d.no_of_bytes,
        })
        .collect();
    m.datetime = chrono::NaiveDateTime::parse_from_str(&label.datetime, SHS_DATETIME).ok();
    Ok(m)
}

/// Fails the read once more than `max` bytes came (a message over the limit).
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Capped<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            let n = (buf.filled().len() - before) as u64;
            if n > self.left {
                return std::task::Poll::Ready(Err(std::io::Error::other(
                    "message over the size limit",
                )));
            }
            self.left -= n;
        }
        poll
    }
}

/// Passes a body through and hands a copy of every chunk to a checker (a
/// bounded channel: the body is read no faster than the checker keeps up, so
/// nothing piles up in memory). When the checker has stopped, copying stops.
struct Tee<R> {
    inner: R,
    copy: Option<tokio_util::sync::PollSender<bytes::Bytes>>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Tee<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        if let Some(tx) = self.copy.as_mut() {
            match tx.poll_reserve(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => self.copy = None,
                Poll::Ready(Ok(())) => {}
            }
        }
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(())) => {
                let data = &buf.filled()[before..];
                if data.is_empty() {
                    // End of the body: the checker sees its end too.
                    self.copy = None;
                } else if let Some(tx) = self.copy.as_mut()
                    && tx.send_item(bytes::Bytes::copy_from_slice(data)).is_err()
                {
                    self.copy = None;
                }
            }
            Poll::Ready(Err(_)) => self.copy = None,
            Poll::Pending => {}
        }
        poll
    }
}

/// Reads a whole SHS message's MIME structure from `chunks` (label, every data
/// part the label lists, the closing delimiter), discarding the content.
async fn check_structure(
    chunks: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    content_type: Option<String>,
    limits: relay_shs::Limits,
) -> Result<(), ShsError> {
    let stream = Box::pin(futures::stream::unfold(chunks, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    }));
    let reader = tokio_util::io::StreamReader::new(stream);
    let (mut message, _) =
        relay_shs::MessageReader::open(reader, content_type.as_deref(), limits).await?;
    while message.next_part().await?.is_some() {
        while message.read_chunk().await?.is_some() {}
    }
    Ok(())
}

/// `POST /shs/rs` for an asynchronous message to another organisation, streamed
/// into the mailbox (the label was read from the first 4 KiB; the body is never
/// held in memory). Its MIME structure is checked on the way through, and a
/// broken message is refused (and not kept) instead of answered 202.
pub async fn accept_stream(
    relay: Arc<Relay>,
    caller: Organisationsnummer,
    label: Label,
    content_type: Option<String>,
    body: impl tokio::io::AsyncRead + Send + Unpin,
) -> Result<Response, (ShsError, Option<Label>)> {
    let fail = |e: ShsError| (e, Some(label.clone()));
    label.validate().map_err(fail)?;
    let Some(store) = relay.mailbox.clone() else {
        return Err(fail(ShsError::from(ErrorCode::MissingDeliveryExecution)));
    };
    match label.from_address() {
        Some(from) if from.org_number() == caller.as_str() => {}
        _ => {
            return Err(fail(ShsError::new(
                ErrorCode::IllegalSender,
                "from does not match the client certificate's organisation",
            )));
        }
    }
    let to = label
        .to_address()
        .ok_or_else(|| fail(ShsError::from(ErrorCode::UnresolvedReceiver)))?;
    let stored = mailbox_label(&label, to.as_str()).map_err(fail)?;
    let max = relay
        .live()
        .config
        .mailbox
        .as_ref()
        .map_or(u64::MAX, |m| m.max_message_bytes);
    let timeout = Duration::from_secs(
        relay
            .live()
            .config
            .mailbox
            .as_ref()
            .map_or(600, |m| m.receive_timeout_s),
    );
    let (copies, chunks) = tokio::sync::mpsc::channel(8);
    let limits = relay_shs::Limits {
        max_label_bytes: relay.live().config.limits.max_label_bytes,
        max_total_bytes: max,
        max_part_bytes: max,
        ..relay_shs::Limits::default()
    };
    let checker = tokio::spawn(check_structure(chunks, content_type, limits));
    let capped = Tee {
        inner: Capped {
            inner: body,
            left: max,
        },
        copy: Some(tokio_util::sync::PollSender::new(copies)),
    };
    let tx = stored.tx_id.clone();
    let put = tokio::time::timeout(timeout, store.put(stored, capped)).await;
    let structure = match checker.await {
        Ok(r) => r,
        Err(_) => Err(ShsError::structure("the message could not be checked")),
    };
    let outcome = match put {
        Err(_) => return Err(fail(ShsError::structure("timed out receiving the message"))),
        Ok(Err(e)) => {
            return Err(fail(ShsError::structure(format!(
                "the message could not be received whole (limit {max} bytes): {e}"
            ))));
        }
        Ok(Ok(o)) => o,
    };
    // A duplicate is not read on (the original was checked when it came).
    if let (PutOutcome::Stored { .. }, Err(e)) = (&outcome, structure) {
        if store
            .delete(&tx, relay_mailbox::DeletionReason::Rejected)
            .await
            .is_ok()
        {
            deleted(&relay, &tx, "rejected").await;
        }
        return Err(fail(e));
    }
    let response = accepted(&relay, &label, outcome);
    if let PutOutcome::Stored { .. } = outcome {
        let relay = relay.clone();
        tokio::spawn(async move { process_label(&relay, &store, label).await });
    }
    Ok(response)
}

/// A deletion: counted in metrics, logged as an event, and written to the audit
/// trail (tx.id and reason; never content).
async fn deleted(relay: &Relay, tx_id: &str, reason: &'static str) {
    METRICS.deletion(tx_id, reason);
    if let Some((log, _)) = &relay.audit {
        let record = relay_audit::DeletionRecord {
            time: chrono::Utc::now(),
            tx_id: tx_id.to_owned(),
            reason: reason.to_owned(),
        };
        if let Err(e) = log.record(record).await {
            tracing::error!(tx = tx_id, error = %e, "deletion could not be audited");
        }
    }
}

/// Routes a streamed (not node-addressed) message by its label.
async fn process_label(relay: &Relay, store: &RedbStore, label: Label) {
    let tx = label.tx_id.clone();
    let result = deliver_direct(relay, store, &label).await;
    if let Err(e) = result {
        refused_after_acceptance(relay, store, &label, &tx, e).await;
    }
}

/// Stores a complete message (the bytes as they go to the recipient) in `to`'s
/// outbox and makes it listable.
async fn deliver(store: &RedbStore, message: &ShsMessage) -> Result<(), ShsError> {
    let to = message
        .label
        .to
        .as_ref()
        .map(|t| t.value.clone())
        .ok_or_else(|| ShsError::from(ErrorCode::UnresolvedReceiver))?;
    let label = mailbox_label(&message.label, &to)?;
    let bytes = Zeroizing::new(message.to_bytes().await);
    let failed = |e: relay_mailbox::MailboxError| {
        ShsError::new(ErrorCode::OtherError, format!("mailbox: {e}"))
    };
    store.put(label, bytes.as_slice()).await.map_err(failed)?;
    store
        .mark_processed(&message.label.tx_id, MessageState::Received)
        .await
        .map_err(failed)
}

/// `POST /shs/rs` for `transfer-type="asynch"`: store durably, answer 202, process.
pub async fn accept(
    relay: Arc<Relay>,
    caller: Organisationsnummer,
    message: ShsMessage,
    raw: Zeroizing<Vec<u8>>,
) -> Result<Response, (ShsError, Option<Label>)> {
    let label = message.label.clone();
    let fail = |e: ShsError| (e, Some(label.clone()));
    let Some(store) = relay.mailbox.clone() else {
        return Err(fail(ShsError::new(
            ErrorCode::MissingDeliveryExecution,
            "asynchronous transfer is not configured on this node",
        )));
    };
    match label.from_address() {
        Some(from) if from.org_number() == caller.as_str() => {}
        _ => {
            return Err(fail(ShsError::new(
                ErrorCode::IllegalSender,
                "from does not match the client certificate's organisation",
            )));
        }
    }
    let to = label.to_address().ok_or_else(|| {
        fail(ShsError::new(
            ErrorCode::UnresolvedReceiver,
            "product addressing is not offered: give to",
        ))
    })?;
    // The accepted message waits in the recipient's outbox (for the relay's own
    // node: the node's outbox, which only the relay reads).
    let stored = mailbox_label(&label, to.as_str()).map_err(fail)?;
    let outcome = store.put(stored, raw.as_slice()).await.map_err(|e| {
        fail(ShsError::new(
            ErrorCode::OtherError,
            format!("mailbox: {e}"),
        ))
    })?;
    let response = accepted(&relay, &label, outcome);
    if let PutOutcome::Stored { .. } = outcome {
        let relay = relay.clone();
        tokio::spawn(async move { process(&relay, &store, message).await });
    }
    Ok(response)
}

/// The 202 answer with the `X-shs-*` headers.
fn accepted(relay: &Relay, label: &Label, outcome: PutOutcome) -> Response {
    let mut response = (StatusCode::ACCEPTED, label.tx_id.clone()).into_response();
    let h = response.headers_mut();
    let set = |h: &mut http::HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    set(h, "X-shs-txid", &label.tx_id);
    set(h, "X-shs-corrid", &label.corr_id);
    set(h, "X-shs-contentid", &label.content.content_id);
    set(h, "X-shs-nodeid", &relay.live().config.node.id);
    match outcome {
        PutOutcome::Duplicate { original_arrival } => {
            set(h, "X-shs-duplicatemsg", "yes");
            set(h, "X-shs-arrivaldate", &local(original_arrival));
        }
        PutOutcome::Stored { local_id, arrival } => {
            set(h, "X-shs-duplicatemsg", "no");
            set(h, "X-shs-localid", &local_id.to_string());
            set(h, "X-shs-arrivaldate", &local(arrival));
        }
    }
    response
}

fn local(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format(SHS_DATETIME)
        .to_string()
}

/// Routes an accepted message; on failure, an `error` adm message goes to the sender.
async fn process(relay: &Relay, store: &RedbStore, message: ShsMessage) {
    let label = message.label.clone();
    let tx = label.tx_id.clone();
    if let Err(e) = route(relay, store, message).await {
        refused_after_acceptance(relay, store, &label, &tx, e).await;
    }
}

/// Deletes a message refused after its 202 and tells the sender with an `error`
/// adm message (none for adm messages themselves).
async fn refused_after_acceptance(
    relay: &Relay,
    store: &RedbStore,
    label: &Label,
    tx: &str,
    e: ShsError,
) {
    tracing::info!(tx = %tx, errorcode = e.code.as_str(), "asynchronous message refused after acceptance");
    METRICS.rejection("shs_rs_asynch", e.code.as_str());
    if store
        .delete(tx, relay_mailbox::DeletionReason::Rejected)
        .await
        .is_ok()
    {
        deleted(relay, tx, "rejected").await;
    }
    if label.sequence_type != Some(relay_shs::SequenceType::Adm) {
        let error = relay_shs::adm_message(label, AdmKind::Error, Some(&e));
        if let Err(e) = deliver(store, &error).await {
            tracing::warn!(tx = %tx, error = %e, "could not deliver the error message");
        }
    }
}

async fn route(relay: &Relay, store: &RedbStore, message: ShsMessage) -> Result<(), ShsError> {
    let label = &message.label;
    let to = label
        .to_address()
        .ok_or_else(|| ShsError::from(ErrorCode::UnresolvedReceiver))?;
    let from = label
        .from_address()
        .and_then(|f| Organisationsnummer::parse(f.org_number()).ok())
        .ok_or_else(|| ShsError::from(ErrorCode::IllegalSender))?;
    if to.org_number() == relay.live().config.node.org.as_str()
        && label.sequence_type != Some(relay_shs::SequenceType::Adm)
    {
        let product = label
            .product_id()
            .and_then(|p| p.as_uuid())
            .and_then(|u| relay.live().config.products.name_of(&u))
            .ok_or_else(|| ShsError::from(ErrorCode::UnknownProductType))?;
        crate::policy::check_agreement(&relay.live().config, &from, product)
            .map_err(|r| ShsError::new(ErrorCode::MissingAgreement, r.to_string()))?;
        if product != ProductName::Ssbtek {
            return Err(ShsError::new(
                ErrorCode::MissingDeliveryExecution,
                "only SSBTEK is answered asynchronously by this node",
            ));
        }
        let mut synch = message.clone();
        synch.label.transfer_type = TransferType::Synch;
        let mut reply = crate::rs::ssbtek_reply(relay, &from, synch)
            .await
            .map_err(|(e, _)| e)?;
        // The reply travels asynchronously: a new tx.id, corr.id kept.
        reply.label.transfer_type = TransferType::Asynch;
        reply.label.tx_id = uuid::Uuid::new_v4().to_string();
        deliver(store, &reply).await?;
        // The question is answered: its data goes at once.
        if store
            .delete(&label.tx_id, relay_mailbox::DeletionReason::Acknowledged)
            .await
            .is_ok()
        {
            deleted(relay, &label.tx_id, "answered").await;
        }
        return Ok(());
    }
    deliver_direct(relay, store, label).await
}

/// Direct addressing: the recipient must be a connected organisation; then the
/// stored message becomes listable in its outbox. confirm/error messages need
/// no agreement and are delivered as they are.
async fn deliver_direct(relay: &Relay, store: &RedbStore, label: &Label) -> Result<(), ShsError> {
    if label.sequence_type == Some(relay_shs::SequenceType::Adm) {
        return store
            .mark_processed(&label.tx_id, MessageState::Received)
            .await
            .map_err(|e| ShsError::new(ErrorCode::OtherError, format!("mailbox: {e}")));
    }
    let to = label
        .to_address()
        .ok_or_else(|| ShsError::from(ErrorCode::UnresolvedReceiver))?;
    let recipient = Organisationsnummer::parse(to.org_number())
        .map_err(|_| ShsError::from(ErrorCode::UnknownReceiver))?;
    if relay.live().config.agreement(&recipient).is_none() {
        return Err(ShsError::new(
            ErrorCode::MissingAgreement,
            "the receiver has no agreement with this node",
        ));
    }
    store
        .mark_processed(&label.tx_id, MessageState::Received)
        .await
        .map_err(|e| ShsError::new(ErrorCode::OtherError, format!("mailbox: {e}")))
}

/// Resumes messages accepted before a restart but not yet processed.
pub async fn resume(relay: Arc<Relay>) {
    let Some(store) = relay.mailbox.clone() else {
        return;
    };
    let pending = match store.pending_processing().await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot list pending messages");
            return;
        }
    };
    for meta in pending {
        let tx = meta.label.tx_id.clone();
        // Read the stored message back through the node's own outbox.
        if store
            .mark_processed(&tx, MessageState::Received)
            .await
            .is_err()
        {
            continue;
        }
        let Ok(mut handle) = store.fetch(&meta.label.to, &tx).await else {
            continue;
        };
        let mut bytes = Zeroizing::new(Vec::new());
        if let Some(body) = handle.body() {
            let _ = body.read_to_end(&mut bytes).await;
        }
        let _ = handle.complete().await;
        let Ok(message) = ShsMessage::parse(&bytes, None, relay_shs::Limits::default()).await
        else {
            let _ = store
                .delete(&tx, relay_mailbox::DeletionReason::Rejected)
                .await;
            continue;
        };
        if message
            .label
            .to_address()
            .map(|t| t.org_number().to_owned())
            == Some(relay.live().config.node.org.as_str().to_owned())
        {
            process(&relay, &store, message).await;
        } else {
            // Delivered messages only needed to become listable again.
            let _ = store.set_state(&tx, MessageState::Received).await;
        }
        tracing::info!(tx = %tx, "resumed an accepted message after restart");
    }
}

/// Deletes expired messages and releases stale fetch locks, forever.
pub async fn housekeeping(relay: Arc<Relay>) {
    let Some(store) = relay.mailbox.clone() else {
        return;
    };
    let every = Duration::from_secs(
        relay
            .live()
            .config
            .mailbox
            .as_ref()
            .map_or(60, |m| m.sweep_interval_s),
    );
    let stale = Duration::from_secs(
        60 * relay
            .live()
            .config
            .mailbox
            .as_ref()
            .map_or(60, |m| m.stale_fetch_minutes),
    );
    loop {
        tokio::time::sleep(every).await;
        match store.sweep(chrono::Utc::now()).await {
            Ok(expired) => {
                for d in expired {
                    deleted(&relay, &d.tx_id, d.reason.as_str()).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "sweep failed"),
        }
        let _ = store.release_stale_fetches(stale).await;
        if let Ok(stats) = store.stats().await {
            METRICS.mailbox_messages.set(stats.messages as i64);
            METRICS.mailbox_bytes.set(stats.bytes as i64);
            let age = stats
                .oldest_arrival
                .map_or(0, |t| (chrono::Utc::now() - t).num_seconds().max(0));
            METRICS.mailbox_oldest_age_seconds.set(age);
        }
    }
}

/// A delivery-service refusal: status and plain-text reason.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// The store and the caller's outbox; 403 when the certificate does not own it,
/// 404 when the node has no delivery service.
fn open_outbox(
    relay: &Relay,
    peer: Option<&PeerCert>,
    outbox: &str,
) -> Result<(Arc<RedbStore>, Outbox), Refused> {
    let store = relay.mailbox.clone().ok_or_else(|| {
        Refused(
            StatusCode::NOT_FOUND,
            "the delivery service is not configured on this node\n".into(),
        )
    })?;
    let caller =
        identity::organisation_of(&relay.live().config.identity, peer.map(|p| p.0.as_slice()))
            .map_err(|e| Refused(StatusCode::FORBIDDEN, format!("{e}\n")))?;
    let outbox = Outbox::parse(outbox)
        .map_err(|_| Refused(StatusCode::BAD_REQUEST, "outbox missing\n".into()))?;
    if outbox.org_number() != caller.as_str() {
        return Err(Refused(
            StatusCode::FORBIDDEN,
            "this outbox belongs to another organisation\n".into(),
        ));
    }
    Ok((store, outbox))
}

/// `GET /shs/ds/{outbox}`: the message list.
pub async fn list(
    State(relay): State<Arc<Relay>>,
    peer: Option<axum::Extension<PeerCert>>,
    Path(outbox): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let (store, outbox) = match open_outbox(&relay, peer.as_deref(), &outbox) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    list_with(&store, &outbox, &query).await
}

async fn list_with(store: &RedbStore, outbox: &Outbox, query: &[(String, String)]) -> Response {
    let filter = match relay_mailbox::ListFilter::from_query_in(query, &chrono::Local) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let metas = match store.list(outbox, &filter).await {
        Ok(m) => m,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("mailbox: {e}\n")).into_response();
        }
    };
    let list = relay_shs::MessageList {
        messages: metas
            .into_iter()
            .map(|m| {
                let l = m.label;
                relay_shs::ListedMessage {
                    tx_id: l.tx_id,
                    timestamp: l
                        .datetime
                        .map(|d| d.format(SHS_DATETIME).to_string())
                        .unwrap_or_default(),
                    corr_id: Some(l.corr_id),
                    content_id: Some(l.content_id),
                    size: Some(m.body_bytes.to_string()),
                    originator: l.originator,
                    from: l.from,
                    to: Some(l.to.as_str().to_owned()),
                    end_recipient: l.end_recipient,
                    product: Some(l.product),
                    sequence_type: l.sequence_type.as_str().to_owned(),
                    status: match l.status {
                        relay_mailbox::Status::Test => "test".into(),
                        relay_mailbox::Status::Production => "production".into(),
                    },
                    meta: l.meta,
                    subject: l.subject,
                    data: l
                        .data_parts
                        .into_iter()
                        .map(|d| relay_shs::DataRef {
                            datapart_type: d.datapart_type,
                            filename: d.filename,
                            no_of_bytes: d.no_of_bytes,
                            no_of_records: None,
                        })
                        .collect(),
                }
            })
            .collect(),
    };
    let mut r = Response::new(Body::from(list.to_xml()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=ISO-8859-1"),
    );
    r
}

/// `GET /shs/ds/{outbox}/{txId}` (fetch) or `/{outbox}/{product}` (list by product).
pub async fn fetch(
    State(relay): State<Arc<Relay>>,
    peer: Option<axum::Extension<PeerCert>>,
    Path((outbox, second)): Path<(String, String)>,
    Query(mut query): Query<Vec<(String, String)>>,
) -> Response {
    let started = Instant::now();
    let (store, outbox) = match open_outbox(&relay, peer.as_deref(), &outbox) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    if uuid::Uuid::parse_str(&second).is_err() {
        query.push(("producttype".into(), second));
        return list_with(&store, &outbox, &query).await;
    }
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            format!("Message entry not found in message log: {second}\n"),
        )
            .into_response()
    };
    let Ok(mut handle) = store.fetch(&outbox, &second).await else {
        return not_found();
    };
    let Some(body) = handle.take_body() else {
        return not_found();
    };
    METRICS.request("shs_ds_fetch", "fetched", started.elapsed());
    // Stream the decrypted body; when it has been read to its end, the message
    // becomes Fetched. A client that goes away leaves it listed again.
    let stream =
        futures::stream::unfold((body, Some(handle)), |(mut body, mut handle)| async move {
            use futures::StreamExt;
            match body.next().await {
                Some(chunk) => Some((chunk, (body, handle))),
                None => {
                    if let Some(h) = handle.take() {
                        let _ = h.complete().await;
                    }
                    None
                }
            }
        });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    r
}

/// `POST /shs/ds/{outbox}/{txId}?action=ack`.
pub async fn ack(
    State(relay): State<Arc<Relay>>,
    peer: Option<axum::Extension<PeerCert>>,
    Path((outbox, tx)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let (store, outbox) = match open_outbox(&relay, peer.as_deref(), &outbox) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    if !query.iter().any(|(k, v)| k == "action" && v == "ack") {
        return (StatusCode::BAD_REQUEST, "unknown action; use ?action=ack\n").into_response();
    }
    let outcome = match store.ack(&outbox, &tx).await {
        Ok(o) => o,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                format!("Message entry not found in message log: {tx}\n"),
            )
                .into_response();
        }
    };
    if let Some(d) = &outcome.deletion {
        deleted(&relay, &d.tx_id, d.reason.as_str()).await;
    }
    if outcome.send_confirm
        && let Some(from) = outcome.meta.label.from.clone()
    {
        let l = &outcome.meta.label;
        let mut original = Label::new(
            &from,
            Some(l.to.as_str()),
            relay_shs::ProductId::parse(&l.product).unwrap_or(relay_shs::ProductId::Confirm),
            relay_shs::SequenceType::Request,
            TransferType::Asynch,
        );
        original.tx_id = l.tx_id.clone();
        original.corr_id = l.corr_id.clone();
        original.content.content_id = l.content_id.clone();
        original.originator = l.originator.clone().map(|v| relay_shs::Originator {
            value: v,
            ..Default::default()
        });
        original.end_recipient = l.end_recipient.clone().map(|v| relay_shs::EndRecipient {
            value: v,
            ..Default::default()
        });
        let confirm = relay_shs::adm_message(&original, AdmKind::Confirm, None);
        if let Err(e) = deliver(&store, &confirm).await {
            tracing::warn!(tx = %tx, error = %e, "could not deliver the confirm message");
        }
    }
    (StatusCode::OK, "OK").into_response()
}
