//! ELT: one signed time report per call, forwarded to Försäkringskassan's
//! adapter (`Submit`), with the rules of the service's terms enforced here
//! first. Both ways in (SHS synch and SOAP `SkickaTidredovisning`) decode their
//! message into a [`Submission`] and turn the [`Refusal`] into their own error.
//!
//! The order of the checks: agreement (a registered system vendor) → vendor
//! suspended → environment (message status, test-only certificate) → rate (one
//! call per second per vendor, never queued) → one report per call → the report
//! itself (well-formed, XSD, domain rules) → assistance company suspended →
//! retries of the same report → the adapter (signatures, registration).
//!
//! Nothing of the report is logged: logs carry tx ids, the vendor's
//! organisation number, the rule that refused, and latencies.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use relay_elt::report::{Report, ReportError, count_reports};
use relay_ident::Organisationsnummer;
use relay_shs::{ErrorCode, ShsError};
use shs_proto::v1 as proto;
use zeroize::Zeroizing;

use crate::Relay;
use crate::config::{Environment, ProductName};
use crate::metrics::{METRICS, Reason};
use crate::providers::SubmitOutcome;

/// One call's content, as either way in decoded it.
pub struct Submission {
    /// The report's exact bytes (what the signatures cover).
    pub report: Zeroizing<Vec<u8>>,
    /// How many reports the call carried (data parts or SOAP elements).
    pub reports_in_call: usize,
    pub assistant_signature: Option<Signature>,
    pub anordnare_signature: Option<Signature>,
    /// SHS label `status` (`test` or `production`); none over SOAP.
    pub status: Option<Environment>,
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

/// Why a report was not accepted. The code (`ELT-...`) is stable and
/// documented; texts name the rule, never report content.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    NotOffered,
    NoAgreement(String),
    SuspendedVendor,
    Environment(String),
    RateLimited {
        retry_after: Duration,
        per_second: f64,
    },
    OneReport(String),
    Xml(String),
    SuspendedAnordnare,
    RetryLimit {
        retries: u32,
    },
    Signature(String),
    /// The provider refused for another reason (its base service said no).
    Provider {
        code: String,
        message: String,
    },
    Unavailable,
    Timeout,
}

