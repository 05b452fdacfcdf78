//! [`RedbStatus`]: the one-machine [`StatusBoard`], on its own redb file beside
//! the mailbox (`<mailbox>.status`), or in memory on a node without a store.
//! Every change is one write transaction, so "open unless one is open" is one
//! decision.
//!
//! Tables:
//!
//! | table               | key                  | value                          |
//! |---------------------|----------------------|--------------------------------|
//! | `status_components` | component id         | JSON [`ComponentState`]        |
//! | `status_incidents`  | incident id (u128)   | JSON [`Incident`] with updates |
//! | `status_open`       | auto key             | incident id of the open one    |
//! | `status_announced`  | (provider, window id)| JSON [`AnnouncedWindow`]       |

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use uuid::Uuid;

use super::common::{blocking, file};
use crate::state::Result;
use crate::status::{
    AnnouncedWindow, Change, ComponentState, Incident, NewIncident, StatusBoard, Updated,
    merge_announced, record_error,
};

const COMPONENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("status_components");
const INCIDENTS: TableDefinition<u128, &[u8]> = TableDefinition::new("status_incidents");
const OPEN: TableDefinition<&str, u128> = TableDefinition::new("status_open");
const ANNOUNCED: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("status_announced");

/// The embedded status board. Cheap to clone; clones share one database.
#[derive(Clone)]
pub struct RedbStatus {
    db: Arc<Database>,
}

impl std::fmt::Debug for RedbStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStatus").finish_non_exhaustive()
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(record_error)
}

fn read_incident(bytes: &[u8]) -> Result<Incident> {
    serde_json::from_slice(bytes).map_err(record_error)
}

impl RedbStatus {
    /// Opens (or creates) the status file. Blocking: call at start-up.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(1024 * 1024)
            .create(path.as_ref())
            .map_err(file)?;
        Self::init(db)
    }

    /// A board in memory (lost at exit).
    pub fn in_memory() -> Result<Self> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(file)?;
        Self::init(db)
    }

    fn init(db: Database) -> Result<Self> {
        let txn = db.begin_write().map_err(file)?;
        txn.open_table(COMPONENTS).map_err(file)?;
        txn.open_table(INCIDENTS).map_err(file)?;
        txn.open_table(OPEN).map_err(file)?;
        txn.open_table(ANNOUNCED).map_err(file)?;
        txn.commit().map_err(file)?;
        Ok(Self { db: Arc::new(db) })
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
    {
        blocking(self.db.clone(), f).await
    }
}

