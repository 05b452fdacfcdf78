//! Provider replicas in the pool, over real mutual TLS on loopback: calls go
//! round robin over the replicas, a call that could not reach one is retried
//! once on another, a call an adapter answered is never repeated, and health
//! is checked per replica.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use relay_ident::Organisationsnummer;
use relay_server::providers::{CallOutcome, ProviderPool};
use shs_proto::v1 as proto;
use tonic_health::ServingStatus;

mod support;
use support::adapters::{pki, relay_config};

/// An adapter that counts the queries it was sent and answers each the same way.
#[derive(Clone)]
struct Counting {
    queries: Arc<AtomicUsize>,
    /// `None`: data; `Some(code)`: that status, as the adapter's own answer.
    fails_with: Option<tonic::Code>,
}

impl Counting {
    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

#[tonic::async_trait]
impl proto::provider_server::Provider for Counting {
    async fn describe(
        &self,
        _: tonic::Request<proto::DescribeRequest>,
    ) -> Result<tonic::Response<proto::DescribeReply>, tonic::Status> {
        Ok(tonic::Response::new(proto::DescribeReply {
            provider_id: "FK".into(),
            contract_version: proto::CONTRACT_VERSION.into(),
            payload_format: "test/v1".into(),
            ..Default::default()
        }))
    }

    async fn query(
        &self,
        _: tonic::Request<proto::QueryRequest>,
    ) -> Result<tonic::Response<proto::QueryReply>, tonic::Status> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        if let Some(code) = self.fails_with {
            return Err(tonic::Status::new(code, "the adapter says no"));
        }
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

/// Starts a replica answering as `fails_with` says and reporting `health`; its URL.
async fn replica(
    dir: &std::path::Path,
    fails_with: Option<tonic::Code>,
    health: ServingStatus,
) -> (String, Counting) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let adapter = Counting {
        queries: Arc::default(),
        fails_with,
    };
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(proto::SERVICE_NAME, health)
        .await;
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(
            std::fs::read(dir.join("adapter.pem")).unwrap(),
            std::fs::read(dir.join("adapter-key.pem")).unwrap(),
        ))
        .client_ca_root(tonic::transport::Certificate::from_pem(
            std::fs::read(dir.join("ca.pem")).unwrap(),
        ));
    let server = tonic::transport::Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(health_service)
        .add_service(proto::provider_server::ProviderServer::new(adapter.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(async move {
        // Keeps the reporter (and so the status) alive as long as the server.
        let _reporter = reporter;
        server.await
    });
    (format!("https://localhost:{port}"), adapter)
}

/// A URL nothing listens on: connections are refused.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("https://127.0.0.1:{port}")
}

async fn ask(pool: &ProviderPool) -> CallOutcome {
    let municipality = Organisationsnummer::parse("2120002411").unwrap();
    let request = proto::QueryRequest {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    pool.query("FK", &municipality, request, deadline).await
}

/// `/admin/providers` `endpoints`: (url, healthy) of each replica.
fn endpoints(pool: &ProviderPool) -> Vec<(String, bool)> {
    pool.endpoints("FK")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["url"].as_str().unwrap().to_owned(),
                e["healthy"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_are_balanced_across_the_replicas() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let (a_url, a) = replica(dir.path(), None, ServingStatus::Serving).await;
    let (b_url, b) = replica(dir.path(), None, ServingStatus::Serving).await;
    let pool = ProviderPool::new(&relay_config(dir.path(), &[a_url, b_url])).unwrap();
    for _ in 0..10 {
        let outcome = ask(&pool).await;
        assert!(matches!(outcome, CallOutcome::Data { .. }), "{outcome:?}");
    }
    assert_eq!(a.queries() + b.queries(), 10, "each call made once");
    assert!(
        a.queries() >= 3 && b.queries() >= 3,
        "both replicas take calls: {} and {}",
        a.queries(),
        b.queries()
    );
    assert!(pool.is_serving("FK", Duration::from_secs(10)).await);
    assert!(endpoints(&pool).iter().all(|(_, healthy)| *healthy));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_cannot_reach_a_replica_is_retried_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let closed = closed_port().await;
    let (live_url, live) = replica(dir.path(), None, ServingStatus::Serving).await;
    // Listed second: the first query (after the first `Describe`) goes to it.
    let pool = ProviderPool::new(&relay_config(
        dir.path(),
        &[live_url.clone(), closed.clone()],
    ))
    .unwrap();
    for _ in 0..10 {
        let outcome = ask(&pool).await;
        assert!(matches!(outcome, CallOutcome::Data { .. }), "{outcome:?}");
    }
    assert_eq!(live.queries(), 10);
    assert_eq!(endpoints(&pool), [(live_url, true), (closed, false)]);
    let recent = pool.recent("FK");
    assert_eq!(recent["success_rate"], 1.0, "{recent}");
    // Health: serving while any replica is; the closed one stays marked down.
    assert!(pool.is_serving("FK", Duration::from_secs(10)).await);
    assert!(!endpoints(&pool)[1].1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_an_adapter_answered_is_never_repeated() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let (a_url, a) = replica(
        dir.path(),
        Some(tonic::Code::Unavailable),
        ServingStatus::Serving,
    )
    .await;
    let (b_url, b) = replica(
        dir.path(),
        Some(tonic::Code::Unavailable),
        ServingStatus::Serving,
    )
    .await;
    let pool = ProviderPool::new(&relay_config(dir.path(), &[a_url, b_url])).unwrap();
    for n in 1..=4 {
        let outcome = ask(&pool).await;
        assert!(matches!(outcome, CallOutcome::Unavailable), "{outcome:?}");
        assert_eq!(a.queries() + b.queries(), n, "one adapter call per query");
    }
    // The adapters answered: both stay in the rotation.
    assert!(endpoints(&pool).iter().all(|(_, healthy)| *healthy));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_not_serving_is_marked_down_and_the_provider_serves_through_the_other() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let (sick_url, sick) = replica(dir.path(), None, ServingStatus::NotServing).await;
    let (well_url, well) = replica(dir.path(), None, ServingStatus::Serving).await;
    let pool = ProviderPool::new(&relay_config(
        dir.path(),
        &[sick_url.clone(), well_url.clone()],
    ))
    .unwrap();
    assert!(pool.is_serving("FK", Duration::from_secs(10)).await);
    assert_eq!(endpoints(&pool), [(sick_url, false), (well_url, true)]);
    // Within the back-off the sick replica is left out of the rotation.
    for _ in 0..4 {
        let outcome = ask(&pool).await;
        assert!(matches!(outcome, CallOutcome::Data { .. }), "{outcome:?}");
    }
    assert_eq!(sick.queries(), 0);
    assert_eq!(well.queries(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_whose_only_replica_cannot_be_reached_is_unavailable_not_late() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let closed = closed_port().await;
    let pool = ProviderPool::new(&relay_config(dir.path(), &[closed])).unwrap();
    let started = std::time::Instant::now();
    let outcome = ask(&pool).await;
    assert!(matches!(outcome, CallOutcome::Unavailable), "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a refused connection is not waited out: {:?}",
        started.elapsed()
    );
    assert!(!pool.is_serving("FK", Duration::from_secs(10)).await);
    assert!(!endpoints(&pool)[0].1);
}
