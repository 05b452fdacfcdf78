//! `shs.message-list` documents (`shs-message-list-1.2.01.dtd`): what the
//! delivery service lists for an outbox.

use crate::error::ShsError;
use crate::label::DataRef;
use crate::xml::{self, DocumentLimits, MESSAGE_LIST_LIMITS, OutputEncoding, XmlWriter};

/// One listed message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListedMessage {
    pub tx_id: String,
    /// The label's datetime.
    pub timestamp: String,
    pub corr_id: Option<String>,
    pub content_id: Option<String>,
    pub size: Option<String>,
    pub originator: Option<String>,
    /// URN form on output.
    pub from: Option<String>,
    pub to: Option<String>,
    pub end_recipient: Option<String>,
    pub product: Option<String>,
    /// `event`, `request`, `reply` or `adm`.
    pub sequence_type: String,
    /// `production` (default) or `test`.
    pub status: String,
    pub meta: Vec<(String, String)>,
    pub subject: Option<String>,
    pub data: Vec<DataRef>,
}

/// A `shs.message-list`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageList {
    pub messages: Vec<ListedMessage>,
}

fn urn(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| {
        format!(
            "{}{}",
            crate::address::URN_PREFIX,
            crate::address::strip_urn(s)
        )
    })
}

impl MessageList {
    pub fn to_xml(&self) -> Vec<u8> {
        let mut w = XmlWriter::default();
        w.prolog(
            OutputEncoding::Iso88591,
            "shs.message-list",
            "shs-message-list-1.2.01.dtd",
        );
        w.open(0, "shs.message-list", &[("version", Some("1.2"))]);
        if self.messages.is_empty() {
            w.end_empty();
            return w.finish(OutputEncoding::Iso88591);
        }
        w.end_open();
        for m in &self.messages {
            let (from, to, product) = (urn(&m.from), urn(&m.to), urn(&m.product));
            w.open(
                1,
                "message",
                &[
                    ("tx.id", Some(&m.tx_id)),
                    ("timestamp", Some(&m.timestamp)),
                    ("corr.id", m.corr_id.as_deref()),
                    ("content.id", m.content_id.as_deref()),
                    ("size", m.size.as_deref()),
                    ("originator", m.originator.as_deref()),
                    ("from", from.as_deref()),
                    ("to", to.as_deref()),
                    ("end-recipient", m.end_recipient.as_deref()),
                    ("product", product.as_deref()),
                    ("sequence-type", Some(&m.sequence_type)),
                    ("status", Some(&m.status)),
                ],
            );
            if m.meta.is_empty() && m.subject.is_none() && m.data.is_empty() {
                w.end_empty();
                continue;
            }
            w.end_open();
            for (k, v) in &m.meta {
                w.leaf(2, "meta", &[("name", Some(k))], v);
            }
            if let Some(s) = &m.subject {
                w.leaf(2, "subject", &[], s);
            }
            for d in &m.data {
                w.data_ref(2, d);
            }
            w.close(1, "message");
        }
        w.close(0, "shs.message-list");
        w.finish(OutputEncoding::Iso88591)
    }

    /// Parses a list within [`MESSAGE_LIST_LIMITS`].
    pub fn parse(bytes: &[u8]) -> Result<Self, ShsError> {
        Self::parse_with(bytes, &MESSAGE_LIST_LIMITS)
    }

    /// Parses a list within `limits`.
    pub fn parse_with(bytes: &[u8], limits: &DocumentLimits) -> Result<Self, ShsError> {
        let root = xml::parse_document(bytes, limits)?;
        if root.name != "shs.message-list" {
            return Err(ShsError::structure("root element is not shs.message-list"));
        }
        let messages = root
            .children_named("message")
            .map(|m| {
                let a = |n: &str| m.attr(n).map(str::to_owned);
                let plain = |n: &str| m.attr(n).map(|v| crate::address::strip_urn(v).to_owned());
                ListedMessage {
                    tx_id: a("tx.id").unwrap_or_default(),
                    timestamp: a("timestamp").unwrap_or_default(),
                    corr_id: a("corr.id"),
                    content_id: a("content.id"),
                    size: a("size"),
                    originator: a("originator"),
                    from: plain("from"),
                    to: plain("to"),
                    end_recipient: a("end-recipient"),
                    product: plain("product"),
                    sequence_type: a("sequence-type").unwrap_or_default(),
                    status: a("status").unwrap_or_else(|| "production".into()),
                    meta: m
                        .children_named("meta")
                        .map(|e| {
                            (
                                e.attr("name").unwrap_or_default().to_owned(),
                                e.text.to_string(),
                            )
                        })
                        .collect(),
                    subject: m.child("subject").map(|s| s.text.to_string()),
                    data: m
                        .children_named("data")
                        .map(|d| DataRef {
                            datapart_type: d.attr("datapartType").unwrap_or_default().to_owned(),
                            filename: d.attr("filename").map(str::to_owned),
                            no_of_bytes: d.attr("no-of-bytes").and_then(|v| v.parse().ok()),
                            no_of_records: d.attr("no-of-records").and_then(|v| v.parse().ok()),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(Self { messages })
    }
}
