//! The admin listener with operator certificates (`[admin] client_ca`): only
//! clients with a certificate from the operator CA complete the handshake, and
//! the audit trail names the operator from the certificate.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::path::Path;
use std::time::{Duration, Instant};

use relay_pki::{DevCa, Subject};
use tokio_util::sync::CancellationToken;

fn subject(cn: &str) -> Subject<'_> {
    Subject {
        serial_number: None,
        organisation: Some("Drift"),
        common_name: cn,
    }
}

/// The relay's PKI (front and providers), a separate operator CA with one
/// operator, and a relay configuration whose admin listener requires it.
fn setup(dir: &Path) -> std::path::PathBuf {
    relay_pki::tls::install_crypto_provider();
    let service = DevCa::new("service CA").unwrap();
    service.as_issued().write(dir, "ca").unwrap();
    service
        .server_cert("shs-relay", &["localhost", "127.0.0.1"])
        .unwrap()
        .write(dir, "relay")
        .unwrap();
    // A certificate the front would accept, but not an operator's.
    service
        .client_cert(&subject("ops-mallory"))
        .unwrap()
        .write(dir, "not-operator")
        .unwrap();
    let operators = DevCa::new("operator CA").unwrap();
    operators.as_issued().write(dir, "operator-ca").unwrap();
    operators
        .client_cert(&subject("ops-eva"))
        .unwrap()
        .write(dir, "eva")
        .unwrap();
    let p = |f: &str| dir.join(f).display().to_string();
    let text = format!(
        "[node]\nid = \"n\"\norg = \"2021005489\"\nenvironment = \"test\"\n\n[front]\nlisten = \"127.0.0.1:0\"\ncert = \"{relay}\"\nkey = \"{relay_key}\"\nclient_ca = \"{ca}\"\n\n[products]\nssbtek = \"6f1c3b57-4f0a-4e0e-9a59-55b7e5a0c0d1\"\n\n[provider_tls]\nca = \"{ca}\"\ncert = \"{relay}\"\nkey = \"{relay_key}\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\nclient_ca = \"{operator_ca}\"\n\n[audit]\ndir = \"{audit}\"\nkey_file = \"{audit}/pseudonym.key\"\n",
        relay = p("relay.pem"),
        relay_key = p("relay-key.pem"),
        ca = p("ca.pem"),
        operator_ca = p("operator-ca.pem"),
        audit = p("audit"),
    );
    let file = dir.join("relay.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn client(dir: &Path, identity: Option<&str>) -> reqwest::Client {
    let cert = identity.map(|stem| {
        (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}-key.pem")),
        )
    });
    let tls = relay_pki::tls::client_config(
        &dir.join("ca.pem"),
        cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        &[b"http/1.1"],
    )
    .unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_operator_certificates_reach_the_admin_listener_and_the_audit_names_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = relay_server::config::Config::load(&setup(d)).unwrap();
    let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}", admin.local_addr().unwrap().port());
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(relay_server::run_with_admin(
        config,
        front,
        Some(admin),
        shutdown.clone(),
    ));

    // No certificate, or one from another CA: the handshake fails.
    for identity in [None, Some("not-operator")] {
        let r = client(d, identity).get(format!("{url}/livez")).send().await;
        assert!(r.is_err(), "{identity:?} must not get through: {r:?}");
    }
    // Plain HTTP does not reach the admin endpoints either.
    let plain = reqwest::Client::new()
        .get(url.replace("https://", "http://") + "/livez")
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    // The operator's certificate works; the audit names its CN.
    let eva = client(d, Some("eva"));
    let r = eva.get(format!("{url}/livez")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = eva
        .post(format!("{url}/admin/maintenance/on"))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A header cannot replace the certificate's name, only add to it.
    let r = eva
        .post(format!("{url}/admin/maintenance/off"))
        .header("X-SHS-Admin", "1")
        .header("X-Operator", "ops-mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let audit = d.join("audit").join("audit.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        let admin: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v: &serde_json::Value| v["kind"] == "admin")
            .collect();
        if admin.len() >= 2 {
            let who: Vec<(&str, &str)> = admin
                .iter()
                .map(|v| {
                    (
                        v["action"].as_str().unwrap_or(""),
                        v["who"].as_str().unwrap_or(""),
                    )
                })
                .collect();
            assert_eq!(
                who,
                [
                    ("maintenance_on", "ops-eva"),
                    ("maintenance_off", "ops-eva (X-Operator: ops-mallory)")
                ],
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "admin actions not audited: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), relay).await;
}