impl StatusBoard for RedbStatus {
    async fn record_component(&self, state: &ComponentState) -> Result<()> {
        let state = state.clone();
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            {
                let mut t = txn.open_table(COMPONENTS).map_err(file)?;
                let stored: Option<ComponentState> = match t.get(state.id.as_str()).map_err(file)? {
                    Some(v) => Some(serde_json::from_slice(v.value()).map_err(record_error)?),
                    None => None,
                };
                let merged = match stored {
                    Some(old) => ComponentState {
                        updated_at: if old.status == state.status {
                            old.updated_at
                        } else {
                            state.updated_at
                        },
                        last_success_at: old.last_success_at.max(state.last_success_at),
                        last_failure_at: old.last_failure_at.max(state.last_failure_at),
                        ..state.clone()
                    },
                    None => state.clone(),
                };
                t.insert(state.id.as_str(), json(&merged)?.as_slice())
                    .map_err(file)?;
            }
            txn.commit().map_err(file)?;
            Ok(())
        })
        .await
    }

    async fn components(&self) -> Result<Vec<ComponentState>> {
        self.run(|db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(COMPONENTS).map_err(file)?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(file)? {
                let (_, v) = entry.map_err(file)?;
                out.push(serde_json::from_slice(v.value()).map_err(record_error)?);
            }
            Ok(out)
        })
        .await
    }

    async fn open_incident(
        &self,
        new: &NewIncident,
        now: DateTime<Utc>,
    ) -> Result<(Incident, bool)> {
        let new = new.clone();
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let result = {
                let mut incidents = txn.open_table(INCIDENTS).map_err(file)?;
                let mut open = txn.open_table(OPEN).map_err(file)?;
                let existing = match &new.auto_key {
                    Some(key) => open.get(key.as_str()).map_err(file)?.map(|v| v.value()),
                    None => None,
                };
                let existing = match existing {
                    Some(id) => incidents
                        .get(id)
                        .map_err(file)?
                        .map(|v| read_incident(v.value()))
                        .transpose()?,
                    None => None,
                };
                match existing {
                    Some(incident) => (incident, false),
                    None => {
                        let incident = new.into_incident(now);
                        incidents
                            .insert(incident.id.as_u128(), json(&incident)?.as_slice())
                            .map_err(file)?;
                        if let Some(key) = &incident.auto_key {
                            open.insert(key.as_str(), incident.id.as_u128())
                                .map_err(file)?;
                        }
                        (incident, true)
                    }
                }
            };
            txn.commit().map_err(file)?;
            Ok(result)
        })
        .await
    }

    async fn update_incident(&self, id: Uuid, change: &Change) -> Result<Updated> {
        let change = change.clone();
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let result = {
                let mut incidents = txn.open_table(INCIDENTS).map_err(file)?;
                let mut open = txn.open_table(OPEN).map_err(file)?;
                let stored = incidents
                    .get(id.as_u128())
                    .map_err(file)?
                    .map(|v| read_incident(v.value()))
                    .transpose()?;
                match stored {
                    None => Updated::NotFound,
                    Some(mut incident) => {
                        let outcome = change.apply(&mut incident);
                        if let Updated::Done(updated) = &outcome {
                            incidents
                                .insert(id.as_u128(), json(updated.as_ref())?.as_slice())
                                .map_err(file)?;
                            if updated.resolved_at.is_some()
                                && let Some(key) = &updated.auto_key
                            {
                                let holds =
                                    open.get(key.as_str()).map_err(file)?.map(|v| v.value());
                                if holds == Some(id.as_u128()) {
                                    open.remove(key.as_str()).map_err(file)?;
                                }
                            }
                        }
                        outcome
                    }
                }
            };
            txn.commit().map_err(file)?;
            Ok(result)
        })
        .await
    }

    async fn open_with_key(&self, auto_key: &str) -> Result<Option<Incident>> {
        let key = auto_key.to_owned();
        self.run(move |db| {
            let txn = db.begin_read().map_err(file)?;
            let open = txn.open_table(OPEN).map_err(file)?;
            let incidents = txn.open_table(INCIDENTS).map_err(file)?;
            let Some(id) = open.get(key.as_str()).map_err(file)?.map(|v| v.value()) else {
                return Ok(None);
            };
            incidents
                .get(id)
                .map_err(file)?
                .map(|v| read_incident(v.value()))
                .transpose()
        })
        .await
    }

    async fn incidents(&self, since: DateTime<Utc>) -> Result<Vec<Incident>> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(INCIDENTS).map_err(file)?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(file)? {
                let (_, v) = entry.map_err(file)?;
                let incident = read_incident(v.value())?;
                if incident.resolved_at.is_none() || incident.updated_at >= since {
                    out.push(incident);
                }
            }
            out.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
            Ok(out)
        })
        .await
    }

    async fn incident(&self, id: Uuid) -> Result<Option<Incident>> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(INCIDENTS).map_err(file)?;
            t.get(id.as_u128())
                .map_err(file)?
                .map(|v| read_incident(v.value()))
                .transpose()
        })
        .await
    }

    async fn announce(
        &self,
        provider: &str,
        windows: &[AnnouncedWindow],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let provider = provider.to_owned();
        let windows = windows.to_vec();
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let changed = {
                let mut t = txn.open_table(ANNOUNCED).map_err(file)?;
                let mut stored = Vec::new();
                for entry in t.range((provider.as_str(), "")..).map_err(file)? {
                    let (k, v) = entry.map_err(file)?;
                    if k.value().0 != provider {
                        break;
                    }
                    stored.push(
                        serde_json::from_slice::<AnnouncedWindow>(v.value())
                            .map_err(record_error)?,
                    );
                }
                let (write, remove, changed) = merge_announced(&stored, &windows, now);
                for w in &write {
                    t.insert((provider.as_str(), w.id.as_str()), json(w)?.as_slice())
                        .map_err(file)?;
                }
                for id in &remove {
                    t.remove((provider.as_str(), id.as_str())).map_err(file)?;
                }
                changed
            };
            txn.commit().map_err(file)?;
            Ok(changed)
        })
        .await
    }

    async fn announced(&self) -> Result<Vec<AnnouncedWindow>> {
        self.run(|db| {
            let txn = db.begin_read().map_err(file)?;
            let t = txn.open_table(ANNOUNCED).map_err(file)?;
            let mut out: Vec<AnnouncedWindow> = Vec::new();
            for entry in t.iter().map_err(file)? {
                let (_, v) = entry.map_err(file)?;
                out.push(serde_json::from_slice(v.value()).map_err(record_error)?);
            }
            out.sort_by(|a, b| {
                (a.starts_at, &a.provider, &a.id).cmp(&(b.starts_at, &b.provider, &b.id))
            });
            Ok(out)
        })
        .await
    }

    async fn sweep_status(&self, before: DateTime<Utc>) -> Result<u64> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(file)?;
            let mut removed = 0u64;
            {
                let mut incidents = txn.open_table(INCIDENTS).map_err(file)?;
                let mut old = Vec::new();
                for entry in incidents.iter().map_err(file)? {
                    let (k, v) = entry.map_err(file)?;
                    let i = read_incident(v.value())?;
                    if i.resolved_at.is_some() && i.updated_at < before {
                        old.push(k.value());
                    }
                }
                for k in old {
                    incidents.remove(k).map_err(file)?;
                    removed += 1;
                }
                let mut announced = txn.open_table(ANNOUNCED).map_err(file)?;
                let mut old = Vec::new();
                for entry in announced.iter().map_err(file)? {
                    let (_, v) = entry.map_err(file)?;
                    let w: AnnouncedWindow =
                        serde_json::from_slice(v.value()).map_err(record_error)?;
                    if w.ends_at < before {
                        old.push((w.provider, w.id));
                    }
                }
                for (p, id) in old {
                    announced.remove((p.as_str(), id.as_str())).map_err(file)?;
                    removed += 1;
                }
            }
            txn.commit().map_err(file)?;
            Ok(removed)
        })
        .await
    }
}
