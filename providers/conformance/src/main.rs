//! `shs-conformance --endpoint URL --ca CA --cert CERT --key KEY --slot SLOT`:
//! checks a provider adapter against the provider contract (see the crate docs).

fn main() -> std::process::ExitCode {
    providers_conformance::main()
}
