//! The audit files on disk: their names, finding them, and reading them back one
//! record at a time.
//!
//! A directory holds the file being written, `audit.jsonl`, and the closed ones,
//! `audit-YYYYMMDD-HHMMSS.jsonl`, named after the UTC moment they were closed
//! (with `-N` appended when two close within the same second). Every record in a
//! closed file was written before the time in its name, which lets a reader skip
//! whole files that end before the period it wants.
//!
//! Reading is streaming (one line in memory at a time) and tolerant: a line that
//! is not a record (a torn last line after a crash, or a kind this version does
//! not know) is skipped and counted, never fatal.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::error::{AuditError, Result};
use crate::record::AuditRecord;

/// The file being written.
pub const CURRENT_FILE: &str = "audit.jsonl";
const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";
const STAMP: &str = "%Y%m%d-%H%M%S";

/// The name a file closed at `at` gets (`seq` > 0 when the name is taken).
pub(crate) fn rotated_name(at: DateTime<Utc>, seq: u32) -> String {
    let stamp = at.format(STAMP);
    if seq == 0 {
        format!("{PREFIX}{stamp}{SUFFIX}")
    } else {
        format!("{PREFIX}{stamp}-{seq}{SUFFIX}")
    }
}

/// When a closed file was closed, from its name; `None` for anything else.
fn closed_at(name: &str) -> Option<(DateTime<Utc>, u32)> {
    let middle = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (stamp, seq) = match middle.get(15..) {
        Some("") => (middle, 0),
        Some(rest) => (&middle[..15], rest.strip_prefix('-')?.parse().ok()?),
        None => return None,
    };
    let t = NaiveDateTime::parse_from_str(stamp, STAMP).ok()?;
    Some((t.and_utc(), seq))
}

/// The audit files in `dir`, oldest first, the current file last.
pub fn audit_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut closed = Vec::new();
    let mut current = None;
    for entry in std::fs::read_dir(dir).map_err(AuditError::io(dir))? {
        let entry = entry.map_err(AuditError::io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == CURRENT_FILE {
            current = Some(entry.path());
        } else if let Some(key) = closed_at(name) {
            closed.push((key, entry.path()));
        }
    }
    closed.sort();
    Ok(closed.into_iter().map(|(_, p)| p).chain(current).collect())
}

/// The closed files in `dir` closed before `cutoff`, oldest first. Never the
/// current file, and nothing that is not named like a closed audit file.
pub fn closed_before(dir: &Path, cutoff: DateTime<Utc>) -> Result<Vec<PathBuf>> {
    let mut old: Vec<((DateTime<Utc>, u32), PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(AuditError::io(dir))? {
        let entry = entry.map_err(AuditError::io(dir))?;
        let name = entry.file_name();
        let Some(key) = name.to_str().and_then(closed_at) else {
            continue;
        };
        if key.0 < cutoff {
            old.push((key, entry.path()));
        }
    }
    old.sort();
    Ok(old.into_iter().map(|(_, p)| p).collect())
}

/// Command-line paths to files: a directory stands for its audit files (see
/// [`audit_files`]), a file for itself. Fails when nothing is found.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let found = audit_files(p)?;
            if found.is_empty() {
                return Err(AuditError::NoFiles(p.clone()));
            }
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// What a read pass saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadStats {
    pub files_read: usize,
    /// Closed files skipped because they were closed before the period asked for.
    pub files_skipped: usize,
    pub records: u64,
    /// Lines that were not a record (torn, or of an unknown kind).
    pub skipped_lines: u64,
}

/// Calls `each` for every record in `files`, in file order, one line in memory at
/// a time. Files closed before `not_before` are not opened: none of their records
/// can be that recent.
pub fn for_each_record(
    files: &[PathBuf],
    not_before: Option<DateTime<Utc>>,
    each: impl FnMut(AuditRecord),
) -> Result<ReadStats> {
    for_each_record_except(files, not_before, None, each)
}

/// The start of every request line as the writer writes it: the tag, then the
/// time (24 characters, `2026-11-02T08:00:00.000Z`).
const REQUEST_PREFIX: &[u8] = br#"{"kind":"request","time":""#;

