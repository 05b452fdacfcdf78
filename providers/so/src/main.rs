//! `shs-adapter-so --config so.toml`: the Arbetslöshetskassornas samorganisation adapter.

fn main() -> std::process::ExitCode {
    providers_sdk::main_with(providers_so::SoBackend::new)
}
