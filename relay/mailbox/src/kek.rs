//! Key-encryption keys (KEKs): what wraps every message's data key. They live
//! **outside** the message store, held by the operator: by default a key file
//! ([`KeyFile`]), behind the [`KeyEncryptionKey`] trait so an external KMS or HSM
//! can take its place. Without the KEK, a stolen store file is ciphertext only.
//!
//! Rotation: a key file holds several KEKs, each with a numeric id. A bare
//! [`KeyFile`] wraps new data keys under its newest (highest id); the relay wraps
//! through a [`crate::KeyRing`] instead, under the id the store names active, so
//! a key added to one node's file wraps nothing before every node holds it.
//! Unwrapping finds the KEK by the id stored next to the wrapped key.
//! [`KeyFile::add_after`] adds a KEK; `relay_store::redb::RedbStore::rewrap_all` moves old
//! wraps to the wrapping key; [`KeyFile::retire`] then removes the old KEK. The
//! relay never creates a key file on its own ([`KeyFile::create`] is the
//! explicit first step, `shs-relay keys init`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{DataKey, fill_random};

/// Identifies one KEK among several (rotation).
pub type KekId = u32;

/// A data key wrapped under a KEK: safe to store, useless without that KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek_id: KekId,
    pub bytes: Vec<u8>,
}

/// Failures of the key-encryption layer. All are the relay's own (internal) faults.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path}, line {line}: {reason}")]
    Format {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },
    #[error("key file {path} is readable by others (mode {mode:o}); it must be 0600")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {path} holds no key")]
    Empty { path: PathBuf },
    #[error("no key-encryption key with id {0}")]
    UnknownKek(KekId),
    #[error("cannot retire key-encryption key {0}: it is the only one")]
    LastKek(KekId),
    #[error("wrapped data key failed authentication")]
    Unauthentic,
    #[error("key-encryption service: {0}")]
    Service(String),
}

/// Wraps and unwraps data keys. Implementations may block (a KMS call); the store
/// only calls them from blocking threads.
pub trait KeyEncryptionKey: Send + Sync + 'static {
    /// Wraps `key` under the newest KEK. `context` (the message's local id) is
    /// bound to the wrap, so a wrapped key cannot be moved to another message.
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, KekError>;

    /// Unwraps with the KEK named in `wrapped`.
    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, KekError>;

    /// The id new wraps use.
    fn current_id(&self) -> KekId;
}

const WRAP_DOMAIN: &[u8] = b"shs-relay/mailbox/kek/v1";
const NONCE_LEN: usize = 12;

/// Operator-held KEKs in a file of lines `<id> <64 hex digits>` (32 random bytes
/// each), created with mode 0600 and refused if group or others may read it.
pub struct KeyFile {
    path: PathBuf,
    keys: RwLock<BTreeMap<KekId, Zeroizing<[u8; 32]>>>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .field("ids", &self.ids())
            .finish()
    }
}

