//! The redb engine: one redb file for envelopes, sealed labels, indexes and sealed
//! body chunks, plus the data-key slot file beside it (`<store>.keys`, see
//! `slots.rs`). redb work runs on blocking threads; nothing here blocks
//! the async runtime except the short non-durable write that releases a dropped
//! fetch lock.
//!
//! Tables:
//!
//! | table          | key                      | value                                        |
//! |----------------|--------------------------|----------------------------------------------|
//! | `messages`     | row key: tx.id ␟ sender  | envelope (JSON): ids, outbox, state, times, sizes, slot |
//! | `labels`       | row key                  | the label, sealed under the message's data key |
//! | `outbox_index` | (outbox, row key)        | ()                                           |
//! | `expiry_index` | (expires_at ms, row key) | ()                                           |
//! | `staging`      | local id                 | key slot of a `put` still streaming          |
//! | `chunks`       | (local id, chunk index)  | sealed body chunk (≤ 64 KiB + 16-byte tag)   |
//!
//! A message is identified by (sender, tx.id) ([`relay_mailbox::rules`]); its row key
//! is the tx.id, the unit separator U+001F and the sender, so that one range
//! finds every sender's message with a tx.id. Rows written before the sender
//! was part of the key (key = tx.id) are re-keyed by [`RedbStore::open`].
//!
//! The envelope is plaintext on purpose and holds nothing personal: the tx.id, the
//! recipient organisation's address, states, times and sizes. Everything from the
//! label that may name a person (from, originator, subject, meta...) is sealed.
//!
//! A `put` streams its chunks in non-durable commits (no fsync; a staging row
//! marks them) and ends with one durable commit that makes the message visible;
//! redb persists the earlier non-durable commits with it. A crash before that
//! leaves a staging row, which [`RedbStore::open`] clears.

// Exception to [workspace.lints], moved with the redb mailbox engine from relay-mailbox:
// indexing/slicing on fixed-size crypto and slot buffers and `expect`s on
// constant sizes (2026-12), not yet rewritten.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)]

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::slots::{KeySlots, Slot};
use relay_mailbox::clock::{Clock, SystemClock, millis};
use relay_mailbox::crypto::{DataKey, MessageCipher, NONCE_PREFIX_LEN};
use relay_mailbox::filter::ListFilter;
use relay_mailbox::kek::{KekId, KeyEncryptionKey};
use relay_mailbox::meta::{MessageLabel, MessageMeta, MessageState, Outbox, TransferType};
use relay_mailbox::retention::Retention;
use relay_mailbox::rules::{self, Candidate, Quota, Which};
use relay_mailbox::store::{
    AckOutcome, AckPolicy, Deletion, DeletionReason, FetchHandle, FetchLease, MailboxError,
    MailboxStore, NoLease, PutOutcome, Result, Stats, Usage,
};

/// Joins a message's tx.id and sender in its row key.
const SEP: char = '\u{1f}';

/// The row key of the message `sender` sent with `tx_id`.
fn row_key(tx_id: &str, sender: &str) -> String {
    format!("{tx_id}{SEP}{sender}")
}

/// The tx.id part of a row key.
fn tx_of(key: &str) -> &str {
    key.split(SEP).next().unwrap_or(key)
}

/// The messages `which` may mean, with their row keys.
fn candidates(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    which: &Which,
) -> Result<Vec<(String, Envelope)>> {
    if let Some(sender) = &which.sender {
        let key = row_key(&which.tx_id, sender);
        return Ok(load_envelope(table, &key)?
            .map(|e| vec![(key, e)])
            .unwrap_or_default());
    }
    let (lo, hi) = (
        format!("{}{SEP}", which.tx_id),
        format!("{}\u{20}", which.tx_id),
    );
    let mut out = Vec::new();
    for row in table.range::<&str>(lo.as_str()..hi.as_str())? {
        let (k, v) = row?;
        out.push((k.value().to_owned(), decode(v.value())?));
    }
    Ok(out)
}

/// Of `found`, the one `order` (a rule of [`relay_mailbox::rules`]) puts first among
/// those passing `keep`.
fn pick(
    found: Vec<(String, Envelope)>,
    keep: impl Fn(&Envelope) -> bool,
    order: fn(&mut [Candidate]),
) -> Option<(String, Envelope)> {
    let kept: Vec<_> = found.into_iter().filter(|(_, e)| keep(e)).collect();
    let mut order_of: Vec<Candidate> = kept
        .iter()
        .map(|(_, e)| Candidate {
            local_id: e.local_id,
            state: e.state,
            arrival: e.arrival,
        })
        .collect();
    order(&mut order_of);
    let first = order_of.first()?.local_id;
    kept.into_iter().find(|(_, e)| e.local_id == first)
}

const MESSAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("messages");
const LABELS: TableDefinition<&str, &[u8]> = TableDefinition::new("labels");
const OUTBOXES: TableDefinition<(&str, &str), ()> = TableDefinition::new("outbox_index");
const EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("expiry_index");
const STAGING: TableDefinition<u128, u64> = TableDefinition::new("staging");
const CHUNKS: TableDefinition<(u128, u32), &[u8]> = TableDefinition::new("chunks");

/// Chunks per non-durable staging commit while a body streams in (1 MiB).
const STAGE_BATCH: usize = 16;
/// Chunks per blocking read while a body streams out (256 KiB).
const READ_AHEAD: u32 = 4;
/// Messages deleted per commit by the sweeper.
const SWEEP_BATCH: usize = 256;
/// Data keys rewrapped per write lock by `rewrap_all`.
const REWRAP_BATCH: usize = 256;

/// redb's page cache for the mailbox file, unless `[store] cache_bytes` says
/// otherwise. redb keeps a tenth of it as the write buffer and the rest as the
/// read cache, and every page a commit writes passes into the read cache: a
/// message body's chunks (written once, read once) fill it on the way in and
/// again on the way out, so the cache is most of what a large message adds to
/// the node's memory (with 16 MiB, a 100 MB message grew a debug relay's
/// resident memory by 26 MB; with 4 MiB by 11 MB). 4 MiB still holds the
/// envelopes and indexes of thousands of waiting messages.
pub const DEFAULT_CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Tuning and policy for a [`RedbStore`].
#[derive(Clone)]
pub struct StoreOptions {
    pub clock: Arc<dyn Clock>,
    pub retention: Retention,
    pub ack_policy: AckPolicy,
    /// redb's page cache ([`DEFAULT_CACHE_BYTES`]). Bodies are written once and
    /// read once, so a large cache buys little and costs memory.
    pub cache_size: usize,
    /// The longest one upload may take (the relay's receive timeout). An engine
    /// that writes an upload in several steps removes the remains of one older
    /// than this (its node died midway).
    pub max_upload_time: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            retention: Retention::default(),
            ack_policy: AckPolicy::default(),
            cache_size: DEFAULT_CACHE_BYTES,
            max_upload_time: std::time::Duration::from_secs(3600),
        }
    }
}

