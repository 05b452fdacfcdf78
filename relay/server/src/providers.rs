//! The provider pool: one long-lived mutual-TLS gRPC channel per adapter
//! replica (HTTP/2, connections reused across requests), and one call = one
//! [`CallOutcome`], never an error that could fail the whole request.
//!
//! A provider may run several replicas (`endpoints = [...]`). Calls go round
//! robin over the replicas not marked down; a replica is marked down for
//! [`REPLICA_BACKOFF`] when a call could not reach it or its health check does
//! not say SERVING, and up again when a health check says SERVING. A call that
//! failed before it reached an adapter ([`never_reached_adapter`]) is tried once
//! more on another replica within the same budget; a call the adapter may have
//! seen is never repeated.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use relay_ident::Organisationsnummer;
use shs_proto::v1::provider_client::ProviderClient;
use shs_proto::v1::{QueryRequest, query_reply};
use tokio::time::Instant;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::Config;

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

/// How long a replica that could not be reached is left out of the rotation
/// (unless a health check says SERVING sooner).
const REPLICA_BACKOFF: Duration = Duration::from_secs(3);

/// One running copy of an adapter.
struct Replica {
    /// The configured endpoint (no personal data: shown in logs and the admin API).
    url: String,
    channel: Channel,
    client: ProviderClient<Channel>,
    /// `Some`: marked down, and left out of the rotation until then; `None`
    /// once it has answered again (a call or a health check).
    down_until: std::sync::Mutex<Option<Instant>>,
}

impl Replica {
    /// In the rotation: not marked down, or its back-off is over.
    fn is_up(&self, now: Instant) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|until| now >= until)
    }

    /// Not marked down since it last answered.
    fn is_healthy(&self) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Marks the replica up (`true`) or down for [`REPLICA_BACKOFF`]. Logs a
    /// change only, so a replica that stays away is not logged every back-off.
    fn mark(&self, provider: &str, up: bool) {
        let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        let was_down = down.is_some();
        *down = (!up).then(|| Instant::now() + REPLICA_BACKOFF);
        if !was_down && !up {
            tracing::warn!(provider, replica = %self.url, "provider replica marked down; calls go to the others");
        } else if was_down && up {
            tracing::info!(provider, replica = %self.url, "provider replica answering again");
        }
    }
}

struct Provider {
    recent: std::sync::Mutex<Recent>,
    contract: std::sync::Mutex<ContractState>,
    /// At least one.
    replicas: Vec<Replica>,
    /// The round robin's position.
    next: AtomicUsize,
    timeout: Duration,
    withdrawn: BTreeSet<Organisationsnummer>,
}

/// How one call through [`Provider::call`] ended.
enum Attempt<T> {
    Answered(T),
    /// No replica could be reached (whatever code tonic gave the failure).
    Unreached,
    Failed(tonic::Status),
    /// Not answered within the budget.
    TimedOut,
}

impl Provider {
    /// The replica to call next: round robin over those up, skipping `besides`;
    /// when every other replica is down, the next one anyway (a mark may be stale).
    fn pick(&self, besides: Option<usize>) -> Option<usize> {
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let order = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| Some(i) != besides);
        order
            .clone()
            .find(|&i| self.replicas[i].is_up(now))
            .or_else(|| order.clone().next())
    }

    /// Calls one replica with `call` (given the client and the time left) within
    /// `budget`, and a second one when the first could not be reached and time is
    /// left. Never repeats a call an adapter may have seen.
    async fn call<T, F, Fut>(&self, id: &str, budget: Duration, call: F) -> Attempt<T>
    where
        F: Fn(ProviderClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + budget;
        let mut tried = None;
        loop {
            let Some(i) = self.pick(tried) else {
                return Attempt::Unreached;
            };
            let replica = &self.replicas[i];
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Attempt::TimedOut;
            }
            match tokio::time::timeout(left, call(replica.client.clone(), left)).await {
                Err(_) => return Attempt::TimedOut,
                Ok(Ok(reply)) => {
                    replica.mark(id, true);
                    return Attempt::Answered(reply.into_inner());
                }
                Ok(Err(status)) if never_reached_adapter(&status) => {
                    replica.mark(id, false);
                    let again =
                        tried.is_none() && self.replicas.len() > 1 && deadline > Instant::now();
                    if !again {
                        return Attempt::Unreached;
                    }
                    tracing::info!(
                        provider = id,
                        replica = %replica.url,
                        "call did not reach the replica; trying another"
                    );
                    tried = Some(i);
                }
                Ok(Err(status)) => return Attempt::Failed(status),
            }
        }
    }
}

