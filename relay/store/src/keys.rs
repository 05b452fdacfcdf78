//! The mailbox key ring as the store records it, so that every node agrees on
//! it: which key-encryption key (KEK) ids exist (with a fingerprint that tells
//! two keys under one id apart), which one is **active** (wraps new messages),
//! and which ids each node holds in its key file (each node reports it, with
//! the id it wraps with, at start, on reload and every third of the lease).
//! Each message's key id is recorded with its wrapped data key
//! ([`Store::kek_usage`] counts them).
//!
//! The operator's steps and their checks are here once for both engines:
//! [`activate`] only when every live node holds the key, [`retire`] only when
//! no message uses the key and no live node still wraps with it, and
//! [`check_node`], what a node must hold to start.
//!
//! Engines: `redb::keys` (one record in the state file) and `pg::keys` (the
//! tables `mailbox_kek` and `mailbox_kek_nodes`).
//!
//! Not for: the keys themselves (they never enter the store; see
//! `relay_mailbox::KeyFile`), HTTP, or the CLI.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use relay_mailbox::{KekId, KeyFile};
use serde::{Deserialize, Serialize};

use crate::node::Store;

/// Where a key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Known (some node holds it); wraps nothing new.
    Registered,
    /// Wraps every new message. Exactly one key is active.
    Active,
    /// Removed from use: no message uses it; key files may drop it.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "registered" => Self::Registered,
            "active" => Self::Active,
            "retired" => Self::Retired,
            _ => return None,
        })
    }
}

/// One key id the store knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: KekId,
    pub fingerprint: String,
    pub state: KeyState,
    pub changed_at: DateTime<Utc>,
}

/// What one node last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeKeys {
    pub node: String,
    /// The ids in its key file.
    pub held: Vec<KekId>,
    /// The id it wraps new messages with.
    pub wraps_with: KekId,
    pub seen_at: DateTime<Utc>,
}

/// The whole ring, for `shs-relay keys status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RingStatus {
    pub keys: Vec<KeyRecord>,
    pub active: Option<KekId>,
    /// Messages per key id.
    pub messages: BTreeMap<KekId, usize>,
    /// Nodes seen within the liveness window.
    pub live_nodes: Vec<NodeKeys>,
}

/// Why a key ring operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// The store could not be read or written (the relay's side).
    #[error("key ring store: {0}")]
    Store(String),
    /// The operator asked for something the ring's rules forbid; the text says
    /// what to do first.
    #[error("{0}")]
    Refused(String),
}

impl From<relay_mailbox::MailboxError> for KeyRingError {
    fn from(e: relay_mailbox::MailboxError) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<crate::state::StateError> for KeyRingError {
    fn from(e: crate::state::StateError) -> Self {
        Self::Store(e.to_string())
    }
}

pub type Result<T, E = KeyRingError> = std::result::Result<T, E>;

impl Store {
    /// Every key id the store knows, lowest first.
    pub async fn key_records(&self) -> Result<Vec<KeyRecord>> {
        match self {
            Self::Redb { state, .. } => crate::redb::keys::records(state).await,
            Self::Postgres(pg) => pg.key_records().await,
        }
    }

    /// Records a key id with its fingerprint (`registered`), unless known. A
    /// known id with another fingerprint is refused: two different keys under
    /// one id would make messages unreadable on some node.
    pub async fn register_key(&self, id: KekId, fingerprint: &str) -> Result<()> {
        let known = match self {
            Self::Redb { state, .. } => {
                crate::redb::keys::register(state, id, fingerprint.to_owned()).await?
            }
            Self::Postgres(pg) => pg.register_key(id, fingerprint).await?,
        };
        if known != fingerprint {
            return Err(KeyRingError::Refused(format!(
                "mailbox key {id}: the store knows another key under this id; this key file \
                 holds a different key {id} (copy the key file from a node that holds the right one)"
            )));
        }
        Ok(())
    }

    /// Sets a key's state; `Active` demotes the active one in the same step.
    /// With `only_if_none`, activates only when no key is active (the first
    /// start of a store); returns whether it changed anything.
    async fn set_key_state(&self, id: KekId, to: KeyState, only_if_none: bool) -> Result<bool> {
        match self {
            Self::Redb { state, .. } => {
                crate::redb::keys::set_state(state, id, to, only_if_none).await
            }
            Self::Postgres(pg) => pg.set_key_state(id, to, only_if_none).await,
        }
    }

