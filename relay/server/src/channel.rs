//! The transport under one adapter replica's gRPC channel: TCP, then rustls
//! (mutual TLS, ALPN `h2`), then [`Batched`], which holds what HTTP/2 writes
//! until it flushes and lets every other ready task run once before it does.
//!
//! Why not tonic's own TLS: tonic writes each HTTP/2 frame it is handed as its
//! own TLS record and system call. One SSBTEK query sends HEADERS, DATA and an
//! empty end-of-stream DATA frame to each of seven adapters; measured with
//! `strace -c` that was three `writev` per call (docs/performance.md). Batched
//! plaintext above TLS leaves as one record and one system call per flush.
//!
//! A request body that knows it has ended ([`EagerEnd`]) lets hyper put
//! END_STREAM on the DATA frame instead of sending an empty DATA frame after
//! it, in a later write.
//!
//! Not for: which replica to call, deadlines or retries (`providers`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::{Channel, Endpoint};

/// Above this many buffered bytes a write goes out without waiting for the
/// flush (one TLS record holds at most 16 KiB of plaintext).
const BATCH_LIMIT: usize = 16 * 1024;

/// The files a channel's TLS is built from.
pub struct ChannelTls<'a> {
    pub ca: &'a std::path::Path,
    pub cert: &'a std::path::Path,
    pub key: &'a std::path::Path,
    /// The name the adapter's certificate must carry (default: the URL's host).
    pub tls_name: Option<&'a str>,
}

/// The channel a provider client calls through: every request body wrapped
/// in [`EagerEnd`].
pub type AdapterChannel = tower::util::MapRequest<Channel, fn(Request) -> Request>;

type Request = http::Request<tonic::body::Body>;

/// A client channel over `channel` whose request bodies end eagerly.
pub fn adapter_channel(channel: Channel) -> AdapterChannel {
    fn eager(req: Request) -> Request {
        req.map(|body| tonic::body::Body::new(EagerEnd::new(body)))
    }
    tower::ServiceExt::map_request(channel, eager as fn(Request) -> Request)
}

/// A body that, after each frame, looks once more at its inner body without
/// waiting: when that says "no more", [`http_body::Body::is_end_stream`] is
/// already true as the frame is sent. A unary gRPC request (one message) then
/// leaves as HEADERS and one DATA frame with END_STREAM.
pub struct EagerEnd<B: http_body::Body> {
    inner: B,
    next: Option<Result<http_body::Frame<B::Data>, B::Error>>,
    ended: bool,
}

impl<B: http_body::Body> EagerEnd<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            next: None,
            ended: false,
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for EagerEnd<B>
where
    B::Data: Unpin,
    B::Error: Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = match this.next.take() {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Poll::Ready(Some(Err(e))),
            None if this.ended => return Poll::Ready(None),
            None => match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            },
        };
        if !this.ended {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(None) => this.ended = true,
                Poll::Ready(Some(next)) => this.next = Some(next),
                Poll::Pending => {}
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.next.is_none() && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A lazy channel to `url` (`https://host:port`): it connects on first use and
/// reconnects by itself.
pub fn connect_lazy(url: &str, tls: &ChannelTls<'_>) -> Result<Channel, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("endpoint {url}: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("endpoint {url}: must be https://host:port"));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("endpoint {url}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let name = tls.tls_name.unwrap_or(&host).to_owned();
    let server_name = rustls::pki_types::ServerName::try_from(name)
        .map_err(|e| format!("endpoint {url}: tls name: {e}"))?;
    let config = relay_pki::tls::client_config(tls.ca, Some((tls.cert, tls.key)), &[b"h2"])
        .map_err(|e| format!("tls: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    // TLS is done below (tonic would add its own for https), so the endpoint
    // tonic sees is plain http; the adapter sees `:scheme http` on a TLS
    // connection, which gRPC servers accept.
    let plain = format!("http://{}", uri.authority().map_or("", |a| a.as_str()));
    let endpoint = Endpoint::from_shared(plain)
        .map_err(|e| format!("endpoint {url}: {e}"))?
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    let connect = tower::service_fn(move |_: http::Uri| {
        let connector = connector.clone();
        let server_name = server_name.clone();
        let host = host.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(server_name, tcp).await?;
            Ok::<_, io::Error>(TokioIo::new(Batched::new(tls)))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connect))
}

/// Writes held until flush, flushed after every other ready task had its turn.
///
/// `poll_write` copies into the batch (or, past [`BATCH_LIMIT`], drains it
/// first). The first `poll_flush` of a batch wakes its own task and returns
/// `Pending`: the scheduler runs the other ready tasks (the other streams of
/// the same query, the end of this stream's body) before this one again, so
/// what they write joins the batch. The second drains the batch in one write.
pub struct Batched<T> {
    inner: T,
    batch: Vec<u8>,
    yielded: bool,
}

impl<T> Batched<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            batch: Vec::new(),
            yielded: false,
        }
    }
}

