//! The relay's configuration: one typed struct loaded from one TOML file.
//!
//! Loading checks everything it can before the relay starts (files exist, numbers
//! are valid, identifiers parse, references between sections resolve) and names the
//! file and the key in every error. Start-up stops at the first error;
//! [`Config::check_file`] (`shs-relay config check`) reports all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use relay_config_file::{ConfigError, ConfigErrors, FileCheck};
use relay_config_file::{Report, Section};
use relay_ident::Organisationsnummer;
use relay_ssbtek::Slot;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: Node,
    pub front: Front,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub identity: IdentityRules,
    pub products: Products,
    pub provider_tls: ProviderTls,
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    #[serde(default)]
    pub agreements: Vec<Agreement>,
    #[serde(default)]
    pub processors: Vec<Processor>,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub soap: Soap,
    /// The admin listener; none when absent.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Asynchronous SHS (the mailbox); refused when absent.
    #[serde(default)]
    pub mailbox: Option<MailboxConfig>,
    /// Where the mailbox and the shared run-time state live: redb beside
    /// `mailbox.store` (one node, the default) or PostgreSQL (several nodes).
    #[serde(default)]
    pub store: relay_store::StoreConfig,
    /// The audit trail; none when absent.
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    /// ELT (time reports to Försäkringskassan); not offered when absent.
    #[serde(default)]
    pub elt: Option<EltConfig>,
    /// Span export over OTLP; none (and no trace context sent) when absent.
    #[serde(default)]
    pub tracing: Option<relay_telemetry::TracingConfig>,
    /// The built-in availability prober.
    #[serde(default)]
    pub probe: ProbeConfig,
    /// When providers count as failing and when that is a disturbance.
    #[serde(default)]
    pub disturbance: relay_audit::DisturbanceConfig,
    /// The service-level targets `shs-relay sla-report` holds the audit trail
    /// against (default: the terms'); see [`Config::sla`].
    #[serde(default)]
    pub service_levels: relay_audit::SlaConfig,
    /// The status feed for connected parties (`/status/v1/...`).
    #[serde(default)]
    pub status: StatusConfig,
}

/// ELT: the rules of the service's terms (seed 000) and where reports go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EltConfig {
    /// The provider whose adapter receives reports (`Submit`).
    #[serde(default = "default_elt_provider")]
    pub provider: Slot,
    /// Path of the SkickaTidredovisning SOAP service (`?wsdl` serves the WSDL).
    #[serde(default = "default_elt_soap_path")]
    pub soap_path: String,
    /// Calls per second per vendor (token bucket; excess refused at once).
    #[serde(default = "default_elt_rate")]
    pub calls_per_second: f64,
    /// Calls a vendor may make at once after a quiet period.
    #[serde(default = "default_one")]
    pub burst: u32,
    /// Retries of the same call (same report bytes, same signatures) within
    /// the window, whatever each call's outcome; the retry after the last
    /// allowed one is refused (ELT-RETRY-LIMIT). A corrected call is a new call.
    #[serde(default = "default_elt_retries")]
    pub max_retries: u32,
    #[serde(default = "default_elt_window")]
    pub retry_window_s: u64,
    /// Largest report (the XML), in bytes.
    #[serde(default = "default_elt_report_bytes")]
    pub max_report_bytes: usize,
    /// Largest signature, in bytes.
    #[serde(default = "default_elt_signature_bytes")]
    pub max_signature_bytes: usize,
    /// Deadline of one submission to the provider, in milliseconds.
    #[serde(default = "default_elt_timeout")]
    pub timeout_ms: u64,
    /// Vendors (organisation numbers) shut off in configuration.
    #[serde(default)]
    pub suspended_vendors: BTreeSet<Organisationsnummer>,
    /// Assistance companies (organisation numbers in reports) shut off.
    #[serde(default)]
    pub suspended_anordnare: BTreeSet<Organisationsnummer>,
    /// Client certificates (SHA-256 of the DER, hex) registered for the test
    /// environment only: refused by a production relay.
    #[serde(default)]
    pub test_only_certificates: Vec<String>,
    /// Which system vendor may submit for which assistance companies
    /// (`[[elt.mandates]]`); a report for any other is refused (ELT-NO-MANDATE).
    /// The admin API grants and revokes more at run time.
    #[serde(default)]
    pub mandates: Vec<EltMandate>,
    /// An old file of the admin API's mandate grants and revocations (JSON),
    /// from before they lived in the store: imported once at start (pairs the
    /// store has no decision for yet), never written. A file that cannot be
    /// read or parsed stops the start with its name; a missing one is nothing
    /// to import. Deprecated: remove the key once imported.
    #[serde(default)]
    pub mandates_file: Option<PathBuf>,
    /// The CA certificate(s) (PEM) that issue signer certificates: what
    /// `crls` and OCSP responses sent over SOAP are verified with. Without it
    /// revocation is not checked by the relay.
    #[serde(default)]
    pub signing_ca: Option<PathBuf>,
    /// CRLs (PEM or DER) of the signing CA, read at start and on every reload
    /// (SIGHUP); one past its nextUpdate refuses reports (ELT-CRL-EXPIRED).
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// Clock skew allowed on an OCSP response's thisUpdate, in seconds.
    #[serde(default = "default_elt_ocsp_skew")]
    pub ocsp_skew_s: u32,
    /// Accepted reports the relay remembers to answer repeats with the
    /// original receipt (oldest forgotten first; the adapter keeps its own).
    #[serde(default = "default_elt_remembered")]
    pub remembered_reports: usize,
    /// Loaded from `signing_ca` and `crls` when the file is loaded.
    #[serde(skip)]
    pub revocation: Option<std::sync::Arc<relay_elt::revocation::Revocation>>,
}

/// One `[[elt.mandates]]` entry: the assistance companies a vendor submits for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EltMandate {
    /// The system vendor (the client certificate's organisation).
    pub vendor: Organisationsnummer,
    /// The assistance companies (organisationsnummer in the reports).
    pub anordnare: BTreeSet<Organisationsnummer>,
}

fn default_elt_ocsp_skew() -> u32 {
    relay_elt::revocation::DEFAULT_OCSP_SKEW_S
}
fn default_elt_remembered() -> usize {
    100_000
}

fn default_elt_provider() -> Slot {
    Slot::Fk
}
fn default_elt_soap_path() -> String {
    "/elt/SkickaTidredovisning/1".into()
}
fn default_elt_rate() -> f64 {
    1.0
}
fn default_one() -> u32 {
    1
}
fn default_elt_retries() -> u32 {
    5
}
fn default_elt_window() -> u64 {
    24 * 3600
}
fn default_elt_report_bytes() -> usize {
    1024 * 1024
}
fn default_elt_signature_bytes() -> usize {
    64 * 1024
}
fn default_elt_timeout() -> u64 {
    30_000
}

impl EltConfig {
    /// Whether `vendor` has a mandate in configuration for `anordnare`.
    pub fn has_mandate(
        &self,
        vendor: &Organisationsnummer,
        anordnare: &Organisationsnummer,
    ) -> bool {
        self.mandates
            .iter()
            .any(|m| m.vendor == *vendor && m.anordnare.contains(anordnare))
    }

    /// Whether a certificate (SHA-256 hex of its DER) is registered as test-only.
    pub fn is_test_only(&self, fingerprint: &str) -> bool {
        self.test_only_certificates
            .iter()
            .any(|f| f.replace(':', "").eq_ignore_ascii_case(fingerprint))
    }
}

