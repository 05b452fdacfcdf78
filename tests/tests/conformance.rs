//! The provider conformance kit, as the real `shs-conformance` binary: against
//! the seven adapters and the SDK's example adapter with the simulator behind
//! them (every applicable case passes), and against a deliberately broken
//! adapter built here (wrong payload shape, ignores the deadline, accepts a
//! foreign CA, wrong contract version): exactly the expected cases fail. The
//! relay refuses the broken adapter for its contract version.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use providers_sdk::{AdapterConfig, Backend, QueryOutcome, proto};
use shs_tests::*;
use tokio::sync::Semaphore;

fn bin_dir() -> PathBuf {
    relay_demo::default_bin_dir().expect("bin dir")
}

/// Runs the kit; returns its exit code and case outcomes (name → outcome, reason).
async fn kit(
    stack: &Stack,
    endpoint: &str,
    slot: &str,
) -> (i32, BTreeMap<String, (String, String)>) {
    let run = shs_tests::conformance::run_kit(stack, endpoint, slot).await;
    (run.code, run.cases)
}

fn outcomes_except<'a>(
    cases: &'a BTreeMap<String, (String, String)>,
    outcome: &str,
) -> Vec<&'a str> {
    cases
        .iter()
        .filter(|(_, (o, _))| o != outcome)
        .map(|(n, _)| n.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kit_passes_the_seven_adapters_and_the_sdk_example() {
    let stack = Stack::start().await;
    let providers = stack.demo().info.providers.clone();
    for p in &providers {
        let (code, cases) = kit(&stack, &p.url, &p.id).await;
        let not_passed = outcomes_except(&cases, "pass");
        let expected_skips: &[&str] = if p.id == "FK" {
            &[]
        } else {
            &["submit.receipt", "submit.typed_refusal"]
        };
        assert_eq!(not_passed, expected_skips, "{}: {cases:#?}", p.id);
        for s in expected_skips {
            assert_eq!(cases[*s].0, "skipped", "{}: {cases:#?}", p.id);
        }
        assert_eq!(code, 0, "{}: exit status", p.id);
    }

    // The SDK's example adapter (no SSBTEK slot, no base service).
    let pki = stack.dir().join("pki");
    let config = stack.dir().join("echo.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nhealth_interval_ms = 100\n[tls]\ncert = {c:?}\nkey = {k:?}\nclient_ca = {ca:?}\n[backend]\nurl = \"https://127.0.0.1:1\"\n",
            c = pki.join("adapter-tns.pem"),
            k = pki.join("adapter-tns-key.pem"),
            ca = pki.join("ca.pem"),
        ),
    )
    .unwrap();
    let example = bin_dir().join("examples").join("echo_adapter");
    assert!(
        example.is_file(),
        "{} missing: cargo build --examples -p providers-sdk",
        example.display()
    );
    let mut child = tokio::process::Command::new(&example)
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let first = lines.next_line().await.unwrap().expect("the address line");
    let addr: serde_json::Value = serde_json::from_str(&first).unwrap();
    let url = format!("https://{}", addr["listen"].as_str().unwrap());
    let (code, cases) = kit(&stack, &url, "ECHO").await;
    assert_eq!(code, 0, "{cases:#?}");
    for (name, (outcome, reason)) in &cases {
        assert_ne!(outcome, "fail", "{name}: {reason}");
    }
    assert_eq!(cases["describe"].0, "pass");
    assert_eq!(cases["query.payload"].0, "pass");
    assert!(
        cases["deadline"]
            .1
            .contains("no base service for slot ECHO")
    );
    drop(child);
    stack.stop().await;
}

/// A TNS adapter that breaks the contract on purpose, served without the SDK:
/// wrong contract version, the whole response element as payload (wrong
/// shape), base-service work that runs on past the deadline (detached from
/// the call), and a TLS handshake that accepts client certificates from any CA.
struct Broken {
    backend: Arc<providers_tns::TnsBackend>,
    permits: Arc<Semaphore>,
    queries: Arc<std::sync::atomic::AtomicUsize>,
}

#[tonic::async_trait]
impl proto::provider_server::Provider for Broken {
    async fn describe(
        &self,
        _: tonic::Request<proto::DescribeRequest>,
    ) -> Result<tonic::Response<proto::DescribeReply>, tonic::Status> {
        Ok(tonic::Response::new(proto::DescribeReply {
            provider_id: "TNS".into(),
            display_name: "Trasiga Transportstyrelsen".into(),
            contract_version: "shs_relay.provider.v2".into(),
            adapter_version: "0.0.1".into(),
            operations: vec![proto::Operation::Query as i32],
            payload_format: "ssbtek-v10/TNS".into(),
            submit_document_types: Vec::new(),
            planned_maintenance: Vec::new(),
        }))
    }

