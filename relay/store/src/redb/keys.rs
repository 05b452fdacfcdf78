//! The key ring on one machine: one JSON record in the state file beside the
//! mailbox (`mailbox_key_ring` table, key `ring`), read and written in one
//! redb transaction each. See [`crate::keys`].

use chrono::Utc;
use redb::{Database, ReadableTable, TableDefinition};
use relay_mailbox::KekId;
use serde::{Deserialize, Serialize};

use super::common::file;
use super::state::RedbState;
use crate::keys::{KeyRecord, KeyRingError, KeyState, NodeKeys, Result};

const RING: TableDefinition<&str, &[u8]> = TableDefinition::new("mailbox_key_ring");

#[derive(Debug, Default, Serialize, Deserialize)]
struct Ring {
    keys: Vec<KeyRecord>,
    nodes: Vec<NodeKeys>,
}

fn read(db: &Database) -> crate::state::Result<Ring> {
    use redb::ReadableDatabase;
    let txn = db.begin_read().map_err(file)?;
    let table = match txn.open_table(RING) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Ring::default()),
        Err(e) => return Err(file(e)),
    };
    match table.get("ring").map_err(file)? {
        Some(v) => serde_json::from_slice(v.value())
            .map_err(|e| crate::state::StateError::File(format!("key ring record: {e}"))),
        None => Ok(Ring::default()),
    }
}

/// Changes the record in one write transaction.
fn change<T>(db: &Database, f: impl FnOnce(&mut Ring) -> T) -> crate::state::Result<T> {
    let txn = db.begin_write().map_err(file)?;
    let out = {
        let mut table = txn.open_table(RING).map_err(file)?;
        let mut ring: Ring = match table.get("ring").map_err(file)? {
            Some(v) => serde_json::from_slice(v.value())
                .map_err(|e| crate::state::StateError::File(format!("key ring record: {e}")))?,
            None => Ring::default(),
        };
        let out = f(&mut ring);
        let bytes = serde_json::to_vec(&ring)
            .map_err(|e| crate::state::StateError::File(format!("key ring record: {e}")))?;
        table.insert("ring", bytes.as_slice()).map_err(file)?;
        out
    };
    txn.commit().map_err(file)?;
    Ok(out)
}

pub(crate) async fn records(state: &RedbState) -> Result<Vec<KeyRecord>> {
    let mut keys = state.run(|db| Ok(read(db)?.keys)).await?;
    keys.sort_by_key(|k| k.id);
    Ok(keys)
}

/// The fingerprint the ring holds for `id` after this call.
pub(crate) async fn register(state: &RedbState, id: KekId, print: String) -> Result<String> {
    Ok(state
        .run(move |db| {
            change(db, |ring| {
                if let Some(k) = ring.keys.iter().find(|k| k.id == id) {
                    return k.fingerprint.clone();
                }
                ring.keys.push(KeyRecord {
                    id,
                    fingerprint: print.clone(),
                    state: KeyState::Registered,
                    changed_at: Utc::now(),
                });
                print
            })
        })
        .await?)
}

pub(crate) async fn set_state(
    state: &RedbState,
    id: KekId,
    to: KeyState,
    only_if_none: bool,
) -> Result<bool> {
    let changed = state
        .run(move |db| {
            change(db, |ring| {
                if !ring.keys.iter().any(|k| k.id == id) {
                    return None;
                }
                if to == KeyState::Active {
                    if only_if_none && ring.keys.iter().any(|k| k.state == KeyState::Active) {
                        return Some(false);
                    }
                    for k in ring.keys.iter_mut().filter(|k| k.state == KeyState::Active) {
                        k.state = KeyState::Registered;
                        k.changed_at = Utc::now();
                    }
                }
                for k in ring.keys.iter_mut().filter(|k| k.id == id) {
                    k.state = to;
                    k.changed_at = Utc::now();
                }
                Some(true)
            })
        })
        .await?;
    changed
        .ok_or_else(|| KeyRingError::Refused(format!("mailbox key {id} is not known to the store")))
}

pub(crate) async fn report(
    state: &RedbState,
    node: String,
    held: Vec<KekId>,
    wraps_with: KekId,
) -> Result<()> {
    state
        .run(move |db| {
            change(db, |ring| {
                ring.nodes.retain(|n| n.node != node);
                ring.nodes.push(NodeKeys {
                    node,
                    held,
                    wraps_with,
                    seen_at: Utc::now(),
                });
            })
        })
        .await?;
    Ok(())
}

pub(crate) async fn nodes(state: &RedbState) -> Result<Vec<NodeKeys>> {
    Ok(state.run(|db| Ok(read(db)?.nodes)).await?)
}