/// The audit trail: a separate append-only JSON-lines file, not the application log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Directory of `audit.jsonl` and its rotated files (created, mode 0700).
    pub dir: PathBuf,
    /// The pseudonym key (HMAC-SHA256): held by the security officer, not by log
    /// readers; created at start when missing.
    pub key_file: PathBuf,
    /// Rotate when the file reaches this size.
    #[serde(default = "default_audit_mb")]
    pub max_file_mb: u64,
    /// Closed audit files older than this many months are deleted (the deletion
    /// itself is written to the trail); 0 keeps everything. Default 13: the
    /// yearly service-level figures need every file back to 1 January.
    #[serde(default = "default_audit_retention")]
    pub retention_months: u32,
    /// Planned maintenance windows, announced in advance: the service-level
    /// report counts them as planned, not as unplanned outages.
    #[serde(default)]
    pub planned_maintenance: Vec<PlannedWindow>,
    /// What the relay does when a record cannot be written: `refuse` (the
    /// default, in both environments) releases an SSBTEK answer or an ELT
    /// receipt only once its record is on disk and answers a relay-side error
    /// otherwise; `continue` answers anyway (and logs and counts the loss).
    #[serde(default)]
    pub on_failure: AuditOnFailure,
}

/// `[audit] on_failure`: fail closed (`refuse`) or open (`continue`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOnFailure {
    /// No answer leaves before its record is written and fsynced.
    #[default]
    Refuse,
    /// Answers go out whether or not their record could be written.
    Continue,
}

fn default_audit_retention() -> u32 {
    13
}

/// A planned maintenance window (RFC 3339 times).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlannedWindow {
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub reason: String,
}

fn default_audit_mb() -> u64 {
    64
}

/// The built-in prober: an end-to-end check at a fixed interval, in and outside
/// opening hours, written to the audit trail as probe records (the service-level
/// report's availability comes from them).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Seconds between probes (0 switches the prober off).
    pub interval_s: u64,
    /// Consecutive failed probes that make an unavailable period.
    pub failures_for_outage: u32,
    /// Probe intervals without any probe record that count as the relay down.
    pub gap_intervals: u32,
    /// A client certificate (PEM) for the SHS ping round: with it and
    /// `client_key`, each probe sends a synchronous SHS ping to the relay's own
    /// front over mutual TLS, answered through admission, the gate and the ping
    /// product like any caller's (its organisation needs an agreement for
    /// ping). Without: the probe only checks that the front accepts a TCP
    /// connection.
    pub client_cert: Option<PathBuf>,
    /// The key of `client_cert` (PEM).
    pub client_key: Option<PathBuf>,
    /// The CA the front's certificate is checked against (default:
    /// `front.client_ca`, the relay's own CA).
    pub ca: Option<PathBuf>,
    /// The name the front's certificate is checked for (default: the host of
    /// `front.public_url`, else `localhost`).
    pub server_name: Option<String>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            interval_s: 60,
            failures_for_outage: 2,
            gap_intervals: 3,
            client_cert: None,
            client_key: None,
            ca: None,
            server_name: None,
        }
    }
}

impl ProbeConfig {
    /// The SHS ping round's client identity, when configured.
    pub fn client_identity(&self) -> Option<(&Path, &Path)> {
        self.client_cert.as_deref().zip(self.client_key.as_deref())
    }

    /// The name the front's certificate must carry for the ping round.
    pub fn server_name(&self, front: &Front) -> String {
        if let Some(name) = &self.server_name {
            return name.clone();
        }
        front
            .public_url
            .as_deref()
            .and_then(|u| u.parse::<http::Uri>().ok())
            .and_then(|u| u.host().map(str::to_owned))
            .unwrap_or_else(|| "localhost".to_owned())
    }
}

/// The durable, encrypted mailbox behind asynchronous SHS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The redb store file (its key slots sit beside it as `<store>.keys`).
    pub store: PathBuf,
    /// The key-encryption key file, kept outside the store (created, mode 0600).
    pub key_file: PathBuf,
    /// Time-to-live of unfetched or unacknowledged messages, in hours (at most 720).
    #[serde(default = "default_ttl_hours")]
    pub ttl_hours: u64,
    /// Per-product time-to-live in hours, by product id.
    #[serde(default)]
    pub per_product_ttl_hours: BTreeMap<String, u64>,
    #[serde(default = "default_sweep")]
    pub sweep_interval_s: u64,
    /// The mailbox gauges (messages, bytes, oldest age) are counted at most
    /// this often, not on every sweep: on PostgreSQL the count reads every
    /// message row.
    #[serde(default = "default_gauge_interval")]
    pub gauge_interval_s: u64,
    /// Fetch locks older than this are released.
    #[serde(default = "default_stale")]
    pub stale_fetch_minutes: u64,
    /// Largest asynchronous message to another organisation (streamed to disk).
    #[serde(default = "default_max_message")]
    pub max_message_bytes: u64,
    /// Time allowed to receive one asynchronous message.
    #[serde(default = "default_receive_timeout")]
    pub receive_timeout_s: u64,
    /// Messages one outbox may hold waiting to be fetched; beyond it the sender
    /// gets an SHS error (`OtherError`, `QUOTA: ...`). Other outboxes are not
    /// affected.
    #[serde(default = "default_outbox_messages")]
    pub max_messages_per_outbox: u64,
    /// Bytes one outbox may hold waiting to be fetched.
    #[serde(default = "default_outbox_bytes")]
    pub max_bytes_per_outbox: u64,
    /// Messages one sender may have waiting in other organisations' outboxes.
    #[serde(default = "default_outbox_messages")]
    pub max_messages_per_sender: u64,
    /// Bytes one sender may have waiting in other organisations' outboxes.
    #[serde(default = "default_outbox_bytes")]
    pub max_bytes_per_sender: u64,
    /// Asynchronous messages one organisation may stream in at once (per
    /// node); beyond it HTTP 503 with `Retry-After`. With PostgreSQL it must
    /// stay below `store.pool_size`, so that one organisation's uploads never
    /// take every connection.
    #[serde(default = "default_uploads_per_sender")]
    pub max_uploads_per_sender: usize,
}

fn default_uploads_per_sender() -> usize {
    4
}

fn default_outbox_messages() -> u64 {
    10_000
}
fn default_outbox_bytes() -> u64 {
    10 * 1024 * 1024 * 1024
}

fn default_max_message() -> u64 {
    1024 * 1024 * 1024
}
fn default_receive_timeout() -> u64 {
    600
}

fn default_ttl_hours() -> u64 {
    72
}
fn default_sweep() -> u64 {
    60
}
fn default_gauge_interval() -> u64 {
    300
}
fn default_stale() -> u64 {
    60
}

impl MailboxConfig {
    /// The retention policy; refuses anything over 30 days.
    pub fn retention(&self) -> Result<relay_mailbox::Retention, relay_mailbox::RetentionError> {
        let h = |n: u64| std::time::Duration::from_secs(n * 3600);
        relay_mailbox::Retention::new(
            h(self.ttl_hours),
            self.per_product_ttl_hours
                .iter()
                .map(|(p, n)| (p.clone(), h(*n))),
        )
    }
}