impl<T: AsyncWrite + Unpin> Batched<T> {
    /// Writes the whole batch to the inner stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.batch.is_empty() {
            let n = match Pin::new(&mut self.inner).poll_write(cx, &self.batch) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.batch.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Batched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Batched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.batch.len() + buf.len() > BATCH_LIMIT {
            match this.poll_drain(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            if buf.len() > BATCH_LIMIT {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            }
        }
        this.batch.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if self.batch.len() + total > BATCH_LIMIT {
            // Rare (large messages): one slice at a time through poll_write.
            let first = bufs.iter().find(|b| !b.is_empty());
            return match first {
                Some(b) => self.poll_write(cx, b),
                None => Poll::Ready(Ok(0)),
            };
        }
        for b in bufs {
            self.batch.extend_from_slice(b);
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.batch.is_empty() && !this.yielded {
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        this.yielded = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn a_one_message_body_says_it_ended_with_its_only_frame() {
        let once = futures::stream::iter([Ok::<_, std::convert::Infallible>(
            http_body::Frame::data(bytes::Bytes::from_static(b"message")),
        )]);
        let mut body = EagerEnd::new(http_body_util::StreamBody::new(once));
        assert!(!body.is_end_stream());
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "message");
        assert!(body.is_end_stream(), "known to have ended with the frame");
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn frames_of_a_longer_body_come_whole_and_in_order() {
        let parts = ["a", "b", "c"].map(|p| {
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes::Bytes::from(p)))
        });
        let body = EagerEnd::new(http_body_util::StreamBody::new(futures::stream::iter(
            parts,
        )));
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all, "abc");
    }
    use tokio::io::AsyncWriteExt;

    /// Counts the writes that reach it.
    #[derive(Default)]
    struct Counting {
        writes: Vec<Vec<u8>>,
        flushes: usize,
    }

    impl AsyncWrite for Counting {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn small_writes_leave_as_one_write_at_the_flush() {
        let mut b = Batched::new(Counting::default());
        b.write_all(b"HEADERS").await.unwrap();
        b.write_all(b"DATA").await.unwrap();
        b.write_all(b"END").await.unwrap();
        assert!(b.inner.writes.is_empty(), "nothing leaves before the flush");
        b.flush().await.unwrap();
        assert_eq!(b.inner.writes, vec![b"HEADERSDATAEND".to_vec()]);
        assert_eq!(b.inner.flushes, 1);
        // Nothing buffered: a flush goes straight through.
        b.flush().await.unwrap();
        assert_eq!(b.inner.writes.len(), 1);
    }

    #[tokio::test]
    async fn a_large_write_goes_out_whole_and_in_order() {
        let mut b = Batched::new(Counting::default());
        b.write_all(b"small").await.unwrap();
        let big = vec![7u8; BATCH_LIMIT + 10];
        b.write_all(&big).await.unwrap();
        b.flush().await.unwrap();
        let all: Vec<u8> = b.inner.writes.concat();
        assert_eq!(&all[..5], b"small");
        assert_eq!(&all[5..], &big[..]);
        assert!(b.inner.writes.len() <= 3, "{}", b.inner.writes.len());
    }
}
