//! Run-time decisions that survive a restart: suspensions, withdrawals, ELT
//! anordnare shut off, ELT mandates, planned maintenance windows and (on redb)
//! maintenance set through the admin API are written to the relay's store
//! (`relay-store`: a redb file beside the mailbox, or PostgreSQL) **before**
//! the admin call returns, then applied to the node's in-memory copy the policy
//! gate reads ([`crate::operator::OperatorState`], the ELT
//! [`crate::products::elt::Mandates`]). At start they are loaded back
//! ([`load`]). Without a `[mailbox]` there is no store, and decisions last until
//! the process ends (logged at start).
//!
//! With `[store] kind = "postgres"` several nodes share the decisions: each
//! node reads them back every [`FOLLOW_INTERVAL`] ([`follow`]), so a suspension
//! or a mandate revoked through one node's admin API refuses at every node
//! within a second. While the database cannot be read, the last state read
//! stays in force; its time shows in `/admin/status` (`decisions.read_at`,
//! `decisions.age_s`). Maintenance stays a per-node switch (it drains one node
//! from the load balancer): on PostgreSQL it is kept in that node's memory only.
//!
//! A stored record the node cannot read (a hand-written row, damage, a product
//! this version does not know) is logged, counted
//! (`shs_relay_decisions_unreadable_records`) and skipped: it never stops
//! [`follow`] nor a start.
//!
//! Also here: [`housekeeping`], which sweeps the store's expired duplicate
//! records, old ELT attempts and the accepted ELT reports beyond
//! `[elt] remembered_reports`.

use std::collections::BTreeSet;
use std::sync::Mutex;

use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::StatusCode;
use relay_ident::Organisationsnummer;
use relay_store::{Decisions, SharedState, Unreadable};

use crate::Relay;
use crate::metrics::Metrics;
use crate::operator::Scope;

/// What this node last read of the stored decisions.
#[derive(Debug, Default)]
pub struct Followed {
    state: Mutex<FollowedState>,
}

#[derive(Debug, Default)]
struct FollowedState {
    read_at: Option<DateTime<Utc>>,
    unreadable: BTreeSet<Unreadable>,
}

impl Followed {
    fn lock(&self) -> std::sync::MutexGuard<'_, FollowedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A read succeeded: logs the unreadable records that are new since the
    /// last read (each once, not every half second) and counts them.
    fn read(&self, metrics: &Metrics, unreadable: Vec<Unreadable>) {
        let now = Utc::now();
        let unreadable: BTreeSet<Unreadable> = unreadable.into_iter().collect();
        let mut state = self.lock();
        for u in unreadable.difference(&state.unreadable) {
            tracing::error!(
                table = u.table,
                row = %u.row,
                reason = %u.reason,
                "a stored decision cannot be read; skipped (fix or delete the row)"
            );
        }
        metrics
            .decisions_unreadable
            .set(i64::try_from(unreadable.len()).unwrap_or(i64::MAX));
        metrics.decisions_read_timestamp.set(now.timestamp());
        state.read_at = Some(now);
        state.unreadable = unreadable;
    }

    /// `/admin/status`'s `decisions`: whether they are shared, when they
    /// were last read and how old that is, and how many records were skipped.
    pub fn status(&self, shared: bool) -> serde_json::Value {
        let state = self.lock();
        serde_json::json!({
            "shared": shared,
            "read_at": state.read_at.map(|t| t.to_rfc3339()),
            "age_s": state.read_at.map(|t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0),
            "unreadable": state.unreadable.len(),
        })
    }
}

