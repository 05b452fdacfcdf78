//! The mailbox on PostgreSQL. Same contract and same crypto as the redb engine
//! (`relay_mailbox::RedbStore`): bodies are sealed in 64 KiB chunks under a
//! per-message data key, the label is sealed, the data key is stored wrapped
//! under a KEK that never enters the database.
//!
//! A `put` is one transaction: the wrapped key, then each sealed chunk as its own
//! short statement while the body streams in (at most one chunk and its
//! look-ahead in memory), then the message row. Nothing is visible before the
//! commit; a node that dies mid-upload leaves nothing (the database rolls the
//! transaction back when the connection drops). Two puts of one tx.id race on the
//! primary key; the loser rolls back and answers Duplicate.
//!
//! A fetch takes the lock with one conditional `UPDATE` (state `received` →
//! `fetching_in_progress`, a fresh token), so of two nodes exactly one wins; the
//! body streams out in batches of chunks on short pooled queries. A lock whose
//! holder vanished is returned by `release_stale_fetches`, which every node's
//! sweeper runs: that is the lock's lease.
//!
//! Times come from the store's [`Clock`](relay_mailbox::Clock), kept to the
//! millisecond like the redb engine.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use relay_mailbox::{
    AckOutcome, AckPolicy, CHUNK_SIZE, DataKey, Deletion, DeletionReason, FetchHandle, FetchLease,
    ListFilter, MailboxError, MailboxStore, MessageCipher, MessageLabel, MessageMeta, MessageState,
    NONCE_PREFIX_LEN, Outbox, PutOutcome, SequenceType, Stats, TAG_LEN, WrappedKey,
};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_postgres::Row;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{Column, Inner, PgStore, describe, describe_pool};

type Result<T, E = MailboxError> = std::result::Result<T, E>;

/// Chunks per query while a body streams out (1 MiB).
const READ_AHEAD: i32 = 16;
/// Chunk inserts in flight on one connection while a body streams in (512 KiB).
const IN_FLIGHT: usize = 8;
/// Messages deleted per statement by the sweeper.
const SWEEP_BATCH: i64 = 256;

/// The columns [`Envelope::from_row`] reads, from `mailbox_messages m` joined
/// with `mailbox_keys k`.
const COLUMNS: &str = "m.tx_id, m.local_id, m.outbox, m.transfer_type, m.state, \
    m.acknowledged, m.processing, m.arrival, m.state_timestamp, m.expires_at, \
    m.body_bytes, m.chunks, m.nonce_prefix, m.label, k.kek_id, k.wrapped";

fn db(op: &'static str) -> impl Fn(tokio_postgres::Error) -> MailboxError {
    move |e| MailboxError::Database(format!("{op}: {}", describe(&e)))
}

fn pool(op: &'static str) -> impl Fn(deadpool_postgres::PoolError) -> MailboxError {
    move |e| MailboxError::Database(format!("{op}: {}", describe_pool(&e)))
}

fn state_name(state: MessageState) -> &'static str {
    match state {
        MessageState::New => "new",
        MessageState::Received => "received",
        MessageState::FetchingInProgress => "fetching_in_progress",
        MessageState::Fetched => "fetched",
        MessageState::Quarantined => "quarantined",
    }
}

fn parse_state(s: &str) -> Option<MessageState> {
    Some(match s {
        "new" => MessageState::New,
        "received" => MessageState::Received,
        "fetching_in_progress" => MessageState::FetchingInProgress,
        "fetched" => MessageState::Fetched,
        "quarantined" => MessageState::Quarantined,
        _ => return None,
    })
}

/// One message row with its wrapped key, as read from the database.
struct Envelope {
    tx_id: String,
    local_id: Uuid,
    state: MessageState,
    acknowledged: bool,
    processing: bool,
    arrival: DateTime<Utc>,
    state_timestamp: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    body_bytes: u64,
    chunks: u32,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    sealed_label: Vec<u8>,
    wrapped: WrappedKey,
    outbox: String,
}

