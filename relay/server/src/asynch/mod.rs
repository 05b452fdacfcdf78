//! Asynchronous SHS: store-and-fetch on the durable, encrypted mailbox
//! (`relay-mailbox`).
//!
//! # Layout
//!
//! - this module, **accept**: `POST /shs/rs` with `transfer-type="asynch"` (the
//!   way in, [`crate::rs`], has admitted the caller and checked the label once,
//!   [`crate::shs`]): to the node, the product admits the message
//!   ([`crate::products::admit_asynch`]: the gate, the parse); to another
//!   organisation, the policy gate for the message's product (direct delivery:
//!   the sender and the recipient both need it; an `adm` message must refer to
//!   a message between the same parties) and the mailbox quotas; then the
//!   message is stored (synced) before **202** answers with the `X-shs-*`
//!   headers. A message is identified by (sender, tx.id)
//!   (`relay_mailbox::rules`): a repeated (sender, tx.id) answers 202 with
//!   `X-shs-duplicatemsg: yes`; the same tx.id from another organisation is
//!   another message. The store decides both, and the quotas, in the write
//!   that stores the message.
//! - [`stream`]: a message to another organisation streams into the mailbox
//!   through a size cap and a structure checker, whose label must equal the one
//!   the message was routed by.
//! - [`route`]: after the 202: what the product admitted for the relay's own
//!   node is answered ([`crate::products::answer_queued`]), the reply put in
//!   the sender's outbox; a direct message becomes listable in its recipient's
//!   outbox; any failure puts an SHS `error` message in the sender's outbox.
//!   Accepted but unprocessed messages resume after a restart; housekeeping.
//! - [`delivery`]: the delivery service `GET/POST /shs/ds/...`: list, fetch, ack.

pub mod delivery;
pub mod route;
pub mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use relay_ident::Organisationsnummer;
use relay_mailbox::{MailboxStore, MessageLabel, Outbox, OverQuota, PutOutcome, Quota, Which};
use relay_shs::{ErrorCode, Label, SequenceType, ShsError, ShsMessage};
use relay_store::Store;
use zeroize::Zeroizing;

use crate::Relay;
use crate::failure::{By, Code, Failure};
use crate::identity::Caller;
use crate::policy::{self, Ask, Use};
use crate::shs::Destination;

/// The SHS datetime format for `X-shs-arrivaldate`.
pub(crate) const SHS_DATETIME: &str = "%Y-%m-%dT%H:%M:%S";

/// Seconds a caller is asked to wait when the store did not answer in time.
pub(crate) const STORE_RETRY_AFTER_S: u64 = 5;

/// A mailbox failure is the relay's, never the caller's. A store that did not
/// answer within its deadline (busy pool, unreachable database) is a 503 with
/// `Retry-After`: the same request may simply be sent again.
pub(crate) fn mailbox_failed(e: relay_mailbox::MailboxError) -> Failure {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "mailbox store unavailable");
        return Failure::new(
            By::Relay,
            Code::Unavailable,
            "the relay's message store does not answer now; nothing was changed, retry later",
        )
        .with_retry_after(Some(STORE_RETRY_AFTER_S));
    }
    tracing::error!(error = %e, "mailbox failure");
    Failure::relay("the mailbox failed; the message was not accepted, retry later")
}

/// Uploads in progress per sender: an organisation may stream at most
/// `mailbox.max_uploads_per_sender` asynchronous messages at once, so that
/// slow or stalled uploads of one organisation never take the store's
/// capacity from the others.
#[derive(Default)]
pub struct Uploads {
    running: Mutex<HashMap<Organisationsnummer, usize>>,
}

/// One upload's place; freed when dropped.
pub struct UploadSlot<'a> {
    uploads: &'a Uploads,
    org: Organisationsnummer,
}

impl Uploads {
    fn start(&self, org: Organisationsnummer, max: usize) -> Option<UploadSlot<'_>> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let n = running.entry(org).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(UploadSlot { uploads: self, org })
    }
}

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        let mut running = self
            .uploads
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.org) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.org);
            }
        }
    }
}

