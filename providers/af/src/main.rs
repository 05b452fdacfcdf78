//! `shs-adapter-af --config af.toml`: the Arbetsförmedlingen adapter.

fn main() -> std::process::ExitCode {
    providers_sdk::main_with(providers_af::AfBackend::new)
}
