//! Keyed pseudonyms for the persons a request was about.
//!
//! The audit trail must answer "who asked about this person?" without holding the
//! personnummer: each person is written as HMAC-SHA256(key, 12-digit personnummer),
//! hex. Without the key a pseudonym cannot be tested against a guessed number (a
//! plain hash could: there are only about 10^9 valid numbers per century).
//!
//! The key is owned by the operator's security officer, not by the people who read
//! the audit files; see `docs/audit.md` for custody and rotation. This module never
//! logs, prints or serialises key bytes: `Debug` shows the key id only.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore;
use relay_ident::Personnummer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{AuditError, Result};

const KEY_LEN: usize = 32;

/// A secret key for person pseudonyms, loaded from a key file.
///
/// Key file format: 64 hexadecimal digits (upper or lower case) with optional
/// surrounding whitespace, as [`PseudonymKey::create`] writes it; a file of exactly
/// 32 raw bytes is also accepted. Hex is the written form because it can be
/// printed for a sealed envelope and typed back.
#[derive(Clone)]
pub struct PseudonymKey {
    mac: Hmac<Sha256>,
    id: String,
}

impl PseudonymKey {
    /// Loads a key file (hex or raw, see the type's docs). Warns when the file can be
    /// read by group or others.
    pub fn load(path: &Path) -> Result<Self> {
        let raw = Zeroizing::new(std::fs::read(path).map_err(AuditError::io(path))?);
        warn_if_readable_by_others(path);
        let key = decode_key(&raw).ok_or_else(|| AuditError::KeyFormat {
            path: path.to_owned(),
        })?;
        Ok(Self::from_bytes(&key))
    }

    /// Creates a new key file with 32 random bytes in hex, mode 0600, and returns
    /// the key. Refuses to overwrite an existing file.
    pub fn create(path: &Path) -> Result<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(&mut key[..]);
        let hex = Zeroizing::new(format!("{}\n", hex(&key[..])));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                AuditError::KeyExists {
                    path: path.to_owned(),
                }
            } else {
                AuditError::io(path)(e)
            }
        })?;
        file.write_all(hex.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(AuditError::io(path))?;
        Ok(Self::from_bytes(&key[..]))
    }

    /// A key from its bytes (tests, or a key held in a secrets manager).
    pub fn from_bytes(key: &[u8]) -> Self {
        // HMAC accepts keys of any length; ours are 32 bytes by construction.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        let mut h = Sha256::new();
        h.update(b"relay-audit key id v1\0");
        h.update(key);
        let id = hex(&h.finalize()[..8]);
        Self { mac, id }
    }

    /// The pseudonym of `person`: HMAC-SHA256 of the 12-digit form, 64 hex digits.
    pub fn pseudonym(&self, person: &Personnummer) -> String {
        self.pseudonymise(person).0
    }

    /// As [`PseudonymKey::pseudonym`], as the typed value records carry.
    pub fn pseudonymise(&self, person: &Personnummer) -> Pseudonym {
        let mut mac = self.mac.clone();
        mac.update(person.as_str().as_bytes());
        Pseudonym(hex(&mac.finalize().into_bytes()))
    }

    /// A short public identifier of the key (16 hex digits of a domain-separated
    /// SHA-256 of it). Written into request records so that `who-asked` can say
    /// which key a period needs; it reveals nothing usable about the key.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PseudonymKey(id {})", self.id)
    }
}

/// A person as the audit trail knows them: a keyed pseudonym, never the number.
/// Only [`PseudonymKey::pseudonymise`] (or reading a record back) makes one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pseudonym(String);

impl Pseudonym {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Loads several key files (the current one and those of earlier periods).
pub fn load_keys(paths: &[PathBuf]) -> Result<Vec<PseudonymKey>> {
    paths.iter().map(|p| PseudonymKey::load(p)).collect()
}

/// The key new records are made with, replaceable while the relay runs (a key
/// rotation takes effect at the next reload; records in flight finish with the
/// key they began with).
#[derive(Debug, Clone)]
pub struct CurrentKey(std::sync::Arc<arc_swap::ArcSwap<PseudonymKey>>);

impl CurrentKey {
    pub fn new(key: PseudonymKey) -> Self {
        Self(std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(key)))
    }

    /// The key in force now.
    pub fn load(&self) -> std::sync::Arc<PseudonymKey> {
        self.0.load_full()
    }

    /// New records use `key` from now on.
    pub fn replace(&self, key: PseudonymKey) {
        self.0.store(std::sync::Arc::new(key));
    }
}

