//! The gRPC service around a [`Backend`]: deadlines, the concurrency limit, the
//! optional client pin, outcome metrics and logs without personal data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::config::AdapterConfig;
use crate::metrics::METRICS;
use crate::{Backend, BackendError, Health, QueryOutcome, SubmitOutcome, proto};

pub(crate) struct ProviderService<B> {
    backend: Arc<B>,
    permits: Arc<Semaphore>,
    queue_wait: Duration,
    default_deadline: Duration,
    allowed_clients: Vec<String>,
    maintenance_file: Option<std::path::PathBuf>,
}

impl<B: Backend> ProviderService<B> {
    pub fn new(backend: Arc<B>, cfg: &AdapterConfig) -> Self {
        Self {
            backend,
            permits: Arc::new(Semaphore::new(cfg.limits.max_concurrent)),
            queue_wait: Duration::from_millis(cfg.limits.queue_wait_ms),
            default_deadline: Duration::from_millis(cfg.default_deadline_ms),
            allowed_clients: cfg
                .tls
                .allowed_clients
                .iter()
                .map(|c| c.replace(':', "").to_ascii_lowercase())
                .collect(),
            maintenance_file: cfg.maintenance_file.clone(),
        }
    }

    /// The pin: when `allowed_clients` is set, the peer certificate's CN or SHA-256
    /// fingerprint must be listed.
    fn check_client<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if self.allowed_clients.is_empty() {
            return Ok(());
        }
        let subject = req
            .peer_certs()
            .and_then(|certs| certs.first().cloned())
            .and_then(|c| relay_pki::identity::PeerSubject::from_der(c.as_ref()));
        let allowed = subject.is_some_and(|s| {
            self.allowed_clients.contains(&s.sha256_fingerprint)
                || s.common_name
                    .is_some_and(|cn| self.allowed_clients.contains(&cn.to_ascii_lowercase()))
        });
        if allowed {
            Ok(())
        } else {
            Err(Status::permission_denied(
                "client certificate not allowed by this adapter",
            ))
        }
    }

    /// The caller's deadline (`grpc-timeout`), or the configured default. The
    /// backend gets slightly less (5%, at least 20 ms), so that the adapter answers
    /// DEADLINE_EXCEEDED itself before tonic's own timer cancels the call.
    fn deadline<T>(&self, req: &Request<T>) -> Duration {
        let d = req
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .unwrap_or(self.default_deadline);
        d.saturating_sub((d / 20).max(Duration::from_millis(20)))
    }

    /// A slot at the backend: at once when one is free, else after waiting up
    /// to `queue_wait` (never longer than `deadline`, the call's own budget) in
    /// first-come order. `None`: still full, the caller answers
    /// RESOURCE_EXHAUSTED.
    async fn admit(&self, deadline: Duration) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Some(p);
        }
        let wait = self.queue_wait.min(deadline);
        if wait.is_zero() {
            return None;
        }
        METRICS.queued.inc();
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await;
        METRICS.queued.dec();
        permit.ok().and_then(Result::ok)
    }
}

/// `grpc-timeout`: an integer of at most 8 digits and a unit (H M S m u n).
pub(crate) fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn status_of(e: BackendError) -> Status {
    match e {
        BackendError::Unavailable(m) => Status::unavailable(m),
        BackendError::DeadlineExceeded => {
            Status::deadline_exceeded("base service did not answer in time")
        }
        BackendError::InvalidArgument(m) => Status::invalid_argument(m),
        BackendError::Unimplemented => Status::unimplemented("not offered by this adapter"),
        BackendError::Internal(m) => Status::internal(m),
    }
}

fn label_of(e: &BackendError) -> &'static str {
    match e {
        BackendError::Unavailable(_) => "unavailable",
        BackendError::DeadlineExceeded => "deadline",
        BackendError::InvalidArgument(_) => "invalid_argument",
        BackendError::Unimplemented => "unimplemented",
        BackendError::Internal(_) => "internal",
    }
}

