//! After the 202: route an accepted message. What the product admitted for the
//! relay's own node (SSBTEK questions) is answered through the product's entry
//! point (the same as synchronous SHS and SOAP) and the reply put in the
//! sender's outbox; a direct
//! message becomes listable in its recipient's outbox; a failure deletes the
//! message and puts an SHS `error` message in the sender's outbox. Also: resume
//! after a restart, and housekeeping (expiry, stale fetch locks, gauges).

use std::sync::Arc;
use std::time::Duration;

use relay_ident::Organisationsnummer;
use relay_mailbox::{MailboxStore, MessageState};
use relay_shs::{AdmKind, ErrorCode, Label, ShsError, ShsMessage, TransferType};
use relay_store::Store;
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use crate::Relay;
use crate::failure::Failure;
use crate::identity::Caller;
use crate::products::Queued;

/// A deletion: counted in metrics, logged as an event, and written to the audit
/// trail (tx.id and reason; never content). (The quotas count what the store
/// holds: nothing to release.)
pub async fn deleted(relay: &Relay, tx_id: &str, reason: &'static str) {
    relay.metrics.deletion(tx_id, reason);
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

/// A streamed message to another organisation: it was checked before its 202;
/// now it becomes listable in the recipient's outbox.
pub async fn process_direct(relay: &Relay, store: &Store, label: Label) {
    if let Err(e) = store
        .mark_processed(crate::asynch::which(&label), MessageState::Received)
        .await
    {
        let f = crate::asynch::mailbox_failed(e);
        refused_after_acceptance(relay, store, &label, f).await;
    }
}

/// Answers what the product admitted for the node before the 202; on
/// failure, an `error` adm message goes to the sender.
pub async fn answer(relay: &Relay, store: &Store, caller: &Caller, label: Label, queued: Queued) {
    if let Err(f) = reply(relay, store, caller, &label, queued).await {
        refused_after_acceptance(relay, store, &label, f).await;
    }
}

async fn reply(
    relay: &Relay,
    store: &Store,
    caller: &Caller,
    label: &Label,
    queued: Queued,
) -> Result<(), Failure> {
    let mut reply = crate::products::answer_queued(relay, caller, label, queued).await?;
    // The reply travels asynchronously: a new tx.id, corr.id kept.
    reply.label.transfer_type = TransferType::Asynch;
    reply.label.tx_id = uuid::Uuid::new_v4().to_string();
    deliver(store, &reply).await?;
    // The question is answered: its data goes at once.
    if store
        .delete(
            crate::asynch::which(label),
            relay_mailbox::DeletionReason::Acknowledged,
        )
        .await
        .is_ok()
    {
        deleted(relay, &label.tx_id, "answered").await;
    }
    Ok(())
}

/// Stores a complete message the relay wrote (a reply, confirm or error) in its
/// `to`'s outbox and makes it listable.
pub async fn deliver(store: &Store, message: &ShsMessage) -> Result<(), Failure> {
    let to = message
        .label
        .to_address()
        .and_then(|t| Organisationsnummer::parse(t.org_number()).ok())
        .ok_or_else(|| Failure::from(ShsError::from(ErrorCode::UnresolvedReceiver)))?;
    let label = crate::asynch::mailbox_label(&message.label, to.as_str())?;
    let bytes = Zeroizing::new(message.to_bytes().await);
    store
        .put_received(label, bytes.as_slice())
        .await
        .map(|_| ())
        .map_err(crate::asynch::mailbox_failed)
}

/// Deletes a message refused after its 202 and tells the sender with an `error`
/// adm message (none for adm messages themselves).
async fn refused_after_acceptance(relay: &Relay, store: &Store, label: &Label, f: Failure) {
    let tx = &label.tx_id;
    tracing::info!(
        tx = %tx,
        by = f.by.label(),
        code = f.label(),
        "asynchronous message refused after acceptance"
    );
    relay
        .metrics
        .refusal("shs_rs_asynch", f.by.label(), f.label());
    if store
        .delete(
            crate::asynch::which(label),
            relay_mailbox::DeletionReason::Rejected,
        )
        .await
        .is_ok()
    {
        deleted(relay, tx, "rejected").await;
    }
    if label.sequence_type != Some(relay_shs::SequenceType::Adm) {
        let e = ShsError::new(f.shs_code(), f.text());
        let error = relay_shs::adm_message(label, AdmKind::Error, Some(&e));
        if let Err(e) = deliver(store, &error).await {
            tracing::warn!(tx = %tx, code = e.label(), "could not deliver the error message");
        }
    }
}

/// Resumes messages accepted before a restart but not yet processed: on one
/// machine every such message; on a shared store this node's own (from its
/// previous life under the same `store.node`) and those of nodes whose lease
/// ran out, never a live node's.
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
        resume_one(&relay, &store, meta).await;
        tracing::info!("resumed an accepted message after restart");
    }
}