/// Rotates the key in `key_file`: the current key is kept beside it as a
/// **retired key**, `<key_file>.<key id>` (mode 0600; `who-asked` reads it for
/// the records made with it), and a new random key replaces it atomically
/// (written to a temporary file, fsynced, renamed, directory fsynced). Returns
/// (the retired key, where it was kept, the new key). The relay starts using
/// the new key at its next reload.
pub fn rotate_key(key_file: &Path) -> Result<(PseudonymKey, PathBuf, PseudonymKey)> {
    let old = PseudonymKey::load(key_file)?;
    let raw = Zeroizing::new(std::fs::read(key_file).map_err(AuditError::io(key_file))?);
    let name = key_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pseudonym.key".to_owned());
    let retired = key_file.with_file_name(format!("{name}.{}", old.id()));
    write_new(&retired, &raw)?;
    let fresh = key_file.with_file_name(format!("{name}.new"));
    let _ = std::fs::remove_file(&fresh);
    let new = PseudonymKey::create(&fresh)?;
    std::fs::rename(&fresh, key_file).map_err(AuditError::io(key_file))?;
    if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(AuditError::io(dir))?;
    }
    Ok((old, retired, new))
}

/// The retired keys kept beside `key_file` by [`rotate_key`]
/// (`<key_file>.<16 hex digits>`), in name order.
pub fn retired_key_files(key_file: &Path) -> Vec<PathBuf> {
    let Some(name) = key_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Vec::new();
    };
    let dir = match key_file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let prefix = format!("{name}.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix(&prefix)
                .is_some_and(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            AuditError::KeyExists {
                path: path.to_owned(),
            }
        } else {
            AuditError::io(path)(e)
        }
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(AuditError::io(path))
}

fn decode_key(raw: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(raw).ok().map(str::trim);
    if let Some(t) = text.filter(|t| t.len() == 2 * KEY_LEN) {
        let bytes: Option<Vec<u8>> = (0..KEY_LEN)
            .map(|i| u8::from_str_radix(t.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        if let Some(b) = bytes {
            return Some(Zeroizing::new(b));
        }
    }
    (raw.len() == KEY_LEN).then(|| Zeroizing::new(raw.to_vec()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "pseudonym key file is readable by group or others; it should be mode 0600"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tolvan() -> Personnummer {
        Personnummer::parse("19121212-1212").unwrap()
    }

    #[test]
    fn the_pseudonym_is_hmac_sha256_of_the_twelve_digits_in_hex() {
        let key = PseudonymKey::from_bytes(&[7u8; 32]);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).unwrap();
        mac.update(b"191212121212");
        assert_eq!(key.pseudonym(&tolvan()), hex(&mac.finalize().into_bytes()));
        assert_eq!(key.pseudonym(&tolvan()).len(), 64);
    }

    #[test]
    fn different_keys_give_different_pseudonyms_and_ids() {
        let a = PseudonymKey::from_bytes(&[1u8; 32]);
        let b = PseudonymKey::from_bytes(&[2u8; 32]);
        assert_ne!(a.pseudonym(&tolvan()), b.pseudonym(&tolvan()));
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
    }

    #[test]
    fn a_created_key_file_is_hex_mode_0600_and_loads_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pseudonym.key");
        let created = PseudonymKey::create(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert!(text.trim().bytes().all(|b| b.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = PseudonymKey::load(&path).unwrap();
        assert_eq!(loaded.pseudonym(&tolvan()), created.pseudonym(&tolvan()));
        assert!(matches!(
            PseudonymKey::create(&path),
            Err(AuditError::KeyExists { .. })
        ));
    }

    #[test]
    fn a_raw_32_byte_key_file_is_accepted_and_other_sizes_refused() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.key");
        std::fs::write(&raw, [9u8; 32]).unwrap();
        let key = PseudonymKey::load(&raw).unwrap();
        assert_eq!(
            key.pseudonym(&tolvan()),
            PseudonymKey::from_bytes(&[9u8; 32]).pseudonym(&tolvan())
        );
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "abcd").unwrap();
        assert!(matches!(
            PseudonymKey::load(&bad),
            Err(AuditError::KeyFormat { .. })
        ));
    }

    #[test]
    fn a_rotated_key_is_kept_as_a_retired_key_and_a_new_one_takes_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pseudonym.key");
        let first = PseudonymKey::create(&path).unwrap();
        let (old, retired, new) = rotate_key(&path).unwrap();
        assert_eq!(old.id(), first.id());
        assert_eq!(
            retired,
            dir.path().join(format!("pseudonym.key.{}", first.id()))
        );
        assert_eq!(PseudonymKey::load(&retired).unwrap().id(), first.id());
        assert_eq!(PseudonymKey::load(&path).unwrap().id(), new.id());
        assert_ne!(new.id(), first.id());
        let (_, second, _) = rotate_key(&path).unwrap();
        let mut want = vec![retired, second];
        want.sort();
        assert_eq!(retired_key_files(&path), want);
        assert!(!dir.path().join("pseudonym.key.new").exists());
    }

    #[test]
    fn debug_shows_the_id_and_not_the_key() {
        let key = PseudonymKey::from_bytes(&[0xabu8; 32]);
        let shown = format!("{key:?}");
        assert!(shown.contains(key.id()));
        assert!(!shown.contains(&"ab".repeat(32)));
    }
}