#[tonic::async_trait]
impl<B: Backend> proto::provider_server::Provider for ProviderService<B> {
    async fn describe(
        &self,
        req: Request<proto::DescribeRequest>,
    ) -> Result<Response<proto::DescribeReply>, Status> {
        self.check_client(&req)?;
        let d = self.backend.describe();
        let mut operations = vec![proto::Operation::Query as i32];
        if self.backend.supports_submit() {
            operations.push(proto::Operation::Submit as i32);
        }
        Ok(Response::new(proto::DescribeReply {
            provider_id: d.provider_id,
            display_name: d.display_name,
            contract_version: proto::CONTRACT_VERSION.to_owned(),
            adapter_version: d.adapter_version,
            operations,
            payload_format: d.payload_format,
            submit_document_types: d.submit_document_types,
            planned_maintenance: crate::maintenance::announced(
                self.maintenance_file.as_deref(),
                self.backend.planned_maintenance().await,
                chrono::Utc::now(),
            ),
        }))
    }

    async fn query(
        &self,
        req: Request<proto::QueryRequest>,
    ) -> Result<Response<proto::QueryReply>, Status> {
        self.check_client(&req)?;
        let span = self.call_span("adapter.query", &req);
        self.query_in_span(req).instrument(span).await
    }

    async fn submit(
        &self,
        req: Request<proto::SubmitRequest>,
    ) -> Result<Response<proto::SubmitReply>, Status> {
        self.check_client(&req)?;
        let span = self.call_span("adapter.submit", &req);
        self.submit_in_span(req).instrument(span).await
    }
}

impl<B: Backend> ProviderService<B> {
    /// The span of one call: a child of the caller's trace when the call
    /// carries a W3C `traceparent`. Its fields are the provider id, the
    /// transaction id (when a UUID), the outcome and the latency; never the
    /// person, the caller's details or a payload.
    fn call_span<T>(&self, name: &'static str, req: &Request<T>) -> tracing::Span {
        let provider = self.backend.describe().provider_id;
        let span = tracing::info_span!(
            "adapter.call",
            otel.name = name,
            otel.kind = "server",
            provider.id = provider.as_str(),
            shs.tx_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        relay_telemetry::continue_trace(req.metadata(), &span);
        span
    }

    async fn query_in_span(
        &self,
        req: Request<proto::QueryRequest>,
    ) -> Result<Response<proto::QueryReply>, Status> {
        let started = Instant::now();
        let deadline = self.deadline(&req);
        let Some(_permit) = self.admit(deadline).await else {
            METRICS.observe_query("rejected_concurrency", started);
            record_call(
                &tracing::Span::current(),
                "",
                "rejected_concurrency",
                started,
            );
            return Err(Status::resource_exhausted(
                "adapter at its concurrency limit",
            ));
        };
        // Time spent waiting for the slot comes out of the call's budget.
        let deadline = deadline.saturating_sub(started.elapsed());
        let traceparent = req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.split('-').nth(1))
            .map(str::to_owned);
        let outgoing = outgoing_traceparent(req.metadata());
        let query = req.into_inner();
        let tx = query.transaction_id.clone();
        METRICS.in_flight.inc();
        // The backend future is dropped (cancelled) when the deadline passes.
        let result = tokio::time::timeout(
            deadline,
            crate::BASE_SERVICE_TRACEPARENT.scope(outgoing, self.backend.query(query)),
        )
        .await;
        METRICS.in_flight.dec();
        let (outcome, reply) = match result {
            Err(_) => (
                "deadline",
                Err(Status::deadline_exceeded("deadline passed")),
            ),
            Ok(Err(e)) => (label_of(&e), Err(status_of(e))),
            Ok(Ok(QueryOutcome::Data { payload })) => (
                "data",
                Ok(proto::QueryReply {
                    outcome: Some(proto::query_reply::Outcome::Data(proto::QueryData {
                        format: self.backend.describe().payload_format,
                        payload,
                    })),
                }),
            ),
            Ok(Ok(QueryOutcome::ProviderError { code, messages })) => (
                "provider_error",
                Ok(proto::QueryReply {
                    outcome: Some(proto::query_reply::Outcome::Error(proto::ProviderError {
                        code,
                        messages,
                    })),
                }),
            ),
        };
        METRICS.observe_query(outcome, started);
        record_call(&tracing::Span::current(), &tx, outcome, started);
        tracing::info!(
            tx = %tx,
            trace_id = traceparent.as_deref().unwrap_or(""),
            outcome,
            latency_ms = started.elapsed().as_millis() as u64,
            "query"
        );
        reply.map(Response::new)
    }

