//! # relay-server
//!
//! The relay: an SHS 1.2 node that answers SSBTEK questions by asking every
//! provider adapter in parallel over gRPC and combining their answers.
//!
//! # Layout
//!
//! Every request runs straight through these steps, never back:
//!
//! front → admission → decode → policy → product → providers → combine → reply
//!
//! - [`front`]: TCP accept (connection cap), mutual-TLS handshake (bounded in
//!   number and time), HTTP/1.1 and HTTP/2 (header-read timeout, keep-alive);
//!   attaches the peer certificate; a panic in a request answers 500.
//! - [`admission`]: the **one admission step** of every way in: identify the
//!   caller from its certificate ([`identity`]: organisation, fingerprint, role),
//!   take an in-flight permit from the caller's fair share, and the one place a
//!   refusal is counted, logged, audited ([`outcomes`]) and rendered.
//! - The ways in only read their request and render their answer, each with
//!   its own [`admission::Way`]: [`rs`] (SHS `POST /shs/rs`, decoded by
//!   [`shs`]: the label as the first MIME part, checked once against the
//!   caller), [`asynch`] (store-and-fetch: accept, stream checks, route, and
//!   the delivery service `/shs/ds`), [`soap`] (the SSBTEK v10 web service)
//!   and [`soap::elt`] (ELT's `SkickaTidredovisning`); [`body`] reads a body
//!   whole for any of them.
//! - [`policy`]: the **one policy gate** every product entry point calls: the
//!   caller's agreement and suspension, and for a processor the municipality it
//!   acts for (named, with its own agreement, not suspended).
//! - [`products`]: the registry, one folder per product with its entry point
//!   and its decode/encode per way in, and the one dispatch:
//!   [`products::ping`], [`products::ssbtek`] (admit: gate, parse, gate per
//!   question; answer: fan out over [`providers`], combine) and
//!   [`products::elt`] (the terms' rules, Submit).
//! - [`failure`]: the **one error model**, a leaf: `Failure { by, code, info,
//!   retry_after }` saying who failed (caller, provider, relay); each way in
//!   renders it (an SHS error, an SSBTEK fault, an ELT fault, a plain status);
//!   a relay-side failure is a 5xx.
//!
//! Tracing follows the same path: [`front::traced`] opens a `front` span per
//! request, [`policy::decide`] a `policy` span per decision, the fan-out a
//! `provider.call` span per call (its context goes to the adapter as a W3C
//! `traceparent`) and a `combine` span; they are exported only with a
//! `[tracing]` section (crate `relay-telemetry`).
//!
//! Beside the request path: [`config`] (the TOML file, checked at start),
//! [`cpu`] (large documents parsed off the async workers), [`keys`] (the
//! mailbox key ring on a node: the start-up check, following the active key,
//! `/admin/keys`, `shs-relay keys` and `store verify`),
//! [`admin`] and [`metrics`] (the admin listener: metrics, health, status,
//! maintenance; mutual TLS with operator certificates, required off loopback),
//! [`console`] (the operators' web console on the admin listener and its JSON),
//! [`operator`] and [`decisions`] (run-time operator decisions, kept in the
//! store across restarts), [`parties`] (the register of connected parties:
//! lifecycle states, test checks, certificates, caseworkers' declarations),
//! [`service_levels`] (disturbance state, the prober,
//! readiness), [`status`] (the status feed for connected parties: incidents,
//! components, agencies' announced maintenance, `/status/v1/...`), [`vitals`]
//! (what the alert rules watch: certificate expiry, readiness, the store, lost
//! audit records) and [`limits`] (ELT's rate and retry bookkeeping).
//!
//! Not here: the SHS wire format (crate `relay-shs`), the SSBTEK document model
//! (crate `relay-ssbtek`), identifiers (`relay-ident`), certificates (`relay-pki`),
//! the development stack behind `shs-relay demo` (crate `relay-demo`).

