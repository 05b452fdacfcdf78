//! A "cluster" of store handles on one engine, for the generic suite: every test
//! is written once against [`Cluster`] and runs on redb and on PostgreSQL.
//!
//! PostgreSQL: the URL comes from `SHS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each cluster gets its own schema,
//! so tests run in parallel, and drops it at the end. A database that does not
//! answer fails the test with a message that says how to start one: it is never
//! skipped.
//!
//! redb: one process can open a redb file once, so the second "node" is a clone
//! of the first handle on the same files (what two tasks of one relay share).
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use relay_mailbox::{
    AckPolicy, KeyEncryptionKey, KeyFile, ManualClock, MessageLabel, Outbox, Retention,
};
use relay_store::redb::StoreOptions;
use relay_store::{PgOptions, PgStore, Store, StoreConfig};
use tokio::io::AsyncReadExt;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn postgres_url() -> String {
    std::env::var("SHS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap()
}

pub enum Engine {
    Redb,
    Postgres { schema: String },
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub kek: Arc<dyn KeyEncryptionKey>,
    /// The same KEK, to rotate and retire keys.
    pub kek_file: Arc<KeyFile>,
    pub engine: Engine,
    pub ack_policy: AckPolicy,
    first: Store,
}

impl Cluster {
    pub async fn redb() -> Self {
        Self::redb_with(AckPolicy::DeleteOnAck).await
    }

    pub async fn redb_with(ack_policy: AckPolicy) -> Self {
        let (dir, clock, kek_file) = basics();
        let kek: Arc<dyn KeyEncryptionKey> = kek_file.clone();
        let options = store_options(&clock, ack_policy);
        let first = Store::open(
            &StoreConfig::default(),
            &dir.path().join("mailbox.redb"),
            kek.clone(),
            options,
        )
        .await
        .unwrap();
        Self {
            dir,
            clock,
            kek,
            kek_file,
            engine: Engine::Redb,
            ack_policy,
            first,
        }
    }

    pub async fn postgres() -> Self {
        Self::postgres_with(AckPolicy::DeleteOnAck).await
    }

    pub async fn postgres_with(ack_policy: AckPolicy) -> Self {
        let (dir, clock, kek_file) = basics();
        let kek: Arc<dyn KeyEncryptionKey> = kek_file.clone();
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let first = open_pg(&schema, &clock, &kek, ack_policy).await;
        Self {
            dir,
            clock,
            kek,
            kek_file,
            engine: Engine::Postgres { schema },
            ack_policy,
            first,
        }
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        relay_mailbox::Clock::now(&*self.clock)
    }

    /// The first node.
    pub fn a(&self) -> &Store {
        &self.first
    }

    /// Another node on the same store: a new pool on the same schema
    /// (PostgreSQL), a clone of the first handle (redb).
    pub async fn node(&self) -> Store {
        match &self.engine {
            Engine::Redb => self.first.clone(),
            Engine::Postgres { schema } => {
                open_pg(schema, &self.clock, &self.kek, self.ack_policy).await
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.engine, Engine::Postgres { .. })
    }

    /// Drops the test's schema.
    pub async fn finish(self) {
        if let Engine::Postgres { schema } = &self.engine {
            drop_schema(schema).await;
        }
    }
}

fn basics() -> (tempfile::TempDir, Arc<ManualClock>, Arc<KeyFile>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let kek = Arc::new(KeyFile::open_or_create(dir.path().join("kek")).unwrap());
    (dir, clock, kek)
}

fn store_options(clock: &Arc<ManualClock>, ack_policy: AckPolicy) -> StoreOptions {
    StoreOptions {
        clock: clock.clone(),
        retention: Retention::default(),
        ack_policy,
        ..StoreOptions::default()
    }
}

/// Drops a test's PostgreSQL schema and everything in it.
pub async fn drop_schema(schema: &str) {
    let (client, conn) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .unwrap();
}

pub fn pg_options(schema: &str) -> PgOptions {
    let mut o = PgOptions::new(postgres_url());
    o.schema = Some(schema.to_owned());
    o.pool_size = 4;
    o.statement_timeout = std::time::Duration::from_secs(30);
    o
}

async fn open_pg(
    schema: &str,
    clock: &Arc<ManualClock>,
    kek: &Arc<dyn KeyEncryptionKey>,
    ack_policy: AckPolicy,
) -> Store {
    let mut o = pg_options(schema);
    o.clock = clock.clone();
    o.ack_policy = ack_policy;
    match PgStore::open(o, kek.clone()).await {
        Ok(s) => Store::Postgres(s),
        Err(e) => panic!(
            "PostgreSQL is needed for this test and did not answer at {} ({e}). \
             Start one (`bash .ci/run` does: Debian's postgresql, trust auth, database `test`) \
             or point SHS_TEST_POSTGRES_URL at one.",
            postgres_url()
        ),
    }
}

pub fn outbox(s: &str) -> Outbox {
    Outbox::parse(s).unwrap()
}

pub fn tx() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn label(to: &str) -> MessageLabel {
    let mut l = MessageLabel::new(tx(), outbox(to), "00000000-0000-0000-0000-000000000001");
    l.from = Some("5555555555".into());
    l
}

pub async fn read_all(body: &mut (impl tokio::io::AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    body.read_to_end(&mut out).await?;
    Ok(out)
}

/// Sends `left` bytes, then (once) prints `announce` on stdout, then never
/// sends another byte: a sender, or a node, that stopped mid-upload.
pub struct Stalling {
    pub left: usize,
    pub announce: Option<&'static str>,
}

impl tokio::io::AsyncRead for Stalling {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.left == 0 {
            if let Some(line) = self.announce.take() {
                println!("{line}");
            }
            return std::task::Poll::Pending;
        }
        let n = self.left.min(buf.remaining());
        buf.put_slice(&vec![5u8; n]);
        self.left -= n;
        std::task::Poll::Ready(Ok(()))
    }
}

/// Runs each named `async fn(Cluster)` on redb and on PostgreSQL.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod redb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Cluster::redb().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Cluster::postgres().await).await;
                }
            )*
        }
    };
}
