//! `shs.management` documents (`shs-management-1.2.dtd`): the body of `confirm`
//! and `error` adm messages.

use crate::error::{ErrorCode, ShsError};
use crate::label::{AdmKind, Label};
use crate::mime::{DataPart, PartHeaders, ShsMessage, TransferEncoding};
use crate::xml::{self, DocumentLimits, MANAGEMENT_LIMITS, OutputEncoding, XmlWriter};

/// What a management document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagementBody {
    Confirmation {
        appinfo: Vec<(String, String)>,
    },
    Error {
        /// As written (a known [`ErrorCode`] or another NMTOKEN).
        errorcode: String,
        errorinfo: Option<String>,
        appinfo: Vec<(String, String)>,
    },
}

/// A `shs.management` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Management {
    pub corr_id: String,
    pub content_id: String,
    /// Usually `yyyy-MM-ddTHH:mm:ss`; read leniently (some nodes write a date only).
    pub datetime: String,
    pub body: ManagementBody,
}

impl Management {
    pub fn confirm(corr_id: &str, content_id: &str, datetime: String) -> Self {
        Self {
            corr_id: corr_id.to_owned(),
            content_id: content_id.to_owned(),
            datetime,
            body: ManagementBody::Confirmation {
                appinfo: Vec::new(),
            },
        }
    }

    pub fn error(corr_id: &str, content_id: &str, datetime: String, error: &ShsError) -> Self {
        Self {
            corr_id: corr_id.to_owned(),
            content_id: content_id.to_owned(),
            datetime,
            body: ManagementBody::Error {
                errorcode: error.code.as_str().to_owned(),
                errorinfo: Some(error.info.clone()),
                appinfo: Vec::new(),
            },
        }
    }

    /// Parses a document within [`MANAGEMENT_LIMITS`].
    pub fn parse(bytes: &[u8]) -> Result<Self, ShsError> {
        Self::parse_with(bytes, &MANAGEMENT_LIMITS)
    }

    /// Parses a document within `limits`.
    pub fn parse_with(bytes: &[u8], limits: &DocumentLimits) -> Result<Self, ShsError> {
        let root = xml::parse_document(bytes, limits)?;
        if root.name != "shs.management" {
            return Err(ShsError::structure("root element is not shs.management"));
        }
        let bad = |w: &str| ShsError::structure(format!("shs.management: {w}"));
        let appinfo = |e: &xml::Element| {
            e.children_named("appinfo")
                .map(|a| {
                    (
                        a.attr("name").unwrap_or_default().to_owned(),
                        a.text.to_string(),
                    )
                })
                .collect()
        };
        let body = if let Some(c) = root.child("confirmation") {
            ManagementBody::Confirmation {
                appinfo: appinfo(c),
            }
        } else if let Some(e) = root.child("error") {
            ManagementBody::Error {
                errorcode: e
                    .attr("errorcode")
                    .ok_or_else(|| bad("errorcode missing"))?
                    .to_owned(),
                errorinfo: e.attr("errorinfo").map(str::to_owned),
                appinfo: appinfo(e),
            }
        } else {
            return Err(bad("neither confirmation nor error"));
        };
        Ok(Self {
            corr_id: root
                .attr("corr.id")
                .ok_or_else(|| bad("corr.id missing"))?
                .to_owned(),
            content_id: root
                .attr("content.id")
                .ok_or_else(|| bad("content.id missing"))?
                .to_owned(),
            datetime: root
                .child("datetime")
                .map(|d| d.text.trim().to_owned())
                .unwrap_or_default(),
            body,
        })
    }

    /// The error code, when this is an error with a known code.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match &self.body {
            ManagementBody::Error { errorcode, .. } => ErrorCode::parse(errorcode),
            ManagementBody::Confirmation { .. } => None,
        }
    }

    /// ISO-8859-1 with the DOCTYPE, as Axel writes it.
    pub fn to_xml(&self) -> Vec<u8> {
        let mut w = XmlWriter::default();
        w.prolog(
            OutputEncoding::Iso88591,
            "shs.management",
            "shs-management-1.2.dtd",
        );
        w.open(
            0,
            "shs.management",
            &[
                ("version", Some("1.2")),
                ("corr.id", Some(&self.corr_id)),
                ("content.id", Some(&self.content_id)),
            ],
        );
        w.end_open();
        w.leaf(1, "datetime", &[], &self.datetime);
        let (name, attrs, appinfo): (&str, Vec<(&str, Option<&str>)>, _) = match &self.body {
            ManagementBody::Confirmation { appinfo } => ("confirmation", vec![], appinfo),
            ManagementBody::Error {
                errorcode,
                errorinfo,
                appinfo,
            } => (
                "error",
                vec![
                    ("errorcode", Some(errorcode.as_str())),
                    ("errorinfo", errorinfo.as_deref()),
                ],
                appinfo,
            ),
        };
        w.open(1, name, &attrs);
        if appinfo.is_empty() {
            w.end_empty();
        } else {
            w.end_open();
            for (k, v) in appinfo {
                w.leaf(2, "appinfo", &[("name", Some(k))], v);
            }
            w.close(1, name);
        }
        w.close(0, "shs.management");
        w.finish(OutputEncoding::Iso88591)
    }
}

/// A complete `confirm` or `error` adm message about `request`.
pub fn adm_message(request: &Label, kind: AdmKind, error: Option<&ShsError>) -> ShsMessage {
    let now = crate::label::now();
    let label = request.adm_reply(kind, uuid::Uuid::new_v4().to_string(), now.clone());
    let doc = match (kind, error) {
        (AdmKind::Error, Some(e)) => {
            Management::error(&label.corr_id, &label.content.content_id, now, e)
        }
        (AdmKind::Error, None) => Management::error(
            &label.corr_id,
            &label.content.content_id,
            now,
            &ShsError::from(ErrorCode::OtherError),
        ),
        (AdmKind::Confirm, _) => {
            Management::confirm(&label.corr_id, &label.content.content_id, now)
        }
    };
    ShsMessage {
        parts: vec![DataPart {
            headers: PartHeaders {
                mime_type: "text/xml".into(),
                charset: Some("ISO-8859-1".into()),
                transfer_encoding: TransferEncoding::Binary,
                filename: Some(format!("{}.xml", kind.datapart_type())),
            },
            datapart_type: kind.datapart_type().into(),
            body: doc.to_xml().into(),
        }],
        label,
    }
}
