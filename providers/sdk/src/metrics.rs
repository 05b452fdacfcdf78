//! Prometheus metrics of an adapter and the optional admin listener
//! (`/metrics`, `/livez`, `/readyz`). Labels are bounded: outcome names only.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// The adapter's metrics.
pub struct Metrics {
    pub queries: Family<OutcomeLabel, Counter>,
    pub latency: Family<OutcomeLabel, Histogram>,
    pub in_flight: Gauge,
    /// Calls waiting for a slot (`limits.queue_wait_ms`).
    pub queued: Gauge,
    pub backend_up: Gauge,
    registry: Registry,
}

impl Metrics {
    pub fn observe_query(&self, outcome: &'static str, started: Instant) {
        let label = OutcomeLabel { outcome };
        self.queries.get_or_create(&label).inc();
        self.latency
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("shs_adapter");
    let queries = Family::<OutcomeLabel, Counter>::default();
    let latency = Family::<OutcomeLabel, Histogram>::new_with_constructor(|| {
        Histogram::new(exponential_buckets(0.005, 2.0, 14))
    });
    let in_flight = Gauge::default();
    let queued = Gauge::default();
    let backend_up = Gauge::default();
    let build = Family::<Vec<(String, String)>, Gauge>::default();
    build
        .get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())])
        .set(1);
    registry.register("queries", "Queries by outcome", queries.clone());
    registry.register(
        "query_duration_seconds",
        "Query latency by outcome",
        latency.clone(),
    );
    registry.register("in_flight", "Queries being answered", in_flight.clone());
    registry.register(
        "queued",
        "Calls waiting for a slot at the concurrency limit",
        queued.clone(),
    );
    registry.register(
        "backend_up",
        "1 when the base service is healthy",
        backend_up.clone(),
    );
    registry.register("build_info", "SDK version", build);
    Metrics {
        queries,
        latency,
        in_flight,
        queued,
        backend_up,
        registry,
    }
});

/// Serves `/metrics`, `/livez` and `/readyz` (ready = base service healthy).
pub async fn serve_admin(listener: tokio::net::TcpListener) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/metrics", get(|| async { METRICS.encode() }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|| async {
                if METRICS.backend_up.get() == 1 {
                    (axum::http::StatusCode::OK, "ready")
                } else {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "base service down",
                    )
                }
            }),
        );
    let _ = axum::serve(listener, app).await;
}
