//! The one policy gate: who may use what. Every product entry point calls
//! [`gate`], whatever the way in (SHS synch or asynch, SOAP, direct delivery,
//! the delivery service), so a path that forgets a check cannot be written.
//!
//! A decision takes the admitted [`Caller`], the municipality it acts for (a
//! processor names one; see [`ActingFor`]) and the [`Use`] asked for, and checks,
//! in this order:
//!
//! 1. the caller holds an agreement for the use covering the relay's environment,
//!    or, where the register of parties holds the caller for the product
//!    ([`crate::parties`]; the register wins), its state admits the message's
//!    status (`test`/`verified`: `status="test"` only; `production`: any;
//!    `applied`, `suspended`, `terminated`: nothing);
//! 2. the operator has not suspended the caller (for the product, or for all);
//! 3. when acting for another organisation: the caller is a processor configured
//!    for it, the municipality named the caller among its processors, and the
//!    municipality itself holds the agreement and is not suspended;
//! 4. for an SSBTEK question of a municipality that requires caseworkers'
//!    declarations (§9.2.9): the question's `handlaggare` signed one.
//!
//! Decisions only: the caller of [`gate`] turns a [`Refusal`] into a
//! [`crate::failure::Failure`], which each way in renders in its protocol. Every
//! decision runs in a `policy` span that records which check ran and how it
//! ended, never who asked or about whom.

use relay_ident::Organisationsnummer;

use relay_store::PartyState;

use crate::config::{Config, Environment, ProductName};
use crate::failure::{Code, Failure, PolicyKind, PolicyRefusal};
use crate::identity::Caller;
use crate::metrics::Metrics;
use crate::operator::OperatorState;
use crate::parties::Book;

/// Why the gate refused. Texts name the rule, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no agreement for product {product} in the {environment} environment")]
    NoAgreement {
        product: &'static str,
        environment: &'static str,
    },
    #[error(
        "the organisation is registered for {product} in the {registered} environment only, and this is the {environment} environment"
    )]
    WrongEnvironment {
        product: &'static str,
        registered: String,
        environment: &'static str,
    },
    #[error(
        "the certificate's organisation is neither the ingivare nor a personuppgiftsbiträde configured for it and named in the question"
    )]
    NotIngivareOrProcessor,
    #[error("the caller is suspended by the operator for this product")]
    Suspended,
    #[error(
        "the organisation acted for has no agreement for product {product} in the {environment} environment"
    )]
    PrincipalNoAgreement {
        product: &'static str,
        environment: &'static str,
    },
    #[error("the organisation acted for is suspended by the operator for this product")]
    PrincipalSuspended,
    #[error("the receiver has no agreement for this product with this node")]
    RecipientNoAgreement,
    #[error(
        "the organisation is registered for {product} in state {state}: not admitted until the operator lets it into the test environment"
    )]
    PartyNotAdmitted {
        product: &'static str,
        state: &'static str,
    },
    #[error(
        "the organisation is registered for {product} in state {state}: only status=\"test\" messages are served until it is promoted to production; this message has status=\"{status}\""
    )]
    PartyTestOnly {
        product: &'static str,
        state: &'static str,
        status: &'static str,
    },
    #[error(
        "the caseworker (handlaggare) has not signed the declaration (Försäkran) that this municipality requires before the service is used (SSBTEK terms §9.2.9)"
    )]
    CaseworkerNotDeclared,
}

impl Refusal {
    /// A bounded label for spans, metrics and the audit trail.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NoAgreement { .. } => "no_agreement",
            Self::WrongEnvironment { .. } => "environment",
            Self::NotIngivareOrProcessor => "not_ingivare_or_processor",
            Self::Suspended => "suspended",
            Self::PrincipalNoAgreement { .. } => "principal_no_agreement",
            Self::PrincipalSuspended => "principal_suspended",
            Self::RecipientNoAgreement => "recipient_no_agreement",
            Self::PartyNotAdmitted { .. } => "party_not_admitted",
            Self::PartyTestOnly { .. } => "party_test_only",
            Self::CaseworkerNotDeclared => "caseworker_not_declared",
        }
    }
}

impl From<Refusal> for Failure {
    /// The gate's refusal is always the caller's; every way in renders it
    /// from the kind ([`PolicyKind`]) and the text.
    fn from(r: Refusal) -> Self {
        let kind = match r {
            Refusal::NoAgreement { .. } => PolicyKind::NoAgreement,
            Refusal::Suspended => PolicyKind::Suspended,
            Refusal::WrongEnvironment { .. } => PolicyKind::WrongEnvironment,
            Refusal::NotIngivareOrProcessor => PolicyKind::NotIngivareOrProcessor,
            _ => PolicyKind::Other,
        };
        let code = Code::Policy(PolicyRefusal {
            label: r.label(),
            kind,
        });
        Failure::caller(code, r.to_string())
    }
}

