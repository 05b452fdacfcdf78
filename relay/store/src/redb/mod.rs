//! The one-machine engine of what nodes share, on redb files beside the
//! mailbox file: [`RedbState`] (decisions, ELT counters, mandates;
//! `<mailbox>.state`), [`RedbStatus`] (the status board; `<mailbox>.status`),
//! [`RedbParties`] (the party register; `<mailbox>.parties`), sharing
//! `common` (the file error, the blocking run, insert-if-absent), and
//! [`RedbStore`] (`mailbox.rs`), the mailbox on one redb file plus its
//! data-key slot file (`slots.rs`, overwritten in place on deletion). The
//! mailbox's contract and rules are `relay-mailbox`'s.
//!
//! Its PostgreSQL counterpart is the folder `pg/`. Both are run by the same
//! generic test suites (`tests/`, `on_both_engines!`).

mod common;
pub(crate) mod keys;
pub mod mailbox;
pub mod party;
mod slots;
pub mod state;
pub mod status;

pub use mailbox::{DEFAULT_CACHE_BYTES, RedbStore, StoreOptions};
pub use party::{RedbParties, parties_path};
pub use state::RedbState;
pub use status::RedbStatus;