impl Envelope {
    fn from_row(row: &Row) -> Result<Self> {
        let tx_id: String = row.try_get(0).map_err(db("reading a row"))?;
        let damaged = |what| MailboxError::Integrity {
            tx_id: tx_id.clone(),
            what,
        };
        let state: String = row.try_get(4).map_err(db("reading a row"))?;
        let prefix: Vec<u8> = row.try_get(12).map_err(db("reading a row"))?;
        let kek_id: i64 = row.try_get(14).map_err(db("reading a row"))?;
        let body_bytes: i64 = row.try_get(10).map_err(db("reading a row"))?;
        let chunks: i32 = row.try_get(11).map_err(db("reading a row"))?;
        Ok(Self {
            local_id: row.try_get(1).map_err(db("reading a row"))?,
            outbox: row.try_get(2).map_err(db("reading a row"))?,
            state: parse_state(&state).ok_or_else(|| damaged("envelope state"))?,
            acknowledged: row.try_get(5).map_err(db("reading a row"))?,
            processing: row.try_get(6).map_err(db("reading a row"))?,
            arrival: row.try_get(7).map_err(db("reading a row"))?,
            state_timestamp: row.try_get(8).map_err(db("reading a row"))?,
            expires_at: row.try_get(9).map_err(db("reading a row"))?,
            body_bytes: u64::try_from(body_bytes).map_err(|_| damaged("envelope size"))?,
            chunks: u32::try_from(chunks).map_err(|_| damaged("envelope chunks"))?,
            nonce_prefix: prefix
                .as_slice()
                .try_into()
                .map_err(|_| damaged("envelope nonce"))?,
            sealed_label: row.try_get(13).map_err(db("reading a row"))?,
            wrapped: WrappedKey {
                kek_id: u32::try_from(kek_id).map_err(|_| damaged("key id"))?,
                bytes: row.try_get(15).map_err(db("reading a row"))?,
            },
            tx_id,
        })
    }

    fn ackable_in(&self, outbox: &Outbox) -> bool {
        self.outbox == outbox.as_str()
            && !self.processing
            && matches!(
                self.state,
                MessageState::Received | MessageState::FetchingInProgress | MessageState::Fetched
            )
    }
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(3)
    }

    async fn client(&self, op: &'static str) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool(op))
    }

    /// Unwraps the key and opens the label. KEKs may block (a KMS), so this runs
    /// on a blocking thread.
    fn open(&self, env: &Envelope) -> Result<(MessageMeta, MessageCipher)> {
        let key = self.kek.unwrap(&env.wrapped, env.local_id.as_bytes())?;
        let cipher = MessageCipher::new(&key, env.nonce_prefix);
        let integrity = || MailboxError::Integrity {
            tx_id: env.tx_id.clone(),
            what: "label",
        };
        let mut buf = Zeroizing::new(env.sealed_label.clone());
        cipher.open_label(&mut buf).map_err(|_| integrity())?;
        let label: MessageLabel = serde_json::from_slice(&buf)?;
        if label.tx_id != env.tx_id || label.to.as_str() != env.outbox {
            return Err(integrity());
        }
        let meta = MessageMeta {
            label,
            local_id: env.local_id,
            state: env.state,
            acknowledged: env.acknowledged,
            processing: env.processing,
            arrival: env.arrival,
            state_timestamp: env.state_timestamp,
            expires_at: env.expires_at,
            body_bytes: env.body_bytes,
        };
        Ok((meta, cipher))
    }
}

