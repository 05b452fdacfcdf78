//! [`KeyRing`]: the KEKs a node holds (its [`KeyFile`]) and the one id the
//! store says is **active**. New data keys are wrapped under the active id only,
//! never merely the newest in the file, so a key added to one node's file wraps
//! nothing until every node holds it and an operator activates it
//! (`shs-relay keys activate`). Unwrapping finds the KEK by the id stored with
//! each message, as before.
//!
//! Also here: what an engine does with a message whose KEK this node does not
//! hold ([`skip_missing_key`]): it leaves it out of a list rather than failing
//! the list, counts it and logs its key id and local id (nothing personal).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::crypto::DataKey;
use crate::kek::{KekError, KekId, KeyEncryptionKey, KeyFile, WrappedKey};
use crate::store::MailboxError;

/// A node's key file plus the store's active key id.
#[derive(Debug)]
pub struct KeyRing {
    file: KeyFile,
    active: AtomicU32,
}

impl KeyRing {
    /// `active` is the store's active id; the caller checked the file holds it.
    pub fn new(file: KeyFile, active: KekId) -> Self {
        Self {
            file,
            active: AtomicU32::new(active),
        }
    }

    pub fn file(&self) -> &KeyFile {
        &self.file
    }

    /// The id new wraps use.
    pub fn active(&self) -> KekId {
        self.active.load(Ordering::Acquire)
    }

    /// Follows the store: new wraps use `id` from now on. Refused (and the
    /// old id kept) when this node's file lacks it.
    pub fn set_active(&self, id: KekId) -> Result<(), KekError> {
        if !self.file.holds(id) {
            return Err(KekError::UnknownKek(id));
        }
        self.active.store(id, Ordering::Release);
        Ok(())
    }
}

impl KeyEncryptionKey for KeyRing {
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, KekError> {
        self.file.wrap_under(self.active(), key, context)
    }

    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, KekError> {
        self.file.unwrap(wrapped, context)
    }

    fn current_id(&self) -> KekId {
        self.active()
    }
}

static SKIPPED: AtomicU64 = AtomicU64::new(0);

/// How many messages were skipped for a missing KEK since the process started
/// (the relay's `shs_relay_mailbox_missing_key_skips_total` catches up with it
/// at each scrape).
pub fn missing_key_skips() -> u64 {
    SKIPPED.load(Ordering::Relaxed)
}

/// Whether `e` means "this node does not hold the message's KEK". If so the
/// message is counted and logged (key id and local id, nothing personal) and
/// the caller leaves it out instead of failing the whole operation.
pub fn skip_missing_key(e: &MailboxError, local_id: &uuid::Uuid) -> bool {
    let MailboxError::Kek(KekError::UnknownKek(id)) = e else {
        return false;
    };
    SKIPPED.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        kek_id = id,
        local_id = %local_id,
        "a stored message is wrapped under a key this node does not hold: left out \
         (copy the key file from a node that holds the key, then reload)"
    );
    true
}