    async fn submit_in_span(
        &self,
        req: Request<proto::SubmitRequest>,
    ) -> Result<Response<proto::SubmitReply>, Status> {
        let started = Instant::now();
        let deadline = self.deadline(&req);
        let Some(_permit) = self.admit(deadline).await else {
            record_call(
                &tracing::Span::current(),
                "",
                "rejected_concurrency",
                started,
            );
            return Err(Status::resource_exhausted(
                "adapter at its concurrency limit",
            ));
        };
        let deadline = deadline.saturating_sub(started.elapsed());
        let outgoing = outgoing_traceparent(req.metadata());
        let submit = req.into_inner();
        let tx = submit.transaction_id.clone();
        let result = tokio::time::timeout(
            deadline,
            crate::BASE_SERVICE_TRACEPARENT.scope(outgoing, self.backend.submit(submit)),
        )
        .await;
        let (outcome, reply) = match result {
            Err(_) => (
                "deadline",
                Err(Status::deadline_exceeded("deadline passed")),
            ),
            Ok(Err(e)) => (label_of(&e), Err(status_of(e))),
            Ok(Ok(SubmitOutcome::Receipt(r))) => (
                "receipt",
                Ok(proto::SubmitReply {
                    outcome: Some(proto::submit_reply::Outcome::Receipt(r)),
                }),
            ),
            Ok(Ok(SubmitOutcome::Error(e))) => (
                "submit_error",
                Ok(proto::SubmitReply {
                    outcome: Some(proto::submit_reply::Outcome::Error(e)),
                }),
            ),
        };
        record_call(&tracing::Span::current(), &tx, outcome, started);
        tracing::info!(tx = %tx, outcome, latency_ms = started.elapsed().as_millis() as u64, "submit");
        reply.map(Response::new)
    }
}

/// The `traceparent` for the base-service calls of the call being answered:
/// the adapter's own span when it exports spans (a child of the caller's), else
/// the caller's, passed through unchanged, so the trace reaches the base service
/// either way.
fn outgoing_traceparent(incoming: &tonic::metadata::MetadataMap) -> Option<String> {
    let mut own = tonic::metadata::MetadataMap::new();
    relay_telemetry::inject(&tracing::Span::current(), &mut own);
    own.get("traceparent")
        .or_else(|| incoming.get("traceparent"))
        .and_then(|v| v.to_str().ok())
        .filter(|t| is_traceparent(t))
        .map(str::to_owned)
}

/// A W3C `traceparent` of version 00: `00-<32 hex>-<16 hex>-<2 hex>`.
fn is_traceparent(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    parts.len() == 4
        && [2, 32, 16, 2]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn record_call(span: &tracing::Span, tx: &str, outcome: &'static str, started: Instant) {
    span.record("shs.tx_id", relay_telemetry::tx_attribute(tx))
        .record("outcome", outcome)
        .record("latency_ms", started.elapsed().as_millis() as u64);
}

/// Polls the backend's health and publishes it on `grpc.health.v1`.
pub(crate) async fn watch_health<B: Backend>(
    backend: Arc<B>,
    reporter: tonic_health::server::HealthReporter,
    interval: Duration,
) {
    // Not serving until the first check says otherwise.
    reporter
        .set_service_status(proto::SERVICE_NAME, tonic_health::ServingStatus::NotServing)
        .await;
    let mut last = None;
    loop {
        let health = backend.health().await;
        if last != Some(health) {
            let status = match health {
                Health::Serving => tonic_health::ServingStatus::Serving,
                Health::NotServing => tonic_health::ServingStatus::NotServing,
            };
            reporter
                .set_service_status(proto::SERVICE_NAME, status)
                .await;
            reporter.set_service_status("", status).await;
            METRICS.backend_up.set(i64::from(health == Health::Serving));
            tracing::info!(
                serving = health == Health::Serving,
                "base service health changed"
            );
            last = Some(health);
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("300m"), Some(Duration::from_millis(300)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }

    #[test]
    fn only_well_formed_traceparents_are_passed_on() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(is_traceparent(ok));
        assert!(!is_traceparent("00-4bf92f3577b34da6-00f067aa0ba902b7-01"));
        assert!(!is_traceparent("garbage"));
        let mut incoming = tonic::metadata::MetadataMap::new();
        incoming.insert("traceparent", ok.parse().unwrap());
        assert_eq!(outgoing_traceparent(&incoming).as_deref(), Some(ok));
        let mut bad = tonic::metadata::MetadataMap::new();
        bad.insert("traceparent", "00-x-y-z".parse().unwrap());
        assert_eq!(outgoing_traceparent(&bad), None);
    }
}