// A `Failure` (who failed, the code, a text, the message ids) is a few hundred
// bytes; it travels only on the refusal path, once per request, so boxing it
// would buy nothing measurable and cost readability at every `?`.
#![allow(clippy::result_large_err)]
// Exception to [workspace.lints]: 50 indexing/slicing sites (2026-12) not yet
// rewritten; `unwrap` and `expect` stay denied outside tests.
#![allow(clippy::indexing_slicing, clippy::string_slice)]

pub mod admin;
pub mod admission;
pub mod asynch;
pub mod body;
pub mod channel;
pub mod config;
pub mod console;
pub mod cpu;
pub mod decisions;
pub mod failure;
pub mod front;
pub mod identity;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod operator;
pub mod outcomes;
pub mod parties;
pub mod policy;
pub mod products;
pub mod providers;
pub mod rs;
pub mod service_levels;
pub mod shs;
pub mod soap;
pub mod status;
pub mod vitals;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::providers::ProviderPool;

/// The admin listener's router: the admin calls ([`admin`]) with the pages of
/// the modules above it (the console, the incidents of the status page, the
/// register of parties), so that `admin` imports none of them.
pub fn admin_router(relay: Arc<Relay>) -> Router {
    let pages = Router::new()
        .route("/", axum::routing::get(console::page_endpoint))
        .route("/admin/console", axum::routing::get(console::json_endpoint))
        .route(
            "/admin/incidents",
            axum::routing::get(status::admin::list).post(status::admin::open),
        )
        .route(
            "/admin/incidents/{id}/update",
            axum::routing::post(status::admin::update),
        )
        .merge(parties::admin::routes())
        .merge(keys::admin::routes());
    admin::router(relay, pages)
}

/// Everything a request handler needs, shared by all requests.
pub struct Relay {
    live: arc_swap::ArcSwap<Live>,
    config_path: Option<std::path::PathBuf>,
    pub operator: operator::OperatorState,
    /// The mailbox for asynchronous SHS, when configured.
    pub mailbox: Option<Arc<relay_store::Store>>,
    /// The mailbox key ring (this node's key file and the store's active
    /// key), with the mailbox.
    pub key_ring: Option<Arc<relay_mailbox::KeyRing>>,
    /// The audit trail and its pseudonym key, when configured.
    pub audit: Option<(relay_audit::AuditLog, relay_audit::CurrentKey)>,
    /// ELT's per-vendor rate limiter and retry tracker.
    pub elt_limiters: products::elt::Limiters,
    /// The in-flight limit, shared fairly between organisations.
    pub in_flight: admission::InFlight,
    /// Asynchronous uploads in progress per sender (`mailbox.max_uploads_per_sender`).
    pub uploads: asynch::Uploads,
    /// The disturbance state and the prober's view.
    pub service_levels: service_levels::ServiceLevels,
    /// The console's month-to-date service levels, recomputed at most once a minute.
    pub console: console::SlaCache,
    /// Where the operator's run-time decisions are kept (see [`decisions`]).
    pub decisions: Option<relay_store::Store>,
    /// When this node last read the stored decisions, and what it skipped.
    pub followed: decisions::Followed,
    /// The status feed's facts (components, incidents, announced maintenance).
    pub status: status::Status,
    /// The front's and the admin listener's TLS set-ups, once they serve;
    /// [`Relay::reload`] reads their files again.
    pub serving_tls: std::sync::OnceLock<ServingTls>,
    /// This relay's Prometheus metrics and the console's request history
    /// (a value per relay, not a process global).
    pub metrics: Arc<metrics::Metrics>,
}

/// The TLS set-ups the listeners accept with (see [`front::ServerTls`]).
pub struct ServingTls {
    pub front: front::ServerTls,
    pub admin: Option<front::ServerTls>,
}

