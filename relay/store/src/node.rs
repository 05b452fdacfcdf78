//! [`Store`]: the one type a relay node holds, whichever engine the configuration
//! chose. It is both a [`MailboxStore`] and a [`SharedState`], and dispatches to
//! the engine by a `match`, so the relay is written once for both.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use relay_ident::Organisationsnummer;
use relay_mailbox::{
    AckOutcome, Deletion, DeletionReason, FetchHandle, KekId, KeyEncryptionKey, ListFilter,
    MailboxError, MailboxStore, MessageLabel, MessageMeta, MessageState, Outbox, PutOutcome, Quota,
    Stats, Which,
};

use crate::redb::{RedbStore, StoreOptions};
use tokio::io::AsyncRead;
use uuid::Uuid;

use crate::config::{StoreConfig, StoreConfigError, StoreKind};
use crate::pg::{OpenError, PgStore};
use crate::redb::RedbState;
use crate::state::{
    AcceptedReport, Decisions, Maintenance, MaintenanceWindow, Mandate, PlannedMaintenance,
    ProductName, RateLimit, RetryLimit, Scope, Seen, SharedState, StateError,
};

/// A node's store. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Store {
    /// One machine: the mailbox file and the state file beside it.
    Redb {
        mailbox: RedbStore,
        state: RedbState,
    },
    /// Several nodes on one PostgreSQL database.
    Postgres(PgStore),
}