/// The relay-internal, non-personal part of a stored message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    local_id: Uuid,
    slot: Slot,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    outbox: Outbox,
    transfer_type: TransferType,
    state: MessageState,
    acknowledged: bool,
    processing: bool,
    arrival: DateTime<Utc>,
    state_timestamp: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    body_bytes: u64,
    chunks: u32,
    /// Identifies the fetch holding the lock, so a stale handle cannot complete
    /// or release a later fetch.
    fetch_token: Option<Uuid>,
    /// The sending organisation ([`MessageLabel::sender_org`]), for the
    /// per-sender quota; absent in envelopes written before it was kept.
    #[serde(default)]
    sender: Option<String>,
}

impl Envelope {
    fn id(&self) -> u128 {
        self.local_id.as_u128()
    }

    fn set_state(&mut self, state: MessageState, now: DateTime<Utc>) {
        if self.state != state {
            self.state = state;
            self.state_timestamp = now;
        }
        if state != MessageState::FetchingInProgress {
            self.fetch_token = None;
        }
    }

    /// In this outbox and delivered: what `ack` accepts (Axel acks any state; a
    /// recipient cannot know of a message not yet in its outbox).
    fn ackable_in(&self, outbox: &Outbox) -> bool {
        self.outbox == *outbox && rules::ackable(self.state, self.processing)
    }

    fn waiting_at(&self, now: DateTime<Utc>) -> bool {
        rules::waiting(
            self.state,
            self.processing,
            self.transfer_type,
            self.expires_at,
            now,
        )
    }
}

/// The redb mailbox store. Cheap to clone; clones share one database.
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    db: Database,
    slots: KeySlots,
    kek: Arc<dyn KeyEncryptionKey>,
    clock: Arc<dyn Clock>,
    retention: Retention,
    ack_policy: AckPolicy,
}

impl RedbStore {
    /// Opens (or creates) the store at `path` with default options. Blocking: call
    /// at start-up, before serving.
    pub fn open(path: impl AsRef<Path>, kek: Arc<dyn KeyEncryptionKey>) -> Result<Self> {
        Self::open_with(path, kek, StoreOptions::default())
    }

    /// Opens (or creates) the store, then recovers from an unclean shutdown:
    /// half-written messages are removed, fetch locks (no fetch survives a restart)
    /// are released, and data-key slots no message refers to are erased.
    pub fn open_with(
        path: impl AsRef<Path>,
        kek: Arc<dyn KeyEncryptionKey>,
        options: StoreOptions,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (slots, used) = KeySlots::open(&key_slot_path(&path))?;
        let db = Database::builder()
            .set_cache_size(options.cache_size)
            .create(&path)?;
        let inner = Inner {
            path,
            db,
            slots,
            kek,
            clock: options.clock,
            retention: options.retention,
            ack_policy: options.ack_policy,
        };
        inner.recover(used)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The data-key slot file beside the store.
    pub fn key_slot_path(&self) -> PathBuf {
        key_slot_path(&self.inner.path)
    }

    /// How many stored data keys each KEK wraps: check before retiring a KEK.
    pub async fn kek_usage(&self) -> Result<BTreeMap<KekId, usize>> {
        self.run(|i| i.kek_usage()).await
    }

    /// Rewraps every data key not under the wrapping KEK (after a rotation;
    /// the key ring's active key), in place in its slot, in batches while
    /// traffic runs. Returns how many were rewrapped.
    pub async fn rewrap_all(&self) -> Result<usize> {
        self.run(|i| i.rewrap_all()).await
    }

    /// Every message's key id and decrypted body (`shs-relay store verify`).
    pub async fn stored_messages(&self) -> Result<Vec<relay_mailbox::verify::StoredMessage>> {
        self.run(|i| i.stored_messages()).await
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| MailboxError::Task(e.to_string()))?
    }
}

impl RedbStore {
    /// Reads, seals and stages the body chunk by chunk; returns (chunks, bytes).
    /// At most one batch of chunks plus one chunk of look-ahead is in memory.
    async fn stream_in<R: AsyncRead + Send>(
        &self,
        body: R,
        local_id: Uuid,
        cipher: &Arc<MessageCipher>,
    ) -> Result<(u32, u64)> {
        let mut body = std::pin::pin!(body);
        let mut batch = Vec::with_capacity(STAGE_BATCH);
        let mut index: u32 = 0;
        let mut body_bytes: u64 = 0;
        let mut pending = relay_mailbox::crypto::read_chunk(&mut body)
            .await
            .map_err(MailboxError::Body)?;
        loop {
            // One chunk of look-ahead tells whether `pending` is the last.
            let next = relay_mailbox::crypto::read_chunk(&mut body)
                .await
                .map_err(MailboxError::Body)?;
            let last = next.is_empty();
            body_bytes += pending.len() as u64;
            batch.push((index, last, pending));
            if last {
                break;
            }
            index = index.checked_add(1).ok_or_else(|| {
                MailboxError::Body(io::Error::other("body exceeds the chunk limit"))
            })?;
            pending = next;
            if batch.len() >= STAGE_BATCH {
                let (c, b) = (cipher.clone(), std::mem::take(&mut batch));
                self.run(move |i| i.stage_chunks(local_id, &c, b)).await?;
            }
        }
        let (c, b) = (cipher.clone(), batch);
        self.run(move |i| i.stage_chunks(local_id, &c, b)).await?;
        Ok((index + 1, body_bytes))
    }
}

fn key_slot_path(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_owned();
    p.push(".keys");
    PathBuf::from(p)
}

fn decode(bytes: &[u8]) -> Result<Envelope> {
    Ok(serde_json::from_slice(bytes)?)
}

fn encode(env: &Envelope) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(env)?)
}

fn load_envelope(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    tx_id: &str,
) -> Result<Option<Envelope>> {
    table.get(tx_id)?.map(|v| decode(v.value())).transpose()
}

fn put_envelope(txn: &WriteTransaction, tx_id: &str, env: &Envelope) -> Result<()> {
    txn.open_table(MESSAGES)?
        .insert(tx_id, encode(env)?.as_slice())?;
    Ok(())
}

fn remove_chunks(txn: &WriteTransaction, id: u128) -> Result<()> {
    txn.open_table(CHUNKS)?
        .retain_in((id, 0u32)..=(id, u32::MAX), |_, _| false)?;
    Ok(())
}

