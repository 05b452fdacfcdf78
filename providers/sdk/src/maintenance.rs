//! Planned maintenance of the agency's base service (seed 002 §12.2.3: the
//! agency informs the operator at once of planned disturbances), announced to
//! the relay in `Describe` (`DescribeReply.planned_maintenance`). The relay
//! shows each window in its status feed as the agency's scheduled maintenance
//! and counts it as planned in its service-level report.
//!
//! Two sources, merged: the adapter's `maintenance_file` (re-read on every
//! `Describe`, so the agency's operators edit it without a restart), and
//! [`crate::Backend::planned_maintenance`] for an adapter whose base service
//! publishes its own windows. Windows that have ended are not announced.
//!
//! ```toml
//! # maintenance_file = "/etc/shs-adapter/maintenance.toml"
//! [[window]]
//! id = "2026-12-08-db"                  # stable while announced; [A-Za-z0-9._-], 1-64
//! start = "2026-12-08T18:00:00Z"        # RFC 3339
//! end = "2026-12-08T20:00:00Z"          # after start, at most 7 days after it
//! sv = "Uppgradering av databasen."     # public texts, at most 200 characters,
//! en = "Database upgrade."              # no personal data or organisation numbers
//! ```
//!
//! The file is bounded ([`MAX_FILE_BYTES`], [`MAX_WINDOWS`] windows); a file
//! that breaks a rule is refused as a whole with the rule named in the log,
//! and nothing from it is announced until it is fixed.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use crate::proto;

/// The largest maintenance file read.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Windows announced at most (the relay takes no more).
pub const MAX_WINDOWS: usize = 20;
/// The longest window.
pub const MAX_LENGTH: TimeDelta = TimeDelta::days(7);
/// The longest text, per language.
pub const MAX_TEXT_CHARS: usize = 200;

/// One planned window of the base service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedWindow {
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Public text in Swedish; empty: the relay's standard text.
    #[serde(default)]
    pub sv: String,
    /// Public text in English; empty: the relay's standard text.
    #[serde(default)]
    pub en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    window: Vec<PlannedWindow>,
}

impl PlannedWindow {
    /// The rule this window breaks, if any.
    pub fn check(&self) -> Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !id_ok {
            return Err("id: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'".into());
        }
        if self.end <= self.start || self.end - self.start > MAX_LENGTH {
            return Err(format!(
                "window {}: end must be after start and at most 7 days after it",
                self.id
            ));
        }
        for (lang, text) in [("sv", &self.sv), ("en", &self.en)] {
            if text.chars().count() > MAX_TEXT_CHARS {
                return Err(format!(
                    "window {}: {lang} is longer than {MAX_TEXT_CHARS} characters",
                    self.id
                ));
            }
            let mut run = 0;
            for c in text.chars() {
                run = if c.is_ascii_digit() { run + 1 } else { 0 };
                if run >= 10 {
                    return Err(format!(
                        "window {}: {lang} holds ten or more digits in a row (no organisation or personal numbers: the text is public)",
                        self.id
                    ));
                }
            }
        }
        Ok(())
    }

    /// The contract's form.
    pub fn to_proto(&self) -> proto::PlannedMaintenance {
        proto::PlannedMaintenance {
            id: self.id.clone(),
            starts_at: self.start.to_rfc3339(),
            ends_at: self.end.to_rfc3339(),
            description_sv: self.sv.clone(),
            description_en: self.en.clone(),
        }
    }
}

/// Reads and checks a maintenance file. The error names the file and the rule.
pub fn load(path: &Path) -> Result<Vec<PlannedWindow>, String> {
    let name = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{name}: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{name}: larger than {MAX_FILE_BYTES} bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        match line {
            Some(line) => format!("{name}: line {line}: {}", e.message()),
            None => format!("{name}: {}", e.message()),
        }
    })?;
    if file.window.len() > MAX_WINDOWS {
        return Err(format!("{name}: more than {MAX_WINDOWS} windows"));
    }
    for (n, w) in file.window.iter().enumerate() {
        w.check().map_err(|e| format!("{name}: {e}"))?;
        if file.window[..n].iter().any(|o| o.id == w.id) {
            return Err(format!("{name}: window id {} given twice", w.id));
        }
    }
    Ok(file.window)
}