/// Why [`Store::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    #[error(transparent)]
    Config(#[from] StoreConfigError),
    #[error(transparent)]
    Postgres(#[from] OpenError),
    #[error("mailbox store: {0}")]
    Mailbox(#[from] MailboxError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The state file that goes with a redb mailbox file (`<mailbox>.state`).
pub fn state_path(mailbox: &Path) -> std::path::PathBuf {
    let mut p = mailbox.as_os_str().to_owned();
    p.push(".state");
    p.into()
}

impl Store {
    /// Opens the configured engine. `redb_path` is the mailbox file a redb store
    /// uses (its state file goes beside it); `options` carries the clock,
    /// retention and ack policy for either engine.
    pub async fn open(
        config: &StoreConfig,
        redb_path: &Path,
        kek: Arc<dyn KeyEncryptionKey>,
        options: StoreOptions,
    ) -> Result<Self, StoreOpenError> {
        config.validate()?;
        match config.kind {
            StoreKind::Redb => {
                let path = redb_path.to_path_buf();
                tokio::task::spawn_blocking(move || {
                    let mailbox = RedbStore::open_with(&path, kek, options)?;
                    let state = RedbState::open(state_path(&path))?;
                    Ok::<_, StoreOpenError>(Self::Redb { mailbox, state })
                })
                .await
                .map_err(|e| MailboxError::Task(e.to_string()))?
            }
            StoreKind::Postgres => {
                let mut pg = config.pg_options()?;
                pg.clock = options.clock;
                pg.retention = options.retention;
                pg.ack_policy = options.ack_policy;
                pg.max_upload_time = options.max_upload_time;
                Ok(Self::Postgres(PgStore::open(pg, kek).await?))
            }
        }
    }

    /// Whether the store answers now (for readiness): for PostgreSQL one
    /// `SELECT 1` on a connection of its own, within the call deadline, so the
    /// mailbox's load never decides it; always for redb (a failing file shows in
    /// every operation).
    pub async fn ready(&self) -> bool {
        match self {
            Self::Redb { .. } => true,
            Self::Postgres(pg) => pg.ready().await,
        }
    }

    /// Whether the store answers a bounded query now (the `store_up` metric):
    /// [`Store::ready`] for PostgreSQL; for redb one point lookup in the
    /// mailbox file. Never a count over the stored messages.
    pub async fn alive(&self) -> bool {
        match self {
            Self::Redb { .. } => {
                use relay_mailbox::MailboxStore as _;
                self.get_meta("store-alive-probe").await.is_ok()
            }
            Self::Postgres(pg) => pg.ready().await,
        }
    }

    /// How many stored data keys each KEK wraps: check before retiring a KEK.
    pub async fn kek_usage(&self) -> Result<BTreeMap<KekId, usize>, MailboxError> {
        match self {
            Self::Redb { mailbox, .. } => mailbox.kek_usage().await,
            Self::Postgres(pg) => pg.kek_usage().await,
        }
    }

    /// Rewraps every data key not under the newest KEK; how many.
    pub async fn rewrap_all(&self) -> Result<usize, MailboxError> {
        match self {
            Self::Redb { mailbox, .. } => mailbox.rewrap_all().await,
            Self::Postgres(pg) => pg.rewrap_all().await,
        }
    }

    /// Whether other nodes share this store (and so every decision taken in
    /// it): PostgreSQL. The relay asks this instead of which engine it has;
    /// then a node follows the decisions others make through it.
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Renews this node's claims on the messages it is processing; how many.
    /// Run more often than the lease runs out (the relay: every third of it).
    /// Nothing to do on one machine.
    pub async fn heartbeat(&self) -> Result<u64, MailboxError> {
        match self {
            Self::Redb { .. } => Ok(0),
            Self::Postgres(pg) => {
                match tokio::time::timeout(pg.call_deadline(), pg.heartbeat()).await {
                    Ok(r) => r,
                    Err(_) => Err(MailboxError::Database(late(
                        "heartbeat",
                        pg.call_deadline(),
                    ))),
                }
            }
        }
    }

    /// Claims the accepted, unprocessed messages of nodes whose lease ran out
    /// (they died or lost the database), oldest first; never a live node's. On
    /// one machine there is no other node: nothing.
    pub async fn take_over_expired(&self) -> Result<Vec<MessageMeta>, MailboxError> {
        match self {
            Self::Redb { .. } => Ok(Vec::new()),
            Self::Postgres(pg) => {
                match tokio::time::timeout(pg.call_deadline(), pg.take_over_expired()).await {
                    Ok(r) => r,
                    Err(_) => Err(MailboxError::Database(late(
                        "taking over work",
                        pg.call_deadline(),
                    ))),
                }
            }
        }
    }

    /// The quotas' figures: what `outbox` holds and what `sender` (an
    /// organisation number) has sent that is still held, counted by the store
    /// (the same on every node and after a restart); counting stops past
    /// `limit`.
    pub async fn usage(
        &self,
        outbox: &Outbox,
        sender: &str,
        limit: u64,
    ) -> Result<(relay_mailbox::Usage, relay_mailbox::Usage), MailboxError> {
        match self {
            Self::Redb { mailbox, .. } => mailbox.usage(outbox, sender, limit).await,
            Self::Postgres(pg) => {
                match tokio::time::timeout(pg.call_deadline(), pg.usage(outbox, sender, limit))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(MailboxError::Database(late("quota", pg.call_deadline()))),
                }
            }
        }
    }

    /// How long a claim on work in progress holds without a heartbeat (`None`
    /// on one machine, where nothing is claimed).
    pub fn lease(&self) -> Option<Duration> {
        match self {
            Self::Redb { .. } => None,
            Self::Postgres(pg) => Some(pg.lease()),
        }
    }

    /// The engine's name, for a metric label or a log line; never to decide
    /// on (ask [`Store::is_shared`] for what differs between engines).
    pub fn engine(&self) -> &'static str {
        match self {
            Self::Redb { .. } => "redb",
            Self::Postgres(_) => "postgres",
        }
    }
}

// Every call on the database has a client-side deadline (`PgStore::call_deadline`):
// a database that stops answering (a silent network cut) ends in an
// "unavailable" error within it, never in a request that hangs. `put` and the
// body of a fetch set their own deadlines per database step (a body may take
// longer than one call to arrive or to leave).
macro_rules! mailbox {
    ($self:ident, $op:literal, $s:ident => $e:expr) => {
        match $self {
            Store::Redb { mailbox: $s, .. } => $e.await,
            Store::Postgres($s) => match tokio::time::timeout($s.call_deadline(), $e).await {
                Ok(r) => r,
                Err(_) => Err(MailboxError::Database(late($op, $s.call_deadline()))),
            },
        }
    };
}

macro_rules! state {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Redb { state: $s, .. } => $e.await,
            Store::Postgres($s) => match tokio::time::timeout($s.call_deadline(), $e).await {
                Ok(r) => r,
                Err(_) => Err(StateError::Database(late("state", $s.call_deadline()))),
            },
        }
    };
}