/// The admin listener: plain HTTP (keep it on loopback or a management
/// network), or mutual TLS with operator certificates when `client_ca` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub listen: SocketAddr,
    /// Kept for older files and ignored: `/readyz` is 503 only in maintenance,
    /// when no provider at all can be reached, or when the store is unusable (a
    /// disturbance keeps the node ready).
    #[serde(default)]
    pub min_healthy_providers: usize,
    /// The operator CA (PEM). When set, the listener speaks TLS and requires a
    /// client certificate chaining to it; the certificate's subject CN names the
    /// operator in the audit trail.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// The admin listener's own server certificate and key (PEM), with
    /// `client_ca`; default: the front's `cert` and `key`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The names (DNS names or IP addresses, without a port) a request's
    /// `Host` may carry, besides the loopback names (`localhost`, `127.0.0.1`,
    /// `::1`) and the listen address, which are always allowed. Any other
    /// `Host` is refused (403): a page in an operator's browser that rebinds
    /// its own name to a tunnelled admin port cannot reach the API.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// A second listener, plain HTTP and read-only: `/livez`, `/readyz` and
    /// `/metrics`, nothing else (no console, no admin API). For health probes
    /// and scrapes that present no operator certificate (Kubernetes' kubelet,
    /// Prometheus); any address, keep it on the cluster network.
    #[serde(default)]
    pub probe_listen: Option<SocketAddr>,
}

impl Admin {
    /// Whether `host` (a `Host` header or `:authority`, with or without a
    /// port) names this listener: a loopback name, the listen address, or one
    /// of `allowed_hosts` (case-insensitive).
    pub fn allows_host(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            // `[::1]:9100`: the address between the brackets.
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            // `::1` without brackets has several colons and no port.
            None if host.matches(':').count() > 1 => host,
            None => host.split(':').next().unwrap_or_default(),
        };
        let name = name.trim_end_matches('.');
        if name.is_empty() {
            return false;
        }
        let loopback = name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        loopback
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| !ip.is_unspecified() && ip == self.listen.ip())
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(name))
    }

    /// The TLS set-up of the listener: (server cert, server key, operator CA),
    /// or `None` for plain HTTP.
    pub fn tls<'a>(&'a self, front: &'a Front) -> Option<(&'a Path, &'a Path, &'a Path)> {
        let ca = self.client_ca.as_deref()?;
        Some((
            self.cert.as_deref().unwrap_or(&front.cert),
            self.key.as_deref().unwrap_or(&front.key),
            ca,
        ))
    }
}

/// The SSBTEK v10 SOAP web service on the front.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Soap {
    /// Path of the service (`GET {path}?wsdl` serves the WSDL).
    pub ssbtek_path: String,
    /// Deadline of each adapter health check in `testaBastjanstInformation`.
    pub ping_timeout_ms: u64,
}

impl Default for Soap {
    fn default() -> Self {
        Self {
            ssbtek_path: "/ssbtek/v10".into(),
            ping_timeout_ms: 2_000,
        }
    }
}

/// The relay as an SHS node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// SHS node id, sent as `X-shs-nodeid` and written in history entries.
    pub id: String,
    /// The relay's own organisation number: the `to` of every message to the relay.
    pub org: Organisationsnummer,
    /// Display name used as `commonName` in reply labels.
    #[serde(default = "default_node_name")]
    pub name: String,
    /// `test` or `production`.
    pub environment: Environment,
}

fn default_node_name() -> String {
    "shs-relay".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Test,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Production => "production",
        }
    }
}

/// The HTTPS front (mutual TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Front {
    pub listen: SocketAddr,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA that client certificates must chain to (PEM).
    pub client_ca: PathBuf,
    /// The address callers reach the relay at (`https://relay.example.se`), used in
    /// served WSDLs. Unset: the listen address (the request's `Host` header is
    /// never echoed into a document).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Time allowed for a client's request headers, in milliseconds.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout_ms: u64,
    /// Time allowed for a TLS handshake, in milliseconds.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_ms: u64,
    /// Open client connections at once; beyond it new connections are closed
    /// at once (and counted) until one ends.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// TLS handshakes in progress at once; beyond it new connections wait in
    /// the kernel's accept queue.
    #[serde(default = "default_max_handshakes")]
    pub max_handshakes: usize,
    /// HTTP/2 keep-alive ping interval and the time to wait for its answer, and
    /// the idle time after which an HTTP/1.1 keep-alive connection is closed,
    /// in seconds.
    #[serde(default = "default_keepalive")]
    pub keepalive_s: u64,
}

fn default_header_timeout() -> u64 {
    10_000
}
fn default_handshake_timeout() -> u64 {
    10_000
}
fn default_max_connections() -> usize {
    4_096
}
fn default_max_handshakes() -> usize {
    64
}
fn default_keepalive() -> u64 {
    60
}

/// Limits a caller may hit; each is answered with a protocol-level error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Requests processed at once; beyond it: HTTP 503 with Retry-After.
    pub max_in_flight: usize,
    /// Largest accepted request body in bytes; beyond it: IllegalMessageStructure.
    pub max_request_bytes: u64,
    /// Largest SHS label in bytes.
    pub max_label_bytes: usize,
    /// Most data parts (persons) in one SSBTEK message; beyond it: IllegalDatapartContent.
    pub max_persons: usize,
    /// Deadline of a one-person SSBTEK request, in milliseconds.
    pub deadline_base_ms: u64,
    /// Added to the deadline per extra person, in milliseconds.
    pub deadline_per_extra_person_ms: u64,
    /// Longest question period in months (LEFI allows 2 years).
    pub max_period_months: u32,
    /// Seconds suggested in Retry-After when overloaded.
    pub retry_after_s: u32,
    /// Time allowed to read a whole request, in milliseconds.
    pub read_timeout_ms: u64,
    /// Requests one organisation may have in flight at once (its fair share of
    /// `max_in_flight`); beyond it: HTTP 503 with Retry-After for that
    /// organisation only. Default: half of `max_in_flight` (at least 1).
    pub max_in_flight_per_caller: Option<usize>,
    /// Time allowed to read the start of a message up to the end of its SHS label,
    /// in milliseconds; beyond it: IllegalMessageStructure.
    pub label_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            max_request_bytes: 10 * 1024 * 1024,
            max_label_bytes: 64 * 1024,
            max_persons: 10,
            deadline_base_ms: 12_000,
            deadline_per_extra_person_ms: 1_500,
            max_period_months: 24,
            retry_after_s: 1,
            read_timeout_ms: 30_000,
            max_in_flight_per_caller: None,
            label_timeout_ms: 10_000,
        }
    }
}

impl Limits {
    /// One organisation's share of the in-flight limit.
    pub fn per_caller(&self) -> usize {
        self.max_in_flight_per_caller
            .unwrap_or(self.max_in_flight / 2)
            .clamp(1, self.max_in_flight.max(1))
    }

    /// The SSBTEK deadline for a request about `persons` persons:
    /// base + per-extra-person × (persons − 1).
    pub fn deadline_for(&self, persons: usize) -> std::time::Duration {
        let extra = persons.saturating_sub(1) as u64;
        std::time::Duration::from_millis(
            self.deadline_base_ms + extra * self.deadline_per_extra_person_ms,
        )
    }
}

/// How a client certificate maps to an organisation number.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityRules {
    /// Which subject attribute carries the organisation number:
    /// `serialNumber` (Swedish organisation certificates), `O` or `CN`.
    pub from: SubjectField,
    /// Certificates mapped by their SHA-256 fingerprint; these win over `from`.
    pub fingerprints: Vec<FingerprintIdentity>,
}

