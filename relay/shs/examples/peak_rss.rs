//! Streams a 100 MB data part through the SHS parser from a generated reader (the
//! message is never held in memory) and prints the peak RSS:
//! `cargo run --release -p relay-shs --example peak_rss`.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::pin::Pin;
use std::task::{Context, Poll};

use relay_shs::{
    ContentBody, DataRef, Label, Limits, MessageReader, ProductId, SequenceType, TransferType,
};
use tokio::io::{AsyncRead, ReadBuf};

/// Head, then `body` bytes of generated data, then the tail.
struct Generated {
    head: Vec<u8>,
    body: u64,
    tail: Vec<u8>,
    pos: u64,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let head = self.head.len() as u64;
        let total = head + self.body + self.tail.len() as u64;
        while buf.remaining() > 0 && self.pos < total {
            let p = self.pos;
            if p < head {
                let n = ((head - p) as usize).min(buf.remaining());
                buf.put_slice(&self.head[p as usize..p as usize + n]);
                self.pos += n as u64;
            } else if p < head + self.body {
                let n = ((head + self.body - p) as usize).min(buf.remaining());
                let chunk: Vec<u8> = (0..n).map(|i| ((p as usize + i) % 251) as u8).collect();
                buf.put_slice(&chunk);
                self.pos += n as u64;
            } else {
                let t = (p - head - self.body) as usize;
                let n = (self.tail.len() - t).min(buf.remaining());
                buf.put_slice(&self.tail[t..t + n]);
                self.pos += n as u64;
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut label = Label::new(
        "2120002411",
        Some("2021005489"),
        ProductId::Uuid(uuid::Uuid::nil()),
        SequenceType::Request,
        TransferType::Asynch,
    );
    label.content.body = ContentBody::Data(vec![DataRef {
        datapart_type: "bin".into(),
        ..DataRef::default()
    }]);
    let mut head = b"Content-Type: multipart/mixed; boundary=rss\r\n\r\n--rss\r\nContent-Type: text/xml\r\n\r\n".to_vec();
    head.extend_from_slice(&label.to_xml());
    head.extend_from_slice(b"\r\n--rss\r\nContent-Type: application/octet-stream\r\n\r\n");
    let size: u64 = 100 * 1024 * 1024;
    let reader = Generated {
        head,
        body: size,
        tail: b"\r\n--rss--\r\n".to_vec(),
        pos: 0,
    };
    let before = vm_hwm_kb();
    let started = std::time::Instant::now();
    let (mut r, _) = MessageReader::open(reader, None, Limits::default())
        .await
        .unwrap();
    r.next_part().await.unwrap().unwrap();
    let mut total = 0u64;
    while let Some(c) = r.read_chunk().await.unwrap() {
        total += c.len() as u64;
    }
    assert_eq!(total, size);
    println!(
        "streamed {} MB data part in {:.2?}; peak RSS {} MB (before parsing: {} MB)",
        size / (1024 * 1024),
        started.elapsed(),
        vm_hwm_kb() / 1024,
        before / 1024
    );
}
