//! `kill -9` of a node: a second process (this test binary, started again as a
//! "node") uploads a message slowly, or holds a fetch lock, and is killed with
//! SIGKILL. No partial message becomes visible, no key or chunk is left after
//! the sweep, the
//! surviving node keeps serving, and the dead node's fetch lock expires after its
//! lease.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::TimeDelta;
use relay_mailbox::{CHUNK_SIZE, ListFilter, MailboxStore, MessageState, PutOutcome};
use relay_store::{PgStore, Store};
use support::*;

const CHILD_SCHEMA: &str = "SHS_STORE_TEST_CHILD_SCHEMA";
const CHILD_ROLE: &str = "SHS_STORE_TEST_CHILD_ROLE";
const CHILD_TX: &str = "SHS_STORE_TEST_CHILD_TX";

/// Not a test of its own: the "node" process the tests below start and kill.
/// Run directly (without their environment) it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_node() {
    let (Ok(schema), Ok(role), Ok(tx_id)) = (
        std::env::var(CHILD_SCHEMA),
        std::env::var(CHILD_ROLE),
        std::env::var(CHILD_TX),
    ) else {
        return;
    };
    let kek = std::sync::Arc::new(
        relay_mailbox::KeyFile::open(std::env::var("SHS_STORE_TEST_CHILD_KEK").unwrap()).unwrap(),
    );
    let mut o = pg_options(&schema);
    o.clock = std::sync::Arc::new(relay_mailbox::ManualClock::new(t0()));
    let node = PgStore::open(o, kek).await.unwrap();
    match role.as_str() {
        "upload" => {
            let mut l = label("1111111111");
            l.tx_id = tx_id;
            let body = Stalling {
                left: 5 * CHUNK_SIZE + 100,
                announce: Some("streaming"),
            };
            let _ = node.put(l, body).await;
        }
        "fetch" => {
            let h = node.fetch(&outbox("1111111111"), &tx_id).await.unwrap();
            println!("locked");
            std::mem::forget(h);
            std::future::pending::<()>().await;
        }
        other => panic!("unknown role {other}"),
    }
}

/// A node process, killed (SIGKILL) when dropped, so a failing test leaves none.
struct NodeProcess(std::process::Child);

impl NodeProcess {
    fn kill_9(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this binary as a node in `role` and waits for its `ready_line`.
fn spawn_node(c: &Cluster, schema: &str, role: &str, tx_id: &str, ready_line: &str) -> NodeProcess {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_node",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_SCHEMA, schema)
        .env(CHILD_ROLE, role)
        .env(CHILD_TX, tx_id)
        .env("SHS_STORE_TEST_CHILD_KEK", c.kek_file.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = NodeProcess(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            // libtest may print "test child_node ... " on the same line first.
            Some(Ok(line)) if line.trim().ends_with(ready_line) => break,
            Some(_) => continue,
            None => panic!("the child node ended before saying {ready_line:?}"),
        }
    }
    child
}

async fn count(schema: &str, table: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_upload_leaves_nothing_and_the_other_keeps_serving() {
    let c = Cluster::postgres().await;
    let Engine::Postgres { schema } = &c.engine else {
        unreachable!()
    };
    let schema = schema.clone();
    let tx_id = tx();
    let child = spawn_node(&c, &schema, "upload", &tx_id, "streaming");
    // The upload is under way in the other process: nothing of it is visible.
    assert!(c.a().get_meta(&tx_id).await.unwrap().is_none());
    child.kill_9();

    // The upload held no transaction: what it wrote stays invisible (no
    // message row), and the sweeper removes it once no upload could still be
    // running.
    assert_eq!(count(&schema, "mailbox_messages").await, 0);
    assert!(c.a().get_meta(&tx_id).await.unwrap().is_none());
    let later = t0() + TimeDelta::hours(2);
    assert!(
        c.a().sweep(later).await.unwrap().is_empty(),
        "no message expired"
    );
    let left = (
        count(&schema, "mailbox_keys").await,
        count(&schema, "mailbox_chunks").await,
        count(&schema, "mailbox_messages").await,
    );
    assert_eq!(
        left,
        (0, 0, 0),
        "keys, chunks, messages left by the dead node after the sweep"
    );

    // The surviving node serves, and the sender's retry of the same tx.id is stored.
    let mut l = label("1111111111");
    l.tx_id = tx_id.clone();
    assert!(matches!(
        c.a().put(l, &b"retried"[..]).await.unwrap(),
        PutOutcome::Stored { .. }
    ));
    c.a()
        .mark_processed(&tx_id, MessageState::Received)
        .await
        .unwrap();
    let mut h = c.a().fetch(&outbox("1111111111"), &tx_id).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), b"retried");
    h.complete().await.unwrap();
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fetch_lock_of_a_killed_node_expires_after_its_lease() {
    let c = Cluster::postgres().await;
    let Engine::Postgres { schema } = &c.engine else {
        unreachable!()
    };
    let schema = schema.clone();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    c.a().put(l, &b"waiting"[..]).await.unwrap();
    c.a()
        .mark_processed(&tx_id, MessageState::Received)
        .await
        .unwrap();

    let child = spawn_node(&c, &schema, "fetch", &tx_id, "locked");
    child.kill_9();

    let survivor: Store = c.node().await;
    let ob = outbox("1111111111");
    assert!(
        survivor
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        survivor
            .fetch(&ob, &tx_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let lease = Duration::from_secs(3600);
    assert_eq!(survivor.release_stale_fetches(lease).await.unwrap(), 0);
    c.clock.advance(TimeDelta::hours(1));
    assert_eq!(survivor.release_stale_fetches(lease).await.unwrap(), 1);
    let mut h = survivor.fetch(&ob, &tx_id).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), b"waiting");
    h.complete().await.unwrap();
    c.finish().await;
}
