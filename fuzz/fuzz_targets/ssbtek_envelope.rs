//! The SSBTEK SOAP envelope: the operation, then the question inside the Body.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = relay_ssbtek::ValidationLimits::default();
    let _ = relay_ssbtek::read_envelope(data, &limits);
    let _ = relay_ssbtek::Question::parse_element(data, &limits);
});
