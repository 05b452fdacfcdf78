//! [`PgStore`]: the mailbox and the shared state on PostgreSQL, for several relay
//! nodes behind one load balancer. Every node opens its own pool on the same
//! database; the database's transactions and row locks make each decision once.
//!
//! - `migrate`: the schema, embedded in the binary and applied at start under an
//!   advisory lock, recorded in `store_schema_version`.
//! - `mailbox`: [`relay_mailbox::MailboxStore`] on the tables `mailbox_keys`,
//!   `mailbox_chunks`, `mailbox_messages` (the schema is documented in
//!   `migrations/0001_init.sql`).
//! - `state`: [`crate::SharedState`] on `suspensions`, `withdrawals`,
//!   `maintenance`, `maintenance_windows`, `seen_tx`, `elt_rate`, `elt_attempts`,
//!   `elt_mandates`, `elt_reports` (`migrations/0003_decisions.sql`).
//! - `status`: [`crate::StatusBoard`] on `status_components`, `status_incidents`,
//!   `status_incident_updates`, `status_announced` (`migrations/0004_status.sql`).

mod keys;
mod mailbox;
mod migrate;
mod party;
mod state;
mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use relay_mailbox::{AckPolicy, Clock, KeyEncryptionKey, Retention, SystemClock};

pub use migrate::{SCHEMA_VERSION, versions as migration_versions};

