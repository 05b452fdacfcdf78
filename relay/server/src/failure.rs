//! One error model for every refusal the relay makes, whatever the way in.
//!
//! A [`Failure`] says **who failed** ([`By`]: the caller, a provider, or the
//! relay itself, the idea of pingora's error type) and **what** ([`Code`]); the
//! protocol's error falls out of the type, never out of string matching.
//!
//! This module is a leaf: it knows no product and no policy type. The policy
//! gate maps its `Refusal` into a [`PolicyRefusal`] (`crate::policy`), each
//! product maps its own refusals into a [`ProductRefusal`] (ELT:
//! `crate::products::elt::Refusal`), and each way in owns its renderer (its
//! `admission::Way::render`): SHS errors in `crate::rs`, SSBTEK SOAP faults in
//! `crate::soap`, ELT SOAP faults in `crate::soap::elt`, plain statuses (the
//! delivery service, the status feed: [`Failure::plain_response`]), the SHS
//! `error` message after a 202 in `crate::asynch::route`. `Retry-After` is set
//! in one place, [`Failure::set_retry_after`].
//!
//! A caller's fault is a 4xx (overload a 503 with `Retry-After`); a relay-side
//! failure is a 5xx, never a 400; a provider's failure a 502/504. Texts
//! (`info`) name the rule or the field, never personal data or content.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use relay_shs::{ErrorCode, Label, ShsError};

/// Who failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    /// The caller sent something the relay refuses (or is not allowed).
    Caller,
    /// A provider (adapter or its base service) failed; its id.
    Provider(String),
    /// The relay itself failed or is at its limits.
    Relay,
}

impl By {
    /// A bounded label for metrics and the audit trail.
    pub fn label(&self) -> &'static str {
        match self {
            By::Caller => "caller",
            By::Provider(_) => "provider",
            By::Relay => "relay",
        }
    }

    /// The side in the audit trail (`by` of a request record).
    pub fn audit(&self) -> relay_audit::FailedBy {
        match self {
            By::Caller => relay_audit::FailedBy::Caller,
            By::Provider(_) => relay_audit::FailedBy::Provider,
            By::Relay => relay_audit::FailedBy::Relay,
        }
    }

    /// What the audit trail says the caller got when `self` failed with the
    /// code `label`: refused for the caller's fault, failed otherwise.
    pub fn audit_result(&self, label: &str) -> relay_audit::RequestResult {
        match self {
            By::Caller => relay_audit::RequestResult::Refused(label.to_owned()),
            By::Provider(_) | By::Relay => relay_audit::RequestResult::Failed(label.to_owned()),
        }
    }
}

/// What failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Code {
    /// More requests in flight than the relay, or this caller's share of it, takes.
    Overloaded,
    /// The SHS message or label was refused, with this SHS code.
    Shs(ErrorCode),
    /// A SOAP envelope this service does not take (SOAP 1.2, mustUnderstand).
    Envelope(Envelope),
    /// An SSBTEK question is not valid (schema, personnummer, period, ...).
    InvalidQuestion,
    /// The policy gate said no (mapped from `policy::Refusal` by the gate).
    Policy(PolicyRefusal),
    /// A per-sender or per-outbox mailbox quota is full.
    Quota,
    /// Nothing to fetch or acknowledge under that id in the caller's outbox.
    NotFound,
    /// A product's own refusal (ELT's rules, FK's answer to a time report),
    /// mapped by the product.
    Product(ProductRefusal),
    /// The relay failed (its store, an invariant); the caller did nothing wrong.
    Internal,
    /// The relay's store did not answer in time (busy, or the database is
    /// unreachable): a 503 with `Retry-After`; the same request may be sent again.
    Unavailable,
}

/// The policy gate's refusal as every way in needs it: its bounded label and
/// the kind each protocol tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyRefusal {
    pub label: &'static str,
    pub kind: PolicyKind,
}

