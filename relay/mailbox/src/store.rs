//! The engine-independent contract: the [`MailboxStore`] trait, what its operations
//! return, and the fetch handle that keeps a message locked while its body streams.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::io::{AsyncRead, ReadBuf};
use uuid::Uuid;

use crate::filter::ListFilter;
use crate::kek::KekError;
use crate::meta::{MessageLabel, MessageMeta, MessageState, Outbox};
use crate::rules::{OverQuota, Quota, Which};

pub type Result<T, E = MailboxError> = std::result::Result<T, E>;

/// Why a store operation failed. [`MailboxError::NotFound`] and
/// [`MailboxError::InvalidLabel`] / [`MailboxError::Body`] are the caller's side
/// (404 / 400); everything else is the relay's own fault (500).
/// An index into an engine's data-key slot file.
pub type SlotIndex = u64;

/// Failures of an engine's data-key slot file (the redb engine keeps each
/// message's wrapped data key in a slot overwritten on deletion).
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("data-key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data-key file {path} is not a shs-relay data-key file")]
    NotASlotFile { path: PathBuf },
    #[error("data-key slot {slot} does not hold the key of message {local_id}")]
    Mismatch {
        slot: SlotIndex,
        local_id: uuid::Uuid,
    },
    #[error("wrapped data key of {0} bytes does not fit a slot")]
    TooLong(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// No such message in that outbox, or not in a state that allows the operation
    /// (Axel: "Message entry not found in message log").
    #[error("Message entry not found in message log: {tx_id}")]
    NotFound { tx_id: String },
    #[error("invalid message label: {0}")]
    InvalidLabel(&'static str),
    /// Reading the incoming body failed (the sender went away, or sent garbage).
    #[error("reading the message body failed: {0}")]
    Body(#[source] io::Error),
    /// Stored data failed authentication: tampering, truncation or a wrong key.
    /// Never answered with plaintext.
    #[error("message {tx_id}: stored {what} failed authentication")]
    Integrity { tx_id: String, what: &'static str },
    /// `complete` was called before the body had been read to its verified end.
    #[error("message {tx_id}: body not read to its end; fetch not completed")]
    BodyNotFullyRead { tx_id: String },
    /// The fetch lock was released (stale) or the message deleted meanwhile.
    #[error("message {tx_id}: fetch lock lost")]
    FetchLockLost { tx_id: String },
    #[error(transparent)]
    Kek(#[from] KekError),
    #[error(transparent)]
    KeySlots(#[from] SlotError),
    #[error("message store: {0}")]
    Storage(Box<redb::Error>),
    #[error("message store record: {0}")]
    Record(#[from] serde_json::Error),
    #[error("message store task: {0}")]
    Task(String),
    /// A database engine (PostgreSQL in `relay-store`) failed or could not be
    /// reached. The text names the operation and the database's error code, never
    /// a row's content.
    #[error("message store database: {0}")]
    Database(String),
}

impl MailboxError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// True when the caller, not the relay, is at fault.
    pub fn is_caller_fault(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. } | Self::InvalidLabel(_) | Self::Body(_)
        )
    }

    /// True when the store's database could not be used (lost connection,
    /// timeout): the relay answers "try again later", not "broken message".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Database(_))
    }

    pub fn not_found(tx_id: &str) -> Self {
        Self::NotFound {
            tx_id: tx_id.to_owned(),
        }
    }
}

macro_rules! storage_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for MailboxError {
            fn from(e: $t) -> Self {
                Self::Storage(Box::new(e.into()))
            }
        }
    )*};
}
storage_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The answer to `put`. Both mean "durable": the relay may answer 202.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored and synced (`X-shs-duplicatemsg: no`).
    Stored {
        local_id: Uuid,
        arrival: DateTime<Utc>,
    },
    /// This sender's message with this tx.id is already stored; nothing was
    /// stored again (`X-shs-duplicatemsg: yes`, arrival date of the original).
    /// Another organisation's message with the same tx.id is not a duplicate.
    Duplicate { original_arrival: DateTime<Utc> },
    /// Not stored: it would have passed a quota ([`Quota::check`]), decided in
    /// the same write that would have made it visible.
    OverQuota(OverQuota),
}

/// Why a message left the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeletionReason {
    /// The recipient acknowledged it.
    Acknowledged,
    /// Its time-to-live ran out.
    Expired,
    /// The relay refused it after accepting it (processing failed for good).
    Rejected,
    /// An operator removed it.
    Operator,
}

impl DeletionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acknowledged => "acknowledged",
            Self::Expired => "expired",
            Self::Rejected => "rejected",
            Self::Operator => "operator",
        }
    }
}

/// One deleted message, for the audit log and the metrics. Carries no content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub tx_id: String,
    pub reason: DeletionReason,
    pub at: DateTime<Utc>,
}

