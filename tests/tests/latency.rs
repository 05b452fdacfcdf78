//! The per-hop latency floor: with every simulated agency answering at once, a
//! composite SSBTEK query crosses four TCP hops (client → relay front, relay →
//! seven adapters, adapters → simulator) and must take a few milliseconds. A hop
//! that loses `TCP_NODELAY` costs about 40 ms per call (Nagle's algorithm
//! waiting for the peer's delayed ACK), which this test catches; its bound is
//! generous so that a loaded two-core CI machine does not make it flaky.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::time::{Duration, Instant};

use relay_demo::{NODE_ORG, SSBTEK_PRODUCT};
use relay_ident::{Organisationsnummer, Personnummer};
use relay_ssbtek::{Ingivare, Period, QuestionBuilder, Slot};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const TOLVAN: &str = "191212121212";

/// Every agency answers without delay (the simulator's admin endpoint).
const ZERO_LATENCY: &str = r#"
[agency.AF]
latency = { kind = "fixed", ms = 0 }
[agency.CSN]
latency = { kind = "fixed", ms = 0 }
[agency.FK]
latency = { kind = "fixed", ms = 0 }
[agency.SKV]
latency = { kind = "fixed", ms = 0 }
[agency.SO]
latency = { kind = "fixed", ms = 0 }
[agency.TNS]
latency = { kind = "fixed", ms = 0 }
[agency.MIV]
latency = { kind = "fixed", ms = 0 }
"#;

fn composite_question() -> Vec<u8> {
    let today = chrono::Local::now().date_naive();
    let period = Period::new(today - chrono::Months::new(3), today).unwrap();
    let question = QuestionBuilder::new(
        Personnummer::parse(TOLVAN).unwrap(),
        Ingivare::new(
            Organisationsnummer::parse(SUNDSVALL).unwrap(),
            "Sundsvalls kommun",
            "handlaggare-1",
        ),
        "ARENDE-1",
        period,
    )
    .include_all(Slot::ALL)
    .build()
    .unwrap();
    let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, SSBTEK_PRODUCT, 1);
    shs_message(
        &spec.to_xml(),
        &[("text/xml; charset=UTF-8", &question.to_xml(true))],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_composite_query_to_zero_latency_agencies_takes_far_less_than_a_delayed_ack() {
    let stack = Stack::start().await;
    let admin = &stack.demo().info.sim.admin;
    let r = reqwest::Client::new()
        .put(format!("{admin}/admin/scenario"))
        .body(ZERO_LATENCY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let client = stack.client(SUNDSVALL);
    let url = format!("{}/shs/rs", stack.relay_url());
    let mut took = Vec::new();
    // The first calls open the connections (TLS handshakes on every hop).
    for i in 0..25 {
        let started = Instant::now();
        let r = client
            .post(&url)
            .header("Content-Type", "message/rfc822")
            .body(composite_question())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.bytes().await.unwrap();
        if i >= 5 {
            took.push(started.elapsed());
        }
        let text = String::from_utf8_lossy(&body);
        for slot in ["AF", "CSN", "FK", "SKV", "SO", "TNS", "MIV"] {
            assert!(
                text.contains(&format!("<ssbt:{slot}>")),
                "no {slot} slot in {text}"
            );
        }
        assert!(!text.contains("SSBT-"), "a slot failed: {text}");
    }
    took.sort();
    let median = took[took.len() / 2];
    // With one hop lacking TCP_NODELAY the median is above 40 ms; with all of
    // them set it is a few milliseconds (debug build, shared machine).
    assert!(
        median < Duration::from_millis(25),
        "median composite query took {median:?} (all: {took:?})"
    );
    stack.stop().await;
}
