//! The HTTPS front: accepts TCP connections, completes the mutual-TLS handshake
//! (a client without a certificate chaining to the configured CA is refused
//! there), and serves HTTP/1.1 and HTTP/2 with the peer certificate attached to
//! every request as a [`PeerCert`] extension.
//!
//! Every read from a client is bounded in time and count ([`FrontLimits`]): open
//! connections (beyond the cap a new one is closed at once), TLS handshakes in
//! progress and their duration, the request headers, HTTP/2 keep-alive pings.
//! The body's bounds are the request path's (`limits.label_timeout_ms`,
//! `limits.read_timeout_ms`, `mailbox.receive_timeout_s`). A panic in a request
//! task answers 500 and is counted; it never takes the connection's other
//! requests or the relay down.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

use crate::identity::PeerCert;

/// The front's bounds on connections (from `[front]`).
#[derive(Debug, Clone)]
pub struct FrontLimits {
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_handshakes: usize,
    pub keepalive: Duration,
}

impl FrontLimits {
    pub fn of(front: &crate::config::Front) -> Self {
        Self {
            handshake_timeout: Duration::from_millis(front.handshake_timeout_ms),
            header_read_timeout: Duration::from_millis(front.header_read_timeout_ms),
            max_connections: front.max_connections.max(1),
            max_handshakes: front.max_handshakes.max(1),
            keepalive: Duration::from_secs(front.keepalive_s.max(1)),
        }
    }
}

/// The TLS set-up (certificate, key, client CA) new handshakes use. A reload
/// swaps it whole ([`ServerTls::replace`]); each accepted connection takes the
/// one in force when it was accepted, so connections already open, and the
/// requests on them, finish on the old certificate while new handshakes get
/// the new one. Nothing is dropped.
#[derive(Clone)]
pub struct ServerTls(Arc<arc_swap::ArcSwap<rustls::ServerConfig>>);

impl ServerTls {
    pub fn new(config: rustls::ServerConfig) -> Self {
        Self(Arc::new(arc_swap::ArcSwap::from_pointee(config)))
    }

    /// New handshakes use `config` from now on.
    pub fn replace(&self, config: rustls::ServerConfig) {
        self.0.store(Arc::new(config));
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.0.load_full())
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets in-flight
/// requests finish (up to `grace`).
pub async fn serve(
    listener: TcpListener,
    tls: ServerTls,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
    limits: FrontLimits,
    on_handshake_failure: impl Fn(&'static str) + Send + Sync + 'static,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let on_handshake_failure = Arc::new(on_handshake_failure);
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let handshakes = Arc::new(tokio::sync::Semaphore::new(limits.max_handshakes));
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let Ok(connection) = connections.clone().try_acquire_owned() else {
            // At the cap: close at once rather than queue; the client retries.
            on_handshake_failure("connection_limit");
            drop(tcp);
            continue;
        };
        let handshakes = handshakes.clone();
        let limits = limits.clone();
        let acceptor = tls.acceptor();
        let app = app.clone();
        let watcher = graceful.watcher();
        let on_failure = on_handshake_failure.clone();
        tokio::spawn(async move {
            let _connection = connection;
            let handshake = async {
                let _permit = handshakes.acquire_owned().await;
                acceptor.accept(tcp).await
            };
            let tls = match tokio::time::timeout(limits.handshake_timeout, handshake).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    let reason = handshake_failure_reason(&e);
                    on_failure(reason);
                    tracing::info!(%remote, reason, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    on_failure("timeout");
                    tracing::info!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| PeerCert(Arc::new(c.to_vec())));
            let service =
                hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    if let Some(p) = &peer {
                        req.extensions_mut().insert(p.clone());
                    }
                    app.clone().oneshot(req)
                });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            builder
                .http2()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive_interval(Some(limits.keepalive))
                .keep_alive_timeout(limits.keepalive);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing remaining connections");
    }
}

/// Router middleware: runs one HTTP request in its `front` span. The span
/// records the method, the route template (`/shs/ds/{outbox}`, never the
/// concrete path, which may hold an organisation number), the SHS transaction id
/// (filled in by the handler once the label is valid) and the outcome; never a
/// header value or the body.
pub async fn traced(
    axum::extract::State(relay): axum::extract::State<Arc<crate::Relay>>,
    route: Option<axum::extract::MatchedPath>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let span = tracing::info_span!(
        "front",
        otel.kind = "server",
        http.request.method = req.method().as_str(),
        http.route = route.as_ref().map_or("(unmatched)", |r| r.as_str()),
        shs.tx_id = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        outcome = tracing::field::Empty,
        shs.error_code = tracing::field::Empty,
    );
    use futures::FutureExt;
    let response = match std::panic::AssertUnwindSafe(next.run(req).instrument(span.clone()))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(_) => {
            // The panic message may quote input: it is not logged.
            relay.metrics.refusal("front", "relay", "panic");
            tracing::error!("a request task panicked; answered 500");
            axum::response::IntoResponse::into_response((
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "the relay failed on this request\n",
            ))
        }
    };
    record_outcome(&span, &response);
    response
}

fn record_outcome<B>(span: &tracing::Span, response: &http::Response<B>) {
    let status = response.status();
    let error_code = response
        .headers()
        .get("X-shs-errorcode")
        .and_then(|v| v.to_str().ok())
        .and_then(relay_shs::ErrorCode::parse);
    let outcome = match (status.as_u16(), error_code) {
        (_, Some(_)) => "refused",
        (200..=299, None) => "ok",
        (503, None) => "overloaded",
        _ => "error",
    };
    span.record("http.response.status_code", status.as_u16())
        .record("outcome", outcome);
    if let Some(code) = error_code {
        span.record("shs.error_code", code.as_str());
    }
}

/// A bounded label for why a handshake failed (for metrics and logs).
fn handshake_failure_reason(e: &std::io::Error) -> &'static str {
    let text = e.to_string();
    if text.contains("CertificateRequired") || text.contains("NoCertificatesPresented") {
        "no_client_certificate"
    } else if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        "unknown_issuer"
    } else if text.contains("Expired") || text.contains("NotValidYet") {
        "certificate_expired"
    } else if text.contains("certificate") || text.contains("Certificate") {
        "bad_certificate"
    } else if text.contains("eof") || text.contains("EOF") || text.contains("reset") {
        "connection_closed"
    } else {
        "protocol_error"
    }
}
