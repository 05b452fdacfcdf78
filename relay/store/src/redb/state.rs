//! [`RedbState`]: the one-machine [`SharedState`], on its own redb file beside the
//! mailbox. Operator decisions, duplicate records, ELT mandates, accepted ELT
//! reports and ELT retry counts survive a restart; the ELT call rate stays in
//! memory (one node, and a restart forgetting a second's worth of rate is
//! harmless).
//!
//! Tables:
//!
//! | table          | key                        | value                          |
//! |----------------|----------------------------|--------------------------------|
//! | `suspensions`  | (org, scope key)           | since (ms)                     |
//! | `withdrawals`  | (provider, municipality)   | since (ms)                     |
//! | `maintenance`  | `"switch"`                 | JSON `{reason, since}`         |
//! | `windows`      | window id                  | JSON `{starts_at, ends_at, reason}` |
//! | `seen`         | (sender, tx.id)            | (first seen ms, expires ms)    |
//! | `elt_mandates` | (vendor, anordnare)        | granted (`true`) or revoked    |
//! | `elt_reports`  | report id                  | JSON `{sha256, receipt, accepted_ms}` |
//! | `elt_attempts` | (vendor, key)              | attempt times (ms), 8 bytes each, little-endian |
//!
//! A record that cannot be read (bad JSON, an invalid organisation number, an
//! unknown scope) is reported as [`Unreadable`] and skipped.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use relay_ident::Organisationsnummer;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{blocking, file, insert_new};
use crate::state::{
    AcceptedReport, Decisions, Maintenance, MaintenanceWindow, Mandate, PlannedMaintenance,
    ProductName, RateLimit, Result, RetryLimit, Scope, Seen, SharedState, StateError, Unreadable,
    mandate_row, sort_out, suspension_row, withdrawal_row,
};

const SUSPENSIONS: TableDefinition<(&str, &str), i64> = TableDefinition::new("suspensions");
const WITHDRAWALS: TableDefinition<(&str, &str), i64> = TableDefinition::new("withdrawals");
const MAINTENANCE: TableDefinition<&str, &[u8]> = TableDefinition::new("maintenance");
const WINDOWS: TableDefinition<u128, &[u8]> = TableDefinition::new("windows");
const SEEN: TableDefinition<(&str, &str), (i64, i64)> = TableDefinition::new("seen");
const MANDATES: TableDefinition<(&str, &str), bool> = TableDefinition::new("elt_mandates");
const REPORTS: TableDefinition<&str, &[u8]> = TableDefinition::new("elt_reports");
const ATTEMPTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("elt_attempts");

/// Attempt times from their stored form (a damaged tail is ignored).
fn times_of(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .filter_map(|c| <[u8; 8]>::try_from(c).ok())
        .map(i64::from_le_bytes)
        .collect()
}

fn bytes_of(times: &[i64]) -> Vec<u8> {
    times.iter().flat_map(|t| t.to_le_bytes()).collect()
}

const SWITCH: &str = "switch";

#[derive(Serialize, Deserialize)]
struct MaintenanceRecord {
    reason: String,
    since: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct ReportRecord {
    sha256: String,
    receipt: String,
    accepted_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct WindowRecord {
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    reason: String,
}

/// The embedded shared state. Cheap to clone; clones share one file and one set
/// of counters (a process opens the file once).
#[derive(Clone)]
pub struct RedbState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedbState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbState").finish_non_exhaustive()
    }
}

