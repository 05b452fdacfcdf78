//! Stored data that has been changed behind the store's back (a flipped bit, a
//! dropped or swapped chunk, an edited label) is an error, never wrong plaintext.
//! The tests edit the redb file directly, with the store closed.

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

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use relay_mailbox::{CHUNK_SIZE, MailboxError, MailboxStore};
use support::*;
use tokio::io::AsyncReadExt;

const CHUNKS: TableDefinition<(u128, u32), &[u8]> = TableDefinition::new("chunks");
const LABELS: TableDefinition<&str, &[u8]> = TableDefinition::new("labels");

/// A closed store holding one waiting message of four chunks.
async fn closed_store_with_message() -> (tempfile::TempDir, Arc<RecordingKek>, String, u128, Vec<u8>)
{
    let f = Fixture::new();
    let body: Vec<u8> = (0..CHUNK_SIZE * 3 + 100)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    let relay_mailbox::PutOutcome::Stored { local_id, .. } = f.deliver(l, &body).await else {
        panic!()
    };
    let Fixture {
        dir, store, kek, ..
    } = f;
    drop(store);
    (dir, kek, tx_id, local_id.as_u128(), body)
}

fn edit(dir: &Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::create(dir.join("mailbox.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

fn chunk(dir: &Path, id: u128, index: u32) -> Vec<u8> {
    let db = redb::Database::create(dir.join("mailbox.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(CHUNKS).unwrap();
    t.get((id, index)).unwrap().unwrap().value().to_vec()
}

/// Fetches the message and reads until the end or the first error.
async fn read_back(
    dir: &Path,
    kek: Arc<RecordingKek>,
    tx_id: &str,
) -> (Vec<u8>, Option<std::io::Error>) {
    let store = reopen(dir, kek);
    let mut h = store.fetch(&outbox("1111111111"), tx_id).await.unwrap();
    let body = h.body().unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 10_000];
    loop {
        match body.read(&mut buf).await {
            Ok(0) => return (got, None),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Some(e)),
        }
    }
}

/// What came out before the error is true plaintext from chunks before `bad`.
fn assert_verified_prefix(got: &[u8], body: &[u8], bad: usize) {
    assert!(
        got.len() <= bad * CHUNK_SIZE,
        "{} bytes came out",
        got.len()
    );
    assert!(body.starts_with(got), "wrong plaintext came out");
}

#[tokio::test]
async fn a_flipped_bit_in_a_chunk_fails_and_only_verified_chunks_come_out() {
    let (dir, kek, tx_id, id, body) = closed_store_with_message().await;
    let mut c = chunk(dir.path(), id, 2);
    c[100] ^= 0x01;
    edit(dir.path(), |txn| {
        txn.open_table(CHUNKS)
            .unwrap()
            .insert((id, 2), c.as_slice())
            .unwrap();
    });
    let (got, err) = read_back(dir.path(), kek, &tx_id).await;
    let err = err.expect("tampering must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("failed authentication"), "{err}");
    assert_verified_prefix(&got, &body, 2);
}

#[tokio::test]
async fn a_dropped_final_chunk_is_detected_as_truncation() {
    let (dir, kek, tx_id, id, body) = closed_store_with_message().await;
    edit(dir.path(), |txn| {
        txn.open_table(CHUNKS).unwrap().remove((id, 3)).unwrap();
    });
    let (got, err) = read_back(dir.path(), kek, &tx_id).await;
    assert_eq!(
        err.expect("truncation must fail").kind(),
        ErrorKind::UnexpectedEof
    );
    assert_verified_prefix(&got, &body, 3);
}

#[tokio::test]
async fn swapped_chunks_fail() {
    let (dir, kek, tx_id, id, _) = closed_store_with_message().await;
    let (a, b) = (chunk(dir.path(), id, 0), chunk(dir.path(), id, 1));
    edit(dir.path(), |txn| {
        let mut t = txn.open_table(CHUNKS).unwrap();
        t.insert((id, 0), b.as_slice()).unwrap();
        t.insert((id, 1), a.as_slice()).unwrap();
    });
    let (got, err) = read_back(dir.path(), kek, &tx_id).await;
    assert_eq!(
        err.expect("reordering must fail").kind(),
        ErrorKind::InvalidData
    );
    assert!(got.is_empty());
}

#[tokio::test]
async fn an_edited_label_fails_authentication() {
    let (dir, kek, tx_id, _, _) = closed_store_with_message().await;
    edit(dir.path(), |txn| {
        let mut t = txn.open_table(LABELS).unwrap();
        // The row key: tx.id, U+001F, sender (the support's labels come from 5555555555).
        let key = format!("{tx_id}\u{1f}5555555555");
        let mut sealed = t.get(key.as_str()).unwrap().unwrap().value().to_vec();
        sealed[5] ^= 0x80;
        t.insert(key.as_str(), sealed.as_slice()).unwrap();
    });
    let store = reopen(dir.path(), kek);
    let err = store.get_meta(&tx_id).await.unwrap_err();
    assert!(
        matches!(err, MailboxError::Integrity { what: "label", .. }),
        "{err}"
    );
    // The fetch refuses too, and leaves the message waiting.
    let err = store
        .fetch(&outbox("1111111111"), &tx_id)
        .await
        .unwrap_err();
    assert!(matches!(err, MailboxError::Integrity { .. }), "{err}");
}
