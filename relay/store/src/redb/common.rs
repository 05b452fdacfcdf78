//! What the three redb engines (`state`, `status`, `party` in this folder)
//! share: the error for a file that cannot be used, running a closure over the
//! database off the async workers, and the insert-if-absent write.

use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use crate::state::{Result, StateError};

/// A redb error: the state file cannot be used.
pub(crate) fn file(e: impl Into<redb::Error>) -> StateError {
    StateError::File(e.into().to_string())
}

/// Runs `f` over `owner` (a database or what holds it) on a blocking thread:
/// redb's calls block on the disk.
pub(crate) async fn blocking<S, T, F>(owner: Arc<S>, f: F) -> Result<T>
where
    S: Send + Sync + 'static,
    T: Send + 'static,
    F: FnOnce(&S) -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(move || f(&owner))
        .await
        .map_err(|e| StateError::File(e.to_string()))?
}

/// Writes `value` under `key` unless the key is there already, in one write
/// transaction; whether it was written.
pub(crate) fn insert_new(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
    value: &[u8],
) -> Result<bool> {
    let txn = db.begin_write().map_err(file)?;
    let added = {
        let mut t = txn.open_table(table).map_err(file)?;
        let known = t.get(key).map_err(file)?.is_some();
        if !known {
            t.insert(key, value).map_err(file)?;
        }
        !known
    };
    txn.commit().map_err(file)?;
    Ok(added)
}
