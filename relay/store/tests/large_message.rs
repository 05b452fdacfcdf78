//! A large message through two PostgreSQL nodes: in through one, out through the
//! other, content checked by SHA-256, and the process's peak memory measured. The
//! body is generated while it streams and hashed while it streams back, so the
//! test itself holds no copy; what the peak grows by is the store's doing.
//!
//! Alone in its binary on purpose: the peak (VmHWM) is per process.
//!
//! 64 MiB by default; `SHS_LARGE_MESSAGE_MB=100 cargo test -p relay-store --release
//! --test large_message -- --nocapture` moves 100 MiB and prints the figures
//! (debug builds seal and open chunks unoptimised: the crypto is monomorphised in
//! `relay-mailbox`, a workspace crate).

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use std::pin::Pin;
use std::task::{Context, Poll};

use relay_mailbox::{MailboxStore, MessageState, PutOutcome};
use sha2::{Digest, Sha256};
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

fn message_bytes() -> u64 {
    let mib = std::env::var("SHS_LARGE_MESSAGE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(64);
    mib * 1024 * 1024
}

/// A deterministic pseudo-random body of `left` bytes (xorshift), hashed as read.
struct Generated {
    state: u64,
    left: u64,
    hash: Sha256,
}

impl Generated {
    fn new(len: u64) -> Self {
        Self {
            state: 0x9E37_79B9_7F4A_7C15,
            left: len,
            hash: Sha256::new(),
        }
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(16 * 1024) as usize;
        let mut out = vec![0u8; n];
        for b in out.chunks_mut(8) {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            let bytes = x.to_le_bytes();
            b.copy_from_slice(&bytes[..b.len()]);
        }
        self.hash.update(&out);
        self.left -= n as u64;
        buf.put_slice(&out);
        Poll::Ready(Ok(()))
    }
}

fn expected_digest(len: u64) -> Vec<u8> {
    let mut g = Generated::new(len);
    let mut buf = vec![0u8; 16 * 1024];
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    loop {
        let mut rb = ReadBuf::new(&mut buf);
        let _ = Pin::new(&mut g).poll_read(&mut cx, &mut rb);
        if rb.filled().is_empty() {
            break;
        }
    }
    g.hash.finalize().to_vec()
}

/// Peak and current resident memory of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_moves_through_two_postgres_nodes_in_bounded_memory() {
    let message_bytes = message_bytes();
    let c = Cluster::postgres().await;
    let b = c.node().await;
    let ob = outbox("1111111111");

    // Warm up both pools and code paths with a small message first.
    let warm = label("1111111111");
    c.a().put(warm.clone(), &[7u8; 300_000][..]).await.unwrap();
    c.a()
        .mark_processed(&warm.tx_id, MessageState::Received)
        .await
        .unwrap();
    let mut h = b.fetch(&ob, &warm.tx_id).await.unwrap();
    read_all(h.body().unwrap()).await.unwrap();
    h.complete().await.unwrap();

    let expected = expected_digest(message_bytes);
    let (peak_before, rss_before) = memory_kib();
    let l = label("1111111111");
    let started = std::time::Instant::now();
    let outcome = c
        .a()
        .put(l.clone(), Generated::new(message_bytes))
        .await
        .unwrap();
    assert!(matches!(outcome, PutOutcome::Stored { .. }));
    let put_took = started.elapsed();
    let (peak_after_put, _) = memory_kib();
    b.mark_processed(&l.tx_id, MessageState::Received)
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let mut h = b.fetch(&ob, &l.tx_id).await.unwrap();
    assert_eq!(h.meta().body_bytes, message_bytes);
    let body = h.body().unwrap();
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = body.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        total += n as u64;
    }
    h.complete().await.unwrap();
    let fetch_took = started.elapsed();
    let (peak_after_fetch, rss_after) = memory_kib();

    assert_eq!(total, message_bytes);
    assert!(
        hash.finalize().to_vec() == expected,
        "content digest differs"
    );
    let growth_mib = (peak_after_fetch.saturating_sub(peak_before)) as f64 / 1024.0;
    eprintln!(
        "{} MiB through PostgreSQL: put {:.1} s, fetch {:.1} s; peak RSS {} -> {} (after put) -> {} KiB \
         (growth {growth_mib:.1} MiB); RSS {rss_before} -> {rss_after} KiB",
        message_bytes / (1024 * 1024),
        put_took.as_secs_f64(),
        fetch_took.as_secs_f64(),
        peak_before,
        peak_after_put,
        peak_after_fetch,
    );
    assert!(
        growth_mib < 24.0,
        "peak memory grew by {growth_mib:.1} MiB for a {} MiB message",
        message_bytes / (1024 * 1024)
    );
    c.a().ack(&ob, &l.tx_id).await.unwrap();
    c.finish().await;
}
