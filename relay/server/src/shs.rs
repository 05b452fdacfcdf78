//! The SHS decode step of `POST /shs/rs`, for synchronous and asynchronous
//! messages alike: the label read first (the first MIME part, within
//! `limits.label_timeout_ms`, [`open_label`]), the label rules of this node
//! checked once ([`check_label`]: where the message goes, a [`Destination`]),
//! the MIME reader's limits ([`shs_limits`]) and the rule that the label of
//! the full parse equals the one read first ([`same_label`]). The way in
//! (`crate::rs`) runs it; the mailbox (`crate::asynch`) gets its result.

use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, header};
use relay_ident::Organisationsnummer;
use relay_shs::{ErrorCode, Label, ShsError, TransferType};

use crate::Relay;
use crate::body::{BodyReader, body_reader};
use crate::failure::Failure;
use crate::identity::Caller;

/// Where a label's `to` points, normalised to the 10-digit organisation number
/// (`16NNNNNNNNNN` and `NNNNNN-NNNN` address the same outbox as `NNNNNNNNNN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub org: Organisationsnummer,
    /// The address as a mailbox key: the organisation number, and `.internal`
    /// when the address names a unit within it.
    pub outbox: String,
    /// Whether it is this relay's own node (which answers the product itself).
    pub is_node: bool,
}

/// The label rules of this node, for synchronous and asynchronous messages alike:
/// the DTD's rules, a UUID tx.id, `from` = the certificate's organisation, a
/// resolvable `to` (the node itself for a synchronous request).
pub fn check_label(relay: &Relay, caller: &Caller, label: &Label) -> Result<Destination, Failure> {
    label.validate()?;
    tracing::Span::current().record("shs.tx_id", relay_telemetry::tx_attribute(&label.tx_id));
    if uuid::Uuid::parse_str(&label.tx_id).is_err() {
        return Err(ShsError::structure("tx.id must be a UUID").into());
    }
    let from = label
        .from_address()
        .and_then(|f| Organisationsnummer::parse(f.org_number()).ok());
    if from != Some(caller.org) {
        return Err(ShsError::new(
            ErrorCode::IllegalSender,
            "from is required and must be the client certificate's organisation",
        )
        .into());
    }
    let to = label.to_address().ok_or_else(|| {
        ShsError::new(
            ErrorCode::UnresolvedReceiver,
            "to is required: product addressing is not offered",
        )
    })?;
    let org = Organisationsnummer::parse(to.org_number()).map_err(|_| {
        ShsError::new(
            ErrorCode::UnknownReceiver,
            "to is not an organisation number",
        )
    })?;
    let is_node = org == relay.live().config.node.org;
    if label.transfer_type == TransferType::Synch && !is_node {
        return Err(ShsError::new(
            ErrorCode::UnknownReceiver,
            "to must be this node's organisation",
        )
        .into());
    }
    let outbox = match to.internal_id() {
        Some(unit) if !unit.is_empty() => format!("{org}.{unit}"),
        _ => org.to_string(),
    };
    Ok(Destination {
        org,
        outbox,
        is_node,
    })
}

/// The label read first (to route the message) and the label of the full parse
/// must agree, or the message is refused and not kept.
pub fn same_label(first: &Label, full: &Label) -> Result<(), Failure> {
    let key = |l: &Label| {
        (
            l.tx_id.clone(),
            l.corr_id.clone(),
            l.from.as_ref().map(|f| f.value.clone()),
            l.to.as_ref().map(|t| t.value.clone()),
            l.product.value.clone(),
            l.content.content_id.clone(),
            l.transfer_type,
        )
    };
    if key(first) == key(full) {
        Ok(())
    } else {
        Err(ShsError::structure("the message carries more than one SHS label").into())
    }
}

/// The HTTP `Content-Type` when it is a bare multipart body (its boundary).
pub fn multipart_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|ct| ct.to_ascii_lowercase().starts_with("multipart/"))
        .map(str::to_owned)
}

/// The MIME reader's limits for a message of at most `max_total` bytes.
pub fn shs_limits(relay: &Relay, max_total: u64) -> relay_shs::Limits {
    relay_shs::Limits {
        max_label_bytes: relay.live().config.limits.max_label_bytes,
        max_total_bytes: max_total,
        max_part_bytes: max_total,
        ..relay_shs::Limits::default()
    }
}

/// A message whose label has been read: the label, the bytes read so far, and
/// the rest of the body.
pub struct Opened {
    pub label: Label,
    head: Vec<u8>,
    rest: BodyReader,
}

impl Opened {
    /// The whole message again: the bytes read so far, then the rest.
    pub fn into_reader(self) -> tokio::io::Chain<std::io::Cursor<Vec<u8>>, BodyReader> {
        use tokio::io::AsyncReadExt;
        std::io::Cursor::new(self.head).chain(self.rest)
    }
}

/// Reads the message up to the end of its label with the real MIME reader (the
/// label is the first MIME part and nothing else: text before the first
/// boundary is never taken for one), within `limits.label_timeout_ms`. The
/// bytes it read are kept (at most the label limit and one read buffer) so the
/// message can be read again whole or streamed on.
pub async fn open_label(
    relay: &Relay,
    content_type: Option<&str>,
    body: Body,
) -> Result<Opened, Failure> {
    let limits = relay.live().config.limits.clone();
    let cap = limits.max_label_bytes + 256 * 1024;
    let mut recording = Recording {
        inner: body_reader(body),
        head: Vec::new(),
        cap,
    };
    let read = relay_shs::MessageReader::open(
        &mut recording,
        content_type,
        shs_limits(relay, limits.max_request_bytes.max(u64::MAX / 2)),
    );
    let label =
        match tokio::time::timeout(Duration::from_millis(limits.label_timeout_ms), read).await {
            Err(_) => return Err(ShsError::structure("timed out reading the SHS label").into()),
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok((_, label))) => label,
        };
    Ok(Opened {
        label,
        head: recording.head,
        rest: recording.inner,
    })
}

/// Keeps a copy of what is read (up to `cap` bytes; more is an error: the
/// label part is bounded).
struct Recording<R> {
    inner: R,
    head: Vec<u8>,
    cap: usize,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Recording<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            let data = buf.filled().get(before..).unwrap_or_default();
            if self.head.len() + data.len() > self.cap {
                return std::task::Poll::Ready(Err(std::io::Error::other(
                    "the SHS label part is larger than the label limit",
                )));
            }
            self.head.extend_from_slice(data);
        }
        poll
    }
}
