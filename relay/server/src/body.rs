//! Reading a request body, for every way in that reads one whole (SHS, the
//! SOAP services): within the size limit (`limits.max_request_bytes`) and the
//! read timeout (`limits.read_timeout_ms`). A decode step of its own, so no way
//! in borrows it from another.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, header};
use relay_shs::ShsError;
use zeroize::Zeroizing;

use crate::Relay;

/// The request body as an `AsyncRead`.
pub type BodyReader = tokio_util::io::StreamReader<
    std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<Bytes>> + Send>>,
    Bytes,
>;

/// The request body as an `AsyncRead`.
pub fn body_reader(body: Body) -> BodyReader {
    use futures::StreamExt;
    let stream: std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<Bytes>> + Send>> =
        Box::pin(
            body.into_data_stream()
                .map(|r| r.map_err(std::io::Error::other)),
        );
    tokio_util::io::StreamReader::new(stream)
}

/// The buffer a body without Content-Length starts with (it grows as needed).
const INITIAL_BYTES: usize = 8 * 1024;

/// Reads the whole body within the size limit and the read timeout. A body over
/// the limit is read on and discarded (up to four times the limit) so that the
/// client, still sending, gets the error answer instead of a broken connection.
pub async fn read_body(
    relay: &Relay,
    headers: &HeaderMap,
    mut body: impl tokio::io::AsyncRead + Unpin,
) -> Result<Zeroizing<Vec<u8>>, ShsError> {
    use tokio::io::AsyncReadExt;
    let limit = relay.live().config.limits.max_request_bytes;
    let too_large = || ShsError::structure(format!("message larger than {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let cap = limit.saturating_mul(4).max(64 * 1024 * 1024);
    if declared.is_some_and(|len| len > cap) {
        return Err(too_large());
    }
    let timeout = Duration::from_millis(relay.live().config.limits.read_timeout_ms);
    // Sized from Content-Length (within the limit) so the body is read
    // straight into one buffer: no scratch buffer, no copies left behind
    // unwiped by growing it.
    let expected = declared.map_or(INITIAL_BYTES, |len| len.min(limit) as usize);
    let mut bytes = Zeroizing::new(Vec::with_capacity(expected));
    let mut seen: u64 = 0;
    let read = async {
        use bytes::BufMut;
        let mut discard = Vec::new();
        loop {
            let room = limit.saturating_sub(seen);
            let n = if room > 0 {
                let mut window = (&mut *bytes).limit(usize::try_from(room).unwrap_or(usize::MAX));
                body.read_buf(&mut window).await
            } else {
                // Over the limit: read on (up to `cap`) and discard.
                discard.resize(16 * 1024, 0);
                body.read(&mut discard).await
            }
            .map_err(|_| ShsError::structure("reading the message failed"))?;
            if n == 0 {
                break;
            }
            seen += n as u64;
            if seen > cap {
                break;
            }
        }
        Ok::<(), ShsError>(())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => return Err(ShsError::structure("timed out reading the message")),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(())) => {}
    }
    if seen > limit || declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    Ok(bytes)
}
