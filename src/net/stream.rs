//! One stream type for plaintext (loopback tests, before STARTTLS) and TLS
//! connections, so protocol code is written once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::guard::{Dropped, LiteralGuard};

/// A TCP connection and the permit of a per-server connection limit it holds (the
/// caller's limit; the service's are `control::HostSlots`), given back once the
/// connection is closed on both sides (see the `Drop` impl).
#[derive(Debug)]
pub struct Tcp {
    pub stream: TcpStream,
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A TCP connection, with or without TLS.
#[derive(Debug)]
pub enum MaybeTls {
    Plain(Tcp),
    Tls(Box<TlsStream<Tcp>>),
}

impl MaybeTls {
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }
}

/// How long a closed connection keeps its server slot waiting for the server to
/// close its side: a loaded server (or machine) can take seconds to reap a
/// session, and it counts the connection until then.
const SERVER_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A connection that holds a server slot gives it back only once the server has
/// closed its side too (or [`SERVER_CLOSE_WAIT`] passed): until then the server still counts it, and
/// a new connection in that slot would go over the server's limit.
impl Drop for Tcp {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let dup = std::os::fd::AsFd::as_fd(&self.stream)
            .try_clone_to_owned()
            .map(std::net::TcpStream::from)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(TcpStream::from_std);
        let Ok(mut dup) = dup else { return };
        rt.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = dup.shutdown().await;
            let mut buf = [0u8; 4096];
            let closed = tokio::time::timeout(SERVER_CLOSE_WAIT, async {
                while let Ok(n) = dup.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
            if closed.is_err() {
                tracing::info!(
                    "the server kept a connection open {SERVER_CLOSE_WAIT:?} after ours closed; its slot is given back"
                );
            }
            drop(dup);
            drop(slot);
        });
    }
}

impl AsyncRead for Tcp {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A stream whose reads pass through a [`LiteralGuard`]: what an IMAP server sends
/// reaches the parser only within the bounds of a maximum message size.
pub struct Guarded<S> {
    inner: S,
    guard: LiteralGuard,
    /// Scanned bytes not handed over yet (from `pos`).
    out: Vec<u8>,
    pos: usize,
    raw: Box<[u8]>,
}

impl<S> Guarded<S> {
    /// Guards `inner`; literals over `max_literal` bytes are dropped and queued in
    /// `dropped`.
    pub fn new(inner: S, max_literal: u64, dropped: Dropped) -> Guarded<S> {
        Guarded {
            inner,
            guard: LiteralGuard::new(max_literal, dropped),
            out: Vec::new(),
            pos: 0,
            raw: vec![0u8; 64 * 1024].into_boxed_slice(),
        }
    }
}

impl<S> std::fmt::Debug for Guarded<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("pending", &(self.out.len() - self.pos))
            .finish()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.out.len() {
                let n = (this.out.len() - this.pos).min(buf.remaining());
                buf.put_slice(&this.out[this.pos..this.pos + n]);
                this.pos += n;
                if this.pos == this.out.len() {
                    this.out.clear();
                    this.pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut this.raw);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            this.guard
                .feed(&this.raw[..n], &mut this.out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
