//! The provider pool: one long-lived mutual-TLS gRPC channel per provider adapter
//! (HTTP/2, connections reused across requests), and one call = one
//! [`CallOutcome`], never an error that could fail the whole request.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use relay_ident::Organisationsnummer;
use shs_proto::v1::provider_client::ProviderClient;
use shs_proto::v1::{QueryRequest, query_reply};
use tokio::time::Instant;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::{Config, ProviderConfig};

/// What one provider call came to.
#[derive(Debug)]
pub enum CallOutcome {
    /// The provider answered with data in `format`.
    Data { format: String, payload: Vec<u8> },
    /// The provider (its base service) said no: SSBTEK `kalla=BT`.
    ProviderError { code: String, messages: Vec<String> },
    /// No answer before the deadline.
    Timeout,
    /// The adapter or its base service could not be reached.
    Unavailable,
    /// The adapter refused for lack of capacity.
    Overloaded,
    /// The provider has withdrawn this municipality; it was not called.
    Withdrawn,
    /// The adapter answered something unusable (wrong format, empty reply).
    InvalidAnswer,
}

impl CallOutcome {
    /// A bounded label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Data { .. } => "data",
            Self::ProviderError { .. } => "provider_error",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Overloaded => "overloaded",
            Self::Withdrawn => "withdrawn",
            Self::InvalidAnswer => "invalid_answer",
        }
    }
}

/// What one submission came to.
#[derive(Debug)]
pub enum SubmitOutcome {
    /// Accepted; the provider's receipt.
    Receipt(shs_proto::v1::Receipt),
    /// Refused by the provider (validation, signature or its base service).
    Refused(shs_proto::v1::SubmitError),
    Timeout,
    Unavailable,
    Overloaded,
    /// The adapter does not implement `Submit`.
    NotOffered,
    InvalidAnswer,
}

impl SubmitOutcome {
    /// A bounded label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Receipt(_) => "receipt",
            Self::Refused(_) => "refused",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Overloaded => "overloaded",
            Self::NotOffered => "not_offered",
            Self::InvalidAnswer => "invalid_answer",
        }
    }
}

/// Recent calls to one provider, for `/admin/providers` and the console.
#[derive(Default)]
struct Recent {
    /// (when, ok, latency ms) of the calls of the last [`RECENT_WINDOW`] (at
    /// most [`RECENT_MAX`] of them), oldest first.
    calls: std::collections::VecDeque<(Instant, bool, u64)>,
    last_error: Option<(String, &'static str)>,
}

/// The last calls `/admin/providers` summarises as `calls`, `success_rate`, ...
const RECENT: usize = 200;
/// How far back calls are kept (the console's "last 60 minutes").
const RECENT_WINDOW: Duration = Duration::from_secs(3600);
/// At most this many calls are kept per provider (memory bound: 24 bytes each);
/// beyond it the window covers less than an hour and says so (`calls_kept`).
const RECENT_MAX: usize = 50_000;

/// Calls, error share and latency percentiles of `calls` (ascending ms).
fn summarise<'a>(calls: impl Iterator<Item = &'a (Instant, bool, u64)>) -> serde_json::Value {
    let mut ms = Vec::new();
    let mut failed = 0usize;
    for (_, ok, took) in calls {
        ms.push(*took);
        if !ok {
            failed += 1;
        }
    }
    ms.sort_unstable();
    let pct = |q: u32| relay_audit::percentile(&ms, q);
    serde_json::json!({
        "calls": ms.len(),
        "error_share": (!ms.is_empty()).then(|| failed as f64 / ms.len() as f64),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
    })
}

/// What the provider's `Describe` said about its contract version. A provider
/// declaring an incompatible contract is refused: it is not called, and its
/// slot answers an SSBT error (`SSBT-UNAVAILABLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Contract {
    /// Not known yet (no `Describe` answered).
    Unknown,
    Compatible(String),
    Incompatible(String),
}

/// How often a known contract version is asked again (an adapter may be
/// redeployed with another version).
const CONTRACT_RECHECK: Duration = Duration::from_secs(30);

struct ContractState {
    contract: Contract,
    checked: Option<Instant>,
    refreshing: bool,
}

struct Provider {
    recent: std::sync::Mutex<Recent>,
    contract: std::sync::Mutex<ContractState>,
    channel: Channel,
    client: ProviderClient<Channel>,
    timeout: Duration,
    withdrawn: BTreeSet<Organisationsnummer>,
}

