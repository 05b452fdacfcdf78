//! ELT: one signed time report per call, forwarded to Försäkringskassan's
//! adapter (`Submit`), with the rules of the service's terms enforced here
//! first. Both ways in (SHS synch and SOAP `SkickaTidredovisning`) decode their
//! message into a [`Submission`] and turn the [`Refusal`] into their own error.
//!
//! The order of the checks: agreement (a registered system vendor) → vendor
//! suspended → environment (message status, test-only certificate) → the call
//! is counted (every call from here on, whatever its outcome; the sixth retry
//! of the same call is refused) → rate (one call per second per vendor, never
//! queued) → one report per call → the report itself (well-formed, XSD, domain
//! rules) → mandate (the vendor may submit for this assistance company) →
//! assistance company suspended → test persons in production → the month
//! against the arrival day → signatures present → revocation of both signers →
//! a repeat of an accepted report (its original receipt) or a conflict → the
//! adapter (signatures, registration).
//!
//! # Layout
//!
//! This module is the product's one entry point ([`submit`]) and its rules;
//! [`shs`] and [`soap`] decode each way in's message into a [`Submission`]
//! and encode the receipt; [`Refusal`] (`refusal.rs`) maps each refusal into
//! the relay's [`crate::failure::Failure`].
//!
//! Run-time state (rate buckets, retry counts, accepted reports) sits behind
//! [`EltStore`]: [`shared::SharedStore`] keeps it in the relay's store (either
//! engine), [`MemoryStore`] in this process (a relay without a store). Mandates
//! decided through the admin API live in the store too ([`Mandates`] is the
//! node's copy).
//!
//! Nothing of the report is logged: logs carry tx ids, the vendor's
//! organisation number, the rule that refused, and latencies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use chrono::NaiveDate;
use relay_elt::report::{Report, ReportError, count_reports};
use relay_elt::revocation::RevocationError;
use relay_ident::Organisationsnummer;

use shs_proto::v1 as proto;
use zeroize::Zeroizing;

use crate::Relay;
use crate::config::{Environment, ProductName};
use crate::metrics::Reason;
use crate::providers::SubmitOutcome;

mod refusal;
pub mod shared;
pub mod shs;
pub mod soap;
pub use refusal::Refusal;

/// One call's content, as either way in decoded it.
pub struct Submission {
    /// The report's exact bytes (what the signatures cover).
    pub report: Zeroizing<Vec<u8>>,
    /// How many reports the call carried (data parts or SOAP elements).
    pub reports_in_call: ReportCount,
    pub assistant_signature: Option<Signature>,
    pub anordnare_signature: Option<Signature>,
    /// SHS label `status` (`test` or `production`); none over SOAP.
    pub status: Option<Environment>,
}

/// How many reports a call carried, as its way in can tell: SHS counts its
/// data parts; the SOAP reader stops at the second report element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportCount {
    Exactly(usize),
    MoreThanOne,
}

pub struct Signature {
    pub der: Vec<u8>,
    pub date: Option<NaiveDate>,
    pub ocsp: Option<Vec<u8>>,
}

/// The caller, as the front identified it.
pub struct Caller<'a> {
    pub org: &'a Organisationsnummer,
    /// SHA-256 (hex) of the client certificate's DER.
    pub fingerprint: Option<&'a str>,
}

/// What the relay remembers of an accepted report.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// SHA-256 (hex) of the report's exact bytes.
    pub sha256: String,
    pub receipt: relay_elt::Receipt,
}

/// The settings the rate and retry bookkeeping follows (from `[elt]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoreSettings {
    pub calls_per_second: f64,
    pub burst: u32,
    pub max_retries: u32,
    pub retry_window: Duration,
    pub remembered_reports: usize,
}

impl StoreSettings {
    fn of(c: &crate::config::EltConfig) -> Self {
        Self {
            calls_per_second: c.calls_per_second,
            burst: c.burst,
            max_retries: c.max_retries,
            retry_window: Duration::from_secs(c.retry_window_s),
            remembered_reports: c.remembered_reports,
        }
    }
}