/// The time of a request line, read without parsing the line; `None` for any
/// other line or shape.
fn request_time(line: &[u8]) -> Option<DateTime<Utc>> {
    let rest = line.strip_prefix(REQUEST_PREFIX)?;
    let stamp = std::str::from_utf8(rest.get(..24)?).ok()?;
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// [`for_each_record`], but request records that arrived outside
/// `requests_within` (start inclusive, end exclusive) are passed over without
/// being parsed (they are still counted as records). A reader that needs a
/// year of other records and one month of requests saves most of its work.
pub fn for_each_record_except(
    files: &[PathBuf],
    not_before: Option<DateTime<Utc>>,
    requests_within: Option<(DateTime<Utc>, DateTime<Utc>)>,
    mut each: impl FnMut(AuditRecord),
) -> Result<ReadStats> {
    let mut stats = ReadStats::default();
    let mut line = Vec::with_capacity(1024);
    for path in files {
        let closed = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(closed_at);
        if let (Some((closed, _)), Some(from)) = (closed, not_before)
            && closed < from
        {
            stats.files_skipped += 1;
            continue;
        }
        let mut reader = BufReader::new(File::open(path).map_err(AuditError::io(path))?);
        stats.files_read += 1;
        let mut skipped_here = 0u64;
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(AuditError::io(path))?;
            if n == 0 {
                break;
            }
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            if let (Some((from, to)), Some(t)) = (requests_within, request_time(text))
                && (t < from || t >= to)
            {
                stats.records += 1;
                continue;
            }
            match serde_json::from_slice::<AuditRecord>(text) {
                Ok(rec) => {
                    stats.records += 1;
                    each(rec);
                }
                Err(_) => skipped_here += 1,
            }
        }
        if skipped_here > 0 {
            // The parse error is not logged: it could quote the line.
            tracing::warn!(
                path = %path.display(),
                skipped = skipped_here,
                "skipped audit lines that are not records (torn or unknown kind)"
            );
            stats.skipped_lines += skipped_here;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn closed_file_names_round_trip_and_sort_in_closing_order() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 10, 15, 0).unwrap();
        assert_eq!(rotated_name(t, 0), "audit-20261122-101500.jsonl");
        assert_eq!(rotated_name(t, 2), "audit-20261122-101500-2.jsonl");
        assert_eq!(closed_at(&rotated_name(t, 0)), Some((t, 0)));
        assert_eq!(closed_at(&rotated_name(t, 2)), Some((t, 2)));
        for other in [
            "audit.jsonl",
            "audit-2026.jsonl",
            "audit-20261122-101500-x.jsonl",
            "x.log",
        ] {
            assert_eq!(closed_at(other), None, "{other}");
        }

        let dir = tempfile::tempdir().unwrap();
        for name in [
            CURRENT_FILE,
            "audit-20261122-101500-1.jsonl",
            "audit-20261122-101500.jsonl",
            "audit-20261121-235959.jsonl",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = audit_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "audit-20261121-235959.jsonl",
                "audit-20261122-101500.jsonl",
                "audit-20261122-101500-1.jsonl",
                CURRENT_FILE
            ]
        );
    }

    #[test]
    fn request_lines_outside_the_window_are_passed_over_unparsed_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CURRENT_FILE);
        let line = |t: &str| format!(r#"{{"kind":"request","time":"{t}","tx_id":"x"}}"#);
        // Incomplete request lines: parsed, they would be skipped as broken.
        let text = [
            line("2026-10-31T23:59:59.999Z"),
            line("2026-11-30T23:00:00.000Z"),
            r#"{"kind":"deletion","time":"2026-10-01T00:00:00.000Z","tx_id":"d","reason":"answered"}"#.to_owned(),
            line("2026-11-02T08:00:00.000Z"),
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let within = (
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap(),
        );
        let mut kinds = Vec::new();
        let stats = for_each_record_except(&[path], None, Some(within), |r| {
            kinds.push(r.time().to_rfc3339())
        })
        .unwrap();
        assert_eq!(kinds, ["2026-10-01T00:00:00+00:00"]);
        assert_eq!(
            (stats.records, stats.skipped_lines),
            (3, 1),
            "the one inside was parsed"
        );
    }
}