/// Re-keys rows written when a message's key was its tx.id alone to
/// (tx.id, sender): every row of such a message moves, in the recovery commit.
fn rekey(txn: &WriteTransaction) -> Result<()> {
    let mut old = Vec::new();
    for row in txn.open_table(MESSAGES)?.iter()? {
        let (k, v) = row?;
        if !k.value().contains(SEP) {
            old.push((k.value().to_owned(), decode(v.value())?));
        }
    }
    for (tx_id, env) in &old {
        let key = row_key(tx_id, env.sender.as_deref().unwrap_or(""));
        let sealed = txn
            .open_table(LABELS)?
            .remove(tx_id.as_str())?
            .map(|v| v.value().to_vec());
        txn.open_table(MESSAGES)?.remove(tx_id.as_str())?;
        put_envelope(txn, &key, env)?;
        if let Some(sealed) = sealed {
            txn.open_table(LABELS)?
                .insert(key.as_str(), sealed.as_slice())?;
        }
        let mut outboxes = txn.open_table(OUTBOXES)?;
        outboxes.remove((env.outbox.as_str(), tx_id.as_str()))?;
        outboxes.insert((env.outbox.as_str(), key.as_str()), ())?;
        let mut expiry = txn.open_table(EXPIRY)?;
        expiry.remove((millis(env.expires_at), tx_id.as_str()))?;
        expiry.insert((millis(env.expires_at), key.as_str()), ())?;
    }
    if !old.is_empty() {
        tracing::info!(
            count = old.len(),
            "mailbox rows re-keyed by (tx.id, sender)"
        );
    }
    Ok(())
}

/// Removes every row of a message. Its key slot is erased after the commit.
fn remove_message(txn: &WriteTransaction, tx_id: &str, env: &Envelope) -> Result<()> {
    txn.open_table(MESSAGES)?.remove(tx_id)?;
    txn.open_table(LABELS)?.remove(tx_id)?;
    txn.open_table(OUTBOXES)?
        .remove((env.outbox.as_str(), tx_id))?;
    txn.open_table(EXPIRY)?
        .remove((millis(env.expires_at), tx_id))?;
    remove_chunks(txn, env.id())
}

/// Opens a sealed label and joins it with its envelope.
fn meta_with(
    cipher: &MessageCipher,
    key: &str,
    env: &Envelope,
    sealed: &[u8],
) -> Result<MessageMeta> {
    let integrity = || MailboxError::Integrity {
        tx_id: tx_of(key).to_owned(),
        what: "label",
    };
    let mut buf = Zeroizing::new(sealed.to_vec());
    cipher.open_label(&mut buf).map_err(|_| integrity())?;
    let label: MessageLabel = serde_json::from_slice(&buf)?;
    if row_key(&label.tx_id, &rules::sender_of(&label)) != key {
        return Err(integrity());
    }
    Ok(MessageMeta {
        label,
        local_id: env.local_id,
        state: env.state,
        acknowledged: env.acknowledged,
        processing: env.processing,
        arrival: env.arrival,
        state_timestamp: env.state_timestamp,
        expires_at: env.expires_at,
        body_bytes: env.body_bytes,
    })
}

