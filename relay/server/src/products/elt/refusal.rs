//! Why an ELT call was not accepted: the stable codes (`ELT-...`), who failed,
//! and how each way in renders the refusal (an SHS error, an ELT SOAP fault).

use std::time::Duration;

use relay_shs::{ErrorCode, ShsError};

use crate::failure::{By, Code, Failure, ProductRefusal};

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
    /// The vendor has no mandate from the assistance company in the report.
    NoMandate,
    /// A production relay and a report naming a published test person.
    TestData,
    /// A future month, or a row after the arrival day.
    Month(String),
    /// The same report id with other content than an accepted report.
    Conflict,
    /// The signing CA's CRL is past its nextUpdate.
    CrlExpired,
    Signature(String),
    /// The provider refused for another reason (its base service said no).
    Provider {
        code: String,
        message: String,
    },
    Unavailable,
    Timeout,
    /// The relay itself failed while handling the call (never the caller's
    /// fault); the text names the step, never the content.
    Internal(String),
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
            Self::NoMandate => "ELT-NO-MANDATE",
            Self::TestData => "ELT-TEST-DATA",
            Self::Month(_) => "ELT-MONTH",
            Self::Conflict => "ELT-CONFLICT",
            Self::CrlExpired => "ELT-CRL-EXPIRED",
            Self::Signature(_) => "ELT-SIGNATURE",
            Self::Provider { .. } => "ELT-PROVIDER",
            Self::Unavailable => "ELT-UNAVAILABLE",
            Self::Timeout => "ELT-TIMEOUT",
            Self::Internal(_) => "ELT-RELAY",
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
            Self::NoMandate => "no_mandate",
            Self::TestData => "test_data",
            Self::Month(_) => "month",
            Self::Conflict => "conflict",
            Self::CrlExpired => "crl_expired",
            Self::Signature(_) => "signature",
            Self::Provider { .. } => "provider_error",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Internal(_) => "relay",
        }
    }

    /// Who failed: Försäkringskassan's side for an unreachable or failing
    /// adapter, the caller for every rule and every document it sent.
    pub fn by(&self) -> By {
        match self {
            Self::Unavailable | Self::Timeout | Self::Provider { .. } => By::Provider("FK".into()),
            Self::Internal(_) => By::Relay,
            Self::NotOffered => By::Caller,
            _ => By::Caller,
        }
    }

    /// Whether this is one of the terms' rules (counted in `elt_refusals`).
    pub(super) fn is_rule(&self) -> bool {
        matches!(
            self,
            Self::NoAgreement(_)
                | Self::SuspendedVendor
                | Self::Environment(_)
                | Self::RateLimited { .. }
                | Self::OneReport(_)
                | Self::SuspendedAnordnare
                | Self::RetryLimit { .. }
                | Self::NoMandate
                | Self::TestData
                | Self::Month(_)
                | Self::Conflict
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
                "this call (the same report with the same signatures) has been retried {retries} times; no more retries are accepted (terms 2.1 f). Correct the report or sign it again: a corrected call is a new call"
            ),
            Self::NoMandate => "the system vendor has no mandate from the assistance company (assistansanordnare) named in the report; the assistance company appoints its vendor".into(),
            Self::TestData => "the report names a published test person: test data is not accepted in the production environment (terms 2.1 c)".into(),
            Self::Month(m) => m.clone(),
            Self::Conflict => "a time report with this id and other content has already been accepted; a corrected report needs a new id".into(),
            Self::CrlExpired => "the signing CA's certificate revocation list has expired, so revocation cannot be checked; try later".into(),
            Self::Provider { code, message } => format!("{code}: {message}"),
            Self::Unavailable => "Försäkringskassan's service cannot be reached; try later".into(),
            Self::Timeout => "Försäkringskassan did not answer in time; try later".into(),
            Self::Internal(m) => m.clone(),
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
            | Self::SuspendedAnordnare
            | Self::NoMandate => ErrorCode::MissingAgreement,
            Self::OneReport(_) => ErrorCode::IllegalMessageStructure,
            Self::Xml(_) | Self::Signature(_) | Self::TestData | Self::Month(_) => {
                ErrorCode::IllegalDatapartContent
            }
            Self::RateLimited { .. }
            | Self::RetryLimit { .. }
            | Self::Conflict
            | Self::CrlExpired
            | Self::Provider { .. }
            | Self::Unavailable
            | Self::Timeout
            | Self::Internal(_) => ErrorCode::OtherError,
        };
        ShsError::new(code, format!("{}: {}", self.code(), self.message()))
    }

    /// The SOAP fault kind.
    pub fn fault_kind(&self) -> relay_elt::soap::FaultKind {
        use relay_elt::soap::FaultKind;
        match self {
            Self::Xml(_) => FaultKind::XmlValidation,
            Self::Signature(_) => FaultKind::SignatureValidation,
            Self::Unavailable
            | Self::Timeout
            | Self::Provider { .. }
            | Self::CrlExpired
            | Self::Internal(_) => FaultKind::Server {
                code: self.code().into(),
            },
            _ => FaultKind::Policy {
                code: self.code().into(),
                retry_after_s: self.retry_after_s(),
            },
        }
    }
}

impl From<Refusal> for Failure {
    /// ELT's refusal as every way in renders it: the SHS error and the SOAP
    /// fault come from the rule, who failed from [`Refusal::by`].
    fn from(r: Refusal) -> Self {
        let shs = r.shs_error();
        let code = Code::Product(ProductRefusal {
            label: r.label(),
            shs: shs.code,
            shs_text: shs.info,
            fault: r.fault_kind(),
            fault_text: r.message(),
            timeout: r == Refusal::Timeout,
        });
        Failure::new(r.by(), code, r.message()).with_retry_after(r.retry_after_s())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn an_unreachable_fk_is_the_providers_failure() {
        let fk_down = Failure::from(Refusal::Unavailable);
        assert_eq!(fk_down.by, By::Provider("FK".into()));
        assert_eq!(fk_down.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            fk_down.audit_result(),
            (
                relay_audit::RequestResult::Failed("unavailable".into()),
                relay_audit::FailedBy::Provider
            )
        );
        let timeout = Failure::from(Refusal::Timeout);
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
    }
}