impl Default for IdentityRules {
    fn default() -> Self {
        Self {
            from: SubjectField::SerialNumber,
            fingerprints: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SubjectField {
    #[serde(rename = "serialNumber")]
    SerialNumber,
    #[serde(rename = "O")]
    Organisation,
    #[serde(rename = "CN")]
    CommonName,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintIdentity {
    /// Lower-case hex SHA-256 of the certificate's DER (colons allowed).
    pub sha256: String,
    pub org: Organisationsnummer,
}

/// SHS product ids of the products the relay answers itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Products {
    /// The SSBTEK fan-out product.
    pub ssbtek: uuid::Uuid,
    /// SHS ping; conventionally the nil UUID.
    #[serde(default)]
    pub ping: uuid::Uuid,
    /// The ELT time-report product (needs the `[elt]` section).
    #[serde(default)]
    pub elt: Option<uuid::Uuid>,
}

impl Products {
    /// The products this configuration offers: SSBTEK and ping always, ELT
    /// with `products.elt`. What an admin call may name.
    pub fn offered(&self) -> Vec<ProductName> {
        ProductName::ALL
            .into_iter()
            .filter(|p| self.id_of(*p).is_some())
            .collect()
    }

    /// The SHS product id of a product; none when it is not offered. The one
    /// place a product's id is named.
    pub fn id_of(&self, product: ProductName) -> Option<uuid::Uuid> {
        match product {
            ProductName::Ssbtek => Some(self.ssbtek),
            ProductName::Ping => Some(self.ping),
            ProductName::Elt => self.elt,
        }
    }

    /// The product an SHS product id names (the first in
    /// [`ProductName::ALL`] should two share an id).
    pub fn name_of(&self, id: &uuid::Uuid) -> Option<ProductName> {
        ProductName::ALL
            .into_iter()
            .find(|p| self.id_of(*p) == Some(*id))
    }
}

/// A product the relay handles, by name (as agreements name them): one enum for
/// the configuration, the policy gate, the admin API and the store.
pub use relay_store::ProductName;

/// The relay's TLS identity towards the adapters (mutual TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderTls {
    /// CA the adapters' server certificates chain to.
    pub ca: PathBuf,
    /// The relay's client certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One provider adapter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The SSBTEK slot it answers: AF, CSN, FK, SKV, SO, TNS or MIV (an
    /// unknown id is an error naming the key and listing the valid ids).
    pub id: Slot,
    /// `https://host:port` of the adapter's gRPC endpoint (one replica).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The endpoints of several replicas of the adapter, instead of `endpoint`:
    /// calls are balanced across the healthy ones (see [`ProviderConfig::urls`]).
    #[serde(default)]
    pub endpoints: Option<Vec<String>>,
    /// The TLS name to expect in the adapter's certificate (default: each endpoint's host).
    #[serde(default)]
    pub tls_name: Option<String>,
    /// The CA bundle (PEM) this adapter's server certificate chains to, when the
    /// agency has a CA of its own; default `[provider_tls] ca`. Read again on reload.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Per-call timeout in milliseconds, capped by the request deadline.
    #[serde(default = "default_provider_timeout")]
    pub timeout_ms: u64,
    /// Municipalities this provider has withdrawn: asked about them, the relay
    /// answers SSBT-WITHDRAWN without calling the provider.
    #[serde(default)]
    pub withdrawn: BTreeSet<Organisationsnummer>,
}

impl ProviderConfig {
    /// The adapter's replicas: `endpoints`, or the one `endpoint`. The check at
    /// load makes sure exactly one of the two is given and a list is not empty.
    pub fn urls(&self) -> &[String] {
        match (&self.endpoints, &self.endpoint) {
            (Some(list), _) => list,
            (None, Some(one)) => std::slice::from_ref(one),
            (None, None) => &[],
        }
    }

    /// What is wrong with `endpoint`/`endpoints`: (key, reason) for each error.
    fn endpoint_errors(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let https = |url: &str| match url.parse::<http::Uri>() {
            Err(e) => Some(format!("not a URL: {e}")),
            Ok(uri) if uri.scheme_str() != Some("https") || uri.host().is_none() => {
                Some("must be https://host:port".to_owned())
            }
            Ok(_) => None,
        };
        match (&self.endpoint, &self.endpoints) {
            (Some(_), Some(_)) => errors.push((
                "endpoints".to_owned(),
                "give either endpoint (one adapter) or endpoints (replicas), not both".to_owned(),
            )),
            (None, None) => errors.push((
                "endpoint".to_owned(),
                "missing: give endpoint = \"https://host:port\" or endpoints = [...] for replicas"
                    .to_owned(),
            )),
            (Some(url), None) => {
                if let Some(reason) = https(url) {
                    errors.push(("endpoint".to_owned(), reason));
                }
            }
            (None, Some(list)) if list.is_empty() => errors.push((
                "endpoints".to_owned(),
                "must list at least one https://host:port".to_owned(),
            )),
            (None, Some(list)) => {
                for (j, url) in list.iter().enumerate() {
                    if let Some(reason) = https(url) {
                        errors.push((format!("endpoints[{j}]"), reason));
                    } else if list[..j].contains(url) {
                        errors.push((format!("endpoints[{j}]"), "listed twice".to_owned()));
                    }
                }
            }
        }
        errors
    }
}

fn default_provider_timeout() -> u64 {
    10_000
}

/// Who may use which product in which environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    pub org: Organisationsnummer,
    /// Display name, used as `commonName`.
    #[serde(default)]
    pub name: String,
    pub products: BTreeSet<ProductName>,
    #[serde(default = "both_environments")]
    pub environments: BTreeSet<Environment>,
    /// SHS product ids (UUIDs) the organisation may exchange with other
    /// organisations by direct asynchronous delivery (store and forward, no
    /// handler in the relay). The relay's own products (`products`) may be
    /// delivered directly too. Both the sender and the recipient need it.
    #[serde(default)]
    pub direct_products: BTreeSet<uuid::Uuid>,
}

fn both_environments() -> BTreeSet<Environment> {
    [Environment::Test, Environment::Production].into()
}

/// An organisation allowed to act as personuppgiftsbiträde for municipalities.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processor {
    pub org: Organisationsnummer,
    #[serde(rename = "for")]
    pub for_orgs: BTreeSet<Organisationsnummer>,
}

/// Application log settings.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `json` (default) or `text`.
    pub format: Option<String>,
    /// Optional file to append the log to instead of stderr.
    pub file: Option<PathBuf>,
}

