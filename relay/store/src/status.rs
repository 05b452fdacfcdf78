//! The [`StatusBoard`]: what the public status feed shows, shared by every node.
//! Component states (one per product × agency), incidents with their updates,
//! and the maintenance windows agencies announce through their adapters.
//!
//! An incident opened automatically carries a key (`disturbance`): at most one
//! unresolved incident per key exists in the store, however many nodes open it
//! at once (a conditional insert on redb, a partial unique index on PostgreSQL).
//!
//! Not for: deriving a component's status from calls (the relay does), the
//! feed's JSON or Atom shapes, or anything personal: ids, times, fixed texts
//! and an operator's public update texts only.

use std::future::Future;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::node::Store;
use crate::pg::PgStore;
use crate::redb::RedbStatus;
use crate::state::{Result, StateError};

/// A component's status, as status pages name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Operational,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
    UnderMaintenance,
}

impl ComponentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operational => "operational",
            Self::DegradedPerformance => "degraded_performance",
            Self::PartialOutage => "partial_outage",
            Self::MajorOutage => "major_outage",
            Self::UnderMaintenance => "under_maintenance",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Operational,
            Self::DegradedPerformance,
            Self::PartialOutage,
            Self::MajorOutage,
            Self::UnderMaintenance,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// An incident's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Investigating => "investigating",
            Self::Identified => "identified",
            Self::Monitoring => "monitoring",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Investigating,
            Self::Identified,
            Self::Monitoring,
            Self::Resolved,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// How much of the service an incident affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    None,
    Minor,
    Major,
    Critical,
}

impl Impact {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minor => "minor",
            Self::Major => "major",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::None, Self::Minor, Self::Major, Self::Critical]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// A public text in Swedish and English.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Text {
    pub sv: String,
    pub en: String,
}

impl Text {
    pub fn new(sv: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            sv: sv.into(),
            en: en.into(),
        }
    }
}

/// One component's state as a node saw it. `updated_at` is when its status
/// last changed; the last success and failure are the latest any node saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentState {
    pub id: String,
    pub status: ComponentStatus,
    pub updated_at: DateTime<Utc>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

/// One update of an incident: its status from then on and a public text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    pub id: Uuid,
    pub status: IncidentStatus,
    pub text: Text,
    pub created_at: DateTime<Utc>,
}

/// An incident with every update, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: Uuid,
    /// Set for an incident the relay opened by itself (`disturbance`).
    pub auto_key: Option<String>,
    pub name: Text,
    pub status: IncidentStatus,
    pub impact: Impact,
    /// Component ids, sorted.
    pub components: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub updates: Vec<IncidentUpdate>,
}

/// What opens an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident {
    pub auto_key: Option<String>,
    pub name: Text,
    pub impact: Impact,
    pub components: Vec<String>,
    pub started_at: DateTime<Utc>,
    /// The first update's text (status investigating).
    pub text: Text,
}

impl NewIncident {
    /// The incident this opens, with a new id.
    pub fn into_incident(self, now: DateTime<Utc>) -> Incident {
        let mut components = self.components;
        components.sort();
        components.dedup();
        Incident {
            id: Uuid::new_v4(),
            auto_key: self.auto_key,
            name: self.name,
            status: IncidentStatus::Investigating,
            impact: self.impact,
            components,
            started_at: self.started_at,
            resolved_at: None,
            updated_at: now,
            updates: vec![IncidentUpdate {
                id: Uuid::new_v4(),
                status: IncidentStatus::Investigating,
                text: self.text,
                created_at: now,
            }],
        }
    }
}

/// An update asked for by an operator or the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The new status; `None` keeps it.
    pub status: Option<IncidentStatus>,
    pub text: Text,
    pub at: DateTime<Utc>,
    /// Component ids to add (an automatic incident grows with its disturbance).
    pub add_components: Vec<String>,
}

impl Change {
    /// Applies the change to `incident` (in memory); refuses reopening.
    pub fn apply(self, incident: &mut Incident) -> Updated {
        if incident.resolved_at.is_some()
            && self.status.is_some_and(|s| s != IncidentStatus::Resolved)
        {
            return Updated::AlreadyResolved;
        }
        let status = self.status.unwrap_or(incident.status);
        incident.status = status;
        if status == IncidentStatus::Resolved && incident.resolved_at.is_none() {
            incident.resolved_at = Some(self.at);
        }
        incident.components.extend(self.add_components);
        incident.components.sort();
        incident.components.dedup();
        incident.updated_at = self.at;
        incident.updates.push(IncidentUpdate {
            id: Uuid::new_v4(),
            status,
            text: self.text,
            created_at: self.at,
        });
        Updated::Done(Box::new(incident.clone()))
    }
}

/// The answer to [`StatusBoard::update_incident`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated {
    Done(Box<Incident>),
    NotFound,
    /// A resolved incident cannot be set back to an open status (open a new one).
    AlreadyResolved,
}

/// A maintenance window an agency announced for its own base service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncedWindow {
    /// The provider (agency) id.
    pub provider: String,
    /// The adapter's id of the window, stable across announcements.
    pub id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub text: Text,
    /// When the relay first saw the window as it is now.
    pub updated_at: DateTime<Utc>,
}

impl AnnouncedWindow {
    fn same(&self, other: &Self) -> bool {
        self.starts_at == other.starts_at
            && self.ends_at == other.ends_at
            && self.text == other.text
    }
}

