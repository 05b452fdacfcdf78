//! "Who asked about this person?": the requests whose persons include the
//! person's pseudonym under any of the given keys, read straight from the audit
//! files (streaming; only the hits are kept).
//!
//! Several keys are accepted because keys rotate: each period's records carry the
//! id of the key they were made with, and the answer for a period needs that
//! key. Records made with a key that was not supplied are counted by key id, so
//! the report can say which key is missing instead of silently finding nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use relay_ident::Personnummer;
use serde::Serialize;

use crate::error::Result;
use crate::files::{ReadStats, for_each_record};
use crate::pseudonym::PseudonymKey;
use crate::record::{AuditRecord, RequestRecord, rfc3339};

/// One request about the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WhoAsked {
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    pub caller_org: String,
    pub case_worker: String,
    pub case_id: String,
    pub product: String,
    pub purpose: String,
    pub tx_id: String,
    /// `answered`, `refused:<code>`, `failed:<code>`, `overloaded` or
    /// `deadline_passed`: whether anything was disclosed.
    pub result: String,
}

impl From<&RequestRecord> for WhoAsked {
    fn from(r: &RequestRecord) -> Self {
        Self {
            time: r.time,
            caller_org: r.caller_org.clone(),
            case_worker: r.case_worker.clone(),
            case_id: r.case_id.clone(),
            product: r.product.clone(),
            purpose: r.purpose.clone(),
            tx_id: r.tx_id.clone(),
            result: r.result.to_string(),
        }
    }
}

/// The answer, with what the search could not see.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WhoAskedReport {
    /// Oldest first.
    pub hits: Vec<WhoAsked>,
    pub read: ReadStats,
    /// Request records (with persons) pseudonymised with a key that was not
    /// supplied, by key id: the person may be among them.
    pub unsearched_by_key: BTreeMap<String, u64>,
}

/// Every request about `person` with `from <= time < to`, across `files` (see
/// [`crate::files::expand_paths`] for finding them) and `keys`.
pub fn who_asked(
    files: &[PathBuf],
    keys: &[PseudonymKey],
    person: &Personnummer,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<WhoAskedReport> {
    let by_key: BTreeMap<&str, String> =
        keys.iter().map(|k| (k.id(), k.pseudonym(person))).collect();
    let any_key: BTreeSet<&str> = by_key.values().map(String::as_str).collect();
    let mut report = WhoAskedReport::default();
    report.read = for_each_record(files, from, |rec| {
        let AuditRecord::Request(r) = rec else { return };
        if from.is_some_and(|f| r.time < f) || to.is_some_and(|t| r.time >= t) {
            return;
        }
        let hit = match by_key.get(r.key_id.as_str()) {
            Some(p) => r.persons.iter().any(|x| x.as_str() == p),
            None => {
                if !r.persons.is_empty() {
                    *report
                        .unsearched_by_key
                        .entry(r.key_id.clone())
                        .or_default() += 1;
                }
                // Older records may lack a key id; a match under any key is a match.
                r.persons.iter().any(|x| any_key.contains(x.as_str()))
            }
        };
        if hit {
            report.hits.push(WhoAsked::from(&*r));
        }
    })?;
    report
        .hits
        .sort_by(|a, b| (a.time, &a.tx_id).cmp(&(b.time, &b.tx_id)));
    Ok(report)
}
