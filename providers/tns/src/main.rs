//! `shs-adapter-tns --config tns.toml`: the Transportstyrelsen adapter.

fn main() -> std::process::ExitCode {
    providers_sdk::main_with(providers_tns::TnsBackend::new)
}
