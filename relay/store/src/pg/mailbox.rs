//! The mailbox on PostgreSQL. Same contract and same crypto as the redb engine
//! (`relay_mailbox::RedbStore`): bodies are sealed in 64 KiB chunks under a
//! per-message data key, the label is sealed, the data key is stored wrapped
//! under a KEK that never enters the database.
//!
//! A `put` of a body of at most `WRITE_BATCH` chunks (512 KiB) is one
//! transaction in two round trips (one without a quota): the key, the sealed
//! chunks and the message row go in with one statement. A longer body streams
//! in bursts of `WRITE_BATCH` chunks, one statement each (the first with the
//! wrapped key), at most one burst and one chunk of look-ahead in memory; its
//! last burst goes in with the message row. Nothing is visible before the row is
//! committed; a failed or cancelled upload removes its key and chunks, and the
//! sweeper removes those of a node that died mid-upload.
//!
//! Every statement on the hot path is prepared once per connection (the pool's
//! statement cache); statements that depend on each other's order but not on
//! each other's answers are pipelined. `tests/pg_round_trips.rs` counts the
//! round trips and commits of one message.
//!
//! A message is identified by (sender, tx.id) (`relay_mailbox::rules`): the
//! unique key `mailbox_messages_sender_tx` decides duplicates in the INSERT
//! itself (`ON CONFLICT DO NOTHING`), so two puts of one (sender, tx.id) on two
//! nodes give one message and one Duplicate, and the same tx.id from two senders
//! gives two messages. The quotas are counted in the short transaction that
//! inserts the row, under advisory locks on the outbox and the sender, so
//! uploads on several nodes at once never pass a limit.
//!
//! A fetch takes the lock with one conditional `UPDATE` (state `received` →
//! `fetching_in_progress`, a fresh token), so of two nodes exactly one wins,
//! and reads the first batch of chunks in the same statement; the rest of the
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
use relay_mailbox::rules::{self, Quota, Which};
use relay_mailbox::{
    AckOutcome, AckPolicy, DataKey, Deletion, DeletionReason, FetchHandle, FetchLease, ListFilter,
    MailboxError, MailboxStore, MessageCipher, MessageLabel, MessageMeta, MessageState,
    NONCE_PREFIX_LEN, NoLease, Outbox, PutOutcome, Stats, Usage, WrappedKey,
};
use tokio::io::AsyncRead;
use tokio_postgres::{Row, Statement};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{Column, Inner, PgStore, describe, describe_pool};

type Result<T, E = MailboxError> = std::result::Result<T, E>;

/// Chunks per query while a body streams out (1 MiB).
const READ_AHEAD: i32 = 16;
/// Chunks written per burst on one pooled connection while a body streams in
/// (512 KiB): what an upload holds in memory, and the only time it holds a
/// connection.
const WRITE_BATCH: usize = 8;
/// Messages deleted per statement by the sweeper.
const SWEEP_BATCH: i64 = 256;

/// The columns [`Envelope::from_row`] reads, from `mailbox_messages m` joined
/// with `mailbox_keys k`.
const COLUMNS: &str = "m.tx_id, m.local_id, m.outbox, m.transfer_type, m.state, \
    m.acknowledged, m.processing, m.arrival, m.state_timestamp, m.expires_at, \
    m.body_bytes, m.chunks, m.nonce_prefix, m.label, k.kek_id, k.wrapped, m.sender";
/// How many columns [`COLUMNS`] names.
const COLUMN_COUNT: usize = 17;

fn db(op: &'static str) -> impl Fn(tokio_postgres::Error) -> MailboxError {
    move |e| MailboxError::Database(format!("{op}: {}", describe(&e)))
}

fn pool(op: &'static str) -> impl Fn(deadpool_postgres::PoolError) -> MailboxError {
    move |e| MailboxError::Database(format!("{op}: {}", describe_pool(&e)))
}

