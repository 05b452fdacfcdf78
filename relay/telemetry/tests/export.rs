//! Spans reach a real OTLP/HTTP endpoint (an axum server in the test decoding
//! the protobuf bodies), and only the spans the process names.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use relay_telemetry::{Protocol, TracingConfig};
use tracing_subscriber::layer::SubscriberExt;

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// `http://127.0.0.1:PORT` of a collector that keeps every request.
async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                match ExportTraceServiceRequest::decode(body) {
                    Ok(r) => {
                        sink.lock().unwrap().push(r);
                        (http::StatusCode::OK, Vec::new())
                    }
                    Err(_) => (http::StatusCode::BAD_REQUEST, Vec::new()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received)
}

fn names(received: &Received) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in received.lock().unwrap().iter() {
        for rs in &r.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    out.push((service.clone(), s.name.clone()));
                }
            }
        }
    }
    out
}

fn config(url: String, ratio: f64) -> TracingConfig {
    TracingConfig {
        otlp_endpoint: url,
        protocol: Protocol::HttpProtobuf,
        service_name: Some("export-test".into()),
        sample_ratio: ratio,
    }
}

fn emit() {
    let exported = tracing::info_span!("exported", outcome = "ok");
    exported.in_scope(|| {
        tracing::info!(secret = "191212121212", "an event is never exported");
        let _child = tracing::info_span!("child").entered();
    });
    let _elsewhere = tracing::info_span!(target: "some_library", "library.span").entered();
    let _quiet = tracing::debug_span!("debug.span").entered();
}

#[tokio::test(flavor = "multi_thread")]
async fn our_spans_and_only_ours_reach_an_otlp_http_collector() {
    let (url, received) = collector().await;
    let (layer, exporting) =
        relay_telemetry::layer::<tracing_subscriber::Registry>(&config(url, 1.0), "x", &["export"])
            .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
    exporting.shutdown_async().await;

    let mut got = names(&received);
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter()
            .all(|(service, _)| service.contains("export-test"))
    );
    assert_eq!(
        got.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
        ["child", "exported"]
    );
    let all = format!("{:?}", received.lock().unwrap());
    assert!(!all.contains("191212121212"), "events stay out of spans");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_sample_ratio_exports_nothing() {
    let (url, received) = collector().await;
    let (layer, exporting) =
        relay_telemetry::layer::<tracing_subscriber::Registry>(&config(url, 0.0), "x", &["export"])
            .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
    exporting.shutdown_async().await;
    assert!(names(&received).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_is_down_costs_spans_not_time() {
    // A port nobody listens on (bound, then released).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let mut cfg = config(format!("http://127.0.0.1:{port}"), 1.0);
        cfg.protocol = protocol;
        let (layer, exporting) =
            relay_telemetry::layer::<tracing_subscriber::Registry>(&cfg, "x", &["export"]).unwrap();
        let started = std::time::Instant::now();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            for _ in 0..100 {
                emit();
            }
        });
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{protocol:?}: spans are queued, not sent inline"
        );
        let stopping = std::time::Instant::now();
        exporting.shutdown_async().await;
        assert!(
            stopping.elapsed() < std::time::Duration::from_secs(30),
            "{protocol:?}: shutdown is bounded"
        );
    }
}
