//! Shared test fixtures: a store in a temp dir driven by a manual clock, a KEK
//! that records what it wraps (so tests can look for the data key on disk), and
//! small helpers to put and read bodies.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use relay_mailbox::{AckPolicy, MailboxStore};
use relay_mailbox::{
    DataKey, KekError, KekId, KeyEncryptionKey, KeyFile, ManualClock, MessageLabel, MessageState,
    Outbox, PutOutcome, Retention, WrappedKey,
};
use relay_store::redb::{RedbStore, StoreOptions};
use tokio::io::AsyncReadExt;

/// Wraps a [`KeyFile`] and keeps a copy of every data key and wrap it sees.
pub struct RecordingKek {
    pub file: KeyFile,
    pub seen: Mutex<Vec<([u8; 32], Vec<u8>)>>,
}

impl KeyEncryptionKey for RecordingKek {
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, KekError> {
        let wrapped = self.file.wrap(key, context)?;
        self.seen
            .lock()
            .unwrap()
            .push((*key.expose_secret(), wrapped.bytes.clone()));
        Ok(wrapped)
    }

    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, KekError> {
        self.file.unwrap(wrapped, context)
    }

    fn current_id(&self) -> KekId {
        self.file.current_id()
    }
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: RedbStore,
    pub clock: Arc<ManualClock>,
    pub kek: Arc<RecordingKek>,
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap()
}

impl Fixture {
    pub fn new() -> Self {
        Self::with(Retention::default(), AckPolicy::DeleteOnAck)
    }

    pub fn with(retention: Retention, ack_policy: AckPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let kek = Arc::new(RecordingKek {
            file: KeyFile::open_or_create(dir.path().join("kek")).unwrap(),
            seen: Mutex::new(Vec::new()),
        });
        let options = StoreOptions {
            clock: clock.clone(),
            retention,
            ack_policy,
            ..StoreOptions::default()
        };
        let store =
            RedbStore::open_with(dir.path().join("mailbox.redb"), kek.clone(), options).unwrap();
        Self {
            dir,
            store,
            clock,
            kek,
        }
    }

    /// Stores a message and moves it into its outbox (`Received`).
    pub async fn deliver(&self, label: MessageLabel, body: &[u8]) -> PutOutcome {
        let tx_id = label.tx_id.clone();
        let outcome = self.store.put(label, body).await.unwrap();
        self.store
            .mark_processed(&tx_id, MessageState::Received)
            .await
            .unwrap();
        outcome
    }
}

pub fn outbox(s: &str) -> Outbox {
    Outbox::parse(s).unwrap()
}

pub fn tx() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn label(to: &str) -> MessageLabel {
    let mut l = MessageLabel::new(tx(), outbox(to), "00000000-0000-0000-0000-000000000001");
    l.from = Some("5555555555".into());
    l
}

pub async fn read_all(body: &mut (impl tokio::io::AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    body.read_to_end(&mut out).await?;
    Ok(out)
}

/// Every regular file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The files under `dir` that contain `needle` anywhere.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

/// Reopens the fixture's store files with a manual clock at [`t0`].
pub fn reopen(dir: &Path, kek: Arc<RecordingKek>) -> RedbStore {
    let options = StoreOptions {
        clock: Arc::new(ManualClock::new(t0())),
        ..StoreOptions::default()
    };
    RedbStore::open_with(dir.join("mailbox.redb"), kek, options).unwrap()
}