/// ELT's run-time state: each vendor's rate bucket, the count of each call,
/// and the receipts of accepted reports. [`MemoryStore`] keeps it in this
/// process; a store shared by several relays implements the same trait.
pub trait EltStore: Send + Sync {
    /// Takes a token from `vendor`'s bucket; when none is left, how long until
    /// one is.
    fn take_token<'a>(
        &'a self,
        vendor: &'a str,
        settings: &'a StoreSettings,
    ) -> BoxFuture<'a, Result<(), Duration>>;
    /// Counts one call (`call` names it); `Ok(retries before this one)`, or
    /// `Err(retries)` once more than `max_retries` retries were made in the
    /// window (the refused call is not counted).
    fn count_call<'a>(
        &'a self,
        call: &'a str,
        settings: &'a StoreSettings,
    ) -> BoxFuture<'a, Result<u32, u32>>;
    /// The accepted report with this id, if remembered.
    fn accepted<'a>(&'a self, report_id: &'a str) -> BoxFuture<'a, Option<Accepted>>;
    /// Remembers an accepted report.
    fn remember<'a>(
        &'a self,
        report_id: String,
        accepted: Accepted,
        settings: &'a StoreSettings,
    ) -> BoxFuture<'a, ()>;
}

/// [`EltStore`] in this process's memory: the rate limiter and retry tracker
/// of [`crate::limits`] (rebuilt when their settings change) and a bounded
/// map of accepted reports (oldest forgotten first).
#[derive(Default)]
pub struct MemoryStore {
    limits: std::sync::Mutex<Option<(LimiterKey, Arc<LimiterPair>)>>,
    accepted: std::sync::Mutex<(
        std::collections::HashMap<String, Accepted>,
        std::collections::VecDeque<String>,
    )>,
}

type LimiterKey = (u64, u32, u32, Duration);

struct LimiterPair {
    rate: crate::limits::RateLimiter,
    retries: crate::limits::RetryTracker,
}

impl MemoryStore {
    fn limiters(&self, s: &StoreSettings) -> Arc<LimiterPair> {
        let key = (
            s.calls_per_second.to_bits(),
            s.burst,
            s.max_retries,
            s.retry_window,
        );
        let mut state = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        match &*state {
            Some((k, pair)) if *k == key => pair.clone(),
            _ => {
                let pair = Arc::new(LimiterPair {
                    rate: crate::limits::RateLimiter::new(s.calls_per_second, s.burst),
                    retries: crate::limits::RetryTracker::new(s.max_retries, s.retry_window),
                });
                *state = Some((key, pair.clone()));
                pair
            }
        }
    }
}

impl EltStore for MemoryStore {
    fn take_token<'a>(
        &'a self,
        vendor: &'a str,
        settings: &'a StoreSettings,
    ) -> BoxFuture<'a, Result<(), Duration>> {
        let result = self.limiters(settings).rate.check(vendor);
        Box::pin(std::future::ready(result))
    }

    fn count_call<'a>(
        &'a self,
        call: &'a str,
        settings: &'a StoreSettings,
    ) -> BoxFuture<'a, Result<u32, u32>> {
        let result = self.limiters(settings).retries.attempt(&[call]);
        Box::pin(std::future::ready(result))
    }

    fn accepted<'a>(&'a self, report_id: &'a str) -> BoxFuture<'a, Option<Accepted>> {
        let state = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        let found = state.0.get(report_id).cloned();
        Box::pin(std::future::ready(found))
    }

    fn remember<'a>(
        &'a self,
        report_id: String,
        accepted: Accepted,
        settings: &'a StoreSettings,
    ) -> BoxFuture<'a, ()> {
        let mut state = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *state;
        if map.insert(report_id.clone(), accepted).is_none() {
            order.push_back(report_id);
        }
        while order.len() > settings.remembered_reports.max(1) {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        Box::pin(std::future::ready(()))
    }
}

/// Mandates granted and revoked through the admin API, over those in
/// configuration: a vendor may submit for an assistance company when the pair
/// is granted, or configured and not revoked. The decisions live in the
/// relay's store (`relay_store::SharedState::set_mandate`); this is the node's
/// copy, written by the admin call and, with several nodes, replaced by every
/// read of the store ([`crate::decisions`]).
#[derive(Default)]
pub struct Mandates {
    state: std::sync::RwLock<MandateState>,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct MandateState {
    granted: std::collections::BTreeSet<(Organisationsnummer, Organisationsnummer)>,
    revoked: std::collections::BTreeSet<(Organisationsnummer, Organisationsnummer)>,
}

/// One mandate as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MandateView {
    pub vendor: String,
    pub anordnare: String,
    /// `config` or `admin`.
    pub source: &'static str,
}

