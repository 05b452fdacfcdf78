//! `shs-adapter-miv --config miv.toml`: the Migrationsverket adapter.

fn main() -> std::process::ExitCode {
    providers_sdk::main_with(providers_miv::MivBackend::new)
}
