//! # providers-sdk
//!
//! What an agency needs to write a correct shs-relay provider adapter: implement
//! [`Backend`] (one async function from a query to a payload or a provider error,
//! optionally one for submit, and a health check) and call [`main_with`]. The SDK
//! owns everything else, so no adapter has to:
//!
//! - serving the provider contract (`shs_relay.provider.v1`) over gRPC with
//!   **mutual TLS** (only clients chaining to the configured CA; optionally pinned
//!   by CN or fingerprint), `Describe`, and `grpc.health.v1` reflecting the
//!   backend's health;
//! - deadlines: work is cancelled when the caller's gRPC deadline passes and a
//!   backend that overruns yields `DEADLINE_EXCEEDED`, never a late answer;
//! - a concurrency limit (a short wait for a slot inside the call's deadline,
//!   then `RESOURCE_EXHAUSTED`), graceful shutdown on SIGTERM/Ctrl-C,
//!   certificate renewal without a restart (SIGHUP reads `[tls] cert`, `key`
//!   and `client_ca` again: new handshakes use them, open connections finish
//!   on the old ones, an invalid file is refused and logged), JSON
//!   logs without personal data, Prometheus
//!   metrics on an optional admin listener;
//! - configuration from one TOML file ([`AdapterConfig`]) plus flags/env, and
//!   `--check-config FILE` to check one offline with every error named;
//! - tracing: each call runs in a span continuing the relay's trace (the W3C
//!   `traceparent` in the call's metadata), exported over OTLP with a
//!   `[tracing]` section; the trace context is handed on to the base service
//!   ([`base_service_traceparent`]);
//! - announcing planned maintenance of the base service to the relay
//!   ([`maintenance`], seed 002 §12.2.3).
//!
//! # Layout
//!
//! - [`config`]: the TOML file.
//! - `service` (private): the gRPC service around a [`Backend`].
//! - [`metrics`]: the Prometheus registry and the admin listener.
//! - [`maintenance`]: planned maintenance of the base service, announced to
//!   the relay in `Describe` (from `maintenance_file` or the [`Backend`]).
//!
//! Not for: the agency's own protocol; each adapter speaks that itself (use
//! [`base_service_client`] for HTTPS with the configured TLS).

// Exception to [workspace.lints]: 2 slicing sites in `maintenance` (2026-12),
// not yet rewritten.
#![allow(clippy::indexing_slicing, clippy::string_slice)]

pub mod config;
pub mod maintenance;
pub mod metrics;
mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, Server};

pub use config::{AdapterConfig, BaseService, ConfigError, ConfigErrors, FileCheck};
pub use shs_proto::v1 as proto;

/// What a backend returns for a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryOutcome {
    /// The slot payload (for SSBTEK: the XML content of `<ssbt:data>`).
    Data { payload: Vec<u8> },
    /// The base service said no (SSBTEK `kalla=BT`).
    ProviderError { code: String, messages: Vec<String> },
}

/// What a backend returns for a submitted document.
#[derive(Debug, Clone, PartialEq)]
pub enum SubmitOutcome {
    Receipt(proto::Receipt),
    Error(proto::SubmitError),
}

/// Failures that become gRPC statuses (never a late answer).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The base service is down or unreachable: `UNAVAILABLE`.
    #[error("base service unavailable: {0}")]
    Unavailable(String),
    /// The base service did not answer in time: `DEADLINE_EXCEEDED`.
    #[error("base service did not answer in time")]
    DeadlineExceeded,
    /// The query cannot be asked: `INVALID_ARGUMENT`.
    #[error("invalid query: {0}")]
    InvalidArgument(String),
    /// The operation is not offered: `UNIMPLEMENTED`.
    #[error("not implemented")]
    Unimplemented,
    /// Anything else: `INTERNAL`.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The base service's health, as the adapter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Serving,
    NotServing,
}

/// What `Describe` answers (the SDK adds the contract version and operations).
#[derive(Debug, Clone)]
pub struct Description {
    pub provider_id: String,
    pub display_name: String,
    pub adapter_version: String,
    pub payload_format: String,
    pub submit_document_types: Vec<String>,
}