/// What the caller wants to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A product, by name (any way in: SHS, SOAP, direct delivery).
    Product(ProductName),
    /// Direct delivery of a product the relay only stores and forwards, by id.
    Direct(uuid::Uuid),
    /// The delivery service (list, fetch, ack of the caller's own outbox): any
    /// agreement in this environment, and no suspension of everything.
    Delivery,
    /// The status feed (`/status/v1/...`): as [`Use::Delivery`], any agreement
    /// in this environment and no suspension of everything.
    Status,
}

impl Use {
    fn as_str(self) -> &'static str {
        match self {
            Use::Product(p) => p.as_str(),
            Use::Direct(_) => "direct",
            Use::Delivery => "delivery",
            Use::Status => "status",
        }
    }
}

/// The organisation a caller acts for, and the processors that organisation
/// named in its request (SSBTEK's `personuppgiftsbitrade`).
#[derive(Debug, Clone, Copy)]
pub struct ActingFor<'a> {
    pub org: Organisationsnummer,
    pub named: &'a [Organisationsnummer],
}

/// One question to the gate.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub caller: &'a Caller,
    pub what: Use,
    pub acting_for: Option<ActingFor<'a>>,
    /// The message's status (`test` or `production`); the relay's environment
    /// when the way in carries none.
    pub status: Option<Environment>,
    /// The SSBTEK question's caseworker (`handlaggare`), for the declaration rule.
    pub caseworker: Option<&'a str>,
}

impl<'a> Ask<'a> {
    /// The caller, for itself.
    pub fn product(caller: &'a Caller, product: ProductName) -> Self {
        Self::to(caller, Use::Product(product))
    }

    /// The caller for any use.
    pub fn to(caller: &'a Caller, what: Use) -> Self {
        Self {
            caller,
            what,
            acting_for: None,
            status: None,
            caseworker: None,
        }
    }

    /// The caller on behalf of `org` (which may be the caller itself).
    pub fn on_behalf_of(
        mut self,
        org: Organisationsnummer,
        named: &'a [Organisationsnummer],
    ) -> Self {
        self.acting_for = Some(ActingFor { org, named });
        self
    }

    /// With the message's status (`status="test"` or `"production"`).
    pub fn with_status(mut self, status: Option<Environment>) -> Self {
        self.status = status;
        self
    }

    /// With the SSBTEK question's caseworker.
    pub fn by_caseworker(mut self, caseworker: &'a str) -> Self {
        self.caseworker = Some(caseworker);
        self
    }
}

/// The gate. `check` names the decision in the `policy` span.
///
/// Each decision is counted in `metrics` (`policy_decisions_total`).
pub fn gate(
    metrics: &Metrics,
    config: &Config,
    operator: &OperatorState,
    ask: &Ask<'_>,
) -> Result<(), Refusal> {
    let check = if ask.acting_for.is_some() {
        "ingivare"
    } else {
        "agreement"
    };
    decide(metrics, check, || {
        let org = &ask.caller.org;
        let status = ask.status.unwrap_or(config.node.environment);
        let parties = &operator.parties;
        has_agreement(config, parties, org, ask.what, status)?;
        if is_suspended(operator, org, ask.what) {
            return Err(Refusal::Suspended);
        }
        if let Some(principal) = ask.acting_for.filter(|p| p.org != *org) {
            if !(config.is_processor_for(org, &principal.org) && principal.named.contains(org)) {
                return Err(Refusal::NotIngivareOrProcessor);
            }
            has_agreement(config, parties, &principal.org, ask.what, status).map_err(
                |r| match r {
                    Refusal::NoAgreement {
                        product,
                        environment,
                    }
                    | Refusal::WrongEnvironment {
                        product,
                        environment,
                        ..
                    } => Refusal::PrincipalNoAgreement {
                        product,
                        environment,
                    },
                    other => other,
                },
            )?;
            if is_suspended(operator, &principal.org, ask.what) {
                return Err(Refusal::PrincipalSuspended);
            }
        }
        if let Some(caseworker) = ask.caseworker {
            let municipality = ask.acting_for.map_or(*org, |p| p.org);
            if parties.requires_declaration(&municipality)
                && !parties.declared(&municipality, caseworker)
            {
                return Err(Refusal::CaseworkerNotDeclared);
            }
        }
        Ok(())
    })
}

/// The recipient of a direct delivery must hold the same use.
pub fn recipient(
    metrics: &Metrics,
    config: &Config,
    org: &Organisationsnummer,
    what: Use,
) -> Result<(), Refusal> {
    decide(metrics, "recipient", || {
        // The configuration's agreements: the register admits callers, not
        // recipients of direct deliveries.
        has_agreement(config, &Book::default(), org, what, config.node.environment)
            .map_err(|_| Refusal::RecipientNoAgreement)
    })
}

