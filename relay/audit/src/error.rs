//! The crate's one error type. Texts name files and rules, never a personnummer
//! and never key material.

use std::path::PathBuf;

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A pseudonym key file that is not 32 bytes (raw) or 64 hex digits.
    #[error("{path}: not a pseudonym key (expected 64 hex digits or 32 raw bytes)")]
    KeyFormat { path: PathBuf },
    /// `PseudonymKey::create` never overwrites a key: the pseudonyms made with it
    /// would become unanswerable.
    #[error("{path}: a key file already exists; refusing to overwrite it")]
    KeyExists { path: PathBuf },
    #[error("person: {0}")]
    Person(#[from] relay_ident::IdentError),
    #[error("month must be YYYY-MM, e.g. 2026-11")]
    Month,
    #[error("{what}: expected RFC 3339 (2026-11-02T08:00:00Z) or a date (2026-11-02)")]
    Time { what: &'static str },
    #[error("unknown output format {0:?}: expected md, json or html")]
    Format(String),
    #[error("{0} output is not available for this report")]
    FormatNotSupported(&'static str),
    #[error("audit record could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    /// The writer task has stopped; the record was not written (and was counted).
    #[error("the audit writer has stopped; record not written")]
    Closed,
    /// The writer's queue stayed full for longer than the configured wait; the
    /// record was not written (and was counted and logged).
    #[error("the audit writer's queue stayed full for {0:?}; record dropped")]
    Dropped(std::time::Duration),
    /// The record reached the writer but could not be written and fsynced
    /// (a disk error; the text names the directory and the system's reason).
    #[error("the audit trail could not be written: {0}")]
    NotWritten(String),
    #[error("no audit files found in {0}")]
    NoFiles(PathBuf),
}

impl AuditError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

pub type Result<T, E = AuditError> = std::result::Result<T, E>;
