//! `shs-relay store verify`: the proof an auditor asks for, that the store
//! holds no message in clear and that every message can still be read. It
//! reports messages per key id, messages whose key this node's key file lacks
//! (or that fail authentication), and any window of a stored body's plaintext
//! found anywhere in the store's raw bytes: the redb files (the mailbox, its
//! key slots and the state file beside it), or the bytes of every row of the
//! PostgreSQL mailbox tables (`mailbox_*`).
//!
//! The search: each decrypted body is cut into [`WINDOW`]-byte windows every
//! [`STRIDE`] bytes (windows with fewer than [`MIN_DISTINCT`] different byte
//! values, such as runs of spaces, are left out: they prove nothing), and every
//! offset of the raw bytes is looked up among them. Any copy of
//! `WINDOW + STRIDE - 1` plaintext bytes or more is found. Bodies shorter than
//! a window are counted, not searched. Windows that lie inside a tx.id are left
//! out: the tx.id is kept in clear on purpose (it names no one) and bodies
//! quote it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use relay_mailbox::{BodyCheck, KekId, StoredMessage};
use serde::Serialize;

use crate::node::Store;

/// Bytes per plaintext window.
pub const WINDOW: usize = 32;
/// Bytes between the starts of two windows of one body.
pub const STRIDE: usize = 16;
/// The fewest different byte values a window needs to be searched.
pub const MIN_DISTINCT: usize = 8;

/// What `store verify` found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub messages: usize,
    /// Messages per key id.
    pub per_key: BTreeMap<KekId, usize>,
    /// (tx.id, key id) of messages whose key the key file lacks.
    pub key_missing: Vec<(String, KekId)>,
    /// (tx.id, what) of messages that failed authentication.
    pub damaged: Vec<(String, String)>,
    /// Where a stored body's plaintext was found: (tx.id, where).
    pub plaintext_found: Vec<(String, String)>,
    /// Bodies too short to search.
    pub too_short: usize,
    /// Raw bytes searched.
    pub bytes_searched: u64,
    /// What was searched (files or tables).
    pub searched: Vec<String>,
}

impl VerifyReport {
    /// Whether an auditor may sign it: every key held, nothing damaged, no plaintext.
    pub fn clean(&self) -> bool {
        self.key_missing.is_empty() && self.damaged.is_empty() && self.plaintext_found.is_empty()
    }
}

/// The windows of every opened body: window → the message it came from.
struct Windows {
    of: HashMap<[u8; WINDOW], usize>,
    tx_ids: Vec<String>,
}

impl Windows {
    fn new(messages: &[StoredMessage], report: &mut VerifyReport) -> Self {
        // The tx.id is kept in clear on purpose (the envelope's key, never
        // personal) and a body quotes it (the label, a confirm): a window
        // inside one proves nothing.
        let clear: std::collections::HashSet<&[u8]> = messages
            .iter()
            .flat_map(|m| m.tx_id.as_bytes().windows(WINDOW))
            .collect();
        let mut of = HashMap::new();
        let mut tx_ids = Vec::new();
        for m in messages {
            let BodyCheck::Opened(body) = &m.body else {
                continue;
            };
            if body.len() < WINDOW {
                report.too_short += 1;
                continue;
            }
            let n = tx_ids.len();
            tx_ids.push(m.tx_id.clone());
            let mut start = 0;
            loop {
                let end = start + WINDOW;
                let Some(w) = body.get(start..end) else {
                    break;
                };
                let mut seen = [false; 256];
                for &b in w {
                    if let Some(s) = seen.get_mut(usize::from(b)) {
                        *s = true;
                    }
                }
                if seen.iter().filter(|s| **s).count() >= MIN_DISTINCT
                    && !clear.contains(w)
                    && let Ok(key) = <[u8; WINDOW]>::try_from(w)
                {
                    of.entry(key).or_insert(n);
                }
                if end == body.len() {
                    break;
                }
                // The last window ends at the body's end.
                start = (start + STRIDE).min(body.len() - WINDOW);
            }
        }
        Self { of, tx_ids }
    }

    /// Every message whose plaintext occurs in `raw`, at most once each.
    fn search(&self, raw: &[u8], place: &str, report: &mut VerifyReport) {
        report.bytes_searched += raw.len() as u64;
        if self.of.is_empty() {
            return;
        }
        let mut found = vec![false; self.tx_ids.len()];
        for w in raw.windows(WINDOW) {
            if let Ok(key) = <&[u8; WINDOW]>::try_from(w)
                && let Some(&n) = self.of.get(key)
                && let Some(slot) = found.get_mut(n)
                && !*slot
            {
                *slot = true;
                if let Some(tx_id) = self.tx_ids.get(n) {
                    report
                        .plaintext_found
                        .push((tx_id.clone(), place.to_owned()));
                }
            }
        }
    }
}

/// Verifies `store`. For redb, `redb_path` is the mailbox file (the relay must
/// be stopped: it holds the files' lock); every file beside it whose name
/// starts with the mailbox file's name is searched.
pub async fn verify(store: &Store, redb_path: &Path) -> Result<VerifyReport, String> {
    let messages = match store {
        Store::Redb { mailbox, .. } => mailbox.stored_messages().await,
        Store::Postgres(pg) => pg.stored_messages().await,
    }
    .map_err(|e| e.to_string())?;
    let mut report = VerifyReport {
        messages: messages.len(),
        ..VerifyReport::default()
    };
    for m in &messages {
        *report.per_key.entry(m.kek_id).or_insert(0) += 1;
        match &m.body {
            BodyCheck::Opened(_) => {}
            BodyCheck::KeyMissing => report.key_missing.push((m.tx_id.clone(), m.kek_id)),
            BodyCheck::Damaged(what) => report.damaged.push((m.tx_id.clone(), what.clone())),
        }
    }
    let windows = Windows::new(&messages, &mut report);
    drop(messages);
    match store {
        Store::Redb { .. } => {
            for path in store_files(redb_path)? {
                let raw = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let place = path.display().to_string();
                windows.search(&raw, &place, &mut report);
                report.searched.push(place);
            }
        }
        Store::Postgres(pg) => {
            for (table, rows) in pg.mailbox_rows().await.map_err(|e| e.to_string())? {
                for row in rows {
                    windows.search(&row, &format!("table {table}"), &mut report);
                }
                report.searched.push(format!("table {table}"));
            }
        }
    }
    Ok(report)
}

/// The mailbox file and every file beside it that starts with its name.
fn store_files(mailbox: &Path) -> Result<Vec<PathBuf>, String> {
    let dir = match mailbox.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = mailbox
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{}: not a file name", mailbox.display()))?;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        if entry.file_name().to_string_lossy().starts_with(&name)
            && entry.file_type().map(|t| t.is_file()).unwrap_or(false)
        {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}