/// Every configured provider adapter, by id (`AF`, `CSN`, ...).
pub struct ProviderPool {
    providers: BTreeMap<String, Provider>,
}

/// Why the pool could not be built.
#[derive(Debug, thiserror::Error)]
#[error("provider {id}: {reason}")]
pub struct PoolError {
    pub id: String,
    pub reason: String,
}

impl ProviderPool {
    /// Builds lazy channels (they connect on first use and reconnect by themselves).
    pub fn new(config: &Config) -> Result<Self, PoolError> {
        let read = |id: &str, p: &std::path::Path| {
            std::fs::read(p).map_err(|e| PoolError {
                id: id.to_owned(),
                reason: format!("{}: {e}", p.display()),
            })
        };
        let tls = &config.provider_tls;
        let mut providers = BTreeMap::new();
        for p in &config.providers {
            let ca = Certificate::from_pem(read(&p.id, &tls.ca)?);
            let identity = Identity::from_pem(read(&p.id, &tls.cert)?, read(&p.id, &tls.key)?);
            let channel = channel(p, ca, identity).map_err(|reason| PoolError {
                id: p.id.clone(),
                reason,
            })?;
            providers.insert(
                p.id.clone(),
                Provider {
                    recent: std::sync::Mutex::new(Recent::default()),
                    contract: std::sync::Mutex::new(ContractState {
                        contract: Contract::Unknown,
                        checked: None,
                        refreshing: false,
                    }),
                    channel: channel.clone(),
                    client: ProviderClient::new(channel)
                        .max_decoding_message_size(16 * 1024 * 1024),
                    timeout: Duration::from_millis(p.timeout_ms),
                    withdrawn: p.withdrawn.clone(),
                },
            );
        }
        Ok(Self { providers })
    }