/// What `Describe` announces: the file's windows and the backend's, not ended
/// at `now`, at most [`MAX_WINDOWS`]. A missing file announces nothing (the
/// agency has planned nothing); a broken one is logged and announces nothing.
pub fn announced(
    file: Option<&Path>,
    from_backend: Vec<PlannedWindow>,
    now: DateTime<Utc>,
) -> Vec<proto::PlannedMaintenance> {
    let mut all = match file {
        Some(path) if path.exists() => match load(path) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "maintenance_file refused: no planned maintenance is announced until it is fixed");
                Vec::new()
            }
        },
        _ => Vec::new(),
    };
    for w in from_backend {
        match w.check() {
            Ok(()) if !all.iter().any(|o| o.id == w.id) => all.push(w),
            Ok(()) => {
                tracing::warn!(window = %w.id, "a planned window from the base service repeats an id; left out")
            }
            Err(e) => {
                tracing::warn!(error = %e, "a planned window from the base service was left out")
            }
        }
    }
    all.retain(|w| w.end > now);
    all.truncate(MAX_WINDOWS);
    all.iter().map(PlannedWindow::to_proto).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let p = dir.path().join("maintenance.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_maintenance_file_announces_its_windows_that_have_not_ended() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            r#"
[[window]]
id = "past"
start = "2020-01-01T00:00:00Z"
end = "2020-01-01T01:00:00Z"

[[window]]
id = "2099-01-01-db"
start = "2099-01-01T18:00:00Z"
end = "2099-01-01T20:00:00+01:00"
sv = "Uppgradering"
en = "Upgrade"
"#,
        );
        let got = announced(Some(&p), Vec::new(), Utc::now());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "2099-01-01-db");
        assert_eq!(got[0].ends_at, "2099-01-01T19:00:00+00:00");
        assert_eq!(got[0].description_sv, "Uppgradering");
        assert!(announced(Some(&dir.path().join("none.toml")), Vec::new(), Utc::now()).is_empty());
    }

    #[test]
    fn a_broken_maintenance_file_is_refused_with_its_rule_and_announces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for (text, rule) in [
            (
                "[[window]]\nid = \"a b\"\nstart = \"2099-01-01T00:00:00Z\"\nend = \"2099-01-01T01:00:00Z\"\n",
                "id",
            ),
            (
                "[[window]]\nid = \"a\"\nstart = \"2099-01-02T00:00:00Z\"\nend = \"2099-01-01T01:00:00Z\"\n",
                "after start",
            ),
            (
                "[[window]]\nid = \"a\"\nstart = \"2099-01-01T00:00:00Z\"\nend = \"2099-01-09T01:00:00Z\"\n",
                "7 days",
            ),
            (
                "[[window]]\nid = \"a\"\nstart = \"2099-01-01T00:00:00Z\"\nend = \"2099-01-01T01:00:00Z\"\nsv = \"ring 2120002411\"\n",
                "digits",
            ),
            (
                "[[window]]\nid = \"a\"\nstart = \"soon\"\nend = \"2099-01-01T01:00:00Z\"\n",
                "line 3",
            ),
            (
                "[[window]]\nid = \"a\"\nstart = \"2099-01-01T00:00:00Z\"\nend = \"2099-01-01T01:00:00Z\"\n[[window]]\nid = \"a\"\nstart = \"2099-01-01T00:00:00Z\"\nend = \"2099-01-01T01:00:00Z\"\n",
                "twice",
            ),
        ] {
            let p = write(&dir, text);
            let e = load(&p).unwrap_err();
            assert!(e.contains(rule), "{rule}: {e}");
            assert!(announced(Some(&p), Vec::new(), Utc::now()).is_empty());
        }
        let big = write(&dir, &"#".repeat(MAX_FILE_BYTES as usize + 1));
        assert!(load(&big).unwrap_err().contains("larger"));
    }
}
