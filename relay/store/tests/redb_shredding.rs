//! What "deleted" means, proven on the bytes of every file the store and the
//! key file occupy: plaintext never reaches disk, the raw data key never reaches
//! disk, and once a message is acknowledged or expired its wrapped data key is
//! gone from disk too, so the ciphertext left in freed store pages is noise.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

#[path = "redb_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::TimeDelta;
use relay_mailbox::{Clock, DeletionReason, MailboxStore};
use support::*;

struct Secrets {
    body_marker: String,
    label_marker: String,
    data_key: [u8; 32],
    wrapped_key: Vec<u8>,
}

/// Delivers a message whose body and label carry unique markers.
async fn deliver_secret(f: &Fixture) -> (String, Vec<u8>, Secrets) {
    let body_marker = format!("PLAINTEXT-MARKER-{}", uuid::Uuid::new_v4());
    let label_marker = format!("LABEL-MARKER-{}", uuid::Uuid::new_v4());
    // Several chunks' worth, so every chunk carries the marker.
    let body = body_marker.repeat(8_000).into_bytes();
    let mut l = label("1111111111");
    l.subject = Some(format!("Ekonomiskt bistånd {label_marker}"));
    l.originator = Some(format!("handläggare {label_marker}"));
    l.meta = vec![("namn".into(), label_marker.clone())];
    let tx_id = l.tx_id.clone();
    f.deliver(l, &body).await;
    let (data_key, wrapped_key) = f.kek.seen.lock().unwrap().last().cloned().unwrap();
    let secrets = Secrets {
        body_marker,
        label_marker,
        data_key,
        wrapped_key,
    };
    (tx_id, body, secrets)
}

/// Files in the system temp dir changed since `since`, other than the fixture's.
fn recent_temp_files(since: SystemTime) -> Vec<PathBuf> {
    fn walk(dir: &Path, since: SystemTime, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                walk(&path, since, out);
            } else if meta.is_file()
                && meta.len() < 256 << 20
                && meta.modified().is_ok_and(|m| m >= since)
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&std::env::temp_dir(), since, &mut out);
    out
}

fn contains(path: &Path, needle: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}

/// No plaintext and no raw data key in the fixture dir or in fresh temp files.
fn assert_no_plaintext(f: &Fixture, s: &Secrets, since: SystemTime) {
    let mut files = files_under(f.dir.path());
    assert!(files.len() >= 3, "store, key slots and key file: {files:?}");
    files.extend(recent_temp_files(since));
    for path in &files {
        assert!(
            !contains(path, s.body_marker.as_bytes()),
            "body plaintext in {path:?}"
        );
        assert!(
            !contains(path, s.label_marker.as_bytes()),
            "label plaintext in {path:?}"
        );
        assert!(!contains(path, &s.data_key), "raw data key in {path:?}");
    }
}

#[tokio::test]
async fn acknowledging_shreds_the_message_and_plaintext_is_never_on_disk() {
    let since = SystemTime::now();
    let f = Fixture::new();
    let (tx_id, body, s) = deliver_secret(&f).await;

    // Stored: encrypted. The wrapped key is in the slot file and nowhere else,
    // which also shows the scan finds what is there.
    assert_no_plaintext(&f, &s, since);
    assert_eq!(
        files_containing(f.dir.path(), &s.wrapped_key),
        [f.store.key_slot_path()]
    );

    // Listed and fetched: still nothing on disk in the clear.
    let ob = outbox("1111111111");
    let mut h = f.store.fetch(&ob, &tx_id).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), body);
    h.complete().await.unwrap();
    assert_no_plaintext(&f, &s, since);

    let ack = f.store.ack(&ob, &tx_id).await.unwrap();
    assert_eq!(ack.deletion.unwrap().reason, DeletionReason::Acknowledged);
    assert_no_plaintext(&f, &s, since);
    assert!(files_containing(f.dir.path(), &s.wrapped_key).is_empty());

    // And after the store is closed and its file flushed.
    let Fixture {
        dir, store, kek, ..
    } = f;
    drop(store);
    for path in files_under(dir.path()) {
        assert!(!contains(&path, &s.wrapped_key), "wrapped key in {path:?}");
        assert!(!contains(&path, &s.data_key), "raw key in {path:?}");
        assert!(!contains(&path, s.body_marker.as_bytes()));
    }
    drop(kek);
}

#[tokio::test]
async fn expiry_shreds_the_message_too() {
    let since = SystemTime::now();
    let f = Fixture::new();
    let (tx_id, _, s) = deliver_secret(&f).await;
    assert_no_plaintext(&f, &s, since);

    f.clock.advance(TimeDelta::hours(72));
    let swept = f.store.sweep(f.clock.now()).await.unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].tx_id, tx_id);
    assert_eq!(swept[0].reason, DeletionReason::Expired);
    assert_no_plaintext(&f, &s, since);
    assert!(files_containing(f.dir.path(), &s.wrapped_key).is_empty());
    assert!(f.store.get_meta(&tx_id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_shredded_slot_is_reused_so_the_key_file_does_not_grow() {
    let f = Fixture::new();
    let ob = outbox("1111111111");
    for _ in 0..5 {
        let l = label("1111111111");
        let tx_id = l.tx_id.clone();
        f.deliver(l, b"x").await;
        f.store.ack(&ob, &tx_id).await.unwrap();
    }
    let len = std::fs::metadata(f.store.key_slot_path()).unwrap().len();
    assert_eq!(len, 2 * 128, "header and one reused slot");
}

#[tokio::test]
async fn rotating_the_kek_then_rewrapping_lets_the_old_kek_be_retired() {
    let f = Fixture::new();
    let (tx_id, body, _) = deliver_secret(&f).await;
    assert_eq!(
        f.store
            .kek_usage()
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [(1, 1)]
    );
    let new = f.kek.file.rotate().unwrap();
    assert_eq!(new, 2);
    let (later, _, _) = deliver_secret(&f).await;
    assert_eq!(
        f.store
            .kek_usage()
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [(1, 1), (2, 1)]
    );
    assert_eq!(f.store.rewrap_all().await.unwrap(), 1);
    assert_eq!(
        f.store
            .kek_usage()
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [(2, 2)]
    );
    f.kek.file.retire(1).unwrap();
    let mut h = f.store.fetch(&outbox("1111111111"), &tx_id).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), body);
    assert!(f.store.get_meta(&later).await.unwrap().is_some());
}

#[tokio::test]
async fn without_the_kek_the_store_cannot_be_read() {
    let f = Fixture::new();
    let (tx_id, _, _) = deliver_secret(&f).await;
    let path = f.store.path().to_owned();
    let Fixture { dir, store, .. } = f;
    drop(store);
    // Someone with the store files but another key file.
    let other = relay_mailbox::KeyFile::open_or_create(dir.path().join("other-kek")).unwrap();
    let store = relay_store::redb::RedbStore::open(&path, std::sync::Arc::new(other)).unwrap();
    let err = store.get_meta(&tx_id).await.unwrap_err();
    assert!(matches!(err, relay_mailbox::MailboxError::Kek(_)), "{err}");
}