    async fn query(
        &self,
        req: tonic::Request<proto::QueryRequest>,
    ) -> Result<tonic::Response<proto::QueryReply>, tonic::Status> {
        self.queries
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            return Err(tonic::Status::resource_exhausted("full"));
        };
        let traceparent = req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let backend = self.backend.clone();
        let q = req.into_inner();
        // Ignores the deadline: the work runs on, detached from the call.
        let work = tokio::spawn(async move {
            providers_sdk::with_base_service_traceparent(traceparent, backend.query(q)).await
        });
        let outcome = match work.await {
            Ok(Ok(QueryOutcome::Data { payload })) => {
                proto::query_reply::Outcome::Data(proto::QueryData {
                    format: "ssbtek-v10/TNS".into(),
                    // Wrong shape: the response element itself, not its content.
                    payload: format!(
                        "<tns:HamtaUppgifterResponse xmlns:tns=\"http://schema.transportstyrelsen.se/ssbtek/hamtauppgifterresponder/1\">{}</tns:HamtaUppgifterResponse>",
                        String::from_utf8_lossy(&payload)
                    )
                    .into_bytes(),
                })
            }
            Ok(Ok(QueryOutcome::ProviderError { code, messages })) => {
                proto::query_reply::Outcome::Error(proto::ProviderError { code, messages })
            }
            Ok(Err(e)) => return Err(tonic::Status::unavailable(e.to_string())),
            Err(_) => return Err(tonic::Status::internal("backend task failed")),
        };
        Ok(tonic::Response::new(proto::QueryReply {
            outcome: Some(outcome),
        }))
    }

    async fn submit(
        &self,
        _: tonic::Request<proto::SubmitRequest>,
    ) -> Result<tonic::Response<proto::SubmitReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("no"))
    }
}

/// Accepts a client certificate from any CA (the break); one is still required.
#[derive(Debug)]
struct AnyClient(Arc<rustls::crypto::CryptoProvider>);