/// What the protocols tell apart of the gate's refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// No agreement for the product in this environment (SSBTEK `AvtalSaknas`).
    NoAgreement,
    /// Suspended by the operator.
    Suspended,
    /// Registered for another environment.
    WrongEnvironment,
    /// Neither the ingivare nor its processor (an SHS content error).
    NotIngivareOrProcessor,
    /// Any other rule of the gate.
    Other,
}

/// A product's own refusal, as the product maps it for every way in: a
/// bounded label, the SHS error (code and text, the rule's code first), the
/// SOAP fault (kind and text) and whether a provider ran out of time.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRefusal {
    pub label: &'static str,
    pub shs: ErrorCode,
    pub shs_text: String,
    pub fault: relay_elt::soap::FaultKind,
    pub fault_text: String,
    pub timeout: bool,
}

/// SOAP-level refusals, answered as SOAP faults without a service detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    VersionMismatch,
    MustUnderstand,
}

impl Envelope {
    pub fn faultcode(self) -> &'static str {
        match self {
            Envelope::VersionMismatch => "soap:VersionMismatch",
            Envelope::MustUnderstand => "soap:MustUnderstand",
        }
    }
}

/// The transaction a failure concerns, for the SHS error text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageIds {
    pub tx_id: String,
    pub corr_id: String,
    pub content_id: String,
}

impl From<&Label> for MessageIds {
    fn from(l: &Label) -> Self {
        Self {
            tx_id: l.tx_id.clone(),
            corr_id: l.corr_id.clone(),
            content_id: l.content.content_id.clone(),
        }
    }
}

/// A refusal: who, what, a text without personal data, and when to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub by: By,
    pub code: Code,
    pub info: String,
    pub retry_after: Option<u64>,
    pub ids: Option<MessageIds>,
    /// Whether the product already wrote this outcome to the audit trail (with
    /// what it knew: persons as pseudonyms), so the way in does not write it twice.
    pub audited: bool,
}

impl Failure {
    pub fn new(by: By, code: Code, info: impl Into<String>) -> Self {
        Self {
            by,
            code,
            info: info.into(),
            retry_after: None,
            ids: None,
            audited: false,
        }
    }

    /// The caller's fault.
    pub fn caller(code: Code, info: impl Into<String>) -> Self {
        Self::new(By::Caller, code, info)
    }

    /// The relay's own failure (logged by the caller of this with the cause).
    pub fn relay(info: impl Into<String>) -> Self {
        Self::new(By::Relay, Code::Internal, info)
    }

    /// The relay or the caller's share of it is full.
    pub fn overloaded(by: By, retry_after_s: u64, info: impl Into<String>) -> Self {
        Self::new(by, Code::Overloaded, info).with_retry_after(Some(retry_after_s))
    }

    pub fn with_retry_after(mut self, s: Option<u64>) -> Self {
        self.retry_after = s;
        self
    }

    /// Marks the outcome as already written to the audit trail.
    pub fn audited(mut self) -> Self {
        self.audited = true;
        self
    }

    /// Names the message the failure concerns (SHS error texts carry its ids).
    pub fn about(mut self, label: &Label) -> Self {
        self.ids = Some(MessageIds::from(label));
        self
    }