struct Inner {
    db: Database,
    /// vendor → (tokens, last refill).
    rate: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RedbState {
    /// Opens (or creates) the state file. Blocking: call at start-up.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(1024 * 1024)
            .create(path.as_ref())
            .map_err(file)?;
        let txn = db.begin_write().map_err(file)?;
        txn.open_table(SUSPENSIONS).map_err(file)?;
        txn.open_table(WITHDRAWALS).map_err(file)?;
        txn.open_table(MAINTENANCE).map_err(file)?;
        txn.open_table(WINDOWS).map_err(file)?;
        txn.open_table(SEEN).map_err(file)?;
        txn.open_table(MANDATES).map_err(file)?;
        txn.open_table(REPORTS).map_err(file)?;
        txn.open_table(ATTEMPTS).map_err(file)?;
        txn.commit().map_err(file)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                rate: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
    {
        blocking(self.inner.clone(), move |inner| f(&inner.db)).await
    }

    /// Inserts (`insert`) or removes a key of a (text, text) table; whether that
    /// changed anything.
    async fn toggle(
        &self,
        table: TableDefinition<'static, (&'static str, &'static str), i64>,
        a: String,
        b: String,
        insert: bool,
    ) -> Result<bool> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let changed = {
                let mut t = txn.open_table(table).map_err(file)?;
                if insert {
                    let known = t.get((a.as_str(), b.as_str())).map_err(file)?.is_some();
                    if !known {
                        t.insert((a.as_str(), b.as_str()), Utc::now().timestamp_millis())
                            .map_err(file)?;
                    }
                    !known
                } else {
                    t.remove((a.as_str(), b.as_str())).map_err(file)?.is_some()
                }
            };
            txn.commit().map_err(file)?;
            Ok(changed)
        })
        .await
    }

    async fn contains(
        &self,
        table: TableDefinition<'static, (&'static str, &'static str), i64>,
        keys: Vec<(String, String)>,
    ) -> Result<bool> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(table).map_err(file)?;
            for (a, b) in &keys {
                if t.get((a.as_str(), b.as_str())).map_err(file)?.is_some() {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    async fn pairs(
        &self,
        table: TableDefinition<'static, (&'static str, &'static str), i64>,
    ) -> Result<Vec<(String, String)>> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(table).map_err(file)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(file)? {
                let (k, _) = row.map_err(file)?;
                let (a, b) = k.value();
                out.push((a.to_owned(), b.to_owned()));
            }
            Ok(out)
        })
        .await
    }
}

