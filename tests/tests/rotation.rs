//! Certificates are renewed without a stop: the front's, the relay's client
//! certificate towards the adapters and the adapters' own are replaced and
//! reloaded while load runs; no request fails, new handshakes get the new
//! certificates, and a broken file is refused while the old one stays.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use relay_ssbtek::Slot;
use shs_tests::*;

/// A new certificate for `stem` (`relay`, `adapter-tns`, ...) from the demo CA,
/// written over the old files; its DER.
fn renew(pki: &Path, stem: &str, cn: &str) -> Vec<u8> {
    let ca = relay_pki::DevCa::load(
        &std::fs::read_to_string(pki.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(pki.join("ca-key.pem")).unwrap(),
    )
    .unwrap();
    let issued = ca.server_cert(cn, &["localhost", "127.0.0.1"]).unwrap();
    issued.write(pki, stem).unwrap();
    der_of(&pki.join(format!("{stem}.pem")))
}

fn der_of(pem: &Path) -> Vec<u8> {
    relay_pki::tls::load_certs(pem).unwrap()[0].to_vec()
}

/// The certificate a new TLS handshake with `url` (`https://host:port`) gets.
async fn served_certificate(url: &str, pki: &Path, alpn: &[u8]) -> Vec<u8> {
    let config = relay_pki::tls::client_config(
        &pki.join("ca.pem"),
        Some((
            &pki.join("client-2120002411.pem"),
            &pki.join("client-2120002411-key.pem"),
        )),
        &[alpn],
    )
    .unwrap();
    let addr = url.trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn hup(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

async fn reload(admin: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{admin}/admin/reload"))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_renewed_under_load_fail_no_request_and_new_handshakes_get_them() {
    let stack = Stack::start().await;
    let pki: PathBuf = stack.demo().info.relay.ca.parent().unwrap().to_owned();
    let admin = stack.demo().info.admin["url"].clone();
    let url = stack.relay_url().to_owned();
    let tns_url = stack
        .demo()
        .info
        .providers
        .iter()
        .find(|p| p.id == "TNS")
        .unwrap()
        .url
        .clone();
    let (ca, client) = {
        let c = stack.client_info("2120002411");
        (stack.demo().info.relay.ca.clone(), (c.cert, c.key))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let q = question("191212121212", "2120002411", &[Slot::Tns, Slot::Csn], false);
    // Load: 16 callers, each on a kept-alive connection that it replaces every
    // few requests, so open connections and new handshakes both run through
    // every rotation.
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (stop, answered, failed, q, url, ca, client) = (
                stop.clone(),
                answered.clone(),
                failed.clone(),
                q.clone(),
                url.clone(),
                ca.clone(),
                client.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0u64;
                let mut http = https_client(&ca, Some((&client.0, &client.1)));
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    if n.is_multiple_of(4) {
                        http = https_client(&ca, Some((&client.0, &client.1)));
                    }
                    let spec = LabelSpec::synch_request(
                        "2120002411",
                        relay_demo::NODE_ORG,
                        relay_demo::SSBTEK_PRODUCT,
                        1,
                    );
                    let message = shs_message(&spec.to_xml(), &[("text/xml; charset=UTF-8", &q)]);
                    let r = http
                        .post(format!("{url}/shs/rs"))
                        .header("Content-Type", "message/rfc822")
                        .body(message)
                        .send()
                        .await;
                    match r {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                            let text = String::from_utf8_lossy(&body);
                            // A slot the relay could not fill says SSBT-...
                            if status == 200 && !text.contains("SSBT-") {
                                answered.fetch_add(1, Ordering::Relaxed);
                            } else {
                                failed.lock().unwrap().push(format!(
                                    "{status}: {}",
                                    text.chars().take(300).collect::<String>()
                                ));
                            }
                        }
                        Err(e) => failed.lock().unwrap().push(format!("{e:?}")),
                    }
                }
            })
        })
        .collect();
    let wait_for = |more: u64| {
        let answered = answered.clone();
        async move {
            let target = answered.load(Ordering::Relaxed) + more;
            let deadline = Instant::now() + Duration::from_secs(120);
            while answered.load(Ordering::Relaxed) < target {
                assert!(Instant::now() < deadline, "load stalled");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(30).await;

    // The relay's certificate (its front and its client certificate towards
    // the adapters): new files, one reload.
    let old_front = served_certificate(&url, &pki, b"http/1.1").await;
    let new_front = renew(&pki, "relay", "shs-relay");
    assert_ne!(old_front, new_front);
    let (status, body) = reload(&admin).await;
    assert_eq!(status, 200, "{body}");
    wait_for(30).await;
    assert_eq!(served_certificate(&url, &pki, b"http/1.1").await, new_front);

    // The adapters' server certificates: new files, SIGHUP; then a relay
    // reload so the relay opens new connections to them.
    let old_tns = served_certificate(&tns_url, &pki, b"h2").await;
    let new_tns = renew(&pki, "adapter-tns", "adapter-tns");
    renew(&pki, "adapter-csn", "adapter-csn");
    for bin in ["shs-adapter-tns", "shs-adapter-csn"] {
        hup(stack.demo().pid_of(bin).expect("adapter running"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while served_certificate(&tns_url, &pki, b"h2").await != new_tns {
        assert!(
            Instant::now() < deadline,
            "the adapter still serves its old certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(old_tns, new_tns);
    let (status, body) = reload(&admin).await;
    assert_eq!(status, 200, "{body}");
    wait_for(30).await;

    // A broken file is refused, named, and changes nothing.
    let good = std::fs::read(pki.join("relay.pem")).unwrap();
    std::fs::write(
        pki.join("relay.pem"),
        b"-----BEGIN CERTIFICATE-----\nnot a certificate\n",
    )
    .unwrap();
    let (status, body) = reload(&admin).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(&pki.join("relay.pem").display().to_string()),
        "{body}"
    );
    let good_tns = std::fs::read(pki.join("adapter-tns.pem")).unwrap();
    std::fs::write(pki.join("adapter-tns.pem"), b"garbage").unwrap();
    hup(stack.demo().pid_of("shs-adapter-tns").unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served_certificate(&url, &pki, b"http/1.1").await, new_front);
    assert_eq!(served_certificate(&tns_url, &pki, b"h2").await, new_tns);
    wait_for(30).await;
    std::fs::write(pki.join("relay.pem"), good).unwrap();
    std::fs::write(pki.join("adapter-tns.pem"), good_tns).unwrap();

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        failed.len() as u64 + answered.load(Ordering::Relaxed),
        &failed[..failed.len().min(5)]
    );
    assert!(stack.all_logs().contains("TLS reload refused"));
    stack.stop().await;
}
