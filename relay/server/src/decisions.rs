//! Run-time decisions that survive a restart: suspensions, withdrawals, ELT
//! anordnare shut off and maintenance set through the admin API are written to
//! the relay's store (`<mailbox.store>.state`, a redb file beside the mailbox;
//! `relay-store`) **before** the admin call returns, then applied to the
//! in-memory [`crate::operator::OperatorState`] the policy gate reads. At start
//! they are loaded back. Without a `[mailbox]` there is no store, and decisions
//! last until the process ends (logged at start).
//!
//! With `[store] kind = "postgres"` several nodes share the decisions: each
//! node reads them back every [`FOLLOW_INTERVAL`] ([`follow`]), so a suspension
//! made through one node's admin API refuses at every node within a second.
//! Maintenance stays a per-node switch (it drains one node from the load
//! balancer): on PostgreSQL it is kept in that node's memory only; planned
//! maintenance windows are shared.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use relay_ident::Organisationsnummer;
use relay_store::SharedState;

use crate::Relay;
use crate::operator::Scope;

/// Loads the stored decisions into memory (at start).
pub async fn load(relay: &Relay) -> anyhow::Result<()> {
    let Some(state) = &relay.decisions else {
        return Ok(());
    };
    for (org, scope) in state.suspensions().await? {
        match scope {
            relay_store::Scope::All => {
                relay.operator.suspend(org, Scope::All);
            }
            relay_store::Scope::Product(p) => {
                relay.operator.suspend(org, Scope::Product(p));
            }
            relay_store::Scope::EltAnordnare => {
                relay.operator.suspend_anordnare(org);
            }
        }
    }
    for (provider, org) in state.withdrawals().await? {
        relay.operator.withdraw(&provider, org);
    }
    if !shared(state) && state.maintenance().await?.is_some() {
        relay.operator.set_maintenance(true);
    }
    Ok(())
}

/// Whether several nodes share this store (PostgreSQL).
fn shared(store: &relay_store::Store) -> bool {
    matches!(store, relay_store::Store::Postgres(_))
}

/// How often a node on a shared store reads the decisions back.
pub const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// On a shared store: keeps this node's decisions equal to the store's, read
/// every [`FOLLOW_INTERVAL`]. A database that cannot be read leaves the last
/// known decisions in force (logged once per outage). Returns at once on redb.
pub async fn follow(relay: std::sync::Arc<Relay>) {
    let Some(state) = relay.decisions.clone().filter(shared) else {
        return;
    };
    let mut failing = false;
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        match read_all(&state).await {
            Ok((suspended, withdrawn, anordnare)) => {
                relay.operator.replace(suspended, withdrawn, anordnare);
                if failing {
                    tracing::info!("shared decisions readable again");
                    failing = false;
                }
            }
            Err(e) if !failing => {
                tracing::error!(error = %e, "shared decisions could not be read; the last known stay in force");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

type AllDecisions = (
    std::collections::BTreeSet<(Organisationsnummer, Scope)>,
    std::collections::BTreeSet<(String, Organisationsnummer)>,
    std::collections::BTreeSet<Organisationsnummer>,
);

async fn read_all(state: &relay_store::Store) -> Result<AllDecisions, relay_store::StateError> {
    let mut suspended = std::collections::BTreeSet::new();
    let mut anordnare = std::collections::BTreeSet::new();
    for (org, scope) in state.suspensions().await? {
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
    let withdrawn = state.withdrawals().await?.into_iter().collect();
    Ok((suspended, withdrawn, anordnare))
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
        Scope::Product(p) => relay_store::Scope::Product(p.clone()),
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
    if let Some(state) = relay.decisions.as_ref().filter(|s| !shared(s)) {
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
