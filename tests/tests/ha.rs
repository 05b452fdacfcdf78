//! Two relay nodes on one PostgreSQL store (`shs-relay demo --nodes 2
//! --postgres URL`): a message sent through one node is listed, fetched and
//! acknowledged through either; a suspension made through one node's admin API
//! refuses at the other within a second or so; either node keeps answering when
//! the other is killed.
//!
//! The database: `SHS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test` (`.ci/run` starts one when none
//! answers); each demo uses a schema of its own. No test here is skipped: a
//! missing database fails with that message.

use std::time::{Duration, Instant};

use relay_server::demo::{DIRECT_PRODUCT, DemoNode, NODE_ORG, SSBTEK_PRODUCT};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const STOCKHOLM: &str = "2120000142";

fn postgres_url() -> String {
    std::env::var("SHS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn two_nodes() -> Stack {
    let url = postgres_url();
    let stack = Stack::start_with(|o| {
        o.nodes = 2;
        o.postgres = Some(url.clone());
        o.without_prober();
    })
    .await;
    assert_eq!(stack.nodes().len(), 2);
    stack
}

trait Nodes {
    fn nodes(&self) -> Vec<DemoNode>;
}

impl Nodes for Stack {
    fn nodes(&self) -> Vec<DemoNode> {
        self.demo()
            .info
            .relays
            .clone()
            .expect("demo.json lists the relays")
    }
}

fn asynch(from: &'static str, to: &'static str) -> LabelSpec<'static> {
    let mut spec = LabelSpec::synch_request(from, to, DIRECT_PRODUCT, 1);
    spec.transfer_type = "asynch";
    spec.sequence_type = "event";
    spec
}

async fn list(stack: &Stack, node: &DemoNode, org: &str) -> String {
    let r = stack
        .client(org)
        .get(format!("{}/shs/ds/{org}", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_sent_through_one_node_is_fetched_and_acknowledged_through_either() {
    let stack = two_nodes().await;
    let [one, two] = <[DemoNode; 2]>::try_from(stack.nodes()).unwrap();
    let marker = format!("HA-MARKER-{}", uuid::Uuid::new_v4());

    let spec = asynch(SUNDSVALL, STOCKHOLM);
    let message = shs_message(&spec.to_xml(), &[("text/plain", marker.as_bytes())]);
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", one.url))
        .body(message.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    // The same message again through the other node is a duplicate there too.
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", two.url))
        .body(message)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-shs-duplicatemsg"], "yes");

    // Listed and fetched through node 2.
    let deadline = Instant::now() + Duration::from_secs(30);
    let tx = loop {
        let xml = list(&stack, &two, STOCKHOLM).await;
        if let Some(m) = xml
            .split("<message ")
            .skip(1)
            .find(|m| m.contains(&spec.tx_id))
        {
            break m
                .split("tx.id=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap()
                .to_owned();
        }
        assert!(Instant::now() < deadline, "not listed at node 2: {xml}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let r = stack
        .client(STOCKHOLM)
        .get(format!("{}/shs/ds/{STOCKHOLM}/{tx}", two.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains(&marker));

    // Acknowledged through node 1: gone at both, a confirm for the sender.
    let r = stack
        .client(STOCKHOLM)
        .post(format!("{}/shs/ds/{STOCKHOLM}/{tx}?action=ack", one.url))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    for node in [&one, &two] {
        let xml = list(&stack, node, STOCKHOLM).await;
        assert!(!xml.contains(&tx), "acknowledged, still listed: {xml}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let xml = list(&stack, &two, SUNDSVALL).await;
        if xml.contains("confirm") && xml.contains(&spec.corr_id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no confirm for the sender: {xml}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspension_at_one_node_refuses_at_the_other_and_a_killed_node_leaves_the_other_serving()
{
    let mut stack = two_nodes().await;
    let [one, two] = <[DemoNode; 2]>::try_from(stack.nodes()).unwrap();
    let ping = |node: &DemoNode| {
        let spec =
            LabelSpec::synch_request(STOCKHOLM, NODE_ORG, relay_server::demo::PING_PRODUCT, 1);
        let body = shs_message(&spec.to_xml(), &[("text/xml", b"<ping/>")]);
        stack
            .client(STOCKHOLM)
            .post(format!("{}/shs/rs", node.url))
            .header("Content-Type", "message/rfc822")
            .body(body)
            .send()
    };
    assert_eq!(ping(&two).await.unwrap().status(), 200, "node 2 answers");

    let admin = reqwest::Client::new();
    let r = admin
        .post(format!("{}/admin/suspend?org={STOCKHOLM}", one.admin))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let suspended = Instant::now();
    loop {
        let r = ping(&two).await.unwrap();
        if r.status() == 403 || r.headers().get("x-shs-errorcode").is_some() {
            break;
        }
        assert!(
            suspended.elapsed() < Duration::from_secs(5),
            "node 2 still serves a caller suspended at node 1"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("suspension seen at node 2 after {:?}", suspended.elapsed());
    // Lifted at node 2: node 1 serves again.
    let r = admin
        .post(format!("{}/admin/resume?org={STOCKHOLM}", two.admin))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let resumed = Instant::now();
    while ping(&one).await.unwrap().status() != 200 {
        assert!(
            resumed.elapsed() < Duration::from_secs(5),
            "still suspended at node 1"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Node 1 killed (SIGKILL): node 2 answers SSBTEK questions on its own.
    stack
        .demo
        .as_mut()
        .expect("running")
        .kill("shs-relay")
        .await
        .unwrap();
    let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, SSBTEK_PRODUCT, 1);
    let question = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../relay/ssbtek/tests/fixtures/questions/sundsvall_all_slots.xml"),
    )
    .unwrap();
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", two.url))
        .header("Content-Type", "message/rfc822")
        .body(shs_message(&spec.to_xml(), &[("text/xml", &question)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "node 2 serves with node 1 down");
    let ready = reqwest::get(format!("{}/readyz", two.admin)).await.unwrap();
    assert_eq!(ready.status(), 200);
    stack.stop().await;
}