/// Reads an old `[elt] mandates_file` (the admin API's grants and revocations
/// before they moved into the store) for its one-time import. A missing file
/// is nothing to import; a file that cannot be read or parsed is an error that
/// names it (never an empty set: revoked mandates would come back).
pub fn read_mandates_file(path: &std::path::Path) -> anyhow::Result<Vec<relay_store::Mandate>> {
    use anyhow::Context;
    const LIMIT: u64 = 16 * 1024 * 1024;
    let bytes = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("elt.mandates_file {}", path.display())),
        Ok(m) if m.len() > LIMIT => {
            anyhow::bail!(
                "elt.mandates_file {}: larger than {LIMIT} bytes",
                path.display()
            )
        }
        Ok(_) => {
            std::fs::read(path).with_context(|| format!("elt.mandates_file {}", path.display()))?
        }
    };
    let state: MandateState = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "elt.mandates_file {}: not a mandates file (JSON {{\"granted\": [[vendor, anordnare], ...], \"revoked\": [...]}})",
            path.display()
        )
    })?;
    let pairs = |set: std::collections::BTreeSet<_>, granted| {
        set.into_iter()
            .map(move |(vendor, anordnare)| relay_store::Mandate {
                vendor,
                anordnare,
                granted,
            })
    };
    Ok(pairs(state.granted, true)
        .chain(pairs(state.revoked, false))
        .collect())
}

impl Mandates {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, MandateState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, MandateState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `vendor` may submit reports for `anordnare`.
    pub fn allows(
        &self,
        elt: &crate::config::EltConfig,
        vendor: &Organisationsnummer,
        anordnare: &Organisationsnummer,
    ) -> bool {
        let state = self.read();
        let pair = (*vendor, *anordnare);
        !state.revoked.contains(&pair)
            && (state.granted.contains(&pair) || elt.has_mandate(vendor, anordnare))
    }

    /// Applies one decision (after it was stored).
    pub fn apply(&self, m: relay_store::Mandate) {
        let mut state = self.write();
        let pair = (m.vendor, m.anordnare);
        if m.granted {
            state.revoked.remove(&pair);
            state.granted.insert(pair);
        } else {
            state.granted.remove(&pair);
            state.revoked.insert(pair);
        }
    }

    /// Replaces every decision with what the store holds.
    pub fn replace(&self, all: &[relay_store::Mandate]) {
        let mut next = MandateState::default();
        for m in all {
            let pair = (m.vendor, m.anordnare);
            if m.granted {
                next.granted.insert(pair);
            } else {
                next.revoked.insert(pair);
            }
        }
        *self.write() = next;
    }

    /// Every mandate in force, and where it comes from.
    pub fn list(&self, elt: &crate::config::EltConfig) -> Vec<MandateView> {
        let state = self.read();
        let mut out: Vec<MandateView> = Vec::new();
        for m in &elt.mandates {
            for a in &m.anordnare {
                if !state.revoked.contains(&(m.vendor, *a)) {
                    out.push(MandateView {
                        vendor: m.vendor.as_str().to_owned(),
                        anordnare: a.as_str().to_owned(),
                        source: "config",
                    });
                }
            }
        }
        for (v, a) in &state.granted {
            if !elt.has_mandate(v, a) {
                out.push(MandateView {
                    vendor: v.as_str().to_owned(),
                    anordnare: a.as_str().to_owned(),
                    source: "admin",
                });
            }
        }
        out
    }
}

/// ELT's state in the relay: the store and the admin API's mandates.
pub struct EltState {
    pub store: Arc<dyn EltStore>,
    pub mandates: Mandates,
}

/// The name `Relay` knows this state by.
pub type Limiters = EltState;

impl EltState {
    /// State in this process's memory.
    pub fn new() -> Self {
        Self::with_store(Arc::new(MemoryStore::default()))
    }

    /// State in `store` (e.g. one shared by several relays).
    pub fn with_store(store: Arc<dyn EltStore>) -> Self {
        Self {
            store,
            mandates: Mandates::default(),
        }
    }
}

