//! The `[store]` section of the relay's configuration: which engine, and how to
//! reach PostgreSQL. Validated once at start-up; every error names its key.
//!
//! ```toml
//! [store]
//! kind = "postgres"                 # or "redb" (the default)
//! url = "postgres://relay@db.example:5432/shs"
//! pool_size = 16                    # connections per node
//! statement_timeout_ms = 5000       # per statement; also the connect and pool wait limit
//! tls_ca_file = "/etc/shs-relay/db-ca.pem"   # optional: TLS to the database
//! schema = "shs_relay"              # optional: tables in this schema
//! node = "relay-1"                  # optional: this node's name (default host/pid)
//! lease_s = 60                      # a dead node's work is taken over after this
//! # cache_bytes = 4194304           # redb only: the mailbox file's page cache
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::pg::PgOptions;

/// The store engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One redb file per node: one machine, no shared state between nodes.
    #[default]
    Redb,
    /// One PostgreSQL database shared by every node.
    Postgres,
}

/// Limits on the values below.
pub const POOL_SIZE_RANGE: std::ops::RangeInclusive<usize> = 1..=512;
pub const STATEMENT_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=600_000;
pub const LEASE_S_RANGE: std::ops::RangeInclusive<u64> = 2..=3600;
pub const CACHE_BYTES_RANGE: std::ops::RangeInclusive<usize> = 0..=1024 * 1024 * 1024;

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub kind: StoreKind,
    /// PostgreSQL connection URL; required for `postgres`, refused for `redb`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// PEM file with the roots that sign the database server's certificate.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// PostgreSQL schema for the tables (created when missing).
    #[serde(default)]
    pub schema: Option<String>,
    /// This node's name in the database, the owner of the work it claims;
    /// unique per running node. Default: host name and process id. A node
    /// restarted under a fixed name takes its own unfinished work back at once;
    /// otherwise another node takes it over when the lease has run out.
    #[serde(default)]
    pub node: Option<String>,
    /// Seconds a node's claim on work in progress holds without a heartbeat
    /// (renewed every third of it); a dead node's work is taken over after it.
    #[serde(default = "default_lease_s")]
    pub lease_s: u64,
    /// redb only: the page cache of the mailbox file, in bytes (default
    /// [`crate::redb::DEFAULT_CACHE_BYTES`]). A message body's pages pass
    /// through it on the way in and out, so it is what a large message adds
    /// to the node's memory; the envelopes and indexes it keeps warm are
    /// small.
    #[serde(default)]
    pub cache_bytes: Option<usize>,
}

fn default_lease_s() -> u64 {
    60
}

fn default_pool_size() -> usize {
    16
}

fn default_statement_timeout_ms() -> u64 {
    5000
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Redb,
            url: None,
            pool_size: default_pool_size(),
            statement_timeout_ms: default_statement_timeout_ms(),
            tls_ca_file: None,
            schema: None,
            node: None,
            lease_s: default_lease_s(),
            cache_bytes: None,
        }
    }
}

