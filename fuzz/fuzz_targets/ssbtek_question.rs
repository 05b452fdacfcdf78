//! The SSBTEK question as an SHS data part (document element `hamtaBastjanstInformation`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = relay_ssbtek::Question::parse(data);
});
