//! An in-process relay for tests of the request pipeline: a real configuration
//! file, real certificates (a development CA made at run time), the real redb
//! mailbox and audit trail, and the real router, called with `tower::oneshot`
//! and the caller's certificate attached as the front attaches it. No child
//! processes and no providers (every provider slot answers `SSBT-UNAVAILABLE`).

#![allow(dead_code)]

pub mod adapters;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use relay_pki::{DevCa, Subject};
use relay_server::Relay;
use relay_server::config::Config;
use relay_server::identity::PeerCert;
use tower::ServiceExt;

pub const NODE: &str = "2021005489";
pub const SUNDSVALL: &str = "2120002411";
pub const STOCKHOLM: &str = "2120000142";
/// A municipality with an agreement for ping only.
pub const GOTEBORG: &str = "2120001355";
pub const PROCESSOR: &str = "5566778899";
pub const VENDOR: &str = "5566770011";
/// An organisation without any agreement.
pub const STRANGER: &str = "5560360793";
pub const SSBTEK: &str = "6f1c3b57-4f0a-4e0e-9a59-55b7e5a0c0d1";
pub const PING: &str = "00000000-0000-0000-0000-000000000000";
pub const ELT: &str = "3e9a8f52-6b1d-4c7e-a0f4-2d5b8c9e7a13";
pub const DIRECT: &str = "3f8b1c2e-6a41-4c1e-9d2a-0b6f4f3f5a10";

pub struct Kit {
    pub dir: tempfile::TempDir,
    pub relay: Arc<Relay>,
    certs: HashMap<&'static str, Vec<u8>>,
}

/// A response, read whole.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn shs_error(&self) -> Option<&str> {
        self.headers
            .get("X-shs-errorcode")
            .and_then(|v| v.to_str().ok())
    }
}

impl Kit {
    pub async fn new() -> Kit {
        Self::with_extra("").await
    }

    /// With extra TOML appended to the configuration (in its `[elt]` section).
    pub async fn with_extra(extra: &str) -> Kit {
        Self::build("", extra).await
    }

    /// With `front.public_url` set.
    pub async fn with_public_url(url: &str) -> Kit {
        Self::build(&format!("public_url = \"{url}\""), "").await
    }