/// The stored message an SHS label names: its tx.id and its sender (the
/// organisation of `from`), as the store keys it.
pub(crate) fn which(label: &Label) -> Which {
    let sender = label
        .from
        .as_ref()
        .and_then(|f| relay_mailbox::sender_org_of(&f.value))
        .unwrap_or_default();
    Which::exact(label.tx_id.trim(), sender)
}

pub(crate) fn mailbox_label(label: &Label, outbox: &str) -> Result<MessageLabel, ShsError> {
    let outbox =
        Outbox::parse(outbox).map_err(|_| ShsError::from(ErrorCode::UnresolvedReceiver))?;
    let mut m = MessageLabel::new(label.tx_id.clone(), outbox, label.product.value.clone());
    m.corr_id = label.corr_id.clone();
    m.content_id = label.content.content_id.clone();
    m.from = label.from.as_ref().map(|f| f.value.clone());
    m.originator = label.originator.as_ref().map(|o| o.value.clone());
    m.end_recipient = label.end_recipient.as_ref().map(|e| e.value.clone());
    m.sequence_type = match label.sequence_type {
        Some(SequenceType::Request) => relay_mailbox::SequenceType::Request,
        Some(SequenceType::Reply) => relay_mailbox::SequenceType::Reply,
        Some(SequenceType::Adm) => relay_mailbox::SequenceType::Adm,
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

/// What the product of a message means to the gate: one of the relay's own
/// products, or a product it only stores and forwards.
fn use_of(relay: &Relay, label: &Label) -> Result<Use, Failure> {
    let id = label
        .product_id()
        .and_then(|p| p.as_uuid())
        .ok_or_else(|| Failure::from(ShsError::from(ErrorCode::UnknownProductType)))?;
    Ok(match relay.live().config.products.name_of(&id) {
        Some(name) => Use::Product(name),
        None => Use::Direct(id),
    })
}

/// The gate for a message to another organisation: the sender may use the
/// product (or, for `adm`, the delivery service and the message refers to one
/// between the same parties), the recipient holds the product too, and the
/// quotas have room.
async fn admit_direct(
    relay: &Relay,
    store: &Store,
    caller: &Caller,
    label: &Label,
    to: &Destination,
) -> Result<(), Failure> {
    let live = relay.live();
    let config = &live.config;
    if label.sequence_type == Some(SequenceType::Adm) {
        policy::gate(
            &relay.metrics,
            config,
            &relay.operator,
            &Ask::to(caller, Use::Delivery),
        )?;
        if !refers_to_exchange(store, &caller.org, to, &label.corr_id).await? {
            return Err(Failure::caller(
                Code::Shs(ErrorCode::IllegalMessageStructure),
                "an adm message must refer (corr.id) to a message between the same parties",
            ));
        }
    } else {
        let what = use_of(relay, label)?;
        policy::gate(
            &relay.metrics,
            config,
            &relay.operator,
            &Ask::to(caller, what),
        )?;
        policy::recipient(&relay.metrics, config, &to.org, what)?;
    }
    quotas(relay, store, caller, to).await
}

/// Whether a message with this corr.id went between the two organisations (in
/// either direction) and is still known to the mailbox.
async fn refers_to_exchange(
    store: &Store,
    sender: &Organisationsnummer,
    to: &Destination,
    corr_id: &str,
) -> Result<bool, Failure> {
    for (outbox, from) in [(sender.to_string(), to.org), (to.outbox.clone(), *sender)] {
        let Ok(outbox) = Outbox::parse(&outbox) else {
            continue;
        };
        for status in ["production", "test"] {
            let filter = relay_mailbox::ListFilter::from_query_in(
                &[
                    ("corrid".to_owned(), corr_id.to_owned()),
                    ("status".to_owned(), status.to_owned()),
                ],
                &chrono::Local,
            )
            .map_err(|_| Failure::relay("the mailbox filter could not be built"))?;
            let found = store.list(&outbox, &filter).await.map_err(mailbox_failed)?;
            if found.iter().any(|m| {
                m.label
                    .from
                    .as_deref()
                    .and_then(relay_shs::ShsAddress::parse)
                    .and_then(|a| Organisationsnummer::parse(a.org_number()).ok())
                    == Some(from)
            }) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The mailbox quotas of the configuration (none without a `[mailbox]`).
fn quota(relay: &Relay) -> Quota {
    relay
        .live()
        .config
        .mailbox
        .as_ref()
        .map_or(Quota::NONE, |m| Quota {
            max_messages_per_outbox: m.max_messages_per_outbox,
            max_bytes_per_outbox: m.max_bytes_per_outbox,
            max_messages_per_sender: m.max_messages_per_sender,
            max_bytes_per_sender: m.max_bytes_per_sender,
        })
}

/// The caller's refusal for a quota the message would pass.
fn over_quota(quota: Quota, over: OverQuota) -> Failure {
    match over {
        OverQuota::Sender(sent) => Failure::caller(
            Code::Quota,
            format!(
                "this sender has {} messages ({} bytes) waiting to be fetched; at most {} messages and {} bytes (mailbox.max_messages_per_sender, max_bytes_per_sender)",
                sent.messages, sent.bytes, quota.max_messages_per_sender, quota.max_bytes_per_sender
            ),
        ),
        OverQuota::Outbox(_) => Failure::caller(
            Code::Quota,
            format!(
                "the recipient's outbox is full: at most {} messages and {} bytes waiting (mailbox.max_messages_per_outbox, max_bytes_per_outbox); retry later",
                quota.max_messages_per_outbox, quota.max_bytes_per_outbox
            ),
        )
        .with_retry_after(Some(60)),
    }
}

/// The mailbox quotas, read from the store before the body is read, so that
/// a sender over its limit is refused without uploading. Only a fast refusal:
/// the decision that holds is the store's, in the write that stores the
/// message (`put_within`), so uploads at the same time on any node never pass
/// a limit.
async fn quotas(
    relay: &Relay,
    store: &Store,
    caller: &Caller,
    to: &Destination,
) -> Result<(), Failure> {
    let quota = quota(relay);
    if quota.is_none() {
        return Ok(());
    }
    let outbox = Outbox::parse(&to.outbox)
        .map_err(|_| Failure::from(ShsError::from(ErrorCode::UnresolvedReceiver)))?;
    let (held, sent) = store
        .usage(&outbox, caller.org.as_str(), quota.count_limit())
        .await
        .map_err(mailbox_failed)?;
    quota.check(held, sent).map_err(|o| over_quota(quota, o))
}

/// A message to another organisation, streamed into the mailbox (the body is
/// never held in memory). Its MIME structure is checked on the way through and
/// its label must equal the one it was routed by; a broken message is refused
/// (and not kept) instead of answered 202.
pub async fn accept_stream(
    relay: Arc<Relay>,
    caller: &Caller,
    label: Label,
    to: Destination,
    content_type: Option<String>,
    body: impl tokio::io::AsyncRead + Send + Unpin,
) -> Result<Response, Failure> {
    let Some(store) = relay.mailbox.clone() else {
        return Err(Failure::caller(
            Code::Shs(ErrorCode::MissingDeliveryExecution),
            "asynchronous transfer is not configured on this node",
        ));
    };
    let max_uploads = relay
        .live()
        .config
        .mailbox
        .as_ref()
        .map_or(usize::MAX, |m| m.max_uploads_per_sender);
    let Some(_slot) = relay.uploads.start(caller.org, max_uploads) else {
        return Err(Failure::overloaded(
            By::Caller,
            STORE_RETRY_AFTER_S,
            format!(
                "this organisation already sends {max_uploads} asynchronous messages at once (mailbox.max_uploads_per_sender); retry when one has finished"
            ),
        ));
    };
    admit_direct(&relay, &store, caller, &label, &to).await?;
    let stored = mailbox_label(&label, &to.outbox)?;
    let live = relay.live();
    let max = live
        .config
        .mailbox
        .as_ref()
        .map_or(u64::MAX, |m| m.max_message_bytes);
    let timeout = Duration::from_secs(
        live.config
            .mailbox
            .as_ref()
            .map_or(600, |m| m.receive_timeout_s),
    );
    let (copies, chunks) = tokio::sync::mpsc::channel(8);
    let checker = tokio::spawn(stream::check_structure(
        chunks,
        content_type,
        crate::shs::shs_limits(&relay, max),
    ));
    let capped = stream::Tee {
        inner: stream::Capped {
            inner: body,
            left: max,
        },
        copy: Some(tokio_util::sync::PollSender::new(copies)),
    };
    let which = Which::of(&stored);
    let quota = quota(&relay);
    let put = tokio::time::timeout(timeout, store.put_within(stored, capped, quota)).await;
    let structure = match checker.await {
        Ok(Ok(full)) => crate::shs::same_label(&label, &full),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(Failure::relay("the message could not be checked")),
    };
    let outcome = match put {
        Err(_) => {
            return Err(ShsError::structure("timed out receiving the message").into());
        }
        // The body broke off or passed the size cap: the caller's message.
        Ok(Err(e)) if e.is_caller_fault() => {
            return Err(ShsError::structure(format!(
                "the message could not be received whole (limit {max} bytes)"
            ))
            .into());
        }
        Ok(Err(e)) => return Err(mailbox_failed(e)),
        Ok(Ok(o)) => o,
    };
    // A duplicate is not read on (the original was checked when it came).
    if let (PutOutcome::Stored { .. }, Err(e)) = (&outcome, structure) {
        if store
            .delete(which.clone(), relay_mailbox::DeletionReason::Rejected)
            .await
            .is_ok()
        {
            route::deleted(&relay, &which.tx_id, "rejected").await;
        }
        return Err(e);
    }
    let response = accepted(&relay, &label, outcome, quota)?;
    if let PutOutcome::Stored { .. } = outcome {
        let relay = relay.clone();
        tokio::spawn(async move { route::process_direct(&relay, &store, label).await });
    }
    Ok(response)
}

/// A complete asynchronous message (read whole), its label checked by the way
/// in ([`crate::shs::check_label`], where it goes: `to`): to the node for a
/// product it answers asynchronously (SSBTEK), or an `adm` or direct message to
/// another organisation. Admit, store durably, answer 202, process.
pub async fn accept(
    relay: Arc<Relay>,
    caller: &Caller,
    message: ShsMessage,
    raw: Zeroizing<Vec<u8>>,
    to: Destination,
) -> Result<Response, Failure> {
    let label = message.label.clone();
    let Some(store) = relay.mailbox.clone() else {
        return Err(Failure::caller(
            Code::Shs(ErrorCode::MissingDeliveryExecution),
            "asynchronous transfer is not configured on this node",
        ));
    };
    let queued = if to.is_node {
        // The node answers the product itself: the product admits the message
        // now (the gate, the parse), so a refused caller gets its SHS error
        // instead of a 202, and answers what it admitted after the 202.
        let queued = crate::products::admit_asynch(&relay, caller, message).await?;
        Some(queued)
    } else {
        admit_direct(&relay, &store, caller, &label, &to).await?;
        None
    };
    // The accepted message waits in the recipient's outbox (for the relay's own
    // node: the node's outbox, which only the relay reads; no quota there).
    let stored = mailbox_label(&label, &to.outbox)?;
    let quota = if to.is_node {
        Quota::NONE
    } else {
        quota(&relay)
    };
    let outcome = store
        .put_within(stored, raw.as_slice(), quota)
        .await
        .map_err(mailbox_failed)?;
    let response = accepted(&relay, &label, outcome, quota)?;
    if let PutOutcome::Stored { .. } = outcome {
        let relay = relay.clone();
        match queued {
            Some(queued) => {
                let caller = caller.clone();
                tokio::spawn(
                    async move { route::answer(&relay, &store, &caller, label, queued).await },
                );
            }
            None => {
                tokio::spawn(async move { route::process_direct(&relay, &store, label).await });
            }
        }
    }
    Ok(response)
}

/// The 202 answer with the `X-shs-*` headers; the quota refusal when the store
/// refused the message for a quota.
fn accepted(
    relay: &Relay,
    label: &Label,
    outcome: PutOutcome,
    quota: Quota,
) -> Result<Response, Failure> {
    if let PutOutcome::OverQuota(over) = outcome {
        return Err(over_quota(quota, over));
    }
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
        PutOutcome::OverQuota(_) => {}
    }
    // Counted once, by the way in (`rs.rs`), with its duration.
    Ok(response)
}

fn local(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format(SHS_DATETIME)
        .to_string()
}
