//! Two relay nodes on one PostgreSQL store under misuse and faults: stalled
//! uploads of one organisation never take the store from the others; a silent
//! cut of the database (a fault proxy that drops every byte) is answered within
//! the store's deadline with a retryable error; a node's work in progress is
//! never taken by a live node, and a dead node's is finished by the other
//! within its lease; the same tx.id from two organisations at once is two
//! messages, each stored and confirmed to its own sender.
//!
//! The database: `SHS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`. No test here is skipped: a
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

use relay_demo::{DIRECT_PRODUCT, DemoNode, NODE_ORG, PING_PRODUCT, SSBTEK_PRODUCT};
use shs_tests::fault_proxy::{Fault, FaultProxy};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const STOCKHOLM: &str = "2120000142";
const GOTEBORG: &str = "2120001355";

fn postgres_url() -> String {
    std::env::var("SHS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn two_nodes_on(
    url: &str,
    adjust: impl FnOnce(&mut relay_demo::DemoOptions),
) -> (Stack, [DemoNode; 2]) {
    let stack = Stack::start_with(|o| {
        o.nodes = 2;
        o.postgres = Some(url.to_owned());
        o.without_prober();
        adjust(o);
    })
    .await;
    let nodes = nodes(&stack);
    (stack, nodes)
}

fn nodes(stack: &Stack) -> [DemoNode; 2] {
    let relays = stack
        .demo()
        .info
        .relays
        .clone()
        .expect("demo.json lists the relays");
    <[DemoNode; 2]>::try_from(relays).expect("two nodes")
}

async fn readyz(node: &DemoNode) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("{}/readyz", node.admin))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the admin listener answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn list(stack: &Stack, node: &DemoNode, org: &str) -> reqwest::Response {
    stack
        .client(org)
        .get(format!("{}/shs/ds/{org}", node.url))
        .send()
        .await
        .expect("the node answers a list")
}

async fn send_direct(stack: &Stack, node: &DemoNode, from: &str, to: &str) -> reqwest::Response {
    let spec = LabelSpec::asynch(from, to, DIRECT_PRODUCT, 1, "event");
    stack
        .client(from)
        .post(format!("{}/shs/rs", node.url))
        .header("Content-Type", "message/rfc822")
        .body(shs_message(&spec.to_xml(), &[("text/plain", b"hello")]))
        .send()
        .await
        .expect("the node answers a send")
}

async fn ping(stack: &Stack, node: &DemoNode, from: &str) -> reqwest::Response {
    let spec = LabelSpec::synch_request(from, NODE_ORG, PING_PRODUCT, 1);
    stack
        .client(from)
        .post(format!("{}/shs/rs", node.url))
        .header("Content-Type", "message/rfc822")
        .body(shs_message(&spec.to_xml(), &[("text/plain", b"ping")]))
        .send()
        .await
        .expect("the node answers a ping")
}

/// An upload that sends its label and a little of its body, then stalls
/// (never ends) until the test drops it.
fn stalled_upload(
    stack: &Stack,
    node: &DemoNode,
    from: &'static str,
) -> tokio::task::JoinHandle<Result<reqwest::Response, reqwest::Error>> {
    let spec = LabelSpec::asynch(from, STOCKHOLM, DIRECT_PRODUCT, 1, "event");
    let full = shs_message(&spec.to_xml(), &[("text/plain", &vec![b'x'; 256 * 1024])]);
    let head = bytes::Bytes::copy_from_slice(&full[..full.len() / 2]);
    let body =
        futures::stream::iter([Ok::<_, std::io::Error>(head)]).chain(futures::stream::pending());
    let client = stack.client(from);
    let url = format!("{}/shs/rs", node.url);
    tokio::spawn(async move {
        client
            .post(url)
            .header("Content-Type", "message/rfc822")
            .body(reqwest::Body::wrap_stream(body))
            .timeout(Duration::from_secs(600))
            .send()
            .await
    })
}

use futures::StreamExt;