impl Config {
    /// Reads, parses and checks the file, stopping at the first error (start-up
    /// and reload: the named files must exist).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut config =
            Self::check_file(path, FileCheck::Exists).map_err(ConfigErrors::into_first)?;
        if let Some(elt) = &mut config.elt
            && let Some(ca) = &elt.signing_ca
        {
            let revocation =
                relay_elt::revocation::Revocation::load(ca, &elt.crls, elt.ocsp_skew_s).map_err(
                    |e| {
                        let text = e.to_string();
                        let key = if text.starts_with("CRL") {
                            "elt.crls"
                        } else {
                            "elt.signing_ca"
                        };
                        ConfigError {
                            file: path.to_owned(),
                            key: key.to_owned(),
                            reason: text,
                        }
                    },
                )?;
            elt.revocation = Some(std::sync::Arc::new(revocation));
        }
        Ok(config)
    }

    /// Reads, parses and checks the file and reports every error found
    /// (`shs-relay config check`); `files` says how the files it names are checked.
    pub fn check_file(path: &Path, files: FileCheck) -> Result<Self, ConfigErrors> {
        let config: Config = relay_config_file::parse(path, &Self::sections())?;
        let mut report = Report::new(path, files);
        config.check(&mut report);
        report.finish(config)
    }

    /// The top-level keys, for reporting each failing one.
    fn sections() -> Vec<Section> {
        vec![
            Section::one::<Node>("node", true),
            Section::one::<Front>("front", true),
            Section::one::<Limits>("limits", false),
            Section::one::<IdentityRules>("identity", false),
            Section::one::<Products>("products", true),
            Section::one::<ProviderTls>("provider_tls", true),
            Section::list::<ProviderConfig>("providers"),
            Section::list::<Agreement>("agreements"),
            Section::list::<Processor>("processors"),
            Section::one::<Log>("log", false),
            Section::one::<Soap>("soap", false),
            Section::one::<Admin>("admin", false),
            Section::one::<MailboxConfig>("mailbox", false),
            Section::one::<relay_store::StoreConfig>("store", false),
            Section::one::<AuditConfig>("audit", false),
            Section::one::<EltConfig>("elt", false),
            Section::one::<relay_telemetry::TracingConfig>("tracing", false),
            Section::one::<ProbeConfig>("probe", false),
            Section::one::<relay_audit::DisturbanceConfig>("disturbance", false),
            Section::one::<relay_audit::SlaConfig>("service_levels", false),
        ]
    }

    /// What the service-level report measures against: the targets of
    /// `[service_levels]` with the probe definitions of `[probe]`, the ones the
    /// relay's own outage detector runs with.
    pub fn sla(&self) -> relay_audit::SlaConfig {
        relay_audit::SlaConfig {
            probe_failures_for_outage: self.probe.failures_for_outage,
            probe_gap_intervals: self.probe.gap_intervals,
            ..self.service_levels.clone()
        }
    }

    fn check(&self, r: &mut Report) {
        r.certificates("front.cert", &self.front.cert);
        r.private_key("front.key", &self.front.key);
        r.certificates("front.client_ca", &self.front.client_ca);
        r.certificates("provider_tls.ca", &self.provider_tls.ca);
        r.certificates("provider_tls.cert", &self.provider_tls.cert);
        r.private_key("provider_tls.key", &self.provider_tls.key);
        r.key_pair("front.key", &self.front.cert, &self.front.key);
        r.key_pair(
            "provider_tls.key",
            &self.provider_tls.cert,
            &self.provider_tls.key,
        );
        if let Some(a) = &self.admin {
            if !a.listen.ip().is_loopback() && a.client_ca.is_none() {
                r.error(
                    "admin.listen",
                    "a non-loopback address needs admin.client_ca (mutual TLS with operator certificates)",
                );
            }
            if a.cert.is_some() != a.key.is_some() {
                r.error("admin.key", "cert and key go together");
            }
            if a.cert.is_some() && a.client_ca.is_none() {
                r.error(
                    "admin.cert",
                    "a certificate for the admin listener needs client_ca (mutual TLS)",
                );
            }
            if let Some(p) = &a.client_ca {
                r.certificates("admin.client_ca", p);
            }
            if let Some(p) = &a.cert {
                r.certificates("admin.cert", p);
            }
            if let Some(p) = &a.key {
                r.private_key("admin.key", p);
            }
            if let (Some(cert), Some(key)) = (&a.cert, &a.key) {
                r.key_pair("admin.key", cert, key);
            }
        }
        let l = &self.limits;
        r.positive("limits.max_in_flight", l.max_in_flight as u64);
        r.positive("limits.max_request_bytes", l.max_request_bytes);
        r.positive("limits.max_label_bytes", l.max_label_bytes as u64);
        r.positive("limits.max_persons", l.max_persons as u64);
        r.positive("limits.deadline_base_ms", l.deadline_base_ms);
        r.positive("limits.max_period_months", u64::from(l.max_period_months));
        r.positive("limits.read_timeout_ms", l.read_timeout_ms);
        if !self.soap.ssbtek_path.starts_with('/') || self.soap.ssbtek_path.starts_with("/shs/") {
            r.error(
                "soap.ssbtek_path",
                "must start with / and not be under /shs/",
            );
        }
        if let Some(m) = &self.mailbox {
            if let Err(e) = m.retention() {
                r.error("mailbox.ttl_hours", e.to_string());
            }
            r.positive("mailbox.max_message_bytes", m.max_message_bytes);
            r.positive("mailbox.receive_timeout_s", m.receive_timeout_s);
            r.positive("mailbox.sweep_interval_s", m.sweep_interval_s);
            r.positive("mailbox.gauge_interval_s", m.gauge_interval_s);
            r.positive(
                "mailbox.max_uploads_per_sender",
                m.max_uploads_per_sender as u64,
            );
            // Only once the store section itself is valid: its own error first.
            if self.store.kind == relay_store::StoreKind::Postgres
                && self.store.validate().is_ok()
                && m.max_uploads_per_sender >= self.store.pool_size
            {
                r.error(
                    "mailbox.max_uploads_per_sender",
                    format!(
                        "{} must be below store.pool_size ({}): one organisation's uploads may not take every connection",
                        m.max_uploads_per_sender, self.store.pool_size
                    ),
                );
            }
        }
        if let Err(e) = self.store.validate() {
            r.error(format!("store.{}", e.key), e.reason);
        }
        if self.store.kind == relay_store::StoreKind::Postgres && self.mailbox.is_none() {
            r.error(
                "store.kind",
                "postgres holds the mailbox and needs a [mailbox] section (key_file, time-to-live, limits)",
            );
        }
        if let Some(a) = &self.audit {
            r.positive("audit.max_file_mb", a.max_file_mb);
        }
        self.status.check(r);
        let probe = &self.probe;
        if probe.client_cert.is_some() != probe.client_key.is_some() {
            r.error("probe.client_key", "client_cert and client_key go together");
        }
        if let Some(p) = &probe.client_cert {
            r.certificates("probe.client_cert", p);
        }
        if let Some(p) = &probe.client_key {
            r.private_key("probe.client_key", p);
        }
        if let Some((cert, key)) = probe.client_identity() {
            r.key_pair("probe.client_key", cert, key);
        }
        if let Some(p) = &probe.ca {
            r.certificates("probe.ca", p);
        }
        let sl = &self.service_levels;
        r.positive("service_levels.fast_ms", sl.fast_ms);
        if sl.slow_ms < sl.fast_ms {
            r.error("service_levels.slow_ms", "must be at least fast_ms");
        }
        for (key, value) in [
            ("fast_target_percent", sl.fast_target_percent),
            ("slow_target_percent", sl.slow_target_percent),
            ("answered_target_percent", sl.answered_target_percent),
            (
                "availability_target_percent",
                sl.availability_target_percent,
            ),
        ] {
            if !(0.0..=100.0).contains(&value) {
                r.error(
                    format!("service_levels.{key}"),
                    "must be a percentage from 0 to 100",
                );
            }
        }
        if let Some(t) = &self.tracing
            && let Err((key, reason)) = t.check()
        {
            r.error(format!("tracing.{key}"), reason);
        }
        if self.products.ssbtek == self.products.ping {
            r.error("products.ssbtek", "must differ from products.ping");
        }
        let mut seen = BTreeMap::new();
        for (i, p) in self.providers.iter().enumerate() {
            let key = |k: &str| format!("providers[{i}].{k}");
            if let Some(ca) = &p.ca {
                r.certificates(&key("ca"), ca);
            }
            if seen.insert(p.id, i).is_some() {
                r.error(key("id"), "provider id configured twice");
            }
            for (k, reason) in p.endpoint_errors() {
                r.error(key(&k), reason);
            }
            r.positive(key("timeout_ms"), p.timeout_ms);
        }
        if let Some(elt) = &self.elt {
            let key = |k: &str| format!("elt.{k}");
            if self.products.elt.is_none() {
                r.error("products.elt", "required when [elt] is set");
            }
            if !self.providers.iter().any(|p| p.id == elt.provider) {
                r.error(key("provider"), "must name a configured provider");
            }
            if !elt.soap_path.starts_with('/')
                || elt.soap_path.starts_with("/shs/")
                || elt.soap_path == self.soap.ssbtek_path
            {
                r.error(
                    key("soap_path"),
                    "must start with /, not be under /shs/ and differ from soap.ssbtek_path",
                );
            }
            if !(elt.calls_per_second.is_finite() && elt.calls_per_second > 0.0) {
                r.error(key("calls_per_second"), "must be greater than 0");
            }
            r.positive(key("burst"), u64::from(elt.burst));
            r.positive(key("max_report_bytes"), elt.max_report_bytes as u64);
            r.positive(key("timeout_ms"), elt.timeout_ms);
            r.positive(key("remembered_reports"), elt.remembered_reports as u64);
            if !elt.crls.is_empty() && elt.signing_ca.is_none() {
                r.error(key("signing_ca"), "required when elt.crls is set");
            }
            if let Some(ca) = &elt.signing_ca {
                r.file("elt.signing_ca", ca);
            }
            for (i, crl) in elt.crls.iter().enumerate() {
                r.file(&format!("elt.crls[{i}]"), crl);
            }
            for (i, m) in elt.mandates.iter().enumerate() {
                if m.anordnare.is_empty() {
                    r.error(
                        format!("elt.mandates[{i}].anordnare"),
                        "must name at least one assistance company",
                    );
                }
            }
            for (i, f) in elt.test_only_certificates.iter().enumerate() {
                if !is_sha256_hex(f) {
                    r.error(
                        format!("elt.test_only_certificates[{i}]"),
                        "must be 64 hex digits",
                    );
                }
            }
        } else if self.products.elt.is_some() {
            r.error("elt", "products.elt needs an [elt] section");
        }
        for (i, f) in self.identity.fingerprints.iter().enumerate() {
            if !is_sha256_hex(&f.sha256) {
                r.error(
                    format!("identity.fingerprints[{i}].sha256"),
                    "must be 64 hex digits",
                );
            }
        }
    }

    /// The agreement for an organisation, if any.
    pub fn agreement(&self, org: &Organisationsnummer) -> Option<&Agreement> {
        self.agreements.iter().find(|a| a.org == *org)
    }

    /// Whether `processor` may act as personuppgiftsbiträde for `municipality`.
    pub fn is_processor_for(
        &self,
        processor: &Organisationsnummer,
        municipality: &Organisationsnummer,
    ) -> bool {
        self.processors
            .iter()
            .any(|p| p.org == *processor && p.for_orgs.contains(municipality))
    }
}

