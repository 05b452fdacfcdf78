//! The mailbox key ring shared across nodes (issue 28, item 2) and
//! `shs-relay store verify` (item 7), end to end with real relay processes:
//!
//! - a node whose key file is fresh or missing while stored messages use a key
//!   refuses to start, naming the key id;
//! - a list holding a message whose key this node lacks lists the others (the
//!   message is skipped and counted), and a send to that outbox still works;
//! - on two PostgreSQL nodes: add → activate (refused while node 2 lacks the
//!   key) → rewrap → retire (refused while a message uses the key), every
//!   message still fetchable through both nodes;
//! - `store verify` on redb and on PostgreSQL: clean on a sound store, and it
//!   finds a planted plaintext and a message whose key is missing.
//!
//! PostgreSQL: `SHS_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use relay_demo::{DIRECT_PRODUCT, DemoNode};
use serde_json::{Value, json};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const STOCKHOLM: &str = "2120000142";

fn postgres_url() -> String {
    std::env::var("SHS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn shs_relay() -> PathBuf {
    relay_demo::default_bin_dir()
        .expect("bin dir")
        .join("shs-relay")
}

/// Sends one asynchronous message from Sundsvall to Stockholm through `url`
/// whose body is `marker`; its tx.id.
async fn send(stack: &Stack, url: &str, marker: &str) -> String {
    let spec = LabelSpec::asynch(SUNDSVALL, STOCKHOLM, DIRECT_PRODUCT, 1, "event");
    let message = shs_message(&spec.to_xml(), &[("text/plain", marker.as_bytes())]);
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{url}/shs/rs"))
        .body(message)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    spec.tx_id.clone()
}

/// Stockholm's list through `url`, once every tx.id in `wanted` is in it
/// (up to a minute: a message is listed once processed).
async fn listed(stack: &Stack, url: &str, wanted: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = stack
            .client(STOCKHOLM)
            .get(format!("{url}/shs/ds/{STOCKHOLM}"))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let xml = r.text().await.unwrap();
        assert_eq!(status, 200, "the list failed: {xml}");
        if wanted.iter().all(|tx| xml.contains(tx)) {
            return xml;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = stack
                .all_logs()
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .map(str::to_owned)
                .collect();
            panic!("not listed: {wanted:?} in {xml}\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Fetches `tx` through `url` without acknowledging it; its body.
async fn fetch(stack: &Stack, url: &str, tx: &str) -> String {
    let r = stack
        .client(STOCKHOLM)
        .get(format!("{url}/shs/ds/{STOCKHOLM}/{tx}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "fetch {tx}");
    String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned()
}

async fn admin(admin: &str, path: &str, body: Value) -> (u16, String) {
    let client = reqwest::Client::new();
    let r = if path == "/admin/keys" {
        client.get(format!("{admin}{path}")).send().await.unwrap()
    } else {
        client
            .post(format!("{admin}{path}"))
            .header("X-SHS-Admin", "1")
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Polls `/admin/keys` at `at` until `ok` holds (up to a minute).
async fn until_status(at: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, text) = admin(at, "/admin/keys", json!({})).await;
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn key_file_of(config: &Path) -> PathBuf {
    relay_server::config::Config::load(config)
        .unwrap()
        .mailbox
        .expect("[mailbox]")
        .key_file
}

fn store_of(config: &Path) -> PathBuf {
    relay_server::config::Config::load(config)
        .unwrap()
        .mailbox
        .expect("[mailbox]")
        .store
}

/// `shs-relay serve` from `config`, which must exit (fail) within a minute;
/// its stderr.
async fn refused_start(config: &Path) -> String {
    let child = tokio::process::Command::new(shs_relay())
        .args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the relay did not refuse to start within a minute (it started?)")
        .unwrap();
    assert!(!out.status.success(), "the relay started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `shs-relay store verify --config CONFIG`: (success, the JSON report).
fn verify(config: &Path) -> (bool, Value) {
    let out = std::process::Command::new(shs_relay())
        .args(["store", "verify", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

fn marker() -> String {
    // Long enough for several plaintext windows, varied enough to count.
    format!(
        "KEYRING-MARKER-{}-{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_with_a_fresh_or_missing_key_file_refuses_to_start_naming_the_key_in_use() {
    let mut stack = Stack::start().await;
    let config = stack.demo().info.relay.config.clone();
    let url = stack.relay_url().to_owned();
    let m = marker();
    let tx = send(&stack, &url, &m).await;
    listed(&stack, &url, &[&tx]).await;
    stack.kill_relay().await;

    let key_file = key_file_of(&config);
    let kept = key_file.with_extension("kept");
    std::fs::rename(&key_file, &kept).unwrap();

    // Missing: refused, naming key 1; no key file was created.
    let stderr = refused_start(&config).await;
    assert!(stderr.contains("mailbox key 1"), "{stderr}");
    assert!(!key_file.exists(), "the relay created a key file");

    // Fresh (another key under id 1): refused, naming key 1.
    relay_mailbox::KeyFile::create(&key_file).unwrap();
    let stderr = refused_start(&config).await;
    assert!(stderr.contains("mailbox key 1"), "{stderr}");

    // The right file back: it starts and the message is still there.
    std::fs::rename(&kept, &key_file).unwrap();
    stack.restart_relay().await;
    let url = stack.relay_url().to_owned();
    listed(&stack, &url, &[&tx]).await;
    assert!(fetch(&stack, &url, &tx).await.contains(&m));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_whose_key_is_missing_is_skipped_and_counted_and_store_verify_finds_plaintext() {
    let mut stack = Stack::start().await;
    let config = stack.demo().info.relay.config.clone();
    let at = stack.demo().info.admin["url"].clone();
    let url = stack.relay_url().to_owned();

    // A message under key 1, then key 2 added and activated (one node holds
    // it), a message under key 2, and key 1 active again.
    let (m1, m2) = (marker(), marker());
    let tx1 = send(&stack, &url, &m1).await;
    let (status, text) = admin(&at, "/admin/keys/add", json!({})).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["added"], 2);
    let (status, text) = admin(&at, "/admin/keys/activate", json!({"id": 2})).await;
    assert_eq!(status, 200, "{text}");
    let tx2 = send(&stack, &url, &m2).await;
    listed(&stack, &url, &[&tx1, &tx2]).await;
    let (status, text) = admin(&at, "/admin/keys/activate", json!({"id": 1})).await;
    assert_eq!(status, 200, "{text}");
    let v = until_status(&at, "messages per key", |v| {
        v["messages_per_key"]["1"] == 1 && v["messages_per_key"]["2"] == 1
    })
    .await;
    assert_eq!(v["active"], 1);

    // Key 2 leaves this node's file (as if it were never copied here).
    let key_file = key_file_of(&config);
    let original = std::fs::read_to_string(&key_file).unwrap();
    let without: String = original
        .lines()
        .filter(|l| !l.starts_with("2 "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&key_file, without).unwrap();
    let (status, text) = admin(&at, "/admin/reload", json!({})).await;
    assert_eq!(status, 200, "{text}");

    // The list still answers, with the message it can open.
    let xml = listed(&stack, &url, &[&tx1]).await;
    assert!(
        !xml.contains(&tx2),
        "a message it cannot open was listed: {xml}"
    );
    let metrics = reqwest::get(format!("{at}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let skips = metrics
        .lines()
        .find(|l| l.starts_with("shs_relay_mailbox_missing_key_skips_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no skip metric in\n{metrics}"));
    assert!(skips >= 1.0, "not counted: {skips}");
    assert!(!stack.all_logs().contains(&m2));
    // The outbox's quota check does not fail on it: a send still goes in.
    let m3 = marker();
    let tx3 = send(&stack, &url, &m3).await;
    listed(&stack, &url, &[&tx1, &tx3]).await;
    assert!(fetch(&stack, &url, &tx1).await.contains(&m1));

    // store verify (the relay stopped: redb's lock): key 2 missing → non-zero.
    stack.kill_relay().await;
    let (ok, report) = verify(&config);
    assert!(!ok, "{report:#}");
    assert_eq!(report["key_missing"][0][0], tx2.as_str(), "{report:#}");
    assert_eq!(report["key_missing"][0][1], 2, "{report:#}");
    assert_eq!(report["plaintext_found"], json!([]), "{report:#}");
    assert!(report["bytes_searched"].as_u64().unwrap() > 0);

    // The right key file back: clean.
    std::fs::write(&key_file, &original).unwrap();
    let (ok, report) = verify(&config);
    assert!(ok, "{report:#}");
    assert_eq!(report["messages"], 3, "{report:#}");

    // A planted plaintext inside the store's state file is found.
    let state = relay_store_state(&store_of(&config));
    {
        let db = redb::Database::create(&state).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("planted");
            let mut t = txn.open_table(table).unwrap();
            t.insert("x", format!("..{m3}..").as_bytes()).unwrap();
        }
        txn.commit().unwrap();
    }
    let (ok, report) = verify(&config);
    assert!(!ok, "{report:#}");
    let found = report["plaintext_found"].as_array().unwrap();
    assert!(
        found.iter().any(|f| f[0] == tx3.as_str()),
        "the planted plaintext was not found: {report:#}"
    );
    stack.stop().await;
}

fn relay_store_state(mailbox: &Path) -> PathBuf {
    let mut p = mailbox.as_os_str().to_owned();
    p.push(".state");
    p.into()
}

fn demo_mut(stack: &mut Stack) -> &mut relay_demo::Demo {
    stack.demo.as_mut().expect("running")
}

fn nodes(stack: &Stack) -> [DemoNode; 2] {
    <[DemoNode; 2]>::try_from(stack.demo().info.relays.clone().expect("relays")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_is_added_activated_rewrapped_and_retired_across_two_postgres_nodes() {
    let url = postgres_url();
    let mut stack = Stack::start_with(|o| {
        o.nodes = 2;
        o.postgres = Some(url.clone());
        o.without_prober();
        // Nodes report their keys and follow the active one every 2 s.
        o.store_extra = "lease_s = 6\n".to_owned();
    })
    .await;

    // Node 2 gets a key file of its own (a copy of node 1's), as on two machines.
    let [_, two] = nodes(&stack);
    demo_mut(&mut stack).kill("shs-relay-node2").await.unwrap();
    let file_one = key_file_of(&two.config);
    let file_two = file_one.with_file_name("kek-node2.key");
    std::fs::copy(&file_one, &file_two).unwrap();
    let text = std::fs::read_to_string(&two.config).unwrap();
    std::fs::write(&two.config, text.replace("kek.key\"", "kek-node2.key\"")).unwrap();
    assert_eq!(key_file_of(&two.config), file_two);
    demo_mut(&mut stack).restart_node(2).await.unwrap();
    let [one, two] = nodes(&stack);

    // Two messages under key 1.
    let (m1, m2) = (marker(), marker());
    let tx1 = send(&stack, &one.url, &m1).await;
    let tx2 = send(&stack, &two.url, &m2).await;
    listed(&stack, &one.url, &[&tx1, &tx2]).await;

    // Add key 2 at node 1; activating it is refused while node 2 lacks it.
    let (status, text) = admin(&one.admin, "/admin/keys/add", json!({})).await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = admin(&one.admin, "/admin/keys/activate", json!({"id": 2})).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("not held by every live node"), "{text}");

    // The file copied to node 2 and node 2 reloaded: activation goes through.
    std::fs::copy(&file_one, &file_two).unwrap();
    let (status, text) = admin(&two.admin, "/admin/reload", json!({})).await;
    assert_eq!(status, 200, "{text}");
    until_status(&one.admin, "node 2 reports key 2", |v| {
        v["live_nodes"]
            .as_array()
            .is_some_and(|n| n.len() == 2 && n.iter().all(|n| n["held"] == json!([1, 2])))
    })
    .await;
    let (status, text) = admin(&one.admin, "/admin/keys/activate", json!({"id": 2})).await;
    assert_eq!(status, 200, "{text}");
    until_status(&one.admin, "both nodes wrap with key 2", |v| {
        v["live_nodes"]
            .as_array()
            .is_some_and(|n| n.iter().all(|n| n["wraps_with"] == 2))
    })
    .await;

    // A new message is wrapped under key 2; the old ones still under key 1, so
    // retiring key 1 is refused.
    let m3 = marker();
    let tx3 = send(&stack, &two.url, &m3).await;
    listed(&stack, &one.url, &[&tx1, &tx2, &tx3]).await;
    let v = until_status(&one.admin, "messages per key", |v| {
        v["messages_per_key"]["2"].as_u64().is_some_and(|n| n >= 1)
    })
    .await;
    assert!(v["messages_per_key"]["1"].as_u64().unwrap() >= 2, "{v:#}");
    let (status, text) = admin(&one.admin, "/admin/keys/retire", json!({"id": 1})).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("rewrap"), "{text}");

    // Rewrap (at node 2, while node 1 serves), then retire.
    let (status, text) = admin(&two.admin, "/admin/keys/rewrap", json!({})).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["rewrapped"].as_u64().unwrap() >= 2, "{v:#}");
    assert!(v["messages_per_key"].get("1").is_none(), "{v:#}");
    let (status, text) = admin(&one.admin, "/admin/keys/retire", json!({"id": 1})).await;
    assert_eq!(status, 200, "{text}");
    let key_one_lines = std::fs::read_to_string(&file_one)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("1 "))
        .count();
    assert_eq!(key_one_lines, 0, "key 1 is still in node 1's key file");
    std::fs::copy(&file_one, &file_two).unwrap();
    let (status, text) = admin(&two.admin, "/admin/reload", json!({})).await;
    assert_eq!(status, 200, "{text}");

    // Every message is still listed and fetchable through both nodes.
    for node in [&one, &two] {
        listed(&stack, &node.url, &[&tx1, &tx2, &tx3]).await;
    }
    // (A fetched message is no longer listed: each is fetched once.)
    for (node, tx, m) in [(&one, &tx1, &m1), (&two, &tx2, &m2), (&one, &tx3, &m3)] {
        assert!(fetch(&stack, &node.url, tx).await.contains(m.as_str()));
    }
    let v = until_status(&two.admin, "the ring", |v| v["active"] == 2).await;
    assert_eq!(
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == 1)
            .map(|k| k["state"].clone()),
        Some(json!("retired")),
        "{v:#}"
    );

    // store verify beside the running nodes: clean; then a plaintext planted
    // in a mailbox table row is found.
    let (ok, report) = verify(&one.config);
    assert!(ok, "{report:#}");
    assert_eq!(report["per_key"]["2"], 3, "{report:#}");
    let schema = relay_server::config::Config::load(&one.config)
        .unwrap()
        .store
        .schema
        .expect("the demo's schema");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.mailbox_kek_nodes (node, held, wraps_with) \
                 VALUES ($1, '{{}}', 0)"
            ),
            &[&format!("planted {m2}")],
        )
        .await
        .unwrap();
    let (ok, report) = verify(&one.config);
    assert!(!ok, "{report:#}");
    let found = report["plaintext_found"].as_array().unwrap();
    assert!(
        found
            .iter()
            .any(|f| f[0] == tx2.as_str() && f[1] == "table mailbox_kek_nodes"),
        "{report:#}"
    );
    stack.stop().await;
}