impl rustls::server::danger::ClientCertVerifier for AnyClient {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Starts the broken adapter in this process; returns its URL and query counter.
async fn start_broken(stack: &Stack) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let pki = stack.dir().join("pki");
    let config = stack.dir().join("broken.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n[tls]\ncert = {c:?}\nkey = {k:?}\nclient_ca = {ca:?}\n[backend]\nurl = {url:?}\nca = {ca:?}\nclient_cert = {c:?}\nclient_key = {k:?}\n",
            c = pki.join("adapter-tns.pem"),
            k = pki.join("adapter-tns-key.pem"),
            ca = pki.join("ca.pem"),
            url = stack.demo().info.sim.url,
        ),
    )
    .unwrap();
    let cfg = AdapterConfig::load(&config).unwrap();
    let backend = Arc::new(providers_tns::TnsBackend::new(&cfg).unwrap());
    let queries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(AnyClient(provider)))
        .with_single_cert(
            relay_pki::tls::load_certs(&cfg.tls.cert).unwrap(),
            relay_pki::tls::load_key(&cfg.tls.key).unwrap(),
        )
        .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = tx.send(Ok::<_, std::io::Error>(tls)).await;
                }
            });
        }
    });
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(proto::SERVICE_NAME, tonic_health::ServingStatus::NotServing)
        .await;
    let watched = backend.clone();
    tokio::spawn(async move {
        loop {
            let status = match watched.health().await {
                providers_sdk::Health::Serving => tonic_health::ServingStatus::Serving,
                providers_sdk::Health::NotServing => tonic_health::ServingStatus::NotServing,
            };
            reporter
                .set_service_status(proto::SERVICE_NAME, status)
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let broken = Broken {
        backend,
        permits: Arc::new(Semaphore::new(8)),
        queries: queries.clone(),
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(proto::provider_server::ProviderServer::new(broken))
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx)),
    );
    (url, queries)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_adapter_fails_exactly_the_cases_it_breaks_and_the_relay_refuses_it() {
    let stack = Stack::start().await;
    let (url, queries) = start_broken(&stack).await;
    let (code, cases) = kit(&stack, &url, "TNS").await;
    assert_eq!(code, 1, "{cases:#?}");
    let failed: Vec<&str> = cases
        .iter()
        .filter(|(_, (o, _))| o == "fail")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "cancellation",
            "deadline",
            "describe",
            "limits.declared_concurrency",
            "query.large_answer",
            "query.payload",
            "query.unknown_person",
            "security.foreign_ca"
        ],
        "{cases:#?}"
    );
    let reason = |n: &str| cases[n].1.clone();
    assert!(
        reason("describe").contains("shs_relay.provider.v2"),
        "{}",
        reason("describe")
    );
    assert!(
        reason("query.payload").contains("relay would refuse"),
        "{}",
        reason("query.payload")
    );
    assert!(
        reason("deadline").contains("DEADLINE_EXCEEDED"),
        "{}",
        reason("deadline")
    );
    assert!(
        reason("deadline").contains("cancellation did not reach"),
        "{}",
        reason("deadline")
    );
    assert!(
        reason("cancellation").contains("cancellation did not reach"),
        "{}",
        reason("cancellation")
    );
    assert!(
        reason("limits.declared_concurrency").contains("RESOURCE_EXHAUSTED"),
        "{}",
        reason("limits.declared_concurrency")
    );
    assert!(
        reason("security.foreign_ca").contains("another CA"),
        "{}",
        reason("security.foreign_ca")
    );

    // The relay: the broken adapter as its TNS provider is refused, not called.
    let relay_config = stack.demo().info.relay.config.clone();
    let tns_url = stack
        .demo()
        .info
        .providers
        .iter()
        .find(|p| p.id == "TNS")
        .unwrap()
        .url
        .clone();
    let text = std::fs::read_to_string(&relay_config).unwrap();
    assert!(text.contains(&tns_url));
    std::fs::write(&relay_config, text.replace(&tns_url, &url)).unwrap();
    let admin = stack.demo().info.admin["url"].clone();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{admin}/admin/reload"))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let before = queries.load(std::sync::atomic::Ordering::SeqCst);
    // A question for TNS through the SSBTEK web service: the slot answers an
    // SSBT error and the broken adapter gets no query.
    let today = chrono::Local::now().date_naive();
    let question = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><ssbt:hamtaBastjanstInformation xmlns:ssbt=\"http://schema.forsakringskassan.se/integration/ssbt/10\"><ssbt:generellaFrageparametrar><ssbt:fraganSkallInkluderasISvaret>false</ssbt:fraganSkallInkluderasISvaret><ssbt:ingivare><ssbt:organisationsnummer>162120002411</ssbt:organisationsnummer><ssbt:namn>Sundsvalls kommun</ssbt:namn><ssbt:handlaggare>hl-1</ssbt:handlaggare></ssbt:ingivare><ssbt:personidentitet>191212121212</ssbt:personidentitet><ssbt:arendeidentitet>A-1</ssbt:arendeidentitet><ssbt:tidsperiod><ssbt:fromDatum>{}</ssbt:fromDatum><ssbt:tomDatum>{today}</ssbt:tomDatum></ssbt:tidsperiod><ssbt:syfte>Beslut om eller kontroll av ekonomiskt bistånd</ssbt:syfte><ssbt:lagtext>11 kap. 11 a § socialtjänstlagen (2001:453)</ssbt:lagtext></ssbt:generellaFrageparametrar><ssbt:specifikaFrageparametrar><ssbt:AF inkludera=\"false\"/><ssbt:CSN inkludera=\"false\"/><ssbt:FK inkludera=\"false\"/><ssbt:SKV inkludera=\"false\"/><ssbt:SO inkludera=\"false\"/><ssbt:TNS inkludera=\"true\"/><ssbt:MIV inkludera=\"false\"/></ssbt:specifikaFrageparametrar></ssbt:hamtaBastjanstInformation></soapenv:Body></soapenv:Envelope>",
        today - chrono::Months::new(3)
    );
    let answer = stack
        .client("2120002411")
        .post(format!("{}/ssbtek/v10", stack.relay_url()))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(question)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(answer.contains("SSBT-UNAVAILABLE"), "{answer}");
    assert_eq!(
        queries.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "the refused provider is not called"
    );
    let providers: serde_json::Value = http
        .get(format!("{admin}/admin/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tns = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "TNS")
        .unwrap()
        .clone();
    assert_eq!(tns["contract"]["state"], "incompatible", "{tns}");
    assert_eq!(
        tns["contract"]["declared"], "shs_relay.provider.v2",
        "{tns}"
    );
    let logs = stack.all_logs();
    assert!(
        logs.contains("provider refused: its Describe declares an incompatible contract version"),
        "the refusal is logged"
    );
    stack.stop().await;
}
