//! `shs-adapter-skv --config skv.toml`: the Skatteverket adapter.

fn main() -> std::process::ExitCode {
    providers_sdk::main_with(providers_skv::SkvBackend::new)
}
