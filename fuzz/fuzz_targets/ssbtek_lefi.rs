//! FK's LEFI JSON request, as the question reader checks it.
#![no_main]
use std::sync::LazyLock;

static PERSON: LazyLock<Option<relay_ident::Personnummer>> =
    LazyLock::new(|| relay_ident::Personnummer::parse("191212121212").ok());

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(person) = *PERSON {
        let limits = relay_ssbtek::ValidationLimits::default();
        let _ = relay_ssbtek::lefi::check_request(data, person, &limits);
    }
});
