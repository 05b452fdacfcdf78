//! The register of connected parties, as the relay uses it: a node's cache of
//! the register kept in the store ([`relay_store::Parties`]), read by the one
//! policy gate ([`crate::policy`]) without waiting on the database.
//!
//! # Which wins
//!
//! For every (organisation, product) the register holds, the register decides:
//! its state says whether the party is served and with which message status
//! (`test` and `verified`: `status="test"` only; `production`: both;
//! `applied`, `suspended`, `terminated`: nothing). For everything else the
//! configuration's `[[agreements]]` decide, as they always have: they are the
//! single-node default and the seed of the register (`shs-relay parties import`,
//! `POST /admin/parties/import`), which adds what is missing and never overwrites
//! what the register holds.
//!
//! # Layout
//!
//! - this module: [`Book`] (the cache the gate reads), [`start`] and [`follow`]
//!   (loading it, and keeping it equal to a shared store);
//! - [`checks`]: the test checks per product and their recording from the
//!   party's real test traffic;
//! - [`certificates`]: the client certificates each party connects with, and
//!   the expiry metric;
//! - [`admin`]: `/admin/parties/...`; [`cli`]: `shs-relay parties ...` on top of it;
//! - [`page`]: the console's Parties page.
//!
//! Without a `[mailbox]` there is no store, and so no register: the
//! configuration's agreements decide alone (logged at start).

pub mod admin;
pub mod certificates;
pub mod checks;
pub mod cli;
pub mod page;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};

use relay_ident::Organisationsnummer;
use relay_store::{Parties, Party, PartyCertificate, PartyRegister, PartyState};

use crate::Relay;

/// What the register says, as of the last read: the parties, the declared
/// caseworkers and the certificates seen.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub parties: BTreeMap<Organisationsnummer, Party>,
    pub(crate) declared: HashSet<(Organisationsnummer, String)>,
    pub certificates: Vec<(Organisationsnummer, PartyCertificate)>,
}

/// A node's cache of the register, and the register itself once opened.
#[derive(Debug, Default)]
pub struct Book {
    register: OnceLock<Parties>,
    snapshot: RwLock<Arc<Snapshot>>,
    pub(crate) certificates: certificates::Seen,
}

impl Book {
    /// The register, when this node has a store.
    pub fn register(&self) -> Option<&Parties> {
        self.register.get()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn replace(&self, s: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(s);
    }

    /// The party's state for `product`, when the register holds one.
    pub fn state(&self, org: &Organisationsnummer, product: &str) -> Option<PartyState> {
        self.snapshot()
            .parties
            .get(org)
            .and_then(|p| p.products.get(product))
            .map(|s| s.state)
    }

    /// Whether the register lets `org` in for any product (the delivery service).
    pub fn admits_any(&self, org: &Organisationsnummer) -> bool {
        self.snapshot().parties.get(org).is_some_and(|p| {
            p.products.values().any(|s| {
                matches!(
                    s.state,
                    PartyState::Test | PartyState::Verified | PartyState::Production
                )
            })
        })
    }

    /// Whether the municipality's caseworkers must have signed the declaration.
    pub fn requires_declaration(&self, org: &Organisationsnummer) -> bool {
        self.snapshot()
            .parties
            .get(org)
            .is_some_and(|p| p.require_declaration)
    }

    /// Whether `caseworker` signed the declaration for `org`.
    pub fn declared(&self, org: &Organisationsnummer, caseworker: &str) -> bool {
        self.snapshot()
            .declared
            .contains(&(*org, caseworker.to_owned()))
    }
}

/// Reads the whole register into a snapshot.
async fn read(register: &Parties) -> Result<Snapshot, relay_store::StateError> {
    let parties = register
        .parties()
        .await?
        .into_iter()
        .map(|p| (p.org, p))
        .collect();
    let declared = register
        .all_declarations()
        .await?
        .into_iter()
        .map(|(o, d)| (o, d.caseworker))
        .collect();
    let certificates = register.certificates().await?;
    Ok(Snapshot {
        parties,
        declared,
        certificates,
    })
}

/// Reads the register again into this node's cache (after a change made here).
pub async fn refresh(relay: &Relay) -> Result<(), relay_store::StateError> {
    let book = &relay.operator.parties;
    if let Some(register) = book.register() {
        let snapshot = read(register).await?;
        certificates::export(&relay.metrics, &snapshot);
        book.replace(snapshot);
    }
    Ok(())
}

/// Opens the register beside the node's store and loads it (at start).
pub async fn start(relay: &Relay) -> anyhow::Result<()> {
    let (Some(store), Some(mailbox)) = (&relay.decisions, &relay.live().config.mailbox) else {
        tracing::warn!(
            "no [mailbox]: no register of parties; the configuration's agreements decide alone"
        );
        return Ok(());
    };
    let register = Parties::of(store, &mailbox.store).await?;
    let _ = relay.operator.parties.register.set(register);
    refresh(relay).await?;
    Ok(())
}

/// How often a node on a shared store reads the register back.
pub const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// On a shared store: keeps this node's cache equal to the register, read every
/// [`FOLLOW_INTERVAL`]. A register that cannot be read leaves the last known in
/// force (logged once per outage). Returns at once on redb.
pub async fn follow(relay: Arc<Relay>) {
    if !relay
        .operator
        .parties
        .register()
        .is_some_and(Parties::shared)
    {
        return;
    }
    let mut failing = false;
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        match refresh(&relay).await {
            Ok(()) if failing => {
                tracing::info!("the register of parties is readable again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::error!(error = %e, "the register of parties could not be read; the last known stays in force");
                failing = true;
            }
            Err(_) => {}
        }
    }
}
