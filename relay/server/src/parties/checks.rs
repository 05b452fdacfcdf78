//! The test checks: what a party must have done in the test environment before
//! it may be promoted to production, per product, recorded as its real test
//! traffic passes them (only `status="test"` traffic of a party in `test` or
//! `verified`). When the last check passes, the party moves to `verified` by
//! itself; promotion to `production` stays an operator's act.
//!
//! | product  | check                     | passed when                                              |
//! |----------|---------------------------|----------------------------------------------------------|
//! | `elt`    | `signed-report-accepted`  | a signed time report is accepted with a receipt          |
//! | `elt`    | `refused-then-corrected`  | a report refused for a rule, then a report accepted      |
//! | `elt`    | `receipt-fetched-again`   | an accepted report sent again gets its receipt again     |
//! | `ssbtek` | `composite-answered`      | a question answered by every agency asked                |
//! | `ssbtek` | `partial-answer-handled`  | a question answered while an agency could not answer     |
//!
//! Other products have no checks.

use chrono::Utc;
use relay_ident::Organisationsnummer;
use relay_store::{PartyRegister, PartyState};

use crate::Relay;
use crate::config::{Environment, ProductName};

/// The checks a product requires, in order (by the product's name as the
/// register keeps it; none for a name that is no product).
pub fn required(product: &str) -> &'static [&'static str] {
    match ProductName::parse(product) {
        Some(ProductName::Elt) => &[
            "signed-report-accepted",
            "refused-then-corrected",
            "receipt-fetched-again",
        ],
        Some(ProductName::Ssbtek) => &["composite-answered", "partial-answer-handled"],
        Some(ProductName::Ping) | None => &[],
    }
}

/// A step towards `refused-then-corrected`, not a check of its own.
const RULE_REFUSED: &str = "refused-for-a-rule";

/// The required checks `passed` lacks.
pub fn missing(
    product: &str,
    passed: &std::collections::BTreeMap<String, chrono::DateTime<Utc>>,
) -> Vec<&'static str> {
    required(product)
        .iter()
        .copied()
        .filter(|c| !passed.contains_key(*c))
        .collect()
}

/// What one ELT call showed.
pub enum EltOutcome {
    Accepted,
    Repeated,
    RuleRefused,
    Other,
}

/// Records what one ELT call of `org` with message `status` showed.
pub async fn elt(
    relay: &Relay,
    org: &Organisationsnummer,
    status: Option<Environment>,
    outcome: EltOutcome,
) {
    let passed = match outcome {
        EltOutcome::Accepted => {
            let after_refusal = relay
                .operator
                .parties
                .snapshot()
                .parties
                .get(org)
                .and_then(|p| p.products.get("elt"))
                .is_some_and(|s| s.checks.contains_key(RULE_REFUSED));
            if after_refusal {
                vec!["signed-report-accepted", "refused-then-corrected"]
            } else {
                vec!["signed-report-accepted"]
            }
        }
        EltOutcome::Repeated => vec!["receipt-fetched-again"],
        EltOutcome::RuleRefused => vec![RULE_REFUSED],
        EltOutcome::Other => return,
    };
    record(relay, org, "elt", status, &passed).await;
}

/// Records what one SSBTEK answer showed: every agency answered, or some could not.
pub async fn ssbtek(relay: &Relay, org: &Organisationsnummer, complete: bool) {
    let check = if complete {
        "composite-answered"
    } else {
        "partial-answer-handled"
    };
    record(relay, org, "ssbtek", None, &[check]).await;
}

async fn record(
    relay: &Relay,
    org: &Organisationsnummer,
    product: &'static str,
    status: Option<Environment>,
    checks: &[&'static str],
) {
    let book = &relay.operator.parties;
    let Some(register) = book.register() else {
        return;
    };
    let status = status.unwrap_or(relay.live().config.node.environment);
    if status != Environment::Test {
        return;
    }
    let snapshot = book.snapshot();
    let Some(standing) = snapshot
        .parties
        .get(org)
        .and_then(|p| p.products.get(product))
    else {
        return;
    };
    if !matches!(standing.state, PartyState::Test | PartyState::Verified)
        || checks.iter().all(|c| standing.checks.contains_key(*c))
    {
        return;
    }
    let checks: Vec<&'static str> = checks.to_vec();
    let edit = Box::new(move |p: &mut relay_store::Party| {
        let now = Utc::now();
        let Some(s) = p.products.get_mut(product) else {
            return Ok(false);
        };
        for c in &checks {
            s.checks.entry((*c).to_owned()).or_insert(now);
        }
        let done = missing(product, &s.checks).is_empty();
        if done && s.state == PartyState::Test {
            p.change_state(
                product,
                PartyState::Verified,
                "relay (test checks passed)",
                None,
                now,
            );
            return Ok(true);
        }
        Ok(false)
    });
    match register.update(*org, edit).await {
        Ok(Some(Ok(verified))) => {
            if verified {
                crate::outcomes::admin_action(
                    relay,
                    "relay",
                    "party-verified",
                    &format!("{org} {product}"),
                )
                .await;
            }
            if let Err(e) = super::refresh(relay).await {
                tracing::warn!(error = %e, "the register of parties could not be read back");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "a passed test check could not be recorded"),
    }
}
