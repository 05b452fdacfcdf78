//! Adapters on loopback for tests of the provider pool: a development PKI made
//! at run time and a relay configuration naming the adapters' endpoints.

use std::path::Path;

use relay_pki::{DevCa, Subject};
use relay_server::config::Config;

/// Writes `ca.pem`, `adapter.pem`/`adapter-key.pem`, `relay.pem`/`relay-key.pem`
/// and `client.pem`/`client-key.pem` (all for `localhost`) into `dir`.
pub fn pki(dir: &Path) {
    relay_pki::tls::install_crypto_provider();
    let ca = DevCa::new("test CA").unwrap();
    ca.as_issued().write(dir, "ca").unwrap();
    ca.server_cert("adapter", &["localhost"])
        .unwrap()
        .write(dir, "adapter")
        .unwrap();
    ca.server_cert("shs-relay", &["localhost"])
        .unwrap()
        .write(dir, "relay")
        .unwrap();
    ca.client_cert(&Subject {
        serial_number: Some("2120002411"),
        organisation: None,
        common_name: "client",
    })
    .unwrap()
    .write(dir, "client")
    .unwrap();
}

/// A relay configuration with one provider, `FK`, at `urls`: `endpoint` for
/// one, `endpoints` for several replicas.
pub fn relay_config(dir: &Path, urls: &[String]) -> Config {
    let p = |f: &str| dir.join(f).display().to_string();
    let endpoints = match urls {
        [one] => format!("endpoint = {one:?}"),
        many => format!("endpoints = {many:?}"),
    };
    let text = format!(
        "[node]\nid = \"n\"\norg = \"2021005489\"\nenvironment = \"test\"\n\n[front]\nlisten = \"127.0.0.1:0\"\ncert = \"{relay}\"\nkey = \"{relay_key}\"\nclient_ca = \"{ca}\"\n\n[products]\nssbtek = \"6f1c3b57-4f0a-4e0e-9a59-55b7e5a0c0d1\"\n\n[provider_tls]\nca = \"{ca}\"\ncert = \"{relay}\"\nkey = \"{relay_key}\"\n\n[[providers]]\nid = \"FK\"\n{endpoints}\ntls_name = \"localhost\"\ntimeout_ms = 30000\n",
        relay = p("relay.pem"),
        relay_key = p("relay-key.pem"),
        ca = p("ca.pem"),
    );
    let file = dir.join("relay.toml");
    std::fs::write(&file, text).unwrap();
    Config::load(&file).unwrap()
}
