//! `shs.message-list` documents.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = relay_shs::MessageList::parse(data);
});
