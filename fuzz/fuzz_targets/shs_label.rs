//! The SHS label: the whole-document reader and the RS fast path.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = relay_shs::Label::parse(data);
    let _ = relay_shs::Label::from_message_prefix(data);
});