/// An agency's adapter logic. Implementations must not log personal data or
/// payloads.
pub trait Backend: Send + Sync + 'static {
    fn describe(&self) -> Description;

    fn query(
        &self,
        query: proto::QueryRequest,
    ) -> impl Future<Output = Result<QueryOutcome, BackendError>> + Send;

    fn submit(
        &self,
        _submit: proto::SubmitRequest,
    ) -> impl Future<Output = Result<SubmitOutcome, BackendError>> + Send {
        async { Err(BackendError::Unimplemented) }
    }

    /// Whether the adapter implements `submit` (for `Describe`).
    fn supports_submit(&self) -> bool {
        false
    }

    fn health(&self) -> impl Future<Output = Health> + Send;

    /// Planned maintenance the base service itself publishes, announced in
    /// `Describe` beside the adapter's `maintenance_file` ([`maintenance`]).
    /// Default: none.
    fn planned_maintenance(&self) -> impl Future<Output = Vec<maintenance::PlannedWindow>> + Send {
        async { Vec::new() }
    }
}

tokio::task_local! {
    static BASE_SERVICE_TRACEPARENT: Option<String>;
}

/// The W3C `traceparent` to send to the base service while answering a call:
/// the trace the relay started continues into the agency's own service. `None`
/// outside a call or when the call carried no trace context. Adapters add it as
/// the `traceparent` HTTP header of their base-service requests.
pub fn base_service_traceparent() -> Option<String> {
    BASE_SERVICE_TRACEPARENT
        .try_with(Clone::clone)
        .ok()
        .flatten()
}

/// Runs `work` with `traceparent` as its [`base_service_traceparent`]: for
/// adapters (and tests) that serve the contract without this SDK's server.
pub async fn with_base_service_traceparent<F: Future>(
    traceparent: Option<String>,
    work: F,
) -> F::Output {
    BASE_SERVICE_TRACEPARENT.scope(traceparent, work).await
}

/// A reqwest client for the base service built from `backend` (custom CA,
/// optional client certificate, timeout).
pub fn base_service_client(cfg: &BaseService) -> Result<reqwest::Client, ConfigError> {
    relay_pki::tls::install_crypto_provider();
    let err = |key: &str, reason: String| ConfigError {
        file: PathBuf::from("(backend)"),
        key: key.into(),
        reason,
    };
    let mut builder = reqwest::Client::builder()
        // reqwest's default, stated so that it cannot silently change: small
        // requests must not wait for the base service's delayed ACK.
        .tcp_nodelay(true)
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60));
    if let Some(ca) = &cfg.ca {
        let identity = match (&cfg.client_cert, &cfg.client_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        };
        let tls = relay_pki::tls::client_config(ca, identity, &[b"http/1.1"])
            .map_err(|e| err("backend.ca", e.to_string()))?;
        builder = builder.use_preconfigured_tls(tls);
    }
    builder.build().map_err(|e| err("backend", e.to_string()))
}

/// A gRPC client to an adapter over mutual TLS (for the relay and tests).
pub fn connect(
    url: &str,
    tls_name: &str,
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<proto::provider_client::ProviderClient<Channel>> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca)?))
        .identity(Identity::from_pem(
            std::fs::read(cert)?,
            std::fs::read(key)?,
        ))
        .domain_name(tls_name);
    let channel = Channel::from_shared(url.to_owned())?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(proto::provider_client::ProviderClient::new(channel))
}

#[derive(Parser, Debug)]
#[command(about = "shs-relay provider adapter")]
struct Args {
    /// The adapter's TOML configuration.
    #[arg(
        long,
        short,
        env = "SHS_ADAPTER_CONFIG",
        required_unless_present = "check_config"
    )]
    config: Option<PathBuf>,
    /// Overrides `listen`.
    #[arg(long, env = "SHS_ADAPTER_LISTEN")]
    listen: Option<SocketAddr>,
    /// Overrides `backend.url`.
    #[arg(long, env = "SHS_ADAPTER_BACKEND_URL")]
    backend_url: Option<String>,
    /// Checks a configuration file offline instead of serving: prints every
    /// error as `FILE: KEY: REASON` and exits non-zero when there is one.
    /// (`--config`, e.g. from the environment, is then ignored.)
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// With `--check-config`: do not look at the files the configuration names
    /// (certificates, keys, trust anchors), e.g. when checking it on another host.
    #[arg(long, requires = "check_config")]
    skip_files: bool,
}

