//! The mailbox's rules, written once for every engine: what identifies a
//! message, which message a delivery-service call by tx.id means, whether an
//! upload fits the quotas. Engines store and find; they decide through this
//! module (or, where the decision must be one database statement, say in SQL
//! what the function here says and are tested by the same suite).
//!
//! Not for: storage, crypto, or what the relay answers a caller (the relay maps
//! [`OverQuota`] and [`crate::PutOutcome::Duplicate`] to SHS answers).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::meta::{MessageLabel, MessageState, SequenceType, TransferType};
use crate::store::Usage;

/// The sender part of a message's identity: the sending organisation
/// ([`MessageLabel::sender_org`]), or `""` when the label names none (messages
/// the relay writes itself name the node).
///
/// A message is identified by **(sender, tx.id)**: the same tx.id from two
/// organisations is two messages, each stored and answered on its own; the same
/// (sender, tx.id) again while the first is held is a duplicate. Every engine
/// decides that in the write that makes the message visible (a unique key), never
/// by a read before it.
pub fn sender_of(label: &MessageLabel) -> String {
    label.sender_org().unwrap_or_default()
}

/// Which stored message a call means: a tx.id, and the sender when the caller
/// knows it. The relay always names both for its own work (routing, resuming,
/// deleting); the delivery service names the sender when the recipient asks
/// with `?sender=`, else a bare tx.id picks by [`fetch_order`] / [`ack_order`]
/// among the messages of the caller's own outbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Which {
    pub tx_id: String,
    pub sender: Option<String>,
}

impl Which {
    /// Exactly the message `sender` sent with `tx_id`.
    pub fn exact(tx_id: impl Into<String>, sender: impl Into<String>) -> Self {
        Self {
            tx_id: tx_id.into(),
            sender: Some(sender.into()),
        }
    }

    /// The message of `label` (its tx.id and sender).
    pub fn of(label: &MessageLabel) -> Self {
        Self::exact(label.tx_id.trim(), sender_of(label))
    }

    /// Whether a stored message with this tx.id and sender is meant.
    pub fn matches(&self, tx_id: &str, sender: &str) -> bool {
        self.tx_id == tx_id && self.sender.as_deref().is_none_or(|s| s == sender)
    }
}

impl From<&str> for Which {
    fn from(tx_id: &str) -> Self {
        Self {
            tx_id: tx_id.to_owned(),
            sender: None,
        }
    }
}

impl From<&String> for Which {
    fn from(tx_id: &String) -> Self {
        Self::from(tx_id.as_str())
    }
}

impl From<String> for Which {
    fn from(tx_id: String) -> Self {
        Self {
            tx_id,
            sender: None,
        }
    }
}

/// Whether a message waits in its outbox, listed and fetchable: delivered
/// (`Received`), processed, asynchronous, not expired. (The PostgreSQL engine
/// says the same in the `WHERE` of its list and fetch.)
pub fn waiting(
    state: MessageState,
    processing: bool,
    transfer_type: TransferType,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    state == MessageState::Received
        && !processing
        && transfer_type == TransferType::Asynch
        && expires_at > now
}

/// Whether an ack may take a message of the caller's outbox: processed and
/// delivered (Axel acks any delivered state; a recipient cannot know of a
/// message not yet in its outbox).
pub fn ackable(state: MessageState, processing: bool) -> bool {
    !processing
        && matches!(
            state,
            MessageState::Received | MessageState::FetchingInProgress | MessageState::Fetched
        )
}

/// Whether an ack sends the sender a `confirm`: the first ack of a message
/// that is not itself an `adm` message.
pub fn confirms(sequence_type: SequenceType, already_acknowledged: bool) -> bool {
    sequence_type != SequenceType::Adm && !already_acknowledged
}

/// What decides between several messages that one call could mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub local_id: Uuid,
    pub state: MessageState,
    pub arrival: DateTime<Utc>,
}

/// The order in which several waiting messages with one tx.id (from different
/// senders) in one outbox are handed out by a fetch by tx.id: oldest first (by
/// arrival, then local id), one at a time. Each is its own message; the outbox
/// belongs to the recipient, so none of them is another organisation's.
pub fn fetch_order(candidates: &mut [Candidate]) {
    candidates.sort_by_key(|c| (c.arrival, c.local_id));
}

