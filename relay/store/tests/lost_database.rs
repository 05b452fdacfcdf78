//! A node that loses its database: every operation fails with an "unavailable"
//! error (never a hang, never a wrong answer), readiness says no, and when the
//! database is back the same store handle works again by itself.
//!
//! The loss is real: the store talks to PostgreSQL through a TCP relay in this
//! test, which drops every connection and refuses new ones while "cut".

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use relay_ident::Organisationsnummer;
use relay_mailbox::{ListFilter, MailboxStore, MessageState, PutOutcome};
use relay_store::{PgStore, ProductName, Scope, SharedState, Store};
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP relay to the test database that can be cut and restored.
struct Line {
    port: u16,
    cut: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    open_connections: Arc<AtomicUsize>,
}

impl Line {
    async fn open(target: (String, u16)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let open_connections = Arc::new(AtomicUsize::new(0));
        let (c, g, n) = (cut.clone(), generation.clone(), open_connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                // Subscribe before looking at the flag: a cut after this point
                // is seen as a change, a cut before it as the flag.
                let mut cut_now = g.subscribe();
                if c.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let n = n.clone();
                n.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut_now.changed() => {}
                        }
                    }
                    n.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            port,
            cut,
            generation,
            open_connections,
        }
    }

    /// Drops every open connection and refuses new ones; returns when every
    /// connection is closed.
    async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
        while self.open_connections.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_reported_unavailable_and_the_store_recovers_by_itself() {
    // The schema is created and migrated directly; the node under test goes
    // through the line.
    let c = Cluster::postgres().await;
    let Engine::Postgres { schema } = &c.engine else {
        unreachable!()
    };
    let config: tokio_postgres::Config = postgres_url().parse().unwrap();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let line = Line::open((host, port)).await;
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or("test");
    let mut options = pg_options(schema);
    options.url = format!("postgres://{user}{password}@127.0.0.1:{}/{db}", line.port);
    options.statement_timeout = Duration::from_secs(2);
    options.clock = c.clock.clone();
    let node = Store::Postgres(PgStore::open(options, c.kek.clone()).await.unwrap());

    let sundsvall = Organisationsnummer::parse("2120002411").unwrap();
    let kept = label("1111111111");
    node.put(kept.clone(), &b"kept"[..]).await.unwrap();
    node.mark_processed(&kept.tx_id, MessageState::Received)
        .await
        .unwrap();
    node.suspend(sundsvall, &Scope::All).await.unwrap();
    assert!(node.ready().await);

    line.cut().await;
    let started = std::time::Instant::now();
    assert!(!node.ready().await, "not ready without its database");
    let put = node
        .put(label("1111111111"), &b"lost"[..])
        .await
        .unwrap_err();
    assert!(put.is_unavailable(), "{put}");
    assert!(!put.is_caller_fault());
    let list = node
        .list(&outbox("1111111111"), &ListFilter::default())
        .await
        .unwrap_err();
    assert!(list.is_unavailable(), "{list}");
    let check = node
        .is_suspended(sundsvall, ProductName::Ssbtek)
        .await
        .unwrap_err();
    assert!(check.is_unavailable(), "{check}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "failures come within the configured timeouts, not never"
    );

    line.restore();
    let mut ready = false;
    for _ in 0..100 {
        if node.ready().await {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "ready again within 20 s of the database coming back");
    assert!(
        node.is_suspended(sundsvall, ProductName::Ssbtek)
            .await
            .unwrap()
    );
    let listed = node
        .list(&outbox("1111111111"), &ListFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tx_id(), kept.tx_id);
    assert!(matches!(
        node.put(label("1111111111"), &b"after"[..]).await.unwrap(),
        PutOutcome::Stored { .. }
    ));
    c.finish().await;
}