/// The whole `main` of an adapter: parse flags, load the config, log as JSON to
/// stderr, serve until SIGTERM or Ctrl-C. Prints `{"listen":"ADDR"}` on stdout
/// once bound (launchers that bind port 0 read it).
pub fn main_with<B: Backend>(make: impl FnOnce(&AdapterConfig) -> anyhow::Result<B>) -> ExitCode {
    relay_pki::tls::install_crypto_provider();
    let args = Args::parse();
    let path = match (args.check_config, args.config) {
        (Some(file), _) => {
            let files = if args.skip_files {
                FileCheck::Skip
            } else {
                FileCheck::Contents
            };
            return check_config(&file, files, make);
        }
        (None, Some(path)) => path,
        (None, None) => {
            eprintln!("--config FILE is required");
            return ExitCode::FAILURE;
        }
    };
    let mut cfg = match AdapterConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(u) = args.backend_url {
        cfg.backend.url = u;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let exporting = init_logging(cfg.tracing.as_ref())?;
        let backend = make(&cfg)?;
        let listener = TcpListener::bind(cfg.listen).await?;
        let addr = listener.local_addr()?;
        let shutdown = shutdown_signal();
        let mut admin = None;
        if let Some(a) = &cfg.admin {
            let l = TcpListener::bind(a.listen).await?;
            admin = Some(l.local_addr()?.to_string());
            tokio::spawn(metrics::serve_admin(l));
        }
        println!(
            "{}",
            serde_json::json!({ "listen": addr.to_string(), "admin": admin })
        );
        tracing::info!(%addr, provider = %backend.describe().provider_id, "adapter listening");
        let result = serve_with_listener(backend, cfg, listener, shutdown).await;
        if let Some(e) = exporting {
            e.shutdown_async().await;
        }
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("adapter failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--check-config FILE`: checks the file offline and prints every error (file,
/// key, reason) on stderr, or `FILE: valid` on stdout. Unless files are skipped,
/// the backend is also built from the configuration (no call is made), so the
/// adapter's own `[extra]` settings and the files they name are checked too.
pub fn check_config<B: Backend>(
    file: &Path,
    files: FileCheck,
    make: impl FnOnce(&AdapterConfig) -> anyhow::Result<B>,
) -> ExitCode {
    let cfg = match AdapterConfig::check_file(file, files) {
        Ok(cfg) => cfg,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    if files != FileCheck::Skip {
        let built = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(async { make(&cfg).map(drop) }));
        if let Err(e) = built {
            eprintln!("{}: {e:#}", file.display());
            return ExitCode::FAILURE;
        }
    }
    println!("{}: valid", file.display());
    ExitCode::SUCCESS
}

/// JSON logs to stderr (level from `RUST_LOG`, default `info`) and, with a
/// `[tracing]` section, the SDK's spans exported over OTLP. Call inside the
/// runtime; shut the returned exporter down before exiting.
pub fn init_logging(
    tracing: Option<&relay_telemetry::TracingConfig>,
) -> anyhow::Result<Option<relay_telemetry::Exporting>> {
    let output = relay_telemetry::LogOutput {
        writer: tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
        json: true,
    };
    let service = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "shs-adapter".to_owned());
    Ok(relay_telemetry::init(
        output,
        tracing,
        &service,
        &["providers_sdk"],
    )?)
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is
/// called (inside the runtime), not when the future is first polled: a SIGTERM
/// that arrives in between would otherwise meet the default action and kill the
/// process without its graceful shutdown. Call it before reporting readiness.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let registered = {
        use tokio::signal::unix::{SignalKind, signal};
        // Outside a runtime nothing can be registered yet: fall back to Ctrl-C.
        tokio::runtime::Handle::try_current().ok().and_then(|_| {
            Some((
                signal(SignalKind::terminate()).ok()?,
                signal(SignalKind::interrupt()).ok()?,
            ))
        })
    };
    async move {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = registered {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves on `cfg.listen` until `shutdown` resolves.
pub async fn serve<B: Backend>(
    backend: B,
    cfg: AdapterConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(cfg.listen).await?;
    serve_with_listener(backend, cfg, listener, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0 and read the address).
/// On shutdown, stops accepting and lets in-flight calls finish (up to
/// `shutdown_grace_ms`).
pub async fn serve_with_listener<B: Backend>(
    backend: B,
    cfg: AdapterConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    relay_pki::tls::install_crypto_provider();
    let backend = Arc::new(backend);
    let tls = Arc::new(arc_swap::ArcSwap::from_pointee(server_tls(&cfg.tls)?));
    #[cfg(unix)]
    let reload_task = tokio::spawn(reload_tls_on_sighup(cfg.tls.clone(), tls.clone()));
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let health_task = tokio::spawn(service::watch_health(
        backend.clone(),
        health_reporter,
        Duration::from_millis(cfg.health_interval_ms),
    ));
    let svc = service::ProviderService::new(backend, &cfg);
    let grace = Duration::from_millis(cfg.shutdown_grace_ms);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = Server::builder()
        .add_service(health_service)
        .add_service(proto::provider_server::ProviderServer::new(svc))
        .serve_with_incoming_shutdown(tls_incoming(listener, tls), async move {
            let _ = stop_rx.await;
        });
    tokio::pin!(server);
    let mut shutdown = Box::pin(shutdown);
    let result = tokio::select! {
        r = &mut server => r.map_err(anyhow::Error::from),
        () = &mut shutdown => {
            tracing::info!("shutting down: finishing in-flight calls");
            let _ = stop_tx.send(());
            match tokio::time::timeout(grace, &mut server).await {
                Ok(r) => r.map_err(anyhow::Error::from),
                Err(_) => {
                    tracing::warn!("grace period over");
                    Ok(())
                }
            }
        }
    };
    health_task.abort();
    #[cfg(unix)]
    reload_task.abort();
    result
}

/// The adapter's server TLS set-up from `[tls]`: its certificate and key, and
/// the client CA every caller must chain to (client certificates required).
fn server_tls(tls: &config::ServerTls) -> anyhow::Result<rustls::ServerConfig> {
    relay_pki::tls::server_config(&tls.cert, &tls.key, Some(&tls.client_ca), &[b"h2"])
        .map_err(|e| anyhow::anyhow!("tls (cert, key, client_ca): {e}"))
}

/// Reads `[tls]`'s files again on every SIGHUP: new handshakes use them, open
/// connections keep the set-up they began with; an invalid file is refused
/// (logged with the reason naming it) and the old set-up stays.
#[cfg(unix)]
async fn reload_tls_on_sighup(
    files: config::ServerTls,
    tls: Arc<arc_swap::ArcSwap<rustls::ServerConfig>>,
) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match server_tls(&files) {
            Ok(new) => {
                tls.store(Arc::new(new));
                tracing::info!("TLS certificate, key and client CA reloaded");
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "TLS reload refused; the old certificate stays")
            }
        }
    }
}

/// Accepted connections after their TLS handshake, each with the set-up in
/// force when it was accepted. Handshakes run concurrently (at most 256 at
/// once, 10 s each), so a slow client holds up no other.
fn tls_incoming(
    listener: TcpListener,
    tls: Arc<arc_swap::ArcSwap<rustls::ServerConfig>>,
) -> impl futures::Stream<Item = std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>>
+ Send
+ 'static {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(256));
    tokio::spawn(async move {
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
                () = tx.closed() => break,
            };
            // TCP_NODELAY on every accepted connection: without it a reply
            // written as several small HTTP/2 frames waits for the relay's
            // delayed ACK (Nagle), about 40 ms per call.
            let _ = tcp.set_nodelay(true);
            let Ok(permit) = handshakes.clone().acquire_owned().await else {
                break;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.load_full());
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(stream).await;
                    }
                    Ok(Err(e)) => tracing::info!(%remote, error = %e, "TLS handshake refused"),
                    Err(_) => tracing::info!(%remote, "TLS handshake timed out"),
                }
            });
        }
    });
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|s| (Ok(s), rx)) },
    )
}