/// Work leases on a shared store, forever: renews this node's claims every
/// third of the lease, and takes over the unfinished work of nodes whose lease
/// ran out (they died, or lost the database) without waiting for a restart.
pub async fn leases(relay: Arc<Relay>) {
    let Some(store) = relay.mailbox.clone() else {
        return;
    };
    let Some(lease) = store.lease() else {
        return;
    };
    let every = (lease / 3).max(Duration::from_millis(500));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = store.heartbeat().await {
            tracing::warn!(error = %e, "work leases not renewed");
        }
        match store.take_over_expired().await {
            Ok(taken) => {
                for meta in taken {
                    tracing::info!(
                        tx = %meta.label.tx_id,
                        "took over an accepted message of a node whose lease ran out"
                    );
                    let relay = relay.clone();
                    let store = store.clone();
                    tokio::spawn(async move { resume_one(&relay, &store, meta).await });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot take over expired work"),
        }
    }
}

/// Processes one accepted message again from what the store holds. The
/// message keeps its `processing` mark (this node's claim, renewed by its
/// heartbeat) until it is answered and deleted: a node that dies while it
/// works on a message it took over leaves it to be taken over again.
async fn resume_one(relay: &Arc<Relay>, store: &Store, meta: relay_mailbox::MessageMeta) {
    let which = relay_mailbox::Which::of(&meta.label);
    if meta.label.to.org_number() != relay.live().config.node.org.as_str() {
        // A message to another organisation only needed to become listable.
        let _ = store.mark_processed(which, MessageState::Received).await;
        return;
    }
    let Ok(mut handle) = store.read(which.clone()).await else {
        return;
    };
    let mut bytes = Zeroizing::new(Vec::new());
    if let Some(body) = handle.body() {
        let _ = body.read_to_end(&mut bytes).await;
    }
    drop(handle);
    let Ok(message) = ShsMessage::parse(&bytes, None, relay_shs::Limits::default()).await else {
        let _ = store
            .delete(which, relay_mailbox::DeletionReason::Rejected)
            .await;
        return;
    };
    // The sender was admitted when the message came, but decisions may have
    // changed since (a suspension, an agreement withdrawn): reading the stored
    // message back is the product's decode step, and its admission runs again,
    // once, before the answer.
    match message
        .label
        .from_address()
        .and_then(|f| Organisationsnummer::parse(f.org_number()).ok())
    {
        Some(org) => {
            let caller = Caller::of_org(relay, org);
            let label = message.label.clone();
            match crate::products::admit_asynch(relay, &caller, message).await {
                Ok(queued) => answer(relay, store, &caller, label, queued).await,
                Err(f) => refused_after_acceptance(relay, store, &label, f).await,
            }
        }
        None => {
            let _ = store
                .delete(which, relay_mailbox::DeletionReason::Rejected)
                .await;
        }
    }
}

/// Deletes expired messages and releases stale fetch locks, forever; counts
/// the mailbox gauges every `mailbox.gauge_interval_s` (not on every sweep).
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
    let gauges_every = Duration::from_secs(
        relay
            .live()
            .config
            .mailbox
            .as_ref()
            .map_or(300, |m| m.gauge_interval_s),
    );
    let mut counted: Option<std::time::Instant> = None;
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
        if counted.is_some_and(|t| t.elapsed() < gauges_every) {
            continue;
        }
        counted = Some(std::time::Instant::now());
        if let Ok(stats) = store.stats().await {
            relay.metrics.mailbox_messages.set(stats.messages as i64);
            relay.metrics.mailbox_bytes.set(stats.bytes as i64);
            let age = stats
                .oldest_arrival
                .map_or(0, |t| (chrono::Utc::now() - t).num_seconds().max(0));
            relay.metrics.mailbox_oldest_age_seconds.set(age);
        }
    }
}
