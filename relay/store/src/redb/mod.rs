//! The one-machine engine of what nodes share, on redb files beside the
//! mailbox file: [`RedbState`] (decisions, ELT counters, mandates;
//! `<mailbox>.state`), [`RedbStatus`] (the status board; `<mailbox>.status`),
//! [`RedbParties`] (the party register; `<mailbox>.parties`), sharing
//! `common` (the file error, the blocking run, insert-if-absent). The redb
//! mailbox itself is `relay_mailbox::RedbStore`, in the contract's crate: it
//! shares the key-slot file and the crypto's internals with it, and that crate
//! stays free of network clients.
//!
//! Its PostgreSQL counterpart is the folder `pg/`. Both are run by the same
//! generic test suites (`tests/`, `on_both_engines!`).

mod common;
pub(crate) mod keys;
pub mod party;
pub mod state;
pub mod status;

pub use party::{RedbParties, parties_path};
pub use state::RedbState;
pub use status::RedbStatus;
