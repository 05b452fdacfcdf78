//! What the alert rules in `deploy/prometheus/` watch that no request counts:
//! when certificates and CRLs run out, whether the node is ready, whether the
//! store answers, and audit records lost. The runbook for every alert is in
//! `docs/operations.md` ("Alerts").
//!
//! - [`record_certificates`] sets
//!   `shs_relay_certificate_expiry_timestamp_seconds` for every certificate and CRL of a configuration; called at start and by
//!   every reload, so the figures are those of the files in force.
//! - [`run`] looks every [`INTERVAL`] at the readiness check (`shs_relay_ready`, and
//!   through it `shs_relay_provider_up`), the store (`shs_relay_store_up`) and
//!   the audit writer's lost records (`shs_relay_audit_write_errors_total`).
//! - [`probe_router`] serves the read-only `[admin] probe_listen` (`/livez`,
//!   `/readyz`, `/metrics`) for probes and scrapes without an operator
//!   certificate.
//!
//! Labels name what a certificate is for and a short fingerprint, never its
//! subject (it may name a municipality or a person).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::Relay;
use crate::config::Config;
use crate::metrics::{CertificateLabel, Kind, Metrics};

/// How often [`run`] looks.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// How long the store may take to answer before it counts as unreachable.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The routes of `[admin] probe_listen`: the admin listener's `/livez`,
/// `/readyz` and `/metrics`, and nothing that changes or shows more.
pub fn probe_router(relay: Arc<Relay>) -> axum::Router {
    use axum::response::IntoResponse;
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/metrics",
            get(
                |axum::extract::State(relay): axum::extract::State<Arc<Relay>>| async move {
                    relay.metrics.encode()
                },
            ),
        )
        .route("/livez", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(
                |axum::extract::State(relay): axum::extract::State<Arc<Relay>>| async move {
                    match crate::service_levels::readiness(&relay).await {
                        Ok(text) => (http::StatusCode::OK, format!("{text}\n")).into_response(),
                        Err(reason) => {
                            (http::StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n"))
                                .into_response()
                        }
                    }
                },
            ),
        )
        .with_state(relay)
}

/// Sets the expiry gauge for every certificate and CRL `config` names,
/// replacing what an earlier configuration set. A file that cannot be read is
/// logged and left out (the configuration check at load names it).
pub fn record_certificates(metrics: &Metrics, config: &Config) {
    let mut found: Vec<(CertificateLabel, i64)> = Vec::new();
    let mut certificates =
        |which: &'static str, provider: &str, path: &Path| match relay_pki::expiry::certificates(
            path,
        ) {
            Ok(list) => found.extend(list.into_iter().map(|e| {
                (
                    CertificateLabel {
                        which,
                        provider: provider.to_owned(),
                        fingerprint: e.fingerprint,
                    },
                    e.at,
                )
            })),
            Err(e) => tracing::warn!(which, error = %e, "certificate expiry not readable"),
        };
    certificates("front", "", &config.front.cert);
    certificates("client_ca", "", &config.front.client_ca);
    // Every provider's channel presents the relay's client certificate and
    // checks the adapter against the CA bundle: one series per provider, so an
    // alert names the agencies that lose their channel.
    for p in &config.providers {
        certificates("provider_client", p.id.as_str(), &config.provider_tls.cert);
        certificates("provider_ca", p.id.as_str(), &config.provider_tls.ca);
    }
    if let Some((cert, _, ca)) = config.admin.as_ref().and_then(|a| a.tls(&config.front)) {
        certificates("admin", "", cert);
        certificates("admin_client_ca", "", ca);
    }
    for path in config.elt.iter().flat_map(|e| &e.crls) {
        match relay_pki::expiry::crls(path) {
            Ok(list) => found.extend(list.into_iter().map(|e| {
                (
                    CertificateLabel {
                        which: "crl",
                        provider: String::new(),
                        fingerprint: e.fingerprint,
                    },
                    e.at,
                )
            })),
            Err(e) => tracing::warn!(which = "crl", error = %e, "CRL next update not readable"),
        }
    }
    let gauge = &metrics.certificate_expiry;
    gauge.clear();
    for (label, at) in found {
        gauge.get_or_create(&label).set(at);
    }
}

/// Looks every [`INTERVAL`] until the process ends.
pub async fn run(relay: Arc<Relay>) {
    loop {
        look(&relay).await;
        tokio::time::sleep(INTERVAL).await;
    }
}

async fn look(relay: &Relay) {
    let ready = crate::service_levels::readiness(relay).await.is_ok();
    relay.metrics.ready.set(i64::from(ready));
    if let Some(store) = &relay.decisions {
        let answers = matches!(
            tokio::time::timeout(STORE_TIMEOUT, store.alive()).await,
            Ok(true)
        );
        let kind = store.engine();
        relay
            .metrics
            .store_up
            .get_or_create(&Kind { kind })
            .set(i64::from(answers));
    }
    if let Some(m) = &relay.live().config.mailbox {
        relay
            .metrics
            .mailbox_ttl_seconds
            .set(i64::try_from(m.ttl_hours.saturating_mul(3600)).unwrap_or(i64::MAX));
    }
    if let Some((log, _)) = &relay.audit {
        let stats = log.stats();
        // The writer's hook counts each failed write as it happens; this
        // catches the counter up with the writer's own total (which also holds
        // records dropped from a full queue), so nothing is counted twice.
        let lost = stats.write_errors + stats.dropped;
        let counted = relay.metrics.audit_write_errors.get();
        if lost > counted {
            relay.metrics.audit_write_errors.inc_by(lost - counted);
        }
    }
}
