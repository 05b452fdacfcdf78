//! The bypasses found against the demo stack, as an adversary would try them
//! against the real binaries over real mutual TLS: each is refused by the one
//! admission step and the one policy gate.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use relay_demo::{DIRECT_PRODUCT, NODE_ORG, SSBTEK_PRODUCT};
use relay_ident::{Organisationsnummer, Personnummer};
use relay_ssbtek::{Ingivare, Period, QuestionBuilder, Slot};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const STOCKHOLM: &str = "2120000142";
const PROCESSOR: &str = "5566778899";
const VENDOR: &str = "5566770011";

fn question(ingivare: &str, processors: &[&str]) -> Vec<u8> {
    let today = chrono::Local::now().date_naive();
    let period = Period::new(today - chrono::Months::new(3), today).unwrap();
    let mut b = QuestionBuilder::new(
        Personnummer::parse("191212121212").unwrap(),
        Ingivare::new(
            Organisationsnummer::parse(ingivare).unwrap(),
            "Kommunen",
            "handlaggare-7",
        ),
        "ARENDE-2026-1",
        period,
    )
    .include_all([Slot::Csn]);
    for (i, p) in processors.iter().enumerate() {
        b = b.personuppgiftsbitrade(relay_ssbtek::question::Personuppgiftsbitrade::new(
            Some(i as i16 + 1),
            Organisationsnummer::parse(p).unwrap(),
            "Exempel Drift AB",
        ));
    }
    b.build().unwrap().to_xml(true).to_vec()
}

struct Answer {
    status: u16,
    code: Option<String>,
    text: String,
}

async fn send(stack: &Stack, org: &str, message: Vec<u8>) -> Answer {
    let r = stack
        .client(org)
        .post(format!("{}/shs/rs", stack.relay_url()))
        .header("Content-Type", "message/rfc822")
        .body(message)
        .send()
        .await
        .unwrap();
    Answer {
        status: r.status().as_u16(),
        code: r
            .headers()
            .get("X-shs-errorcode")
            .map(|v| v.to_str().unwrap().to_owned()),
        text: r.text().await.unwrap(),
    }
}

async fn admin(stack: &Stack, path: &str) {
    let url = &stack.demo().info.admin["url"];
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

fn ssbtek(from: &str, transfer: &'static str, q: &[u8]) -> Vec<u8> {
    let mut spec = LabelSpec::synch_request(from, NODE_ORG, SSBTEK_PRODUCT, 1);
    spec.transfer_type = transfer;
    shs_message(&spec.to_xml(), &[("text/xml", q)])
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bypass_found_against_the_demo_is_refused() {
    let stack = Stack::start().await;

    // Processor bypass and asynchronous suspension bypass: Sundsvall suspended.
    admin(&stack, &format!("/admin/suspend?org={SUNDSVALL}")).await;
    let a = send(
        &stack,
        SUNDSVALL,
        ssbtek(SUNDSVALL, "asynch", &question(SUNDSVALL, &[])),
    )
    .await;
    assert_eq!(
        (a.status, a.code.as_deref()),
        (400, Some("MissingAgreement")),
        "{}",
        a.text
    );
    let a = send(
        &stack,
        PROCESSOR,
        ssbtek(PROCESSOR, "synch", &question(SUNDSVALL, &[PROCESSOR])),
    )
    .await;
    assert_eq!(
        (a.status, a.code.as_deref()),
        (400, Some("MissingAgreement")),
        "{}",
        a.text
    );
    let a = send(
        &stack,
        PROCESSOR,
        ssbtek(PROCESSOR, "asynch", &question(SUNDSVALL, &[PROCESSOR])),
    )
    .await;
    assert_eq!(
        (a.status, a.code.as_deref()),
        (400, Some("MissingAgreement")),
        "{}",
        a.text
    );
    admin(&stack, &format!("/admin/resume?org={SUNDSVALL}")).await;
    // Lifted: the processor, named by Sundsvall, gets its answer again.
    let a = send(
        &stack,
        PROCESSOR,
        ssbtek(PROCESSOR, "synch", &question(SUNDSVALL, &[PROCESSOR])),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);

    // Sender spoofing: a decoy label in the MIME preamble claims the caller;
    // the real label (the first MIME part) names Stockholm.
    let mut spec = LabelSpec::synch_request(STOCKHOLM, SUNDSVALL, DIRECT_PRODUCT, 1);
    spec.transfer_type = "asynch";
    spec.sequence_type = "event";
    let mut decoy = LabelSpec::synch_request(SUNDSVALL, SUNDSVALL, DIRECT_PRODUCT, 1);
    decoy.transfer_type = "asynch";
    let real = String::from_utf8(shs_message(&spec.to_xml(), &[("text/plain", b"x")])).unwrap();
    let first = real.find("\r\n--").unwrap();
    let spoofed = format!("{}\r\n{}{}", &real[..first], decoy.to_xml(), &real[first..]);
    let a = send(&stack, SUNDSVALL, spoofed.into_bytes()).await;
    assert_eq!(
        (a.status, a.code.as_deref()),
        (400, Some("IllegalSender")),
        "{}",
        a.text
    );

    // Mailbox stuffing: an organisation without the product, and an adm
    // message that refers to nothing between the two.
    let mut spec = LabelSpec::synch_request(VENDOR, STOCKHOLM, DIRECT_PRODUCT, 1);
    spec.transfer_type = "asynch";
    spec.sequence_type = "event";
    let a = send(
        &stack,
        VENDOR,
        shs_message(&spec.to_xml(), &[("text/plain", b"x")]),
    )
    .await;
    assert_eq!(
        (a.status, a.code.as_deref()),
        (400, Some("MissingAgreement")),
        "{}",
        a.text
    );
    let mut spec = LabelSpec::synch_request(SUNDSVALL, STOCKHOLM, "error", 1);
    spec.transfer_type = "asynch";
    spec.sequence_type = "adm";
    let a = send(
        &stack,
        SUNDSVALL,
        shs_message(&spec.to_xml(), &[("text/xml", b"<x/>")]),
    )
    .await;
    assert_eq!(
        a.code.as_deref(),
        Some("IllegalMessageStructure"),
        "{}",
        a.text
    );

    // tx.id: not a UUID.
    let mut spec = LabelSpec::synch_request(SUNDSVALL, STOCKHOLM, DIRECT_PRODUCT, 1);
    spec.transfer_type = "asynch";
    spec.sequence_type = "event";
    spec.tx_id = "predictable-1".into();
    let a = send(
        &stack,
        SUNDSVALL,
        shs_message(&spec.to_xml(), &[("text/plain", b"x")]),
    )
    .await;
    assert_eq!(
        a.code.as_deref(),
        Some("IllegalMessageStructure"),
        "{}",
        a.text
    );

    // An odd encoding declaration in the label: an SHS error, not a dropped
    // connection.
    let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, SSBTEK_PRODUCT, 1);
    let label = spec.to_xml().replace(
        "encoding=\"ISO-8859-1\"",
        "encoding=\u{201c}ISO-8859-1\u{201d}",
    );
    let a = send(
        &stack,
        SUNDSVALL,
        shs_message(&label, &[("text/xml", &question(SUNDSVALL, &[]))]),
    )
    .await;
    assert_eq!(
        (a.status, a.code.as_deref()),
        (400, Some("IllegalMessageStructure")),
        "{}",
        a.text
    );

    // The relay is still up and answers.
    let a = send(
        &stack,
        SUNDSVALL,
        ssbtek(SUNDSVALL, "synch", &question(SUNDSVALL, &[])),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    stack.stop().await;
}
