//! Provider replicas end to end: CSN's adapter runs as two replicas (the same
//! `shs-adapter-csn` binary with two configurations on two ports) and the relay
//! lists both (`endpoints = [...]`). With one replica's port closed every call
//! is answered through the other, and a rolling restart of the replicas under
//! steady load loses no CSN slot.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use relay_ssbtek::Slot;
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const TOLVAN: &str = "191212121212";

async fn two_csn_replicas() -> Stack {
    Stack::start_with(|o| {
        o.replicas.insert("CSN".into(), 2);
    })
    .await
}

/// Asks about CSN once; what went wrong, unless CSN's slot holds data.
async fn csn_delivered(client: &reqwest::Client, url: &str) -> Result<(), String> {
    let question = question(TOLVAN, SUNDSVALL, &[Slot::Csn], false);
    let reply = ask_with(client, url, SUNDSVALL, &[question]).await;
    if reply.status != 200 {
        return Err(format!("HTTP {}: {:?}", reply.status, reply.errorcode));
    }
    let answer = &answers_of(&reply)[0];
    let csn = slot_xml(answer, "CSN");
    if csn.contains("<ssbt:data") {
        Ok(())
    } else {
        Err(csn.to_owned())
    }
}

/// `/admin/providers` for CSN: (url, healthy) of each replica.
async fn csn_endpoints(stack: &Stack) -> Vec<(String, bool)> {
    let admin = &stack.demo().info.admin["url"];
    let rows: serde_json::Value = reqwest::get(format!("{admin}/admin/providers"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csn = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "CSN")
        .expect("a CSN row")
        .clone();
    csn["endpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("no endpoints in {csn}"))
        .iter()
        .map(|e| {
            (
                e["url"].as_str().unwrap().to_owned(),
                e["healthy"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Waits (up to a minute) until the relay sees every CSN replica healthy.
async fn until_all_healthy(stack: &Stack) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let endpoints = csn_endpoints(stack).await;
        if endpoints.iter().all(|(_, healthy)| *healthy) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replicas not healthy: {endpoints:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn demo(stack: &mut Stack) -> &mut relay_demo::Demo {
    stack.demo.as_mut().expect("running")
}

#[tokio::test(flavor = "multi_thread")]
async fn with_one_replicas_port_closed_every_call_is_answered_by_the_other() {
    let mut stack = two_csn_replicas().await;
    let replicas = stack
        .demo()
        .info
        .providers
        .iter()
        .find(|p| p.id == "CSN")
        .unwrap()
        .replicas
        .clone();
    assert_eq!(replicas.len(), 2, "{replicas:?}");
    demo(&mut stack).stop_replica("CSN", 2).await.unwrap();

    // Longer than the pool leaves an unreachable replica out of the rotation
    // (3 s), so that calls go to the closed port again and are retried.
    let client = stack.client(SUNDSVALL);
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(8) {
        if let Err(e) = csn_delivered(&client, stack.relay_url()).await {
            panic!("call {i}: CSN's slot not delivered: {e}");
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        csn_endpoints(&stack).await,
        [(replicas[0].clone(), true), (replicas[1].clone(), false)]
    );

    // Back at the same address, it is taken into the rotation again.
    demo(&mut stack).start_replica("CSN", 2).await.unwrap();
    until_all_healthy(&stack).await;
    csn_delivered(&client, stack.relay_url()).await.unwrap();
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_of_the_replicas_under_steady_load_loses_no_slot() {
    let mut stack = two_csn_replicas().await;
    until_all_healthy(&stack).await;

    // Steady load: two callers, one question after another, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let client = stack.client(SUNDSVALL);
            let url = stack.relay_url().to_owned();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut results = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    results.push(csn_delivered(&client, &url).await);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                results
            })
        })
        .collect();

    // One replica after the other: stopped the way a deployment stops it
    // (SIGTERM), started again, and back in the rotation before the next.
    for n in [1, 2] {
        tokio::time::sleep(Duration::from_secs(2)).await;
        demo(&mut stack).stop_replica("CSN", n).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        demo(&mut stack).start_replica("CSN", n).await.unwrap();
        until_all_healthy(&stack).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);

    let mut answered = 0;
    for caller in callers {
        for (i, result) in caller.await.unwrap().into_iter().enumerate() {
            if let Err(e) = result {
                panic!("call {i}: CSN's slot not delivered during the restart: {e}");
            }
            answered += 1;
        }
    }
    assert!(answered >= 10, "steady load: only {answered} calls");
    let logs = stack.all_logs();
    assert!(!logs.contains(TOLVAN), "no personal data in the logs");
    stack.stop().await;
}
