//! `shs-adapter-fk --config fk.toml`: the Försäkringskassan (med Pensionsmyndigheten) adapter.

fn main() -> std::process::ExitCode {
    providers_sdk::main_with(providers_fk::FkBackend::new)
}
