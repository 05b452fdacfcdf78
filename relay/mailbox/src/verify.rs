//! What `shs-relay store verify` reads from an engine: each stored message's
//! key id and, when this node holds that key, its decrypted body, so the
//! verifier can count messages per key and search the store's raw bytes for
//! any window of a body's plaintext (none may be found).

use zeroize::Zeroizing;

use crate::kek::KekId;

/// One stored message as the verifier sees it.
#[derive(Debug)]
pub struct StoredMessage {
    pub tx_id: String,
    /// The KEK its data key is wrapped under.
    pub kek_id: KekId,
    pub body: BodyCheck,
}

/// What opening a stored body gave.
#[derive(Debug)]
pub enum BodyCheck {
    /// The body, decrypted and authenticated.
    Opened(Zeroizing<Vec<u8>>),
    /// This node does not hold the message's KEK.
    KeyMissing,
    /// The key or a chunk failed authentication, or a chunk is missing.
    Damaged(String),
}
