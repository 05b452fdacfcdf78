//! The HTTPS front: accepts TCP connections, completes the mutual-TLS handshake
//! (a client without a certificate chaining to the configured CA is refused
//! there), and serves HTTP/1.1 and HTTP/2 with the peer certificate attached to
//! every request as a [`PeerCert`] extension.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::identity::PeerCert;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets in-flight
/// requests finish (up to `grace`).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
    on_handshake_failure: impl Fn(&'static str) + Send + Sync + 'static,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let on_handshake_failure = Arc::new(on_handshake_failure);
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
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        let on_failure = on_handshake_failure.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
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
            let builder = auto::Builder::new(TokioExecutor::new());
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