/// The order in which an ack by tx.id picks among several ackable messages with
/// that tx.id in one outbox: one already delivered (being fetched or fetched)
/// before one still waiting, then oldest first. So fetch-then-ack by tx.id acks
/// the message just fetched, and its sender gets the confirm.
pub fn ack_order(candidates: &mut [Candidate]) {
    candidates.sort_by_key(|c| (c.state == MessageState::Received, c.arrival, c.local_id));
}

/// The SQL `ORDER BY` that says [`fetch_order`], on the `mailbox_messages`
/// row named `t`.
pub fn fetch_order_sql(t: &str) -> String {
    format!("{t}.arrival, {t}.local_id")
}

/// The SQL `ORDER BY` that says [`ack_order`], on the row named `t`.
pub fn ack_order_sql(t: &str) -> String {
    format!("({t}.state = 'received'), {t}.arrival, {t}.local_id")
}

/// The mailbox quotas an upload must fit, checked inside the write that makes
/// the message visible (so uploads at the same time, on any node, never pass
/// them). [`Quota::NONE`] for messages the relay writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_messages_per_outbox: u64,
    pub max_bytes_per_outbox: u64,
    pub max_messages_per_sender: u64,
    pub max_bytes_per_sender: u64,
}

impl Quota {
    /// No limit.
    pub const NONE: Self = Self {
        max_messages_per_outbox: u64::MAX,
        max_bytes_per_outbox: u64::MAX,
        max_messages_per_sender: u64::MAX,
        max_bytes_per_sender: u64::MAX,
    };

    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }

    /// How far an engine needs to count to decide (counting may stop past it).
    pub fn count_limit(&self) -> u64 {
        self.max_messages_per_outbox
            .max(self.max_messages_per_sender)
    }

    /// The decision, from what the recipient's outbox and the sender hold now
    /// (messages not deleted or expired, without the new one): a new message
    /// fits while both hold fewer messages and fewer bytes than their limits.
    /// The sender's limit is checked first (it is the caller's own doing).
    pub fn check(&self, outbox: Usage, sender: Usage) -> Result<(), OverQuota> {
        if sender.messages >= self.max_messages_per_sender
            || sender.bytes >= self.max_bytes_per_sender
        {
            return Err(OverQuota::Sender(sender));
        }
        if outbox.messages >= self.max_messages_per_outbox
            || outbox.bytes >= self.max_bytes_per_outbox
        {
            return Err(OverQuota::Outbox(outbox));
        }
        Ok(())
    }
}

/// Which quota a refused upload would have passed, with what was held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverQuota {
    /// The sender holds its limit of messages or bytes not yet fetched.
    Sender(Usage),
    /// The recipient's outbox is full.
    Outbox(Usage),
}

/// What every engine checks of a label before it stores a message: the label
/// normalised, a tx.id and a product present.
pub fn check_label(label: &mut crate::MessageLabel) -> Result<(), crate::MailboxError> {
    label.normalise();
    if label.tx_id.is_empty() {
        return Err(crate::MailboxError::InvalidLabel("tx.id is empty"));
    }
    if label.product.is_empty() {
        return Err(crate::MailboxError::InvalidLabel("product is empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn c(n: u128, state: MessageState, secs: i64) -> Candidate {
        Candidate {
            local_id: Uuid::from_u128(n),
            state,
            arrival: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(secs),
        }
    }

    #[test]
    fn a_fetch_by_tx_id_hands_out_the_oldest_first() {
        let mut v = vec![
            c(1, MessageState::Received, 5),
            c(2, MessageState::Received, 3),
        ];
        fetch_order(&mut v);
        assert_eq!(v[0].local_id, Uuid::from_u128(2));
    }

    #[test]
    fn an_ack_by_tx_id_takes_the_delivered_message_first() {
        let mut v = vec![
            c(1, MessageState::Received, 1),
            c(2, MessageState::Fetched, 9),
        ];
        ack_order(&mut v);
        assert_eq!(v[0].local_id, Uuid::from_u128(2));
    }

    #[test]
    fn the_sender_quota_is_checked_before_the_outbox_quota() {
        let q = Quota {
            max_messages_per_outbox: 1,
            max_bytes_per_outbox: 100,
            max_messages_per_sender: 1,
            max_bytes_per_sender: 100,
        };
        let full = Usage {
            messages: 1,
            bytes: 1,
        };
        assert_eq!(q.check(full, full), Err(OverQuota::Sender(full)));
        assert_eq!(
            q.check(full, Usage::default()),
            Err(OverQuota::Outbox(full))
        );
        assert_eq!(q.check(Usage::default(), Usage::default()), Ok(()));
        assert!(Quota::NONE.check(full, full).is_ok());
    }
}
