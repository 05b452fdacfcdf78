//! # relay-audit
//!
//! The relay's audit trail and what is read out of it: **who asked** about a
//! person (for the person, the supervisory authority or the security officer),
//! and the **monthly service-level report** (answer times, answered share,
//! availability from the prober's records, reliability, incidents) against the
//! SSBTEK agreement. It also holds the pure state machines the relay runs live
//! and writes records from: the disturbance tracker and the outage detector.
//!
//! The audit trail traces who asked without becoming a store of personal data:
//! a request record names the organisation, case worker, case, product and
//! purpose, but the persons only as keyed pseudonyms (HMAC-SHA256 under a key the
//! log readers do not hold), and never anything of the answer. Deletion records
//! say that a transaction's data was deleted, never what it was.
//!
//! Not for: the application log (that is `tracing`), metrics, or the admin
//! endpoints; the relay writes records here and its subcommands call [`cli`].
//! No network: files only.
//!
//! # Layout
//!
//! - [`record`]: the records, one JSON object per line, tagged by `kind`
//!   (`request`, `deletion`, `admin`, `outage`, `fetch`, `probe`, `incident`).
//! - [`disturbance`]: [`DisturbanceTracker`], the live state "two or more
//!   providers failing at once" (pure, clock-injected; yields incident records).
//! - [`availability`]: [`OutageDetector`], unavailable periods from probe
//!   records (pure; the relay and the report share the definition).
//! - [`pseudonym`]: [`PseudonymKey`] (key files, `pseudonym(&Personnummer)`).
//! - [`writer`]: [`AuditLog`] (many tasks) and [`AuditTask`] (the one writer:
//!   append, fsync, size and daily rotation, retention, back-pressure without
//!   silent drops).
//! - [`files`]: file names, finding the files, streaming them back tolerantly.
//! - [`who_asked`](mod@who_asked): the requests about one person, across files and keys.
//! - [`calendar`]: opening hours and Swedish holidays, computed for any year.
//! - [`sla`]: the service-level report and its definitions.
//! - [`render`]: Markdown, JSON and self-contained HTML (inline SVG charts).
//! - [`cli`]: the subcommands' entry points, returning the rendered text.
//!
//! # The pseudonym key
//!
//! Held by the operator's **security officer**, kept apart from the people who
//! read audit files: a log reader with the key could test guessed numbers. The
//! relay needs it to write records; `who-asked` needs it to answer. **Rotation**:
//! [`rotate_key`] (`shs-relay audit rotate-key`) keeps the current key beside the
//! key file as a retired key and writes a new one; the relay takes it at its next
//! reload ([`CurrentKey`]) and new records get new pseudonyms and the new key id
//! (the key version). Keep every old key for as long as its period's audit files
//! are kept: `who-asked` takes several key files ([`retired_key_files`] finds the
//! retired ones) and matches each record under the key it was written with. See
//! `docs/audit.md`.
//!
//! ```no_run
//! # async fn demo() -> relay_audit::Result<()> {
//! use relay_audit::{AuditConfig, AuditLog, PseudonymKey};
//! let key = PseudonymKey::load("/etc/shs-relay/pseudonym.key".as_ref())?;
//! let (log, task) = AuditLog::open(AuditConfig::new("/var/lib/shs-relay/audit"))?;
//! let writer = task.spawn();
//! // per request: log.record(RequestRecord { .. }.with_persons(&key, &persons)).await?;
//! drop(log);
//! let _stats = writer.await;
//! # let _ = key; Ok(()) }
//! ```

// Exception to [workspace.lints]: 3 `expect`s on constant dates and key sizes
// and 2 slicing sites (2026-12), not yet rewritten.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)]

pub mod availability;
pub mod calendar;
pub mod cli;
pub mod disturbance;
mod error;
pub mod files;
pub mod pseudonym;
pub mod record;
pub mod render;
pub mod sla;
pub mod who_asked;
pub mod writer;

pub use availability::{OutageDetector, ProbeOutage};
pub use cli::{run_sla_report, run_sla_report_at, run_who_asked};
pub use disturbance::{DisturbanceConfig, DisturbanceTracker, Ongoing, Transition};
pub use error::{AuditError, Result};
pub use files::{audit_files, expand_paths};
pub use pseudonym::{CurrentKey, Pseudonym, PseudonymKey, retired_key_files, rotate_key};
pub use record::{
    AdminRecord, Answer, AuditRecord, Channel, DeletionRecord, FailedBy, FetchRecord, FetchResult,
    IncidentRecord, OutageKind, OutageRecord, Outcome, ProbeRecord, ProbeResult, ProviderCall,
    RequestRecord, RequestResult, SlotSide,
};
pub use render::OutputFormat;
pub use sla::{AnsweredBasis, SlaConfig, SlaReport, percentile, sla_report};
pub use who_asked::{WhoAsked, WhoAskedReport, who_asked};
pub use writer::{
    AuditConfig, AuditLog, AuditStats, AuditTask, DEFAULT_RETENTION_MONTHS, Fsync, RETENTION_WHO,
    WriteErrorHook,
};
