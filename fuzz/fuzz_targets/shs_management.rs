//! `shs.management` documents (confirm and error bodies).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = relay_shs::Management::parse(data);
});