/// Whether a failed call certainly never reached an adapter, so that another
/// replica may take it: no connection could be made, the request was never
/// sent on one, or HTTP/2 says the stream was not processed (`REFUSED_STREAM`,
/// or a graceful GOAWAY whose last stream id is below the call's). Anything else
/// (a status the adapter sent, a deadline, a connection lost mid-call) may have
/// been seen.
pub(crate) fn never_reached_adapter(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    let mut source = status.source();
    while let Some(e) = source {
        if e.downcast_ref::<tonic::ConnectError>().is_some() {
            return true;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && h.is_canceled()
        {
            return true;
        }
        if let Some(h) = e.downcast_ref::<h2::Error>() {
            return h.reason() == Some(h2::Reason::REFUSED_STREAM)
                || (h.is_go_away() && h.is_remote() && h.reason() == Some(h2::Reason::NO_ERROR));
        }
        source = e.source();
    }
    false
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
        // tonic's own errors do not name the file: check each one first.
        let pem = |id: &str, p: &std::path::Path, key: bool| {
            let checked = if key {
                relay_pki::tls::load_key(p).map(|_| ())
            } else {
                relay_pki::tls::load_certs(p).map(|_| ())
            };
            checked.map_err(|e| PoolError {
                id: id.to_owned(),
                reason: e.to_string(),
            })?;
            read(id, p)
        };
        let tls = &config.provider_tls;
        let mut providers = BTreeMap::new();
        for p in &config.providers {
            let ca_file = p.ca.as_ref().unwrap_or(&tls.ca);
            let ca = Certificate::from_pem(pem(p.id.as_str(), ca_file, false)?);
            let identity = Identity::from_pem(
                pem(p.id.as_str(), &tls.cert, false)?,
                pem(p.id.as_str(), &tls.key, true)?,
            );
            let mut replicas = Vec::new();
            for url in p.urls() {
                let channel = channel(url, p.tls_name.as_deref(), ca.clone(), identity.clone())
                    .map_err(|reason| PoolError {
                        id: p.id.to_string(),
                        reason,
                    })?;
                replicas.push(Replica {
                    url: url.clone(),
                    channel: channel.clone(),
                    client: ProviderClient::new(channel)
                        .max_decoding_message_size(16 * 1024 * 1024),
                    down_until: std::sync::Mutex::new(None),
                });
            }
            if replicas.is_empty() {
                return Err(PoolError {
                    id: p.id.to_string(),
                    reason: "no endpoint".into(),
                });
            }
            providers.insert(
                p.id.to_string(),
                Provider {
                    recent: std::sync::Mutex::new(Recent::default()),
                    contract: std::sync::Mutex::new(ContractState {
                        contract: Contract::Unknown,
                        checked: None,
                        refreshing: false,
                    }),
                    replicas,
                    next: AtomicUsize::new(0),
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
        let attempt = p
            .call(id, timeout, |mut client, left| async move {
                let mut req = tonic::Request::new(shs_proto::v1::DescribeRequest {});
                req.set_timeout(left);
                client.describe(req).await
            })
            .await;
        let reply = match attempt {
            Attempt::Answered(r) => Some(r),
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
        let span = tracing::Span::current();
        let attempt = provider
            .call(id, budget, |mut client, left| {
                let req = outgoing(request.clone(), left, &span);
                async move { client.query(req).await }
            })
            .await;
        match attempt {
            Attempt::TimedOut => CallOutcome::Timeout,
            Attempt::Unreached => CallOutcome::Unavailable,
            Attempt::Answered(reply) => match reply.outcome {
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
            Attempt::Failed(status) => match status.code() {
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
        let span = tracing::Span::current();
        let attempt = provider
            .call(id, budget, |mut client, left| {
                let req = outgoing(request.clone(), left, &span);
                async move { client.submit(req).await }
            })
            .await;
        let outcome = match attempt {
            Attempt::TimedOut => SubmitOutcome::Timeout,
            Attempt::Unreached => SubmitOutcome::Unavailable,
            Attempt::Answered(reply) => match reply.outcome {
                Some(shs_proto::v1::submit_reply::Outcome::Receipt(r)) => SubmitOutcome::Receipt(r),
                Some(shs_proto::v1::submit_reply::Outcome::Error(e)) => SubmitOutcome::Refused(e),
                None => SubmitOutcome::InvalidAnswer,
            },
            Attempt::Failed(status) => match status.code() {
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

    /// The adapter's `grpc.health.v1` status, within `timeout`: `true` when any
    /// replica is serving. Each replica's answer marks it up or down.
    pub async fn is_serving(&self, id: &str, timeout: Duration) -> bool {
        let Some(provider) = self.providers.get(id) else {
            return false;
        };
        let checks = provider.replicas.iter().map(|replica| async move {
            let serving = replica_serving(replica, timeout).await;
            replica.mark(id, serving);
            serving
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .any(|serving| serving)
    }

    /// Each replica of provider `id` for `/admin/providers`: its endpoint and
    /// whether it is healthy (not marked down since it last answered).
    pub fn endpoints(&self, id: &str) -> serde_json::Value {
        let Some(p) = self.providers.get(id) else {
            return serde_json::Value::Null;
        };
        p.replicas
            .iter()
            .map(|r| serde_json::json!({ "url": r.url, "healthy": r.is_healthy() }))
            .collect()
    }
}

/// One replica's `grpc.health.v1` answer within `timeout`: `true` when SERVING.
async fn replica_serving(replica: &Replica, timeout: Duration) -> bool {
    let mut health = tonic_health::pb::health_client::HealthClient::new(replica.channel.clone());
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

/// A call to an adapter: `message` with the time `left` as its `grpc-timeout`,
/// continuing the caller's trace (W3C `traceparent`) when spans are exported.
fn outgoing<T>(message: T, left: Duration, span: &tracing::Span) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.set_timeout(left);
    relay_telemetry::inject(span, req.metadata_mut());
    req
}

fn channel(
    url: &str,
    tls_name: Option<&str>,
    ca: Certificate,
    identity: Identity,
) -> Result<Channel, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("endpoint {url}: {e}"))?;
    let host = tls_name
        .map(str::to_owned)
        .or_else(|| uri.host().map(str::to_owned))
        .unwrap_or_default();
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(identity)
        .domain_name(host);
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("endpoint {url}: {e}"))?
        .tls_config(tls)
        .map_err(|e| format!("tls: {e}"))?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(e: impl std::error::Error + Send + Sync + 'static) -> tonic::Status {
        tonic::Status::from_error(Box::new(e))
    }

    #[test]
    fn only_a_call_that_never_reached_an_adapter_may_go_to_another_replica() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let connect = transport(tonic::ConnectError(Box::new(refused)));
        assert_eq!(connect.code(), tonic::Code::Unavailable);
        assert!(never_reached_adapter(&connect));
        assert!(never_reached_adapter(&transport(h2::Error::from(
            h2::Reason::REFUSED_STREAM
        ))));
        // Statuses the adapter sent, even UNAVAILABLE, and a stream reset mid-call.
        assert!(!never_reached_adapter(&tonic::Status::unavailable(
            "base service down"
        )));
        assert!(!never_reached_adapter(&tonic::Status::deadline_exceeded(
            "late"
        )));
        assert!(!never_reached_adapter(&transport(h2::Error::from(
            h2::Reason::INTERNAL_ERROR
        ))));
    }
}
