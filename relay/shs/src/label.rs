//! The SHS label (`shs.label`, `shs-label-1.2.dtd`): every element and attribute
//! with its XML name, DTD defaults, parsing (ISO-8859-1 and UTF-8), writing in
//! DTD element order (ISO-8859-1 with the DOCTYPE by default, as Axel writes),
//! the validation rules, and reply-label construction.

use crate::address::{ProductId, ShsAddress, strip_urn};
use crate::error::{ErrorCode, ShsError};
use crate::xml::{self, DocumentLimits, Element, LABEL_LIMITS, OutputEncoding, XmlWriter};

/// `transfer-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferType {
    #[default]
    Asynch,
    Synch,
}

/// `message-type` / `document-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageType {
    #[default]
    Simple,
    Compound,
}

/// `sequence-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceType {
    Event,
    Request,
    Reply,
    Adm,
}

/// `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    Test,
    #[default]
    Production,
}

macro_rules! keyword_enum {
    ($t:ty { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
            /// Reads the keyword (case-insensitively, as SHS nodes vary).
            pub fn parse(s: &str) -> Option<Self> {
                $(if s.trim().eq_ignore_ascii_case($s) { return Some(Self::$v); })+
                None
            }
        }
    };
}
keyword_enum!(TransferType { Asynch => "asynch", Synch => "synch" });
keyword_enum!(MessageType { Simple => "simple", Compound => "compound" });
keyword_enum!(SequenceType { Event => "event", Request => "request", Reply => "reply", Adm => "adm" });
keyword_enum!(Status { Test => "test", Production => "production" });

/// `originator`: the person or system behind the sending actor (free form).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Originator {
    pub value: String,
    pub name: Option<String>,
    pub labeled_uri: Option<String>,
}

/// `from`: the sending actor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct From {
    /// Plain form (the `urn:X-shs:` prefix is added on output).
    pub value: String,
    /// REQUIRED by the DTD; written as `""` when unknown, as Axel does.
    pub common_name: String,
    pub e_mail: Option<String>,
    pub labeled_uri: Option<String>,
}

/// `to`: the receiving actor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct To {
    pub value: String,
    pub common_name: Option<String>,
}

/// `end-recipient`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndRecipient {
    pub value: String,
    pub name: Option<String>,
    pub labeled_uri: Option<String>,
}

/// `product`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Product {
    /// Plain form (UUID or `confirm`/`error`/`agreement`).
    pub value: String,
    pub common_name: Option<String>,
    pub labeled_uri: Option<String>,
}

/// `meta name="..."`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub name: String,
    pub value: String,
}

/// `content/data`: one per MIME data part, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataRef {
    pub datapart_type: String,
    pub filename: Option<String>,
    pub no_of_bytes: Option<u64>,
    pub no_of_records: Option<u64>,
}

/// What `content` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentBody {
    Data(Vec<DataRef>),
    Compound { no_of_parts: String },
}

/// `content`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub content_id: String,
    pub body: ContentBody,
    pub comment: Option<String>,
}

/// `history`: one entry per node the message passed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    pub node_id: String,
    pub content_id: Option<String>,
    pub tx_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub local_id: Option<String>,
    pub shs_agreement: Option<String>,
    pub datetime: String,
    pub comment: Option<String>,
}

/// The SHS 1.2 label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub tx_id: String,
    pub corr_id: String,
    pub shs_agreement: Option<String>,
    pub transfer_type: TransferType,
    pub message_type: MessageType,
    pub document_type: MessageType,
    /// REQUIRED by the DTD; `None` only for a label read from the wire without it
    /// (validation refuses it with `IllegalMessageStructure`).
    pub sequence_type: Option<SequenceType>,
    pub status: Status,
    pub originator: Option<Originator>,
    pub from: Option<From>,
    pub to: Option<To>,
    pub end_recipient: Option<EndRecipient>,
    pub product: Product,
    pub meta: Vec<Meta>,
    pub subject: Option<String>,
    /// `yyyy-MM-ddTHH:mm:ss`, no zone.
    pub datetime: String,
    pub content: Content,
    pub history: Vec<History>,
}

/// The SHS datetime format (node-local time, no zone, no fraction).
pub const DATETIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Now, in the SHS datetime format.
pub fn now() -> String {
    chrono::Local::now().format(DATETIME_FORMAT).to_string()
}

/// Axel truncates content ids to 36 characters ("some vendors cannot handle more").
pub const MAX_CONTENT_ID: usize = 36;

/// The default limit on a label's size.
pub const DEFAULT_MAX_LABEL_BYTES: usize = LABEL_LIMITS.max_bytes;