    /// A bounded label of the code, for metrics, logs and the audit trail.
    pub fn label(&self) -> &'static str {
        match &self.code {
            Code::Overloaded => "overloaded",
            Code::Shs(c) => c.as_str(),
            Code::Envelope(Envelope::VersionMismatch) => "version_mismatch",
            Code::Envelope(Envelope::MustUnderstand) => "must_understand",
            Code::InvalidQuestion => "validation",
            Code::Policy(r) => r.label,
            Code::Quota => "quota",
            Code::NotFound => "not_found",
            Code::Product(r) => r.label,
            Code::Internal => "internal",
            Code::Unavailable => "store_unavailable",
        }
    }

    /// What the audit trail records of this failure: what the caller got
    /// (overloaded, refused or failed, with the code) and who failed.
    pub fn audit_result(&self) -> (relay_audit::RequestResult, relay_audit::FailedBy) {
        let result = match self.code {
            Code::Overloaded => relay_audit::RequestResult::Overloaded,
            _ => self.by.audit_result(self.label()),
        };
        (result, self.by.audit())
    }

    /// The SHS error code.
    pub fn shs_code(&self) -> ErrorCode {
        match &self.code {
            Code::Shs(c) => *c,
            Code::Envelope(_) => ErrorCode::IllegalMessageStructure,
            Code::InvalidQuestion => ErrorCode::IllegalDatapartContent,
            Code::Policy(PolicyRefusal {
                kind: PolicyKind::NotIngivareOrProcessor,
                ..
            }) => ErrorCode::IllegalDatapartContent,
            Code::Policy(_) => ErrorCode::MissingAgreement,
            Code::Product(r) => r.shs,
            Code::NotFound => ErrorCode::UnresolvedReceiver,
            Code::Overloaded | Code::Quota | Code::Internal | Code::Unavailable => {
                ErrorCode::OtherError
            }
        }
    }

    /// The SHS error text: for a product's rule its code first, as its
    /// documentation promises.
    pub fn text(&self) -> String {
        match &self.code {
            Code::Product(r) => r.shs_text.clone(),
            Code::Quota => format!("QUOTA: {}", self.info),
            _ => self.info.clone(),
        }
    }

    /// The HTTP status: 4xx for the caller, 5xx for the relay or a provider.
    pub fn status(&self) -> StatusCode {
        match (&self.code, &self.by) {
            (Code::Overloaded | Code::Unavailable, _) => StatusCode::SERVICE_UNAVAILABLE,
            (Code::Product(r), By::Provider(_)) if r.timeout => StatusCode::GATEWAY_TIMEOUT,
            (_, By::Provider(_)) => StatusCode::BAD_GATEWAY,
            (_, By::Relay) => StatusCode::INTERNAL_SERVER_ERROR,
            (Code::NotFound, By::Caller) => StatusCode::NOT_FOUND,
            (_, By::Caller) => StatusCode::BAD_REQUEST,
        }
    }

    /// A plain-text answer (the delivery service, the status feed): a status
    /// (403 for the gate's refusals and an unknown sender) and the reason.
    pub fn plain_response(&self) -> Response {
        let status = match (&self.code, &self.by) {
            (Code::Policy(_) | Code::Shs(ErrorCode::UnknownSender), By::Caller) => {
                StatusCode::FORBIDDEN
            }
            _ => self.status(),
        };
        let mut response = (status, format!("{}\n", self.info)).into_response();
        self.set_retry_after(&mut response);
        response
    }

    /// The one place `Retry-After` is set, for every way in's answer.
    pub fn set_retry_after(&self, response: &mut Response) {
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
    }
}

impl From<ShsError> for Failure {
    /// A decoding error from `relay-shs`: the caller's message.
    fn from(e: ShsError) -> Self {
        Failure::caller(Code::Shs(e.code), e.info).with_retry_after(e.retry_after_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_side_failure_is_never_a_400() {
        let f = Failure::relay("the mailbox could not store the message");
        assert_eq!(f.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(f.shs_code(), ErrorCode::OtherError);
        let r = f.plain_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_overload_says_when_to_retry() {
        let overloaded = Failure::overloaded(By::Relay, 2, "busy");
        let r = overloaded.plain_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn the_audit_trail_says_who_failed() {
        use relay_audit::{FailedBy, RequestResult};
        let suspended = Failure::caller(
            Code::Policy(PolicyRefusal {
                label: "suspended",
                kind: PolicyKind::Suspended,
            }),
            "suspended",
        );
        let cases = [
            (
                Failure::overloaded(By::Caller, 1, "share"),
                RequestResult::Overloaded,
                FailedBy::Caller,
            ),
            (
                Failure::overloaded(By::Relay, 1, "full"),
                RequestResult::Overloaded,
                FailedBy::Relay,
            ),
            (
                suspended,
                RequestResult::Refused("suspended".into()),
                FailedBy::Caller,
            ),
            (
                Failure::relay("store"),
                RequestResult::Failed("internal".into()),
                FailedBy::Relay,
            ),
        ];
        for (f, result, by) in cases {
            assert_eq!(f.audit_result(), (result, by), "{f:?}");
        }
    }
}
