//! # relay-store
//!
//! Everything relay nodes must share, behind one [`Store`]: the asynchronous
//! mailbox ([`relay_mailbox::MailboxStore`]) and the run-time state
//! ([`SharedState`]: suspensions, withdrawals, maintenance, duplicate records,
//! ELT mandates, the ELT call rate and retry counts, accepted ELT reports). Two engines:
//!
//! - **redb** (the default): one node on one machine. The mailbox is
//!   [`redb::RedbStore`]; the state is [`RedbState`], a second
//!   redb file beside it.
//! - **PostgreSQL** ([`PgStore`]): several nodes behind a load balancer on one
//!   database that the operator already runs with replication and failover.
//!   Schema migrations are embedded and applied at start.
//!
//! Why two crates: `relay-mailbox` owns the mailbox contract (the trait, its
//! rules, the crypto) and holds no engine; this crate holds every engine, one
//! folder each (`redb/`, `pg/`), what only matters once there are several
//! nodes (shared decisions) and the `[store]` configuration that picks the
//! engine.
//!
//! Not for: HTTP, SHS or ELT semantics (what a suspension or a rate refusal
//! answers is the relay's), the audit log, or caching decisions in a node.
//!
//! # Layout
//!
//! - [`state`]: the [`SharedState`] trait and its value types.
//! - [`redb`]: the one-machine engine, one folder: [`RedbState`] (that
//!   trait), [`RedbStatus`], [`RedbParties`] and the mailbox,
//!   [`redb::RedbStore`].
//! - [`status`]: the [`StatusBoard`] trait (the public status feed: components,
//!   incidents, agencies' announced maintenance) and [`StatusStore`], the
//!   engine a node uses.
//! - [`pg`]: [`PgStore`], both traits on PostgreSQL (pool, TLS, migrations).
//! - [`node`]: [`Store`], the engine a node runs, chosen by configuration.
//! - [`party`], [`parties`]: the register of connected parties
//!   ([`PartyRegister`]) on both engines, and [`Parties`], the one a node runs.
//! - [`keys`]: the mailbox key ring as the store records it (key ids, the
//!   active one, what each node holds) and the checks of `shs-relay keys ...`;
//!   `redb::keys` and `pg::keys` are its engines. [`verify`]: `shs-relay store
//!   verify` (messages per key, missing keys, plaintext anywhere in the store).
//! - [`config`]: [`StoreConfig`], the `[store]` section.
//!
//! Topology, failure modes and backup are in `docs/high-availability.md`.

pub mod config;
pub mod keys;
pub mod node;
pub mod parties;
pub mod party;
pub mod pg;
pub mod redb;
pub mod state;
pub mod status;
pub mod verify;

pub use config::{StoreConfig, StoreConfigError, StoreKind};
pub use node::{Store, StoreOpenError, state_path};
pub use parties::Parties;
pub use party::{
    Declaration, Party, PartyCertificate, PartyRegister, PartyState, ProductStanding, Role,
    StateChange,
};
pub use pg::{OpenError, PgOptions, PgStore, SCHEMA_VERSION};
pub use redb::{RedbParties, RedbState, RedbStatus};
pub use state::{
    AcceptedReport, Decisions, Maintenance, MaintenanceWindow, Mandate, PlannedMaintenance,
    ProductName, RateLimit, RetryLimit, Scope, Seen, SharedState, StateError, Unreadable,
};
pub use status::{
    AnnouncedWindow, Change, ComponentState, ComponentStatus, Impact, Incident, IncidentStatus,
    IncidentUpdate, NewIncident, StatusBoard, StatusStore, Text, Updated, status_path,
};