impl KeyFile {
    /// Opens the key file, creating it with one fresh KEK (id 1) if it does not exist.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, KekError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| KekError::Io {
            path: path.clone(),
            source,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                let mut keys = BTreeMap::new();
                keys.insert(1, random_kek());
                file.write_all(render(&keys).as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                sync_parent(&path).map_err(io)?;
                Ok(Self {
                    path,
                    keys: RwLock::new(keys),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::open(&path),
            Err(e) => Err(io(e)),
        }
    }

    /// Opens an existing key file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, KekError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| KekError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KekError::Permissions { path, mode });
        }
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(io)?;
        let keys = parse(&path, &text)?;
        if keys.is_empty() {
            return Err(KekError::Empty { path });
        }
        Ok(Self {
            path,
            keys: RwLock::new(keys),
        })
    }

    /// A key file that does not exist yet: it holds no key, so a node with it
    /// can open a store only to be told which key ids it lacks.
    pub fn absent(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            keys: RwLock::new(BTreeMap::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ids of the KEKs held, oldest first.
    pub fn ids(&self) -> Vec<KekId> {
        self.read().keys().copied().collect()
    }

    /// Adds a fresh KEK with the next id; new wraps use it from now on.
    pub fn rotate(&self) -> Result<KekId, KekError> {
        self.add_after(0)
    }

    /// Creates a key file holding one fresh KEK (id 1); refused if the file
    /// exists. The explicit first step of a new installation: the relay never
    /// creates its key file itself.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, KekError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| KekError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let mut keys = BTreeMap::new();
        keys.insert(1, random_kek());
        file.write_all(render(&keys).as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        sync_parent(&path).map_err(io)?;
        Ok(Self {
            path,
            keys: RwLock::new(keys),
        })
    }

    /// Adds a fresh KEK with an id above both this file's ids and `floor` (the
    /// highest id the store knows, so two nodes never mint the same id).
    pub fn add_after(&self, floor: KekId) -> Result<KekId, KekError> {
        let mut keys = self.write();
        let id = keys
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(floor)
            .checked_add(1)
            .ok_or(KekError::UnknownKek(KekId::MAX))?;
        let mut next = keys.clone();
        next.insert(id, random_kek());
        self.overwrite(&next)?;
        *keys = next;
        Ok(id)
    }

    /// Removes a KEK. Every data key still wrapped under it becomes unreadable,
    /// so rewrap first (`relay_store::redb::RedbStore::rewrap_all`). The file is rewritten
    /// in place, so the retired key's bytes are overwritten rather than left in a
    /// freed block.
    pub fn retire(&self, id: KekId) -> Result<(), KekError> {
        let mut keys = self.write();
        if !keys.contains_key(&id) {
            return Err(KekError::UnknownKek(id));
        }
        if keys.len() == 1 {
            return Err(KekError::LastKek(id));
        }
        let mut next = keys.clone();
        next.remove(&id);
        self.overwrite(&next)?;
        *keys = next;
        Ok(())
    }

    /// Rewrites the file in place: the new text, padded with newlines over the old
    /// length, synced, then truncated.
    fn overwrite(&self, keys: &BTreeMap<KekId, Zeroizing<[u8; 32]>>) -> Result<(), KekError> {
        let io = |source| KekError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(io)?;
        let old_len = file.metadata().map_err(io)?.len() as usize;
        let text = render(keys);
        let mut bytes = Zeroizing::new(text.as_bytes().to_vec());
        let new_len = bytes.len();
        if bytes.len() < old_len {
            bytes.resize(old_len, b'\n');
        }
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        file.set_len(new_len as u64).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads the file again (another node's copy replaced it); on an error the
    /// keys held stay as they were.
    pub fn reload(&self) -> Result<(), KekError> {
        let fresh = Self::open(&self.path)?;
        let keys = std::mem::take(&mut *fresh.write());
        *self.write() = keys;
        Ok(())
    }

    /// Whether the file holds a KEK with this id.
    pub fn holds(&self, id: KekId) -> bool {
        self.read().contains_key(&id)
    }

    /// Each KEK's fingerprint ([`fingerprint`]), by id.
    pub fn fingerprints(&self) -> BTreeMap<KekId, String> {
        self.read()
            .iter()
            .map(|(id, k)| (*id, fingerprint(k)))
            .collect()
    }

    /// Wraps under the KEK `id` (the store's active key), not the newest.
    pub fn wrap_under(
        &self,
        id: KekId,
        key: &DataKey,
        context: &[u8],
    ) -> Result<WrappedKey, KekError> {
        let keys = self.read();
        let kek = keys.get(&id).ok_or(KekError::UnknownKek(id))?;
        seal(id, kek, key, context)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<KekId, Zeroizing<[u8; 32]>>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<KekId, Zeroizing<[u8; 32]>>> {
        self.keys.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl KeyEncryptionKey for KeyFile {
    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<WrappedKey, KekError> {
        let keys = self.read();
        let (&kek_id, kek) = keys.iter().next_back().ok_or(KekError::Empty {
            path: self.path.clone(),
        })?;
        seal(kek_id, kek, key, context)
    }

    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey, KekError> {
        open_wrapped(&self.read(), wrapped, context)
    }

    fn current_id(&self) -> KekId {
        self.read().keys().next_back().copied().unwrap_or(0)
    }
}

/// What identifies a KEK's bytes without revealing them: the first 16 bytes of
/// SHA-256 over a domain tag and the key, as hex. The store records it per key
/// id, so a node whose file holds another key under the same id is refused.
pub fn fingerprint(kek: &[u8; 32]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"shs-relay/mailbox/kek/fingerprint/v1");
    h.update(kek);
    let digest = h.finalize();
    let mut s = String::with_capacity(32);
    for b in digest.iter().take(16) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn seal(
    kek_id: KekId,
    kek: &[u8; 32],
    key: &DataKey,
    context: &[u8],
) -> Result<WrappedKey, KekError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    let mut buf = Vec::with_capacity(NONCE_LEN + 32 + 16);
    buf.extend_from_slice(key.expose_secret());
    cipher(kek)
        .encrypt_in_place(Nonce::from_slice(&nonce), &aad(kek_id, context), &mut buf)
        .map_err(|_| KekError::Unauthentic)?;
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&buf);
    Ok(WrappedKey { kek_id, bytes })
}

fn open_wrapped(
    keys: &BTreeMap<KekId, Zeroizing<[u8; 32]>>,
    wrapped: &WrappedKey,
    context: &[u8],
) -> Result<DataKey, KekError> {
    let kek = keys
        .get(&wrapped.kek_id)
        .ok_or(KekError::UnknownKek(wrapped.kek_id))?;
    if wrapped.bytes.len() != NONCE_LEN + 32 + 16 {
        return Err(KekError::Unauthentic);
    }
    let (nonce, sealed) = wrapped.bytes.split_at(NONCE_LEN);
    let mut buf = Zeroizing::new(sealed.to_vec());
    cipher(kek)
        .decrypt_in_place(
            Nonce::from_slice(nonce),
            &aad(wrapped.kek_id, context),
            &mut *buf,
        )
        .map_err(|_| KekError::Unauthentic)?;
    DataKey::from_bytes(&buf).ok_or(KekError::Unauthentic)
}

fn cipher(kek: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(kek))
}

fn aad(kek_id: KekId, context: &[u8]) -> Vec<u8> {
    let mut aad = WRAP_DOMAIN.to_vec();
    aad.extend_from_slice(&kek_id.to_be_bytes());
    aad.extend_from_slice(context);
    aad
}

fn random_kek() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    fill_random(k.as_mut());
    k
}

fn render(keys: &BTreeMap<KekId, Zeroizing<[u8; 32]>>) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::from(
        "# shs-relay mailbox key-encryption keys: `<id> <32 bytes as hex>` per line.\n\
         # The store names the id that wraps new data keys (`shs-relay keys status`).\n\
         # Keep this file outside the message store, mode 0600, the same on every\n\
         # node, and back it up: without it the store cannot be read.\n",
    ));
    for (id, key) in keys {
        let _ = write!(s, "{id} ");
        for b in key.iter() {
            let _ = write!(s, "{b:02x}");
        }
        s.push('\n');
    }
    s
}