/// Loads the stored decisions into memory (at start), after the one-time
/// import of an old `[elt] mandates_file`. Unreadable records are skipped; a
/// store that cannot be read, or a mandates file that cannot, stops the start.
pub async fn load(relay: &Relay) -> anyhow::Result<()> {
    import_mandates_file(relay).await?;
    let Some(state) = &relay.decisions else {
        return Ok(());
    };
    let decisions = state.decisions().await?;
    apply(relay, decisions);
    if !state.is_shared() {
        match state.maintenance().await {
            Ok(Some(_)) => relay.operator.set_maintenance(true),
            Ok(None) => {}
            Err(e @ relay_store::StateError::Record(_)) => {
                tracing::error!(error = %e, "the stored maintenance switch cannot be read; skipped (off)");
                relay.metrics.decisions_unreadable.inc();
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `[elt] mandates_file`, the admin API's mandates before they lived in the
/// store: imported once, idempotently (a pair already decided in the store
/// keeps its decision), then only read again at the next start. Without a
/// store, its mandates apply in memory.
async fn import_mandates_file(relay: &Relay) -> anyhow::Result<()> {
    let live = relay.live();
    let Some(path) = live
        .config
        .elt
        .as_ref()
        .and_then(|e| e.mandates_file.clone())
    else {
        return Ok(());
    };
    let mandates = tokio::task::spawn_blocking({
        let path = path.clone();
        move || crate::products::elt::read_mandates_file(&path)
    })
    .await??;
    if mandates.is_empty() {
        return Ok(());
    }
    match &relay.decisions {
        Some(state) => {
            let added = state.import_mandates(&mandates).await?;
            tracing::warn!(
                file = %path.display(),
                added,
                "elt.mandates_file imported into the store; the store is the mandates' home from now on (remove the key)"
            );
        }
        None => {
            for m in mandates {
                relay.elt_limiters.mandates.apply(m);
            }
        }
    }
    Ok(())
}

/// Makes the node's copy equal to what was read.
fn apply(relay: &Relay, d: Decisions) {
    let mut suspended = BTreeSet::new();
    let mut anordnare = BTreeSet::new();
    for (org, scope) in d.suspensions {
        match scope {
            relay_store::Scope::All => {
                suspended.insert((org, Scope::All));
            }
            relay_store::Scope::Product(p) => {
                suspended.insert((org, Scope::Product(p)));
            }
            relay_store::Scope::EltAnordnare => {
                anordnare.insert(org);
            }
        }
    }
    relay
        .operator
        .replace(suspended, d.withdrawals.into_iter().collect(), anordnare);
    relay.elt_limiters.mandates.replace(&d.mandates);
    relay.followed.read(&relay.metrics, d.unreadable);
}

/// How often a node on a shared store reads the decisions back.
pub const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// On a shared store: keeps this node's decisions equal to the store's, read
/// every [`FOLLOW_INTERVAL`]. A database that cannot be read leaves the last
/// state read in force (logged once per outage; its age in `/admin/status`).
/// Returns at once on redb (one node: its own admin calls are all there is).
pub async fn follow(relay: std::sync::Arc<Relay>) {
    let Some(state) = relay
        .decisions
        .clone()
        .filter(relay_store::Store::is_shared)
    else {
        return;
    };
    let mut failing = false;
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        match state.decisions().await {
            Ok(decisions) => {
                apply(&relay, decisions);
                if failing {
                    tracing::info!("shared decisions readable again");
                    failing = false;
                }
            }
            Err(e) if !failing => {
                tracing::error!(error = %e, "shared decisions could not be read; the last state read stays in force");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// How often [`housekeeping`] sweeps.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Sweeps the store's bookkeeping every minute: expired duplicate records,
/// ELT attempts older than the retry window, and accepted ELT reports beyond
/// `[elt] remembered_reports` (oldest first). A failed sweep is logged and
/// tried again at the next.
pub async fn housekeeping(relay: std::sync::Arc<Relay>) {
    let Some(state) = relay.decisions.clone() else {
        return;
    };
    loop {
        tokio::time::sleep(SWEEP_INTERVAL).await;
        let live = relay.live();
        let elt = live.config.elt.as_ref();
        let window = std::time::Duration::from_secs(elt.map_or(24 * 3600, |e| e.retry_window_s));
        match state.sweep_state(Utc::now(), window).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "shared state swept"),
            Err(e) => tracing::warn!(error = %e, "sweeping the shared state failed"),
        }
        if let Some(elt) = elt
            && let Err(e) = state.forget_elt_reports(elt.remembered_reports).await
        {
            tracing::warn!(error = %e, "forgetting old accepted ELT reports failed");
        }
    }
}

fn failed(e: relay_store::StateError) -> Response {
    tracing::error!(error = %e, "a run-time decision could not be stored");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the decision could not be stored; nothing was changed\n",
    )
        .into_response()
}

fn scope_of(scope: &Scope) -> relay_store::Scope {
    match scope {
        Scope::All => relay_store::Scope::All,
        Scope::Product(p) => relay_store::Scope::Product(*p),
    }
}

/// Stores a suspension (or its end) of `org`.
pub async fn suspension(
    relay: &Relay,
    org: Organisationsnummer,
    scope: &Scope,
    on: bool,
) -> Result<(), Response> {
    if let Some(state) = &relay.decisions {
        let s = scope_of(scope);
        let r = if on {
            state.suspend(org, &s).await
        } else {
            state.resume(org, &s).await
        };
        r.map_err(failed)?;
    }
    Ok(())
}

/// Stores an ELT assistance company shut off (or let in again).
pub async fn anordnare(relay: &Relay, org: Organisationsnummer, on: bool) -> Result<(), Response> {
    if let Some(state) = &relay.decisions {
        let s = relay_store::Scope::EltAnordnare;
        let r = if on {
            state.suspend(org, &s).await
        } else {
            state.resume(org, &s).await
        };
        r.map_err(failed)?;
    }
    Ok(())
}

/// Stores an ELT mandate granted or revoked.
pub async fn mandate(relay: &Relay, mandate: relay_store::Mandate) -> Result<(), Response> {
    if let Some(state) = &relay.decisions {
        state.set_mandate(mandate).await.map_err(failed)?;
    }
    Ok(())
}

/// Stores a withdrawal (or restoration) of a municipality by a provider.
pub async fn withdrawal(
    relay: &Relay,
    provider: &str,
    org: Organisationsnummer,
    on: bool,
) -> Result<(), Response> {
    if let Some(state) = &relay.decisions {
        let r = if on {
            state.withdraw(provider, org).await
        } else {
            state.restore(provider, org).await
        };
        r.map_err(failed)?;
    }
    Ok(())
}

/// Stores maintenance on or off (redb only: on a shared store it is per node).
pub async fn maintenance(relay: &Relay, on: bool) -> Result<(), Response> {
    if let Some(state) = relay.decisions.as_ref().filter(|s| !s.is_shared()) {
        state
            .set_maintenance(on.then_some("set through the admin API"))
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// Stores an announced maintenance window.
pub async fn plan(
    relay: &Relay,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    reason: &str,
) -> Result<(), Response> {
    if let Some(state) = &relay.decisions {
        state
            .plan_maintenance(&relay_store::MaintenanceWindow {
                starts_at: start,
                ends_at: end,
                reason: reason.to_owned(),
            })
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// The announced windows: the configuration's and the stored ones.
pub async fn planned(relay: &Relay) -> Result<Vec<serde_json::Value>, Response> {
    let live = relay.live();
    let mut list: Vec<serde_json::Value> = live
        .config
        .audit
        .as_ref()
        .map(|a| {
            a.planned_maintenance
                .iter()
                .map(|w| {
                    serde_json::json!({"start": w.start.to_rfc3339(), "end": w.end.to_rfc3339(),
                        "reason": w.reason, "source": "config"})
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(state) = &relay.decisions {
        for p in state.maintenance_windows().await.map_err(failed)? {
            list.push(serde_json::json!({"start": p.window.starts_at.to_rfc3339(),
                "end": p.window.ends_at.to_rfc3339(), "reason": p.window.reason,
                "source": "admin", "id": p.id.to_string()}));
        }
    }
    Ok(list)
}