/// What to do with an acknowledged message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AckPolicy {
    /// Delete it (and shred its key) at once. The default: nothing is kept that
    /// is no longer needed.
    #[default]
    DeleteOnAck,
    /// Flag it acknowledged and let the time-to-live remove it.
    KeepUntilExpiry,
}

/// The answer to `ack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckOutcome {
    /// The relay should send a `confirm` back to the sender: the first ack of a
    /// non-`adm` message.
    pub send_confirm: bool,
    /// The message's metadata as it was at the ack: what the confirm is built from
    /// (from/to swapped, corr.id, content.id, status...).
    pub meta: MessageMeta,
    /// Present when the ack deleted the message.
    pub deletion: Option<Deletion>,
}

/// Figures for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages: u64,
    /// Plaintext body bytes held (encrypted) in the store.
    pub bytes: u64,
    pub oldest_arrival: Option<DateTime<Utc>>,
}

/// What an outbox or a sender holds now (messages not yet deleted or
/// expired), for the quotas. Counted by the store from what it holds, so it is
/// the same on every node and after a restart; counting stops past `limit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub messages: u64,
    pub bytes: u64,
}

/// A store for asynchronous SHS messages. Every operation is async and must not
/// block the runtime; engines do their disk work on blocking threads.
pub trait MailboxStore: Send + Sync + 'static {
    /// Stores a message durably, streaming the body in chunks with bounded memory.
    /// A message is identified by (sender, tx.id) ([`crate::rules::sender_of`]):
    /// a second message from the same sender with the same tx.id is not stored
    /// ([`PutOutcome::Duplicate`]), decided by the write that makes the message
    /// visible. A new message starts as [`MessageState::New`] with `processing`
    /// set. No quota: [`MailboxStore::put_within`] with [`Quota::NONE`].
    fn put<R>(
        &self,
        label: MessageLabel,
        body: R,
    ) -> impl Future<Output = Result<PutOutcome>> + Send
    where
        R: AsyncRead + Send,
    {
        self.put_within(label, body, Quota::NONE)
    }

    /// [`MailboxStore::put`], refused with [`PutOutcome::OverQuota`] when the
    /// recipient's outbox or the sender would pass `quota`; counted in the same
    /// write that makes the message visible, so concurrent uploads (on any node)
    /// never pass a limit.
    fn put_within<R>(
        &self,
        label: MessageLabel,
        body: R,
        quota: Quota,
    ) -> impl Future<Output = Result<PutOutcome>> + Send
    where
        R: AsyncRead + Send;

    /// A message the relay wrote itself (a reply, a confirm, an error), stored
    /// and moved into its outbox: [`MailboxStore::put`], then
    /// [`MailboxStore::mark_processed`] to [`MessageState::Received`] (also
    /// for a duplicate: the original is moved). An engine may do both in one
    /// write; nothing is between them to check.
    fn put_received<R>(
        &self,
        label: MessageLabel,
        body: R,
    ) -> impl Future<Output = Result<PutOutcome>> + Send
    where
        R: AsyncRead + Send,
    {
        async move {
            let mut label = label;
            crate::rules::check_label(&mut label)?;
            let which = crate::Which::of(&label);
            let outcome = self.put(label, body).await?;
            self.mark_processed(which, MessageState::Received).await?;
            Ok(outcome)
        }
    }

    /// The waiting messages of an outbox that pass `filter`, ordered and capped.
    fn list(
        &self,
        outbox: &Outbox,
        filter: &ListFilter,
    ) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send;

    /// Locks a waiting message (`Received` → `FetchingInProgress`) and streams its
    /// body. A message that is not waiting in this outbox, or is already being
    /// fetched, is [`MailboxError::NotFound`]. Several waiting messages with the
    /// tx.id (from different senders) are handed out in
    /// [`crate::rules::fetch_order`] unless `which` names the sender.
    fn fetch(
        &self,
        outbox: &Outbox,
        which: impl Into<Which> + Send,
    ) -> impl Future<Output = Result<FetchHandle>> + Send;

    /// The body of a message the relay processes itself, in any state: no
    /// fetch lock is taken and the message keeps its `processing` mark (and so
    /// the node's claim on it), so a node that dies while it works on the
    /// message leaves it to be taken over again. `complete` does nothing.
    fn read(
        &self,
        which: impl Into<Which> + Send,
    ) -> impl Future<Output = Result<FetchHandle>> + Send;

    /// Acknowledges a delivered message; by default deletes it. Among several
    /// with the tx.id: [`crate::rules::ack_order`].
    fn ack(
        &self,
        outbox: &Outbox,
        which: impl Into<Which> + Send,
    ) -> impl Future<Output = Result<AckOutcome>> + Send;

    /// Deletes a message, whatever its state. A `which` without a sender means
    /// the oldest message with the tx.id (for tools and tests; the relay names
    /// the sender).
    fn delete(
        &self,
        which: impl Into<Which> + Send,
        reason: DeletionReason,
    ) -> impl Future<Output = Result<Deletion>> + Send;

    /// Deletes every message whose time-to-live has run out at `now`.
    fn sweep(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Vec<Deletion>>> + Send;

    /// Returns fetch locks older than `older_than` to `Received`; how many.
    fn release_stale_fetches(
        &self,
        older_than: Duration,
    ) -> impl Future<Output = Result<usize>> + Send;

    fn set_state(
        &self,
        which: impl Into<Which> + Send,
        state: MessageState,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Clears `processing` and moves the message to `state` in one step.
    fn mark_processed(
        &self,
        which: impl Into<Which> + Send,
        state: MessageState,
    ) -> impl Future<Output = Result<()>> + Send;

    fn get_meta(
        &self,
        which: impl Into<Which> + Send,
    ) -> impl Future<Output = Result<Option<MessageMeta>>> + Send;

    /// Messages accepted but not yet processed, oldest first: what the relay resumes
    /// after a restart.
    fn pending_processing(&self) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send;

    fn stats(&self) -> impl Future<Output = Result<Stats>> + Send;
}

/// An engine's hold on a fetched message.
pub trait FetchLease: Send + 'static {
    /// `FetchingInProgress` → `Fetched`.
    fn complete(self: Box<Self>) -> BoxFuture<'static, Result<()>>;
    /// Back to `Received`. Called from `Drop`: must be quick and must not panic.
    fn release(self: Box<Self>);
}

