//! After a crash (the process killed with SIGKILL, no destructor run, no clean
//! close) every message whose `put` had returned is there, intact; a `put` that
//! was mid-stream is gone with its key; fetch locks are released; deletions stay
//! deleted; and unprocessed messages are reported for resumption.
//!
//! The test re-runs its own binary as the process to kill.

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

use std::path::Path;
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll};

use relay_mailbox::{KeyFile, ListFilter, MailboxStore, ManualClock, MessageLabel, MessageState};
use relay_store::redb::{RedbStore, StoreOptions};
use support::*;
use tokio::io::{AsyncRead, ReadBuf};

const CHILD: &str = "RELAY_MAILBOX_CRASH_CHILD_DIR";
const TEST: &str = "messages_committed_before_a_crash_survive_it";

fn tx_id(i: u8) -> String {
    format!("00000000-0000-4000-8000-0000000000{i:02}")
}

fn body(i: u8) -> Vec<u8> {
    (0..(i as usize + 1) * 100_000)
        .map(|p| (p % 253) as u8 ^ i)
        .collect()
}

fn open(dir: &Path) -> RedbStore {
    let kek = KeyFile::open_or_create(dir.join("kek")).unwrap();
    let options = StoreOptions {
        clock: Arc::new(ManualClock::new(t0())),
        ..StoreOptions::default()
    };
    RedbStore::open_with(dir.join("mailbox.redb"), Arc::new(kek), options).unwrap()
}

fn message(i: u8) -> MessageLabel {
    let mut l = label("1111111111");
    l.tx_id = tx_id(i);
    l
}

/// Streams pattern bytes, and kills the whole process once `kill_after` bytes
/// have been handed out (after several staging commits).
struct KillingBody {
    sent: usize,
    kill_after: usize,
}

impl AsyncRead for KillingBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.sent >= self.kill_after {
            let pid = std::process::id().to_string();
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            // SIGKILL is not deliverable late; this line is never passed.
            std::thread::sleep(std::time::Duration::from_secs(60));
            unreachable!("SIGKILL did not arrive");
        }
        let n = buf.remaining().min(8192);
        buf.put_slice(&vec![0x5a; n]);
        self.sent += n;
        Poll::Ready(Ok(()))
    }
}

async fn child(dir: &Path) -> ! {
    let store = open(dir);
    let ob = outbox("1111111111");
    for i in 0..5 {
        store.put(message(i), &body(i)[..]).await.unwrap();
    }
    for i in 0..4 {
        store
            .mark_processed(&tx_id(i), MessageState::Received)
            .await
            .unwrap();
    }
    // m1 is being fetched when the process dies; m2 was acknowledged (deleted).
    let held = store.fetch(&ob, &tx_id(1)).await.unwrap();
    store.ack(&ob, &tx_id(2)).await.unwrap();
    // m5 dies mid-stream, 3 MiB in.
    let _ = store
        .put(
            message(5),
            KillingBody {
                sent: 0,
                kill_after: 3 << 20,
            },
        )
        .await;
    drop(held);
    unreachable!("the put above kills the process");
}

#[test]
fn messages_committed_before_a_crash_survive_it() {
    if let Ok(dir) = std::env::var(CHILD) {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(child(Path::new(&dir)));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, dir.path())
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the child must die by SIGKILL: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Before recovery: m5's key is in its slot, and maybe staged chunks in the store.
    let used_slots = |path: &Path| {
        let slots = std::fs::read(path).unwrap();
        slots.chunks(128).skip(1).filter(|s| s[0] == 1).count()
    };
    assert_eq!(used_slots(&dir.path().join("mailbox.redb.keys")), 5);

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = open(dir.path());
        let ob = outbox("1111111111");
        let stats = store.stats().await.unwrap();
        assert_eq!(stats.messages, 4, "m0, m1, m3, m4");
        assert!(store.get_meta(&tx_id(2)).await.unwrap().is_none());
        assert!(store.get_meta(&tx_id(5)).await.unwrap().is_none());
        // The half-streamed message's key was erased with it.
        let keys: usize = store.kek_usage().await.unwrap().values().sum();
        assert_eq!(keys, 4);
        assert_eq!(used_slots(&store.key_slot_path()), 4);

        // The fetch lock died with the process.
        let listed: Vec<String> = store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.label.tx_id)
            .collect();
        assert_eq!(listed, [tx_id(0), tx_id(1), tx_id(3)]);
        let pending = store.pending_processing().await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].tx_id(), tx_id(4));

        for i in [0, 1, 3] {
            let mut h = store.fetch(&ob, &tx_id(i)).await.unwrap();
            let got = read_all(h.body().unwrap()).await.unwrap();
            assert!(got == body(i), "body of m{i} intact");
            h.complete().await.unwrap();
        }
        // The store takes new messages as before.
        store.put(message(6), &b"after"[..]).await.unwrap();
    });
}