impl Default for EltState {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks the rules and submits the report. `tx` names the call in logs and
/// the audit trail.
pub async fn submit(
    relay: &Relay,
    admitted: &crate::identity::Caller,
    channel: relay_audit::Channel,
    tx: &str,
    submission: Submission,
) -> Result<relay_elt::Receipt, Refusal> {
    let caller = Caller {
        org: &admitted.org,
        fingerprint: admitted.fingerprint.as_deref(),
    };
    let started = Instant::now();
    let mut persons = Vec::new();
    let status = submission.status;
    let result = run(relay, &caller, tx, submission, &mut persons).await;
    crate::parties::checks::elt(
        relay,
        caller.org,
        status,
        match &result {
            Ok(r) if r.repeat => crate::parties::checks::EltOutcome::Repeated,
            Ok(_) => crate::parties::checks::EltOutcome::Accepted,
            // A report rule, not who may send: the vendor can correct it.
            Err(
                Refusal::RateLimited { .. }
                | Refusal::OneReport(_)
                | Refusal::RetryLimit { .. }
                | Refusal::NoMandate
                | Refusal::Month(_)
                | Refusal::Xml(_)
                | Refusal::Signature(_),
            ) => crate::parties::checks::EltOutcome::RuleRefused,
            Err(_) => crate::parties::checks::EltOutcome::Other,
        },
    )
    .await;
    let outcome = match &result {
        Ok(_) => "receipt",
        Err(r) => r.label(),
    };
    relay
        .metrics
        .elt_submissions
        .get_or_create(&Reason { reason: outcome })
        .inc();
    if let Err(r) = &result
        && r.is_rule()
    {
        relay
            .metrics
            .elt_refusals
            .get_or_create(&Reason { reason: r.label() })
            .inc();
    }
    tracing::info!(
        product = "elt",
        tx = %tx,
        caller = %caller.org,
        outcome,
        latency_ms = started.elapsed().as_millis() as u64,
        "time report"
    );
    // A receipt is released only once its record is on disk (see
    // `outcomes::answered`); FK has it, so the vendor's retry gets the same
    // receipt back once the trail can be written again.
    if audit(relay, channel, tx, &caller, &persons, &result, started)
        .await
        .is_err()
    {
        return Err(Refusal::Internal(
            crate::outcomes::NotAudited::TEXT.to_owned(),
        ));
    }
    result
}

/// What passed every rule: the call to make, or the receipt of the accepted
/// report this one repeats.
enum Prepared {
    Submit(Box<Call>),
    Repeat(relay_elt::Receipt),
}

struct Call {
    request: proto::SubmitRequest,
    digest: String,
    report_id: String,
    month: NaiveDate,
    provider: String,
    timeout: Duration,
    settings: StoreSettings,
}

async fn run(
    relay: &Relay,
    caller: &Caller<'_>,
    tx: &str,
    submission: Submission,
    persons: &mut Vec<relay_ident::Personnummer>,
) -> Result<relay_elt::Receipt, Refusal> {
    let live = relay.live();
    // The rules, in one `policy` span (the check, the decision, the rule; never
    // who or about whom).
    let span = tracing::info_span!(
        "policy",
        policy.check = "elt",
        policy.decision = tracing::field::Empty,
        policy.rule = tracing::field::Empty,
    );
    let prepared = tracing::Instrument::instrument(
        prepare(relay, &live, caller, tx, submission, persons),
        span.clone(),
    )
    .await;
    match &prepared {
        Ok(_) => span.record("policy.decision", "allowed"),
        Err(r) => span
            .record("policy.decision", "refused")
            .record("policy.rule", r.label()),
    };
    let call = match prepared? {
        Prepared::Repeat(receipt) => {
            tracing::info!(tx = %tx, "time report repeated: the original receipt");
            return Ok(receipt);
        }
        Prepared::Submit(call) => *call,
    };
    let Call {
        request,
        digest,
        report_id,
        month,
        provider,
        timeout,
        settings,
    } = call;
    let span = tracing::info_span!(
        "provider.call",
        otel.kind = "client",
        provider.id = provider_label(&provider),
        shs.tx_id = relay_telemetry::tx_attribute(tx),
        provider.outcome = tracing::field::Empty,
        provider.latency_ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let outcome = tracing::Instrument::instrument(
        live.providers.submit(&provider, request, timeout),
        span.clone(),
    )
    .await;
    span.record("provider.outcome", outcome.label())
        .record("provider.latency_ms", started.elapsed().as_millis() as u64);
    relay.metrics.provider_call(
        provider_label(&provider),
        outcome.label(),
        started.elapsed(),
    );
    match outcome {
        SubmitOutcome::Receipt(r) => {
            if r.sha256 != digest {
                tracing::error!(tx = %tx, "the provider's receipt names other bytes than were sent");
                return Err(Refusal::Unavailable);
            }
            // Late or not is decided by the day Försäkringskassan received it
            // (the original day, for a repeat).
            let received = chrono::DateTime::parse_from_rfc3339(&r.received_at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(|_| chrono::Utc::now());
            let receipt = relay_elt::Receipt {
                tx_id: r.receipt_id,
                report_id: r.document_id,
                received_at: r.received_at,
                sha256: r.sha256,
                repeat: r.repeat,
                late: relay_elt::calendar::lateness(month, swedish_day(received)),
            };
            relay
                .elt_limiters
                .store
                .remember(
                    report_id,
                    Accepted {
                        sha256: digest,
                        receipt: relay_elt::Receipt {
                            repeat: false,
                            ..receipt.clone()
                        },
                    },
                    &settings,
                )
                .await;
            Ok(receipt)
        }
        SubmitOutcome::Refused(e) => {
            let message = e.messages.join("; ");
            Err(match proto::SubmitErrorKind::try_from(e.kind) {
                Ok(proto::SubmitErrorKind::Validation) => Refusal::Xml(message),
                Ok(proto::SubmitErrorKind::Signature) => Refusal::Signature(message),
                Ok(proto::SubmitErrorKind::Conflict) => Refusal::Conflict,
                _ => Refusal::Provider {
                    code: e.code,
                    message,
                },
            })
        }
        SubmitOutcome::Timeout => Err(Refusal::Timeout),
        SubmitOutcome::Unavailable
        | SubmitOutcome::Overloaded
        | SubmitOutcome::NotOffered
        | SubmitOutcome::InvalidAnswer => Err(Refusal::Unavailable),
    }
}

/// The calendar day in Sweden at `t`.
fn swedish_day(t: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    t.with_timezone(&chrono_tz::Europe::Stockholm).date_naive()
}

/// Names a call for the retry count: the vendor, the report id when readable,
/// and the SHA-256 of the report and of each signature. Any change to any of
/// them is a new call.
fn call_key(caller: &Organisationsnummer, submission: &Submission) -> String {
    let id = relay_elt::report::id_of(&submission.report)
        .map(|u| u.to_string())
        .unwrap_or_else(|| "-".into());
    let sig = |s: &Option<Signature>| {
        s.as_ref()
            .map_or_else(|| "-".to_owned(), |s| relay_elt::sha256_hex(&s.der))
    };
    let material = format!(
        "{caller}/{id}/{}/{}/{}",
        relay_elt::sha256_hex(&submission.report),
        sig(&submission.assistant_signature),
        sig(&submission.anordnare_signature)
    );
    format!("{caller}/{}", relay_elt::sha256_hex(material.as_bytes()))
}

async fn prepare(
    relay: &Relay,
    live: &crate::Live,
    caller: &Caller<'_>,
    tx: &str,
    mut submission: Submission,
    persons: &mut Vec<relay_ident::Personnummer>,
) -> Result<Prepared, Refusal> {
    let config = &live.config;
    let Some(elt) = &config.elt else {
        return Err(Refusal::NotOffered);
    };
    let env = config.node.environment;
    // The one policy gate: a registered system vendor (an ELT agreement covering
    // this environment), not suspended by the operator.
    let who = crate::identity::Caller {
        org: *caller.org,
        fingerprint: None,
        role: crate::identity::Role::Organisation,
    };
    crate::policy::gate(
        &relay.metrics,
        config,
        &relay.operator,
        &crate::policy::Ask::product(&who, ProductName::Elt).with_status(submission.status),
    )
    .map_err(|r| match r {
        crate::policy::Refusal::Suspended => Refusal::SuspendedVendor,
        crate::policy::Refusal::WrongEnvironment { .. }
        | crate::policy::Refusal::PartyTestOnly { .. } => Refusal::Environment(r.to_string()),
        crate::policy::Refusal::PartyNotAdmitted { .. } => Refusal::NoAgreement(r.to_string()),
        _ => Refusal::NoAgreement(
            "the certificate's organisation is not a registered ELT system vendor".into(),
        ),
    })?;
    if elt.suspended_vendors.contains(caller.org) {
        return Err(Refusal::SuspendedVendor);
    }
    if let Some(status) = submission.status
        && status != env
    {
        return Err(Refusal::Environment(format!(
            "a message with status=\"{}\" is refused in the {} environment (terms 2.1 c)",
            status.as_str(),
            env.as_str()
        )));
    }
    if env == Environment::Production && caller.fingerprint.is_some_and(|f| elt.is_test_only(f)) {
        return Err(Refusal::Environment(
            "the client certificate is registered for the test environment only".into(),
        ));
    }
    // Every call from here on counts towards the retries of the same call,
    // whatever its outcome (terms 2.1 f).
    let state = &relay.elt_limiters;
    let settings = StoreSettings::of(elt);
    let retries = state
        .store
        .count_call(&call_key(caller.org, &submission), &settings)
        .await
        .map_err(|retries| Refusal::RetryLimit { retries })?;
    if retries > 0 {
        tracing::info!(tx = %tx, retry = retries, "call retried");
    }
    state
        .store
        .take_token(caller.org.as_str(), &settings)
        .await
        .map_err(|retry_after| Refusal::RateLimited {
            retry_after,
            per_second: elt.calls_per_second,
        })?;
    match submission.reports_in_call {
        ReportCount::Exactly(1) => {}
        ReportCount::Exactly(n) => {
            return Err(Refusal::OneReport(format!(
                "one time report per call (terms 2.1 e); this call carries {n}"
            )));
        }
        ReportCount::MoreThanOne => {
            return Err(Refusal::OneReport(
                "one time report per call (terms 2.1 e); this call carries more than one".into(),
            ));
        }
    }
    if count_reports(&submission.report).is_some_and(|n| n > 1) {
        return Err(Refusal::OneReport(
            "a batch document is refused: one time report per call (terms 2.1 e)".into(),
        ));
    }
    // Bounded and linear; a large report is parsed off the async workers.
    let max_report_bytes = elt.max_report_bytes;
    let document = std::mem::take(&mut submission.report);
    let (parsed, document) = crate::cpu::parse(document.len(), move || {
        (Report::parse_with(&document, max_report_bytes), document)
    })
    .await
    .map_err(|_| Refusal::Internal("parsing the time report failed".into()))?;
    submission.report = document;
    let report = parsed.map_err(|e| match e {
        ReportError::Batch(m) => Refusal::OneReport(m),
        other => Refusal::Xml(other.to_string()),
    })?;
    persons.push(report.insured);
    persons.push(report.assistant);
    if !state.mandates.allows(elt, caller.org, &report.anordnare) {
        return Err(Refusal::NoMandate);
    }
    if relay.operator.is_anordnare_suspended(&report.anordnare)
        || elt.suspended_anordnare.contains(&report.anordnare)
    {
        return Err(Refusal::SuspendedAnordnare);
    }
    if env == Environment::Production && report.names_test_person() {
        return Err(Refusal::TestData);
    }
    let now = chrono::Utc::now();
    relay_elt::calendar::check_arrival(&report, swedish_day(now))
        .map_err(|e| Refusal::Month(e.to_string()))?;
    let (Some(assistant), Some(anordnare)) = (
        submission.assistant_signature,
        submission.anordnare_signature,
    ) else {
        return Err(Refusal::Signature(
            "both signatures are required: the assistant's and the assistance company's".into(),
        ));
    };
    for s in [&assistant, &anordnare] {
        if s.der.len() > elt.max_signature_bytes {
            return Err(Refusal::Signature(format!(
                "a signature is larger than {} bytes",
                elt.max_signature_bytes
            )));
        }
    }
    if let Some(revocation) = &elt.revocation {
        for (role, s) in [
            ("assistant", &assistant),
            ("assistance company", &anordnare),
        ] {
            let der = relay_elt::signature::der_of(&s.der);
            revocation
                .check(&der, s.ocsp.as_deref(), now)
                .map_err(|e| match e {
                    RevocationError::CrlExpired => Refusal::CrlExpired,
                    other => Refusal::Signature(format!("the {role}'s signature: {other}")),
                })?;
        }
    }
    let digest = relay_elt::sha256_hex(&submission.report);
    let id = report.id.to_string();
    match state.store.accepted(&id).await {
        Some(a) if a.sha256 == digest => {
            return Ok(Prepared::Repeat(relay_elt::Receipt {
                repeat: true,
                ..a.receipt
            }));
        }
        Some(_) => return Err(Refusal::Conflict),
        None => {}
    }
    let attachment = |name: &str, s: Signature| {
        let mut attributes = std::collections::HashMap::new();
        if let Some(d) = s.date {
            attributes.insert(
                "datumForSignatur".to_owned(),
                d.format("%Y-%m-%d").to_string(),
            );
        }
        if let Some(o) = &s.ocsp {
            use base64::Engine;
            attributes.insert(
                "ocspResponse".to_owned(),
                base64::engine::general_purpose::STANDARD.encode(o),
            );
        }
        proto::Attachment {
            name: name.to_owned(),
            content_type: relay_elt::SIGNATURE_MIME.to_owned(),
            content: s.der,
            attributes,
        }
    };
    let request = proto::SubmitRequest {
        transaction_id: tx.to_owned(),
        caller: Some(proto::Caller {
            organisation_number: caller.org.as_str().to_owned(),
            name: config
                .agreement(caller.org)
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            case_worker: String::new(),
        }),
        document_type: relay_elt::DATAPART_REPORT.to_owned(),
        document: submission.report.to_vec(),
        attachments: vec![
            attachment(relay_elt::DATAPART_ASSISTANT_SIGNATURE, assistant),
            attachment(relay_elt::DATAPART_ANORDNARE_SIGNATURE, anordnare),
        ],
        environment: match env {
            Environment::Test => proto::Environment::Test,
            Environment::Production => proto::Environment::Production,
        } as i32,
        document_id: id.clone(),
    };
    drop(submission.report);
    Ok(Prepared::Submit(Box::new(Call {
        request,
        digest,
        report_id: id,
        month: report.month,
        provider: elt.provider.to_string(),
        timeout: Duration::from_millis(elt.timeout_ms),
        settings,
    })))
}

/// Provider ids as static labels (bounded metric labels).
fn provider_label(id: &str) -> &'static str {
    relay_ssbtek::Slot::ALL
        .into_iter()
        .map(relay_ssbtek::Slot::as_str)
        .find(|p| *p == id)
        .unwrap_or("other")
}

async fn audit(
    relay: &Relay,
    channel: relay_audit::Channel,
    tx: &str,
    caller: &Caller<'_>,
    persons: &[relay_ident::Personnummer],
    result: &Result<relay_elt::Receipt, Refusal>,
    started: Instant,
) -> Result<(), crate::outcomes::NotAudited> {
    let Some((log, key)) = &relay.audit else {
        return Ok(());
    };
    let record = relay_audit::RequestRecord {
        time: chrono::Utc::now(),
        tx_id: tx.to_owned(),
        corr_id: None,
        channel,
        caller_org: caller.org.as_str().to_owned(),
        case_worker: String::new(),
        case_id: result
            .as_ref()
            .map(|r| r.report_id.clone())
            .unwrap_or_default(),
        product: "elt".into(),
        purpose: "tidredovisning".into(),
        key_id: String::new(),
        persons: Vec::new(),
        persons_count: 0,
        providers: Vec::new(),
        latency_ms: started.elapsed().as_millis() as u64,
        deadline_ms: relay.live().config.elt.as_ref().map_or(0, |e| e.timeout_ms),
        result: match result {
            Ok(_) => relay_audit::RequestResult::Answered,
            Err(r) => r.by().audit_result(r.label()),
        },
        by: result.as_ref().err().map(|r| r.by().audit()),
    }
    .with_persons(&key.load(), persons);
    if result.is_ok() {
        return crate::outcomes::answered(relay, record).await;
    }
    if let Err(e) = log.record(record).await {
        tracing::error!(tx = tx, error = %e, "audit record could not be written");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_elt::soap::FaultKind;
    use relay_shs::ErrorCode;

    /// The mapping docs/elt.md documents: code, SHS error code, SOAP fault.
    #[test]
    fn every_refusal_maps_to_its_documented_code_and_fault() {
        let rate = Refusal::RateLimited {
            retry_after: Duration::from_millis(400),
            per_second: 1.0,
        };
        let cases: Vec<(Refusal, &str, ErrorCode, &str)> = vec![
            (
                Refusal::NoAgreement("x".into()),
                "ELT-NO-AGREEMENT",
                ErrorCode::MissingAgreement,
                "policy",
            ),
            (
                Refusal::SuspendedVendor,
                "ELT-SUSPENDED-VENDOR",
                ErrorCode::MissingAgreement,
                "policy",
            ),
            (
                Refusal::Environment("x".into()),
                "ELT-ENVIRONMENT",
                ErrorCode::MissingAgreement,
                "policy",
            ),
            (
                rate.clone(),
                "ELT-RATE-LIMIT",
                ErrorCode::OtherError,
                "policy",
            ),
            (
                Refusal::OneReport("x".into()),
                "ELT-ONE-REPORT",
                ErrorCode::IllegalMessageStructure,
                "policy",
            ),
            (
                Refusal::Xml("x".into()),
                "ELT-XML",
                ErrorCode::IllegalDatapartContent,
                "xml",
            ),
            (
                Refusal::SuspendedAnordnare,
                "ELT-SUSPENDED-ANORDNARE",
                ErrorCode::MissingAgreement,
                "policy",
            ),
            (
                Refusal::RetryLimit { retries: 5 },
                "ELT-RETRY-LIMIT",
                ErrorCode::OtherError,
                "policy",
            ),
            (
                Refusal::NoMandate,
                "ELT-NO-MANDATE",
                ErrorCode::MissingAgreement,
                "policy",
            ),
            (
                Refusal::TestData,
                "ELT-TEST-DATA",
                ErrorCode::IllegalDatapartContent,
                "policy",
            ),
            (
                Refusal::Month("x".into()),
                "ELT-MONTH",
                ErrorCode::IllegalDatapartContent,
                "policy",
            ),
            (
                Refusal::Conflict,
                "ELT-CONFLICT",
                ErrorCode::OtherError,
                "policy",
            ),
            (
                Refusal::CrlExpired,
                "ELT-CRL-EXPIRED",
                ErrorCode::OtherError,
                "server",
            ),
            (
                Refusal::Signature("x".into()),
                "ELT-SIGNATURE",
                ErrorCode::IllegalDatapartContent,
                "signature",
            ),
            (
                Refusal::Unavailable,
                "ELT-UNAVAILABLE",
                ErrorCode::OtherError,
                "server",
            ),
            (
                Refusal::Timeout,
                "ELT-TIMEOUT",
                ErrorCode::OtherError,
                "server",
            ),
        ];
        for (refusal, code, shs, fault) in cases {
            assert_eq!(refusal.code(), code);
            let e = refusal.shs_error();
            assert_eq!(e.code, shs, "{code}");
            assert!(e.info.starts_with(&format!("{code}: ")), "{}", e.info);
            let kind = match refusal.fault_kind() {
                FaultKind::Policy { .. } => "policy",
                FaultKind::XmlValidation => "xml",
                FaultKind::SignatureValidation => "signature",
                FaultKind::Server { .. } => "server",
                FaultKind::Soap { .. } => "soap",
            };
            assert_eq!(kind, fault, "{code}");
        }
        // Rate refusals carry a whole-second hint of at least one second.
        assert_eq!(rate.retry_after_s(), Some(1));
        assert_eq!(
            rate.shs_error()
                .with_retry_after(rate.retry_after_s())
                .retry_after_s,
            Some(1)
        );
        assert!(rate.message().contains("at most 1 call(s) per second"));
    }

    fn settings() -> StoreSettings {
        StoreSettings {
            calls_per_second: 1.0,
            burst: 1,
            max_retries: 5,
            retry_window: Duration::from_secs(3600),
            remembered_reports: 2,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_memory_store_refuses_the_sixth_retry_of_a_call_and_forgets_the_oldest_receipt() {
        let store = MemoryStore::default();
        let s = settings();
        for retry in 0..=5 {
            assert_eq!(store.count_call("call", &s).await, Ok(retry));
        }
        assert_eq!(store.count_call("call", &s).await, Err(5));
        assert_eq!(store.count_call("corrected call", &s).await, Ok(0));
        let accepted = |n: &str| Accepted {
            sha256: n.into(),
            receipt: relay_elt::Receipt {
                tx_id: n.into(),
                report_id: n.into(),
                received_at: String::new(),
                sha256: n.into(),
                repeat: false,
                late: None,
            },
        };
        for n in ["a", "b", "c"] {
            store.remember(n.into(), accepted(n), &s).await;
        }
        assert!(store.accepted("a").await.is_none(), "oldest forgotten");
        assert_eq!(store.accepted("c").await.unwrap().sha256, "c");
    }

    #[test]
    fn mandates_come_from_configuration_and_the_admin_api_and_a_corrupt_file_is_an_error() {
        let org = |s: &str| Organisationsnummer::parse(s).unwrap();
        let (vendor, anordnare, other) = (org("5566770011"), org("5566770029"), org("5566778899"));
        let elt: crate::config::EltConfig = toml::from_str(&format!(
            "mandates = [{{ vendor = \"{vendor}\", anordnare = [\"{anordnare}\"] }}]\n"
        ))
        .unwrap();
        let m = Mandates::default();
        assert!(m.allows(&elt, &vendor, &anordnare));
        assert!(!m.allows(&elt, &vendor, &other));
        let decision = |anordnare, granted| relay_store::Mandate {
            vendor,
            anordnare,
            granted,
        };
        m.apply(decision(other, true));
        m.apply(decision(anordnare, false));
        assert!(m.allows(&elt, &vendor, &other));
        assert!(
            !m.allows(&elt, &vendor, &anordnare),
            "a configured mandate revoked"
        );
        assert_eq!(
            m.list(&elt),
            vec![MandateView {
                vendor: vendor.as_str().into(),
                anordnare: other.as_str().into(),
                source: "admin",
            }]
        );
        m.replace(&[]);
        assert!(m.allows(&elt, &vendor, &anordnare), "the store's state");

        // The old file: read for its import; missing is empty, corrupt an error.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mandates.json");
        assert!(read_mandates_file(&file).unwrap().is_empty());
        std::fs::write(
            &file,
            format!("{{\"granted\": [[\"{vendor}\", \"{other}\"]], \"revoked\": [[\"{vendor}\", \"{anordnare}\"]]}}"),
        )
        .unwrap();
        assert_eq!(
            read_mandates_file(&file).unwrap(),
            vec![decision(other, true), decision(anordnare, false)]
        );
        std::fs::write(&file, "{\"granted\": [[\"5566770011\"").unwrap();
        let err = format!("{:#}", read_mandates_file(&file).unwrap_err());
        assert!(err.contains(&file.display().to_string()), "{err}");
    }
}
