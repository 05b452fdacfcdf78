//! Per-message encryption: a random 256-bit data key per message, AES-256-GCM,
//! and a STREAM-style chunk construction so a body can be sealed and opened one
//! chunk at a time.
//!
//! Nonce (96 bits) = message nonce prefix (7 random bytes) ‖ index (u32, big
//! endian) ‖ kind (1 byte: 0 body chunk, 1 final body chunk, 2 label). The same
//! kind and index are bound again as associated data, so a chunk moved to another
//! position, a non-final chunk presented as the last one (truncation) or a label
//! presented as a chunk all fail authentication instead of decrypting.

use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::TryRngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// Plaintext bytes per body chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Bytes AES-GCM adds to each sealed chunk.
pub const TAG_LEN: usize = 16;
/// Length of the per-message nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 7;

const AAD_DOMAIN: &[u8] = b"shs-relay/mailbox/v1";

/// A message's own 256-bit data key. Zeroed when dropped; never written to disk
/// except wrapped under a key-encryption key.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        fill_random(key.as_mut());
        Self(key)
    }

    /// Takes a key unwrapped by a [`crate::KeyEncryptionKey`]. The caller should
    /// zeroize its own copy.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(*bytes)))
    }

    /// The raw key, for a key-encryption key to wrap. Handle with care.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Fills `buf` from the operating system's random source.
pub(crate) fn fill_random(buf: &mut [u8]) {
    // The OS source failing is unrecoverable; carrying on would mean weak keys.
    OsRng
        .try_fill_bytes(buf)
        .expect("operating system random source failed");
}

/// A chunk or label failed authentication: tampered, truncated, reordered or
/// opened with the wrong key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed")]
pub struct Unauthentic;

#[derive(Clone, Copy)]
enum Kind {
    Chunk = 0,
    FinalChunk = 1,
    Label = 2,
}

/// Seals and opens the chunks and label of one message. Public for storage
/// engines outside this crate (`relay-store`); every engine must use it the same way:
/// chunk `i` of `n` sealed with `last = i + 1 == n`, the label sealed once.
pub struct MessageCipher {
    cipher: Aes256Gcm,
    prefix: [u8; NONCE_PREFIX_LEN],
}

impl MessageCipher {
    pub fn new(key: &DataKey, prefix: [u8; NONCE_PREFIX_LEN]) -> Self {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.expose_secret()));
        Self { cipher, prefix }
    }

    pub fn random_prefix() -> [u8; NONCE_PREFIX_LEN] {
        let mut p = [0u8; NONCE_PREFIX_LEN];
        fill_random(&mut p);
        p
    }

    fn nonce_and_aad(&self, kind: Kind, index: u32) -> ([u8; 12], [u8; AAD_DOMAIN.len() + 5]) {
        let mut nonce = [0u8; 12];
        nonce[..NONCE_PREFIX_LEN].copy_from_slice(&self.prefix);
        nonce[NONCE_PREFIX_LEN..11].copy_from_slice(&index.to_be_bytes());
        nonce[11] = kind as u8;
        let mut aad = [0u8; AAD_DOMAIN.len() + 5];
        aad[..AAD_DOMAIN.len()].copy_from_slice(AAD_DOMAIN);
        aad[AAD_DOMAIN.len()] = kind as u8;
        aad[AAD_DOMAIN.len() + 1..].copy_from_slice(&index.to_be_bytes());
        (nonce, aad)
    }

    fn seal(&self, kind: Kind, index: u32, buf: &mut Vec<u8>) {
        let (nonce, aad) = self.nonce_and_aad(kind, index);
        self.cipher
            .encrypt_in_place(Nonce::from_slice(&nonce), &aad, buf)
            // Only fails for inputs beyond GCM's 64 GiB limit; chunks are 64 KiB.
            .expect("AES-GCM sealing of a bounded buffer");
    }

    fn open(&self, kind: Kind, index: u32, buf: &mut Vec<u8>) -> Result<(), Unauthentic> {
        let (nonce, aad) = self.nonce_and_aad(kind, index);
        self.cipher
            .decrypt_in_place(Nonce::from_slice(&nonce), &aad, buf)
            .map_err(|_| Unauthentic)
    }

    /// Seals body chunk `index` in place (the tag is appended).
    pub fn seal_chunk(&self, index: u32, last: bool, buf: &mut Vec<u8>) {
        self.seal(chunk_kind(last), index, buf);
    }

    /// Opens body chunk `index` in place; `last` must say whether it is the final one.
    pub fn open_chunk(&self, index: u32, last: bool, buf: &mut Vec<u8>) -> Result<(), Unauthentic> {
        self.open(chunk_kind(last), index, buf)
    }

    /// [`MessageCipher::open_chunk`] for chunk `index` of `total` of the
    /// stored message `tx_id`, as a body stream's error: a chunk that fails
    /// authentication is [`crate::MailboxError::Integrity`] (every engine
    /// streams bodies this way).
    pub fn open_stored_chunk(
        &self,
        tx_id: &str,
        index: u32,
        total: u32,
        buf: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        self.open_chunk(index, index + 1 == total, buf)
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    crate::MailboxError::Integrity {
                        tx_id: tx_id.to_owned(),
                        what: "body chunk",
                    },
                )
            })
    }

    pub fn seal_label(&self, buf: &mut Vec<u8>) {
        self.seal(Kind::Label, 0, buf);
    }

    pub fn open_label(&self, buf: &mut Vec<u8>) -> Result<(), Unauthentic> {
        self.open(Kind::Label, 0, buf)
    }
}

fn chunk_kind(last: bool) -> Kind {
    if last { Kind::FinalChunk } else { Kind::Chunk }
}

/// Reads up to one chunk of a body to seal: a full [`CHUNK_SIZE`] chunk unless
/// the body ends first (empty at its end), with room reserved for the tag.
/// Every engine reads an upload this way.
pub async fn read_chunk<R: tokio::io::AsyncRead + Unpin>(body: &mut R) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    // Room for the tag from the start: sealing in place then never moves the
    // chunk to a larger allocation.
    let mut buf = Vec::with_capacity(CHUNK_SIZE + TAG_LEN);
    buf.resize(CHUNK_SIZE, 0);
    let mut filled = 0;
    while filled < CHUNK_SIZE {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        let n = body.read(rest).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> MessageCipher {
        MessageCipher::new(&DataKey::generate(), MessageCipher::random_prefix())
    }

    #[test]
    fn a_chunk_round_trips() {
        let c = cipher();
        let mut buf = b"hello".to_vec();
        c.seal_chunk(3, false, &mut buf);
        assert_eq!(buf.len(), 5 + TAG_LEN);
        c.open_chunk(3, false, &mut buf).unwrap();
        assert_eq!(buf, b"hello");
    }

    #[test]
    fn moving_truncating_or_flipping_a_chunk_fails() {
        let c = cipher();
        let mut sealed = b"hello".to_vec();
        c.seal_chunk(3, false, &mut sealed);
        assert_eq!(
            c.open_chunk(4, false, &mut sealed.clone()),
            Err(Unauthentic)
        );
        assert_eq!(c.open_chunk(3, true, &mut sealed.clone()), Err(Unauthentic));
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert_eq!(c.open_chunk(3, false, &mut flipped), Err(Unauthentic));
        let mut label = sealed.clone();
        assert_eq!(c.open_label(&mut label), Err(Unauthentic));
        assert_eq!(cipher().open_chunk(3, false, &mut sealed), Err(Unauthentic));
    }
}