impl Label {
    /// A new label with fresh ids and the DTD's defaults.
    pub fn new(
        from: &str,
        to: Option<&str>,
        product: ProductId,
        sequence_type: SequenceType,
        transfer_type: TransferType,
    ) -> Self {
        let tx = uuid::Uuid::new_v4().to_string();
        Self {
            corr_id: tx.clone(),
            tx_id: tx,
            shs_agreement: None,
            transfer_type,
            message_type: MessageType::Simple,
            document_type: MessageType::Simple,
            sequence_type: Some(sequence_type),
            status: Status::Production,
            originator: None,
            from: Some(From {
                value: strip_urn(from).to_owned(),
                ..From::default()
            }),
            to: to.map(|t| To {
                value: strip_urn(t).to_owned(),
                common_name: None,
            }),
            end_recipient: None,
            product: Product {
                value: product.to_string(),
                ..Product::default()
            },
            meta: Vec::new(),
            subject: None,
            datetime: now(),
            content: Content {
                content_id: uuid::Uuid::new_v4().to_string(),
                body: ContentBody::Data(Vec::new()),
                comment: None,
            },
            history: Vec::new(),
        }
    }

    /// Parses a label document (`<?xml ...?>`, optional DOCTYPE, `shs.label`).
    pub fn parse(bytes: &[u8]) -> Result<Self, ShsError> {
        Self::parse_with_limit(bytes, DEFAULT_MAX_LABEL_BYTES)
    }

    /// As [`Label::parse`], with the label's [`DocumentLimits`] but at most
    /// `max_bytes` bytes.
    pub fn parse_with_limit(bytes: &[u8], max_bytes: usize) -> Result<Self, ShsError> {
        Self::parse_with(
            bytes,
            &DocumentLimits {
                max_bytes,
                ..LABEL_LIMITS
            },
        )
    }

    /// As [`Label::parse`], within `limits`.
    pub fn parse_with(bytes: &[u8], limits: &DocumentLimits) -> Result<Self, ShsError> {
        let root = xml::parse_document(bytes, limits)?;
        Self::from_element(&root)
    }

    /// The RS fast path: the label from the first 4096 bytes of a message, read as
    /// ISO-8859-1, between `<shs.label ` and `</shs.label>` (as Axel does).
    pub fn from_message_prefix(prefix: &[u8]) -> Result<Self, ShsError> {
        const CLOSE: &[u8] = b"</shs.label>";
        let head = prefix.get(..4096).unwrap_or(prefix);
        let start = memchr::memmem::find(head, b"<shs.label")
            .ok_or_else(|| ShsError::structure("no SHS label in the first 4096 bytes"))?;
        let from_start = head.get(start..).unwrap_or_default();
        let label = memchr::memmem::find(from_start, CLOSE)
            .and_then(|end| from_start.get(..end + CLOSE.len()))
            .ok_or_else(|| ShsError::structure("no complete SHS label in the first 4096 bytes"))?;
        let mut doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>".to_vec();
        doc.extend_from_slice(label);
        Self::parse(&doc)
    }