    /// Records what `node` holds and wraps with, now.
    pub async fn report_keys(&self, node: &str, held: &[KekId], wraps_with: KekId) -> Result<()> {
        match self {
            Self::Redb { state, .. } => {
                crate::redb::keys::report(state, node.to_owned(), held.to_vec(), wraps_with).await
            }
            Self::Postgres(pg) => pg.report_keys(node, held, wraps_with).await,
        }
    }

    /// The nodes seen within `within`.
    pub async fn live_nodes(&self, within: Duration) -> Result<Vec<NodeKeys>> {
        let all = match self {
            Self::Redb { state, .. } => crate::redb::keys::nodes(state).await?,
            Self::Postgres(pg) => pg.key_nodes().await?,
        };
        let since =
            Utc::now() - chrono::TimeDelta::from_std(within).unwrap_or(chrono::TimeDelta::MAX);
        Ok(all.into_iter().filter(|n| n.seen_at >= since).collect())
    }

    /// This node's name in the key ring: the PostgreSQL node name, or `local`.
    pub fn node_name(&self) -> String {
        match self {
            Self::Redb { .. } => "local".to_owned(),
            Self::Postgres(pg) => pg.node_name().to_owned(),
        }
    }

    /// How long a node counts as live after its last report: the lease (a
    /// node reports every third of it); one minute on one machine.
    pub fn key_liveness(&self) -> Duration {
        self.lease().unwrap_or(Duration::from_secs(60))
    }

