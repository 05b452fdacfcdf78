//! The operators' decisions with two relay nodes on one PostgreSQL store
//! (`shs-relay demo --nodes 2 --postgres URL`) and with one node on the
//! embedded store (issue 25): admin input is checked before anything is stored;
//! a stored record a node cannot read is skipped, never a reason to stop
//! following the others or to refuse to start; ELT mandates and accepted ELT
//! reports live in the store, so what one node decided or accepted holds at the
//! other.
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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use relay_demo::{DemoNode, ELT_ANORDNARE, ELT_VENDOR, NODE_ORG, PING_PRODUCT};
use shs_tests::*;

const STOCKHOLM: &str = "2120000142";
const SUNDSVALL: &str = "2120002411";

fn postgres_url() -> String {
    std::env::var("SHS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
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
    assert_eq!(nodes(&stack).len(), 2);
    stack
}

fn nodes(stack: &Stack) -> Vec<DemoNode> {
    stack
        .demo()
        .info
        .relays
        .clone()
        .expect("demo.json lists the relays")
}

fn both(stack: &Stack) -> [DemoNode; 2] {
    <[DemoNode; 2]>::try_from(nodes(stack)).unwrap()
}

async fn ping(stack: &Stack, url: &str, from: &str) -> reqwest::Response {
    let spec = LabelSpec::synch_request(from, NODE_ORG, PING_PRODUCT, 1);
    let body = shs_message(&spec.to_xml(), &[("text/plain", b"ping")]);
    stack
        .client(from)
        .post(format!("{url}/shs/rs"))
        .header("Content-Type", "message/rfc822")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn refused(r: &reqwest::Response) -> bool {
    r.headers().get("x-shs-errorcode").is_some()
}

/// An admin POST: its status and text.
async fn admin_post(admin: &str, path: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{admin}{path}"))
        .header("X-SHS-Admin", "1")
        .header("X-Operator", "test-operator")
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn admin_json(admin: &str, path: &str) -> serde_json::Value {
    reqwest::get(format!("{admin}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits (generously: a loaded machine) until `from` is refused at `url`;
/// how long it took.
async fn until_refused(stack: &Stack, url: &str, from: &str, what: &str) -> Duration {
    let started = Instant::now();
    while !refused(&ping(stack, url, from).await) {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// The relay configuration a node runs with.
fn config_of(path: &Path) -> relay_server::config::Config {
    relay_server::config::Config::load(path).expect("the demo's relay configuration loads")
}

/// A client of the demo's database schema (the nodes' `[store]`).
async fn database(stack: &Stack) -> (tokio_postgres::Client, String) {
    let config = config_of(&stack.demo().info.relay.config);
    let schema = config
        .store
        .schema
        .expect("the demo uses a schema of its own");
    let (client, conn) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .expect("the test database answers");
    tokio::spawn(conn);
    (client, schema)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_or_unknown_product_is_refused_and_later_suspensions_still_reach_node_2() {
    let stack = two_nodes_with(|_| {}).await;
    let [one, two] = both(&stack);

    for (query, names) in [
        (format!("org={STOCKHOLM}&product="), "product: empty"),
        (format!("org={STOCKHOLM}&product=SSBTEK"), "\"SSBTEK\""),
        (format!("org={STOCKHOLM}&product=nothing"), "\"nothing\""),
        ("org=12345&product=ssbtek".to_owned(), "org: not a valid"),
        ("product=ssbtek".to_owned(), "org=ORGANISATIONSNUMMER"),
    ] {
        let (status, text) = admin_post(&one.admin, &format!("/admin/suspend?{query}")).await;
        assert_eq!(status, 400, "{query}: {text}");
        assert!(
            text.contains(names),
            "{query}: the refusal names it: {text}"
        );
        assert!(!text.contains("12345"), "an invalid number is not repeated");
    }
    for (path, names) in [
        (
            format!("/admin/withdraw?org={STOCKHOLM}&provider=XX"),
            "provider",
        ),
        (
            format!("/admin/elt/revoke-mandate?vendor={ELT_VENDOR}&anordnare=1"),
            "anordnare: not a valid",
        ),
        (
            "/admin/elt/suspend-anordnare?org=".to_owned(),
            "org: not a valid",
        ),
    ] {
        let (status, text) = admin_post(&one.admin, &path).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains(names), "{path}: {text}");
    }
    let listed = admin_json(&two.admin, "/admin/suspensions").await;
    assert_eq!(listed, serde_json::json!([]), "nothing was stored");

    // A valid product works, and the next suspension reaches node 2.
    let (status, text) = admin_post(
        &one.admin,
        &format!("/admin/suspend?org={SUNDSVALL}&product=ssbtek"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = admin_post(&one.admin, &format!("/admin/suspend?org={STOCKHOLM}")).await;
    assert_eq!(status, 200);
    let took = until_refused(
        &stack,
        &two.url,
        STOCKHOLM,
        "node 2 still serves a caller suspended at node 1",
    )
    .await;
    eprintln!("suspension seen at node 2 after {took:?}");
    let listed = admin_json(&two.admin, "/admin/suspensions").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"org": SUNDSVALL, "product": "ssbtek"})),
        "{listed}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rows_in_the_database_are_skipped_on_follow_and_on_start() {
    let mut stack = two_nodes_with(|_| {}).await;
    let [one, two] = both(&stack);
    let (db, schema) = database(&stack).await;
    // Rows no admin call can write any longer: an empty and an unknown product,
    // an invalid organisation number, a mandate naming one.
    db.batch_execute(&format!(
        "INSERT INTO {schema}.suspensions (org, scope) VALUES \
           ('{SUNDSVALL}', 'product:'), ('{SUNDSVALL}', 'product:SSBTEK'), ('12345', '*'); \
         INSERT INTO {schema}.elt_mandates (vendor, anordnare, granted) \
           VALUES ('{ELT_VENDOR}', '1', false);"
    ))
    .await
    .unwrap();

    admin_post(&one.admin, &format!("/admin/suspend?org={STOCKHOLM}")).await;
    until_refused(
        &stack,
        &two.url,
        STOCKHOLM,
        "a bad row stopped node 2 from following",
    )
    .await;
    let status = admin_json(&two.admin, "/admin/status").await;
    assert_eq!(status["decisions"]["shared"], true, "{status}");
    assert_eq!(status["decisions"]["unreadable"], 4, "{status}");
    assert!(
        status["decisions"]["age_s"].as_f64().unwrap() < 10.0,
        "{status}"
    );
    let metrics = reqwest::get(format!("{}/metrics", two.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("shs_relay_decisions_unreadable_records 4"),
        "counted"
    );
    let logs = stack.all_logs();
    assert!(logs.contains("a stored decision cannot be read"), "logged");

    // Node 2 starts again with the rows still there, and the suspension holds.
    stack
        .demo
        .as_mut()
        .unwrap()
        .kill("shs-relay-node2")
        .await
        .unwrap();
    stack.demo.as_mut().unwrap().restart_node(2).await.unwrap();
    let [_, two] = both(&stack);
    assert!(
        refused(&ping(&stack, &two.url, STOCKHOLM).await),
        "loaded at start"
    );
    assert_eq!(
        ping(&stack, &two.url, SUNDSVALL).await.status(),
        200,
        "the unreadable rows suspend nobody"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_record_in_the_embedded_store_is_skipped_at_start() {
    let mut stack = Stack::start_with(|o| o.without_prober()).await;
    let (status, _) = admin_post(
        &stack.demo().info.admin["url"],
        &format!("/admin/suspend?org={STOCKHOLM}"),
    )
    .await;
    assert_eq!(status, 200);
    let config = config_of(&stack.demo().info.relay.config);
    let state = relay_store_state_file(&config.mailbox.expect("[mailbox]").store);
    stack.kill_relay().await;
    {
        let db = redb::Database::create(&state).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let table: redb::TableDefinition<(&str, &str), i64> =
                redb::TableDefinition::new("suspensions");
            let mut t = txn.open_table(table).unwrap();
            t.insert((SUNDSVALL, "product:"), 0).unwrap();
            t.insert(("12345", "*"), 0).unwrap();
        }
        txn.commit().unwrap();
    }
    stack.restart_relay().await;
    let url = stack.relay_url().to_owned();
    assert!(
        refused(&ping(&stack, &url, STOCKHOLM).await),
        "the readable suspension is loaded"
    );
    assert_eq!(ping(&stack, &url, SUNDSVALL).await.status(), 200);
    let metrics = reqwest::get(format!("{}/metrics", stack.demo().info.admin["url"]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("shs_relay_decisions_unreadable_records 2"),
        "counted"
    );
    stack.stop().await;
}

/// The redb state file beside the mailbox (`relay_store::state_path`).
fn relay_store_state_file(mailbox: &Path) -> PathBuf {
    let mut p = mailbox.as_os_str().to_owned();
    p.push(".state");
    p.into()
}

/// `shs --demo DIR [--url URL] ARGS...`: its exit code and output.
fn shs(stack: &Stack, url: Option<&str>, args: &[&str]) -> (Option<i32>, String) {
    let mut c = shs_command(stack);
    if let Some(u) = url {
        c.args(["--url", u]);
    }
    let o = c.args(args).output().unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn example_report(stack: &Stack, dir: &Path, name: &str) -> String {
    let out = dir.join(name).display().to_string();
    let (code, text) = shs(
        stack,
        None,
        &["elt", "example", "--person", "19121212-1212", "--out", &out],
    );
    assert_eq!(code, Some(0), "{text}");
    out
}

/// ELT at 50 calls a second: the tests are about mandates and repeats.
fn fast_elt(o: &mut relay_demo::DemoOptions) {
    o.elt_calls_per_second = Some(50.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mandate_revoked_at_node_1_refuses_at_node_2_within_a_second() {
    let stack = two_nodes_with(fast_elt).await;
    let [one, two] = both(&stack);
    let dir = tempfile::tempdir().unwrap();
    let report = example_report(&stack, dir.path(), "report.xml");
    let (code, text) = shs(&stack, Some(&two.url), &["elt", "submit", "--in", &report]);
    assert_eq!(
        code,
        Some(0),
        "node 2 accepts under the configured mandate: {text}"
    );

    let pair = format!("vendor={ELT_VENDOR}&anordnare={ELT_ANORDNARE}");
    let (status, text) = admin_post(&one.admin, &format!("/admin/elt/revoke-mandate?{pair}")).await;
    assert_eq!(status, 200, "{text}");
    let revoked = Instant::now();
    loop {
        let listed = admin_json(&two.admin, "/admin/elt/mandates").await;
        if listed == serde_json::json!([]) {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(10),
            "node 2 still lists the revoked mandate: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("revocation seen at node 2 after {:?}", revoked.elapsed());
    let fresh = example_report(&stack, dir.path(), "fresh.xml");
    let (code, text) = shs(&stack, Some(&two.url), &["elt", "submit", "--in", &fresh]);
    assert_ne!(code, Some(0));
    assert!(text.contains("ELT-NO-MANDATE"), "{text}");

    // Granted again at node 2: node 1 lists it, and accepts.
    let (status, _) = admin_post(&two.admin, &format!("/admin/elt/grant-mandate?{pair}")).await;
    assert_eq!(status, 200);
    let granted = Instant::now();
    while admin_json(&one.admin, "/admin/elt/mandates").await == serde_json::json!([]) {
        assert!(
            granted.elapsed() < Duration::from_secs(10),
            "node 1 does not list the mandate granted at node 2"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, text) = shs(&stack, Some(&one.url), &["elt", "submit", "--in", &fresh]);
    assert_eq!(code, Some(0), "{text}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_through_node_2_of_a_report_accepted_at_node_1_gets_the_same_receipt() {
    let mut stack = two_nodes_with(fast_elt).await;
    let [one, two] = both(&stack);
    let dir = tempfile::tempdir().unwrap();
    let report = example_report(&stack, dir.path(), "report.xml");
    let (code, first) = shs(&stack, Some(&one.url), &["elt", "submit", "--in", &report]);
    assert_eq!(code, Some(0), "{first}");
    let tx = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("tx-id:"))
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|| panic!("no tx-id in {text}"))
    };

    // Försäkringskassan's adapter is down: only the relay's own record can
    // answer the repeat, and node 2 has it from the store.
    stack
        .demo
        .as_mut()
        .unwrap()
        .kill("shs-adapter-fk")
        .await
        .unwrap();
    let (code, again) = shs(&stack, Some(&two.url), &["elt", "submit", "--in", &report]);
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(tx(&again), tx(&first), "the original receipt");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_mandates_file_is_imported_once_and_a_corrupt_one_stops_the_start_naming_it() {
    let mut stack = Stack::start_with(|o| o.without_prober()).await;
    let admin = stack.demo().info.admin["url"].clone();
    let pair = format!("vendor={ELT_VENDOR}&anordnare={ELT_ANORDNARE}");
    let (status, _) = admin_post(&admin, &format!("/admin/elt/revoke-mandate?{pair}")).await;
    assert_eq!(status, 200);

    // The file grants the revoked pair and one more: the store's decision
    // stays, the new pair is imported.
    let file = stack.dir().join("old-mandates.json");
    let other = "5566778899";
    std::fs::write(
        &file,
        format!(
            "{{\"granted\": [[\"{ELT_VENDOR}\", \"{ELT_ANORDNARE}\"], [\"{ELT_VENDOR}\", \"{other}\"]], \"revoked\": []}}"
        ),
    )
    .unwrap();
    let config = stack.demo().info.relay.config.clone();
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        original.replacen(
            "[elt]\n",
            &format!("[elt]\nmandates_file = {:?}\n", file.display().to_string()),
            1,
        ),
    )
    .unwrap();
    for _ in 0..2 {
        stack.kill_relay().await;
        stack.restart_relay().await;
        let admin = stack.demo().info.admin["url"].clone();
        let listed = admin_json(&admin, "/admin/elt/mandates").await;
        assert_eq!(
            listed,
            serde_json::json!([{"vendor": ELT_VENDOR, "anordnare": other, "source": "admin"}]),
            "imported once; the revocation in the store stays"
        );
    }

    // A damaged file is never an empty set: the relay does not start, and
    // says which file.
    std::fs::write(&file, "{\"granted\": [[\"5566770011\"").unwrap();
    stack.kill_relay().await;
    // (It prints its addresses before it loads the store, then exits.)
    let _ = stack.demo.as_mut().unwrap().restart_relay().await;
    let named = format!("elt.mandates_file {}", file.display());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stack.all_logs().contains(&named) {
        assert!(
            Instant::now() < deadline,
            "no error naming the file: {}",
            stack.all_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin = stack.demo().info.admin["url"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{admin}/livez")).await.is_ok() {
        assert!(Instant::now() < deadline, "the relay keeps running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stop().await;
}