impl PgStore {
    async fn open_all(&self, envs: Vec<Envelope>) -> Result<Vec<(MessageMeta, MessageCipher)>> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || envs.iter().map(|e| inner.open(e)).collect())
            .await
            .map_err(|e| MailboxError::Task(e.to_string()))?
    }

    async fn open_one(&self, env: Envelope) -> Result<(MessageMeta, MessageCipher)> {
        let mut all = self.open_all(vec![env]).await?;
        all.pop()
            .ok_or_else(|| MailboxError::Task("no envelope".to_owned()))
    }

    async fn load(&self, tx_id: &str) -> Result<Option<Envelope>> {
        let client = self.inner.client("load").await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM mailbox_messages m \
                     JOIN mailbox_keys k ON k.local_id = m.local_id WHERE m.tx_id = $1"
                ),
                &[&tx_id],
            )
            .await
            .map_err(db("load"))?;
        row.as_ref().map(Envelope::from_row).transpose()
    }

    /// Deletes the key row of `tx_id` (chunks and message follow by cascade) when
    /// `guard` (SQL on `m`) holds. The shredding: without the wrapped key the
    /// ciphertext cannot be read, whatever the database's pages still hold.
    async fn delete_if(
        &self,
        tx_id: &str,
        guard: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        reason: DeletionReason,
    ) -> Result<Deletion> {
        let at = self.inner.now();
        let client = self.inner.client("delete").await?;
        let sql = format!(
            "DELETE FROM mailbox_keys k USING mailbox_messages m \
             WHERE k.local_id = m.local_id AND m.tx_id = $1 {guard}"
        );
        let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&tx_id];
        all.extend_from_slice(params);
        let n = client.execute(&sql, &all).await.map_err(db("delete"))?;
        if n == 0 {
            return Err(MailboxError::not_found(tx_id));
        }
        Ok(Deletion {
            tx_id: tx_id.to_owned(),
            reason,
            at,
        })
    }

    /// Streams a put inside `tx`: the key row, the chunks, the message row.
    async fn put_in<R: AsyncRead + Send>(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        label: &MessageLabel,
        body: R,
    ) -> Result<PutOutcome> {
        let local_id = Uuid::new_v4();
        let key = DataKey::generate();
        let nonce_prefix = MessageCipher::random_prefix();
        let cipher = MessageCipher::new(&key, nonce_prefix);
        let kek = self.inner.kek.clone();
        let wrapped = tokio::task::spawn_blocking(move || kek.wrap(&key, local_id.as_bytes()))
            .await
            .map_err(|e| MailboxError::Task(e.to_string()))??;
        tx.execute(
            "INSERT INTO mailbox_keys (local_id, kek_id, wrapped) VALUES ($1, $2, $3)",
            &[&local_id, &i64::from(wrapped.kek_id), &wrapped.bytes],
        )
        .await
        .map_err(db("storing the data key"))?;

        let insert = tx
            .prepare("INSERT INTO mailbox_chunks (local_id, idx, data) VALUES ($1, $2, $3)")
            .await
            .map_err(db("storing a chunk"))?;
        let mut body = std::pin::pin!(body);
        let mut index: u32 = 0;
        let mut body_bytes: u64 = 0;
        // Inserts are pipelined on the one connection: up to IN_FLIGHT chunks are
        // on their way while the next is read, so memory stays bounded.
        let mut in_flight = futures::stream::FuturesOrdered::new();
        let (tx_ref, insert_ref) = (tx, &insert);
        let mut pending = read_chunk(&mut body).await.map_err(MailboxError::Body)?;
        loop {
            // One chunk of look-ahead tells whether `pending` is the last.
            let next = read_chunk(&mut body).await.map_err(MailboxError::Body)?;
            let last = next.is_empty();
            body_bytes += pending.len() as u64;
            cipher.seal_chunk(index, last, &mut pending);
            let idx = i32::try_from(index).map_err(|_| {
                MailboxError::Body(io::Error::other("body exceeds the chunk limit"))
            })?;
            let data = std::mem::replace(&mut pending, next);
            in_flight.push_back(async move {
                tx_ref.execute(insert_ref, &[&local_id, &idx, &data]).await
            });
            while in_flight.len() >= IN_FLIGHT || (last && !in_flight.is_empty()) {
                if let Some(done) = in_flight.next().await {
                    done.map_err(db("storing a chunk"))?;
                }
            }
            if last {
                break;
            }
            index += 1;
        }
        let chunks = index + 1;

        let now = self.inner.now();
        let ttl = self.inner.retention.ttl_for(&label.product);
        let expires_at = now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        let mut sealed = serde_json::to_vec(label)?;
        cipher.seal_label(&mut sealed);
        let body_bytes_db = i64::try_from(body_bytes)
            .map_err(|_| MailboxError::Body(io::Error::other("body too large")))?;
        let chunks_db = i32::try_from(chunks)
            .map_err(|_| MailboxError::Body(io::Error::other("body exceeds the chunk limit")))?;
        let stored = tx
            .query_opt(
                "INSERT INTO mailbox_messages (tx_id, local_id, outbox, transfer_type, state, \
                 acknowledged, processing, arrival, state_timestamp, expires_at, body_bytes, \
                 chunks, nonce_prefix, fetch_token, label) \
                 VALUES ($1, $2, $3, $4, 'new', false, true, $5, $5, $6, $7, $8, $9, NULL, $10) \
                 ON CONFLICT (tx_id) DO NOTHING RETURNING arrival",
                &[
                    &label.tx_id,
                    &local_id,
                    &label.to.as_str(),
                    &label.transfer_type.as_str(),
                    &now,
                    &expires_at,
                    &body_bytes_db,
                    &chunks_db,
                    &nonce_prefix.as_slice(),
                    &sealed,
                ],
            )
            .await
            .map_err(db("storing the message"))?;
        Ok(match stored {
            Some(_) => PutOutcome::Stored {
                local_id,
                arrival: now,
            },
            // Another put of this tx.id committed first; the caller rolls back.
            None => PutOutcome::Duplicate {
                original_arrival: now,
            },
        })
    }

    async fn arrival_of(&self, tx_id: &str) -> Result<Option<DateTime<Utc>>> {
        let client = self.inner.client("duplicate check").await?;
        let row = client
            .query_opt(
                "SELECT arrival FROM mailbox_messages WHERE tx_id = $1",
                &[&tx_id],
            )
            .await
            .map_err(db("duplicate check"))?;
        Ok(row.map(|r| r.col(0)).transpose()?)
    }

    /// Every message passing `condition` (SQL on `m`), decrypted.
    async fn scan(
        &self,
        condition: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<MessageMeta>> {
        let client = self.inner.client("scan").await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM mailbox_messages m \
                     JOIN mailbox_keys k ON k.local_id = m.local_id WHERE {condition}"
                ),
                params,
            )
            .await
            .map_err(db("scan"))?;
        drop(client);
        let envs = rows.iter().map(Envelope::from_row).collect::<Result<_>>()?;
        Ok(self
            .open_all(envs)
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    async fn update_state(
        &self,
        tx_id: &str,
        state: MessageState,
        clear_processing: bool,
    ) -> Result<()> {
        let now = self.inner.now();
        let client = self.inner.client("state change").await?;
        let n = client
            .execute(
                "UPDATE mailbox_messages SET \
                   state_timestamp = CASE WHEN state <> $2 THEN $3 ELSE state_timestamp END, \
                   state = $2, \
                   fetch_token = CASE WHEN $2 = 'fetching_in_progress' THEN fetch_token END, \
                   processing = processing AND NOT $4 \
                 WHERE tx_id = $1",
                &[&tx_id, &state_name(state), &now, &clear_processing],
            )
            .await
            .map_err(db("state change"))?;
        if n == 0 {
            return Err(MailboxError::not_found(tx_id));
        }
        Ok(())
    }

    /// Rewraps every data key not under the newest KEK (after a rotation), in
    /// batches; returns how many were rewrapped. Safe while nodes serve: a row
    /// is only rewritten if it still holds the wrap that was read.
    pub async fn rewrap_all(&self) -> Result<usize> {
        let current = i64::from(self.inner.kek.current_id());
        let mut count = 0;
        loop {
            let client = self.inner.client("rewrap").await?;
            let rows = client
                .query(
                    "SELECT local_id, kek_id, wrapped FROM mailbox_keys WHERE kek_id <> $1 LIMIT 256",
                    &[&current],
                )
                .await
                .map_err(db("rewrap"))?;
            if rows.is_empty() {
                return Ok(count);
            }
            let old: Vec<(Uuid, WrappedKey)> = rows
                .iter()
                .map(|r| {
                    let id: i64 = r.col(1)?;
                    Ok((
                        r.col(0)?,
                        WrappedKey {
                            kek_id: u32::try_from(id).unwrap_or(u32::MAX),
                            bytes: r.col(2)?,
                        },
                    ))
                })
                .collect::<Result<_>>()?;
            let kek = self.inner.kek.clone();
            let rewrapped = tokio::task::spawn_blocking(move || {
                old.into_iter()
                    .map(|(id, w)| {
                        let key = kek.unwrap(&w, id.as_bytes())?;
                        Ok((id, w, kek.wrap(&key, id.as_bytes())?))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await
            .map_err(|e| MailboxError::Task(e.to_string()))??;
            for (id, old, new) in rewrapped {
                let n = client
                    .execute(
                        "UPDATE mailbox_keys SET kek_id = $2, wrapped = $3 \
                         WHERE local_id = $1 AND wrapped = $4",
                        &[&id, &i64::from(new.kek_id), &new.bytes, &old.bytes],
                    )
                    .await
                    .map_err(db("rewrap"))?;
                count += usize::try_from(n).unwrap_or(0);
            }
        }
    }

    /// How many stored data keys each KEK wraps: check before retiring a KEK.
    pub async fn kek_usage(&self) -> Result<std::collections::BTreeMap<u32, usize>> {
        let client = self.inner.client("key usage").await?;
        let rows = client
            .query(
                "SELECT kek_id, count(*) FROM mailbox_keys GROUP BY kek_id",
                &[],
            )
            .await
            .map_err(db("key usage"))?;
        rows.iter()
            .map(|r| {
                let (id, n): (i64, i64) = (r.col(0)?, r.col(1)?);
                Ok((
                    u32::try_from(id).unwrap_or(u32::MAX),
                    usize::try_from(n).unwrap_or(usize::MAX),
                ))
            })
            .collect()
    }
}

/// Reads up to one chunk: a full chunk unless the body ends first.
async fn read_chunk<R: AsyncRead + Unpin>(body: &mut R) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut filled = 0;
    while filled < CHUNK_SIZE {
        let n = body.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    buf.reserve_exact(TAG_LEN);
    Ok(buf)
}

struct PgLease {
    inner: Arc<Inner>,
    tx_id: String,
    token: Uuid,
}

impl PgLease {
    async fn end(inner: &Inner, tx_id: &str, token: Uuid, state: MessageState) -> Result<()> {
        let now = inner.now();
        let client = inner.client("ending a fetch").await?;
        let n = client
            .execute(
                "UPDATE mailbox_messages SET state = $3, state_timestamp = $4, fetch_token = NULL \
                 WHERE tx_id = $1 AND state = 'fetching_in_progress' AND fetch_token = $2",
                &[&tx_id, &token, &state_name(state), &now],
            )
            .await
            .map_err(db("ending a fetch"))?;
        if n == 0 {
            return Err(MailboxError::FetchLockLost {
                tx_id: tx_id.to_owned(),
            });
        }
        Ok(())
    }
}

impl FetchLease for PgLease {
    fn complete(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            Self::end(&self.inner, &self.tx_id, self.token, MessageState::Fetched).await
        })
    }

    fn release(self: Box<Self>) {
        // From Drop: hand the release to the runtime. A release that never runs
        // (no runtime, lost database) leaves the lock to expire with its lease.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            if let Err(e) =
                Self::end(&self.inner, &self.tx_id, self.token, MessageState::Received).await
            {
                tracing::debug!(tx_id = %self.tx_id, error = %e, "fetch lock not released");
            }
        });
    }
}