/// What the status feed needs from the store. Every method is one decision of
/// the engine as a whole (see [`crate::SharedState`]).
pub trait StatusBoard: Send + Sync + 'static {
    /// Records a node's view of a component: the status (with `updated_at` kept
    /// when it did not change) and the later of the stored and the given last
    /// success and failure.
    fn record_component(&self, state: &ComponentState) -> impl Future<Output = Result<()>> + Send;

    /// Every component state, by id.
    fn components(&self) -> impl Future<Output = Result<Vec<ComponentState>>> + Send;

    /// Opens an incident. With an `auto_key` already held by an unresolved
    /// incident, nothing is opened and that incident is returned with `false`.
    fn open_incident(
        &self,
        new: &NewIncident,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(Incident, bool)>> + Send;

    /// Adds an update to an incident.
    fn update_incident(
        &self,
        id: Uuid,
        change: &Change,
    ) -> impl Future<Output = Result<Updated>> + Send;

    /// The unresolved incident holding `auto_key`, if any.
    fn open_with_key(
        &self,
        auto_key: &str,
    ) -> impl Future<Output = Result<Option<Incident>>> + Send;

    /// Unresolved incidents, and resolved ones updated at or after `since`;
    /// newest start first.
    fn incidents(&self, since: DateTime<Utc>)
    -> impl Future<Output = Result<Vec<Incident>>> + Send;

    /// One incident.
    fn incident(&self, id: Uuid) -> impl Future<Output = Result<Option<Incident>>> + Send;

    /// Replaces what `provider` announces now: windows not yet ended that it no
    /// longer announces are removed (cancelled), the others added or changed;
    /// ended windows stay for the history. Whether anything changed.
    fn announce(
        &self,
        provider: &str,
        windows: &[AnnouncedWindow],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Every announced window, earliest start first.
    fn announced(&self) -> impl Future<Output = Result<Vec<AnnouncedWindow>>> + Send;

    /// Removes resolved incidents and ended windows older than `before`; how many.
    fn sweep_status(&self, before: DateTime<Utc>) -> impl Future<Output = Result<u64>> + Send;
}

/// The status file that goes with a redb mailbox file (`<mailbox>.status`).
pub fn status_path(mailbox: &Path) -> PathBuf {
    let mut p = mailbox.as_os_str().to_owned();
    p.push(".status");
    p.into()
}

/// The status board a node uses: beside its store's engine, or in memory on a
/// node without a store (one node; lost at exit). Cheap to clone.
#[derive(Clone, Debug)]
pub enum StatusStore {
    Redb(RedbStatus),
    Postgres(PgStore),
}

impl StatusStore {
    /// The board on `store`'s engine; `redb_path` is the mailbox file a redb
    /// store uses (the status file goes beside it). Blocking for redb: call at
    /// start-up.
    pub fn open(store: &Store, redb_path: &Path) -> Result<Self> {
        match store {
            Store::Redb { .. } => Ok(Self::Redb(RedbStatus::open(status_path(redb_path))?)),
            Store::Postgres(pg) => Ok(Self::Postgres(pg.clone())),
        }
    }

    /// A board in memory, for a node without a store.
    pub fn in_memory() -> Result<Self> {
        Ok(Self::Redb(RedbStatus::in_memory()?))
    }
}

macro_rules! board {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            StatusStore::Redb($s) => $e,
            StatusStore::Postgres($s) => $e,
        }
    };
}

impl StatusBoard for StatusStore {
    async fn record_component(&self, state: &ComponentState) -> Result<()> {
        board!(self, s => s.record_component(state).await)
    }

    async fn components(&self) -> Result<Vec<ComponentState>> {
        board!(self, s => s.components().await)
    }

    async fn open_incident(
        &self,
        new: &NewIncident,
        now: DateTime<Utc>,
    ) -> Result<(Incident, bool)> {
        board!(self, s => s.open_incident(new, now).await)
    }

    async fn update_incident(&self, id: Uuid, change: &Change) -> Result<Updated> {
        board!(self, s => s.update_incident(id, change).await)
    }

    async fn open_with_key(&self, auto_key: &str) -> Result<Option<Incident>> {
        board!(self, s => s.open_with_key(auto_key).await)
    }

    async fn incidents(&self, since: DateTime<Utc>) -> Result<Vec<Incident>> {
        board!(self, s => s.incidents(since).await)
    }

    async fn incident(&self, id: Uuid) -> Result<Option<Incident>> {
        board!(self, s => s.incident(id).await)
    }

    async fn announce(
        &self,
        provider: &str,
        windows: &[AnnouncedWindow],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        board!(self, s => s.announce(provider, windows, now).await)
    }

    async fn announced(&self) -> Result<Vec<AnnouncedWindow>> {
        board!(self, s => s.announced().await)
    }

    async fn sweep_status(&self, before: DateTime<Utc>) -> Result<u64> {
        board!(self, s => s.sweep_status(before).await)
    }
}

/// Merges what a provider announces now into what is stored for it (engine
/// independent): `(write, remove, changed)`, where `write` are the new or
/// changed windows (unchanged ones keep their stored `updated_at`), `remove`
/// the ids of windows not ended that are no longer announced.
pub(crate) fn merge_announced(
    stored: &[AnnouncedWindow],
    announced: &[AnnouncedWindow],
    now: DateTime<Utc>,
) -> (Vec<AnnouncedWindow>, Vec<String>, bool) {
    let mut write = Vec::new();
    let mut changed = false;
    for w in announced {
        match stored.iter().find(|s| s.id == w.id) {
            Some(s) if s.same(w) => {}
            _ => {
                changed = true;
                write.push(w.clone());
            }
        }
    }
    let remove: Vec<String> = stored
        .iter()
        .filter(|s| s.ends_at > now && !announced.iter().any(|w| w.id == s.id))
        .map(|s| s.id.clone())
        .collect();
    changed |= !remove.is_empty();
    (write, remove, changed)
}

pub(crate) fn record_error(e: impl std::fmt::Display) -> StateError {
    StateError::Record(e.to_string())
}
