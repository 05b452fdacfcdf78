//! The schema, embedded: each migration is applied once, in order, inside one
//! transaction that holds an advisory lock, so nodes starting together apply it
//! once. The lock is taken before the schema is created, and the transaction
//! runs without the statement timeout (a migration on a large table may take
//! longer than any request may). `store_schema_version` records what was applied; a database newer than
//! this binary is refused rather than written to with an old idea of its tables.

use tokio_postgres::Client;

/// (version, SQL), oldest first. Never edit an applied migration: add one.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/0002_leases_and_uploads.sql"),
    ),
    (3, include_str!("../../migrations/0003_decisions.sql")),
    (4, include_str!("../../migrations/0004_status.sql")),
    (5, include_str!("../../migrations/0005_parties.sql")),
    (
        6,
        include_str!("../../migrations/0006_sender_tx_identity.sql"),
    ),
    (
        7,
        include_str!("../../migrations/0007_mailbox_key_ring.sql"),
    ),
];

/// Every migration's version, oldest first (there may be gaps while
/// branches that each add one are merged).
pub fn versions() -> Vec<i32> {
    MIGRATIONS.iter().map(|(v, _)| *v).collect()
}

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i32 = 7;

/// Why the schema could not be brought to [`SCHEMA_VERSION`].
#[derive(Debug)]
pub(super) enum MigrateError {
    Database(tokio_postgres::Error),
    /// The database was migrated by a newer relay.
    Newer {
        found: i32,
    },
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Database(e)
    }
}

impl std::fmt::Display for MigrateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database(e) => f.write_str(&super::describe(e)),
            Self::Newer { found } => write!(
                f,
                "the database has schema version {found}, newer than this relay's {SCHEMA_VERSION}: \
                 run the newer relay"
            ),
        }
    }
}

pub(super) async fn apply(client: &mut Client, schema: Option<&str>) -> Result<(), MigrateError> {
    let tx = client.transaction().await?;
    // Migrations may take long; requests never run in this transaction.
    tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
    // The lock is named after the schema the tables go to, which may not exist
    // yet: two nodes starting on a fresh database create it once.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('relay-store/' || \
         coalesce($1::text, current_schema(), 'public')))",
        &[&schema],
    )
    .await?;
    if let Some(schema) = schema {
        // The name was checked to be [a-z0-9_]+ by the caller.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS store_schema_version (
             version     integer PRIMARY KEY,
             applied_at  timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM store_schema_version",
            &[],
        )
        .await?
        .try_get(0)?;
    if current > SCHEMA_VERSION {
        return Err(MigrateError::Newer { found: current });
    }
    for (version, sql) in MIGRATIONS {
        if *version > current {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO store_schema_version (version) VALUES ($1)",
                &[version],
            )
            .await?;
            tracing::info!(version, "store schema migrated");
        }
    }
    Ok(tx.commit().await?)
}
