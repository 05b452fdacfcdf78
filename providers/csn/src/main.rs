//! `shs-adapter-csn --config csn.toml`: the Centrala studiestödsnämnden adapter.

fn main() -> std::process::ExitCode {
    providers_sdk::main_with(providers_csn::CsnBackend::new)
}
