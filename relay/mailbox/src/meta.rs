//! What the store knows about a message: the label fields the relay copies from an
//! SHS label ([`MessageLabel`]) and the relay-internal bookkeeping around them
//! ([`MessageMeta`]). Plain data; no SHS parsing happens here (that is `relay-shs`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const URN_PREFIX: &str = "urn:x-shs:";

/// Strips the `urn:X-shs:` prefix (case-insensitively) and surrounding space, so
/// URN and plain forms of an address or product compare equal.
pub fn shs_value(value: &str) -> &str {
    let value = value.trim();
    match value.get(..URN_PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(URN_PREFIX) => value[URN_PREFIX.len()..].trim(),
        _ => value,
    }
}

/// The organisation part of a `from` address (`2120002411` of
/// `urn:X-shs:2120002411.unit`), or `None` when it names none.
pub fn sender_org_of(from: &str) -> Option<String> {
    let org = shs_value(from);
    let org = org.split('.').next().unwrap_or(org).trim();
    (!org.is_empty()).then(|| org.to_owned())
}

/// An outbox: the full recipient address in plain form, internal id included.
/// `urn:X-shs:0000000000` and `0000000000` are the same outbox;
/// `0000000000.agda` is a different one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Outbox(String);

/// An empty outbox address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbox address is empty")]
pub struct EmptyOutbox;

impl Outbox {
    pub fn parse(address: &str) -> Result<Self, EmptyOutbox> {
        let plain = shs_value(address);
        if plain.is_empty() {
            return Err(EmptyOutbox);
        }
        Ok(Self(plain.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The organisation number: the part before the first `.`.
    pub fn org_number(&self) -> &str {
        self.0.split_once('.').map_or(&self.0, |(org, _)| org)
    }
}

impl FromStr for Outbox {
    type Err = EmptyOutbox;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Outbox {
    type Error = EmptyOutbox;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Outbox> for String {
    fn from(o: Outbox) -> String {
        o.0
    }
}

impl fmt::Display for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHS `sequence-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SequenceType {
    Event,
    Request,
    Reply,
    /// Confirm and error messages.
    Adm,
}

impl SequenceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Request => "request",
            Self::Reply => "reply",
            Self::Adm => "adm",
        }
    }
}

/// SHS `transfer-type`. Only asynchronous messages are ever listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferType {
    Asynch,
    Synch,
}

impl TransferType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asynch => "asynch",
            Self::Synch => "synch",
        }
    }
}

/// SHS `status`: test messages never show up in a production listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Test,
    #[default]
    Production,
}

/// Where a message is in its life in this relay (Axel's `MessageState`, less the
/// forwarding states this relay does not have).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Accepted (HTTP 202 given), not yet routed into an outbox.
    New,
    /// Waiting in its outbox: listable and fetchable.
    Received,
    /// Locked by a fetch that has not finished yet.
    FetchingInProgress,
    /// Delivered in full; waiting for an acknowledgement or expiry.
    Fetched,
    /// Held back after an error; not listable.
    Quarantined,
}

/// One `content/data` element of the label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPart {
    pub datapart_type: String,
    pub filename: Option<String>,
    pub no_of_bytes: Option<u64>,
}

/// The label fields the relay copies from an SHS label. Addresses and the product
/// are kept in plain form (see [`shs_value`]); the relay adds the URN prefix back
/// when it writes a message list.
///
/// Names, subjects and meta values may be personal data: the store only ever
/// writes this struct to disk encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageLabel {
    pub tx_id: String,
    pub corr_id: String,
    pub content_id: String,
    pub from: Option<String>,
    /// The recipient address: the outbox the message waits in.
    pub to: Outbox,
    pub originator: Option<String>,
    pub end_recipient: Option<String>,
    pub product: String,
    pub sequence_type: SequenceType,
    pub transfer_type: TransferType,
    pub status: Status,
    pub subject: Option<String>,
    /// `meta` elements as (name, value), in label order.
    pub meta: Vec<(String, String)>,
    pub data_parts: Vec<DataPart>,
    /// The label `datetime` (node-local time, no zone, as SHS writes it).
    pub datetime: Option<NaiveDateTime>,
}

impl MessageLabel {
    /// A minimal asynchronous production event; the rest can be set field by field.
    pub fn new(tx_id: impl Into<String>, to: Outbox, product: impl Into<String>) -> Self {
        let tx_id = tx_id.into();
        Self {
            corr_id: tx_id.clone(),
            content_id: tx_id.clone(),
            tx_id,
            from: None,
            to,
            originator: None,
            end_recipient: None,
            product: product.into(),
            sequence_type: SequenceType::Event,
            transfer_type: TransferType::Asynch,
            status: Status::Production,
            subject: None,
            meta: Vec::new(),
            data_parts: Vec::new(),
            datetime: None,
        }
    }

    /// Puts addresses and the product in plain form. Every engine's `put` calls it.
    pub fn normalise(&mut self) {
        fn plain(v: &mut Option<String>) {
            if let Some(s) = v {
                let p = shs_value(s);
                if p.is_empty() {
                    *v = None;
                } else if p.len() != s.len() {
                    *s = p.to_owned();
                }
            }
        }
        self.tx_id = self.tx_id.trim().to_owned();
        plain(&mut self.from);
        plain(&mut self.originator);
        plain(&mut self.end_recipient);
        self.product = shs_value(&self.product).to_owned();
    }

    /// The sending organisation: the organisation part of `from`
    /// (`2120002411` of `2120002411.unit`), or `None` when the label names
    /// none. What the per-sender quota counts by, in every engine.
    pub fn sender_org(&self) -> Option<String> {
        sender_org_of(self.from.as_deref()?)
    }

    /// The value of the first `meta` element with this name.
    pub(crate) fn meta_value(&self, name: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A stored message as the store reports it: the label plus relay bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub label: MessageLabel,
    /// The store's own id for the entry (`X-shs-localid`).
    pub local_id: Uuid,
    pub state: MessageState,
    pub acknowledged: bool,
    /// Accepted but not yet processed: the relay resumes these after a restart.
    pub processing: bool,
    pub arrival: DateTime<Utc>,
    /// When `state` last changed (the `since` list filter compares this).
    pub state_timestamp: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Plaintext body size in bytes.
    pub body_bytes: u64,
}

impl MessageMeta {
    pub fn tx_id(&self) -> &str {
        &self.label.tx_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_prefix_is_stripped_case_insensitively() {
        assert_eq!(shs_value("urn:X-shs:0000000000"), "0000000000");
        assert_eq!(shs_value("URN:x-SHS:0000000000.agda"), "0000000000.agda");
        assert_eq!(shs_value(" 0000000000 "), "0000000000");
        assert_eq!(
            shs_value("mailto:kurt@example.com"),
            "mailto:kurt@example.com"
        );
        assert_eq!(shs_value("urn:"), "urn:");
    }

    #[test]
    fn outbox_keeps_the_internal_id() {
        let o = Outbox::parse("urn:x-shs:1234567890.ABCD").unwrap();
        assert_eq!(o.as_str(), "1234567890.ABCD");
        assert_eq!(o.org_number(), "1234567890");
        assert_ne!(o, Outbox::parse("1234567890").unwrap());
        assert_eq!(Outbox::parse("urn:X-shs: "), Err(EmptyOutbox));
    }
}