impl Refusal {
    /// The stable code, first in every error text.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotOffered => "ELT-NOT-OFFERED",
            Self::NoAgreement(_) => "ELT-NO-AGREEMENT",
            Self::SuspendedVendor => "ELT-SUSPENDED-VENDOR",
            Self::Environment(_) => "ELT-ENVIRONMENT",
            Self::RateLimited { .. } => "ELT-RATE-LIMIT",
            Self::OneReport(_) => "ELT-ONE-REPORT",
            Self::Xml(_) => "ELT-XML",
            Self::SuspendedAnordnare => "ELT-SUSPENDED-ANORDNARE",
            Self::RetryLimit { .. } => "ELT-RETRY-LIMIT",
            Self::Signature(_) => "ELT-SIGNATURE",
            Self::Provider { .. } => "ELT-PROVIDER",
            Self::Unavailable => "ELT-UNAVAILABLE",
            Self::Timeout => "ELT-TIMEOUT",
        }
    }

    /// A bounded label for metrics and the audit trail.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotOffered => "not_offered",
            Self::NoAgreement(_) => "no_agreement",
            Self::SuspendedVendor => "suspended_vendor",
            Self::Environment(_) => "environment",
            Self::RateLimited { .. } => "rate_limit",
            Self::OneReport(_) => "one_report",
            Self::Xml(_) => "xml_validation",
            Self::SuspendedAnordnare => "suspended_anordnare",
            Self::RetryLimit { .. } => "retry_limit",
            Self::Signature(_) => "signature",
            Self::Provider { .. } => "provider_error",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
        }
    }

    /// Who failed: Försäkringskassan's side for an unreachable or failing
    /// adapter, the caller for every rule and every document it sent.
    pub fn by(&self) -> crate::failure::By {
        match self {
            Self::Unavailable | Self::Timeout | Self::Provider { .. } => {
                crate::failure::By::Provider("FK".into())
            }
            Self::NotOffered => crate::failure::By::Caller,
            _ => crate::failure::By::Caller,
        }
    }

    /// Whether this is one of the terms' rules (counted in `elt_refusals`).
    fn is_rule(&self) -> bool {
        matches!(
            self,
            Self::NoAgreement(_)
                | Self::SuspendedVendor
                | Self::Environment(_)
                | Self::RateLimited { .. }
                | Self::OneReport(_)
                | Self::SuspendedAnordnare
                | Self::RetryLimit { .. }
        )
    }

    pub fn message(&self) -> String {
        match self {
            Self::NotOffered => "ELT is not offered by this relay".into(),
            Self::NoAgreement(m) | Self::Environment(m) | Self::OneReport(m) => m.clone(),
            Self::SuspendedVendor => {
                "the system vendor is suspended from ELT by the operator".into()
            }
            Self::RateLimited {
                retry_after,
                per_second,
            } => format!(
                "at most {per_second} call(s) per second per vendor, never queued (terms 2.1 e); retry after {} s",
                (retry_after.as_secs_f64().ceil() as u64).max(1)
            ),
            Self::Xml(m) | Self::Signature(m) => m.clone(),
            Self::SuspendedAnordnare => {
                "the assistance company (assistansanordnare) is suspended from ELT".into()
            }
            Self::RetryLimit { retries } => format!(
                "this report has been retried {retries} times; no more retries are accepted (terms 2.1 f)"
            ),
            Self::Provider { code, message } => format!("{code}: {message}"),
            Self::Unavailable => "Försäkringskassan's service cannot be reached; try later".into(),
            Self::Timeout => "Försäkringskassan did not answer in time; try later".into(),
        }
    }

    /// Seconds to wait before trying again, when the refusal is about rate.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after, .. } => {
                Some((retry_after.as_secs_f64().ceil() as u64).max(1))
            }
            _ => None,
        }
    }

    /// The SHS error: the code first in `errorInfo`.
    pub fn shs_error(&self) -> ShsError {
        let code = match self {
            Self::NotOffered => ErrorCode::UnknownProductType,
            Self::NoAgreement(_)
            | Self::SuspendedVendor
            | Self::Environment(_)
            | Self::SuspendedAnordnare => ErrorCode::MissingAgreement,
            Self::OneReport(_) => ErrorCode::IllegalMessageStructure,
            Self::Xml(_) | Self::Signature(_) => ErrorCode::IllegalDatapartContent,
            Self::RateLimited { .. }
            | Self::RetryLimit { .. }
            | Self::Provider { .. }
            | Self::Unavailable
            | Self::Timeout => ErrorCode::OtherError,
        };
        ShsError::new(code, format!("{}: {}", self.code(), self.message()))
    }

    /// The SOAP fault kind.
    pub fn fault_kind(&self) -> relay_elt::soap::FaultKind {
        use relay_elt::soap::FaultKind;
        match self {
            Self::Xml(_) => FaultKind::XmlValidation,
            Self::Signature(_) => FaultKind::SignatureValidation,
            Self::Unavailable | Self::Timeout | Self::Provider { .. } => FaultKind::Server {
                code: self.code().into(),
            },
            _ => FaultKind::Policy {
                code: self.code().into(),
                retry_after_s: self.retry_after_s(),
            },
        }
    }
}

/// The rate limiter and retry tracker, rebuilt when their settings change.
pub struct Limiters {
    state: std::sync::Mutex<Option<(LimiterKey, std::sync::Arc<LimiterPair>)>>,
}

type LimiterKey = (u64, u32, u32, u64);

pub struct LimiterPair {
    rate: crate::limits::RateLimiter,
    retries: crate::limits::RetryTracker,
}

impl Limiters {
    pub fn new() -> Self {
        Self {
            state: std::sync::Mutex::new(None),
        }
    }

    fn for_config(&self, c: &crate::config::EltConfig) -> std::sync::Arc<LimiterPair> {
        let key = (
            c.calls_per_second.to_bits(),
            c.burst,
            c.max_retries,
            c.retry_window_s,
        );
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &*state {
            Some((k, pair)) if *k == key => pair.clone(),
            _ => {
                let pair = std::sync::Arc::new(LimiterPair {
                    rate: crate::limits::RateLimiter::new(c.calls_per_second, c.burst),
                    retries: crate::limits::RetryTracker::new(
                        c.max_retries,
                        Duration::from_secs(c.retry_window_s),
                    ),
                });
                *state = Some((key, pair.clone()));
                pair
            }
        }
    }
}

