//! Checks on a message streamed into the mailbox: a size cap, and a tee that
//! hands every chunk to a structure checker which reads the whole MIME message
//! (label, every data part the label lists, the closing delimiter) and returns
//! the label it read, so the accepting side can compare it with the label it
//! routed by.

use relay_shs::{Label, ShsError};

/// Fails the read once more than `max` bytes came (a message over the limit).
pub struct Capped<R> {
    pub inner: R,
    pub left: u64,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Capped<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            let n = (buf.filled().len() - before) as u64;
            if n > self.left {
                return std::task::Poll::Ready(Err(std::io::Error::other(
                    "message over the size limit",
                )));
            }
            self.left -= n;
        }
        poll
    }
}

/// Passes a body through and hands a copy of every chunk to a checker (a
/// bounded channel: the body is read no faster than the checker keeps up, so
/// nothing piles up in memory). When the checker has stopped, copying stops.
pub struct Tee<R> {
    pub inner: R,
    pub copy: Option<tokio_util::sync::PollSender<bytes::Bytes>>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Tee<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        if let Some(tx) = self.copy.as_mut() {
            match tx.poll_reserve(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => self.copy = None,
                Poll::Ready(Ok(())) => {}
            }
        }
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(())) => {
                let data = &buf.filled()[before..];
                if data.is_empty() {
                    // End of the body: the checker sees its end too.
                    self.copy = None;
                } else if let Some(tx) = self.copy.as_mut()
                    && tx.send_item(bytes::Bytes::copy_from_slice(data)).is_err()
                {
                    self.copy = None;
                }
            }
            Poll::Ready(Err(_)) => self.copy = None,
            Poll::Pending => {}
        }
        poll
    }
}

/// Reads a whole SHS message's MIME structure from `chunks` (label, every data
/// part the label lists, the closing delimiter), discarding the content.
pub async fn check_structure(
    chunks: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    content_type: Option<String>,
    limits: relay_shs::Limits,
) -> Result<Label, ShsError> {
    let stream = Box::pin(futures::stream::unfold(chunks, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    }));
    let reader = tokio_util::io::StreamReader::new(stream);
    let (mut message, label) =
        relay_shs::MessageReader::open(reader, content_type.as_deref(), limits).await?;
    while message.next_part().await?.is_some() {
        while message.read_chunk().await?.is_some() {}
    }
    Ok(label)
}