/// The front's TLS set-up (`[front] cert`, `key`, `client_ca`) and the admin
/// listener's (when it speaks TLS), read from their files; errors name the key
/// and the file.
fn tls_setups(
    config: &Config,
) -> anyhow::Result<(rustls::ServerConfig, Option<rustls::ServerConfig>)> {
    let front = relay_pki::tls::server_config(
        &config.front.cert,
        &config.front.key,
        Some(&config.front.client_ca),
        &[b"h2", b"http/1.1"],
    )
    .context("front (cert, key, client_ca)")?;
    let admin = match config.admin.as_ref().and_then(|a| a.tls(&config.front)) {
        Some((cert, key, ca)) => Some(
            relay_pki::tls::server_config(cert, key, Some(ca), &[b"h2", b"http/1.1"])
                .context("admin: the listener's TLS set-up")?,
        ),
        None => None,
    };
    Ok((front, admin))
}

/// What a configuration reload replaces: the configuration and the provider
/// pool built from it. A request works on the `Live` it started with, so a reload
/// never fails an in-flight request.
pub struct Live {
    pub config: Config,
    pub providers: ProviderPool,
}

impl Relay {
    /// The configuration file this relay was started from.
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    /// The configuration and provider pool in force.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Reloads the configuration file: agreements, identities, processors,
    /// providers (added, removed, new endpoints or timeouts, and their TLS files,
    /// read again), limits (except `max_in_flight`) take effect for new requests;
    /// in-flight requests finish on the old one. The front's and the admin
    /// listener's certificate, key and client CA are read again too: new
    /// handshakes use them, open connections keep the old ones. An invalid
    /// file (configuration, certificate, key or CA) is refused with the reason
    /// naming it and changes nothing.
    pub fn reload(&self) -> anyhow::Result<()> {
        let path = self
            .config_path
            .as_ref()
            .context("this relay was not started from a configuration file")?;
        let config = Config::load(path)?;
        let old = self.live();
        // The TLS files take effect now; the rest of [front] at the next restart.
        let front_rest = |c: &Config| {
            let mut f = c.front.clone();
            f.cert = Default::default();
            f.key = Default::default();
            f.client_ca = Default::default();
            format!("{f:?}")
        };
        for (key, same) in [
            ("front", front_rest(&config) == front_rest(&old.config)),
            (
                "mailbox",
                format!("{:?}", config.mailbox) == format!("{:?}", old.config.mailbox),
            ),
            (
                "audit",
                format!("{:?}", config.audit) == format!("{:?}", old.config.audit),
            ),
            (
                "admin",
                format!("{:?}", config.admin) == format!("{:?}", old.config.admin),
            ),
            ("tracing", config.tracing == old.config.tracing),
            (
                // Imported once at start (decisions::load).
                "elt.mandates_file",
                config.elt.as_ref().map(|e| &e.mandates_file)
                    == old.config.elt.as_ref().map(|e| &e.mandates_file),
            ),
        ] {
            if !same {
                tracing::warn!(
                    section = key,
                    "changes to this section take effect at the next restart"
                );
            }
        }
        let (front_tls, admin_tls) = tls_setups(&config)?;
        let providers = ProviderPool::new(&config)?;
        let rotated_key = self.reread_audit_key(&config)?;
        keys::reload(self)?;
        if let Some(serving) = self.serving_tls.get() {
            serving.front.replace(front_tls);
            if let (Some(now), Some(new)) = (&serving.admin, admin_tls) {
                now.replace(new);
            }
        }
        if let (Some((_, current)), Some(key)) = (&self.audit, rotated_key) {
            tracing::info!(
                key_id = key.id(),
                "audit pseudonym key rotated: new records use the new key"
            );
            current.replace(key);
        }
        vitals::record_certificates(&self.metrics, &config);
        self.live.store(Arc::new(Live { config, providers }));
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// The audit pseudonym key at `[audit] key_file` when it is another key
    /// than the one in use (`shs-relay audit rotate-key` replaced it).
    fn reread_audit_key(
        &self,
        config: &Config,
    ) -> anyhow::Result<Option<relay_audit::PseudonymKey>> {
        let (Some((_, current)), Some(a)) = (&self.audit, &config.audit) else {
            return Ok(None);
        };
        let key = relay_audit::PseudonymKey::load(&a.key_file)
            .with_context(|| format!("audit.key_file: {}", a.key_file.display()))?;
        Ok((key.id() != current.load().id()).then_some(key))
    }

    pub async fn new(config: Config) -> anyhow::Result<Self> {
        Self::with_path(config, None).await
    }

    pub async fn with_path(
        config: Config,
        config_path: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Self> {
        let providers = ProviderPool::new(&config)?;
        let metrics = Arc::new(metrics::Metrics::new());
        let in_flight = admission::InFlight::new(
            config.limits.max_in_flight,
            config.limits.per_caller(),
            metrics.in_flight.clone(),
        );
        // The mailbox and the run-time decisions share one store: redb files
        // beside `mailbox.store`, or the PostgreSQL database of `[store]`.
        let mut key_ring = None;
        let store = match &config.mailbox {
            Some(m) => {
                // Never created here: a node without its key file refuses to
                // start naming the key ids the store needs (keys::start).
                let kek = keys::open(&m.key_file)?;
                key_ring = Some(kek.clone());
                let options = relay_store::redb::StoreOptions {
                    retention: m.retention()?,
                    // An unfinished upload of a node that died is swept once no
                    // upload could still be running (the receive timeout, and a
                    // margin).
                    max_upload_time: std::time::Duration::from_secs(m.receive_timeout_s)
                        + std::time::Duration::from_secs(300),
                    cache_size: config.store.redb_cache_bytes(),
                    ..relay_store::redb::StoreOptions::default()
                };
                let store = relay_store::Store::open(&config.store, &m.store, kek.clone(), options)
                    .await
                    .with_context(|| match config.store.kind {
                        relay_store::StoreKind::Redb => {
                            format!("mailbox.store: {}", m.store.display())
                        }
                        relay_store::StoreKind::Postgres => {
                            "store: the PostgreSQL database".to_owned()
                        }
                    })?;
                keys::start(&store, &kek).await?;
                Some(store)
            }
            None => {
                tracing::warn!(
                    "no [mailbox]: asynchronous SHS is refused, and suspensions, withdrawals and maintenance set through the admin API last until the relay stops"
                );
                None
            }
        };
        let mailbox = store.clone().map(Arc::new);
        let audit = match &config.audit {
            Some(a) => {
                std::fs::create_dir_all(&a.dir)
                    .with_context(|| format!("audit.dir: {}", a.dir.display()))?;
                let key = if a.key_file.exists() {
                    relay_audit::PseudonymKey::load(&a.key_file)
                } else {
                    relay_audit::PseudonymKey::create(&a.key_file)
                }
                .with_context(|| format!("audit.key_file: {}", a.key_file.display()))?;
                let mut cfg = relay_audit::AuditConfig::new(&a.dir);
                cfg.max_file_bytes = a.max_file_mb * 1024 * 1024;
                cfg.retention_months = a.retention_months;
                let lost = metrics.audit_write_errors.clone();
                cfg.on_write_error = Some(relay_audit::WriteErrorHook::new(move || {
                    lost.inc();
                }));
                let (log, task) = relay_audit::AuditLog::open(cfg)
                    .with_context(|| format!("audit.dir: {}", a.dir.display()))?;
                task.spawn();
                Some((log, relay_audit::CurrentKey::new(key)))
            }
            None => None,
        };
        let config_for_levels = config.clone();
        let status = status::Status::open(&config, store.as_ref())
            .context("status: the status board beside the store")?;
        let decisions = store;
        Ok(Self {
            live: arc_swap::ArcSwap::from_pointee(Live { config, providers }),
            config_path,
            operator: operator::OperatorState::default(),
            mailbox,
            key_ring,
            audit,
            // ELT's rate, retries and accepted reports go through the store on
            // either engine; memory only without one.
            elt_limiters: match &decisions {
                Some(store) => products::elt::Limiters::with_store(
                    products::elt::shared::SharedStore::new(store.clone()),
                ),
                None => products::elt::Limiters::new(),
            },
            in_flight,
            uploads: asynch::Uploads::default(),
            service_levels: service_levels::ServiceLevels::new(&config_for_levels),
            console: console::SlaCache::default(),
            decisions,
            followed: decisions::Followed::default(),
            status,
            serving_tls: std::sync::OnceLock::new(),
            metrics,
        })
    }
}

/// The HTTP routes of the front.
pub fn router(relay: Arc<Relay>) -> Router {
    let soap_path = relay.live().config.soap.ssbtek_path.clone();
    let elt_path = relay
        .live()
        .config
        .elt
        .as_ref()
        .map(|e| e.soap_path.clone());
    let mut router = Router::new();
    if let Some(path) = elt_path {
        router = router.route(
            &path,
            axum::routing::post(soap::elt::handle).get(soap::elt::contract),
        );
    }
    router
        .route("/shs/rs", axum::routing::post(rs::receive))
        .route(
            "/shs/ds/{outbox}",
            axum::routing::get(asynch::delivery::list),
        )
        .route(
            "/shs/ds/{outbox}/{second}",
            axum::routing::get(asynch::delivery::fetch).post(asynch::delivery::ack),
        )
        .route(
            &soap_path,
            axum::routing::post(soap::handle).get(soap::contract),
        )
        .route(
            "/status/v1/summary.json",
            axum::routing::get(status::feed::summary),
        )
        .route(
            "/status/v1/history.atom",
            axum::routing::get(status::feed::history),
        )
        .layer(axum::middleware::from_fn_with_state(
            relay.clone(),
            front::traced,
        ))
        .with_state(relay)
}

/// Loads the configuration, binds the front and serves until SIGTERM or Ctrl-C.
pub async fn serve_from_file(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let exporting = init_logging(&config.log, config.tracing.as_ref())?;
    let listener = TcpListener::bind(config.front.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.front.listen))?;
    let addr = listener.local_addr()?;
    let admin = match &config.admin {
        Some(a) => Some(
            TcpListener::bind(a.listen)
                .await
                .with_context(|| format!("admin.listen: cannot listen on {}", a.listen))?,
        ),
        None => None,
    };
    let admin_addr = admin.as_ref().map(|l| l.local_addr()).transpose()?;
    let probe = match config.admin.as_ref().and_then(|a| a.probe_listen) {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("admin.probe_listen: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let probe_addr = probe.as_ref().map(|l| l.local_addr()).transpose()?;
    // One machine-readable line for launchers (the demo, tests) that bind port 0.
    println!(
        "{}",
        serde_json::json!({
            "listen": addr.to_string(),
            "admin": admin_addr.map(|a| a.to_string()),
            "probe": probe_addr.map(|a| a.to_string()),
        })
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(shutdown.clone()));
    tracing::info!(%addr, node = %config.node.id, "shs-relay listening");
    let result = run_inner(
        config,
        Some(path.to_owned()),
        listener,
        Listeners { admin, probe },
        shutdown,
    )
    .await;
    if let Some(e) = exporting {
        e.shutdown_async().await;
    }
    result
}

/// Serves the front on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_admin(config, listener, None, shutdown).await
}

/// As [`run`], with the admin listener when given.
pub async fn run_with_admin(
    config: Config,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_inner(
        config,
        None,
        listener,
        Listeners { admin, probe: None },
        shutdown,
    )
    .await
}

/// The listeners beside the front: the admin listener and the read-only
/// probe listener (`[admin] probe_listen`).
struct Listeners {
    admin: Option<TcpListener>,
    probe: Option<TcpListener>,
}

async fn run_inner(
    config: Config,
    config_path: Option<std::path::PathBuf>,
    listener: TcpListener,
    Listeners { admin, probe }: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (tls, admin_tls) = tls_setups(&config)?;
    let tls = front::ServerTls::new(tls);
    let admin_tls = admin_tls.map(front::ServerTls::new);
    let front_limits = front::FrontLimits::of(&config.front);
    let relay = Arc::new(Relay::with_path(config, config_path).await?);
    let _ = relay.serving_tls.set(ServingTls {
        front: tls.clone(),
        admin: admin_tls.clone(),
    });
    decisions::load(&relay)
        .await
        .context("loading the stored run-time decisions")?;
    parties::start(&relay)
        .await
        .context("loading the register of parties")?;
    outcomes::announce_configured_windows(&relay).await;
    #[cfg(unix)]
    tokio::spawn(reload_on_sighup(relay.clone()));
    tokio::spawn(asynch::route::resume(relay.clone()));
    tokio::spawn(asynch::route::housekeeping(relay.clone()));
    tokio::spawn(asynch::route::leases(relay.clone()));
    tokio::spawn(decisions::follow(relay.clone()));
    tokio::spawn(keys::follow(relay.clone()));
    tokio::spawn(decisions::housekeeping(relay.clone()));
    tokio::spawn(parties::follow(relay.clone()));
    tokio::spawn(service_levels::run(
        relay.clone(),
        listener.local_addr().ok(),
    ));
    tokio::spawn(status::run(relay.clone()));
    vitals::record_certificates(&relay.metrics, &relay.live().config);
    tokio::spawn(vitals::run(relay.clone()));
    if let Some(probe) = probe {
        let app = vitals::probe_router(relay.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(probe, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
    }
    if let Some(admin) = admin {
        let app = admin_router(relay.clone());
        let stop = shutdown.clone();
        match admin_tls {
            // Operator certificates: the same accept loop and handshake as the front.
            Some(tls) => {
                tokio::spawn(front::serve(
                    admin,
                    tls,
                    app,
                    stop,
                    Duration::from_secs(5),
                    front_limits.clone(),
                    |reason| tracing::warn!(reason, "admin listener: TLS handshake refused"),
                ));
            }
            None => {
                tokio::spawn(async move {
                    let _ = axum::serve(admin, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await;
                });
            }
        }
    }
    let metrics = relay.metrics.clone();
    let app = router(relay);
    front::serve(
        listener,
        tls,
        app,
        shutdown,
        Duration::from_secs(30),
        front_limits,
        move |reason| {
            metrics
                .tls_handshake_failures
                .get_or_create(&metrics::Reason { reason })
                .inc();
        },
    )
    .await;
    tracing::info!("shs-relay stopped");
    Ok(())
}

/// Reloads the configuration on every SIGHUP.
#[cfg(unix)]
async fn reload_on_sighup(relay: Arc<Relay>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match relay.reload() {
            Ok(()) => outcomes::admin_action(&relay, "signal", "reload", "configuration").await,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reload refused; the old configuration stays")
            }
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C and cancels `token`.
pub async fn shutdown_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
    token.cancel();
}

/// JSON (default) or text logs to stderr or a file; level from `RUST_LOG`
/// (default `info`). Log lines never carry personal data or payloads: handlers
/// log transaction ids, organisation numbers, outcomes and latencies only.
///
/// With a `[tracing]` section, the relay's spans are exported over OTLP too
/// (see `relay_telemetry`); the returned exporter is shut down at exit so the
/// last spans are sent.
pub fn init_logging(
    log: &config::Log,
    tracing: Option<&relay_telemetry::TracingConfig>,
) -> anyhow::Result<Option<relay_telemetry::Exporting>> {
    let writer: tracing_subscriber::fmt::writer::BoxMakeWriter = match &log.file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("log.file: {}", path.display()))?;
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(Arc::new(file))
        }
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    let output = relay_telemetry::LogOutput {
        writer,
        json: log.format.as_deref() != Some("text"),
    };
    Ok(relay_telemetry::init(
        output,
        tracing,
        "shs-relay",
        &["relay_server"],
    )?)
}

/// The address a `SocketAddr` listener was bound to, for messages.
pub fn display_addr(addr: &SocketAddr) -> String {
    addr.to_string()
}