/// A SHA-256 fingerprint: 64 hex digits, colons allowed between them.
fn is_sha256_hex(s: &str) -> bool {
    let hex = s.replace(':', "");
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `[status]`: the status feed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// How often each adapter's `Describe` is asked for planned maintenance, in seconds.
    pub maintenance_poll_s: u64,
    /// How far back the Atom history and resolved incidents go, in days.
    pub history_days: u32,
    /// `Cache-Control: max-age` of the feed, in seconds (pollers: every 60 s).
    pub max_age_s: u32,
    /// The page's name in the feed (default: `node.name`).
    pub page_name: Option<String>,
}

impl Default for StatusConfig {
    fn default() -> Self {
        Self {
            maintenance_poll_s: 60,
            history_days: 90,
            max_age_s: 30,
            page_name: None,
        }
    }
}

impl StatusConfig {
    pub(crate) fn check(&self, r: &mut Report) {
        r.positive("status.maintenance_poll_s", self.maintenance_poll_s);
        r.positive("status.history_days", u64::from(self.history_days));
        if let Some(name) = &self.page_name
            && (name.is_empty() || name.chars().count() > 100)
        {
            r.error("status.page_name", "1 to 100 characters");
        }
    }
}

#[cfg(test)]
impl Config {
    /// A configuration for unit tests (no file is read: paths are not checked):
    /// node 2021005489 in the test environment, Sundsvall and Stockholm with
    /// SSBTEK and ping, a processor for both, an ELT vendor.
    pub fn example_for_tests() -> Config {
        toml::from_str(
            r#"
[node]
id = "n"
org = "2021005489"
environment = "test"

[front]
listen = "127.0.0.1:0"
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"
client_ca = "/nonexistent/ca.pem"

[products]
ssbtek = "6f1c3b57-4f0a-4e0e-9a59-55b7e5a0c0d1"
elt = "3e9a8f52-6b1d-4c7e-a0f4-2d5b8c9e7a13"

[provider_tls]
ca = "/nonexistent/ca.pem"
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"

[[agreements]]
org = "2120002411"
products = ["ssbtek", "ping"]

[[agreements]]
org = "2120000142"
products = ["ssbtek", "ping"]

[[agreements]]
org = "5566778899"
products = ["ssbtek", "ping"]

[[processors]]
org = "5566778899"
for = ["2120002411"]

[[agreements]]
org = "5566770011"
products = ["elt", "ping"]
"#,
        )
        .expect("the unit-test configuration parses")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> String {
        for f in ["cert.pem", "key.pem", "ca.pem"] {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        let p = |f: &str| dir.join(f).display().to_string();
        format!(
            "[node]\nid = \"n\"\norg = \"2021005489\"\nenvironment = \"test\"\n\n[front]\nlisten = \"127.0.0.1:0\"\ncert = \"{c}\"\nkey = \"{k}\"\nclient_ca = \"{ca}\"\n\n[products]\nssbtek = \"6f1c3b57-4f0a-4e0e-9a59-55b7e5a0c0d1\"\n\n[provider_tls]\nca = \"{ca}\"\ncert = \"{c}\"\nkey = \"{k}\"\n",
            c = p("cert.pem"),
            k = p("key.pem"),
            ca = p("ca.pem")
        )
    }

    fn load(dir: &Path, text: &str) -> Result<Config, ConfigError> {
        let path = dir.join("relay.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    #[test]
    fn the_service_level_targets_come_from_the_file_and_the_probe_definitions_from_probe() {
        let dir = tempfile::tempdir().unwrap();
        let base = files(dir.path());
        let c = load(dir.path(), &base).unwrap();
        assert_eq!(c.sla(), relay_audit::SlaConfig::default());
        let c = load(
            dir.path(),
            &format!(
                "{base}\n[probe]\ninterval_s = 10\ngap_intervals = 5\nfailures_for_outage = 3\n\n[service_levels]\navailability_target_percent = 99.5\nanswered_basis = \"complete\"\nmax_unplanned_outages_per_month = 2\n"
            ),
        )
        .unwrap();
        let sla = c.sla();
        assert_eq!(sla.availability_target_percent, 99.5);
        assert_eq!(sla.answered_basis, relay_audit::AnsweredBasis::Complete);
        assert_eq!(sla.max_unplanned_outages_per_month, 2);
        assert_eq!(
            (sla.probe_gap_intervals, sla.probe_failures_for_outage),
            (5, 3)
        );
        assert_eq!(sla.fast_ms, 7_000, "unset keys keep the terms' figures");
        for (text, key) in [
            (
                "availability_target_percent = 101.0",
                "service_levels.availability_target_percent",
            ),
            ("probe_gap_intervals = 5", "service_levels"),
            ("fast_ms = 0", "service_levels.fast_ms"),
        ] {
            let e = load(dir.path(), &format!("{base}\n[service_levels]\n{text}\n")).unwrap_err();
            assert!(e.key.starts_with(key), "{text}: {e}");
        }
    }

    #[test]
    fn the_probes_client_certificate_and_key_go_together() {
        let dir = tempfile::tempdir().unwrap();
        let base = files(dir.path());
        let cert = dir.path().join("cert.pem").display().to_string();
        let key = dir.path().join("key.pem").display().to_string();
        let e = load(
            dir.path(),
            &format!("{base}\n[probe]\nclient_cert = {cert:?}\n"),
        )
        .unwrap_err();
        assert_eq!(e.key, "probe.client_key", "{e}");
        let c = load(
            dir.path(),
            &format!("{base}\n[probe]\nclient_cert = {cert:?}\nclient_key = {key:?}\n"),
        )
        .unwrap();
        assert!(c.probe.client_identity().is_some());
        assert_eq!(c.probe.server_name(&c.front), "localhost");
    }

    #[test]
    fn a_minimal_config_loads_with_documented_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = load(dir.path(), &files(dir.path())).unwrap();
        assert_eq!(c.limits.max_persons, 10);
        assert_eq!(c.limits.deadline_for(1).as_millis(), 12_000);
        assert_eq!(c.limits.deadline_for(3).as_millis(), 15_000);
        assert_eq!(c.products.ping, uuid::Uuid::nil());
    }

    #[test]
    fn invalid_configs_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let base = files(dir.path());
        let elt_base = base.replace(
            "[products]\n",
            "[products]\nelt = \"3e9a8f52-6b1d-4c7e-a0f4-2d5b8c9e7a13\"\n",
        ) + "\n[[providers]]\nid = \"FK\"\nendpoint = \"https://127.0.0.1:1\"\n\n[elt]\n";
        let cases = [
            (base.replace("2021005489", "2021005488"), "node.org"),
            (
                format!("{base}\n[admin]\nlisten = \"0.0.0.0:9100\"\n"),
                "admin.listen",
            ),
            (
                base.replace("environment = \"test\"", "environment = \"staging\""),
                "node.environment",
            ),
            (
                format!("{base}\n[limits]\nmax_persons = 0\n"),
                "limits.max_persons",
            ),
            (
                format!("{base}\n[[providers]]\nid = \"XX\"\nendpoint = \"https://a:1\"\n"),
                "providers[0].id",
            ),
            (
                format!("{base}\n[[providers]]\nid = \"FK\"\nendpoint = \"http://a:1\"\n"),
                "providers[0].endpoint",
            ),
            (
                format!(
                    "{base}\n[[providers]]\nid = \"FK\"\nendpoint = \"https://a:1\"\nendpoints = [\"https://b:1\"]\n"
                ),
                "providers[0].endpoints",
            ),
            (
                format!("{base}\n[[providers]]\nid = \"FK\"\nendpoints = []\n"),
                "providers[0].endpoints",
            ),
            (
                format!("{base}\n[[providers]]\nid = \"FK\"\ntimeout_ms = 5\n"),
                "providers[0].endpoint",
            ),
            (
                format!(
                    "{base}\n[[providers]]\nid = \"FK\"\nendpoints = [\"https://a:1\", \"http://b:1\"]\n"
                ),
                "providers[0].endpoints[1]",
            ),
            (
                format!(
                    "{base}\n[[providers]]\nid = \"FK\"\nendpoints = [\"https://a:1\", \"https://a:1\"]\n"
                ),
                "providers[0].endpoints[1]",
            ),
            (
                format!("{base}\n[[agreements]]\norg = \"2120002411\"\nproducts = [\"nothing\"]\n"),
                "agreements[0].products",
            ),
            (
                base.replace("key.pem\"\nclient_ca", "missing.pem\"\nclient_ca"),
                "front.key",
            ),
            (format!("{base}\nunknown = 1\n"), "unknown"),
            (
                base.replace(
                    "[products]\n",
                    "[products]\nelt = \"3e9a8f52-6b1d-4c7e-a0f4-2d5b8c9e7a13\"\n",
                ),
                "elt",
            ),
            (
                base.replace(
                    "[products]\n",
                    "[products]\nelt = \"3e9a8f52-6b1d-4c7e-a0f4-2d5b8c9e7a13\"\n",
                ) + "\n[elt]\nprovider = \"FK\"\n",
                "elt.provider",
            ),
            (format!("{base}\n[elt]\n"), "products.elt"),
            (
                elt_base.clone() + "crls = [\"/nonexistent/crl.pem\"]\n",
                "elt.signing_ca",
            ),
            (
                elt_base.clone()
                    + &format!(
                        "signing_ca = {:?}\n",
                        dir.path().join("ca.pem").display().to_string()
                    ),
                "elt.signing_ca",
            ),
            (
                elt_base.clone() + "mandates = [{ vendor = \"5566770011\", anordnare = [] }]\n",
                "elt.mandates",
            ),
            (
                format!(
                    "{base}\n[admin]\nlisten = \"127.0.0.1:0\"\nclient_ca = \"/nonexistent/ca.pem\"\n"
                ),
                "admin.client_ca",
            ),
            (
                format!("{base}\n[admin]\nlisten = \"127.0.0.1:0\"\ncert = \"/x.pem\"\n"),
                "admin.key",
            ),
            (
                format!(
                    "{base}\n[tracing]\notlp_endpoint = \"http://c:4317\"\nsample_ratio = 2.0\n"
                ),
                "tracing.sample_ratio",
            ),
            (
                format!("{base}\n[tracing]\notlp_endpoint = \"c:4317\"\n"),
                "tracing.otlp_endpoint",
            ),
        ];
        for (text, key) in cases {
            let e = load(dir.path(), &text).unwrap_err();
            let shown = e.to_string();
            assert!(shown.contains("relay.toml"), "{shown}");
            assert!(shown.contains(key), "expected key {key} in: {shown}");
        }
    }

    #[test]
    fn a_check_reports_every_error_in_the_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        // Type errors in three sections: each is named.
        std::fs::write(
            &path,
            files(dir.path()).replace("127.0.0.1:0", "nowhere")
                + "\n[limits]\nmax_persons = \"ten\"\n\n[[providers]]\nid = \"FK\"\nendpoint = \"https://fk:1\"\n\n[[providers]]\nid = \"CSN\"\nendpoints = \"https://csn:1\"\n\n[colour]\nx = 1\n",
        )
        .unwrap();
        let keys = |e: ConfigErrors| e.0.into_iter().map(|e| e.key).collect::<Vec<_>>();
        let e = Config::check_file(&path, FileCheck::Exists).unwrap_err();
        assert_eq!(
            keys(e),
            [
                "colour",
                "front.listen",
                "limits.max_persons",
                "providers[1].endpoints"
            ]
        );
        // Value errors once the types are right: each is named too.
        std::fs::write(
            &path,
            files(dir.path()).replace("ca.pem\"\n\n[products]", "gone.pem\"\n\n[products]")
                + "\n[limits]\nmax_persons = 0\nread_timeout_ms = 0\n\n[[providers]]\nid = \"FK\"\nendpoint = \"http://a:1\"\n\n[[providers]]\nid = \"FK\"\nendpoint = \"https://b:1\"\n",
        )
        .unwrap();
        let e = Config::check_file(&path, FileCheck::Exists).unwrap_err();
        assert_eq!(
            keys(e),
            [
                "front.client_ca",
                "limits.max_persons",
                "limits.read_timeout_ms",
                "providers[0].endpoint",
                "providers[1].id"
            ]
        );
        // Not looking at files: the missing CA is not reported.
        let e = Config::check_file(&path, FileCheck::Skip).unwrap_err();
        assert!(!keys(e).contains(&"front.client_ca".to_owned()));
    }

    #[test]
    fn an_unknown_provider_id_names_the_key_and_the_valid_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        for (extra, key) in [
            (
                "\n[[providers]]\nid = \"FK\"\nendpoint = \"https://fk:1\"\n\n[[providers]]\nid = \"PM\"\nendpoint = \"https://pm:1\"\n",
                "providers[1].id",
            ),
            // The ids are the element names, exactly.
            (
                "\n[[providers]]\nid = \"fk\"\nendpoint = \"https://fk:1\"\n",
                "providers[0].id",
            ),
        ] {
            std::fs::write(&path, files(dir.path()) + extra).unwrap();
            let e = Config::check_file(&path, FileCheck::Skip).unwrap_err();
            let [e] = e.0.as_slice() else {
                panic!("one error: {e}")
            };
            assert_eq!(e.key, key);
            assert!(
                e.reason
                    .contains("unknown agency id; expected one of AF, CSN, FK, SKV, SO, TNS, MIV"),
                "{}",
                e.reason
            );
        }
    }

