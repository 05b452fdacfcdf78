//! Each request passes each step once: the same SSBTEK question costs the
//! policy gate the same decisions whatever the way in (synchronous SHS, SOAP,
//! asynchronous SHS before its 202 and after it).

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use relay_shs::{SequenceType, TransferType};
use support::*;

/// `shs_relay_policy_decisions_total`, all checks and outcomes.
fn decisions(kit: &Kit) -> u64 {
    let text = kit.relay.metrics.encode();
    text.lines()
        .filter(|l| l.starts_with("shs_relay_policy_decisions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test]
async fn a_question_passes_the_gate_once_whatever_the_way_in() {
    let kit = Kit::new().await;

    let before = decisions(&kit);
    let l = label(
        SUNDSVALL,
        NODE,
        SSBTEK,
        TransferType::Synch,
        SequenceType::Request,
    );
    let a = kit
        .shs(SUNDSVALL, message(l, &[&question(SUNDSVALL, &[])]).await)
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let synch = decisions(&kit) - before;
    assert!(synch > 0, "the gate decided nothing");

    let before = decisions(&kit);
    let a = kit
        .soap(SUNDSVALL, "/ssbtek/v10", soap_question(SUNDSVALL, &[]))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(decisions(&kit) - before, synch, "SOAP");

    let before = decisions(&kit);
    let l = label(
        SUNDSVALL,
        NODE,
        SSBTEK,
        TransferType::Asynch,
        SequenceType::Request,
    );
    let a = kit
        .shs(SUNDSVALL, message(l, &[&question(SUNDSVALL, &[])]).await)
        .await;
    assert_eq!(a.status, 202, "{}", a.text());
    // The answer comes after the 202; its audit record is written once the
    // gate has decided (the trail is read from its file, past no gate).
    let tx = a.headers["X-shs-txid"].to_str().unwrap().to_owned();
    kit.audit_until(|r| {
        matches!(r, relay_audit::AuditRecord::Request(r)
            if r.tx_id == tx && r.result == relay_audit::RequestResult::Answered)
    })
    .await;
    assert_eq!(decisions(&kit) - before, synch, "asynchronous SHS");
}
