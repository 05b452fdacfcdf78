//! The SHS reply a product builds for a synchronous request: the reply label
//! and its text parts. Shared by every product's SHS encode step.

use bytes::Bytes;
use relay_shs::{DataPart, Label, PartHeaders, ShsMessage, TransferEncoding};

/// The synchronous reply to `request`, with `parts`.
pub fn synch_reply(request: &Label, parts: Vec<DataPart>) -> ShsMessage {
    ShsMessage {
        label: request.synch_reply(relay_shs::label::now()),
        parts,
    }
}

/// A text data part (`text/plain` in ISO-8859-1, anything else UTF-8).
pub fn text_part(
    mime_type: &str,
    datapart_type: &str,
    filename: Option<String>,
    body: Bytes,
) -> DataPart {
    DataPart {
        headers: PartHeaders {
            mime_type: mime_type.into(),
            charset: Some(
                if mime_type == "text/plain" {
                    "ISO-8859-1"
                } else {
                    "UTF-8"
                }
                .into(),
            ),
            transfer_encoding: TransferEncoding::Binary,
            filename,
        },
        datapart_type: datapart_type.into(),
        body,
    }
}
