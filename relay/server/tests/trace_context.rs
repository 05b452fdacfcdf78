//! The relay's provider calls carry the W3C trace context to the adapter, over
//! real mutual TLS on loopback with a PKI generated here: the raw `traceparent`
//! an adapter receives, and the SDK continuing the relay's trace in its own span.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use providers_sdk::{AdapterConfig, Backend, BackendError, Description, Health, QueryOutcome};
use relay_ident::Organisationsnummer;
use relay_server::providers::{CallOutcome, ProviderPool};
use shs_proto::v1 as proto;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

mod support;
use support::adapters::{pki, relay_config};

/// Spans get trace context (nothing is exported): the state a relay with a
/// `[tracing]` section is in.
fn with_trace_context() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    });
}

/// The trace id and span id of `span`, as lower-case hex.
fn ids(span: &tracing::Span) -> (String, String) {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    assert!(sc.is_valid(), "the relay's span has a trace context");
    (sc.trace_id().to_string(), sc.span_id().to_string())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An adapter that only records the metadata it was sent.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<Option<String>>>>);

#[tonic::async_trait]
impl proto::provider_server::Provider for Recorder {
    async fn describe(
        &self,
        _: tonic::Request<proto::DescribeRequest>,
    ) -> Result<tonic::Response<proto::DescribeReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("not here"))
    }

    async fn query(
        &self,
        req: tonic::Request<proto::QueryRequest>,
    ) -> Result<tonic::Response<proto::QueryReply>, tonic::Status> {
        let tp = req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.0.lock().unwrap().push(tp);
        Ok(tonic::Response::new(proto::QueryReply {
            outcome: Some(proto::query_reply::Outcome::Data(proto::QueryData {
                format: "test/v1".into(),
                payload: b"<x/>".to_vec(),
            })),
        }))
    }

    async fn submit(
        &self,
        _: tonic::Request<proto::SubmitRequest>,
    ) -> Result<tonic::Response<proto::SubmitReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("not here"))
    }
}

async fn ask(pool: &ProviderPool, span: &tracing::Span) -> CallOutcome {
    let municipality = Organisationsnummer::parse("2120002411").unwrap();
    let request = proto::QueryRequest {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    pool.query("FK", &municipality, request, deadline)
        .instrument(span.clone())
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adapter_receives_a_traceparent_naming_the_relays_span() {
    with_trace_context();
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let recorder = Recorder::default();
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(
            std::fs::read(dir.path().join("adapter.pem")).unwrap(),
            std::fs::read(dir.path().join("adapter-key.pem")).unwrap(),
        ))
        .client_ca_root(tonic::transport::Certificate::from_pem(
            std::fs::read(dir.path().join("ca.pem")).unwrap(),
        ));
    let server = tonic::transport::Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(proto::provider_server::ProviderServer::new(
            recorder.clone(),
        ))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let server = tokio::spawn(server);
    let pool = ProviderPool::new(&relay_config(
        dir.path(),
        &[format!("https://localhost:{port}")],
    ))
    .unwrap();

    let span = tracing::info_span!("provider.call");
    let outcome = ask(&pool, &span).await;
    assert!(matches!(outcome, CallOutcome::Data { .. }), "{outcome:?}");
    let (trace_id, span_id) = ids(&span);
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let traceparent = seen[0].clone().expect("a traceparent header");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00", "version: {traceparent}");
    assert!(is_hex(parts[1], 32), "trace id: {traceparent}");
    assert!(is_hex(parts[2], 16), "parent id: {traceparent}");
    assert!(is_hex(parts[3], 2), "flags: {traceparent}");
    assert_eq!(parts[1], trace_id, "the relay span's trace id");
    assert_eq!(parts[2], span_id, "the relay span is the parent");
    assert_eq!(parts[3], "01", "sampled");

    // A second call, in another span, is another trace.
    let other = tracing::info_span!("provider.call");
    ask(&pool, &other).await;
    let seen = recorder.0.lock().unwrap().clone();
    let second = seen[1].clone().expect("a traceparent header");
    assert!(second.contains(&ids(&other).0));
    assert!(!second.contains(&trace_id));
    server.abort();
}

/// An SDK backend that records the trace id of the span it runs in.
struct TraceRecordingBackend(Arc<Mutex<Vec<Option<String>>>>);

impl Backend for TraceRecordingBackend {
    fn describe(&self) -> Description {
        Description {
            provider_id: "FK".into(),
            display_name: "Försäkringskassan".into(),
            adapter_version: "0.0.0".into(),
            payload_format: "test/v1".into(),
            submit_document_types: Vec::new(),
        }
    }

    async fn query(&self, _: proto::QueryRequest) -> Result<QueryOutcome, BackendError> {
        let id = relay_telemetry::trace_id(&tracing::Span::current());
        self.0.lock().unwrap().push(id);
        Ok(QueryOutcome::Data {
            payload: b"<x/>".to_vec(),
        })
    }

    async fn health(&self) -> Health {
        Health::Serving
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_continues_the_relays_trace() {
    with_trace_context();
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let p = |f: &str| dir.path().join(f).display().to_string();
    let adapter_toml = dir.path().join("adapter.toml");
    std::fs::write(
        &adapter_toml,
        format!(
            "listen = \"127.0.0.1:0\"\n\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n\n[backend]\nurl = \"https://127.0.0.1:1\"\n",
            p("adapter.pem"),
            p("adapter-key.pem"),
            p("ca.pem")
        ),
    )
    .unwrap();
    let cfg = AdapterConfig::load(&adapter_toml).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(providers_sdk::serve_with_listener(
        TraceRecordingBackend(seen.clone()),
        cfg,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let pool = ProviderPool::new(&relay_config(
        dir.path(),
        &[format!("https://localhost:{port}")],
    ))
    .unwrap();

    let span = tracing::info_span!("provider.call");
    let outcome = ask(&pool, &span).await;
    assert!(matches!(outcome, CallOutcome::Data { .. }), "{outcome:?}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![Some(ids(&span).0)],
        "the adapter's span is in the relay's trace"
    );
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
}