impl Inner {
    /// Times are kept to the millisecond, the precision of the expiry index.
    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(3)
    }

    fn begin_write(&self, durability: Durability) -> Result<WriteTransaction> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(durability)
            .map_err(|e| MailboxError::Storage(Box::new(e.into())))?;
        Ok(txn)
    }

    /// Erases key slots after the commit that removed their messages. A failure
    /// here leaves a key without a message; the next open erases it.
    fn shred(&self, slots: &[Slot]) {
        if let Err(e) = self.slots.erase(slots) {
            tracing::error!(error = %e, "erasing data-key slots failed; they are erased at the next open");
        }
    }

    fn recover(&self, used: Vec<(Slot, Uuid)>) -> Result<()> {
        let now = self.now();
        let txn = self.begin_write(Durability::Immediate)?;
        let mut referenced = HashSet::new();
        {
            rekey(&txn)?;
            let staging: Vec<u128> = txn
                .open_table(STAGING)?
                .iter()?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            for id in &staging {
                remove_chunks(&txn, *id)?;
                txn.open_table(STAGING)?.remove(*id)?;
            }
            if !staging.is_empty() {
                tracing::info!(
                    count = staging.len(),
                    "removed messages whose put never finished"
                );
            }
            let mut released = Vec::new();
            for row in txn.open_table(MESSAGES)?.iter()? {
                let (k, v) = row?;
                let env = decode(v.value())?;
                referenced.insert((env.slot, env.local_id));
                if env.state == MessageState::FetchingInProgress {
                    released.push((k.value().to_owned(), env));
                }
            }
            for (tx_id, mut env) in released {
                env.set_state(MessageState::Received, now);
                put_envelope(&txn, &tx_id, &env)?;
            }
            // Create every table, so readers never meet a missing one.
            txn.open_table(LABELS)?;
            txn.open_table(OUTBOXES)?;
            txn.open_table(EXPIRY)?;
        }
        txn.commit()?;
        let orphans: Vec<Slot> = used
            .into_iter()
            .filter(|pair| !referenced.contains(pair))
            .map(|(slot, _)| slot)
            .collect();
        self.slots.erase(&orphans)?;
        Ok(())
    }

    fn cipher(&self, env: &Envelope) -> Result<MessageCipher> {
        let wrapped = self.slots.load(env.slot, env.local_id)?;
        let key = self.kek.unwrap(&wrapped, env.local_id.as_bytes())?;
        Ok(MessageCipher::new(&key, env.nonce_prefix))
    }

    fn meta(&self, tx_id: &str, env: &Envelope, sealed: &[u8]) -> Result<MessageMeta> {
        meta_with(&self.cipher(env)?, tx_id, env, sealed)
    }

    /// Reads one message's envelope and sealed label in a snapshot.
    fn load(&self, tx_id: &str) -> Result<Option<(Envelope, Vec<u8>)>> {
        let txn = self.db.begin_read()?;
        let Some(env) = load_envelope(&txn.open_table(MESSAGES)?, tx_id)? else {
            return Ok(None);
        };
        let sealed = txn
            .open_table(LABELS)?
            .get(tx_id)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| MailboxError::Integrity {
                tx_id: tx_id.to_owned(),
                what: "label (missing)",
            })?;
        Ok(Some((env, sealed)))
    }

    /// Every message passing `keep`, decrypted, in one snapshot.
    fn scan(&self, keep: impl Fn(&Envelope) -> bool) -> Result<Vec<MessageMeta>> {
        let txn = self.db.begin_read()?;
        let labels = txn.open_table(LABELS)?;
        let mut out = Vec::new();
        for row in txn.open_table(MESSAGES)?.iter()? {
            let (k, v) = row?;
            let env = decode(v.value())?;
            if keep(&env) {
                match self.meta_in(&labels, k.value(), &env) {
                    Ok(meta) => out.push(meta),
                    Err(e) if relay_mailbox::ring::skip_missing_key(&e, &env.local_id) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    fn meta_in(
        &self,
        labels: &impl ReadableTable<&'static str, &'static [u8]>,
        tx_id: &str,
        env: &Envelope,
    ) -> Result<MessageMeta> {
        let sealed = labels.get(tx_id)?.ok_or_else(|| MailboxError::Integrity {
            tx_id: tx_id.to_owned(),
            what: "label (missing)",
        })?;
        self.meta(tx_id, env, sealed.value())
    }

    /// The message `which` means: the only one with a sender given, else the
    /// oldest with the tx.id. Its row key and envelope.
    fn resolve(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        which: &Which,
    ) -> Result<Option<(String, Envelope)>> {
        Ok(pick(
            candidates(table, which)?,
            |_| true,
            rules::fetch_order,
        ))
    }

    fn key_of(&self, which: &Which) -> Result<String> {
        let txn = self.db.begin_read()?;
        self.resolve(&txn.open_table(MESSAGES)?, which)?
            .map(|(k, _)| k)
            .ok_or_else(|| MailboxError::not_found(&which.tx_id))
    }

    /// Wraps the data key into a slot and records the put as staging.
    fn begin_put(&self, local_id: Uuid, key: DataKey) -> Result<Slot> {
        let wrapped = self.kek.wrap(&key, local_id.as_bytes())?;
        drop(key);
        let slot = self.slots.store(local_id, &wrapped)?;
        let staged = (|| {
            let txn = self.begin_write(Durability::None)?;
            txn.open_table(STAGING)?.insert(local_id.as_u128(), slot)?;
            txn.commit()?;
            Ok(())
        })();
        if staged.is_err() {
            self.shred(&[slot]);
        }
        staged.map(|()| slot)
    }

    fn stage_chunks(
        &self,
        local_id: Uuid,
        cipher: &MessageCipher,
        batch: Vec<(u32, bool, Vec<u8>)>,
    ) -> Result<()> {
        let txn = self.begin_write(Durability::None)?;
        {
            let mut chunks = txn.open_table(CHUNKS)?;
            for (index, last, mut buf) in batch {
                cipher.seal_chunk(index, last, &mut buf);
                chunks.insert((local_id.as_u128(), index), buf.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The durable commit that makes a streamed message visible, or finds that
    /// this sender's message with the same tx.id is already there, or that the
    /// message does not fit `quota`: one write transaction (redb has one writer
    /// at a time), so the decision and the insert are one step.
    #[allow(clippy::too_many_arguments)]
    fn finish_put(
        &self,
        label: MessageLabel,
        quota: Quota,
        local_id: Uuid,
        slot: Slot,
        nonce_prefix: [u8; NONCE_PREFIX_LEN],
        cipher: &MessageCipher,
        chunks: u32,
        body_bytes: u64,
    ) -> Result<PutOutcome> {
        let now = self.now();
        let ttl = self.retention.ttl_for(&label.product);
        let expires_at = now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        let mut sealed = serde_json::to_vec(&label)?;
        cipher.seal_label(&mut sealed);
        let key = row_key(&label.tx_id, &rules::sender_of(&label));
        let tx_id = key.as_str();
        let env = Envelope {
            local_id,
            slot,
            nonce_prefix,
            outbox: label.to.clone(),
            transfer_type: label.transfer_type,
            state: MessageState::New,
            acknowledged: false,
            processing: true,
            arrival: now,
            state_timestamp: now,
            expires_at,
            body_bytes,
            chunks,
            fetch_token: None,
            sender: label.sender_org(),
        };
        let txn = self.begin_write(Durability::Immediate)?;
        let existing = load_envelope(&txn.open_table(MESSAGES)?, tx_id)?;
        let over = match (&existing, quota.is_none()) {
            (None, false) => {
                let sender = env.sender.as_deref().unwrap_or("");
                let (held, sent) = usage_in(
                    &txn.open_table(MESSAGES)?,
                    &txn.open_table(OUTBOXES)?,
                    &env.outbox,
                    sender,
                    quota.count_limit(),
                    now,
                )?;
                quota.check(held, sent).err()
            }
            _ => None,
        };
        txn.open_table(STAGING)?.remove(local_id.as_u128())?;
        let refused = match (existing, over) {
            (Some(original), _) => Some(PutOutcome::Duplicate {
                original_arrival: original.arrival,
            }),
            (None, Some(over)) => Some(PutOutcome::OverQuota(over)),
            (None, None) => None,
        };
        if let Some(refused) = refused {
            remove_chunks(&txn, local_id.as_u128())?;
            txn.commit()?;
            self.shred(&[slot]);
            return Ok(refused);
        }
        put_envelope(&txn, tx_id, &env)?;
        txn.open_table(LABELS)?.insert(tx_id, sealed.as_slice())?;
        txn.open_table(OUTBOXES)?
            .insert((env.outbox.as_str(), tx_id), ())?;
        txn.open_table(EXPIRY)?
            .insert((millis(expires_at), tx_id), ())?;
        txn.commit()?;
        Ok(PutOutcome::Stored {
            local_id,
            arrival: now,
        })
    }

    /// Undoes a put that will not finish (error or cancellation).
    fn abort_put(&self, local_id: Uuid, slot: Slot) -> Result<()> {
        let txn = self.begin_write(Durability::Immediate)?;
        remove_chunks(&txn, local_id.as_u128())?;
        txn.open_table(STAGING)?.remove(local_id.as_u128())?;
        txn.commit()?;
        self.shred(&[slot]);
        Ok(())
    }

    fn list(&self, outbox: &Outbox, filter: &ListFilter) -> Result<Vec<MessageMeta>> {
        let now = self.now();
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let labels = txn.open_table(LABELS)?;
        let mut candidates = Vec::new();
        for row in txn.open_table(OUTBOXES)?.range((outbox.as_str(), "")..)? {
            let (k, ()) = row.map(|(k, v)| (k, v.value()))?;
            let (row_outbox, tx_id) = k.value();
            if row_outbox != outbox.as_str() {
                break;
            }
            let Some(env) = load_envelope(&messages, tx_id)? else {
                continue;
            };
            // Cheap checks on the envelope before paying for a decryption.
            let waiting = env.waiting_at(now)
                && !(filter.no_ack && env.acknowledged)
                && filter.since.is_none_or(|s| env.state_timestamp >= s);
            if waiting {
                match self.meta_in(&labels, tx_id, &env) {
                    Ok(meta) => candidates.push(meta),
                    // One message this node cannot open never fails the list.
                    Err(e) if relay_mailbox::ring::skip_missing_key(&e, &env.local_id) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(filter.select(outbox, now, candidates))
    }

    /// What `outbox` and `sender` hold now, from the envelopes (no label is
    /// opened); counting stops past `limit`.
    fn usage(&self, outbox: &Outbox, sender: &str, limit: u64) -> Result<(Usage, Usage)> {
        let now = self.now();
        let txn = self.db.begin_read()?;
        usage_in(
            &txn.open_table(MESSAGES)?,
            &txn.open_table(OUTBOXES)?,
            outbox,
            sender,
            limit,
            now,
        )
    }

    /// Takes the fetch lock; returns what the body stream needs.
    fn lock_for_fetch(
        &self,
        outbox: &Outbox,
        which: &Which,
    ) -> Result<(MessageMeta, Envelope, String, Uuid, MessageCipher)> {
        let now = self.now();
        let token = Uuid::new_v4();
        // The lock need not be durable: after a crash every lock is released.
        let txn = self.begin_write(Durability::None)?;
        let waiting = |e: &Envelope| e.outbox == *outbox && e.waiting_at(now);
        let (key, env) = pick(
            candidates(&txn.open_table(MESSAGES)?, which)?,
            waiting,
            rules::fetch_order,
        )
        .ok_or_else(|| MailboxError::not_found(&which.tx_id))?;
        let tx_id = key.as_str();
        let mut locked = env.clone();
        locked.set_state(MessageState::FetchingInProgress, now);
        locked.fetch_token = Some(token);
        put_envelope(&txn, tx_id, &locked)?;
        let sealed = txn
            .open_table(LABELS)?
            .get(tx_id)?
            .map(|v| v.value().to_vec());
        txn.commit()?;
        let opened = sealed
            .ok_or_else(|| MailboxError::Integrity {
                tx_id: tx_id.to_owned(),
                what: "label (missing)",
            })
            .and_then(|s| {
                let cipher = self.cipher(&locked)?;
                let meta = meta_with(&cipher, tx_id, &locked, &s)?;
                Ok((meta, cipher))
            });
        match opened {
            Ok((meta, cipher)) => Ok((meta, locked, key, token, cipher)),
            Err(e) => {
                let _ = self.end_fetch(tx_id, token, MessageState::Received, Durability::None);
                Err(e)
            }
        }
    }

    /// Ends a fetch: `Fetched` on completion, `Received` on release.
    fn end_fetch(
        &self,
        tx_id: &str,
        token: Uuid,
        state: MessageState,
        durability: Durability,
    ) -> Result<()> {
        let now = self.now();
        let txn = self.begin_write(durability)?;
        let mut env = load_envelope(&txn.open_table(MESSAGES)?, tx_id)?
            .filter(|e| e.state == MessageState::FetchingInProgress && e.fetch_token == Some(token))
            .ok_or_else(|| MailboxError::FetchLockLost {
                tx_id: tx_of(tx_id).to_owned(),
            })?;
        env.set_state(state, now);
        put_envelope(&txn, tx_id, &env)?;
        txn.commit()?;
        Ok(())
    }

    fn read_chunks(
        &self,
        tx_id: &str,
        id: u128,
        cipher: &MessageCipher,
        from: u32,
        count: u32,
        total: u32,
    ) -> io::Result<Vec<Bytes>> {
        let storage = |e: MailboxError| io::Error::other(e);
        let txn = self.db.begin_read().map_err(|e| storage(e.into()))?;
        let chunks = txn.open_table(CHUNKS).map_err(|e| storage(e.into()))?;
        let mut out = Vec::with_capacity(count as usize);
        for index in from..from + count {
            let mut buf = chunks
                .get((id, index))
                .map_err(|e| storage(e.into()))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("message {tx_id}: chunk {index} missing (deleted or truncated)"),
                    )
                })?;
            cipher.open_stored_chunk(tx_id, index, total, &mut buf)?;
            out.push(Bytes::from(buf));
        }
        Ok(out)
    }

    fn ack(&self, outbox: &Outbox, which: &Which) -> Result<AckOutcome> {
        let key = {
            let txn = self.db.begin_read()?;
            pick(
                candidates(&txn.open_table(MESSAGES)?, which)?,
                |e| e.ackable_in(outbox),
                rules::ack_order,
            )
            .map(|(k, _)| k)
            .ok_or_else(|| MailboxError::not_found(&which.tx_id))?
        };
        let tx_id = key.as_str();
        let (env, sealed) = self
            .load(tx_id)?
            .filter(|(e, _)| e.ackable_in(outbox))
            .ok_or_else(|| MailboxError::not_found(&which.tx_id))?;
        let meta = self.meta(tx_id, &env, &sealed)?;
        let mut send_confirm = rules::confirms(meta.label.sequence_type, env.acknowledged);
        // The entry must still be the one read above, and still ackable.
        let same = |e: &Envelope| e.local_id == env.local_id && e.ackable_in(outbox);
        let deletion = match self.ack_policy {
            AckPolicy::DeleteOnAck => {
                Some(self.delete_where(tx_id, DeletionReason::Acknowledged, same)?)
            }
            AckPolicy::KeepUntilExpiry => {
                // Decided in the write transaction: of two acks at once, the
                // second sees the flag set and sends no confirm.
                let mut was = true;
                self.update(tx_id, Durability::Immediate, |e| {
                    if !same(e) {
                        return false;
                    }
                    was = e.acknowledged;
                    e.acknowledged = true;
                    true
                })?;
                if was {
                    send_confirm = false;
                }
                None
            }
        };
        Ok(AckOutcome {
            send_confirm,
            meta,
            deletion,
        })
    }

    fn delete_where(
        &self,
        tx_id: &str,
        reason: DeletionReason,
        check: impl Fn(&Envelope) -> bool,
    ) -> Result<Deletion> {
        let at = self.now();
        let txn = self.begin_write(Durability::Immediate)?;
        let env = load_envelope(&txn.open_table(MESSAGES)?, tx_id)?
            .filter(check)
            .ok_or_else(|| MailboxError::not_found(tx_of(tx_id)))?;
        remove_message(&txn, tx_id, &env)?;
        txn.commit()?;
        self.shred(&[env.slot]);
        Ok(Deletion {
            tx_id: tx_of(tx_id).to_owned(),
            reason,
            at,
        })
    }

    /// Applies `change` to one envelope; `change` returns false to refuse.
    fn update(
        &self,
        tx_id: &str,
        durability: Durability,
        change: impl FnOnce(&mut Envelope) -> bool,
    ) -> Result<()> {
        let txn = self.begin_write(durability)?;
        let mut env = load_envelope(&txn.open_table(MESSAGES)?, tx_id)?
            .ok_or_else(|| MailboxError::not_found(tx_of(tx_id)))?;
        if !change(&mut env) {
            return Err(MailboxError::not_found(tx_of(tx_id)));
        }
        put_envelope(&txn, tx_id, &env)?;
        txn.commit()?;
        Ok(())
    }

    fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<Deletion>> {
        let mut deletions = Vec::new();
        loop {
            let txn = self.begin_write(Durability::Immediate)?;
            let due: Vec<String> = txn
                .open_table(EXPIRY)?
                .range::<(i64, &str)>(..(millis(now) + 1, ""))?
                .take(SWEEP_BATCH)
                .map(|r| r.map(|(k, _)| k.value().1.to_owned()))
                .collect::<Result<_, _>>()?;
            let mut slots = Vec::with_capacity(due.len());
            for tx_id in &due {
                let env = load_envelope(&txn.open_table(MESSAGES)?, tx_id)?;
                match env {
                    Some(env) => {
                        remove_message(&txn, tx_id, &env)?;
                        slots.push(env.slot);
                    }
                    // An index row without its message: drop the row.
                    None => {
                        txn.open_table(EXPIRY)?.retain(|(_, t), ()| t != tx_id)?;
                        continue;
                    }
                }
                deletions.push(Deletion {
                    tx_id: tx_of(tx_id).to_owned(),
                    reason: DeletionReason::Expired,
                    at: now,
                });
            }
            txn.commit()?;
            self.shred(&slots);
            if due.len() < SWEEP_BATCH {
                return Ok(deletions);
            }
        }
    }

    fn release_stale_fetches(&self, older_than: Duration) -> Result<usize> {
        let now = self.now();
        let cutoff = now - TimeDelta::from_std(older_than).unwrap_or(TimeDelta::MAX);
        let txn = self.begin_write(Durability::Immediate)?;
        let mut stale = Vec::new();
        for row in txn.open_table(MESSAGES)?.iter()? {
            let (k, v) = row?;
            let env = decode(v.value())?;
            if env.state == MessageState::FetchingInProgress && env.state_timestamp <= cutoff {
                stale.push((k.value().to_owned(), env));
            }
        }
        for (tx_id, env) in &mut stale {
            env.set_state(MessageState::Received, now);
            put_envelope(&txn, tx_id, env)?;
        }
        txn.commit()?;
        Ok(stale.len())
    }

    fn stats(&self) -> Result<Stats> {
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let mut stats = Stats {
            messages: messages.len()?,
            ..Stats::default()
        };
        for row in messages.iter()? {
            let env = decode(row?.1.value())?;
            stats.bytes += env.body_bytes;
            stats.oldest_arrival = Some(
                stats
                    .oldest_arrival
                    .map_or(env.arrival, |o| o.min(env.arrival)),
            );
        }
        Ok(stats)
    }

    fn envelopes(&self) -> Result<Vec<Envelope>> {
        let txn = self.db.begin_read()?;
        let mut out = Vec::new();
        for row in txn.open_table(MESSAGES)?.iter()? {
            out.push(decode(row?.1.value())?);
        }
        Ok(out)
    }

    fn kek_usage(&self) -> Result<BTreeMap<KekId, usize>> {
        let mut usage = BTreeMap::new();
        for env in self.envelopes()? {
            let wrapped = self.slots.load(env.slot, env.local_id)?;
            *usage.entry(wrapped.kek_id).or_insert(0) += 1;
        }
        Ok(usage)
    }

    /// Every message's key id and decrypted body, for `store verify`.
    fn stored_messages(&self) -> Result<Vec<relay_mailbox::verify::StoredMessage>> {
        use relay_mailbox::verify::{BodyCheck, StoredMessage};
        let txn = self.db.begin_read()?;
        let mut out = Vec::new();
        for row in txn.open_table(MESSAGES)?.iter()? {
            let (k, v) = row?;
            let (tx_id, env) = (tx_of(k.value()).to_owned(), decode(v.value())?);
            let kek_id = self.slots.load(env.slot, env.local_id)?.kek_id;
            let body = match self.cipher(&env) {
                Ok(c) => match self.read_chunks(&tx_id, env.id(), &c, 0, env.chunks, env.chunks) {
                    Ok(chunks) => BodyCheck::Opened(Zeroizing::new(chunks.concat())),
                    Err(e) => BodyCheck::Damaged(e.to_string()),
                },
                Err(MailboxError::Kek(relay_mailbox::KekError::UnknownKek(_))) => {
                    BodyCheck::KeyMissing
                }
                Err(e) => BodyCheck::Damaged(e.to_string()),
            };
            out.push(StoredMessage {
                tx_id,
                kek_id,
                body,
            });
        }
        Ok(out)
    }

    fn rewrap_all(&self) -> Result<usize> {
        let current = self.kek.current_id();
        let mut count = 0;
        loop {
            // Each batch holds the write lock (which keeps its messages, and so
            // their slots, in place) only for itself: puts go on between batches.
            let txn = self.begin_write(Durability::None)?;
            let mut done = 0;
            for row in txn.open_table(MESSAGES)?.iter()? {
                let env = decode(row?.1.value())?;
                let wrapped = self.slots.load(env.slot, env.local_id)?;
                if wrapped.kek_id == current {
                    continue;
                }
                let key = self.kek.unwrap(&wrapped, env.local_id.as_bytes())?;
                let rewrapped = self.kek.wrap(&key, env.local_id.as_bytes())?;
                self.slots.rewrite(env.slot, env.local_id, &rewrapped)?;
                done += 1;
                if done == REWRAP_BATCH {
                    break;
                }
            }
            txn.abort()?;
            count += done;
            if done < REWRAP_BATCH {
                return Ok(count);
            }
        }
    }
}

/// What `outbox` and `sender` hold at `now`, from the envelopes (no label is
/// opened); counting stops past `limit`. Read in the transaction it is given:
/// in the put's write transaction it is exact.
fn usage_in(
    messages: &impl ReadableTable<&'static str, &'static [u8]>,
    outboxes: &impl ReadableTable<(&'static str, &'static str), ()>,
    outbox: &Outbox,
    sender: &str,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<(Usage, Usage)> {
    let mut in_outbox = Usage::default();
    for row in outboxes.range((outbox.as_str(), "")..)? {
        let (k, ()) = row.map(|(k, v)| (k, v.value()))?;
        let (row_outbox, tx_id) = k.value();
        if row_outbox != outbox.as_str() || in_outbox.messages > limit {
            break;
        }
        if let Some(env) = load_envelope(messages, tx_id)?
            && env.expires_at > now
        {
            in_outbox.messages += 1;
            in_outbox.bytes += env.body_bytes;
        }
    }
    // One machine, one file: a scan of the envelopes (no decryption).
    let mut by_sender = Usage::default();
    for row in messages.iter()? {
        let (_, v) = row?;
        let env = decode(v.value())?;
        if env.sender.as_deref() == Some(sender) && env.expires_at > now {
            by_sender.messages += 1;
            by_sender.bytes += env.body_bytes;
            if by_sender.messages > limit {
                break;
            }
        }
    }
    Ok((in_outbox, by_sender))
}

/// Removes a put's staged rows and key if the put does not reach its final commit
/// (an error, or the future dropped when the sender disconnects).
struct PutGuard {
    inner: Arc<Inner>,
    local_id: Uuid,
    slot: Slot,
    armed: bool,
}

impl Drop for PutGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (inner, local_id, slot) = (self.inner.clone(), self.local_id, self.slot);
        let abort = move || {
            if let Err(e) = inner.abort_put(local_id, slot) {
                tracing::warn!(error = %e, "cleaning up an unfinished put failed; the next open does it");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(abort)),
            Err(_) => abort(),
        }
    }
}

struct RedbLease {
    inner: Arc<Inner>,
    /// The message's row key.
    tx_id: String,
    token: Uuid,
}

impl FetchLease for RedbLease {
    fn complete(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                self.inner.end_fetch(
                    &self.tx_id,
                    self.token,
                    MessageState::Fetched,
                    Durability::Immediate,
                )
            })
            .await
            .map_err(|e| MailboxError::Task(e.to_string()))?
        })
    }

    fn release(self: Box<Self>) {
        // Not durable: a release lost in a crash is redone by the next open.
        if let Err(e) = self.inner.end_fetch(
            &self.tx_id,
            self.token,
            MessageState::Received,
            Durability::None,
        ) {
            tracing::debug!(tx_id = %tx_of(&self.tx_id), error = %e, "fetch lock not released");
        }
    }
}

impl RedbStore {
    /// What `outbox` holds and what `sender` has sent that is still held:
    /// the quotas' figures, read from the store.
    pub async fn usage(&self, outbox: &Outbox, sender: &str, limit: u64) -> Result<(Usage, Usage)> {
        let (outbox, sender) = (outbox.clone(), sender.to_owned());
        self.run(move |i| i.usage(&outbox, &sender, limit)).await
    }
}

impl RedbStore {
    /// The verified chunks of a message, read ahead in batches off the async
    /// workers.
    fn body_stream(
        &self,
        tx_id: String,
        env: &Envelope,
        cipher: MessageCipher,
    ) -> BoxStream<'static, io::Result<Bytes>> {
        let (inner, tx, cipher) = (self.inner.clone(), tx_id, Arc::new(cipher));
        let (id, total) = (env.id(), env.chunks);
        stream::try_unfold(0u32, move |next| {
            let (inner, cipher, tx) = (inner.clone(), cipher.clone(), tx.clone());
            async move {
                if next >= total {
                    return Ok::<_, io::Error>(None);
                }
                let count = READ_AHEAD.min(total - next);
                let batch = tokio::task::spawn_blocking(move || {
                    inner.read_chunks(&tx, id, &cipher, next, count, total)
                })
                .await
                .map_err(io::Error::other)??;
                Ok(Some((
                    stream::iter(batch.into_iter().map(Ok::<_, io::Error>)),
                    next + count,
                )))
            }
        })
        .try_flatten()
        .boxed()
    }
}

impl MailboxStore for RedbStore {
    async fn put_within<R>(
        &self,
        mut label: MessageLabel,
        body: R,
        quota: Quota,
    ) -> Result<PutOutcome>
    where
        R: AsyncRead + Send,
    {
        rules::check_label(&mut label)?;
        // This engine's row key joins tx.id and sender with SEP.
        if label.tx_id.contains(SEP) || label.from.as_deref().is_some_and(|f| f.contains(SEP)) {
            return Err(MailboxError::InvalidLabel(
                "control character in tx.id or from",
            ));
        }

        let local_id = Uuid::new_v4();
        let key = DataKey::generate();
        let nonce_prefix = MessageCipher::random_prefix();
        let cipher = Arc::new(MessageCipher::new(&key, nonce_prefix));
        let slot = self.run(move |i| i.begin_put(local_id, key)).await?;
        let mut guard = PutGuard {
            inner: self.inner.clone(),
            local_id,
            slot,
            armed: true,
        };

        let streamed = self.stream_in(body, local_id, &cipher).await;
        let outcome = match streamed {
            Ok((chunks, body_bytes)) => {
                self.run(move |i| {
                    i.finish_put(
                        label,
                        quota,
                        local_id,
                        slot,
                        nonce_prefix,
                        &cipher,
                        chunks,
                        body_bytes,
                    )
                })
                .await
            }
            Err(e) => Err(e),
        };
        if outcome.is_err() {
            // Clean up before answering, so the caller sees a store without the
            // half message; the guard only covers cancellation.
            guard.armed = false;
            let _ = self.run(move |i| i.abort_put(local_id, slot)).await;
        }
        guard.armed = false;
        outcome
    }

    async fn list(&self, outbox: &Outbox, filter: &ListFilter) -> Result<Vec<MessageMeta>> {
        let (outbox, filter) = (outbox.clone(), filter.clone());
        self.run(move |i| i.list(&outbox, &filter)).await
    }

    async fn fetch(&self, outbox: &Outbox, which: impl Into<Which> + Send) -> Result<FetchHandle> {
        let (outbox, which) = (outbox.clone(), which.into());
        let (meta, env, key, token, cipher) =
            self.run(move |i| i.lock_for_fetch(&outbox, &which)).await?;
        let tx_id = meta.label.tx_id.clone();
        let lease = Box::new(RedbLease {
            inner: self.inner.clone(),
            tx_id: key,
            token,
        });
        let chunks = self.body_stream(tx_id, &env, cipher);
        Ok(FetchHandle::new(meta, chunks, lease))
    }

    async fn read(&self, which: impl Into<Which> + Send) -> Result<FetchHandle> {
        let which = which.into();
        let (meta, env, cipher) = self
            .run(move |i| {
                let key = i.key_of(&which)?;
                let (env, sealed) = i
                    .load(&key)?
                    .ok_or_else(|| MailboxError::not_found(&which.tx_id))?;
                let cipher = i.cipher(&env)?;
                let meta = meta_with(&cipher, &key, &env, &sealed)?;
                Ok((meta, env, cipher))
            })
            .await?;
        let chunks = self.body_stream(meta.label.tx_id.clone(), &env, cipher);
        Ok(FetchHandle::new(meta, chunks, Box::new(NoLease)))
    }

    async fn ack(&self, outbox: &Outbox, which: impl Into<Which> + Send) -> Result<AckOutcome> {
        let (outbox, which) = (outbox.clone(), which.into());
        self.run(move |i| i.ack(&outbox, &which)).await
    }

    async fn delete(
        &self,
        which: impl Into<Which> + Send,
        reason: DeletionReason,
    ) -> Result<Deletion> {
        let which = which.into();
        self.run(move |i| i.delete_where(&i.key_of(&which)?, reason, |_| true))
            .await
    }

    async fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<Deletion>> {
        self.run(move |i| i.sweep(now)).await
    }

    async fn release_stale_fetches(&self, older_than: Duration) -> Result<usize> {
        self.run(move |i| i.release_stale_fetches(older_than)).await
    }

    async fn set_state(&self, which: impl Into<Which> + Send, state: MessageState) -> Result<()> {
        let which = which.into();
        self.run(move |i| {
            let tx = i.key_of(&which)?;
            let now = i.now();
            i.update(&tx, Durability::Immediate, |e| {
                e.set_state(state, now);
                true
            })
        })
        .await
    }

    async fn mark_processed(
        &self,
        which: impl Into<Which> + Send,
        state: MessageState,
    ) -> Result<()> {
        let which = which.into();
        self.run(move |i| {
            let tx = i.key_of(&which)?;
            let now = i.now();
            i.update(&tx, Durability::Immediate, |e| {
                e.processing = false;
                e.set_state(state, now);
                true
            })
        })
        .await
    }

    async fn get_meta(&self, which: impl Into<Which> + Send) -> Result<Option<MessageMeta>> {
        let which = which.into();
        self.run(move |i| {
            let tx = match i.key_of(&which) {
                Ok(key) => key,
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            };
            i.load(&tx)?
                .map(|(env, sealed)| i.meta(&tx, &env, &sealed))
                .transpose()
        })
        .await
    }

    async fn pending_processing(&self) -> Result<Vec<MessageMeta>> {
        let mut pending = self.run(|i| i.scan(|e| e.processing)).await?;
        pending.sort_by(|a, b| {
            a.arrival
                .cmp(&b.arrival)
                .then_with(|| a.tx_id().cmp(b.tx_id()))
        });
        Ok(pending)
    }

    async fn stats(&self) -> Result<Stats> {
        self.run(|i| i.stats()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_mailbox::kek::KeyFile;
    use tokio::io::AsyncReadExt;

    fn count<K: redb::Key + 'static, V: redb::Value + 'static>(
        store: &RedbStore,
        table: TableDefinition<K, V>,
    ) -> u64 {
        let txn = store.inner.db.begin_read().unwrap();
        txn.open_table(table).unwrap().len().unwrap()
    }

    /// A store written when a message's row key was its tx.id alone is
    /// re-keyed by (tx.id, sender) when opened, and every message stays found.
    #[tokio::test]
    async fn open_rekeys_rows_keyed_by_tx_id_alone() {
        let dir = tempfile::tempdir().unwrap();
        let kek: Arc<dyn KeyEncryptionKey> =
            Arc::new(KeyFile::open_or_create(dir.path().join("kek")).unwrap());
        let path = dir.path().join("mailbox.redb");
        let store = RedbStore::open(&path, kek.clone()).unwrap();
        let mut label = MessageLabel::new(
            "tx-old",
            Outbox::parse("1111111111").unwrap(),
            "00000000-0000-0000-0000-000000000001",
        );
        label.from = Some("2222222222".into());
        store.put(label.clone(), &b"body"[..]).await.unwrap();
        // Back to the old layout: every row keyed by the tx.id.
        let key = row_key("tx-old", "2222222222");
        {
            let txn = store.inner.db.begin_write().unwrap();
            let env = load_envelope(&txn.open_table(MESSAGES).unwrap(), &key)
                .unwrap()
                .unwrap();
            let sealed = txn
                .open_table(LABELS)
                .unwrap()
                .remove(key.as_str())
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            txn.open_table(MESSAGES)
                .unwrap()
                .remove(key.as_str())
                .unwrap();
            txn.open_table(OUTBOXES)
                .unwrap()
                .remove(("1111111111", key.as_str()))
                .unwrap();
            txn.open_table(EXPIRY)
                .unwrap()
                .remove((millis(env.expires_at), key.as_str()))
                .unwrap();
            put_envelope(&txn, "tx-old", &env).unwrap();
            txn.open_table(LABELS)
                .unwrap()
                .insert("tx-old", sealed.as_slice())
                .unwrap();
            txn.open_table(OUTBOXES)
                .unwrap()
                .insert(("1111111111", "tx-old"), ())
                .unwrap();
            txn.open_table(EXPIRY)
                .unwrap()
                .insert((millis(env.expires_at), "tx-old"), ())
                .unwrap();
            txn.commit().unwrap();
        }
        drop(store);

        let store = RedbStore::open(&path, kek).unwrap();
        let meta = store.get_meta(Which::of(&label)).await.unwrap().unwrap();
        assert_eq!(meta.label.sender_org().as_deref(), Some("2222222222"));
        store
            .mark_processed(Which::of(&label), MessageState::Received)
            .await
            .unwrap();
        let mut h = store
            .fetch(&Outbox::parse("1111111111").unwrap(), "tx-old")
            .await
            .unwrap();
        let mut body = Vec::new();
        h.body().unwrap().read_to_end(&mut body).await.unwrap();
        assert_eq!(body, b"body");
        assert_eq!(count(&store, MESSAGES), 1);
        assert_eq!(count(&store, OUTBOXES), 1);
        assert_eq!(count(&store, EXPIRY), 1);
    }

    /// A put that never reached its final commit (the process died) leaves staged
    /// chunks and a key slot; the next open removes both.
    #[test]
    fn open_removes_the_remains_of_an_unfinished_put() {
        let dir = tempfile::tempdir().unwrap();
        let kek: Arc<dyn KeyEncryptionKey> =
            Arc::new(KeyFile::open_or_create(dir.path().join("kek")).unwrap());
        let path = dir.path().join("mailbox.redb");
        let store = RedbStore::open(&path, kek.clone()).unwrap();
        let local_id = Uuid::new_v4();
        let key = DataKey::generate();
        let cipher = MessageCipher::new(&key, MessageCipher::random_prefix());
        let slot = store.inner.begin_put(local_id, key).unwrap();
        let batch = (0..3).map(|i| (i, false, vec![1u8; 100])).collect();
        store.inner.stage_chunks(local_id, &cipher, batch).unwrap();
        assert_eq!(count(&store, STAGING), 1);
        assert_eq!(count(&store, CHUNKS), 3);
        drop(store);

        let store = RedbStore::open(&path, kek).unwrap();
        assert_eq!(count(&store, STAGING), 0);
        assert_eq!(count(&store, CHUNKS), 0);
        let slots = std::fs::read(store.key_slot_path()).unwrap();
        let at = slot as usize * super::super::slots::SLOT_SIZE;
        assert!(
            slots[at..at + super::super::slots::SLOT_SIZE]
                .iter()
                .all(|&b| b == 0)
        );
    }
}