fn parse(path: &Path, text: &str) -> Result<BTreeMap<KekId, Zeroizing<[u8; 32]>>, KekError> {
    let mut keys = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason| KekError::Format {
            path: path.to_path_buf(),
            line: n + 1,
            reason,
        };
        let (id, hex) = line
            .split_once(char::is_whitespace)
            .ok_or(bad("expected `<id> <hex key>`"))?;
        let id: KekId = id.parse().map_err(|_| bad("the id is not a number"))?;
        let mut key = Zeroizing::new([0u8; 32]);
        decode_hex(hex.trim(), &mut key).ok_or(bad("the key is not 64 hex digits"))?;
        if keys.insert(id, key).is_some() {
            return Err(bad("the id is used twice"));
        }
    }
    Ok(keys)
}

fn decode_hex(hex: &str, out: &mut [u8; 32]) -> Option<()> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        let mut v = digit(pair[0])? * 16 + digit(pair[1])?;
        out[i] = v as u8;
        v.zeroize();
    }
    Some(())
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_file_is_private_and_reopens_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let kf = KeyFile::open_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dk = DataKey::generate();
        let wrapped = kf.wrap(&dk, b"ctx").unwrap();
        assert_eq!(wrapped.kek_id, 1);
        drop(kf);
        let kf = KeyFile::open_or_create(&path).unwrap();
        let back = kf.unwrap(&wrapped, b"ctx").unwrap();
        assert_eq!(back.expose_secret(), dk.expose_secret());
        assert!(matches!(
            kf.unwrap(&wrapped, b"other message"),
            Err(KekError::Unauthentic)
        ));
    }

    #[test]
    fn rotation_wraps_with_the_newest_and_still_unwraps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let kf = KeyFile::open_or_create(&path).unwrap();
        let dk = DataKey::generate();
        let old = kf.wrap(&dk, b"c").unwrap();
        assert_eq!(kf.rotate().unwrap(), 2);
        let new = kf.wrap(&dk, b"c").unwrap();
        assert_eq!((old.kek_id, new.kek_id), (1, 2));
        let kf = KeyFile::open(&path).unwrap();
        assert_eq!(kf.ids(), [1, 2]);
        assert!(kf.unwrap(&old, b"c").is_ok());
        kf.retire(1).unwrap();
        let kf = KeyFile::open(&path).unwrap();
        assert_eq!(kf.ids(), [2]);
        assert!(matches!(
            kf.unwrap(&old, b"c"),
            Err(KekError::UnknownKek(1))
        ));
        assert!(kf.unwrap(&new, b"c").is_ok());
        assert!(matches!(kf.retire(2), Err(KekError::LastKek(2))));
    }

    #[test]
    fn a_world_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        drop(KeyFile::open_or_create(&path).unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            KeyFile::open(&path),
            Err(KekError::Permissions { mode: 0o644, .. })
        ));
    }

    #[test]
    fn a_malformed_key_file_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        std::fs::write(&path, "# c\n1 abcd\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            KeyFile::open(&path),
            Err(KekError::Format { line: 2, .. })
        ));
    }
}
