//! Adapter configuration: one TOML file, overridable by flags and environment.
//!
//! ```toml
//! listen = "127.0.0.1:7001"          # gRPC listener (port 0: any free port)
//! health_interval_ms = 2000          # how often the base service's health is polled
//! default_deadline_ms = 10000        # deadline when the caller sent none
//! shutdown_grace_ms = 15000          # time in-flight calls get on SIGTERM
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

use serde::Deserialize;

/// A configuration error, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: PathBuf,
    pub key: String,
    pub reason: String,
}

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
    /// Reads and checks the file; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let err = |key: &str, reason: String| ConfigError {
            file: path.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err("(file)", e.to_string()))?;
        let config: AdapterConfig = toml::from_str(&text).map_err(|e| {
            let key = e
                .span()
                .map(|s| {
                    let line = text[..s.start].lines().last().unwrap_or("");
                    line.split('=').next().unwrap_or("").trim().to_owned()
                })
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| "(document)".into());
            err(&key, e.message().to_owned())
        })?;
        for (key, p) in [
            ("tls.cert", Some(&config.tls.cert)),
            ("tls.key", Some(&config.tls.key)),
            ("tls.client_ca", Some(&config.tls.client_ca)),
            ("backend.ca", config.backend.ca.as_ref()),
            ("backend.client_cert", config.backend.client_cert.as_ref()),
            ("backend.client_key", config.backend.client_key.as_ref()),
        ] {
            if let Some(p) = p
                && !p.is_file()
            {
                return Err(err(key, format!("file not found: {}", p.display())));
            }
        }
        if config.backend.client_cert.is_some() != config.backend.client_key.is_some() {
            return Err(err(
                "backend.client_key",
                "client_cert and client_key go together".into(),
            ));
        }
        if !config.backend.url.starts_with("https://") && !config.backend.url.starts_with("http://")
        {
            return Err(err("backend.url", "must be an http(s) URL".into()));
        }
        if let Some(t) = &config.tracing
            && let Err((key, reason)) = t.check()
        {
            return Err(err(&format!("tracing.{key}"), reason));
        }
        if config.limits.max_concurrent == 0 {
            return Err(err(
                "limits.max_concurrent",
                "must be greater than 0".into(),
            ));
        }
        Ok(config)
    }
}