    async fn build(front_extra: &str, extra: &str) -> Kit {
        relay_pki::tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::new("test CA").unwrap();
        let server = ca.server_cert("relay", &["localhost"]).unwrap();
        let files = server.write(dir.path(), "relay").unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        let mut certs = HashMap::new();
        for org in [SUNDSVALL, STOCKHOLM, GOTEBORG, PROCESSOR, VENDOR, STRANGER] {
            let issued = ca
                .client_cert(&Subject {
                    serial_number: Some(org),
                    organisation: None,
                    common_name: org,
                })
                .unwrap();
            let der = relay_pki::tls::parse_certs(issued.cert_pem.as_bytes(), Path::new("mem"))
                .unwrap()
                .remove(0)
                .to_vec();
            certs.insert(org, der);
        }
        let p = |f: &Path| format!("{:?}", f.display().to_string());
        let d = dir.path();
        let text = format!(
            r#"
[node]
id = "test-node"
org = "{NODE}"
environment = "test"

[front]
listen = "127.0.0.1:0"
cert = {cert}
key = {key}
client_ca = {ca}
{front_extra}

[limits]
max_in_flight = 32
read_timeout_ms = 5000
label_timeout_ms = 5000

[products]
ssbtek = "{SSBTEK}"
ping = "{PING}"
elt = "{ELT}"

[provider_tls]
ca = {ca}
cert = {cert}
key = {key}

[mailbox]
store = {store}
key_file = {kek}
max_messages_per_outbox = 3

[audit]
dir = {audit}
key_file = {audit_key}

[[agreements]]
org = "{SUNDSVALL}"
products = ["ssbtek", "ping"]
direct_products = ["{DIRECT}"]

[[agreements]]
org = "{STOCKHOLM}"
products = ["ssbtek", "ping"]
direct_products = ["{DIRECT}"]

[[agreements]]
org = "{GOTEBORG}"
products = ["ping"]

[[agreements]]
org = "{PROCESSOR}"
products = ["ssbtek", "ping"]

[[processors]]
org = "{PROCESSOR}"
for = ["{SUNDSVALL}", "{GOTEBORG}"]

[[agreements]]
org = "{VENDOR}"
products = ["elt", "ping"]

# An adapter nobody listens for: every call to it is SSBT-UNAVAILABLE.
[[providers]]
id = "FK"
endpoint = "https://127.0.0.1:9"
timeout_ms = 1000

[elt]
provider = "FK"
{extra}
"#,
            cert = p(&files.cert),
            key = p(&files.key),
            ca = p(&d.join("ca.pem")),
            store = p(&d.join("mailbox.redb")),
            kek = p(&d.join("kek.key")),
            audit = p(&d.join("audit")),
            audit_key = p(&d.join("pseudonym.key")),
        );
        if !d.join("kek.key").exists() {
            relay_mailbox::KeyFile::create(d.join("kek.key")).unwrap();
        }
        let path = d.join("relay.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        // On the test's runtime: the relay spawns its audit writer there.
        let relay = Arc::new(Relay::with_path(config, Some(path)).await.unwrap());
        Kit { dir, relay, certs }
    }

    /// Stops this relay and starts it again from the same configuration and
    /// store, loading the stored run-time decisions as `serve` does.
    pub async fn restart(self) -> Kit {
        let Kit { dir, relay, certs } = self;
        drop(relay);
        let path = dir.path().join("relay.toml");
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let relay = Arc::new(Relay::with_path(config, Some(path)).await.unwrap());
        relay_server::decisions::load(&relay).await.unwrap();
        Kit { dir, relay, certs }
    }

    /// One request from `org` (its certificate attached as the front attaches it).
    pub async fn call(
        &self,
        org: &str,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = http::Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let mut req = req.body(Body::from(body)).unwrap();
        if let Some(der) = self.certs.get(org) {
            req.extensions_mut().insert(PeerCert(Arc::new(der.clone())));
        }
        let response = relay_server::router(self.relay.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .unwrap()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// The audit trail's records once one satisfies `pred` (the writer is a
    /// task of its own); fails with the file's text after a generous wait.
    pub async fn audit_until(
        &self,
        pred: impl Fn(&relay_audit::AuditRecord) -> bool,
    ) -> Vec<relay_audit::AuditRecord> {
        let file = self.dir.path().join("audit").join("audit.jsonl");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let records: Vec<relay_audit::AuditRecord> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if records.iter().any(&pred) {
                return records;
            }
            assert!(std::time::Instant::now() < deadline, "{text}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `GET /shs/ds/{org}`: `org`'s own outbox, listed.
    pub async fn list(&self, org: &str) -> Answer {
        self.call(org, "GET", &format!("/shs/ds/{org}"), None, Vec::new())
            .await
    }

    /// `POST /shs/rs` with a message.
    pub async fn shs(&self, org: &str, message: Vec<u8>) -> Answer {
        self.call(org, "POST", "/shs/rs", Some("message/rfc822"), message)
            .await
    }

    /// `POST` a SOAP envelope to `path`.
    pub async fn soap(&self, org: &str, path: &str, envelope: Vec<u8>) -> Answer {
        self.call(org, "POST", path, Some("text/xml; charset=utf-8"), envelope)
            .await
    }
}

/// A label from `from` to `to` for `product`.
pub fn label(
    from: &str,
    to: &str,
    product: &str,
    transfer: relay_shs::TransferType,
    sequence: relay_shs::SequenceType,
) -> relay_shs::Label {
    relay_shs::Label::new(
        from,
        Some(to),
        relay_shs::ProductId::parse(product).unwrap(),
        sequence,
        transfer,
    )
}

/// A message with `parts` (text/xml data parts).
pub async fn message(label: relay_shs::Label, parts: &[&[u8]]) -> Vec<u8> {
    let parts = parts
        .iter()
        .map(|b| relay_shs::DataPart {
            headers: relay_shs::PartHeaders {
                mime_type: "text/xml".into(),
                charset: Some("UTF-8".into()),
                transfer_encoding: relay_shs::TransferEncoding::Binary,
                filename: None,
            },
            datapart_type: "xml".into(),
            body: bytes::Bytes::copy_from_slice(b),
        })
        .collect();
    relay_shs::ShsMessage { label, parts }.to_bytes().await
}

/// An SSBTEK question from `ingivare` (naming `processors`), as XML.
pub fn question(ingivare: &str, processors: &[&str]) -> Vec<u8> {
    use relay_ident::{Organisationsnummer, Personnummer};
    use relay_ssbtek::{Ingivare, Period, QuestionBuilder, Slot};
    let today = chrono::Local::now().date_naive();
    let period = Period::new(today - chrono::Months::new(3), today).unwrap();
    let person = Personnummer::parse("19121212-1212").unwrap();
    let mut b = QuestionBuilder::new(
        person,
        Ingivare::new(
            Organisationsnummer::parse(ingivare).unwrap(),
            "Kommun",
            "HL000001",
        ),
        "AID00000001",
        period,
    )
    .include_all([Slot::Csn, Slot::Tns]);
    for (i, p) in processors.iter().enumerate() {
        b = b.personuppgiftsbitrade(relay_ssbtek::question::Personuppgiftsbitrade::new(
            Some(i as i16 + 1),
            Organisationsnummer::parse(p).unwrap(),
            "Exempel Drift AB",
        ));
    }
    b.build().unwrap().to_xml(true).to_vec()
}

/// A SOAP 1.1 envelope around `body`.
pub fn envelope(body: &[u8]) -> Vec<u8> {
    let mut out = br#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#.to_vec();
    out.extend_from_slice(body);
    out.extend_from_slice(b"</soap:Body></soap:Envelope>");
    out
}

/// The question as the SOAP body's element (no XML declaration).
pub fn soap_question(ingivare: &str, processors: &[&str]) -> Vec<u8> {
    let xml = question(ingivare, processors);
    let text = String::from_utf8(xml).unwrap();
    let body = match text.find("?>") {
        Some(i) if text.starts_with("<?xml") => text[i + 2..].to_owned(),
        _ => text,
    };
    envelope(body.as_bytes())
}