/// How to reach the database and how to behave on it.
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/database[?...]`.
    pub url: String,
    /// Connections this node keeps at most.
    pub pool_size: usize,
    /// Every statement is cancelled by the server after this long
    /// (`statement_timeout`); a pool wait and a connect give up after it too.
    pub statement_timeout: Duration,
    /// TLS to the database: `None` is plain TCP (a local socket or a private
    /// network), `Some` verifies the server against these roots.
    pub tls_ca_file: Option<PathBuf>,
    /// The PostgreSQL schema holding the tables; created when missing. `None` uses
    /// the server's `search_path` (normally `public`).
    pub schema: Option<String>,
    pub clock: Arc<dyn Clock>,
    pub retention: Retention,
    pub ack_policy: AckPolicy,
    /// This node's name in the database: the owner of the work it claims.
    /// Unique per running node; a node restarted under the same name takes its
    /// own unfinished work back at once.
    pub node: String,
    /// How long a node's claim on work in progress holds without a heartbeat;
    /// after it, another node takes the work over.
    pub lease: Duration,
    /// The longest an upload may take: a key whose message row never came
    /// (its node died mid-upload) is swept after it.
    pub max_upload_time: Duration,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(5),
            tls_ca_file: None,
            schema: None,
            clock: Arc::new(SystemClock),
            retention: Retention::default(),
            ack_policy: AckPolicy::default(),
            node: default_node_name(),
            lease: Duration::from_secs(60),
            max_upload_time: Duration::from_secs(3600),
        }
    }

    /// The client-side deadline of one store call: the pool wait plus one
    /// statement, with a margin. A silent network cut ends there, not after
    /// TCP's retransmission time.
    pub fn call_deadline(&self) -> Duration {
        self.statement_timeout * 2 + Duration::from_millis(500)
    }
}

/// The host name and process id: unique among running nodes.
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}/{}", std::process::id())
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("store url: {0}")]
    Url(String),
    #[error("store schema name {0:?}: only lower-case letters, digits and _ are allowed")]
    SchemaName(String),
    #[error("store TLS roots {path}: {reason}")]
    Tls { path: PathBuf, reason: String },
    #[error("store database at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("store database schema: {0}")]
    Migrate(String),
}

/// The PostgreSQL store. Cheap to clone; clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: Pool,
    /// One connection of its own for readiness, so that a busy pool never
    /// makes a node look dead.
    probe: Pool,
    /// `host:port/database`, for messages (never the password).
    target: String,
    kek: Arc<dyn KeyEncryptionKey>,
    clock: Arc<dyn Clock>,
    retention: Retention,
    ack_policy: AckPolicy,
    node: String,
    lease: Duration,
    max_upload_time: Duration,
    deadline: Duration,
}

impl PgStore {
    /// Connects, creates the schema when asked to, and applies the embedded
    /// migrations. Fails (never waits forever) when the database does not answer
    /// within the statement timeout.
    pub async fn open(
        options: PgOptions,
        kek: Arc<dyn KeyEncryptionKey>,
    ) -> Result<Self, OpenError> {
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| OpenError::Url(e.to_string()))?;
        let target = describe_target(&config);
        let timeout_ms = options.statement_timeout.as_millis().max(1);
        // The mailbox's statements are prepared once per connection; each
        // execution is still planned for its parameters (several have the form
        // `$n IS NULL OR column = $n`, which only a plan for the value turns into
        // an index lookup), as an unprepared statement is.
        let mut server_options =
            format!("-c statement_timeout={timeout_ms} -c plan_cache_mode=force_custom_plan");
        if let Some(schema) = &options.schema {
            if schema.is_empty()
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(OpenError::SchemaName(schema.clone()));
            }
            server_options.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(&server_options);
        config.connect_timeout(options.statement_timeout);
        config.application_name("shs-relay");
        // A peer that vanished without a word (a silent cut) closes the
        // connection after this, so the pool opens a fresh one instead of
        // handing out a dead one.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.keepalives_interval(Duration::from_secs(2));
        config.keepalives_retries(3);
        #[cfg(target_os = "linux")]
        config.tcp_user_timeout(options.call_deadline());

        let tls = match &options.tls_ca_file {
            None => None,
            Some(path) => Some(rustls_connector(path)?),
        };
        let make_pool = |size: usize| {
            let manager_config = ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            };
            let manager = match &tls {
                None => Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config),
                Some(tls) => Manager::from_config(config.clone(), tls.clone(), manager_config),
            };
            Pool::builder(manager)
                .max_size(size)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(options.statement_timeout))
                .create_timeout(Some(options.statement_timeout))
                .recycle_timeout(Some(options.statement_timeout))
                .build()
                .map_err(|e| OpenError::Connect {
                    target: target.clone(),
                    reason: e.to_string(),
                })
        };
        let pool = make_pool(options.pool_size.max(1))?;
        let probe = make_pool(1)?;
        let mut client = pool.get().await.map_err(|e| OpenError::Connect {
            target: target.clone(),
            reason: e.to_string(),
        })?;
        migrate::apply(&mut client, options.schema.as_deref())
            .await
            .map_err(|e| OpenError::Migrate(e.to_string()))?;
        drop(client);
        let deadline = options.call_deadline();
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                probe,
                target,
                kek,
                clock: options.clock,
                retention: options.retention,
                ack_policy: options.ack_policy,
                node: options.node,
                lease: options.lease,
                max_upload_time: options.max_upload_time,
                deadline,
            }),
        })
    }

    /// Whether the database answers now, for the readiness endpoint: one
    /// `SELECT 1` on the probe's own connection within the call deadline. It
    /// never waits behind the pool, so mailbox load cannot make a node unready.
    pub async fn ready(&self) -> bool {
        let probe = async {
            match self.inner.probe.get().await {
                Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
                Err(_) => false,
            }
        };
        tokio::time::timeout(self.inner.deadline, probe)
            .await
            .unwrap_or(false)
    }

    /// The client-side deadline of one store call.
    pub fn call_deadline(&self) -> Duration {
        self.inner.deadline
    }

    /// This node's name in the database.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// `host:port/database`.
    pub fn target(&self) -> &str {
        &self.inner.target
    }
}

/// Drops `schema` and everything in it: for throwaway schemas (the demo's,
/// tests'). Plain TCP only; the name must be [a-z0-9_]+.
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), OpenError> {
    if schema.is_empty()
        || !schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(OpenError::SchemaName(schema.to_owned()));
    }
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| OpenError::Url(e.to_string()))?;
    let target = describe_target(&config);
    config.connect_timeout(Duration::from_secs(5));
    let failed = |e: tokio_postgres::Error| OpenError::Connect {
        target: target.clone(),
        reason: describe(&e),
    };
    let work = async {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(failed)?;
        let task = tokio::spawn(connection);
        let done = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .map_err(failed);
        drop(client);
        let _ = task.await;
        done
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .map_err(|_| OpenError::Connect {
            target: target.clone(),
            reason: "no answer within 30 s".to_owned(),
        })?
}

fn describe_target(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or_default();
    format!("{host}:{port}/{db}")
}

fn rustls_connector(
    path: &std::path::Path,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, OpenError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let tls_error = |reason: String| OpenError::Tls {
        path: path.to_path_buf(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| tls_error(e.to_string()))? {
        let cert = cert.map_err(|e| tls_error(e.to_string()))?;
        roots.add(cert).map_err(|e| tls_error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(tls_error("no certificate in the file".to_owned()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// An error as text that names the failure and never a row's content: the
/// SQLSTATE code for database errors (their messages and details may quote
/// values), the client's own text otherwise (connection refused, closed...).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.constraint() {
            Some(c) => format!("database error {} on {c}", db.code().code()),
            None => format!("database error {}", db.code().code()),
        },
        None => e.to_string(),
    }
}

/// A column that could not be read as the type the code expects: a schema that
/// is not this binary's. An error, never a panic.
#[derive(Debug)]
pub(crate) struct BadColumn(String);

impl From<BadColumn> for relay_mailbox::MailboxError {
    fn from(e: BadColumn) -> Self {
        Self::Database(e.0)
    }
}

impl From<BadColumn> for crate::state::StateError {
    fn from(e: BadColumn) -> Self {
        Self::Record(e.0)
    }
}

/// `Row::get` without its panic.
pub(crate) trait Column {
    fn col<'a, T: tokio_postgres::types::FromSql<'a>>(&'a self, i: usize) -> Result<T, BadColumn>;
}

impl Column for tokio_postgres::Row {
    fn col<'a, T: tokio_postgres::types::FromSql<'a>>(&'a self, i: usize) -> Result<T, BadColumn> {
        self.try_get(i)
            .map_err(|e| BadColumn(format!("column {i}: {}", describe(&e))))
    }
}

pub(crate) fn describe_pool(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => describe(e),
        other => other.to_string(),
    }
}
