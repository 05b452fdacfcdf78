//! Each request is counted once: in `shs_relay_requests_total` and in the
//! console's request chart, both read from the relay's own metrics.

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

/// `shs_relay_requests_total{route="shs_rs",outcome="accepted"}`.
fn accepted_in_metrics(kit: &Kit) -> u64 {
    let text = kit.relay.metrics.encode();
    text.lines()
        .filter(|l| l.starts_with("shs_relay_requests_total{"))
        .filter(|l| l.contains("route=\"shs_rs\"") && l.contains("outcome=\"accepted\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Accepted requests in the console's chart, the last hour.
fn accepted_in_chart(kit: &Kit) -> u64 {
    kit.relay
        .metrics
        .history
        .last_hour(chrono::Utc::now())
        .iter()
        .filter_map(|(_, counts)| counts.get("accepted"))
        .sum()
}

#[tokio::test]
async fn an_accepted_asynchronous_message_is_counted_once_in_metrics_and_in_the_chart() {
    let kit = Kit::new().await;
    let (metrics_before, chart_before) = (accepted_in_metrics(&kit), accepted_in_chart(&kit));
    for n in 1..=3u64 {
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
        assert_eq!(accepted_in_metrics(&kit) - metrics_before, n, "metrics");
        assert_eq!(accepted_in_chart(&kit) - chart_before, n, "console chart");
    }
}

#[tokio::test]
async fn two_relays_in_one_process_count_apart() {
    let (a, b) = (Kit::new().await, Kit::new().await);
    let l = label(
        SUNDSVALL,
        NODE,
        SSBTEK,
        TransferType::Asynch,
        SequenceType::Request,
    );
    let r = a
        .shs(SUNDSVALL, message(l, &[&question(SUNDSVALL, &[])]).await)
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(accepted_in_metrics(&a), 1, "the relay that accepted it");
    assert_eq!(accepted_in_chart(&a), 1);
    assert_eq!(accepted_in_metrics(&b), 0, "the other relay's metrics");
    assert_eq!(accepted_in_chart(&b), 0, "the other relay's chart");
}