fn record(e: impl std::fmt::Display) -> StateError {
    StateError::Record(e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SharedState for RedbState {
    async fn suspend(&self, org: Organisationsnummer, scope: &Scope) -> Result<bool> {
        self.toggle(SUSPENSIONS, org.as_str().to_owned(), scope.key(), true)
            .await
    }

    async fn resume(&self, org: Organisationsnummer, scope: &Scope) -> Result<bool> {
        self.toggle(SUSPENSIONS, org.as_str().to_owned(), scope.key(), false)
            .await
    }

    async fn is_suspended(&self, org: Organisationsnummer, product: ProductName) -> Result<bool> {
        let o = org.as_str().to_owned();
        let keys = vec![
            (o.clone(), Scope::All.key()),
            (o, Scope::Product(product).key()),
        ];
        self.contains(SUSPENSIONS, keys).await
    }

    async fn is_anordnare_suspended(&self, org: Organisationsnummer) -> Result<bool> {
        let keys = vec![(org.as_str().to_owned(), Scope::EltAnordnare.key())];
        self.contains(SUSPENSIONS, keys).await
    }

    async fn suspensions(&self) -> Result<Vec<(Organisationsnummer, Scope)>> {
        let rows = self.pairs(SUSPENSIONS).await?;
        let mut out = sort_out(
            rows.iter().map(|(o, s)| suspension_row(o, s)),
            &mut Vec::new(),
        );
        out.sort();
        Ok(out)
    }

    async fn withdraw(&self, provider: &str, municipality: Organisationsnummer) -> Result<bool> {
        let (p, m) = (provider.to_owned(), municipality.as_str().to_owned());
        self.toggle(WITHDRAWALS, p, m, true).await
    }

    async fn restore(&self, provider: &str, municipality: Organisationsnummer) -> Result<bool> {
        let (p, m) = (provider.to_owned(), municipality.as_str().to_owned());
        self.toggle(WITHDRAWALS, p, m, false).await
    }

    async fn is_withdrawn(
        &self,
        provider: &str,
        municipality: Organisationsnummer,
    ) -> Result<bool> {
        let keys = vec![(provider.to_owned(), municipality.as_str().to_owned())];
        self.contains(WITHDRAWALS, keys).await
    }

    async fn withdrawals(&self) -> Result<Vec<(String, Organisationsnummer)>> {
        let rows = self.pairs(WITHDRAWALS).await?;
        Ok(sort_out(
            rows.iter().map(|(p, m)| withdrawal_row(p, m)),
            &mut Vec::new(),
        ))
    }

    async fn set_maintenance(&self, reason: Option<&str>) -> Result<()> {
        let record = reason
            .map(|r| {
                serde_json::to_vec(&MaintenanceRecord {
                    reason: r.to_owned(),
                    since: Utc::now(),
                })
            })
            .transpose()
            .map_err(record)?;
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            {
                let mut t = txn.open_table(MAINTENANCE).map_err(file)?;
                match &record {
                    Some(r) => drop(t.insert(SWITCH, r.as_slice()).map_err(file)?),
                    None => drop(t.remove(SWITCH).map_err(file)?),
                }
            }
            txn.commit().map_err(file)
        })
        .await
    }

    async fn maintenance(&self) -> Result<Option<Maintenance>> {
        self.run(|db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(MAINTENANCE).map_err(file)?;
            let Some(v) = t.get(SWITCH).map_err(file)? else {
                return Ok(None);
            };
            let r: MaintenanceRecord = serde_json::from_slice(v.value()).map_err(record)?;
            Ok(Some(Maintenance {
                reason: r.reason,
                since: r.since,
            }))
        })
        .await
    }

    async fn plan_maintenance(&self, window: &MaintenanceWindow) -> Result<Uuid> {
        let id = Uuid::new_v4();
        let bytes = serde_json::to_vec(&WindowRecord {
            starts_at: window.starts_at,
            ends_at: window.ends_at,
            reason: window.reason.clone(),
        })
        .map_err(record)?;
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            txn.open_table(WINDOWS)
                .map_err(file)?
                .insert(id.as_u128(), bytes.as_slice())
                .map_err(file)?;
            txn.commit().map_err(file)
        })
        .await?;
        Ok(id)
    }

    async fn cancel_maintenance(&self, id: Uuid) -> Result<bool> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let removed = txn
                .open_table(WINDOWS)
                .map_err(file)?
                .remove(id.as_u128())
                .map_err(file)?
                .is_some();
            txn.commit().map_err(file)?;
            Ok(removed)
        })
        .await
    }

    async fn maintenance_windows(&self) -> Result<Vec<PlannedMaintenance>> {
        let mut out = self
            .run(|db| {
                let txn = db.begin_read().map_err(file)?;
                let t = txn.open_table(WINDOWS).map_err(file)?;
                let mut out = Vec::new();
                for row in t.iter().map_err(file)? {
                    let (k, v) = row.map_err(file)?;
                    let Ok(r) = serde_json::from_slice::<WindowRecord>(v.value()) else {
                        tracing::warn!(
                            table = "windows",
                            id = %Uuid::from_u128(k.value()),
                            "a stored maintenance window cannot be read; skipped"
                        );
                        continue;
                    };
                    out.push(PlannedMaintenance {
                        id: Uuid::from_u128(k.value()),
                        window: MaintenanceWindow {
                            starts_at: r.starts_at,
                            ends_at: r.ends_at,
                            reason: r.reason,
                        },
                    });
                }
                Ok(out)
            })
            .await?;
        out.sort_by_key(|a| (a.window.starts_at, a.id));
        Ok(out)
    }

    async fn first_seen(&self, sender: &str, tx_id: &str, keep_for: Duration) -> Result<Seen> {
        let (sender, tx_id) = (sender.to_owned(), tx_id.to_owned());
        self.run(move |db| {
            let now = Utc::now();
            let txn = db.begin_write().map_err(file)?;
            let seen = {
                let mut t = txn.open_table(SEEN).map_err(file)?;
                let key = (sender.as_str(), tx_id.as_str());
                let earlier = t.get(key).map_err(file)?.map(|v| v.value());
                match earlier {
                    Some((first, expires)) if expires > now.timestamp_millis() => Seen::Duplicate {
                        first_seen: DateTime::from_timestamp_millis(first)
                            .ok_or_else(|| record("stored time out of range"))?,
                    },
                    _ => {
                        let until = now + TimeDelta::from_std(keep_for).unwrap_or(TimeDelta::MAX);
                        t.insert(key, (now.timestamp_millis(), until.timestamp_millis()))
                            .map_err(file)?;
                        Seen::First
                    }
                }
            };
            txn.commit().map_err(file)?;
            Ok(seen)
        })
        .await
    }

    async fn take_elt_call(&self, vendor: &str, limit: RateLimit) -> Result<Result<(), Duration>> {
        let now = Instant::now();
        let burst = f64::from(limit.burst.max(1));
        let mut buckets = lock(&self.inner.rate);
        let (tokens, last) = buckets.entry(vendor.to_owned()).or_insert((burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * limit.per_second;
        *tokens = (*tokens + refill).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(Ok(()))
        } else {
            Ok(Err(Duration::from_secs_f64(
                (1.0 - *tokens) / limit.per_second,
            )))
        }
    }

    async fn record_elt_attempt(
        &self,
        vendor: &str,
        keys: &[&str],
        limit: RetryLimit,
    ) -> Result<Result<u32, u32>> {
        let vendor = vendor.to_owned();
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.run(move |db| {
            let now = Utc::now().timestamp_millis();
            let since =
                now.saturating_sub(i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX));
            let txn = db.begin_write().map_err(file)?;
            let decision = {
                let mut t = txn.open_table(ATTEMPTS).map_err(file)?;
                let mut recent = Vec::with_capacity(keys.len());
                for k in &keys {
                    let times: Vec<i64> = t
                        .get((vendor.as_str(), k.as_str()))
                        .map_err(file)?
                        .map(|v| times_of(v.value()))
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|at| *at > since)
                        .collect();
                    recent.push(times);
                }
                let previous = recent.iter().map(Vec::len).max().unwrap_or(0);
                let previous = u32::try_from(previous).unwrap_or(u32::MAX);
                if previous > limit.max_retries {
                    Err(previous - 1)
                } else {
                    for (k, mut times) in keys.iter().zip(recent) {
                        times.push(now);
                        t.insert((vendor.as_str(), k.as_str()), bytes_of(&times).as_slice())
                            .map_err(file)?;
                    }
                    Ok(previous)
                }
            };
            txn.commit().map_err(file)?;
            Ok(decision)
        })
        .await
    }

    async fn sweep_state(&self, now: DateTime<Utc>, attempt_window: Duration) -> Result<u64> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let mut removed = 0u64;
            txn.open_table(SEEN)
                .map_err(file)?
                .retain(|_, (_, expires)| {
                    let keep = expires > now.timestamp_millis();
                    if !keep {
                        removed += 1;
                    }
                    keep
                })
                .map_err(file)?;
            let cutoff = (now - TimeDelta::from_std(attempt_window).unwrap_or(TimeDelta::MAX))
                .timestamp_millis();
            {
                let mut t = txn.open_table(ATTEMPTS).map_err(file)?;
                let mut changed: Vec<((String, String), Vec<i64>)> = Vec::new();
                for row in t.iter().map_err(file)? {
                    let (k, v) = row.map_err(file)?;
                    let times = times_of(v.value());
                    let kept: Vec<i64> = times.iter().copied().filter(|at| *at > cutoff).collect();
                    if kept.len() != times.len() {
                        removed += (times.len() - kept.len()) as u64;
                        let (a, b) = k.value();
                        changed.push(((a.to_owned(), b.to_owned()), kept));
                    }
                }
                for ((a, b), kept) in changed {
                    if kept.is_empty() {
                        t.remove((a.as_str(), b.as_str())).map_err(file)?;
                    } else {
                        t.insert((a.as_str(), b.as_str()), bytes_of(&kept).as_slice())
                            .map_err(file)?;
                    }
                }
            }
            txn.commit().map_err(file)?;
            Ok(removed)
        })
        .await
    }

    async fn decisions(&self) -> Result<Decisions> {
        let mut unreadable: Vec<Unreadable> = Vec::new();
        let suspensions = self.pairs(SUSPENSIONS).await?;
        let mut suspensions = sort_out(
            suspensions.iter().map(|(o, s)| suspension_row(o, s)),
            &mut unreadable,
        );
        suspensions.sort();
        let withdrawals = self.pairs(WITHDRAWALS).await?;
        let withdrawals = sort_out(
            withdrawals.iter().map(|(p, m)| withdrawal_row(p, m)),
            &mut unreadable,
        );
        let mandates = self
            .run(|db| {
                let txn = db.begin_read().map_err(file)?;
                let t = txn.open_table(MANDATES).map_err(file)?;
                let mut out = Vec::new();
                for row in t.iter().map_err(file)? {
                    let (k, v) = row.map_err(file)?;
                    let (vendor, anordnare) = k.value();
                    out.push(mandate_row(vendor, anordnare, v.value()));
                }
                Ok(out)
            })
            .await?;
        let mandates = sort_out(mandates, &mut unreadable);
        Ok(Decisions {
            suspensions,
            withdrawals,
            mandates,
            unreadable,
        })
    }

    async fn set_mandate(&self, m: Mandate) -> Result<bool> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let changed = {
                let mut t = txn.open_table(MANDATES).map_err(file)?;
                let key = (m.vendor.as_str(), m.anordnare.as_str());
                let before = t.insert(key, m.granted).map_err(file)?.map(|v| v.value());
                before != Some(m.granted)
            };
            txn.commit().map_err(file)?;
            Ok(changed)
        })
        .await
    }

    async fn import_mandates(&self, mandates: &[Mandate]) -> Result<u64> {
        let mandates = mandates.to_vec();
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let mut added = 0;
            {
                let mut t = txn.open_table(MANDATES).map_err(file)?;
                for m in &mandates {
                    let key = (m.vendor.as_str(), m.anordnare.as_str());
                    if t.get(key).map_err(file)?.is_none() {
                        t.insert(key, m.granted).map_err(file)?;
                        added += 1;
                    }
                }
            }
            txn.commit().map_err(file)?;
            Ok(added)
        })
        .await
    }

    async fn accepted_elt_report(&self, report_id: &str) -> Result<Option<AcceptedReport>> {
        let id = report_id.to_owned();
        self.run(move |db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(REPORTS).map_err(file)?;
            let Some(v) = t.get(id.as_str()).map_err(file)? else {
                return Ok(None);
            };
            let r: ReportRecord = serde_json::from_slice(v.value()).map_err(record)?;
            Ok(Some(AcceptedReport {
                sha256: r.sha256,
                receipt: r.receipt,
            }))
        })
        .await
    }

    async fn keep_elt_report(&self, report_id: &str, accepted: &AcceptedReport) -> Result<bool> {
        let id = report_id.to_owned();
        let bytes = serde_json::to_vec(&ReportRecord {
            sha256: accepted.sha256.clone(),
            receipt: accepted.receipt.clone(),
            accepted_ms: Utc::now().timestamp_millis(),
        })
        .map_err(record)?;
        self.run(move |db| insert_new(db, REPORTS, &id, &bytes))
            .await
    }

    async fn forget_elt_reports(&self, keep: usize) -> Result<u64> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let removed = {
                let mut t = txn.open_table(REPORTS).map_err(file)?;
                let count = usize::try_from(t.len().map_err(file)?).unwrap_or(usize::MAX);
                if count <= keep {
                    0
                } else {
                    // Oldest first; an unreadable record counts as the oldest.
                    let mut ages: Vec<(i64, String)> = Vec::with_capacity(count);
                    for row in t.iter().map_err(file)? {
                        let (k, v) = row.map_err(file)?;
                        let at = serde_json::from_slice::<ReportRecord>(v.value())
                            .map_or(i64::MIN, |r| r.accepted_ms);
                        ages.push((at, k.value().to_owned()));
                    }
                    ages.sort();
                    let surplus = count - keep;
                    for (_, id) in ages.iter().take(surplus) {
                        t.remove(id.as_str()).map_err(file)?;
                    }
                    surplus as u64
                }
            };
            txn.commit().map_err(file)?;
            Ok(removed)
        })
        .await
    }
}