    #[test]
    fn a_contents_check_reads_certificates_and_keys_as_pem() {
        let dir = tempfile::tempdir().unwrap();
        let text = files(dir.path());
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, &text).unwrap();
        // The test files hold "x": enough to start with `Exists`, not PEM.
        assert!(Config::check_file(&path, FileCheck::Exists).is_ok());
        let e = Config::check_file(&path, FileCheck::Contents).unwrap_err();
        let keys: Vec<_> = e.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "front.cert",
                "front.key",
                "front.client_ca",
                "provider_tls.ca",
                "provider_tls.cert",
                "provider_tls.key"
            ]
        );
        let ca = relay_pki::DevCa::new("test CA").unwrap();
        let issued = ca.server_cert("relay", &["localhost"]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), &issued.cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), &issued.key_pem).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        Config::check_file(&path, FileCheck::Contents).unwrap();
    }

    #[test]
    fn an_admin_listener_with_an_operator_ca_uses_the_front_certificate_unless_given_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let base = files(dir.path());
        let ca = dir.path().join("ca.pem").display().to_string();
        let key = dir.path().join("key.pem").display().to_string();
        let c = load(
            dir.path(),
            &format!("{base}\n[admin]\nlisten = \"127.0.0.1:0\"\n"),
        )
        .unwrap();
        assert!(c.admin.unwrap().tls(&c.front).is_none(), "plain HTTP");
        let c = load(
            dir.path(),
            &format!("{base}\n[admin]\nlisten = \"127.0.0.1:0\"\nclient_ca = \"{ca}\"\n"),
        )
        .unwrap();
        let admin = c.admin.clone().unwrap();
        let (cert, _, client_ca) = admin.tls(&c.front).unwrap();
        assert_eq!(cert, c.front.cert.as_path());
        assert_eq!(client_ca, Path::new(&ca));
        let c = load(
            dir.path(),
            &format!(
                "{base}\n[admin]\nlisten = \"127.0.0.1:0\"\nclient_ca = \"{ca}\"\ncert = \"{ca}\"\nkey = \"{key}\"\n"
            ),
        )
        .unwrap();
        let admin = c.admin.clone().unwrap();
        assert_eq!(admin.tls(&c.front).unwrap().0, Path::new(&ca));
        let e = load(
            dir.path(),
            &format!(
                "{base}\n[admin]\nlisten = \"127.0.0.1:0\"\ncert = \"{ca}\"\nkey = \"{key}\"\n"
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("admin.cert"), "{e}");
    }

    #[test]
    fn a_provider_lists_one_endpoint_or_several_replicas() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}\n[[providers]]\nid = \"FK\"\nendpoint = \"https://fk:1\"\n\n[[providers]]\nid = \"CSN\"\nendpoints = [\"https://csn-a:1\", \"https://csn-b:2\"]\n",
            files(dir.path())
        );
        let c = load(dir.path(), &text).unwrap();
        assert_eq!(c.providers[0].urls(), ["https://fk:1"]);
        assert_eq!(
            c.providers[1].urls(),
            ["https://csn-a:1", "https://csn-b:2"]
        );
    }

    #[test]
    fn the_mailbox_gauges_are_counted_every_five_minutes_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let base = files(dir.path());
        let mailbox = format!(
            "\n[mailbox]\nstore = \"{}\"\nkey_file = \"{}\"\n",
            dir.path().join("m.redb").display(),
            dir.path().join("kek").display()
        );
        let c = load(dir.path(), &format!("{base}{mailbox}")).unwrap();
        assert_eq!(c.mailbox.unwrap().gauge_interval_s, 300);
        let e = load(
            dir.path(),
            &format!("{base}{mailbox}gauge_interval_s = 0\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("mailbox.gauge_interval_s"), "{e}");
    }

    #[test]
    fn a_store_section_is_checked_key_by_key_and_postgres_needs_a_mailbox() {
        let dir = tempfile::tempdir().unwrap();
        let base = files(dir.path());
        let c = load(dir.path(), &base).unwrap();
        assert_eq!(
            c.store.kind,
            relay_store::StoreKind::Redb,
            "redb by default"
        );
        let mailbox = format!(
            "\n[mailbox]\nstore = \"{}\"\nkey_file = \"{}\"\n",
            dir.path().join("m.redb").display(),
            dir.path().join("kek").display()
        );
        let postgres =
            "\n[store]\nkind = \"postgres\"\nurl = \"postgres://u:secret@db:5432/shs\"\n";
        let c = load(dir.path(), &format!("{base}{mailbox}{postgres}")).unwrap();
        assert_eq!(c.store.kind, relay_store::StoreKind::Postgres);
        for (text, key) in [
            (postgres.to_owned(), "store.kind"),
            (
                format!("{mailbox}\n[store]\nkind = \"postgres\"\n"),
                "store.url",
            ),
            (
                format!("{mailbox}{postgres}pool_size = 0\n"),
                "store.pool_size",
            ),
            (format!("{mailbox}\n[store]\nkind = \"etcd\"\n"), "store"),
            (format!("{mailbox}\n[store]\nnodes = 3\n"), "store"),
            (
                format!("{mailbox}max_uploads_per_sender = 16\n{postgres}pool_size = 16\n"),
                "mailbox.max_uploads_per_sender",
            ),
            (format!("{mailbox}{postgres}lease_s = 1\n"), "store.lease_s"),
            (
                format!("{mailbox}{postgres}cache_bytes = 1048576\n"),
                "store.cache_bytes",
            ),
        ] {
            let e = load(dir.path(), &format!("{base}{text}")).unwrap_err();
            assert!(e.key.starts_with(key), "{text}: {e}");
            assert!(
                !e.to_string().contains("secret"),
                "the URL's password is never repeated: {e}"
            );
        }
    }

    #[test]
    fn processors_act_only_for_their_municipalities() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}\n[[processors]]\norg = \"5566778899\"\nfor = [\"2120002411\"]\n",
            files(dir.path())
        );
        let c = load(dir.path(), &text).unwrap();
        let org = |s: &str| Organisationsnummer::parse(s).unwrap();
        assert!(c.is_processor_for(&org("5566778899"), &org("2120002411")));
        assert!(!c.is_processor_for(&org("5566778899"), &org("2120000142")));
    }
}
