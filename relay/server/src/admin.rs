//! The admin listener (separate address, loopback by default, plain HTTP):
//! `/metrics` (Prometheus), `/livez`, `/readyz` (ready = configuration loaded, not
//! in maintenance, and at least `min_healthy_providers` adapters SERVING), and the
//! maintenance switch that drains the node from a load balancer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::future::join_all;
use http::StatusCode;

use crate::Relay;
use crate::metrics::METRICS;

pub fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/metrics", get(|| async { METRICS.encode() }))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/admin/maintenance", get(maintenance_state))
        .route("/admin/maintenance/on", post(|s| set_maintenance(s, true)))
        .route(
            "/admin/maintenance/off",
            post(|s| set_maintenance(s, false)),
        )
        .with_state(relay)
}

async fn readyz(State(relay): State<Arc<Relay>>) -> Response {
    if relay.operator.maintenance() {
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance\n").into_response();
    }
    let wanted = relay
        .config
        .admin
        .as_ref()
        .map_or(0, |a| a.min_healthy_providers);
    let checks = relay
        .providers
        .ids()
        .map(|id| relay.providers.is_serving(id, Duration::from_secs(1)));
    let healthy = join_all(checks).await.into_iter().filter(|ok| *ok).count();
    if healthy < wanted {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{healthy} providers healthy, {wanted} required\n"),
        )
            .into_response();
    }
    (
        StatusCode::OK,
        format!("ready: {healthy} providers healthy\n"),
    )
        .into_response()
}

async fn maintenance_state(State(relay): State<Arc<Relay>>) -> String {
    format!(
        "maintenance: {}\n",
        if relay.operator.maintenance() {
            "on"
        } else {
            "off"
        }
    )
}

async fn set_maintenance(State(relay): State<Arc<Relay>>, on: bool) -> String {
    relay.operator.set_maintenance(on);
    tracing::warn!(maintenance = on, "admin: maintenance switched");
    format!("maintenance: {}\n", if on { "on" } else { "off" })
}
