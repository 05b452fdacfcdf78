//! The mottagningsbekräftelse (`schema/mottagningsbekraftelse_1.xsd`).

use crate::xml::{Element, XmlLimits};

pub const NS_RECEIPT: &str = "urn:shs-relay:elt:mottagningsbekraftelse:1";

/// What Försäkringskassan acknowledges for an accepted report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Försäkringskassan's transaction id (a UUID): SOAP `tx-id`.
    pub tx_id: String,
    /// The report's own id.
    pub report_id: String,
    /// RFC 3339 time of receipt.
    pub received_at: String,
    /// SHA-256 (lower-case hex) of the exact report bytes.
    pub sha256: String,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Receipt {
    pub fn to_xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<kv:Mottagningsbekraftelse xmlns:kv=\"{NS_RECEIPT}\"><kv:txId>{}</kv:txId><kv:tidredovisningId>{}</kv:tidredovisningId><kv:mottagen>{}</kv:mottagen><kv:sha256>{}</kv:sha256></kv:Mottagningsbekraftelse>\n",
            esc(&self.tx_id),
            esc(&self.report_id),
            esc(&self.received_at),
            esc(&self.sha256)
        )
    }

    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let root = Element::parse(bytes, &XmlLimits::REPORT).ok()?;
        if root.local != "Mottagningsbekraftelse" || root.ns != NS_RECEIPT {
            return None;
        }
        let text = |name: &str| {
            root.children
                .iter()
                .find(|c| c.local == name)
                .map(|c| c.text.clone())
        };
        Some(Self {
            tx_id: text("txId")?,
            report_id: text("tidredovisningId")?,
            received_at: text("mottagen")?,
            sha256: text("sha256")?,
        })
    }
}