impl Default for Limiters {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks the rules and submits the report. `tx` names the call in logs and
/// the audit trail.
pub async fn submit(
    relay: &Relay,
    admitted: &crate::admission::Caller,
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
    let result = run(relay, &caller, tx, submission, &mut persons).await;
    let outcome = match &result {
        Ok(_) => "receipt",
        Err(r) => r.label(),
    };
    METRICS
        .elt_submissions
        .get_or_create(&Reason { reason: outcome })
        .inc();
    if let Err(r) = &result
        && r.is_rule()
    {
        METRICS
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
    audit(relay, channel, tx, &caller, &persons, &result, started).await;
    result
}

/// What passed every rule: the call to make.
struct Prepared {
    request: proto::SubmitRequest,
    digest: String,
    provider: String,
    timeout: Duration,
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
    let prepared = span.in_scope(|| prepare(relay, &live, caller, tx, submission, persons));
    match &prepared {
        Ok(_) => span.record("policy.decision", "allowed"),
        Err(r) => span
            .record("policy.decision", "refused")
            .record("policy.rule", r.label()),
    };
    let Prepared {
        request,
        digest,
        provider,
        timeout,
    } = prepared?;
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
    METRICS.provider_call(
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
            Ok(relay_elt::Receipt {
                tx_id: r.receipt_id,
                report_id: r.document_id,
                received_at: r.received_at,
                sha256: r.sha256,
            })
        }
        SubmitOutcome::Refused(e) => {
            let message = e.messages.join("; ");
            Err(match proto::SubmitErrorKind::try_from(e.kind) {
                Ok(proto::SubmitErrorKind::Validation) => Refusal::Xml(message),
                Ok(proto::SubmitErrorKind::Signature) => Refusal::Signature(message),
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

fn prepare(
    relay: &Relay,
    live: &crate::Live,
    caller: &Caller<'_>,
    tx: &str,
    submission: Submission,
    persons: &mut Vec<relay_ident::Personnummer>,
) -> Result<Prepared, Refusal> {
    let config = &live.config;
    let Some(elt) = &config.elt else {
        return Err(Refusal::NotOffered);
    };
    let env = config.node.environment;
    // The one policy gate: a registered system vendor (an ELT agreement covering
    // this environment), not suspended by the operator.
    let who = crate::admission::Caller {
        org: *caller.org,
        fingerprint: None,
        role: crate::admission::Role::Organisation,
    };
    crate::policy::gate(
        config,
        &relay.operator,
        &crate::policy::Ask::product(&who, ProductName::Elt),
    )
    .map_err(|r| match r {
        crate::policy::Refusal::Suspended => Refusal::SuspendedVendor,
        crate::policy::Refusal::WrongEnvironment { .. } => Refusal::Environment(r.to_string()),
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
    let limiters = relay.elt_limiters.for_config(elt);
    limiters
        .rate
        .check(caller.org.as_str())
        .map_err(|retry_after| Refusal::RateLimited {
            retry_after,
            per_second: elt.calls_per_second,
        })?;
    if submission.reports_in_call != 1 {
        return Err(Refusal::OneReport(format!(
            "one time report per call (terms 2.1 e); this call carries {}",
            submission.reports_in_call
        )));
    }
    if count_reports(&submission.report).is_some_and(|n| n > 1) {
        return Err(Refusal::OneReport(
            "a batch document is refused: one time report per call (terms 2.1 e)".into(),
        ));
    }
    let report =
        Report::parse_with(&submission.report, elt.max_report_bytes).map_err(|e| match e {
            ReportError::Batch(m) => Refusal::OneReport(m),
            other => Refusal::Xml(other.to_string()),
        })?;
    persons.push(report.insured);
    persons.push(report.assistant);
    if relay.operator.is_anordnare_suspended(&report.anordnare)
        || elt.suspended_anordnare.contains(&report.anordnare)
    {
        return Err(Refusal::SuspendedAnordnare);
    }
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
    let digest = relay_elt::sha256_hex(&submission.report);
    let id = report.id.to_string();
    let retries = limiters
        .retries
        .attempt(&[
            &format!("{}/id/{id}", caller.org),
            &format!("{}/sha256/{digest}", caller.org),
        ])
        .map_err(|retries| Refusal::RetryLimit { retries })?;
    if retries > 0 {
        tracing::info!(tx = %tx, retry = retries, "time report retried");
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
    };
    drop(submission.report);
    Ok(Prepared {
        request,
        digest,
        provider: elt.provider.clone(),
        timeout: Duration::from_millis(elt.timeout_ms),
    })
}

/// Provider ids as static labels (bounded metric labels).
fn provider_label(id: &str) -> &'static str {
    ["AF", "CSN", "FK", "SKV", "SO", "TNS", "MIV"]
        .into_iter()
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
) {
    let Some((log, key)) = &relay.audit else {
        return;
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
            Err(r) => relay_audit::RequestResult::Refused(r.label().to_owned()),
        },
    }
    .with_persons(key, persons);
    if let Err(e) = log.record(record).await {
        tracing::error!(tx = tx, error = %e, "audit record could not be written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_elt::soap::FaultKind;

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
}
