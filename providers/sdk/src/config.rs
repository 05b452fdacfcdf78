//! Adapter configuration: one TOML file, overridable by flags and environment.
//!
//! ```toml
//! listen = "127.0.0.1:7001"          # gRPC listener (port 0: any free port)
//! health_interval_ms = 2000          # how often the base service's health is polled
//! default_deadline_ms = 10000        # deadline when the caller sent none
//! shutdown_grace_ms = 15000          # time in-flight calls get on SIGTERM
//! maintenance_file = "maintenance.toml"   # optional: planned maintenance of the base
//!                                    # service, announced in Describe (re-read each time;
//!                                    # see `maintenance`)
//!
//! [tls]                              # mutual TLS towards the relay
//! cert = "adapter.pem"
//! key = "adapter-key.pem"
//! client_ca = "ca.pem"               # clients must chain to this CA
//! allowed_clients = []               # optional pin: CNs or SHA-256 fingerprints
//!
//! [backend]                          # the agency's base service
//! url = "https://basetjanst.example:8443"
//! ca = "base-ca.pem"                 # optional custom CA
//! client_cert = "adapter.pem"        # optional client certificate
//! client_key = "adapter-key.pem"
//! timeout_ms = 30000
//!
//! [limits]
//! max_concurrent = 64                # calls at the base service at once
//! queue_wait_ms = 200                # a call beyond waits this long for a slot (never
//!                                    # past its deadline), then RESOURCE_EXHAUSTED; 0: at once
//!
//! [admin]                            # optional: /metrics, /livez, /readyz
//! listen = "127.0.0.1:9101"
//!
//! [tracing]                          # optional: export spans over OTLP
//! otlp_endpoint = "http://127.0.0.1:4317"
//! protocol = "grpc"                  # or "http/protobuf"
//! service_name = "shs-adapter-fk"    # default: the executable's name
//! sample_ratio = 1.0                 # for traces the relay did not start
//!
//! [extra]                            # adapter-specific settings
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use relay_config_file::{ConfigError, ConfigErrors, FileCheck};
use relay_config_file::{Report, Section};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    pub listen: SocketAddr,
    pub tls: ServerTls,
    pub backend: BaseService,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Span export over OTLP; none when absent.
    #[serde(default)]
    pub tracing: Option<relay_telemetry::TracingConfig>,
    #[serde(default = "default_health_interval")]
    pub health_interval_ms: u64,
    #[serde(default = "default_deadline")]
    pub default_deadline_ms: u64,
    #[serde(default = "default_grace")]
    pub shutdown_grace_ms: u64,
    /// Planned maintenance of the base service to announce (see
    /// [`crate::maintenance`]); none when absent.
    #[serde(default)]
    pub maintenance_file: Option<PathBuf>,
    #[serde(default)]
    pub extra: toml::Table,
}

fn default_health_interval() -> u64 {
    2_000
}
fn default_deadline() -> u64 {
    10_000
}
fn default_grace() -> u64 {
    15_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
    #[serde(default)]
    pub allowed_clients: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseService {
    pub url: String,
    #[serde(default)]
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    #[serde(default = "default_backend_timeout")]
    pub timeout_ms: u64,
}

fn default_backend_timeout() -> u64 {
    30_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Calls handed to the backend at once.
    pub max_concurrent: usize,
    /// How long a call beyond `max_concurrent` waits for a slot (first come,
    /// first served), capped by the call's own deadline, before the adapter
    /// answers `RESOURCE_EXHAUSTED`. A short burst above the limit is then
    /// absorbed instead of becoming empty slots in the answer.
    pub queue_wait_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent: 64,
            queue_wait_ms: 200,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub listen: SocketAddr,
}

impl AdapterConfig {
    /// Reads and checks the file, stopping at the first error (start-up: the
    /// named files must exist); errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::check_file(path, FileCheck::Exists).map_err(ConfigErrors::into_first)
    }

    /// Reads and checks the file and reports every error found
    /// (`--check-config`); `files` says how the files it names are checked.
    /// `[extra]` is the adapter's own: the SDK only checks that it is a table.
    pub fn check_file(path: &Path, files: FileCheck) -> Result<Self, ConfigErrors> {
        let config: AdapterConfig = relay_config_file::parse(
            path,
            &[
                Section::one::<SocketAddr>("listen", true),
                Section::one::<ServerTls>("tls", true),
                Section::one::<BaseService>("backend", true),
                Section::one::<Limits>("limits", false),
                Section::one::<Admin>("admin", false),
                Section::one::<relay_telemetry::TracingConfig>("tracing", false),
                Section::one::<u64>("health_interval_ms", false),
                Section::one::<u64>("default_deadline_ms", false),
                Section::one::<u64>("shutdown_grace_ms", false),
                Section::one::<PathBuf>("maintenance_file", false),
                Section::one::<toml::Table>("extra", false),
            ],
        )?;
        let mut r = Report::new(path, files);
        r.certificates("tls.cert", &config.tls.cert);
        r.private_key("tls.key", &config.tls.key);
        r.certificates("tls.client_ca", &config.tls.client_ca);
        if let Some(p) = &config.backend.ca {
            r.certificates("backend.ca", p);
        }
        if let Some(p) = &config.backend.client_cert {
            r.certificates("backend.client_cert", p);
        }
        if let Some(p) = &config.backend.client_key {
            r.private_key("backend.client_key", p);
        }
        r.key_pair("tls.key", &config.tls.cert, &config.tls.key);
        if let (Some(cert), Some(key)) = (&config.backend.client_cert, &config.backend.client_key) {
            r.key_pair("backend.client_key", cert, key);
        }
        if config.backend.client_cert.is_some() != config.backend.client_key.is_some() {
            r.error(
                "backend.client_key",
                "client_cert and client_key go together",
            );
        }
        if !config.backend.url.starts_with("https://") && !config.backend.url.starts_with("http://")
        {
            r.error("backend.url", "must be an http(s) URL");
        }
        r.positive("backend.timeout_ms", config.backend.timeout_ms);
        if let Some(t) = &config.tracing
            && let Err((key, reason)) = t.check()
        {
            r.error(format!("tracing.{key}"), reason);
        }
        r.positive("limits.max_concurrent", config.limits.max_concurrent as u64);
        r.positive("health_interval_ms", config.health_interval_ms);
        r.positive("default_deadline_ms", config.default_deadline_ms);
        if let Some(p) = &config.maintenance_file
            && p.exists()
            && let Err(e) = crate::maintenance::load(p)
        {
            r.error("maintenance_file", e);
        }
        r.finish(config)
    }
}
