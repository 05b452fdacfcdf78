//! The SDK's promises, over real mutual TLS on loopback with a PKI generated here.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use providers_sdk::{
    AdapterConfig, Backend, BackendError, Description, Health, QueryOutcome, proto,
};
use relay_pki::{DevCa, Subject};

const PERSON: &str = "191212121212";

#[derive(Default)]
struct Knobs {
    delay_ms: AtomicUsize,
    healthy: AtomicBool,
    started: AtomicUsize,
    dropped: AtomicUsize,
    finished: AtomicUsize,
}

struct TestBackend(Arc<Knobs>);

struct DropGuard(Arc<Knobs>);
impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl Backend for TestBackend {
    fn describe(&self) -> Description {
        Description {
            provider_id: "TEST".into(),
            display_name: "Testmyndigheten".into(),
            adapter_version: "9.9.9".into(),
            payload_format: "test/v1".into(),
            submit_document_types: Vec::new(),
        }
    }

    async fn query(&self, q: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        let _guard = DropGuard(self.0.clone());
        self.0.started.fetch_add(1, Ordering::SeqCst);
        tracing::info!(person = %q.person_id.len(), "backend working");
        let delay = self.0.delay_ms.load(Ordering::SeqCst) as u64;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        self.0.finished.fetch_add(1, Ordering::SeqCst);
        Ok(QueryOutcome::Data {
            payload: format!("<svar>{}</svar>", q.person_id.len()).into_bytes(),
        })
    }

    async fn health(&self) -> Health {
        if self.0.healthy.load(Ordering::SeqCst) {
            Health::Serving
        } else {
            Health::NotServing
        }
    }
}

struct Pki {
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_owned();
        let ca = DevCa::new("test CA").unwrap();
        ca.as_issued().write(&d, "ca").unwrap();
        ca.server_cert("adapter", &["localhost", "127.0.0.1"])
            .unwrap()
            .write(&d, "adapter")
            .unwrap();
        ca.server_cert("shs-relay", &["localhost"])
            .unwrap()
            .write(&d, "relay")
            .unwrap();
        let other = DevCa::new("other CA").unwrap();
        other.as_issued().write(&d, "other-ca").unwrap();
        other
            .client_cert(&Subject {
                serial_number: None,
                organisation: None,
                common_name: "shs-relay",
            })
            .unwrap()
            .write(&d, "foreign")
            .unwrap();
        Self { _dir: dir, dir: d }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn config(&self, extra: &str) -> AdapterConfig {
        let text = format!(
            "listen = \"127.0.0.1:0\"\nhealth_interval_ms = 50\nshutdown_grace_ms = 20000\n{extra}\n[tls]\ncert = \"{c}\"\nkey = \"{k}\"\nclient_ca = \"{ca}\"\n\n[backend]\nurl = \"https://127.0.0.1:1\"\n",
            c = self.path("adapter.pem").display(),
            k = self.path("adapter-key.pem").display(),
            ca = self.path("ca.pem").display(),
        );
        let file = self.path("adapter.toml");
        std::fs::write(&file, text).unwrap();
        AdapterConfig::load(&file).unwrap()
    }
}