/// The lease of a [`MailboxStore::read`]: there is no lock to end.
pub struct NoLease;

impl FetchLease for NoLease {
    fn complete(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn release(self: Box<Self>) {}
}

/// A locked message being fetched. Read the body (as [`AsyncRead`] or as a stream
/// of [`Bytes`]), then call [`FetchHandle::complete`]. Dropped without `complete`,
/// the message goes back to `Received` and is listed again.
pub struct FetchHandle {
    meta: MessageMeta,
    body: Option<FetchBody>,
    finished: Arc<AtomicBool>,
    lease: Option<Box<dyn FetchLease>>,
}

impl std::fmt::Debug for FetchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchHandle")
            .field("tx_id", &self.meta.label.tx_id)
            .finish_non_exhaustive()
    }
}

impl FetchHandle {
    /// For engines: `chunks` must end only after the last chunk has been verified,
    /// and yield an error (never data) for anything that fails authentication.
    pub fn new(
        meta: MessageMeta,
        chunks: BoxStream<'static, io::Result<Bytes>>,
        lease: Box<dyn FetchLease>,
    ) -> Self {
        let finished = Arc::new(AtomicBool::new(false));
        Self {
            meta,
            body: Some(FetchBody {
                chunks,
                current: Bytes::new(),
                finished: finished.clone(),
            }),
            finished,
            lease: Some(lease),
        }
    }

    pub fn meta(&self) -> &MessageMeta {
        &self.meta
    }

    /// The body, to read in place. `None` once taken.
    pub fn body(&mut self) -> Option<&mut FetchBody> {
        self.body.as_mut()
    }

    /// Takes the body out, e.g. to hand it to an HTTP response while keeping the
    /// handle to complete afterwards.
    pub fn take_body(&mut self) -> Option<FetchBody> {
        self.body.take()
    }

    /// Whether the body has been read to its verified end.
    pub fn body_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Marks the message `Fetched`. Refused (and the lock released) unless the
    /// body was read to its verified end.
    pub async fn complete(mut self) -> Result<()> {
        if !self.body_finished() {
            return Err(MailboxError::BodyNotFullyRead {
                tx_id: self.meta.label.tx_id.clone(),
            });
        }
        match self.lease.take() {
            Some(lease) => lease.complete().await,
            None => Ok(()),
        }
    }
}

impl Drop for FetchHandle {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

/// The decrypted body of a fetched message, one verified chunk at a time.
pub struct FetchBody {
    chunks: BoxStream<'static, io::Result<Bytes>>,
    current: Bytes,
    finished: Arc<AtomicBool>,
}

impl FetchBody {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let next = ready!(self.chunks.poll_next_unpin(cx));
        if next.is_none() {
            self.finished.store(true, Ordering::Release);
        }
        Poll::Ready(next)
    }
}

impl Stream for FetchBody {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.current.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut self.current))));
        }
        self.poll_chunk(cx)
    }
}

impl AsyncRead for FetchBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.current.is_empty() {
            match ready!(self.poll_chunk(cx)) {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.current.len().min(buf.remaining());
        buf.put_slice(&self.current[..n]);
        self.current.advance(n);
        Poll::Ready(Ok(()))
    }
}
