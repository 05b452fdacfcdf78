//! The `SkickaTidredovisning` SOAP request envelope and the response reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = relay_elt::soap::parse_request(data);
    let _ = relay_elt::soap::parse_response(data);
});
