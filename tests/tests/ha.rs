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

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use relay_demo::{DIRECT_PRODUCT, DemoNode, NODE_ORG, PING_PRODUCT};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const STOCKHOLM: &str = "2120000142";

fn postgres_url() -> String {
    std::env::var("SHS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn two_nodes() -> Stack {
    two_nodes_with(|_| {}).await
}

async fn two_nodes_with(adjust: impl FnOnce(&mut relay_demo::DemoOptions)) -> Stack {
    let url = postgres_url();
    let stack = Stack::start_with(|o| {
        o.nodes = 2;
        o.postgres = Some(url.clone());
        o.without_prober();
        adjust(o);
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

    let spec = LabelSpec::asynch(SUNDSVALL, STOCKHOLM, DIRECT_PRODUCT, 1, "event");
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

async fn ping(stack: &Stack, node: &DemoNode) -> reqwest::Response {
    let spec = LabelSpec::synch_request(STOCKHOLM, NODE_ORG, PING_PRODUCT, 1);
    let body = shs_message(&spec.to_xml(), &[("text/plain", b"ping")]);
    stack
        .client(STOCKHOLM)
        .post(format!("{}/shs/rs", node.url))
        .header("Content-Type", "message/rfc822")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn admin_post(node: &DemoNode, path: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", node.admin))
        .header("X-SHS-Admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
}

fn refused(r: &reqwest::Response) -> bool {
    r.headers().get("x-shs-errorcode").is_some()
}

fn demo_mut(stack: &mut Stack) -> &mut relay_demo::Demo {
    stack.demo.as_mut().expect("running")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspension_holds_at_every_node_and_across_restarts_of_both() {
    let mut stack = two_nodes().await;
    let [one, two] = <[DemoNode; 2]>::try_from(stack.nodes()).unwrap();
    assert_eq!(ping(&stack, &two).await.status(), 200, "node 2 answers");

    admin_post(&one, &format!("/admin/suspend?org={STOCKHOLM}")).await;
    let suspended = Instant::now();
    while !refused(&ping(&stack, &two).await) {
        assert!(
            suspended.elapsed() < Duration::from_secs(5),
            "node 2 still serves a caller suspended at node 1"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("suspension seen at node 2 after {:?}", suspended.elapsed());

    // Both nodes killed and started again: it still holds at both.
    for node in [1, 2] {
        let name = if node == 1 {
            "shs-relay"
        } else {
            "shs-relay-node2"
        };
        demo_mut(&mut stack).kill(name).await.unwrap();
    }
    for node in [1, 2] {
        demo_mut(&mut stack).restart_node(node).await.unwrap();
    }
    let [one, two] = <[DemoNode; 2]>::try_from(stack.nodes()).unwrap();
    for node in [&one, &two] {
        let r = ping(&stack, node).await;
        assert!(refused(&r), "a restarted node forgot the suspension");
    }

    // Lifted at node 2: node 1 serves again.
    admin_post(&two, &format!("/admin/resume?org={STOCKHOLM}")).await;
    let resumed = Instant::now();
    while ping(&stack, &one).await.status() != 200 {
        assert!(
            resumed.elapsed() < Duration::from_secs(5),
            "still suspended at node 1"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_upload_leaves_nothing_and_the_other_node_serves() {
    let mut stack = two_nodes().await;
    let [one, two] = <[DemoNode; 2]>::try_from(stack.nodes()).unwrap();

    // A 32 MiB message, streamed slowly into node 1, which is killed midway.
    let spec = LabelSpec::asynch(SUNDSVALL, STOCKHOLM, DIRECT_PRODUCT, 1, "event");
    let full = shs_message(&spec.to_xml(), &[("text/plain", &vec![b'a'; 32 << 20])]);
    let chunks: Vec<bytes::Bytes> = full
        .chunks(1 << 20)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let body = futures::stream::iter(chunks).then(move |c| {
        let counter = counter.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, std::io::Error>(c)
        }
    });
    let upload = tokio::spawn({
        let client = stack.client(SUNDSVALL);
        let url = format!("{}/shs/rs", one.url);
        async move {
            client
                .post(url)
                .header("Content-Type", "message/rfc822")
                .body(reqwest::Body::wrap_stream(body))
                .send()
                .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.load(std::sync::atomic::Ordering::SeqCst) < 8 {
        assert!(Instant::now() < deadline, "the upload did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    demo_mut(&mut stack).kill("shs-relay").await.unwrap();
    let r = upload.await.unwrap();
    assert!(
        r.as_ref().map_or(true, |r| r.status() != 202),
        "a killed node accepted the message"
    );

    // Nothing of it is visible through node 2, which serves on its own.
    let xml = list(&stack, &two, STOCKHOLM).await;
    assert!(
        !xml.contains(&spec.tx_id),
        "a partial message is listed: {xml}"
    );
    assert_eq!(ping(&stack, &two).await.status(), 200);
    // The sender's retry of the same tx.id through node 2 is a new message.
    let small = shs_message(&spec.to_xml(), &[("text/plain", b"the retry")]);
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", two.url))
        .body(small)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-shs-duplicatemsg"], "no");
    let ready = reqwest::get(format!("{}/readyz", two.admin)).await.unwrap();
    assert_eq!(ready.status(), 200);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_message_moves_through_two_nodes_with_bounded_memory() {
    const SIZE: usize = 100 * 1024 * 1024;
    let stack = two_nodes().await;
    let [one, two] = <[DemoNode; 2]>::try_from(stack.nodes()).unwrap();
    let pids = [
        stack.demo().pid_of("shs-relay").unwrap(),
        stack.demo().pid_of("shs-relay-node2").unwrap(),
    ];
    let spec = LabelSpec::asynch(SUNDSVALL, STOCKHOLM, DIRECT_PRODUCT, 1, "event");
    let started = Instant::now();
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", one.url))
        .header("Content-Type", "message/rfc822")
        .body(streamed_message(&spec.to_xml(), SIZE))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let put = started.elapsed();
    // Delivery into the outbox may trail the 202: fetch as a receiving system
    // would, until it is there.
    let deadline = Instant::now() + Duration::from_secs(60);
    let r = loop {
        let r = stack
            .client(STOCKHOLM)
            .get(format!("{}/shs/ds/{STOCKHOLM}/{}", two.url, spec.tx_id))
            .send()
            .await
            .unwrap();
        if r.status() != 404 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(r.status(), 200);
    let total = drained(r).await;
    assert!(total > SIZE, "the whole message came back: {total}");
    let peaks = pids.map(|p| vm_hwm_kb(p) / 1024);
    println!(
        "100 MB in through node 1 in {put:?}, out through node 2 in {:?}; peak RSS node 1 {} MB, node 2 {} MB",
        started.elapsed() - put,
        peaks[0],
        peaks[1]
    );
    for peak in peaks {
        assert!(
            peak < 100,
            "a node's peak RSS stays far below the message size: {peak} MB"
        );
    }
    stack.stop().await;
}

fn shs_cli(stack: &Stack, args: &[&str]) -> std::process::Child {
    shs_command(stack)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_elt_call_a_second_per_vendor_across_both_nodes() {
    // One call per 30 s, so that the two calls fall in one interval however
    // slowly a loaded machine starts the two clients; the rule is the same.
    let stack = two_nodes_with(|o| o.elt_calls_per_second = Some(1.0 / 30.0)).await;
    let [_, two] = <[DemoNode; 2]>::try_from(stack.nodes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for i in 0..2 {
        let out = dir.path().join(format!("report-{i}.xml"));
        let o = shs_cli(
            &stack,
            &[
                "elt",
                "example",
                "--person",
                "19121212-1212",
                "--out",
                out.to_str().unwrap(),
            ],
        )
        .wait_with_output()
        .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        reports.push(out);
    }
    // Both at once: one through node 1 (demo.json's relay), one through node 2.
    let a = shs_cli(
        &stack,
        &["elt", "submit", "--in", reports[0].to_str().unwrap()],
    );
    let b = shs_cli(
        &stack,
        &[
            "--url",
            &two.url,
            "elt",
            "submit",
            "--in",
            reports[1].to_str().unwrap(),
        ],
    );
    let outputs: Vec<String> = [a, b]
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            format!(
                "status {:?}\n{}{}",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect();
    let limited = outputs
        .iter()
        .filter(|o| o.contains("ELT-RATE-LIMIT"))
        .count();
    let receipts = outputs
        .iter()
        .filter(|o| o.contains("status Some(0)"))
        .count();
    assert_eq!(
        (receipts, limited),
        (1, 1),
        "one receipt and one rate refusal between the two nodes: {outputs:#?}"
    );
    stack.stop().await;
}