fn late(op: &str, deadline: Duration) -> String {
    format!("{op}: no answer within {} ms", deadline.as_millis())
}

type MResult<T> = Result<T, MailboxError>;
type SResult<T> = Result<T, StateError>;

impl MailboxStore for Store {
    async fn put_within<R>(&self, label: MessageLabel, body: R, quota: Quota) -> MResult<PutOutcome>
    where
        R: AsyncRead + Send,
    {
        match self {
            Self::Redb { mailbox, .. } => mailbox.put_within(label, body, quota).await,
            Self::Postgres(pg) => pg.put_within(label, body, quota).await,
        }
    }

    async fn put_received<R>(&self, label: MessageLabel, body: R) -> MResult<PutOutcome>
    where
        R: AsyncRead + Send,
    {
        match self {
            Self::Redb { mailbox, .. } => mailbox.put_received(label, body).await,
            Self::Postgres(pg) => pg.put_received(label, body).await,
        }
    }

    async fn list(&self, outbox: &Outbox, filter: &ListFilter) -> MResult<Vec<MessageMeta>> {
        mailbox!(self, "list", s => s.list(outbox, filter))
    }

    async fn fetch(&self, outbox: &Outbox, which: impl Into<Which> + Send) -> MResult<FetchHandle> {
        let which = which.into();
        mailbox!(self, "fetch", s => s.fetch(outbox, which))
    }

    async fn read(&self, which: impl Into<Which> + Send) -> MResult<FetchHandle> {
        let which = which.into();
        mailbox!(self, "read", s => s.read(which))
    }

    async fn ack(&self, outbox: &Outbox, which: impl Into<Which> + Send) -> MResult<AckOutcome> {
        let which = which.into();
        mailbox!(self, "ack", s => s.ack(outbox, which))
    }

    async fn delete(
        &self,
        which: impl Into<Which> + Send,
        reason: DeletionReason,
    ) -> MResult<Deletion> {
        let which = which.into();
        mailbox!(self, "delete", s => s.delete(which, reason))
    }

    async fn sweep(&self, now: DateTime<Utc>) -> MResult<Vec<Deletion>> {
        // Not under one deadline: a sweep deletes in batches, each with its
        // own, and reports every deletion it made (for the audit trail).
        match self {
            Self::Redb { mailbox, .. } => mailbox.sweep(now).await,
            Self::Postgres(pg) => pg.sweep(now).await,
        }
    }

    async fn release_stale_fetches(&self, older_than: Duration) -> MResult<usize> {
        mailbox!(self, "release_stale_fetches", s => s.release_stale_fetches(older_than))
    }

    async fn set_state(&self, which: impl Into<Which> + Send, state: MessageState) -> MResult<()> {
        let which = which.into();
        mailbox!(self, "set_state", s => s.set_state(which, state))
    }

    async fn mark_processed(
        &self,
        which: impl Into<Which> + Send,
        state: MessageState,
    ) -> MResult<()> {
        let which = which.into();
        mailbox!(self, "mark_processed", s => s.mark_processed(which, state))
    }

    async fn get_meta(&self, which: impl Into<Which> + Send) -> MResult<Option<MessageMeta>> {
        let which = which.into();
        mailbox!(self, "get_meta", s => s.get_meta(which))
    }

    async fn pending_processing(&self) -> MResult<Vec<MessageMeta>> {
        mailbox!(self, "pending_processing", s => s.pending_processing())
    }

    async fn stats(&self) -> MResult<Stats> {
        mailbox!(self, "stats", s => s.stats())
    }
}