    /// Ids of the configured providers.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.providers.contains_key(id)
    }

    /// Asks provider `id` one question, within its own timeout and the request's
    /// `deadline`, whichever comes first. Never fails; never outlives the deadline.
    /// Success rate and latency percentiles of the last calls, and the last error.
    pub fn recent(&self, id: &str) -> serde_json::Value {
        let Some(p) = self.providers.get(id) else {
            return serde_json::Value::Null;
        };
        let r = p.recent.lock().unwrap_or_else(|e| e.into_inner());
        let last = r.calls.iter().skip(r.calls.len().saturating_sub(RECENT));
        let mut ms: Vec<u64> = last.clone().map(|(_, _, ms)| *ms).collect();
        ms.sort_unstable();
        let pct = |q: u32| relay_audit::percentile(&ms, q);
        let ok = last.filter(|(_, ok, _)| *ok).count();
        let now = Instant::now();
        let within = |d: Duration| {
            summarise(
                r.calls
                    .iter()
                    .filter(move |(at, _, _)| now.saturating_duration_since(*at) <= d),
            )
        };
        serde_json::json!({
            "calls": ms.len(),
            "success_rate": (!ms.is_empty()).then(|| ok as f64 / ms.len() as f64),
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "last_5_min": within(Duration::from_secs(300)),
            "last_60_min": within(RECENT_WINDOW),
            "last_error": r.last_error.as_ref().map(|(at, what)| serde_json::json!({"at": at, "outcome": what})),
        })
    }

    /// The adapter's `Describe`, within `timeout`. The contract version it
    /// declares decides whether the provider is called at all.
    pub async fn describe(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Option<shs_proto::v1::DescribeReply> {
        let p = self.providers.get(id)?;
        let mut req = tonic::Request::new(shs_proto::v1::DescribeRequest {});
        req.set_timeout(timeout);
        let mut client = p.client.clone();
        let reply = match tokio::time::timeout(timeout, client.describe(req)).await {
            Ok(Ok(r)) => Some(r.into_inner()),
            _ => None,
        };
        let mut state = p.contract.lock().unwrap_or_else(|e| e.into_inner());
        state.refreshing = false;
        if let Some(d) = &reply {
            let now = if shs_proto::v1::is_compatible(&d.contract_version) {
                Contract::Compatible(d.contract_version.clone())
            } else {
                Contract::Incompatible(d.contract_version.clone())
            };
            if now != state.contract {
                match &now {
                    Contract::Incompatible(v) => tracing::error!(
                        provider = id,
                        declared = %v.chars().take(80).collect::<String>(),
                        expected = shs_proto::v1::CONTRACT_VERSION,
                        "provider refused: its Describe declares an incompatible contract version; it is not called and its slot answers SSBT-UNAVAILABLE"
                    ),
                    _ if matches!(state.contract, Contract::Incompatible(_)) => tracing::info!(
                        provider = id,
                        declared = %d.contract_version,
                        "provider accepted again: its contract version is compatible"
                    ),
                    _ => {}
                }
                state.contract = now;
            }
            state.checked = Some(Instant::now());
        }
        reply
    }

    /// The contract state for `/admin/providers`: `compatible`, `incompatible`
    /// (refused, not called) or `unknown`, with the declared version.
    pub fn contract(&self, id: &str) -> serde_json::Value {
        let Some(p) = self.providers.get(id) else {
            return serde_json::Value::Null;
        };
        let state = p.contract.lock().unwrap_or_else(|e| e.into_inner());
        match &state.contract {
            Contract::Unknown => serde_json::json!({ "state": "unknown" }),
            Contract::Compatible(v) => serde_json::json!({ "state": "compatible", "declared": v }),
            Contract::Incompatible(v) => serde_json::json!({
                "state": "incompatible",
                "declared": v,
                "expected": shs_proto::v1::CONTRACT_VERSION,
                "refused": true,
            }),
        }
    }

    /// Whether provider `id` may be called: its `Describe` is asked on first
    /// use and again every [`CONTRACT_RECHECK`] (within `budget`, at most 1 s),
    /// and a provider declaring an incompatible contract is not called. One
    /// whose `Describe` cannot be had is called anyway (the call tells how it is).
    async fn contract_allows(&self, id: &str, budget: Duration) -> bool {
        let Some(p) = self.providers.get(id) else {
            return false;
        };
        let due = {
            let mut state = p.contract.lock().unwrap_or_else(|e| e.into_inner());
            let due = state.contract == Contract::Unknown
                || (!state.refreshing
                    && state
                        .checked
                        .is_none_or(|t| t.elapsed() >= CONTRACT_RECHECK));
            if due {
                state.refreshing = true;
            }
            due
        };
        if due {
            self.describe(id, budget.min(Duration::from_secs(1))).await;
        }
        let state = p.contract.lock().unwrap_or_else(|e| e.into_inner());
        !matches!(state.contract, Contract::Incompatible(_))
    }

    fn note(&self, id: &str, outcome: &CallOutcome, took: Duration) {
        let Some(p) = self.providers.get(id) else {
            return;
        };
        let ok = matches!(
            outcome,
            CallOutcome::Data { .. } | CallOutcome::ProviderError { .. } | CallOutcome::Withdrawn
        );
        let mut r = p.recent.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while r.calls.front().is_some_and(|(at, _, _)| {
            r.calls.len() >= RECENT_MAX || now.saturating_duration_since(*at) > RECENT_WINDOW
        }) {
            r.calls.pop_front();
        }
        r.calls.push_back((now, ok, took.as_millis() as u64));
        if !ok {
            r.last_error = Some((chrono::Utc::now().to_rfc3339(), outcome.label()));
        }
    }

    pub async fn query(
        &self,
        id: &str,
        municipality: &Organisationsnummer,
        request: QueryRequest,
        deadline: Instant,
    ) -> CallOutcome {
        let started = Instant::now();
        let outcome = self.query_inner(id, municipality, request, deadline).await;
        self.note(id, &outcome, started.elapsed());
        outcome
    }

    async fn query_inner(
        &self,
        id: &str,
        municipality: &Organisationsnummer,
        request: QueryRequest,
        deadline: Instant,
    ) -> CallOutcome {
        let Some(provider) = self.providers.get(id) else {
            return CallOutcome::Unavailable;
        };
        if provider.withdrawn.contains(municipality) {
            return CallOutcome::Withdrawn;
        }
        let now = Instant::now();
        let budget = provider
            .timeout
            .min(deadline.saturating_duration_since(now));
        if budget.is_zero() {
            return CallOutcome::Timeout;
        }
        if !self.contract_allows(id, budget).await {
            return CallOutcome::Unavailable;
        }
        let budget = provider
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if budget.is_zero() {
            return CallOutcome::Timeout;
        }
        let mut req = tonic::Request::new(request);
        req.set_timeout(budget);
        // The adapter continues the caller's trace (W3C `traceparent`), when
        // spans are exported.
        relay_telemetry::inject(&tracing::Span::current(), req.metadata_mut());
        let mut client = provider.client.clone();
        match tokio::time::timeout(budget, client.query(req)).await {
            Err(_) => CallOutcome::Timeout,
            Ok(Ok(reply)) => match reply.into_inner().outcome {
                Some(query_reply::Outcome::Data(d)) => CallOutcome::Data {
                    format: d.format,
                    payload: d.payload,
                },
                Some(query_reply::Outcome::Error(e)) => CallOutcome::ProviderError {
                    code: e.code,
                    messages: e.messages,
                },
                None => CallOutcome::InvalidAnswer,
            },
            Ok(Err(status)) => match status.code() {
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => CallOutcome::Timeout,
                tonic::Code::ResourceExhausted => CallOutcome::Overloaded,
                tonic::Code::PermissionDenied => CallOutcome::Withdrawn,
                tonic::Code::InvalidArgument | tonic::Code::Internal => CallOutcome::InvalidAnswer,
                _ => CallOutcome::Unavailable,
            },
        }
    }

    /// Submits a document (an ELT time report) to provider `id` within its own
    /// timeout and `budget`, whichever is shorter. Never fails.
    pub async fn submit(
        &self,
        id: &str,
        request: shs_proto::v1::SubmitRequest,
        budget: Duration,
    ) -> SubmitOutcome {
        let started = Instant::now();
        let Some(provider) = self.providers.get(id) else {
            return SubmitOutcome::Unavailable;
        };
        if !self.contract_allows(id, budget).await {
            let outcome = SubmitOutcome::Unavailable;
            self.note(id, &CallOutcome::Unavailable, started.elapsed());
            return outcome;
        }
        let mut req = tonic::Request::new(request);
        req.set_timeout(budget);
        relay_telemetry::inject(&tracing::Span::current(), req.metadata_mut());
        let mut client = provider.client.clone();
        let outcome = match tokio::time::timeout(budget, client.submit(req)).await {
            Err(_) => SubmitOutcome::Timeout,
            Ok(Ok(reply)) => match reply.into_inner().outcome {
                Some(shs_proto::v1::submit_reply::Outcome::Receipt(r)) => SubmitOutcome::Receipt(r),
                Some(shs_proto::v1::submit_reply::Outcome::Error(e)) => SubmitOutcome::Refused(e),
                None => SubmitOutcome::InvalidAnswer,
            },
            Ok(Err(status)) => match status.code() {
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => SubmitOutcome::Timeout,
                tonic::Code::ResourceExhausted => SubmitOutcome::Overloaded,
                tonic::Code::Unimplemented => SubmitOutcome::NotOffered,
                tonic::Code::InvalidArgument | tonic::Code::Internal => {
                    SubmitOutcome::InvalidAnswer
                }
                _ => SubmitOutcome::Unavailable,
            },
        };
        let as_call = match &outcome {
            SubmitOutcome::Receipt(_) | SubmitOutcome::Refused(_) => CallOutcome::ProviderError {
                code: String::new(),
                messages: Vec::new(),
            },
            SubmitOutcome::Timeout => CallOutcome::Timeout,
            SubmitOutcome::Overloaded => CallOutcome::Overloaded,
            SubmitOutcome::InvalidAnswer | SubmitOutcome::NotOffered => CallOutcome::InvalidAnswer,
            SubmitOutcome::Unavailable => CallOutcome::Unavailable,
        };
        self.note(id, &as_call, started.elapsed());
        outcome
    }

    /// The adapter's `grpc.health.v1` status, within `timeout`: `Ok(true)` when serving.
    pub async fn is_serving(&self, id: &str, timeout: Duration) -> bool {
        let Some(provider) = self.providers.get(id) else {
            return false;
        };
        let mut health =
            tonic_health::pb::health_client::HealthClient::new(provider.channel.clone());
        let mut req = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
            service: shs_proto::v1::SERVICE_NAME.to_owned(),
        });
        req.set_timeout(timeout);
        matches!(
            tokio::time::timeout(timeout, health.check(req)).await,
            Ok(Ok(r)) if r.get_ref().status
                == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        )
    }
}

fn channel(p: &ProviderConfig, ca: Certificate, identity: Identity) -> Result<Channel, String> {
    let uri: http::Uri = p.endpoint.parse().map_err(|e| format!("endpoint: {e}"))?;
    let host = p
        .tls_name
        .clone()
        .or_else(|| uri.host().map(str::to_owned))
        .unwrap_or_default();
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(identity)
        .domain_name(host);
    let endpoint = Endpoint::from_shared(p.endpoint.clone())
        .map_err(|e| format!("endpoint: {e}"))?
        .tls_config(tls)
        .map_err(|e| format!("tls: {e}"))?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}