struct Running {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(knobs: &Arc<Knobs>, cfg: AdapterConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let backend = TestBackend(knobs.clone());
    let task = tokio::spawn(providers_sdk::serve_with_listener(
        backend,
        cfg,
        listener,
        async move {
            let _ = rx.await;
        },
    ));
    Running {
        url,
        stop: Some(tx),
        task,
    }
}

fn client(
    pki: &Pki,
    url: &str,
    cert: &str,
) -> proto::provider_client::ProviderClient<tonic::transport::Channel> {
    let ca = pki.path("ca.pem");
    providers_sdk::connect(
        url,
        "localhost",
        &ca,
        &pki.path(&format!("{cert}.pem")),
        &pki.path(&format!("{cert}-key.pem")),
    )
    .unwrap()
}

fn query() -> proto::QueryRequest {
    proto::QueryRequest {
        transaction_id: "tx-1".into(),
        person_id: PERSON.into(),
        ..Default::default()
    }
}

/// Captures everything the SDK logs in this test binary.
fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .json()
            .with_writer(move || SharedWriter(writer.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);
impl Write for SharedWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn knobs() -> Arc<Knobs> {
    let k = Arc::new(Knobs::default());
    k.healthy.store(true, Ordering::SeqCst);
    k
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_over_mutual_tls_is_answered_and_describe_tells_the_contract() {
    relay_pki::tls::install_crypto_provider();
    let logs = log_buffer();
    let pki = Pki::new();
    let k = knobs();
    let running = start(&k, pki.config("")).await;
    let mut c = client(&pki, &running.url, "relay");
    let reply = c.query(query()).await.unwrap().into_inner();
    match reply.outcome {
        Some(proto::query_reply::Outcome::Data(d)) => {
            assert_eq!(d.format, "test/v1");
            assert_eq!(d.payload, b"<svar>12</svar>");
        }
        other => panic!("expected data, got {other:?}"),
    }
    let d = c
        .describe(proto::DescribeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.provider_id, "TEST");
    assert_eq!(d.contract_version, proto::CONTRACT_VERSION);
    assert_eq!(d.operations, vec![proto::Operation::Query as i32]);
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("tx-1"), "the transaction id is logged");
    assert!(!text.contains(PERSON), "the person id is never logged");
    drop(running);
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_without_a_certificate_from_the_configured_ca_are_refused() {
    relay_pki::tls::install_crypto_provider();
    let pki = Pki::new();
    let running = start(&knobs(), pki.config("")).await;
    // A certificate from another CA.
    let mut foreign = providers_sdk::connect(
        &running.url,
        "localhost",
        &pki.path("ca.pem"),
        &pki.path("foreign.pem"),
        &pki.path("foreign-key.pem"),
    )
    .unwrap();
    assert!(foreign.query(query()).await.is_err());
    // No certificate at all.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(pki.path("ca.pem")).unwrap(),
        ))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(running.url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    let mut anonymous = proto::provider_client::ProviderClient::new(channel);
    assert!(anonymous.query(query()).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_adapter_refuses_other_clients_of_the_same_ca() {
    relay_pki::tls::install_crypto_provider();
    let pki = Pki::new();
    let running = start(&knobs(), pki.config("")).await;
    drop(running);
    let mut cfg = pki.config("");
    cfg.tls.allowed_clients = vec!["someone-else".into()];
    let running = start(&knobs(), cfg).await;
    let status = client(&pki, &running.url, "relay")
        .query(query())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let mut cfg = pki.config("");
    cfg.tls.allowed_clients = vec!["shs-relay".into()];
    let running = start(&knobs(), cfg).await;
    assert!(
        client(&pki, &running.url, "relay")
            .query(query())
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_that_overruns_the_deadline_is_cancelled_and_answers_deadline_exceeded() {
    relay_pki::tls::install_crypto_provider();
    let pki = Pki::new();
    let k = knobs();
    k.delay_ms.store(30_000, Ordering::SeqCst);
    let running = start(&k, pki.config("")).await;
    // The deadline travels as `grpc-timeout`; the client itself does not time
    // out here, so the answer shows what the adapter does when it passes.
    let mut req = tonic::Request::new(query());
    req.metadata_mut()
        .insert("grpc-timeout", "500m".parse().unwrap());
    let started = Instant::now();
    let status = client(&pki, &running.url, "relay")
        .query(req)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "no late answer: {:?}",
        started.elapsed()
    );
    // The backend future was dropped, not left running.
    let deadline = Instant::now() + Duration::from_secs(10);
    while k.dropped.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(k.dropped.load(Ordering::SeqCst), 1);
    assert_eq!(k.finished.load(Ordering::SeqCst), 0);
}

/// Starts an adapter with `limits`, sends one query that occupies the only
/// slot until the backend's delay passes, and waits until it is at the backend.
async fn with_the_only_slot_taken(
    pki: &Pki,
    k: &Arc<Knobs>,
    limits: &str,
) -> (
    Running,
    proto::provider_client::ProviderClient<tonic::transport::Channel>,
    tokio::task::JoinHandle<Result<tonic::Response<proto::QueryReply>, tonic::Status>>,
) {
    let running = start(k, pki.config(&format!("\n[limits]\n{limits}\n"))).await;
    let c = client(pki, &running.url, "relay");
    let mut first = c.clone();
    let slow = tokio::spawn(async move { first.query(query()).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    while k.started.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the first query never reached the backend"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (running, c, slow)
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_the_concurrency_limit_a_call_is_refused_once_its_short_wait_is_over() {
    relay_pki::tls::install_crypto_provider();
    let pki = Pki::new();
    let k = knobs();
    k.delay_ms.store(5_000, Ordering::SeqCst);
    let (_running, c, slow) =
        with_the_only_slot_taken(&pki, &k, "max_concurrent = 1\nqueue_wait_ms = 300").await;
    let asked = Instant::now();
    let status = c.clone().query(query()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    // It waited for a slot, and not until the busy call finished.
    assert!(asked.elapsed() >= Duration::from_millis(300));
    assert!(
        asked.elapsed() < Duration::from_millis(4_000),
        "refused only after {:?}",
        asked.elapsed()
    );
    assert_eq!(
        k.started.load(Ordering::SeqCst),
        1,
        "never reached the backend"
    );
    assert!(slow.await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_queue_wait_a_call_beyond_the_limit_is_refused_at_once() {
    relay_pki::tls::install_crypto_provider();
    let pki = Pki::new();
    let k = knobs();
    k.delay_ms.store(5_000, Ordering::SeqCst);
    let (_running, c, slow) =
        with_the_only_slot_taken(&pki, &k, "max_concurrent = 1\nqueue_wait_ms = 0").await;
    let asked = Instant::now();
    let status = c.clone().query(query()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        asked.elapsed() < Duration::from_millis(4_000),
        "refused only after {:?}",
        asked.elapsed()
    );
    assert!(slow.await.unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_beyond_the_limit_is_answered_when_a_slot_frees_within_its_wait() {
    relay_pki::tls::install_crypto_provider();
    let pki = Pki::new();
    let k = knobs();
    k.delay_ms.store(500, Ordering::SeqCst);
    let (_running, c, slow) =
        with_the_only_slot_taken(&pki, &k, "max_concurrent = 1\nqueue_wait_ms = 20000").await;
    let reply = c.clone().query(query()).await;
    assert!(reply.is_ok(), "{reply:?}");
    assert!(slow.await.unwrap().is_ok());
    assert_eq!(k.finished.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wait_for_a_slot_never_outlasts_the_calls_deadline() {
    relay_pki::tls::install_crypto_provider();
    let pki = Pki::new();
    let k = knobs();
    k.delay_ms.store(30_000, Ordering::SeqCst);
    let (_running, c, _slow) =
        with_the_only_slot_taken(&pki, &k, "max_concurrent = 1\nqueue_wait_ms = 60000").await;
    let mut req = tonic::Request::new(query());
    req.metadata_mut()
        .insert("grpc-timeout", "1S".parse().unwrap());
    let asked = Instant::now();
    let status = c.clone().query(req).await.unwrap_err();
    // The adapter itself refuses inside the deadline (its budget is the
    // deadline less 5%), so the caller learns the adapter was full.
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "answered only after {:?}",
        asked.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_follows_the_base_service() {
    relay_pki::tls::install_crypto_provider();
    let pki = Pki::new();
    let k = knobs();
    let running = start(&k, pki.config("")).await;
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(pki.path("ca.pem")).unwrap(),
        ))
        .identity(tonic::transport::Identity::from_pem(
            std::fs::read(pki.path("relay.pem")).unwrap(),
            std::fs::read(pki.path("relay-key.pem")).unwrap(),
        ))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(running.url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    let health = tonic_health::pb::health_client::HealthClient::new(channel);
    let reaches = |want: i32| {
        let mut health = health.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let r = health
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: proto::SERVICE_NAME.into(),
                    })
                    .await;
                if matches!(&r, Ok(r) if r.get_ref().status == want) {
                    return true;
                }
                if Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    assert!(reaches(ServingStatus::Serving as i32).await);
    k.healthy.store(false, Ordering::SeqCst);
    assert!(
        reaches(ServingStatus::NotServing as i32).await,
        "NOT_SERVING when the base service is down"
    );
    k.healthy.store(true, Ordering::SeqCst);
    assert!(reaches(ServingStatus::Serving as i32).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_finishes_an_in_flight_query() {
    relay_pki::tls::install_crypto_provider();
    let pki = Pki::new();
    let k = knobs();
    k.delay_ms.store(1_000, Ordering::SeqCst);
    let mut running = start(&k, pki.config("")).await;
    let mut c = client(&pki, &running.url, "relay");
    let call = tokio::spawn(async move { c.query(query()).await });
    // Wait until the backend is working on the query, then ask for shutdown.
    let deadline = Instant::now() + Duration::from_secs(20);
    while k.started.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the query never reached the backend"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = running.stop.take().unwrap().send(());
    let reply = call.await.unwrap();
    assert!(
        reply.is_ok(),
        "the in-flight query gets its answer: {reply:?}"
    );
    assert!(
        running.task.await.unwrap().is_ok(),
        "the server stops cleanly"
    );
}

#[test]
fn an_invalid_config_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\n[tls]\ncert = \"/nonexistent.pem\"\nkey = \"/x\"\nclient_ca = \"/y\"\n[backend]\nurl = \"https://x\"\n").unwrap();
    let e = AdapterConfig::load(&file).unwrap_err().to_string();
    assert!(e.contains("bad.toml") && e.contains("tls.cert"), "{e}");
    let _ = Path::new("");
}

#[test]
fn a_tracing_section_is_optional_and_checked() {
    let pki = Pki::new();
    assert!(pki.config("").tracing.is_none());
    let c = pki.config("[tracing]\notlp_endpoint = \"http://127.0.0.1:4317\"\n");
    let t = c.tracing.expect("a tracing section");
    assert_eq!(t.sample_ratio, 1.0);
    let file = pki.path("adapter.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("4317\"\n", "4317\"\nsample_ratio = -1.0\n");
    std::fs::write(&file, text).unwrap();
    let e = AdapterConfig::load(&file).unwrap_err().to_string();
    assert!(e.contains("tracing.sample_ratio"), "{e}");
}

#[test]
fn a_config_check_names_every_error_in_the_file() {
    use providers_sdk::FileCheck;
    let pki = Pki::new();
    let file = pki.path("adapter.toml");
    let _ = pki.config("");
    let good = std::fs::read_to_string(&file).unwrap();
    assert!(AdapterConfig::check_file(&file, FileCheck::Contents).is_ok());
    let keys = |files| {
        AdapterConfig::check_file(&file, files)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| {
                assert_eq!(e.file, file);
                e.key
            })
            .collect::<Vec<_>>()
    };
    // Types: an unknown key, a wrong type and a missing key, in three places.
    std::fs::write(
        &file,
        good.replace("health_interval_ms = 50", "health_interval_ms = \"fast\"")
            .replace(
                "[backend]\nurl = \"https://127.0.0.1:1\"",
                "[backend]\nuri = \"https://127.0.0.1:1\"",
            )
            + "\n[limits]\nmax_concurent = 4\n",
    )
    .unwrap();
    assert_eq!(
        keys(FileCheck::Contents),
        ["backend.uri", "health_interval_ms", "limits.max_concurent"]
    );
    // Values and files: a bad URL, a zero limit, a key file that is not PEM.
    std::fs::write(
        &file,
        good.replace("https://127.0.0.1:1", "ftp://base")
            .replace("adapter-key.pem", "ca.pem")
            + "\n[limits]\nmax_concurrent = 0\n",
    )
    .unwrap();
    assert_eq!(
        keys(FileCheck::Contents),
        ["tls.key", "backend.url", "limits.max_concurrent"]
    );
    assert_eq!(
        keys(FileCheck::Skip),
        ["backend.url", "limits.max_concurrent"]
    );
}
