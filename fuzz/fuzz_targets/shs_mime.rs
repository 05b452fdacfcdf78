//! The SHS MIME container, read whole (label and every part) with the default limits.
#![no_main]
use std::sync::LazyLock;

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("no runtime: {e}"))
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = relay_shs::Limits::default();
    let _ = RT.block_on(relay_shs::ShsMessage::parse(data, None, limits));
    let _ = RT.block_on(relay_shs::ShsMessage::parse(
        data,
        Some("multipart/mixed; boundary=b"),
        limits,
    ));
});
