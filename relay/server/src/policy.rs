//! Who may do what: agreements (which organisation may use which product in the
//! relay's environment) and processors (who may ask on a municipality's behalf).
//!
//! Decisions only; the caller of these functions turns a refusal into the
//! protocol's error (an SHS error code or a SOAP fault). Every decision runs in
//! a `policy` span ([`decide`]) that records which check ran and how it ended,
//! never who asked or about whom.

use relay_ident::Organisationsnummer;

use crate::config::{Config, ProductName};
use crate::operator::OperatorState;

/// Why a request was refused by policy. Texts name the rule, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no agreement for product {product} in the {environment} environment")]
    NoAgreement {
        product: &'static str,
        environment: &'static str,
    },
    #[error(
        "the certificate's organisation is neither the ingivare nor a personuppgiftsbiträde configured for it and named in the question"
    )]
    NotIngivareOrProcessor,
    #[error("the caller is suspended by the operator for this product")]
    Suspended,
}

impl Refusal {
    /// A bounded label for spans, metrics and the audit trail.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NoAgreement { .. } => "no_agreement",
            Self::NotIngivareOrProcessor => "not_ingivare_or_processor",
            Self::Suspended => "suspended",
        }
    }
}

/// Runs one authorisation decision in a `policy` span that records the check
/// (`agreement`, `ingivare`), the decision and, on refusal, the rule.
pub fn decide<T>(
    check: &'static str,
    decision: impl FnOnce() -> Result<T, Refusal>,
) -> Result<T, Refusal> {
    let span = tracing::info_span!(
        "policy",
        policy.check = check,
        policy.decision = tracing::field::Empty,
        policy.rule = tracing::field::Empty,
    );
    let _entered = span.enter();
    let result = decision();
    match &result {
        Ok(_) => span.record("policy.decision", "allowed"),
        Err(r) => span
            .record("policy.decision", "refused")
            .record("policy.rule", r.label()),
    };
    result
}

/// May `caller` use `product` at all: an agreement covering the relay's
/// environment, and no operator suspension.
pub fn check_caller(
    config: &Config,
    operator: &OperatorState,
    caller: &Organisationsnummer,
    product: ProductName,
) -> Result<(), Refusal> {
    decide("agreement", || {
        check_agreement(config, caller, product)?;
        if operator.is_suspended(caller, product.as_str()) {
            return Err(Refusal::Suspended);
        }
        Ok(())
    })
}

/// The caller must hold an agreement for `product` covering the relay's environment.
pub fn check_agreement(
    config: &Config,
    caller: &Organisationsnummer,
    product: ProductName,
) -> Result<(), Refusal> {
    let env = config.node.environment;
    match config.agreement(caller) {
        Some(a) if a.products.contains(&product) && a.environments.contains(&env) => Ok(()),
        _ => Err(Refusal::NoAgreement {
            product: product.as_str(),
            environment: env.as_str(),
        }),
    }
}

/// The certificate's organisation may ask about a person for `ingivare` when it is
/// the ingivare itself, or a processor configured for the ingivare that the
/// question lists among its `personuppgiftsbitrade`.
pub fn may_ask_for(
    config: &Config,
    caller: &Organisationsnummer,
    ingivare: &Organisationsnummer,
    listed_processors: &[Organisationsnummer],
) -> Result<(), Refusal> {
    if caller == ingivare
        || (listed_processors.contains(caller) && config.is_processor_for(caller, ingivare))
    {
        Ok(())
    } else {
        Err(Refusal::NotIngivareOrProcessor)
    }
}