/// The register's word on `org` for `what`, when it holds the party for it.
fn registered(
    parties: &Book,
    org: &Organisationsnummer,
    what: Use,
    status: Environment,
) -> Option<Result<(), Refusal>> {
    match what {
        Use::Product(p) => {
            let state = parties.state(org, p.as_str())?;
            Some(match state {
                PartyState::Production => Ok(()),
                PartyState::Test | PartyState::Verified if status == Environment::Test => Ok(()),
                PartyState::Test | PartyState::Verified => Err(Refusal::PartyTestOnly {
                    product: p.as_str(),
                    state: state.as_str(),
                    status: status.as_str(),
                }),
                PartyState::Applied | PartyState::Suspended | PartyState::Terminated => {
                    Err(Refusal::PartyNotAdmitted {
                        product: p.as_str(),
                        state: state.as_str(),
                    })
                }
            })
        }
        Use::Delivery | Use::Status => parties.admits_any(org).then_some(Ok(())),
        Use::Direct(_) => None,
    }
}

fn has_agreement(
    config: &Config,
    parties: &Book,
    org: &Organisationsnummer,
    what: Use,
    status: Environment,
) -> Result<(), Refusal> {
    if let Some(decision) = registered(parties, org, what, status) {
        return decision;
    }
    let env = config.node.environment;
    let agreement = config.agreement(org);
    let covers = |a: &crate::config::Agreement| match what {
        Use::Product(p) => a.products.contains(&p),
        Use::Direct(id) => a.direct_products.contains(&id),
        Use::Delivery | Use::Status => !a.products.is_empty() || !a.direct_products.is_empty(),
    };
    match agreement {
        Some(a) if covers(a) && a.environments.contains(&env) => Ok(()),
        Some(a) if covers(a) => Err(Refusal::WrongEnvironment {
            product: what.as_str(),
            registered: a
                .environments
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            environment: env.as_str(),
        }),
        _ => Err(Refusal::NoAgreement {
            product: what.as_str(),
            environment: env.as_str(),
        }),
    }
}

fn is_suspended(operator: &OperatorState, org: &Organisationsnummer, what: Use) -> bool {
    match what {
        Use::Product(p) => operator.is_suspended(org, p),
        Use::Direct(_) | Use::Delivery | Use::Status => operator.is_suspended_from_all(org),
    }
}

/// Runs one authorisation decision in a `policy` span that records the check,
/// the decision and, on refusal, the rule. Counted in `policy_decisions_total`.
pub fn decide<T>(
    metrics: &Metrics,
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
    let decision = match &result {
        Ok(_) => {
            span.record("policy.decision", "allowed");
            "allowed"
        }
        Err(r) => {
            span.record("policy.decision", "refused")
                .record("policy.rule", r.label());
            r.label()
        }
    };
    metrics.policy_decision(check, decision);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;
    use crate::identity::Role;
    use crate::operator::Scope;

    fn org(s: &str) -> Organisationsnummer {
        Organisationsnummer::parse(s).unwrap()
    }

    const SUNDSVALL: &str = "2120002411";
    const STOCKHOLM: &str = "2120000142";
    const PROCESSOR: &str = "5566778899";

    fn config() -> Config {
        let mut c = Config::example_for_tests();
        c.node.environment = Environment::Test;
        c
    }

    fn caller(o: &str) -> Caller {
        Caller {
            org: org(o),
            fingerprint: None,
            role: Role::Organisation,
        }
    }

    #[test]
    fn a_municipality_with_an_agreement_is_allowed_until_suspended() {
        let c = config();
        let op = OperatorState::default();
        let me = caller(SUNDSVALL);
        let ask = Ask::product(&me, ProductName::Ssbtek);
        assert_eq!(gate(&Metrics::new(), &c, &op, &ask), Ok(()));
        op.suspend(org(SUNDSVALL), Scope::Product(ProductName::Ssbtek));
        assert_eq!(
            gate(&Metrics::new(), &c, &op, &ask),
            Err(Refusal::Suspended)
        );
        assert_eq!(
            gate(
                &Metrics::new(),
                &c,
                &op,
                &Ask::product(&me, ProductName::Ping)
            ),
            Ok(())
        );
    }

    #[test]
    fn a_processor_needs_the_municipality_agreement_naming_and_no_suspension() {
        let c = config();
        let op = OperatorState::default();
        let p = caller(PROCESSOR);
        let named = [org(PROCESSOR)];
        let ask = Ask::product(&p, ProductName::Ssbtek).on_behalf_of(org(SUNDSVALL), &named);
        assert_eq!(gate(&Metrics::new(), &c, &op, &ask), Ok(()));
        // Not named by the municipality.
        let unnamed = Ask::product(&p, ProductName::Ssbtek).on_behalf_of(org(SUNDSVALL), &[]);
        assert_eq!(
            gate(&Metrics::new(), &c, &op, &unnamed),
            Err(Refusal::NotIngivareOrProcessor)
        );
        // Not a processor for that municipality.
        let other = Ask::product(&p, ProductName::Ssbtek).on_behalf_of(org(STOCKHOLM), &named);
        assert_eq!(
            gate(&Metrics::new(), &c, &op, &other),
            Err(Refusal::NotIngivareOrProcessor)
        );
        // The municipality suspended.
        op.suspend(org(SUNDSVALL), Scope::All);
        assert_eq!(
            gate(&Metrics::new(), &c, &op, &ask),
            Err(Refusal::PrincipalSuspended)
        );
    }
}