#[tokio::test(flavor = "multi_thread")]
async fn forty_stalled_uploads_of_one_organisation_leave_the_others_served_and_both_nodes_ready() {
    let (stack, [one, two]) = two_nodes_on(&postgres_url(), |_| {}).await;
    // 40 uploads that never finish, from one organisation, through both nodes.
    let stalled: Vec<_> = (0..40)
        .map(|i| stalled_upload(&stack, if i % 2 == 0 { &one } else { &two }, SUNDSVALL))
        .collect();
    // Those over the organisation's share are refused at once, retryably.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refused = 0;
    let mut pending = stalled;
    while Instant::now() < deadline {
        let mut still = Vec::new();
        for h in pending {
            if h.is_finished() {
                // The node answers 503 before the body is read; the client may
                // see that answer, or the connection closed under its body.
                if let Ok(r) = h.await.unwrap() {
                    assert_eq!(r.status(), 503, "an upload over the share");
                    assert!(r.headers().contains_key("retry-after"));
                }
                refused += 1;
            } else {
                still.push(h);
            }
        }
        pending = still;
        // mailbox.max_uploads_per_sender (4) per node stay in progress.
        if pending.len() <= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused >= 32,
        "uploads beyond the organisation's share are refused: {refused} of 40"
    );

    // Meanwhile the other organisations are served through both nodes, and
    // both nodes stay ready.
    for node in [&one, &two] {
        for _ in 0..3 {
            let started = Instant::now();
            let r = list(&stack, node, STOCKHOLM).await;
            assert_eq!(
                r.status(),
                200,
                "list: {}",
                r.text().await.unwrap_or_default()
            );
            let r = send_direct(&stack, node, GOTEBORG, STOCKHOLM).await;
            assert_eq!(
                r.status(),
                202,
                "send: {}",
                r.text().await.unwrap_or_default()
            );
            let q = question("191212121212", STOCKHOLM, &[relay_ssbtek::Slot::Tns], false);
            let reply = ask_with(&stack.client(STOCKHOLM), &node.url, STOCKHOLM, &[q]).await;
            assert_eq!(answers_of(&reply).len(), 1, "an SSBTEK answer");
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "served promptly: {:?}",
                started.elapsed()
            );
            let (status, text) = readyz(node).await;
            assert_eq!(status, 200, "ready while one organisation stalls: {text}");
        }
    }
    for h in pending {
        h.abort();
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_cut_of_the_database_answers_every_request_within_its_deadline() {
    let (proxy, through) = FaultProxy::for_postgres(&postgres_url())
        .await
        .expect("the fault proxy starts");
    // statement_timeout 1 s: every store call ends within 2.5 s.
    let (stack, [one, two]) = two_nodes_on(&through, |o| {
        o.store_extra.push_str("statement_timeout_ms = 1000\n");
    })
    .await;
    for node in [&one, &two] {
        assert_eq!(
            send_direct(&stack, node, SUNDSVALL, STOCKHOLM)
                .await
                .status(),
            202
        );
    }

    proxy.set(Fault::Drop);
    // Every answer comes well within the deadline plus the client's own work;
    // without one, requests would hang for TCP's retransmission time.
    let bound = Duration::from_secs(15);
    for node in [&one, &two] {
        let started = Instant::now();
        let r = send_direct(&stack, node, SUNDSVALL, STOCKHOLM).await;
        let took = started.elapsed();
        assert_eq!(
            r.status(),
            503,
            "an asynchronous send while the database is cut"
        );
        assert!(r.headers().contains_key("retry-after"), "retryable");
        assert_eq!(r.headers()["x-shs-errorcode"], "OtherError");
        assert!(took < bound, "answered in {took:?}");

        let started = Instant::now();
        let r = list(&stack, node, STOCKHOLM).await;
        assert_eq!(r.status(), 503, "a list while the database is cut");
        assert!(r.headers().contains_key("retry-after"), "retryable");
        assert!(
            started.elapsed() < bound,
            "answered in {:?}",
            started.elapsed()
        );

        // Synchronous SHS goes on: decisions are the last state read.
        let started = Instant::now();
        let r = ping(&stack, node, STOCKHOLM).await;
        assert_eq!(
            r.status(),
            200,
            "a synchronous ping while the database is cut"
        );
        assert!(
            started.elapsed() < bound,
            "answered in {:?}",
            started.elapsed()
        );

        // The node says its store does not answer.
        let started = Instant::now();
        let (status, text) = readyz(node).await;
        assert_eq!(status, 503, "{text}");
        assert!(text.contains("store"), "{text}");
        assert!(
            started.elapsed() < bound,
            "answered in {:?}",
            started.elapsed()
        );

        // And its metric says so, from a bounded probe (no count over the
        // messages), within a few of its 10 s looks.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let metrics = reqwest::get(format!("{}/metrics", node.admin))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if metrics
                .lines()
                .any(|l| l.starts_with("shs_relay_store_up{") && l.ends_with(" 0"))
            {
                break;
            }
            assert!(Instant::now() < deadline, "store_up never fell:\n{metrics}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // The network heals: both nodes serve again by themselves.
    proxy.heal();
    for node in [&one, &two] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = send_direct(&stack, node, SUNDSVALL, STOCKHOLM).await;
            if r.status() == 202 {
                break;
            }
            assert!(Instant::now() < deadline, "never recovered: {}", r.status());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while readyz(node).await.0 != 200 {
            assert!(Instant::now() < deadline, "never ready again");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    stack.stop().await;
}

/// Makes TNS answer only after `ms`, through the simulator's scenario.
async fn slow_tns(stack: &Stack, ms: u64) {
    let r = reqwest::Client::new()
        .put(format!("{}/admin/scenario", stack.demo().info.sim.admin))
        .body(format!(
            "[agency.TNS]\nlatency = {{ kind = \"fixed\", ms = {ms} }}\n"
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "scenario set");
}

/// Sends an asynchronous SSBTEK question (TNS only) through `node`; its corr.id.
async fn ask_asynch(stack: &Stack, node: &DemoNode) -> String {
    let q = question("191212121212", SUNDSVALL, &[relay_ssbtek::Slot::Tns], false);
    let spec = LabelSpec::asynch(SUNDSVALL, NODE_ORG, SSBTEK_PRODUCT, 1, "request");
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", node.url))
        .header("Content-Type", "message/rfc822")
        .body(shs_message(&spec.to_xml(), &[("text/xml", &q)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    spec.corr_id
}

/// How many replies to `corr` wait in Sundsvall's outbox (through `node`).
async fn replies(stack: &Stack, node: &DemoNode, corr: &str) -> usize {
    let r = list(stack, node, SUNDSVALL).await;
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    xml.split("<message ")
        .skip(1)
        .filter(|m| m.contains(&format!("corr.id=\"{corr}\"")) && m.contains("reply"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_restarted_while_the_other_processes_a_question_leaves_it_alone() {
    let (mut stack, [one, _]) = two_nodes_on(&postgres_url(), |o| {
        o.store_extra.push_str("lease_s = 3\n");
        o.provider_timeout_ms = Some(30_000);
        o.deadline_base_ms = Some(30_000);
    })
    .await;
    slow_tns(&stack, 10_000).await;
    let corr = ask_asynch(&stack, &one).await;
    // Node 1 is now waiting for TNS; node 2 restarts meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack
        .demo
        .as_mut()
        .unwrap()
        .kill("shs-relay-node2")
        .await
        .unwrap();
    stack.demo.as_mut().unwrap().restart_node(2).await.unwrap();
    let [one, two] = nodes(&stack);

    let deadline = Instant::now() + Duration::from_secs(90);
    while replies(&stack, &two, &corr).await == 0 {
        assert!(Instant::now() < deadline, "no reply");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Long enough for a second answer through TNS to have come.
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        replies(&stack, &one, &corr).await,
        1,
        "exactly one reply: the restarted node took nothing of a live node's work"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_processing_has_its_work_finished_by_the_other_within_its_lease() {
    let (mut stack, [one, two]) = two_nodes_on(&postgres_url(), |o| {
        o.store_extra.push_str("lease_s = 3\n");
        o.provider_timeout_ms = Some(30_000);
        o.deadline_base_ms = Some(30_000);
    })
    .await;
    slow_tns(&stack, 5_000).await;
    let corr = ask_asynch(&stack, &one).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack
        .demo
        .as_mut()
        .unwrap()
        .kill("shs-relay")
        .await
        .unwrap();
    let killed = Instant::now();

    // Node 2 takes the question over once node 1's lease (3 s) has run out,
    // asks TNS (5 s) and replies: no restart of node 1 needed.
    let deadline = killed + Duration::from_secs(60);
    while replies(&stack, &two, &corr).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the dead node's question was never answered"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "answered by node 2 {:?} after node 1 died",
        killed.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(replies(&stack, &two, &corr).await, 1, "exactly one reply");
    stack.stop().await;
}

/// The tx.ids waiting in `org`'s outbox (through `node`).
async fn waiting(stack: &Stack, node: &DemoNode, org: &str) -> Vec<String> {
    let r = list(stack, node, org).await;
    assert_eq!(r.status(), 200);
    r.text()
        .await
        .unwrap()
        .split("tx.id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_owned))
        .collect()
}

fn is_quota(r: &reqwest::Response) -> bool {
    r.status() == 400 && r.headers().get("x-shs-errorcode").is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_senders_quota_holds_across_nodes_and_restarts() {
    let (mut stack, [one, two]) = two_nodes_on(&postgres_url(), |o| {
        o.mailbox_extra.push_str("max_messages_per_sender = 2\n");
    })
    .await;
    // Two messages through node 1 fill Sundsvall's quota; node 2 knows it.
    for _ in 0..2 {
        assert_eq!(
            send_direct(&stack, &one, SUNDSVALL, STOCKHOLM)
                .await
                .status(),
            202
        );
    }
    let r = send_direct(&stack, &two, SUNDSVALL, STOCKHOLM).await;
    assert!(is_quota(&r), "full at node 2 too: {}", r.status());
    let text = r.text().await.unwrap_or_default();
    assert!(text.contains("QUOTA"), "{text}");

    // Stockholm fetches and acknowledges one through node 2: room at node 1.
    let deadline = Instant::now() + Duration::from_secs(30);
    let tx = loop {
        if let Some(tx) = waiting(&stack, &two, STOCKHOLM).await.into_iter().next() {
            break tx;
        }
        assert!(Instant::now() < deadline, "nothing listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let r = stack
        .client(STOCKHOLM)
        .get(format!("{}/shs/ds/{STOCKHOLM}/{tx}", two.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drained(r).await;
    let r = stack
        .client(STOCKHOLM)
        .post(format!("{}/shs/ds/{STOCKHOLM}/{tx}?action=ack", two.url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        send_direct(&stack, &one, SUNDSVALL, STOCKHOLM)
            .await
            .status(),
        202,
        "an acknowledgement at node 2 frees the quota at node 1"
    );

    // Both nodes restarted: the quota is still full.
    for name in ["shs-relay", "shs-relay-node2"] {
        stack.demo.as_mut().unwrap().kill(name).await.unwrap();
    }
    for n in [1, 2] {
        stack.demo.as_mut().unwrap().restart_node(n).await.unwrap();
    }
    let [one, two] = nodes(&stack);
    for node in [&one, &two] {
        let r = send_direct(&stack, node, SUNDSVALL, STOCKHOLM).await;
        assert!(is_quota(&r), "a restart forgot the quota: {}", r.status());
    }
    // Another sender is not affected.
    assert_eq!(
        send_direct(&stack, &two, GOTEBORG, STOCKHOLM)
            .await
            .status(),
        202
    );
    stack.stop().await;
}

/// What `org`'s outbox lists (through `node`), as the message-list XML.
async fn listed(stack: &Stack, node: &DemoNode, org: &str) -> String {
    let r = list(stack, node, org).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_tx_id_from_two_organisations_at_once_is_two_messages_each_confirmed() {
    let (stack, [one, two]) = two_nodes_on(&postgres_url(), |_| {}).await;
    let tx = uuid::Uuid::new_v4().to_string();
    let send = |node: DemoNode, from: &'static str| {
        let mut spec = LabelSpec::asynch(from, STOCKHOLM, DIRECT_PRODUCT, 1, "event");
        spec.tx_id = tx.clone();
        let corr = spec.corr_id.clone();
        let body = shs_message(
            &spec.to_xml(),
            &[("text/plain", format!("from {from}").as_bytes())],
        );
        let client = stack.client(from);
        async move {
            let r = client
                .post(format!("{}/shs/rs", node.url))
                .header("Content-Type", "message/rfc822")
                .body(body)
                .send()
                .await
                .expect("the node answers a send");
            (corr, r)
        }
    };
    // At once, through both nodes.
    let ((corr_s, a), (corr_g, b)) =
        tokio::join!(send(one.clone(), SUNDSVALL), send(two.clone(), GOTEBORG));
    for r in [&a, &b] {
        assert_eq!(r.status(), 202);
        assert_eq!(r.headers()["x-shs-duplicatemsg"], "no");
    }
    assert_ne!(a.headers()["x-shs-localid"], b.headers()["x-shs-localid"]);

    // Both wait in Stockholm's outbox, each with its own sender.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let xml = listed(&stack, &two, STOCKHOLM).await;
        if xml.matches(&format!("tx.id=\"{tx}\"")).count() == 2 {
            assert!(xml.contains(SUNDSVALL) && xml.contains(GOTEBORG), "{xml}");
            break;
        }
        assert!(Instant::now() < deadline, "not both listed: {xml}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Stockholm fetches and acknowledges by tx.id, one message at a time,
    // through alternating nodes: each sender's message once.
    let mut bodies = Vec::new();
    for (fetch_at, ack_at) in [(&one, &two), (&two, &one)] {
        let r = stack
            .client(STOCKHOLM)
            .get(format!("{}/shs/ds/{STOCKHOLM}/{tx}", fetch_at.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        bodies.push(r.text().await.unwrap());
        let r = stack
            .client(STOCKHOLM)
            .post(format!("{}/shs/ds/{STOCKHOLM}/{tx}?action=ack", ack_at.url))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let from = |org: &str| {
        bodies
            .iter()
            .filter(|b| b.contains(&format!("from {org}")))
            .count()
    };
    assert_eq!((from(SUNDSVALL), from(GOTEBORG)), (1, 1), "{bodies:?}");

    // Each sender gets the confirm of its own message.
    for (org, corr) in [(SUNDSVALL, &corr_s), (GOTEBORG, &corr_g)] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let xml = listed(&stack, &one, org).await;
            if xml.contains(&format!("corr.id=\"{corr}\"")) {
                break;
            }
            assert!(Instant::now() < deadline, "no confirm for {org}: {xml}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    stack.stop().await;
}
