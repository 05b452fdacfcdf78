//! The data-key slot file: every message's wrapped data key, in a fixed-size slot
//! of a small file next to the store, overwritten with zeros in place when the
//! message is deleted.
//!
//! Why not a table in the store: redb is copy-on-write, so a deleted row stays in
//! a freed page until that page happens to be reused. A wrapped key surviving
//! there, together with the operator's KEK, would make the "deleted" ciphertext
//! readable again. Overwriting a fixed slot in place (and syncing) is what makes
//! deletion a crypto-shred on filesystems that overwrite in place (ext4, xfs).
//!
//! Slot 0 is a header (magic and version). A used slot holds: `1`, three zero
//! bytes, the KEK id (u32 BE), the message's local id (16 bytes), the wrapped
//! key's length (u16 BE) and the wrapped key. A free slot is all zeros.

// Exception to [workspace.lints], moved with the data-key slot file from relay-mailbox:
// indexing/slicing on fixed-size crypto and slot buffers and `expect`s on
// constant sizes (2026-12), not yet rewritten.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)]

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use uuid::Uuid;

use relay_mailbox::{SlotError, WrappedKey};

pub(crate) const SLOT_SIZE: usize = 128;
const MAGIC: &[u8; 16] = b"shs-relay-dk-v1\n";
const HEADER: usize = 4 + 4 + 16 + 2;
pub(crate) const MAX_WRAPPED_LEN: usize = SLOT_SIZE - HEADER;

/// An index into the slot file (never 0, the header).
pub(crate) type Slot = relay_mailbox::store::SlotIndex;

struct Allocation {
    /// Slots past the end of the file are free too; `end` is the first of them.
    free: BTreeSet<Slot>,
    end: Slot,
}

pub(crate) struct KeySlots {
    path: PathBuf,
    file: File,
    alloc: Mutex<Allocation>,
}

impl KeySlots {
    /// Opens or creates the slot file; returns it with every used slot's local id.
    pub(crate) fn open(path: &Path) -> Result<(Self, Vec<(Slot, Uuid)>), SlotError> {
        let io = |source| SlotError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            let mut header = [0u8; SLOT_SIZE];
            header[..MAGIC.len()].copy_from_slice(MAGIC);
            file.write_all_at(&header, 0).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let mut header = [0u8; SLOT_SIZE];
        file.read_exact_at(&mut header, 0).map_err(io)?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(SlotError::NotASlotFile {
                path: path.to_path_buf(),
            });
        }
        let end = len.max(SLOT_SIZE as u64).div_ceil(SLOT_SIZE as u64);
        let mut free = BTreeSet::new();
        let mut used = Vec::new();
        let mut buf = [0u8; SLOT_SIZE];
        for slot in 1..end {
            // A torn final slot reads short; treat it as free and rewrite it later.
            match file.read_exact_at(&mut buf, slot * SLOT_SIZE as u64) {
                Ok(()) if buf[0] == 1 => {
                    let id = Uuid::from_bytes(buf[8..24].try_into().expect("16 bytes"));
                    used.push((slot, id));
                }
                Ok(()) | Err(_) => {
                    free.insert(slot);
                }
            }
        }
        let slots = Self {
            path: path.to_path_buf(),
            file,
            alloc: Mutex::new(Allocation { free, end }),
        };
        Ok((slots, used))
    }

    fn io(&self, source: std::io::Error) -> SlotError {
        SlotError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Allocation> {
        self.alloc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a wrapped key durably in a free slot (lowest first, so freed slots are
    /// reused and the file stays small).
    pub(crate) fn store(&self, local_id: Uuid, wrapped: &WrappedKey) -> Result<Slot, SlotError> {
        let slot = {
            let mut a = self.lock();
            match a.free.pop_first() {
                Some(s) => s,
                None => {
                    a.end += 1;
                    a.end - 1
                }
            }
        };
        let written = self.write(slot, local_id, wrapped);
        if written.is_err() {
            self.lock().free.insert(slot);
        }
        written.map(|()| slot)
    }

    /// Replaces the key in a used slot (rewrapping under a newer KEK).
    pub(crate) fn rewrite(
        &self,
        slot: Slot,
        local_id: Uuid,
        wrapped: &WrappedKey,
    ) -> Result<(), SlotError> {
        self.write(slot, local_id, wrapped)
    }

    fn write(&self, slot: Slot, local_id: Uuid, wrapped: &WrappedKey) -> Result<(), SlotError> {
        if wrapped.bytes.len() > MAX_WRAPPED_LEN {
            return Err(SlotError::TooLong(wrapped.bytes.len()));
        }
        let mut buf = [0u8; SLOT_SIZE];
        buf[0] = 1;
        buf[4..8].copy_from_slice(&wrapped.kek_id.to_be_bytes());
        buf[8..24].copy_from_slice(local_id.as_bytes());
        buf[24..26].copy_from_slice(&(wrapped.bytes.len() as u16).to_be_bytes());
        buf[HEADER..HEADER + wrapped.bytes.len()].copy_from_slice(&wrapped.bytes);
        self.file
            .write_all_at(&buf, slot * SLOT_SIZE as u64)
            .map_err(|e| self.io(e))?;
        self.file.sync_data().map_err(|e| self.io(e))
    }

    /// Reads the wrapped key of `local_id` from `slot`.
    pub(crate) fn load(&self, slot: Slot, local_id: Uuid) -> Result<WrappedKey, SlotError> {
        let mut buf = [0u8; SLOT_SIZE];
        self.file
            .read_exact_at(&mut buf, slot * SLOT_SIZE as u64)
            .map_err(|e| self.io(e))?;
        if slot == 0 || buf[0] != 1 || buf[8..24] != local_id.as_bytes()[..] {
            return Err(SlotError::Mismatch { slot, local_id });
        }
        let len = u16::from_be_bytes([buf[24], buf[25]]) as usize;
        if len > MAX_WRAPPED_LEN {
            return Err(SlotError::Mismatch { slot, local_id });
        }
        Ok(WrappedKey {
            kek_id: u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes")),
            bytes: buf[HEADER..HEADER + len].to_vec(),
        })
    }

    /// Overwrites the slots with zeros, syncs, and only then frees them.
    pub(crate) fn erase(&self, slots: &[Slot]) -> Result<(), SlotError> {
        if slots.is_empty() {
            return Ok(());
        }
        let zeros = [0u8; SLOT_SIZE];
        for &slot in slots {
            debug_assert!(slot != 0, "the header is never erased");
            self.file
                .write_all_at(&zeros, slot * SLOT_SIZE as u64)
                .map_err(|e| self.io(e))?;
        }
        self.file.sync_data().map_err(|e| self.io(e))?;
        self.lock().free.extend(slots.iter().copied());
        Ok(())
    }
}