impl MailboxStore for PgStore {
    async fn put<R>(&self, mut label: MessageLabel, body: R) -> Result<PutOutcome>
    where
        R: AsyncRead + Send,
    {
        label.normalise();
        if label.tx_id.is_empty() {
            return Err(MailboxError::InvalidLabel("tx.id is empty"));
        }
        if label.product.is_empty() {
            return Err(MailboxError::InvalidLabel("product is empty"));
        }
        if let Some(original_arrival) = self.arrival_of(&label.tx_id).await? {
            return Ok(PutOutcome::Duplicate { original_arrival });
        }
        let mut client = self.inner.client("put").await?;
        let tx = client.transaction().await.map_err(db("put"))?;
        // Dropped (error or cancellation) without commit, the transaction rolls
        // back: no key, no chunk, no message.
        let outcome = self.put_in(&tx, &label, body).await?;
        match outcome {
            PutOutcome::Stored { .. } => {
                tx.commit().await.map_err(db("committing a put"))?;
                Ok(outcome)
            }
            PutOutcome::Duplicate { .. } => {
                tx.rollback().await.map_err(db("put"))?;
                drop(client);
                let original_arrival = self
                    .arrival_of(&label.tx_id)
                    .await?
                    .unwrap_or_else(|| self.inner.now());
                Ok(PutOutcome::Duplicate { original_arrival })
            }
        }
    }

