//! Each request is counted once: in `shs_relay_requests_total` and in the
//! console's request chart. Its own test binary, because the counters are
//! per process and no other test may move them meanwhile.

mod support;

use relay_shs::{SequenceType, TransferType};
use support::*;

/// `shs_relay_requests_total{route="shs_rs",outcome="accepted"}`.
fn accepted_in_metrics() -> u64 {
    let text = relay_server::metrics::METRICS.encode();
    text.lines()
        .filter(|l| l.starts_with("shs_relay_requests_total{"))
        .filter(|l| l.contains("route=\"shs_rs\"") && l.contains("outcome=\"accepted\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Accepted requests in the console's chart, the last hour.
fn accepted_in_chart() -> u64 {
    relay_server::console::HISTORY
        .last_hour(chrono::Utc::now())
        .iter()
        .filter_map(|(_, counts)| counts.get("accepted"))
        .sum()
}

#[tokio::test]
async fn an_accepted_asynchronous_message_is_counted_once_in_metrics_and_in_the_chart() {
    let kit = Kit::new().await;
    let (metrics_before, chart_before) = (accepted_in_metrics(), accepted_in_chart());
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
        assert_eq!(accepted_in_metrics() - metrics_before, n, "metrics");
        assert_eq!(accepted_in_chart() - chart_before, n, "console chart");
    }
}