/// `sql` as a statement prepared once per connection (the pool's statement
/// cache): a call then costs one round trip (bind and execute), not two (parse,
/// then bind and execute) and a close. Every connection plans each execution
/// for its parameters (`plan_cache_mode`, set in `super::PgStore::open`), as an
/// unprepared statement would be planned.
async fn prepared(
    client: &deadpool_postgres::Object,
    sql: &str,
    op: &'static str,
) -> Result<Statement> {
    client.prepare_cached(sql).await.map_err(db(op))
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
    sender: String,
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
            sender: row.try_get(16).map_err(db("reading a row"))?,
            tx_id,
        })
    }

    fn ackable_in(&self, outbox: &Outbox) -> bool {
        self.outbox == outbox.as_str() && rules::ackable(self.state, self.processing)
    }
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(3)
    }

    async fn client(&self, op: &'static str) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool(op))
    }

    /// `fut` within the call deadline: a database that stops answering (a
    /// silent cut) is an "unavailable" error then, not a wait for TCP.
    async fn within<T>(
        &self,
        op: &'static str,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.deadline, fut).await {
            Ok(r) => r,
            Err(_) => Err(MailboxError::Database(format!(
                "{op}: no answer within {} ms",
                self.deadline.as_millis()
            ))),
        }
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
        if label.tx_id != env.tx_id
            || label.to.as_str() != env.outbox
            || rules::sender_of(&label) != env.sender
        {
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
        // A message whose key this node does not hold is left out (counted and
        // logged): one such message never fails a list or a scan.
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(envs.len());
            for e in &envs {
                match inner.open(e) {
                    Ok(opened) => out.push(opened),
                    Err(err) if relay_mailbox::ring::skip_missing_key(&err, &e.local_id) => {}
                    Err(err) => return Err(err),
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| MailboxError::Task(e.to_string()))?
    }

    async fn open_one(&self, env: Envelope) -> Result<(MessageMeta, MessageCipher)> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.open(&env))
            .await
            .map_err(|e| MailboxError::Task(e.to_string()))?
    }

    /// Every message's key id and decrypted body, for `shs-relay store verify`.
    pub async fn stored_messages(&self) -> Result<Vec<relay_mailbox::StoredMessage>> {
        use relay_mailbox::{BodyCheck, KekError, StoredMessage};
        let client = self.inner.client("verify").await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM mailbox_messages m \
                     JOIN mailbox_keys k ON k.local_id = m.local_id ORDER BY m.tx_id"
                ),
                &[],
            )
            .await
            .map_err(db("verify"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let env = Envelope::from_row(row)?;
            let chunks = client
                .query(
                    "SELECT idx, data FROM mailbox_chunks WHERE local_id = $1 ORDER BY idx",
                    &[&env.local_id],
                )
                .await
                .map_err(db("verify"))?;
            let (tx_id, kek_id) = (env.tx_id.clone(), env.wrapped.kek_id);
            let inner = self.inner.clone();
            let body = tokio::task::spawn_blocking(move || {
                let cipher = match inner.open(&env) {
                    Ok((_, c)) => c,
                    Err(MailboxError::Kek(KekError::UnknownKek(_))) => {
                        return BodyCheck::KeyMissing;
                    }
                    Err(e) => return BodyCheck::Damaged(e.to_string()),
                };
                let mut body = Zeroizing::new(Vec::new());
                if chunks.len() != env.chunks as usize {
                    return BodyCheck::Damaged("a chunk is missing".to_owned());
                }
                for (expected, row) in (0..env.chunks).zip(chunks.iter()) {
                    let mut buf: Vec<u8> = match row.try_get(1) {
                        Ok(b) => b,
                        Err(e) => return BodyCheck::Damaged(describe(&e)),
                    };
                    if cipher
                        .open_chunk(expected, expected + 1 == env.chunks, &mut buf)
                        .is_err()
                    {
                        return BodyCheck::Damaged(format!(
                            "chunk {expected} failed authentication"
                        ));
                    }
                    body.extend_from_slice(&buf);
                }
                BodyCheck::Opened(body)
            })
            .await
            .map_err(|e| MailboxError::Task(e.to_string()))?;
            out.push(StoredMessage {
                tx_id,
                kek_id,
                body,
            });
        }
        Ok(out)
    }

    /// The message `which` means: the only one with a sender given, else the
    /// oldest with the tx.id ([`rules::fetch_order`]).
    async fn load(&self, which: &Which) -> Result<Option<Envelope>> {
        let client = self.inner.client("load").await?;
        let load = prepared(
            &client,
            &format!(
                "SELECT {COLUMNS} FROM mailbox_messages m \
                 JOIN mailbox_keys k ON k.local_id = m.local_id \
                 WHERE m.tx_id = $1 AND ($2::text IS NULL OR m.sender = $2) \
                 ORDER BY {} LIMIT 1",
                rules::fetch_order_sql("m")
            ),
            "load",
        )
        .await?;
        let row = client
            .query_opt(&load, &[&which.tx_id, &which.sender])
            .await
            .map_err(db("load"))?;
        row.as_ref().map(Envelope::from_row).transpose()
    }

    /// Deletes the key row of the message `local_id` (`tx_id`: for the report;
    /// chunks and message follow by cascade) when `guard` (SQL on `m`) holds.
    /// The shredding: without the wrapped key the ciphertext cannot be read,
    /// whatever the database's pages still hold.
    async fn delete_if(
        &self,
        local_id: Uuid,
        tx_id: &str,
        guard: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        reason: DeletionReason,
    ) -> Result<Deletion> {
        let at = self.inner.now();
        let client = self.inner.client("delete").await?;
        let sql = format!(
            "DELETE FROM mailbox_keys k USING mailbox_messages m \
             WHERE k.local_id = m.local_id AND m.local_id = $1 {guard}"
        );
        let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&local_id];
        all.extend_from_slice(params);
        let delete = prepared(&client, &sql, "delete").await?;
        let n = client.execute(&delete, &all).await.map_err(db("delete"))?;
        if n == 0 {
            return Err(MailboxError::not_found(tx_id));
        }
        Ok(Deletion {
            tx_id: tx_id.to_owned(),
            reason,
            at,
        })
    }

    /// Writes a burst of sealed chunks of an upload in one statement on a
    /// pooled connection, within the call deadline; the first burst writes the
    /// data key in the same statement. The connection goes back to the pool
    /// before the next chunk is read from the client.
    async fn write_chunks(
        &self,
        local_id: Uuid,
        key: Option<&NewKey>,
        batch: &mut Vec<(i32, Vec<u8>)>,
    ) -> Result<()> {
        let inner = &self.inner;
        let op = "storing a chunk";
        inner
            .within(op, async {
                let client = inner.client(op).await?;
                let (idx, data) = columns(batch);
                match key {
                    None => {
                        let insert = prepared(&client, INSERT_CHUNKS, op).await?;
                        client.execute(&insert, &[&local_id, &idx, &data]).await
                    }
                    Some(key) => {
                        let insert = prepared(&client, INSERT_KEY_AND_CHUNKS, op).await?;
                        client
                            .execute(
                                &insert,
                                &[
                                    &local_id,
                                    &idx,
                                    &data,
                                    &key.kek_id,
                                    &key.wrapped,
                                    &key.created_at,
                                ],
                            )
                            .await
                    }
                }
                .map_err(db(op))?;
                Ok(())
            })
            .await?;
        batch.clear();
        Ok(())
    }

    /// Streams a put. A body of at most [`WRITE_BATCH`] chunks (most messages)
    /// is written whole, key, chunks and message row, by the one transaction
    /// that decides the quota ([`PgStore::insert_row`]). A longer one writes its
    /// key with its first burst of chunks and each further burst as it comes,
    /// then its last burst with the message row, which makes it visible. No
    /// connection is held while the client's body is read.
    async fn put_streamed<R: AsyncRead + Send>(
        &self,
        label: &MessageLabel,
        body: R,
        quota: Quota,
        received: bool,
    ) -> Result<PutOutcome> {
        let inner = &self.inner;
        let local_id = Uuid::new_v4();
        let key = DataKey::generate();
        let nonce_prefix = MessageCipher::random_prefix();
        let cipher = MessageCipher::new(&key, nonce_prefix);
        let kek = inner.kek.clone();
        let wrapped = tokio::task::spawn_blocking(move || kek.wrap(&key, local_id.as_bytes()))
            .await
            .map_err(|e| MailboxError::Task(e.to_string()))??;
        let key = NewKey {
            kek_id: i64::from(wrapped.kek_id),
            wrapped: wrapped.bytes,
            created_at: inner.now(),
        };
        // Armed before the first burst is written: from then on, anything but
        // the final row (an error, a cancelled request) removes the key and the
        // chunks written so far.
        let mut upload = Upload {
            inner: None,
            local_id,
        };

        let streamed = async {
            let mut body = std::pin::pin!(body);
            let mut index: u32 = 0;
            let mut body_bytes: u64 = 0;
            let mut batch = Vec::with_capacity(WRITE_BATCH);
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
                cipher.seal_chunk(index, last, &mut pending);
                let idx = i32::try_from(index).map_err(|_| {
                    MailboxError::Body(io::Error::other("body exceeds the chunk limit"))
                })?;
                batch.push((idx, std::mem::replace(&mut pending, next)));
                if last {
                    break;
                }
                if batch.len() >= WRITE_BATCH {
                    let first = !upload.armed();
                    upload.arm(inner);
                    self.write_chunks(local_id, first.then_some(&key), &mut batch)
                        .await?;
                }
                index += 1;
            }
            Ok::<_, MailboxError>((index + 1, body_bytes, batch))
        }
        .await;
        // A failed upload is cleaned up before the caller hears of it (the
        // drop guard only covers cancellation).
        let (chunks, body_bytes, batch) = match streamed {
            Ok(done) => done,
            Err(e) => {
                upload.discard().await;
                return Err(e);
            }
        };

        let now = inner.now();
        let ttl = inner.retention.ttl_for(&label.product);
        let expires_at = now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        let mut sealed = serde_json::to_vec(label)?;
        cipher.seal_label(&mut sealed);
        let body_bytes_db = i64::try_from(body_bytes)
            .map_err(|_| MailboxError::Body(io::Error::other("body too large")))?;
        let chunks_db = i32::try_from(chunks)
            .map_err(|_| MailboxError::Body(io::Error::other("body exceeds the chunk limit")))?;
        let sender = rules::sender_of(label);
        let row = NewRow {
            label,
            sender: &sender,
            local_id,
            now,
            expires_at,
            body_bytes: body_bytes_db,
            chunks: chunks_db,
            nonce_prefix: &nonce_prefix,
            sealed: &sealed,
            key: (!upload.armed()).then_some(&key),
            last_chunks: &batch,
            received,
        };
        let stored = inner
            .within("storing the message", self.insert_row(&row, quota))
            .await;
        match stored {
            Ok(Inserted::Stored) => {
                upload.keep();
                Ok(PutOutcome::Stored {
                    local_id,
                    arrival: now,
                })
            }
            Ok(Inserted::Duplicate(original_arrival)) => {
                upload.discard().await;
                Ok(PutOutcome::Duplicate { original_arrival })
            }
            Ok(Inserted::OverQuota(over)) => {
                upload.discard().await;
                Ok(PutOutcome::OverQuota(over))
            }
            Err(e) => {
                upload.discard().await;
                Err(e)
            }
        }
    }

    /// The one transaction that makes an upload visible, in at most two round
    /// trips. With a quota: `BEGIN`, the advisory locks on the recipient's
    /// outbox and the sender (taken in one order, so two nodes never
    /// deadlock) and the count under them, pipelined; the quota is decided
    /// here ([`Quota::check`]); then the insert and `COMMIT`, pipelined. The
    /// insert is one statement: the message row, and only if it went in (the
    /// unique key (sender, tx.id) decides a duplicate in the INSERT itself),
    /// the last chunks and, for a body written whole here, the data key.
    /// Without a quota no lock is taken and the insert commits on its own.
    async fn insert_row(&self, row: &NewRow<'_>, quota: Quota) -> Result<Inserted> {
        let inner = &self.inner;
        let op = "storing the message";
        let client = inner.client(op).await?;
        let sql = insert_sql(row.key.is_some(), row.received);
        let insert = prepared(&client, sql, op).await?;
        let lease_s = inner.lease.as_secs_f64();
        let (idx, data) = columns(row.last_chunks);
        let nonce = row.nonce_prefix.as_slice();
        let outbox = row.label.to.as_str();
        let transfer_type = row.label.transfer_type.as_str();
        type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);
        let mut params: Vec<Param<'_>> = vec![
            &row.label.tx_id,
            &row.local_id,
            &outbox,
            &transfer_type,
            &row.now,
            &row.expires_at,
            &row.body_bytes,
            &row.chunks,
            &nonce,
            &row.sealed,
            &inner.node,
            &lease_s,
            &row.sender,
            &idx,
            &data,
        ];
        if let Some(key) = row.key {
            params.extend_from_slice(&[&key.kek_id as Param<'_>, &key.wrapped, &key.created_at]);
        }
        if quota.is_none() {
            let stored = client.query_opt(&insert, &params).await.map_err(db(op))?;
            return match stored {
                Some(_) => Ok(Inserted::Stored),
                None => Ok(Inserted::Duplicate(
                    original_arrival(&client, row).await?.unwrap_or(row.now),
                )),
            };
        }

        let lock = prepared(&client, LOCK, op).await?;
        let usage = prepared(&client, USAGE, op).await?;
        let mut locks = [
            format!("relay-mailbox/outbox/{outbox}"),
            format!("relay-mailbox/sender/{}", row.sender),
        ];
        locks.sort();
        let limit = count_limit(quota.count_limit());
        let mut open = OpenTransaction::new(client);
        let c = open.client()?;
        // Statements on one connection run in the order they are sent: the
        // count starts (and takes its snapshot) after both locks are held.
        let (begun, first, second, counted) = futures::future::join4(
            c.batch_execute("BEGIN"),
            c.execute(&lock, &[&locks[0]]),
            c.execute(&lock, &[&locks[1]]),
            c.query_one(&usage, &[&outbox, &row.sender, &row.now, &limit]),
        )
        .await;
        let counted = match begun.and(first).and(second).and(counted) {
            Ok(counted) => counted,
            Err(e) => {
                open.roll_back().await;
                return Err(db(op)(e));
            }
        };
        let (held, sent) = usage_of(&counted)?;
        if let Err(over) = quota.check(held, sent) {
            let original = original_arrival(c, row).await;
            open.roll_back().await;
            return Ok(match original? {
                Some(arrival) => Inserted::Duplicate(arrival),
                None => Inserted::OverQuota(over),
            });
        }
        // A failed insert makes the COMMIT a rollback.
        let (stored, committed) =
            futures::future::join(c.query_opt(&insert, &params), c.batch_execute("COMMIT")).await;
        let stored = stored.map_err(db(op));
        let committed = committed.map_err(db(op));
        open.ended();
        let stored = stored?;
        committed?;
        match stored {
            Some(_) => Ok(Inserted::Stored),
            // This sender's message with this tx.id was made visible first.
            None => Ok(Inserted::Duplicate(
                original_arrival(open.client()?, row)
                    .await?
                    .unwrap_or(row.now),
            )),
        }
    }

    /// Every message passing `condition` (SQL on `m`), decrypted.
    async fn scan(
        &self,
        condition: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<MessageMeta>> {
        let client = self.inner.client("scan").await?;
        let scan = prepared(
            &client,
            &format!(
                "SELECT {COLUMNS} FROM mailbox_messages m \
                 JOIN mailbox_keys k ON k.local_id = m.local_id WHERE {condition}"
            ),
            "scan",
        )
        .await?;
        let rows = client.query(&scan, params).await.map_err(db("scan"))?;
        drop(client);
        let envs = rows.iter().map(Envelope::from_row).collect::<Result<_>>()?;
        Ok(self
            .open_all(envs)
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// Claims for this node the processing rows passing `condition` (SQL on
    /// `m`; `$1` is this node's name), with a fresh lease; oldest first. Row
    /// locks make each claim once: of two nodes taking over the same row, the
    /// second sees the first's fresh lease and skips it.
    async fn claim(&self, condition: &str) -> Result<Vec<MessageMeta>> {
        let inner = &self.inner;
        let lease_s = inner.lease.as_secs_f64();
        let client = inner.client("taking over work").await?;
        let rows = client
            .query(
                &format!(
                    "UPDATE mailbox_messages m SET node = $1, \
                       lease_until = now() + make_interval(secs => $2) \
                     FROM mailbox_keys k \
                     WHERE k.local_id = m.local_id AND m.processing AND ({condition}) \
                     RETURNING {COLUMNS}"
                ),
                &[&inner.node, &lease_s],
            )
            .await
            .map_err(db("taking over work"))?;
        drop(client);
        let envs = rows.iter().map(Envelope::from_row).collect::<Result<_>>()?;
        let mut claimed: Vec<MessageMeta> = self
            .open_all(envs)
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        claimed.sort_by(|a, b| {
            a.arrival
                .cmp(&b.arrival)
                .then_with(|| a.tx_id().cmp(b.tx_id()))
        });
        Ok(claimed)
    }

    /// While running: the unfinished work of nodes whose lease ran out, claimed
    /// for this node.
    pub async fn take_over_expired(&self) -> Result<Vec<MessageMeta>> {
        self.claim(
            "m.node IS DISTINCT FROM $1 AND (m.lease_until IS NULL OR m.lease_until < now())",
        )
        .await
    }

    /// Renews the lease on every message this node is processing; how many.
    pub async fn heartbeat(&self) -> Result<u64> {
        let inner = &self.inner;
        let lease_s = inner.lease.as_secs_f64();
        let client = inner.client("heartbeat").await?;
        client
            .execute(
                "UPDATE mailbox_messages SET lease_until = now() + make_interval(secs => $2) \
                 WHERE processing AND node = $1",
                &[&inner.node, &lease_s],
            )
            .await
            .map_err(db("heartbeat"))
    }

    /// What `outbox` holds and what `sender` has sent that is still held
    /// (not deleted, not expired): two bounded counts on indexed columns,
    /// no label opened; counting stops past `limit`.
    pub async fn usage(
        &self,
        outbox: &Outbox,
        sender: &str,
        limit: u64,
    ) -> Result<(relay_mailbox::Usage, relay_mailbox::Usage)> {
        let client = self.inner.client("quota").await?;
        let usage = prepared(&client, USAGE, "quota").await?;
        let row = client
            .query_one(
                &usage,
                &[
                    &outbox.as_str(),
                    &sender,
                    &self.inner.now(),
                    &count_limit(limit),
                ],
            )
            .await
            .map_err(db("quota"))?;
        usage_of(&row)
    }

    /// How long a claim holds without a heartbeat.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    async fn update_state(
        &self,
        which: &Which,
        state: MessageState,
        clear_processing: bool,
    ) -> Result<()> {
        let now = self.inner.now();
        let client = self.inner.client("state change").await?;
        let update = prepared(
            &client,
            &format!(
                "UPDATE mailbox_messages SET \
                       state_timestamp = CASE WHEN state <> $2 THEN $3 ELSE state_timestamp END, \
                       state = $2, \
                       fetch_token = CASE WHEN $2 = 'fetching_in_progress' THEN fetch_token END, \
                       processing = processing AND NOT $4 \
                     WHERE local_id = (SELECT local_id FROM mailbox_messages w \
                       WHERE w.tx_id = $1 AND ($5::text IS NULL OR w.sender = $5) \
                       ORDER BY {} LIMIT 1)",
                rules::fetch_order_sql("w")
            ),
            "state change",
        )
        .await?;
        let n = client
            .execute(
                &update,
                &[
                    &which.tx_id,
                    &state_name(state),
                    &now,
                    &clear_processing,
                    &which.sender,
                ],
            )
            .await
            .map_err(db("state change"))?;
        if n == 0 {
            return Err(MailboxError::not_found(&which.tx_id));
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

/// A message row about to be inserted, with what of its upload is not
/// written yet.
struct NewRow<'a> {
    label: &'a MessageLabel,
    sender: &'a str,
    local_id: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    body_bytes: i64,
    chunks: i32,
    nonce_prefix: &'a [u8; NONCE_PREFIX_LEN],
    sealed: &'a [u8],
    /// The data key, when no burst of chunks was written before (the body is
    /// written whole with the row).
    key: Option<&'a NewKey>,
    /// The chunks read since the last burst (at least the last one).
    last_chunks: &'a [(i32, Vec<u8>)],
    /// Stored `Received` and not processing: a message the relay wrote.
    received: bool,
}

/// A message's data key row, wrapped, not yet written.
struct NewKey {
    kek_id: i64,
    wrapped: Vec<u8>,
    created_at: DateTime<Utc>,
}

/// What the inserting transaction decided.
enum Inserted {
    Stored,
    /// The original's arrival.
    Duplicate(DateTime<Utc>),
    OverQuota(rules::OverQuota),
}

/// Chunks as the two arrays the insert statements unnest.
fn columns(chunks: &[(i32, Vec<u8>)]) -> (Vec<i32>, Vec<&[u8]>) {
    chunks
        .iter()
        .map(|(idx, data)| (*idx, data.as_slice()))
        .unzip()
}

/// The message row of an upload, `$1`–`$13`; `RETURNING` the rows that went
/// in (none for a duplicate (sender, tx.id)).
/// `$state` and `$processing`: `'new'`, `true` for an upload to be
/// processed; `'received'`, `false` for a message the relay wrote, which is
/// listable at once.
macro_rules! insert_message {
    ($state:literal, $processing:literal) => {
        concat!(
            "INSERT INTO mailbox_messages (tx_id, local_id, outbox, transfer_type, \
             state, acknowledged, processing, arrival, state_timestamp, expires_at, \
             body_bytes, chunks, nonce_prefix, fetch_token, label, node, \
             lease_until, sender) \
             VALUES ($1, $2, $3, $4, '",
            $state,
            "', false, ",
            $processing,
            ", $5, $5, $6, $7, $8, $9, \
             NULL, $10, $11, now() + make_interval(secs => $12), $13) \
             ON CONFLICT (sender, tx_id) DO NOTHING RETURNING local_id, arrival"
        )
    };
}

/// The chunks `$14` (indexes) and `$15` (data) of the message that `m`
/// inserted, if it did.
macro_rules! insert_chunks_of_m {
    () => {
        "c AS (INSERT INTO mailbox_chunks (local_id, idx, data) \
         SELECT m.local_id, u.idx, u.data FROM m, unnest($14::int4[], $15::bytea[]) AS u(idx, data))"
    };
}

/// The message row and its last chunks (the key and the earlier chunks were
/// written by the bursts).
macro_rules! insert_message_and_last_chunks {
    ($state:literal, $processing:literal) => {
        concat!(
            "WITH m AS (",
            insert_message!($state, $processing),
            "), ",
            insert_chunks_of_m!(),
            " SELECT arrival FROM m"
        )
    };
}

/// A message written whole: the row, its chunks and its data key (`$16`
/// KEK id, `$17` wrapped key, `$18` created); nothing of it when the row is a
/// duplicate. (The foreign keys are checked at the end of the statement.)
macro_rules! insert_whole_message {
    ($state:literal, $processing:literal) => {
        concat!(
            "WITH m AS (",
            insert_message!($state, $processing),
            "), ",
            insert_chunks_of_m!(),
            ", k AS (INSERT INTO mailbox_keys (local_id, kek_id, wrapped, created_at) \
             SELECT m.local_id, $16::bigint, $17::bytea, $18::timestamptz FROM m) \
             SELECT arrival FROM m"
        )
    };
}

/// The statement that makes an upload visible: written `whole` or after
/// bursts; `received` for a message the relay wrote.
fn insert_sql(whole: bool, received: bool) -> &'static str {
    match (whole, received) {
        (true, false) => insert_whole_message!("new", "true"),
        (true, true) => insert_whole_message!("received", "false"),
        (false, false) => insert_message_and_last_chunks!("new", "true"),
        (false, true) => insert_message_and_last_chunks!("received", "false"),
    }
}

/// A burst of chunks of upload `$1`: indexes `$2`, data `$3`.
const INSERT_CHUNKS: &str = "INSERT INTO mailbox_chunks (local_id, idx, data) \
    SELECT $1::uuid, u.idx, u.data FROM unnest($2::int4[], $3::bytea[]) AS u(idx, data)";

/// The first burst: the data key (`$4` KEK id, `$5` wrapped, `$6` created) and
/// the chunks, in one statement.
const INSERT_KEY_AND_CHUNKS: &str = "WITH k AS (INSERT INTO mailbox_keys \
    (local_id, kek_id, wrapped, created_at) VALUES ($1::uuid, $4, $5, $6)) \
    INSERT INTO mailbox_chunks (local_id, idx, data) \
    SELECT $1::uuid, u.idx, u.data FROM unnest($2::int4[], $3::bytea[]) AS u(idx, data)";

/// A transaction-scoped advisory lock on a name.
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";

/// What outbox `$1` holds and what sender `$2` has sent that is still held
/// (not deleted, not expired at `$3`): two bounded counts (past `$4` rows
/// counting stops) on indexed columns, in one snapshot, no label opened.
const USAGE: &str = "SELECT o.n, o.b, s.n, s.b FROM \
    (SELECT count(*) AS n, coalesce(sum(b), 0)::bigint AS b FROM (SELECT body_bytes AS b \
     FROM mailbox_messages WHERE outbox = $1 AND expires_at > $3 LIMIT $4) x) o, \
    (SELECT count(*) AS n, coalesce(sum(b), 0)::bigint AS b FROM (SELECT body_bytes AS b \
     FROM mailbox_messages WHERE sender = $2 AND expires_at > $3 LIMIT $4) y) s";

/// [`USAGE`]'s row limit for a quota that counts up to `limit`.
fn count_limit(limit: u64) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// The outbox's and the sender's usage from a [`USAGE`] row.
fn usage_of(r: &Row) -> Result<(Usage, Usage)> {
    let usage = |n: usize| -> Result<Usage> {
        let (messages, bytes): (i64, i64) = (r.col(n)?, r.col(n + 1)?);
        Ok(Usage {
            messages: u64::try_from(messages).unwrap_or(0),
            bytes: u64::try_from(bytes).unwrap_or(0),
        })
    };
    Ok((usage(0)?, usage(2)?))
}

/// The arrival of this sender's message with this tx.id, if one is stored.
async fn original_arrival(
    client: &deadpool_postgres::Object,
    row: &NewRow<'_>,
) -> Result<Option<DateTime<Utc>>> {
    let op = "storing the message";
    let original = prepared(
        client,
        "SELECT arrival FROM mailbox_messages WHERE sender = $1 AND tx_id = $2",
        op,
    )
    .await?;
    let found = client
        .query_opt(&original, &[&row.sender, &row.label.tx_id])
        .await
        .map_err(db(op))?;
    found.map(|r| Ok(r.col(0)?)).transpose()
}

/// A pooled connection with a transaction open on it (sent as pipelined
/// `BEGIN`, not awaited on its own). Dropped before it ended (a cancelled
/// call), it takes the connection out of the pool and closes it, which rolls
/// the transaction back: the pool never hands out a connection inside a
/// transaction.
struct OpenTransaction {
    client: Option<deadpool_postgres::Object>,
    open: bool,
}

impl OpenTransaction {
    fn new(client: deadpool_postgres::Object) -> Self {
        Self {
            client: Some(client),
            open: true,
        }
    }

    fn client(&self) -> Result<&deadpool_postgres::Object> {
        self.client
            .as_ref()
            .ok_or_else(|| MailboxError::Database("the connection is gone".to_owned()))
    }

    /// The transaction was committed or rolled back by the server.
    fn ended(&mut self) {
        self.open = false;
    }

    async fn roll_back(&mut self) {
        if let Some(c) = &self.client
            && c.batch_execute("ROLLBACK").await.is_ok()
        {
            self.open = false;
        }
    }
}

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        if self.open
            && let Some(client) = self.client.take()
        {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// The key and chunks of an upload not (yet) made visible. Armed before its
/// first burst is written and dropped before [`Upload::keep`], it deletes them
/// in the background; what a dying node leaves behind, the sweeper removes
/// after `max_upload_time`. Unarmed, nothing of the upload is written.
struct Upload {
    inner: Option<Arc<Inner>>,
    local_id: Uuid,
}

impl Upload {
    fn arm(&mut self, inner: &Arc<Inner>) {
        self.inner.get_or_insert_with(|| inner.clone());
    }

    fn armed(&self) -> bool {
        self.inner.is_some()
    }

    fn keep(&mut self) {
        self.inner = None;
    }

    async fn discard(mut self) {
        if let Some(inner) = self.inner.take() {
            forget_upload(&inner, self.local_id).await;
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let local_id = self.local_id;
        handle.spawn(async move { forget_upload(&inner, local_id).await });
    }
}

/// Deletes an upload's key (its chunks follow by cascade) unless a message row
/// uses it.
async fn forget_upload(inner: &Inner, local_id: Uuid) {
    let done = inner
        .within("removing an unfinished upload", async {
            let client = inner.client("removing an unfinished upload").await?;
            client
                .execute(
                    "DELETE FROM mailbox_keys k WHERE k.local_id = $1 AND NOT EXISTS \
                     (SELECT 1 FROM mailbox_messages m WHERE m.local_id = k.local_id)",
                    &[&local_id],
                )
                .await
                .map_err(db("removing an unfinished upload"))
        })
        .await;
    if let Err(e) = done {
        tracing::debug!(error = %e, "an unfinished upload is left to the sweeper");
    }
}

struct PgLease {
    inner: Arc<Inner>,
    local_id: Uuid,
    /// For errors and logs.
    tx_id: String,
    token: Uuid,
}

impl PgLease {
    async fn end(&self, state: MessageState) -> Result<()> {
        let (inner, tx_id) = (&self.inner, &self.tx_id);
        let now = inner.now();
        let client = inner.client("ending a fetch").await?;
        let end = prepared(
            &client,
            "UPDATE mailbox_messages SET state = $3, state_timestamp = $4, fetch_token = NULL \
             WHERE local_id = $1 AND state = 'fetching_in_progress' AND fetch_token = $2",
            "ending a fetch",
        )
        .await?;
        let n = client
            .execute(
                &end,
                &[&self.local_id, &self.token, &state_name(state), &now],
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
        Box::pin(async move { self.end(MessageState::Fetched).await })
    }

    fn release(self: Box<Self>) {
        // From Drop: hand the release to the runtime. A release that never runs
        // (no runtime, lost database) leaves the lock to expire with its lease.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            if let Err(e) = self.end(MessageState::Received).await {
                tracing::debug!(tx_id = %self.tx_id, error = %e, "fetch lock not released");
            }
        });
    }
}

impl MailboxStore for PgStore {
    async fn put_within<R>(
        &self,
        mut label: MessageLabel,
        body: R,
        quota: Quota,
    ) -> Result<PutOutcome>
    where
        R: AsyncRead + Send,
    {
        relay_mailbox::rules::check_label(&mut label)?;
        self.put_streamed(&label, body, quota, false).await
    }

    /// One write: the row goes in `Received`, not processing. A duplicate's
    /// original is moved, as by `mark_processed`.
    async fn put_received<R>(&self, mut label: MessageLabel, body: R) -> Result<PutOutcome>
    where
        R: AsyncRead + Send,
    {
        relay_mailbox::rules::check_label(&mut label)?;
        let outcome = self.put_streamed(&label, body, Quota::NONE, true).await?;
        if let PutOutcome::Duplicate { .. } = outcome {
            self.update_state(&Which::of(&label), MessageState::Received, true)
                .await?;
        }
        Ok(outcome)
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

    async fn fetch(&self, outbox: &Outbox, which: impl Into<Which> + Send) -> Result<FetchHandle> {
        let which = which.into();
        let now = self.inner.now();
        let token = Uuid::new_v4();
        let client = self.inner.client("fetch").await?;
        // One statement picks (`rules::fetch_order`) and locks: of two nodes
        // fetching at once, the second skips the row the first locked. The
        // same statement reads the first batch of chunks of the row it locked
        // (one row per chunk, the envelope repeated), so a message of up to
        // [`READ_AHEAD`] chunks costs one round trip.
        let pick = prepared(
            &client,
            &format!(
                "WITH f AS (\
                   UPDATE mailbox_messages m SET state = 'fetching_in_progress', \
                     state_timestamp = $3, fetch_token = $4 \
                   FROM mailbox_keys k \
                   WHERE k.local_id = m.local_id AND m.local_id = ( \
                     SELECT w.local_id FROM mailbox_messages w \
                     WHERE w.tx_id = $1 AND w.outbox = $2 \
                       AND ($5::text IS NULL OR w.sender = $5) \
                       AND w.state = 'received' AND NOT w.processing \
                       AND w.transfer_type = 'asynch' AND w.expires_at > $3 \
                     ORDER BY {} LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     AND m.state = 'received' \
                   RETURNING {COLUMNS}) \
                 SELECT f.*, c.idx, c.data FROM f \
                 LEFT JOIN mailbox_chunks c ON c.local_id = f.local_id AND c.idx < $6 \
                 ORDER BY c.idx",
                rules::fetch_order_sql("w")
            ),
            "fetch",
        )
        .await?;
        let rows = client
            .query(
                &pick,
                &[
                    &which.tx_id,
                    &outbox.as_str(),
                    &now,
                    &token,
                    &which.sender,
                    &READ_AHEAD,
                ],
            )
            .await
            .map_err(db("fetch"))?;
        drop(client);
        let row = rows
            .first()
            .ok_or_else(|| MailboxError::not_found(&which.tx_id))?;
        // From here on a failure drops the lease, which releases the lock.
        let env = Envelope::from_row(row)?;
        let tx_id = env.tx_id.clone();
        let lease = Box::new(PgLease {
            inner: self.inner.clone(),
            local_id: env.local_id,
            tx_id: tx_id.clone(),
            token,
        });
        let (local_id, total) = (env.local_id, env.chunks);
        let (meta, cipher) = self.open_one(env).await?;
        let first = FirstBatch {
            rows,
            column: COLUMN_COUNT,
        };
        let chunks = body_stream(
            &self.inner,
            tx_id,
            Some(token),
            local_id,
            cipher,
            total,
            Some(first),
        );
        Ok(FetchHandle::new(meta, chunks, lease))
    }

    async fn read(&self, which: impl Into<Which> + Send) -> Result<FetchHandle> {
        let which = which.into();
        let env = self
            .load(&which)
            .await?
            .ok_or_else(|| MailboxError::not_found(&which.tx_id))?;
        let (local_id, total, tx_id) = (env.local_id, env.chunks, env.tx_id.clone());
        let (meta, cipher) = self.open_one(env).await?;
        let chunks = body_stream(&self.inner, tx_id, None, local_id, cipher, total, None);
        Ok(FetchHandle::new(meta, chunks, Box::new(NoLease)))
    }

    async fn ack(&self, outbox: &Outbox, which: impl Into<Which> + Send) -> Result<AckOutcome> {
        let which = which.into();
        let client = self.inner.client("ack").await?;
        let pick = prepared(
            &client,
            &format!(
                "SELECT {COLUMNS} FROM mailbox_messages m \
                 JOIN mailbox_keys k ON k.local_id = m.local_id \
                 WHERE m.tx_id = $1 AND m.outbox = $2 \
                   AND ($3::text IS NULL OR m.sender = $3) AND NOT m.processing \
                   AND m.state IN ('received', 'fetching_in_progress', 'fetched') \
                 ORDER BY {} LIMIT 1",
                rules::ack_order_sql("m")
            ),
            "ack",
        )
        .await?;
        let row = client
            .query_opt(&pick, &[&which.tx_id, &outbox.as_str(), &which.sender])
            .await
            .map_err(db("ack"))?;
        drop(client);
        let env = row
            .as_ref()
            .map(Envelope::from_row)
            .transpose()?
            .filter(|e| e.ackable_in(outbox))
            .ok_or_else(|| MailboxError::not_found(&which.tx_id))?;
        let local_id = env.local_id;
        let tx_id = env.tx_id.clone();
        let tx_id = tx_id.as_str();
        let acknowledged = env.acknowledged;
        let (meta, _) = self.open_one(env).await?;
        let mut send_confirm = rules::confirms(meta.label.sequence_type, acknowledged);
        // The row must still be the one read above, and still ackable.
        let same = "AND m.outbox = $2 AND NOT m.processing \
                    AND m.state IN ('received', 'fetching_in_progress', 'fetched')";
        let deletion = match self.inner.ack_policy {
            AckPolicy::DeleteOnAck => Some(
                self.delete_if(
                    local_id,
                    tx_id,
                    same,
                    &[&outbox.as_str()],
                    DeletionReason::Acknowledged,
                )
                .await?,
            ),
            AckPolicy::KeepUntilExpiry => {
                // The row lock makes the flag flip once: of two acks at once,
                // the second reads `was` = true and sends no confirm.
                let client = self.inner.client("ack").await?;
                let flip = prepared(
                    &client,
                    &format!(
                        "UPDATE mailbox_messages m SET acknowledged = true \
                         FROM (SELECT local_id, acknowledged AS was FROM mailbox_messages \
                               WHERE local_id = $1 FOR UPDATE) old \
                         WHERE m.local_id = old.local_id AND m.local_id = $1 {same} \
                         RETURNING old.was"
                    ),
                    "ack",
                )
                .await?;
                let was = client
                    .query_opt(&flip, &[&local_id, &outbox.as_str()])
                    .await
                    .map_err(db("ack"))?
                    .ok_or_else(|| MailboxError::not_found(tx_id))?;
                let was: bool = was.col(0)?;
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

    async fn delete(
        &self,
        which: impl Into<Which> + Send,
        reason: DeletionReason,
    ) -> Result<Deletion> {
        let which = which.into();
        let env = self
            .load(&which)
            .await?
            .ok_or_else(|| MailboxError::not_found(&which.tx_id))?;
        self.delete_if(env.local_id, &env.tx_id, "", &[], reason)
            .await
    }

    async fn sweep(&self, now: DateTime<Utc>) -> Result<Vec<Deletion>> {
        let inner = &self.inner;
        let mut deletions = Vec::new();
        loop {
            // SKIP LOCKED: two nodes sweeping at once share the work. Each
            // batch has its own deadline and is reported whatever comes after.
            let rows = inner
                .within("sweep", async {
                    let client = inner.client("sweep").await?;
                    client
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
                        .map_err(db("sweep"))
                })
                .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) if deletions.is_empty() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "sweep stopped early; the next one goes on");
                    return Ok(deletions);
                }
            };
            let n = rows.len();
            for r in &rows {
                deletions.push(Deletion {
                    tx_id: r.col(0)?,
                    reason: DeletionReason::Expired,
                    at: now,
                });
            }
            if (n as i64) < SWEEP_BATCH {
                break;
            }
        }
        // Uploads whose node died before their message row: keys (and chunks)
        // without a message, older than the longest upload. Never a message.
        let cutoff = now - TimeDelta::from_std(inner.max_upload_time).unwrap_or(TimeDelta::MAX);
        let orphans = inner
            .within("sweeping unfinished uploads", async {
                let client = inner.client("sweeping unfinished uploads").await?;
                client
                    .execute(
                        "DELETE FROM mailbox_keys k WHERE k.created_at < $1 AND NOT EXISTS \
                         (SELECT 1 FROM mailbox_messages m WHERE m.local_id = k.local_id)",
                        &[&cutoff],
                    )
                    .await
                    .map_err(db("sweeping unfinished uploads"))
            })
            .await;
        match orphans {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "removed unfinished uploads of a lost node"),
            Err(e) => tracing::warn!(error = %e, "unfinished uploads not swept"),
        }
        Ok(deletions)
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

    async fn set_state(&self, which: impl Into<Which> + Send, state: MessageState) -> Result<()> {
        self.update_state(&which.into(), state, false).await
    }

    async fn mark_processed(
        &self,
        which: impl Into<Which> + Send,
        state: MessageState,
    ) -> Result<()> {
        self.update_state(&which.into(), state, true).await
    }

    async fn get_meta(&self, which: impl Into<Which> + Send) -> Result<Option<MessageMeta>> {
        match self.load(&which.into()).await? {
            Some(env) => Ok(Some(self.open_one(env).await?.0)),
            None => Ok(None),
        }
    }

    /// At start: this node's own unfinished work (from its previous life under
    /// the same name) and that of nodes whose lease ran out, claimed for this
    /// node. Never a live node's.
    async fn pending_processing(&self) -> Result<Vec<MessageMeta>> {
        self.claim("m.node = $1 OR m.lease_until IS NULL OR m.lease_until < now()")
            .await
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

/// Chunks already read with the row that locked the message: `rows` hold the
/// chunk index and data at `column` and `column + 1` (NULL when the message has
/// none stored), in order.
struct FirstBatch {
    rows: Vec<Row>,
    column: usize,
}

/// The verified chunks of a message, read in batches on short pooled
/// queries, each within the call deadline; with a fetch lock's `token`, each
/// batch renews that lock. `first`: the first batch, read already.
fn body_stream(
    inner: &Arc<Inner>,
    tx_id: String,
    token: Option<Uuid>,
    local_id: Uuid,
    cipher: MessageCipher,
    total: u32,
    first: Option<FirstBatch>,
) -> BoxStream<'static, io::Result<Bytes>> {
    let (inner, tx, cipher) = (inner.clone(), tx_id, Arc::new(cipher));
    stream::try_unfold((0u32, first), move |(next, first)| {
        let (inner, cipher, tx) = (inner.clone(), cipher.clone(), tx.clone());
        async move {
            if next >= total {
                return Ok::<_, io::Error>(None);
            }
            let count = (READ_AHEAD as u32).min(total - next);
            let batch = match first {
                Some(first) => {
                    open_chunks(&first.rows, first.column, &tx, &cipher, next, count, total)?
                }
                None => {
                    let read =
                        read_chunks(&inner, &tx, token, local_id, &cipher, next, count, total);
                    tokio::time::timeout(inner.deadline, read)
                        .await
                        .map_err(|_| {
                            io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!(
                                    "reading a body: no answer within {} ms",
                                    inner.deadline.as_millis()
                                ),
                            )
                        })??
                }
            };
            Ok(Some((
                stream::iter(batch.into_iter().map(Ok::<_, io::Error>)),
                (next + count, None),
            )))
        }
    })
    .try_flatten()
    .boxed()
}

/// Reads and opens chunks `from..from + count` of a message of `total` chunks,
/// and renews the fetch lock (`token`) on the same round trip: a download that
/// keeps streaming is never taken for a stale one.
#[allow(clippy::too_many_arguments)]
async fn read_chunks(
    inner: &Inner,
    tx_id: &str,
    token: Option<Uuid>,
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
    let now = inner.now();
    let renew = prepared(
        &client,
        "UPDATE mailbox_messages SET state_timestamp = $3 \
         WHERE local_id = $1 AND state = 'fetching_in_progress' AND fetch_token = $2",
        "renewing a fetch lock",
    );
    let read = prepared(
        &client,
        "SELECT idx, data FROM mailbox_chunks WHERE local_id = $1 AND idx >= $2 AND idx < $3 \
         ORDER BY idx",
        "reading a body",
    );
    let (renew, read) = futures::future::try_join(renew, read)
        .await
        .map_err(io::Error::other)?;
    let renew_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&local_id, &token, &now];
    let read_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&local_id, &lo, &hi];
    let renew = client.execute(&renew, &renew_params);
    let read = client.query(&read, &read_params);
    let (renewed, rows) = match token {
        Some(_) => futures::future::join(renew, read).await,
        // Read by the relay for processing: no lock to renew.
        None => {
            drop(renew);
            (Ok(1), read.await)
        }
    };
    let rows = rows.map_err(|e| io::Error::other(db("reading a body")(e)))?;
    if renewed.map_err(|e| io::Error::other(db("renewing a fetch lock")(e)))? == 0 {
        return Err(io::Error::other(MailboxError::FetchLockLost {
            tx_id: tx_id.to_owned(),
        }));
    }
    drop(client);
    open_chunks(&rows, 0, tx_id, cipher, from, count, total)
}

/// Checks and opens chunks `from..from + count` of a message of `total`
/// chunks from `rows`, whose index and data are at `column` and `column + 1`:
/// a chunk missing or out of order is an error, never a short body.
fn open_chunks(
    rows: &[Row],
    column: usize,
    tx_id: &str,
    cipher: &MessageCipher,
    from: u32,
    count: u32,
    total: u32,
) -> io::Result<Vec<Bytes>> {
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
        let idx: Option<i32> = row
            .col(column)
            .map_err(|e| io::Error::other(MailboxError::from(e)))?;
        if idx.and_then(|i| u32::try_from(i).ok()) != Some(expected) {
            return Err(missing());
        }
        let mut buf: Vec<u8> = row
            .col(column + 1)
            .map_err(|e| io::Error::other(MailboxError::from(e)))?;
        cipher.open_stored_chunk(tx_id, expected, total, &mut buf)?;
        out.push(Bytes::from(buf));
    }
    Ok(out)
}
