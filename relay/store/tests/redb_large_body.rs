//! A large body streams through `put` and `fetch` with bounded memory: peak
//! resident memory (VmHWM) grows by a small fraction of the body size.
//!
//! The test moves 5 MB; `RELAY_MAILBOX_BIG_MB=100 cargo test -p relay-store
//! --release --test redb_large_body -- --nocapture` moves 100 MB and prints the
//! figures. This file holds one test so no other test shares its process.

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

use std::pin::Pin;
use std::task::{Context, Poll};

use relay_mailbox::{MailboxStore, MessageState};
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// The byte at `pos` of the generated body: not periodic at chunk size.
fn byte_at(pos: u64) -> u8 {
    (pos ^ (pos >> 11) ^ (pos >> 19)).wrapping_mul(0x9e37_79b9) as u8
}

/// A body of `len` bytes produced on the fly, never held in memory.
struct Generated {
    pos: u64,
    len: u64,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.len - self.pos) as usize;
        let start = self.pos;
        let out = buf.initialize_unfilled_to(n);
        for (i, b) in out.iter_mut().enumerate() {
            *b = byte_at(start + i as u64);
        }
        buf.advance(n);
        self.pos += n as u64;
        Poll::Ready(Ok(()))
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Resets the peak-RSS counter (VmHWM) to the current RSS.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_streams_in_and_out_with_bounded_memory() {
    let mb: u64 = std::env::var("RELAY_MAILBOX_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let len = mb << 20;
    let f = Fixture::new();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();

    let started = std::time::Instant::now();
    reset_peak();
    let base = status_kib("VmRSS:");
    f.store.put(l, Generated { pos: 0, len }).await.unwrap();
    let put_peak = status_kib("VmHWM:");
    let put_time = started.elapsed();
    f.store
        .mark_processed(&tx_id, MessageState::Received)
        .await
        .unwrap();

    let started = std::time::Instant::now();
    reset_peak();
    let mut h = f.store.fetch(&outbox("1111111111"), &tx_id).await.unwrap();
    assert_eq!(h.meta().body_bytes, len);
    let body = h.body().unwrap();
    let mut buf = vec![0u8; 100_000];
    let mut pos = 0u64;
    loop {
        let n = body.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, byte_at(pos + i as u64), "byte {}", pos + i as u64);
        }
        pos += n as u64;
    }
    assert_eq!(pos, len);
    h.complete().await.unwrap();
    let fetch_peak = status_kib("VmHWM:");
    let fetch_time = started.elapsed();

    let grew_mib = |peak: u64| peak.saturating_sub(base) as f64 / 1024.0;
    println!(
        "{mb} MiB body: put {:.1}s, peak RSS +{:.1} MiB; fetch {:.1}s, peak RSS +{:.1} MiB (base {:.1} MiB)",
        put_time.as_secs_f64(),
        grew_mib(put_peak),
        fetch_time.as_secs_f64(),
        grew_mib(fetch_peak),
        base as f64 / 1024.0,
    );
    // What may grow is redb's page cache plus allocator slack: the body itself passes
    // through one staging batch (1 MiB) or read-ahead (256 KiB) at a time.
    let cache_mib = relay_store::redb::StoreOptions::default().cache_size as f64 / 1048576.0;
    let limit_mib = cache_mib + 16.0;
    assert!(
        grew_mib(put_peak) < limit_mib,
        "put grew RSS by {:.1} MiB",
        grew_mib(put_peak)
    );
    assert!(
        grew_mib(fetch_peak) < limit_mib,
        "fetch grew RSS by {:.1} MiB",
        grew_mib(fetch_peak)
    );
}
