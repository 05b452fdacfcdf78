//! The ELT time report (schema and rules), the batch count and the receipt.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = relay_elt::Report::parse(data);
    let _ = relay_elt::report::count_reports(data);
    let _ = relay_elt::Receipt::parse(data);
});
