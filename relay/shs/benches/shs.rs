//! `cargo bench -p relay-shs`: label parse/write and streaming MIME parse.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use relay_shs::{
    ContentBody, DataRef, Label, Limits, MessageReader, ProductId, SequenceType, TransferType,
};

fn main() {
    divan::main();
}

fn label() -> Label {
    let mut l = Label::new(
        "2120002411",
        Some("2021005489"),
        ProductId::Uuid(uuid::Uuid::nil()),
        SequenceType::Request,
        TransferType::Synch,
    );
    l.subject = Some("Förfrågan ekonomiskt bistånd".into());
    l.content.body = ContentBody::Data(vec![DataRef {
        datapart_type: "xml".into(),
        ..DataRef::default()
    }]);
    l
}

fn message(size: usize) -> Vec<u8> {
    let mut bytes = b"Content-Type: multipart/mixed; boundary=bench\r\n\r\n--bench\r\nContent-Type: text/xml\r\n\r\n".to_vec();
    bytes.extend_from_slice(&label().to_xml());
    bytes.extend_from_slice(b"\r\n--bench\r\nContent-Type: application/octet-stream\r\n\r\n");
    bytes.extend((0..size).map(|i| (i % 251) as u8));
    bytes.extend_from_slice(b"\r\n--bench--\r\n");
    bytes
}

#[divan::bench]
fn label_parse(b: divan::Bencher) {
    let xml = label().to_xml();
    b.bench(|| Label::parse(divan::black_box(&xml)).unwrap());
}

#[divan::bench]
fn label_write(b: divan::Bencher) {
    let l = label();
    b.bench(|| divan::black_box(&l).to_xml());
}

fn stream(bytes: &[u8]) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut r, _) = MessageReader::open(bytes, None, Limits::default())
            .await
            .unwrap();
        r.next_part().await.unwrap().unwrap();
        let mut n = 0;
        while let Some(c) = r.read_chunk().await.unwrap() {
            n += c.len();
        }
        n
    })
}

#[divan::bench(sample_count = 20)]
fn mime_parse_1mb(b: divan::Bencher) {
    let bytes = message(1024 * 1024);
    b.counter(divan::counter::BytesCount::new(bytes.len()))
        .bench(|| stream(&bytes));
}

#[divan::bench(sample_count = 3)]
fn mime_parse_100mb(b: divan::Bencher) {
    let bytes = message(100 * 1024 * 1024);
    b.counter(divan::counter::BytesCount::new(bytes.len()))
        .bench(|| stream(&bytes));
}