impl SharedState for Store {
    async fn suspend(&self, org: Organisationsnummer, scope: &Scope) -> SResult<bool> {
        state!(self, s => s.suspend(org, scope))
    }

    async fn resume(&self, org: Organisationsnummer, scope: &Scope) -> SResult<bool> {
        state!(self, s => s.resume(org, scope))
    }

    async fn is_suspended(&self, org: Organisationsnummer, product: ProductName) -> SResult<bool> {
        state!(self, s => s.is_suspended(org, product))
    }

    async fn is_anordnare_suspended(&self, org: Organisationsnummer) -> SResult<bool> {
        state!(self, s => s.is_anordnare_suspended(org))
    }

    async fn suspensions(&self) -> SResult<Vec<(Organisationsnummer, Scope)>> {
        state!(self, s => s.suspensions())
    }

    async fn withdraw(&self, provider: &str, m: Organisationsnummer) -> SResult<bool> {
        state!(self, s => s.withdraw(provider, m))
    }

    async fn restore(&self, provider: &str, m: Organisationsnummer) -> SResult<bool> {
        state!(self, s => s.restore(provider, m))
    }

    async fn is_withdrawn(&self, provider: &str, m: Organisationsnummer) -> SResult<bool> {
        state!(self, s => s.is_withdrawn(provider, m))
    }

    async fn withdrawals(&self) -> SResult<Vec<(String, Organisationsnummer)>> {
        state!(self, s => s.withdrawals())
    }

    async fn set_maintenance(&self, reason: Option<&str>) -> SResult<()> {
        state!(self, s => s.set_maintenance(reason))
    }

    async fn maintenance(&self) -> SResult<Option<Maintenance>> {
        state!(self, s => s.maintenance())
    }

    async fn plan_maintenance(&self, window: &MaintenanceWindow) -> SResult<Uuid> {
        state!(self, s => s.plan_maintenance(window))
    }

    async fn cancel_maintenance(&self, id: Uuid) -> SResult<bool> {
        state!(self, s => s.cancel_maintenance(id))
    }

    async fn maintenance_windows(&self) -> SResult<Vec<PlannedMaintenance>> {
        state!(self, s => s.maintenance_windows())
    }

    async fn first_seen(&self, sender: &str, tx_id: &str, keep_for: Duration) -> SResult<Seen> {
        state!(self, s => s.first_seen(sender, tx_id, keep_for))
    }

    async fn take_elt_call(&self, vendor: &str, limit: RateLimit) -> SResult<Result<(), Duration>> {
        state!(self, s => s.take_elt_call(vendor, limit))
    }

    async fn record_elt_attempt(
        &self,
        vendor: &str,
        keys: &[&str],
        limit: RetryLimit,
    ) -> SResult<Result<u32, u32>> {
        state!(self, s => s.record_elt_attempt(vendor, keys, limit))
    }

    async fn sweep_state(&self, now: DateTime<Utc>, attempt_window: Duration) -> SResult<u64> {
        state!(self, s => s.sweep_state(now, attempt_window))
    }

    async fn decisions(&self) -> SResult<Decisions> {
        state!(self, s => s.decisions())
    }

    async fn set_mandate(&self, mandate: Mandate) -> SResult<bool> {
        state!(self, s => s.set_mandate(mandate))
    }

    async fn import_mandates(&self, mandates: &[Mandate]) -> SResult<u64> {
        state!(self, s => s.import_mandates(mandates))
    }

    async fn accepted_elt_report(&self, report_id: &str) -> SResult<Option<AcceptedReport>> {
        state!(self, s => s.accepted_elt_report(report_id))
    }

    async fn keep_elt_report(&self, report_id: &str, accepted: &AcceptedReport) -> SResult<bool> {
        state!(self, s => s.keep_elt_report(report_id, accepted))
    }

    async fn forget_elt_reports(&self, keep: usize) -> SResult<u64> {
        state!(self, s => s.forget_elt_reports(keep))
    }
}