    /// The ring as `keys status` shows it.
    pub async fn ring_status(&self) -> Result<RingStatus> {
        let keys = self.key_records().await?;
        let active = keys
            .iter()
            .find(|k| k.state == KeyState::Active)
            .map(|k| k.id);
        Ok(RingStatus {
            active,
            keys,
            messages: self.kek_usage().await?,
            live_nodes: self.live_nodes(self.key_liveness()).await?,
        })
    }
}

/// What a node must hold to start, checked against the store: every key id
/// that messages use and the active id, each with the fingerprint the store
/// recorded. On a store that has no ring yet (a new store, or one from before
/// the ring), this node's keys are registered and its newest becomes active.
/// Returns the active id. An error names the missing id.
pub async fn check_node(store: &Store, file: &KeyFile) -> Result<KekId> {
    let prints = file.fingerprints();
    let path = file.path().display().to_string();
    let mut records = store.key_records().await?;
    if !records.iter().any(|k| k.state == KeyState::Active) {
        let Some((&newest, _)) = prints.iter().next_back() else {
            return Err(KeyRingError::Refused(format!(
                "mailbox key file {path} does not exist or holds no key, and the store has no \
                 active key: create it with `shs-relay keys init --config <relay.toml>` (the \
                 relay never creates it itself)"
            )));
        };
        for (id, print) in &prints {
            store.register_key(*id, print).await?;
        }
        if store.set_key_state(newest, KeyState::Active, true).await? {
            tracing::info!(kek_id = newest, "mailbox key ring started: key active");
        }
        records = store.key_records().await?;
    }
    let usage = store.kek_usage().await?;
    let active = records
        .iter()
        .find(|k| k.state == KeyState::Active)
        .map(|k| k.id)
        .ok_or_else(|| KeyRingError::Store("the store names no active key".to_owned()))?;
    let mut needed: Vec<KekId> = usage.keys().copied().collect();
    needed.push(active);
    needed.sort_unstable();
    needed.dedup();
    for id in needed {
        let why = if id == active {
            "it is the active key".to_owned()
        } else {
            format!(
                "{} stored messages use it",
                usage.get(&id).copied().unwrap_or(0)
            )
        };
        match (prints.get(&id), records.iter().find(|k| k.id == id)) {
            (None, _) => {
                return Err(KeyRingError::Refused(format!(
                    "mailbox key {id} is missing from the key file {path} ({why}): copy the \
                     key file from a node that holds key {id}, then start again"
                )));
            }
            (Some(mine), Some(known)) if *mine != known.fingerprint => {
                return Err(KeyRingError::Refused(format!(
                    "mailbox key {id} in the key file {path} is not the key the store knows \
                     under id {id} ({why}): copy the key file from a node that holds it"
                )));
            }
            // Used by messages written before the ring existed: record it.
            (Some(mine), None) => store.register_key(id, mine).await?,
            (Some(_), Some(_)) => {}
        }
    }
    for (id, mine) in &prints {
        if let Some(known) = records.iter().find(|k| k.id == *id)
            && known.fingerprint != *mine
        {
            return Err(KeyRingError::Refused(format!(
                "mailbox key {id} in the key file {path} is not the key the store knows under \
                 id {id}: copy the key file from a node that holds it"
            )));
        }
    }
    Ok(active)
}

/// Adds a fresh key to this node's key file, with an id above every id the
/// store knows, and registers it (not active). Copy the file to every node and
/// reload them before [`activate`].
pub async fn add(store: &Store, file: &KeyFile) -> Result<KekId> {
    let floor = store
        .key_records()
        .await?
        .iter()
        .map(|k| k.id)
        .max()
        .unwrap_or(0);
    let id = file
        .add_after(floor)
        .map_err(|e| KeyRingError::Store(e.to_string()))?;
    let print = file
        .fingerprints()
        .remove(&id)
        .ok_or_else(|| KeyRingError::Store(format!("key {id} vanished from the key file")))?;
    store.register_key(id, &print).await?;
    Ok(id)
}

/// Makes `id` the key that wraps new messages, once every live node reports
/// holding it. Returns the nodes that were checked.
pub async fn activate(store: &Store, id: KekId) -> Result<Vec<String>> {
    let records = store.key_records().await?;
    match records.iter().find(|k| k.id == id) {
        None => {
            return Err(KeyRingError::Refused(format!(
                "mailbox key {id} is not known to the store: add it first (`shs-relay keys add`)"
            )));
        }
        Some(k) if k.state == KeyState::Retired => {
            return Err(KeyRingError::Refused(format!(
                "mailbox key {id} is retired and cannot wrap again: add a new key"
            )));
        }
        Some(_) => {}
    }
    let nodes = store.live_nodes(store.key_liveness()).await?;
    let lacking: Vec<&str> = nodes
        .iter()
        .filter(|n| !n.held.contains(&id))
        .map(|n| n.node.as_str())
        .collect();
    if !lacking.is_empty() {
        return Err(KeyRingError::Refused(format!(
            "mailbox key {id} is not held by every live node (lacking: {}): copy the key file \
             to them and reload them (SIGHUP or POST /admin/reload), then activate again",
            lacking.join(", ")
        )));
    }
    store.set_key_state(id, KeyState::Active, false).await?;
    Ok(nodes.into_iter().map(|n| n.node).collect())
}

/// Retires `id`: refused while it is active, while any live node still wraps
/// with it, or while any stored message uses it (rewrap first).
pub async fn retire(store: &Store, id: KekId) -> Result<()> {
    let records = store.key_records().await?;
    match records.iter().find(|k| k.id == id) {
        None => {
            return Err(KeyRingError::Refused(format!(
                "mailbox key {id} is not known to the store"
            )));
        }
        Some(k) if k.state == KeyState::Active => {
            return Err(KeyRingError::Refused(format!(
                "mailbox key {id} is the active key: activate another key first"
            )));
        }
        Some(_) => {}
    }
    let nodes = store.live_nodes(store.key_liveness()).await?;
    let wrapping: Vec<&str> = nodes
        .iter()
        .filter(|n| n.wraps_with == id)
        .map(|n| n.node.as_str())
        .collect();
    if !wrapping.is_empty() {
        return Err(KeyRingError::Refused(format!(
            "mailbox key {id} still wraps new messages on {}: wait until they follow the \
             activation (a third of the lease) or reload them",
            wrapping.join(", ")
        )));
    }
    let used = store.kek_usage().await?.get(&id).copied().unwrap_or(0);
    if used > 0 {
        return Err(KeyRingError::Refused(format!(
            "mailbox key {id} is still used by {used} stored messages: run \
             `shs-relay keys rewrap` first"
        )));
    }
    store.set_key_state(id, KeyState::Retired, false).await?;
    // A message wrapped under it between the count and the mark would be
    // unreadable once files drop the key: count again.
    let used = store.kek_usage().await?.get(&id).copied().unwrap_or(0);
    if used > 0 {
        store.set_key_state(id, KeyState::Registered, false).await?;
        return Err(KeyRingError::Refused(format!(
            "mailbox key {id} was used by {used} messages meanwhile: rewrap and retire again"
        )));
    }
    Ok(())
}
