//! How much PostgreSQL work one asynchronous message costs: every message of
//! the wire protocol between a PostgreSQL store and the database is counted by
//! a proxy in between, per mailbox call, for the calls the relay makes for one
//! message sent, fetched and acknowledged (the `shs-bench --workload async`
//! round trip). The counts are deterministic (one pooled connection, statement
//! caches warm), so a change that adds a round trip or a commit to the hot
//! path fails here, not only in a timed bench.
//!
//! Run with `--nocapture` to see the table.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use relay_mailbox::{
    AckPolicy, MailboxStore, MessageState, PutOutcome, Quota, SequenceType, Which,
};
use relay_store::{PgStore, Store};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What crossed the wire during one call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    /// Times the client sent work while it waited for no answer: the round
    /// trips it waits for (pipelined statements share one; the `Close` of a
    /// dropped statement, sent without waiting, is none).
    flights: u64,
    /// Statements executed (`Execute` and simple `Query` messages).
    statements: u64,
    /// Statements parsed (`Parse`): zero for a cached prepared statement.
    parses: u64,
    /// Points where the server answers `ReadyForQuery` (`Sync`, `Query`).
    syncs: u64,
    /// Transactions that wrote rows and committed: one WAL flush each. A
    /// statement writes when its text does (see [`writes`]) and its command
    /// tag counts rows (a `WITH ... INSERT ... RETURNING` answers `SELECT n`).
    write_commits: u64,
}

impl std::ops::Sub for Counts {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self {
            flights: self.flights - o.flights,
            statements: self.statements - o.statements,
            parses: self.parses - o.parses,
            syncs: self.syncs - o.syncs,
            write_commits: self.write_commits - o.write_commits,
        }
    }
}

impl std::ops::Add for Counts {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            flights: self.flights + o.flights,
            statements: self.statements + o.statements,
            parses: self.parses + o.parses,
            syncs: self.syncs + o.syncs,
            write_commits: self.write_commits + o.write_commits,
        }
    }
}

#[derive(Default)]
struct Wire {
    counts: Counts,
    /// `Sync`s and `Query`s sent, not yet answered, oldest first: whether the
    /// client waits for the answer (false for the `Close` of a statement it
    /// dropped, which it sends without waiting).
    outstanding: std::collections::VecDeque<bool>,
    /// Work (not only `Close`) sent since the last `Sync`.
    work: bool,
    /// Whether each prepared statement, by name, writes (from its text).
    writes: std::collections::HashMap<Vec<u8>, bool>,
    /// Per `Sync` or `Query` outstanding: whether each statement executed in
    /// it writes, in order, until its `CommandComplete` or error.
    executed: std::collections::VecDeque<std::collections::VecDeque<bool>>,
    /// The statements executed since the last `Sync`.
    group: std::collections::VecDeque<bool>,
    /// The current transaction wrote a row.
    wrote: bool,
    /// The current transaction failed or was rolled back.
    failed: bool,
}

type Shared = Arc<Mutex<Wire>>;

/// A proxy on 127.0.0.1 in front of the test database; counts into `wire`.
async fn proxy(wire: Shared) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream_url: tokio_postgres::Config = postgres_url().parse().unwrap();
    let host = match &upstream_url.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".to_owned(),
    };
    let upstream = format!(
        "{host}:{}",
        upstream_url.get_ports().first().copied().unwrap_or(5432)
    );
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let server = TcpStream::connect(&upstream).await.unwrap();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, wire.clone(), Side::Client));
            tokio::spawn(pump(sr, cw, wire.clone(), Side::Server));
        }
    });
    port
}

#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