/// A `[store]` value that cannot be used. The text names the key; it never
/// repeats the URL (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store.{key}: {reason}")]
pub struct StoreConfigError {
    pub key: &'static str,
    pub reason: String,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> StoreConfigError {
    StoreConfigError {
        key,
        reason: reason.into(),
    }
}

impl StoreConfig {
    /// Checks every key; the first problem found is returned.
    pub fn validate(&self) -> Result<(), StoreConfigError> {
        if !POOL_SIZE_RANGE.contains(&self.pool_size) {
            return Err(invalid(
                "pool_size",
                format!(
                    "{} is outside {}..={}",
                    self.pool_size,
                    POOL_SIZE_RANGE.start(),
                    POOL_SIZE_RANGE.end()
                ),
            ));
        }
        if !STATEMENT_TIMEOUT_MS_RANGE.contains(&self.statement_timeout_ms) {
            return Err(invalid(
                "statement_timeout_ms",
                format!(
                    "{} is outside {}..={}",
                    self.statement_timeout_ms,
                    STATEMENT_TIMEOUT_MS_RANGE.start(),
                    STATEMENT_TIMEOUT_MS_RANGE.end()
                ),
            ));
        }
        if !LEASE_S_RANGE.contains(&self.lease_s) {
            return Err(invalid(
                "lease_s",
                format!(
                    "{} is outside {}..={}",
                    self.lease_s,
                    LEASE_S_RANGE.start(),
                    LEASE_S_RANGE.end()
                ),
            ));
        }
        if let Some(bytes) = self.cache_bytes
            && !CACHE_BYTES_RANGE.contains(&bytes)
        {
            return Err(invalid(
                "cache_bytes",
                format!(
                    "{bytes} is outside {}..={}",
                    CACHE_BYTES_RANGE.start(),
                    CACHE_BYTES_RANGE.end()
                ),
            ));
        }
        if let Some(node) = &self.node
            && (node.trim().is_empty() || node.len() > 200 || node.chars().any(char::is_control))
        {
            return Err(invalid("node", "1 to 200 printable characters"));
        }
        match self.kind {
            StoreKind::Redb => {
                for (key, set) in [
                    ("url", self.url.is_some()),
                    ("tls_ca_file", self.tls_ca_file.is_some()),
                    ("schema", self.schema.is_some()),
                ] {
                    if set {
                        return Err(invalid(key, "only used with kind = \"postgres\""));
                    }
                }
            }
            StoreKind::Postgres => {
                if self.cache_bytes.is_some() {
                    return Err(invalid("cache_bytes", "only used with kind = \"redb\""));
                }
                let url = self
                    .url
                    .as_deref()
                    .ok_or_else(|| invalid("url", "required with kind = \"postgres\""))?;
                url.parse::<tokio_postgres::Config>()
                    .map_err(|_| invalid("url", "not a PostgreSQL connection URL"))?;
                if let Some(schema) = &self.schema {
                    let ok = !schema.is_empty()
                        && schema.len() <= 63
                        && schema
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                    if !ok {
                        return Err(invalid(
                            "schema",
                            "1 to 63 characters: lower-case letters, digits, _",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The redb mailbox file's page cache: `cache_bytes`, or the default.
    pub fn redb_cache_bytes(&self) -> usize {
        self.cache_bytes.unwrap_or(crate::redb::DEFAULT_CACHE_BYTES)
    }

    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }

    /// The PostgreSQL options this section describes (with the default clock,
    /// retention and ack policy: set those from the mailbox configuration).
    pub fn pg_options(&self) -> Result<PgOptions, StoreConfigError> {
        self.validate()?;
        let url = self
            .url
            .clone()
            .ok_or_else(|| invalid("url", "required with kind = \"postgres\""))?;
        let mut o = PgOptions::new(url);
        o.pool_size = self.pool_size;
        o.statement_timeout = self.statement_timeout();
        o.tls_ca_file = self.tls_ca_file.clone();
        o.schema = self.schema.clone();
        if let Some(node) = &self.node {
            o.node = node.clone();
        }
        o.lease = Duration::from_secs(self.lease_s);
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        store: StoreConfig,
    }

    fn parse(toml_text: &str) -> StoreConfig {
        toml::from_str::<File>(toml_text).unwrap().store
    }

    #[test]
    fn an_empty_section_is_redb_with_defaults() {
        let c = parse("[store]\n");
        assert_eq!(c, StoreConfig::default());
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn a_postgres_section_parses_and_validates() {
        let c = parse(
            "[store]\nkind = \"postgres\"\nurl = \"postgres://relay:secret@db:5432/shs\"\n\
             pool_size = 4\nstatement_timeout_ms = 2000\nschema = \"shs_relay\"\n",
        );
        assert_eq!(c.kind, StoreKind::Postgres);
        assert_eq!(c.validate(), Ok(()));
        let o = c.pg_options().unwrap();
        assert_eq!(o.pool_size, 4);
        assert_eq!(o.statement_timeout, Duration::from_secs(2));
    }

    #[test]
    fn errors_name_the_key_and_never_the_password() {
        let no_url = parse("[store]\nkind = \"postgres\"\n");
        assert_eq!(no_url.validate().unwrap_err().key, "url");
        let bad_url = StoreConfig {
            kind: StoreKind::Postgres,
            url: Some("mysql://root:hunter2@db/x".into()),
            ..StoreConfig::default()
        };
        let e = bad_url.validate().unwrap_err();
        assert_eq!(e.key, "url");
        assert!(!e.to_string().contains("hunter2"));
        let url_on_redb = parse("[store]\nurl = \"postgres://db/x\"\n");
        assert_eq!(url_on_redb.validate().unwrap_err().key, "url");
        let pool = StoreConfig {
            pool_size: 0,
            ..StoreConfig::default()
        };
        assert_eq!(pool.validate().unwrap_err().key, "pool_size");
        let timeout = StoreConfig {
            statement_timeout_ms: 10,
            ..StoreConfig::default()
        };
        assert_eq!(
            timeout.validate().unwrap_err().to_string(),
            "store.statement_timeout_ms: 10 is outside 100..=600000"
        );
        let schema = StoreConfig {
            kind: StoreKind::Postgres,
            url: Some("postgres://db/x".into()),
            schema: Some("Robert'); DROP".into()),
            ..StoreConfig::default()
        };
        assert_eq!(schema.validate().unwrap_err().key, "schema");
        assert!(toml::from_str::<File>("[store]\nkind = \"mongo\"\n").is_err());
        assert!(toml::from_str::<File>("[store]\npool = 3\n").is_err());
    }

    #[test]
    fn the_redb_cache_has_a_default_and_is_refused_on_postgres() {
        assert_eq!(
            parse("[store]\n").redb_cache_bytes(),
            crate::redb::DEFAULT_CACHE_BYTES
        );
        let set = parse("[store]\ncache_bytes = 1048576\n");
        assert_eq!(set.validate(), Ok(()));
        assert_eq!(set.redb_cache_bytes(), 1024 * 1024);
        let huge = parse("[store]\ncache_bytes = 2147483648\n");
        assert_eq!(huge.validate().unwrap_err().key, "cache_bytes");
        let on_postgres = parse(
            "[store]\nkind = \"postgres\"\nurl = \"postgres://db/x\"\ncache_bytes = 1048576\n",
        );
        assert_eq!(on_postgres.validate().unwrap_err().key, "cache_bytes");
    }
}
