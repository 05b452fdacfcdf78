//! The mottagningsbekräftelse (`schema/mottagningsbekraftelse_1.xsd`).

use chrono::NaiveDate;

use crate::xml::{Element, REPORT_LIMITS};

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
    /// The report had been accepted before: this is the original receipt, and
    /// the report was not registered again (`upprepning`).
    pub repeat: bool,
    /// The report arrived after its due date (`sen`).
    pub late: Option<Late>,
}

/// A report that arrived after its due date (seed 003): still accepted, paid
/// on a later payment day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Late {
    /// The 5th of the second month after the reported month (`forfallodag`).
    pub due: NaiveDate,
    /// The payment day that applies instead (`utbetalningsdag`).
    pub payment_day: NaiveDate,
}

impl Receipt {
    /// The receipt document, with its XML declaration.
    pub fn to_xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
            self.element()
        )
    }

    /// The `Mottagningsbekraftelse` element alone (it also travels inside the
    /// SOAP response, after `tx-id`).
    pub fn element(&self) -> String {
        let repeat = if self.repeat {
            "<kv:upprepning>true</kv:upprepning>"
        } else {
            ""
        };
        let late = self.late.map_or(String::new(), |l| {
            format!(
                "<kv:sen><kv:forfallodag>{}</kv:forfallodag><kv:utbetalningsdag>{}</kv:utbetalningsdag></kv:sen>",
                l.due.format("%Y-%m-%d"),
                l.payment_day.format("%Y-%m-%d")
            )
        });
        format!(
            "<kv:Mottagningsbekraftelse xmlns:kv=\"{NS_RECEIPT}\"><kv:txId>{}</kv:txId><kv:tidredovisningId>{}</kv:tidredovisningId><kv:mottagen>{}</kv:mottagen><kv:sha256>{}</kv:sha256>{repeat}{late}</kv:Mottagningsbekraftelse>",
            relay_xml::escape_text(&self.tx_id),
            relay_xml::escape_text(&self.report_id),
            relay_xml::escape_text(&self.received_at),
            relay_xml::escape_text(&self.sha256)
        )
    }

    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let root = crate::xml::parse(bytes, &REPORT_LIMITS).ok()?;
        Self::from_element(&root)
    }

    pub(crate) fn from_element(root: &Element) -> Option<Self> {
        if root.local != "Mottagningsbekraftelse" || root.namespace() != NS_RECEIPT {
            return None;
        }
        let child = |el: &'_ Element, name: &str| {
            el.children
                .iter()
                .find(|c| c.local == name)
                .map(|c| c.text.trim().to_owned())
        };
        let date = |el: &Element, name: &str| {
            child(el, name).and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok())
        };
        let late = match root.children.iter().find(|c| c.local == "sen") {
            Some(sen) => Some(Late {
                due: date(sen, "forfallodag")?,
                payment_day: date(sen, "utbetalningsdag")?,
            }),
            None => None,
        };
        Some(Self {
            tx_id: child(root, "txId")?,
            report_id: child(root, "tidredovisningId")?,
            received_at: child(root, "mottagen")?,
            sha256: child(root, "sha256")?,
            repeat: child(root, "upprepning").is_some_and(|t| t == "true" || t == "1"),
            late,
        })
    }
}
