//! Who may do what: agreements (which organisation may use which product in the
//! relay's environment) and processors (who may ask on a municipality's behalf).
//!
//! Decisions only; the caller of these functions turns a refusal into the
//! protocol's error (an SHS error code or a SOAP fault).

use relay_ident::Organisationsnummer;

use crate::config::{Config, ProductName};

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