/// Forwards one direction message by message, counting as it goes. The
/// client's first message (startup) has no type byte.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    wire: Shared,
    side: Side,
) {
    let mut buf = Vec::new();
    let mut started = matches!(side, Side::Server);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        loop {
            if !started {
                if buf.len() - at < 4 {
                    break;
                }
                let len = u32::from_be_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
                if buf.len() - at < len {
                    break;
                }
                at += len;
                started = true;
                continue;
            }
            if buf.len() - at < 5 {
                break;
            }
            let kind = buf[at];
            let len = u32::from_be_bytes(buf[at + 1..at + 5].try_into().unwrap()) as usize;
            if buf.len() - at < 1 + len {
                break;
            }
            let body = &buf[at + 5..at + 1 + len];
            let mut w = wire.lock().unwrap();
            match side {
                Side::Client => {
                    let work = !matches!(kind, b'C' | b'S' | b'H' | b'X');
                    if work && !w.work {
                        w.work = true;
                        // Nothing awaited is outstanding: the client waits
                        // for this (and what it pipelines behind it).
                        if !w.outstanding.iter().any(|waits| *waits) {
                            w.counts.flights += 1;
                        }
                    }
                    let mut fields = body.split(|b| *b == 0);
                    match kind {
                        b'P' => {
                            w.counts.parses += 1;
                            let name = fields.next().unwrap_or_default().to_vec();
                            let sql = String::from_utf8_lossy(fields.next().unwrap_or_default());
                            w.writes.insert(name, writes(&sql));
                        }
                        b'B' => {
                            let _portal = fields.next();
                            let name = fields.next().unwrap_or_default();
                            let write = w.writes.get(name).copied().unwrap_or(false);
                            w.group.push_back(write);
                        }
                        b'E' => w.counts.statements += 1,
                        b'Q' => {
                            w.counts.statements += 1;
                            w.counts.syncs += 1;
                            w.outstanding.push_back(true);
                            w.work = false;
                            let sql = String::from_utf8_lossy(fields.next().unwrap_or_default());
                            let write = writes(&sql);
                            w.executed.push_back([write].into());
                        }
                        b'S' => {
                            w.counts.syncs += 1;
                            let waits = w.work;
                            w.outstanding.push_back(waits);
                            w.work = false;
                            let group = std::mem::take(&mut w.group);
                            w.executed.push_back(group);
                        }
                        _ => {}
                    }
                }
                Side::Server => match kind {
                    b'C' => {
                        let tag = String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(body));
                        let rows = tag
                            .rsplit(' ')
                            .next()
                            .and_then(|n| n.parse::<u64>().ok())
                            .unwrap_or(0);
                        let write = w
                            .executed
                            .front_mut()
                            .and_then(|g| g.pop_front())
                            .unwrap_or(false);
                        if write && rows > 0 {
                            w.wrote = true;
                        }
                        if tag == "ROLLBACK" {
                            w.failed = true;
                        }
                    }
                    b'E' => w.failed = true,
                    b'Z' => {
                        w.outstanding.pop_front();
                        w.executed.pop_front();
                        if body.first() == Some(&b'I') {
                            if w.wrote && !w.failed {
                                w.counts.write_commits += 1;
                            }
                            w.wrote = false;
                            w.failed = false;
                        }
                    }
                    _ => {}
                },
            }
            drop(w);
            at += 1 + len;
        }
        if to.write_all(&buf[..at]).await.is_err() {
            return;
        }
        buf.drain(..at);
    }
}

/// Whether a statement writes rows, from its text (enough for the store's
/// statements: a `FOR UPDATE` alone is no write).
fn writes(sql: &str) -> bool {
    let sql = sql.to_ascii_uppercase();
    sql.contains("INSERT INTO")
        || sql.contains("DELETE FROM")
        || (sql.contains("UPDATE ") && sql.contains(" SET "))
}

/// The counts so far, once what the client sent without waiting has been
/// answered.
async fn settled(wire: &Shared) -> Counts {
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let w = wire.lock().unwrap();
        if w.outstanding.is_empty() {
            return w.counts;
        }
    }
    panic!("the database never answered");
}