#[cfg(test)]
mod register_tests {
    //! The gate with the register of parties (`crate::parties`).
    use chrono::Utc;
    use relay_store::Role;

    use relay_ident::Organisationsnummer;
    use relay_store::{Party, PartyState};

    use super::{Ask, Refusal, gate};
    use crate::config::{Config, Environment, ProductName};
    use crate::identity::{Caller, Role as CallerRole};
    use crate::operator::OperatorState;
    use crate::parties::Snapshot;

    fn org(s: &str) -> Organisationsnummer {
        Organisationsnummer::parse(s).unwrap()
    }

    fn with(state: PartyState, require_declaration: bool, declared: &[&str]) -> OperatorState {
        let op = OperatorState::default();
        let sundsvall = org("2120002411");
        let mut p = Party::new(
            sundsvall,
            "Sundsvall".into(),
            Role::Municipality,
            Utc::now(),
        );
        p.change_state("ssbtek", state, "t", None, Utc::now());
        p.require_declaration = require_declaration;
        op.parties.replace(Snapshot {
            parties: [(sundsvall, p)].into(),
            declared: declared
                .iter()
                .map(|c| (sundsvall, (*c).to_owned()))
                .collect(),
            certificates: Vec::new(),
        });
        op
    }

    fn caller() -> Caller {
        Caller {
            org: org("2120002411"),
            fingerprint: None,
            role: CallerRole::Organisation,
        }
    }

    #[test]
    fn the_register_wins_over_the_agreement_and_admits_by_state_and_status() {
        let mut config = Config::example_for_tests();
        config.node.environment = Environment::Test;
        let me = caller();
        let ask = |status| Ask::product(&me, ProductName::Ssbtek).with_status(Some(status));
        let applied = with(PartyState::Applied, false, &[]);
        assert!(matches!(
            gate(
                &crate::metrics::Metrics::new(),
                &config,
                &applied,
                &ask(Environment::Test)
            ),
            Err(Refusal::PartyNotAdmitted {
                state: "applied",
                ..
            })
        ));
        let test = with(PartyState::Test, false, &[]);
        assert_eq!(
            gate(
                &crate::metrics::Metrics::new(),
                &config,
                &test,
                &ask(Environment::Test)
            ),
            Ok(())
        );
        assert!(matches!(
            gate(
                &crate::metrics::Metrics::new(),
                &config,
                &test,
                &ask(Environment::Production)
            ),
            Err(Refusal::PartyTestOnly { .. })
        ));
        let production = with(PartyState::Production, false, &[]);
        assert_eq!(
            gate(
                &crate::metrics::Metrics::new(),
                &config,
                &production,
                &ask(Environment::Production)
            ),
            Ok(())
        );
        // A product the register does not hold: the agreement decides.
        assert_eq!(
            gate(
                &crate::metrics::Metrics::new(),
                &config,
                &applied,
                &Ask::product(&me, ProductName::Ping)
            ),
            Ok(())
        );
    }

    #[test]
    fn a_caseworker_without_a_declaration_is_refused_only_where_it_is_required() {
        let config = Config::example_for_tests();
        let me = caller();
        let named = [];
        let ask = |cw| {
            Ask::product(&me, ProductName::Ssbtek)
                .on_behalf_of(org("2120002411"), &named)
                .by_caseworker(cw)
        };
        let required = with(PartyState::Production, true, &["hl-1"]);
        assert_eq!(
            gate(
                &crate::metrics::Metrics::new(),
                &config,
                &required,
                &ask("hl-1")
            ),
            Ok(())
        );
        assert_eq!(
            gate(
                &crate::metrics::Metrics::new(),
                &config,
                &required,
                &ask("hl-2")
            ),
            Err(Refusal::CaseworkerNotDeclared)
        );
        assert!(!Refusal::CaseworkerNotDeclared.to_string().contains("hl-2"));
        let not_required = with(PartyState::Production, false, &[]);
        assert_eq!(
            gate(
                &crate::metrics::Metrics::new(),
                &config,
                &not_required,
                &ask("hl-2")
            ),
            Ok(())
        );
    }
}