    async fn list(&self, outbox: &Outbox, filter: &ListFilter) -> Result<Vec<MessageMeta>> {
        let now = self.inner.now();
        // Cheap checks in SQL before paying for a decryption; the filter then
        // applies every criterion the same way as in the redb engine.
        let candidates = self
            .scan(
                "m.outbox = $1 AND m.state = 'received' AND NOT m.processing \
                 AND m.transfer_type = 'asynch' AND m.expires_at > $2 \
                 AND NOT ($3 AND m.acknowledged) \
                 AND ($4::timestamptz IS NULL OR m.state_timestamp >= $4)",
                &[&outbox.as_str(), &now, &filter.no_ack, &filter.since],
            )
            .await?;
        Ok(filter.select(outbox, now, candidates))
    }

    async fn fetch(&self, outbox: &Outbox, tx_id: &str) -> Result<FetchHandle> {
        let now = self.inner.now();
        let token = Uuid::new_v4();
        let client = self.inner.client("fetch").await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE mailbox_messages m SET state = 'fetching_in_progress', \
                       state_timestamp = $3, fetch_token = $4 \
                     FROM mailbox_keys k \
                     WHERE k.local_id = m.local_id AND m.tx_id = $1 AND m.outbox = $2 \
                       AND m.state = 'received' AND NOT m.processing \
                       AND m.transfer_type = 'asynch' AND m.expires_at > $3 \
                     RETURNING {COLUMNS}"
                ),
                &[&tx_id, &outbox.as_str(), &now, &token],
            )
            .await
            .map_err(db("fetch"))?
            .ok_or_else(|| MailboxError::not_found(tx_id))?;
        drop(client);
        let lease = Box::new(PgLease {
            inner: self.inner.clone(),
            tx_id: tx_id.to_owned(),
            token,
        });
        // From here on a failure drops the lease, which releases the lock.
        let env = Envelope::from_row(&row)?;
        let (local_id, total) = (env.local_id, env.chunks);
        let (meta, cipher) = self.open_one(env).await?;
        let (inner, tx, cipher) = (self.inner.clone(), tx_id.to_owned(), Arc::new(cipher));
        let chunks: BoxStream<'static, io::Result<Bytes>> = stream::try_unfold(0u32, move |next| {
            let (inner, cipher, tx) = (inner.clone(), cipher.clone(), tx.clone());
            async move {
                if next >= total {
                    return Ok::<_, io::Error>(None);
                }
                let count = (READ_AHEAD as u32).min(total - next);
                let batch = read_chunks(&inner, &tx, local_id, &cipher, next, count, total).await?;
                Ok(Some((
                    stream::iter(batch.into_iter().map(Ok::<_, io::Error>)),
                    next + count,
                )))
            }
        })
        .try_flatten()
        .boxed();
        Ok(FetchHandle::new(meta, chunks, lease))
    }

    async fn ack(&self, outbox: &Outbox, tx_id: &str) -> Result<AckOutcome> {
        let env = self
            .load(tx_id)
            .await?
            .filter(|e| e.ackable_in(outbox))
            .ok_or_else(|| MailboxError::not_found(tx_id))?;
        let local_id = env.local_id;
        let acknowledged = env.acknowledged;
        let (meta, _) = self.open_one(env).await?;
        let send_confirm = meta.label.sequence_type != SequenceType::Adm && !acknowledged;
        // The row must still be the one read above, and still ackable.
        let same = "AND m.local_id = $2 AND m.outbox = $3 AND NOT m.processing \
                    AND m.state IN ('received', 'fetching_in_progress', 'fetched')";
        let deletion = match self.inner.ack_policy {
            AckPolicy::DeleteOnAck => Some(
                self.delete_if(
                    tx_id,
                    same,
                    &[&local_id, &outbox.as_str()],
                    DeletionReason::Acknowledged,
                )
                .await?,
            ),
            AckPolicy::KeepUntilExpiry => {
                let client = self.inner.client("ack").await?;
                let n = client
                    .execute(
                        &format!(
                            "UPDATE mailbox_messages m SET acknowledged = true \
                             WHERE m.tx_id = $1 {same}"
                        ),
                        &[&tx_id, &local_id, &outbox.as_str()],
                    )
                    .await
                    .map_err(db("ack"))?;
                if n == 0 {
                    return Err(MailboxError::not_found(tx_id));
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

    async fn delete(&self, tx_id: &str, reason: DeletionReason) -> Result<Deletion> {
        self.delete_if(tx_id, "", &[], reason).await
    }

    async fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<Deletion>> {
        let mut deletions = Vec::new();
        loop {
            let client = self.inner.client("sweep").await?;
            // SKIP LOCKED: two nodes sweeping at once share the work.
            let rows = client
                .query(
                    "WITH due AS ( \
                       SELECT tx_id, local_id FROM mailbox_messages WHERE expires_at <= $1 \
                       ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED), \
                     gone AS ( \
                       DELETE FROM mailbox_keys k USING due WHERE k.local_id = due.local_id \
                       RETURNING k.local_id) \
                     SELECT due.tx_id FROM due JOIN gone ON gone.local_id = due.local_id",
                    &[&now, &SWEEP_BATCH],
                )
                .await
                .map_err(db("sweep"))?;
            let n = rows.len();
            for r in &rows {
                deletions.push(Deletion {
                    tx_id: r.col(0)?,
                    reason: DeletionReason::Expired,
                    at: now,
                });
            }
            if (n as i64) < SWEEP_BATCH {
                return Ok(deletions);
            }
        }
    }

    async fn release_stale_fetches(&self, older_than: Duration) -> Result<usize> {
        let now = self.inner.now();
        let cutoff = now - TimeDelta::from_std(older_than).unwrap_or(TimeDelta::MAX);
        let client = self.inner.client("releasing stale fetches").await?;
        let n = client
            .execute(
                "UPDATE mailbox_messages SET state = 'received', state_timestamp = $2, \
                   fetch_token = NULL \
                 WHERE state = 'fetching_in_progress' AND state_timestamp <= $1",
                &[&cutoff, &now],
            )
            .await
            .map_err(db("releasing stale fetches"))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn set_state(&self, tx_id: &str, state: MessageState) -> Result<()> {
        self.update_state(tx_id, state, false).await
    }

    async fn mark_processed(&self, tx_id: &str, state: MessageState) -> Result<()> {
        self.update_state(tx_id, state, true).await
    }

    async fn get_meta(&self, tx_id: &str) -> Result<Option<MessageMeta>> {
        match self.load(tx_id).await? {
            Some(env) => Ok(Some(self.open_one(env).await?.0)),
            None => Ok(None),
        }
    }

    async fn pending_processing(&self) -> Result<Vec<MessageMeta>> {
        let mut pending = self.scan("m.processing", &[]).await?;
        pending.sort_by(|a, b| {
            a.arrival
                .cmp(&b.arrival)
                .then_with(|| a.tx_id().cmp(b.tx_id()))
        });
        Ok(pending)
    }

    async fn stats(&self) -> Result<Stats> {
        let client = self.inner.client("stats").await?;
        let row = client
            .query_one(
                "SELECT count(*), coalesce(sum(body_bytes), 0)::bigint, min(arrival) \
                 FROM mailbox_messages",
                &[],
            )
            .await
            .map_err(db("stats"))?;
        let (messages, bytes): (i64, i64) = (row.col(0)?, row.col(1)?);
        Ok(Stats {
            messages: u64::try_from(messages).unwrap_or(0),
            bytes: u64::try_from(bytes).unwrap_or(0),
            oldest_arrival: row.col(2)?,
        })
    }
}

/// Reads and opens chunks `from..from + count` of a message of `total` chunks.
async fn read_chunks(
    inner: &Inner,
    tx_id: &str,
    local_id: Uuid,
    cipher: &MessageCipher,
    from: u32,
    count: u32,
    total: u32,
) -> io::Result<Vec<Bytes>> {
    let (lo, hi) = (
        i32::try_from(from).map_err(io::Error::other)?,
        i32::try_from(from + count).map_err(io::Error::other)?,
    );
    let client = inner
        .client("reading a body")
        .await
        .map_err(io::Error::other)?;
    let rows = client
        .query(
            "SELECT idx, data FROM mailbox_chunks WHERE local_id = $1 AND idx >= $2 AND idx < $3 \
             ORDER BY idx",
            &[&local_id, &lo, &hi],
        )
        .await
        .map_err(|e| io::Error::other(db("reading a body")(e)))?;
    drop(client);
    let mut out = Vec::with_capacity(rows.len());
    for (expected, row) in
        (from..from + count).zip(rows.iter().map(Some).chain(std::iter::repeat(None)))
    {
        let missing = || {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("message {tx_id}: chunk {expected} missing (deleted or truncated)"),
            )
        };
        let row = row.ok_or_else(missing)?;
        let idx: i32 = row
            .col(0)
            .map_err(|e| io::Error::other(MailboxError::from(e)))?;
        if u32::try_from(idx).ok() != Some(expected) {
            return Err(missing());
        }
        let mut buf: Vec<u8> = row
            .col(1)
            .map_err(|e| io::Error::other(MailboxError::from(e)))?;
        cipher
            .open_chunk(expected, expected + 1 == total, &mut buf)
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    MailboxError::Integrity {
                        tx_id: tx_id.to_owned(),
                        what: "body chunk",
                    },
                )
            })?;
        out.push(Bytes::from(buf));
    }
    Ok(out)
}