/// The calls the relay makes for one message: the sender's quota pre-check and
/// put, the move into the outbox after the 202, the recipient's fetch (read to
/// its end and completed), the ack and the confirm it delivers to the sender.
async fn one_message(store: &Store, wire: &Shared, quota: Quota) -> Vec<(&'static str, Counts)> {
    let mut out = Vec::new();
    let mut last = settled(wire).await;
    let mut step = |name, now: Counts, out: &mut Vec<_>| {
        out.push((name, now - last));
        last = now;
    };
    let mut l = label("1111111111");
    l.sequence_type = SequenceType::Event;
    let tx_id = l.tx_id.clone();
    let ob = outbox("1111111111");
    let body = vec![b'x'; 3000];

    store
        .usage(&ob, "5555555555", quota.count_limit())
        .await
        .unwrap();
    step("send: quota pre-check", settled(wire).await, &mut out);
    let put = store.put_within(l, &body[..], quota).await.unwrap();
    assert!(matches!(put, PutOutcome::Stored { .. }), "{put:?}");
    step("send: put", settled(wire).await, &mut out);
    store
        .mark_processed(Which::from(tx_id.as_str()), MessageState::Received)
        .await
        .unwrap();
    step("send: into the outbox", settled(wire).await, &mut out);

    let mut handle = store.fetch(&ob, tx_id.as_str()).await.unwrap();
    assert_eq!(read_all(handle.body().unwrap()).await.unwrap(), body);
    handle.complete().await.unwrap();
    step("fetch (read, completed)", settled(wire).await, &mut out);

    let ack = store.ack(&ob, tx_id.as_str()).await.unwrap();
    assert!(ack.send_confirm);
    step("ack", settled(wire).await, &mut out);
    let mut confirm = label("5555555555");
    confirm.sequence_type = SequenceType::Adm;
    store.put_received(confirm, &b"confirm"[..]).await.unwrap();
    step("ack: confirm delivered", settled(wire).await, &mut out);
    out
}

// One thread: what the store pipelines leaves in one write, whatever the timing.
#[tokio::test(flavor = "current_thread")]
async fn one_asynchronous_message_costs_a_bounded_number_of_round_trips_and_commits() {
    let wire: Shared = Arc::default();
    let port = proxy(wire.clone()).await;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let kek: Arc<dyn relay_mailbox::KeyEncryptionKey> =
        Arc::new(relay_mailbox::KeyFile::open_or_create(dir.path().join("kek")).unwrap());
    let mut o = pg_options(&schema);
    let db = postgres_url()
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .get_dbname()
        .unwrap_or("test")
        .to_owned();
    o.url = format!("postgres://postgres@127.0.0.1:{port}/{db}?sslmode=disable");
    // One connection: every statement cache is warm after the first message.
    o.pool_size = 1;
    o.ack_policy = AckPolicy::DeleteOnAck;
    let store = Store::Postgres(PgStore::open(o, kek).await.unwrap());
    let quota = Quota {
        max_messages_per_outbox: 1000,
        max_bytes_per_outbox: 1 << 30,
        max_messages_per_sender: 1000,
        max_bytes_per_sender: 1 << 30,
    };

    one_message(&store, &wire, quota).await;
    let steps = one_message(&store, &wire, quota).await;
    println!(
        "{:<26} {:>7} {:>10} {:>6} {:>5} {:>13}",
        "call", "flights", "statements", "parses", "syncs", "write commits"
    );
    let mut total = Counts::default();
    for (name, c) in &steps {
        println!(
            "{name:<26} {:>7} {:>10} {:>6} {:>5} {:>13}",
            c.flights, c.statements, c.parses, c.syncs, c.write_commits
        );
        total = total + *c;
    }
    println!(
        "{:<26} {:>7} {:>10} {:>6} {:>5} {:>13}",
        "one message",
        total.flights,
        total.statements,
        total.parses,
        total.syncs,
        total.write_commits
    );

    drop(store);
    drop_schema(&schema).await;

    let bound = |name: &str| match name {
        "send: quota pre-check" => (1, 0),
        "send: put" => (2, 1),
        "send: into the outbox" => (1, 1),
        "fetch (read, completed)" => (2, 2),
        "ack" => (2, 1),
        "ack: confirm delivered" => (1, 1),
        _ => unreachable!(),
    };
    for (name, c) in &steps {
        let (flights, commits) = bound(name);
        assert!(
            c.flights <= flights && c.write_commits <= commits && c.parses == 0,
            "{name}: {c:?}, expected at most {flights} round trips and {commits} commits, \
             no statement parsed again"
        );
    }
}