    fn from_element(root: &Element) -> Result<Self, ShsError> {
        if root.name != "shs.label" {
            return Err(ShsError::structure("root element is not shs.label"));
        }
        let bad = |what: &str| ShsError::structure(format!("label: {what}"));
        let opt = |e: &Element, a: &str| e.attr(a).map(str::to_owned);
        let keyword = |a: &str| root.attr(a).map(str::trim);
        let transfer_type = match keyword("transfer-type") {
            None => TransferType::default(),
            Some(v) => TransferType::parse(v).ok_or_else(|| bad("invalid transfer-type"))?,
        };
        let message_type = match keyword("message-type") {
            None => MessageType::default(),
            Some(v) => MessageType::parse(v).ok_or_else(|| bad("invalid message-type"))?,
        };
        let document_type = match keyword("document-type") {
            None => MessageType::default(),
            Some(v) => MessageType::parse(v).ok_or_else(|| bad("invalid document-type"))?,
        };
        let sequence_type = match keyword("sequence-type") {
            None | Some("") => None,
            Some(v) => Some(SequenceType::parse(v).ok_or_else(|| bad("invalid sequence-type"))?),
        };
        let status = match keyword("status") {
            None => Status::default(),
            Some(v) => Status::parse(v).ok_or_else(|| bad("invalid status"))?,
        };
        let mut originators = root.children_named("originator");
        let originator = originators.next().map(|e| Originator {
            value: e.text.trim().to_owned(),
            name: opt(e, "name"),
            labeled_uri: opt(e, "labeledURI"),
        });
        if originators.next().is_some() {
            return Err(ShsError::new(
                ErrorCode::IllegalSender,
                "more than one originator",
            ));
        }
        let mut froms = root.children_named("from");
        let from = froms.next().map(|e| From {
            value: strip_urn(&e.text).to_owned(),
            common_name: e.attr("commonName").unwrap_or_default().to_owned(),
            e_mail: opt(e, "e-mail"),
            labeled_uri: opt(e, "labeledURI"),
        });
        if froms.next().is_some() {
            return Err(ShsError::new(
                ErrorCode::IllegalSender,
                "more than one from",
            ));
        }
        let to = root.child("to").map(|e| To {
            value: strip_urn(&e.text).to_owned(),
            common_name: opt(e, "commonName"),
        });
        let end_recipient = root.child("end-recipient").map(|e| EndRecipient {
            value: e.text.trim().to_owned(),
            name: opt(e, "name"),
            labeled_uri: opt(e, "labeledURI"),
        });
        let product = root
            .child("product")
            .map(|e| Product {
                value: strip_urn(&e.text).to_owned(),
                common_name: opt(e, "commonName"),
                labeled_uri: opt(e, "labeledURI"),
            })
            .unwrap_or_default();
        let meta = root
            .children_named("meta")
            .map(|e| Meta {
                name: e.attr("name").unwrap_or_default().to_owned(),
                value: e.text.to_string(),
            })
            .collect();
        let subject = root.child("subject").map(|e| e.text.to_string());
        let datetime = root
            .child("datetime")
            .map(|e| e.text.trim().to_owned())
            .ok_or_else(|| bad("datetime missing"))?;
        let content_el = root
            .child("content")
            .ok_or_else(|| bad("content missing"))?;
        let content_id = content_el
            .attr("content.id")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad("content.id missing"))?
            .to_owned();
        let body = match content_el.child("compound") {
            Some(c) => ContentBody::Compound {
                no_of_parts: c.attr("no-of-parts").unwrap_or_default().to_owned(),
            },
            None => ContentBody::Data(
                content_el
                    .children_named("data")
                    .map(|d| {
                        Ok(DataRef {
                            datapart_type: d
                                .attr("datapartType")
                                .ok_or_else(|| bad("data without datapartType"))?
                                .to_owned(),
                            filename: opt(d, "filename"),
                            no_of_bytes: number(d.attr("no-of-bytes")),
                            no_of_records: number(d.attr("no-of-records")),
                        })
                    })
                    .collect::<Result<_, ShsError>>()?,
            ),
        };
        let history = root
            .children_named("history")
            .map(|h| History {
                node_id: h.attr("node.id").unwrap_or_default().to_owned(),
                content_id: opt(h, "content.id"),
                tx_id: opt(h, "tx.id"),
                from: opt(h, "from"),
                to: opt(h, "to"),
                local_id: opt(h, "local.id"),
                shs_agreement: opt(h, "shs.agreement"),
                datetime: h
                    .child("datetime")
                    .map(|d| d.text.trim().to_owned())
                    .unwrap_or_default(),
                comment: h.child("comment").map(|c| c.text.to_string()),
            })
            .collect();
        let tx_id = root
            .attr("tx.id")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad("tx.id missing"))?
            .to_owned();
        let corr_id = root
            .attr("corr.id")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad("corr.id missing"))?
            .to_owned();
        Ok(Self {
            tx_id,
            corr_id,
            shs_agreement: opt(root, "shs.agreement"),
            transfer_type,
            message_type,
            document_type,
            sequence_type,
            status,
            originator,
            from,
            to,
            end_recipient,
            product,
            meta,
            subject,
            datetime,
            content: Content {
                content_id,
                body,
                comment: content_el.child("comment").map(|c| c.text.to_string()),
            },
            history,
        })
    }

    /// The label rules every SHS node applies (reference notes 1.5 and the router's
    /// `validateLabel`).
    pub fn validate(&self) -> Result<(), ShsError> {
        let blank = |s: Option<&str>| s.is_none_or(|v| v.trim().is_empty());
        if self.originator.is_none() && self.from.is_none() {
            return Err(ShsError::new(
                ErrorCode::IllegalSender,
                "Originator is mandatory when from is not given",
            ));
        }
        if blank(self.from.as_ref().map(|f| f.value.as_str()))
            && blank(self.originator.as_ref().map(|o| o.value.as_str()))
        {
            return Err(ShsError::new(
                ErrorCode::IllegalSender,
                "from and originator are both blank",
            ));
        }
        if self.product_id().is_none() {
            return Err(ShsError::new(
                ErrorCode::IllegalProductType,
                "product is missing or not a UUID or special product",
            ));
        }
        let Some(sequence_type) = self.sequence_type else {
            return Err(ShsError::structure("sequence-type is missing"));
        };
        if self.message_type == MessageType::Compound
            || self.document_type == MessageType::Compound
            || matches!(self.content.body, ContentBody::Compound { .. })
        {
            return Err(ShsError::structure("compound message not supported"));
        }
        if sequence_type == SequenceType::Adm && self.transfer_type == TransferType::Synch {
            return Err(ShsError::structure(
                "SequenceType ADM not allowed for synchronous transfer",
            ));
        }
        Ok(())
    }

    /// The product id, when it parses.
    pub fn product_id(&self) -> Option<ProductId> {
        ProductId::parse(&self.product.value)
    }

    /// The sending actor's address (`from`, if present and not blank).
    pub fn from_address(&self) -> Option<ShsAddress> {
        self.from.as_ref().and_then(|f| ShsAddress::parse(&f.value))
    }

    /// The receiving actor's address.
    pub fn to_address(&self) -> Option<ShsAddress> {
        self.to.as_ref().and_then(|t| ShsAddress::parse(&t.value))
    }

    /// The data part descriptors (empty for a compound label).
    pub fn data(&self) -> &[DataRef] {
        match &self.content.body {
            ContentBody::Data(d) => d,
            ContentBody::Compound { .. } => &[],
        }
    }

    /// Writes the label as ISO-8859-1 with the DOCTYPE line, as Axel does.
    pub fn to_xml(&self) -> Vec<u8> {
        self.to_xml_with(OutputEncoding::Iso88591)
    }

    /// Writes the label in DTD element order and Axel's attribute order.
    pub fn to_xml_with(&self, encoding: OutputEncoding) -> Vec<u8> {
        let mut w = XmlWriter::default();
        w.prolog(encoding, "shs.label", "shs-label-1.2.dtd");
        w.open(
            0,
            "shs.label",
            &[
                ("version", Some("1.2")),
                ("tx.id", Some(&self.tx_id)),
                ("corr.id", Some(&self.corr_id)),
                ("shs.agreement", self.shs_agreement.as_deref()),
                ("transfer-type", Some(self.transfer_type.as_str())),
                ("message-type", Some(self.message_type.as_str())),
                ("document-type", Some(self.document_type.as_str())),
                (
                    "sequence-type",
                    self.sequence_type.map(SequenceType::as_str),
                ),
                ("status", Some(self.status.as_str())),
            ],
        );
        w.end_open();
        if let Some(o) = &self.originator {
            w.leaf(
                1,
                "originator",
                &[
                    ("name", o.name.as_deref()),
                    ("labeledURI", o.labeled_uri.as_deref()),
                ],
                &o.value,
            );
        }
        if let Some(f) = &self.from {
            w.leaf(
                1,
                "from",
                &[
                    ("commonName", Some(&f.common_name)),
                    ("e-mail", f.e_mail.as_deref()),
                    ("labeledURI", f.labeled_uri.as_deref()),
                ],
                &urn(&f.value),
            );
        }
        if let Some(t) = &self.to {
            w.leaf(
                1,
                "to",
                &[("commonName", t.common_name.as_deref())],
                &urn(&t.value),
            );
        }
        if let Some(e) = &self.end_recipient {
            w.leaf(
                1,
                "end-recipient",
                &[
                    ("name", e.name.as_deref()),
                    ("labeledURI", e.labeled_uri.as_deref()),
                ],
                &e.value,
            );
        }
        w.leaf(
            1,
            "product",
            &[
                ("commonName", self.product.common_name.as_deref()),
                ("labeledURI", self.product.labeled_uri.as_deref()),
            ],
            &urn(&self.product.value),
        );
        for m in &self.meta {
            w.leaf(1, "meta", &[("name", Some(&m.name))], &m.value);
        }
        if let Some(s) = &self.subject {
            w.leaf(1, "subject", &[], s);
        }
        w.leaf(1, "datetime", &[], &self.datetime);
        w.open(
            1,
            "content",
            &[("content.id", Some(&self.content.content_id))],
        );
        w.end_open();
        match &self.content.body {
            ContentBody::Data(data) => {
                for d in data {
                    w.data_ref(2, d);
                }
            }
            ContentBody::Compound { no_of_parts } => {
                w.open(2, "compound", &[("no-of-parts", Some(no_of_parts))]);
                w.end_empty();
            }
        }
        if let Some(c) = &self.content.comment {
            w.leaf(2, "comment", &[], c);
        }
        w.close(1, "content");
        for h in &self.history {
            w.open(
                1,
                "history",
                &[
                    ("node.id", Some(&h.node_id)),
                    ("content.id", h.content_id.as_deref()),
                    ("tx.id", h.tx_id.as_deref()),
                    ("from", h.from.as_deref()),
                    ("to", h.to.as_deref()),
                    ("local.id", h.local_id.as_deref()),
                    ("shs.agreement", h.shs_agreement.as_deref()),
                ],
            );
            w.end_open();
            w.leaf(2, "datetime", &[], &h.datetime);
            if let Some(c) = &h.comment {
                w.leaf(2, "comment", &[], c);
            }
            w.close(1, "history");
        }
        w.close(0, "shs.label");
        w.finish(encoding)
    }

    /// The reply label for a synchronous request: same tx.id and corr.id,
    /// `sequence-type="reply"`, from/to and originator/end-recipient swapped.
    pub fn synch_reply(&self, datetime: String) -> Label {
        let mut reply = self.swapped(datetime);
        reply.tx_id = self.tx_id.clone();
        reply.sequence_type = Some(SequenceType::Reply);
        reply.product = Product {
            value: self.product.value.clone(),
            common_name: self.product.common_name.clone(),
            labeled_uri: self.product.labeled_uri.clone(),
        };
        reply
    }

    /// The label of a `confirm` or `error` adm message about this message: a new
    /// tx.id unless synchronous, corr.id and content.id kept (content.id at most
    /// 36 characters), from/to swapped, product `confirm`/`error`.
    pub fn adm_reply(&self, kind: AdmKind, new_tx_id: String, datetime: String) -> Label {
        let mut reply = self.swapped(datetime);
        reply.tx_id = match self.transfer_type {
            TransferType::Synch => self.tx_id.clone(),
            TransferType::Asynch => new_tx_id,
        };
        reply.sequence_type = Some(SequenceType::Adm);
        reply.product = Product {
            value: kind.product().to_string(),
            ..Product::default()
        };
        reply.content.body = ContentBody::Data(vec![DataRef {
            datapart_type: kind.datapart_type().to_owned(),
            filename: Some(format!("{}.xml", kind.datapart_type())),
            ..DataRef::default()
        }]);
        reply
    }

    fn swapped(&self, datetime: String) -> Label {
        let mut content_id = self.content.content_id.clone();
        if content_id.len() > MAX_CONTENT_ID {
            let mut cut = MAX_CONTENT_ID;
            while !content_id.is_char_boundary(cut) {
                cut -= 1;
            }
            content_id.truncate(cut);
        }
        Label {
            tx_id: self.tx_id.clone(),
            corr_id: self.corr_id.clone(),
            shs_agreement: self.shs_agreement.clone(),
            transfer_type: self.transfer_type,
            message_type: MessageType::Simple,
            document_type: MessageType::Simple,
            sequence_type: self.sequence_type,
            status: self.status,
            originator: self.end_recipient.as_ref().map(|e| Originator {
                value: e.value.clone(),
                name: e.name.clone(),
                labeled_uri: e.labeled_uri.clone(),
            }),
            from: self.to.as_ref().map(|t| From {
                value: t.value.clone(),
                common_name: t.common_name.clone().unwrap_or_default(),
                ..From::default()
            }),
            to: self.from.as_ref().map(|f| To {
                value: f.value.clone(),
                common_name: Some(f.common_name.clone()).filter(|c| !c.is_empty()),
            }),
            end_recipient: self.originator.as_ref().map(|o| EndRecipient {
                value: o.value.clone(),
                name: o.name.clone(),
                labeled_uri: o.labeled_uri.clone(),
            }),
            product: self.product.clone(),
            meta: Vec::new(),
            subject: None,
            datetime,
            content: Content {
                content_id,
                body: ContentBody::Data(Vec::new()),
                comment: None,
            },
            history: Vec::new(),
        }
    }
}

/// The two kinds of adm message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmKind {
    Confirm,
    Error,
}

impl AdmKind {
    pub fn product(self) -> ProductId {
        match self {
            Self::Confirm => ProductId::Confirm,
            Self::Error => ProductId::Error,
        }
    }

    pub fn datapart_type(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Error => "error",
        }
    }
}

fn urn(value: &str) -> String {
    format!("{}{}", crate::address::URN_PREFIX, strip_urn(value))
}

fn number(v: Option<&str>) -> Option<u64> {
    v.and_then(|s| s.trim().parse().ok())
}
