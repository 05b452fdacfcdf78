//! # relay-mailbox
//!
//! The contract of the durable, encrypted mailbox behind asynchronous SHS (the
//! trait, the rules every engine decides the same way, the crypto): a message the
//! relay has answered HTTP 202 for is on disk (synced) before the answer goes out;
//! answers wait in the recipient organisation's outbox until fetched and
//! acknowledged; acknowledged and expired messages are deleted and their data key
//! shredded; nothing stays longer than the retention limit (at most 30 days).
//!
//! Not for: HTTP, SHS label or MIME parsing, message lists as XML, routing, or
//! confirm/error generation. The relay does those and fills a [`MessageLabel`]
//! from the label it parsed.
//!
//! # Layout
//!
//! - [`store`]: the [`MailboxStore`] trait every engine implements (put, list,
//!   fetch, ack, delete, sweep...), its outcomes, [`Deletion`] events for the audit
//!   log, and the [`FetchHandle`] that holds a fetch lock while the body streams.
//! - [`meta`]: [`MessageLabel`] (what the relay copies from an SHS label),
//!   [`MessageMeta`] (plus relay bookkeeping), [`Outbox`] addresses, states.
//! - [`filter`]: Axel's delivery-service list filters, parsed from the query
//!   string ([`ListFilter::from_query`]) and applied the same way by every engine.
//! - [`crypto`]: per-message data keys and the chunked AES-256-GCM construction
//!   ([`MessageCipher`] is public so other engines, such as `relay-store`'s
//!   PostgreSQL engine, seal exactly the same way).
//! - [`kek`]: key-encryption keys held outside the store ([`KeyFile`], or any
//!   [`KeyEncryptionKey`] such as a KMS), with rotation.
//! - [`ring`]: [`KeyRing`], a node's key file plus the store's active key id
//!   (new wraps use the active id only), and how engines skip a message whose
//!   key this node does not hold.
//! - [`rules`]: what every engine decides the same way: a message's identity
//!   (sender, tx.id) and [`Which`] message a call means, the order among
//!   several with one tx.id, the [`Quota`] decision.
//! - [`retention`]: per-product time-to-live, refusing anything over 30 days.
//! - [`clock`]: where every time comes from ([`ManualClock`] in tests).
//! - [`verify`]: what an engine hands `shs-relay store verify` (each message's
//!   key id and decrypted body).
//!
//! The engines are in `relay-store`: `relay_store::redb::RedbStore` (one redb
//! file plus its data-key slot file) and `relay_store::PgStore`.
//!
//! The on-disk layout, the crypto design, and what "deleted" means and how the
//! tests prove it are in this crate's `README.md`.

// Exception to [workspace.lints]: 13 indexing/slicing sites on fixed-size
// crypto buffers and 4 `expect`s on constant sizes (2026-12), not yet rewritten.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)]

pub mod clock;
pub mod crypto;
pub mod filter;
pub mod kek;
pub mod meta;
pub mod retention;
pub mod ring;
pub mod rules;
pub mod store;
pub mod verify;

pub use clock::{Clock, ManualClock, SystemClock};
pub use crypto::{CHUNK_SIZE, DataKey, MessageCipher, NONCE_PREFIX_LEN, TAG_LEN, Unauthentic};
pub use filter::{FilterError, ListFilter, SortAttribute, SortOrder};
pub use kek::{KekError, KekId, KeyEncryptionKey, KeyFile, WrappedKey};
pub use meta::{
    DataPart, EmptyOutbox, MessageLabel, MessageMeta, MessageState, Outbox, SequenceType, Status,
    TransferType, sender_org_of, shs_value,
};
pub use retention::{DEFAULT_TTL, MAX_TTL, Retention, RetentionError};
pub use ring::KeyRing;
pub use rules::{OverQuota, Quota, Which};
pub use store::{
    AckOutcome, AckPolicy, Deletion, DeletionReason, FetchBody, FetchHandle, FetchLease,
    MailboxError, MailboxStore, NoLease, PutOutcome, SlotError, Stats, Usage,
};
pub use verify::{BodyCheck, StoredMessage};
