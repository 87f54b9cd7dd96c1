//! IMAP COMPRESS=DEFLATE (RFC 4978): once the server has said OK to `COMPRESS
//! DEFLATE`, everything both ways is raw deflate (RFC 1951, no zlib header), each
//! write flushed with a sync flush so the other side can read it at once. The
//! stream starts uncompressed; [`DeflateSwitch::turn_on`] switches it after the OK
//! (the server sends nothing after that OK until our next command, so no
//! uncompressed byte is left to read).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Turns a [`Deflating`] stream's compression on (once, for good).
#[derive(Clone, Debug, Default)]
pub struct DeflateSwitch(Arc<AtomicBool>);

impl DeflateSwitch {
    pub fn turn_on(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How much compressed input is read at a time, and the most output one input
/// chunk may grow to before it is handed on in pieces.
const CHUNK: usize = 32 * 1024;

/// A stream that speaks raw deflate both ways once its switch is on.
pub struct Deflating<S> {
    inner: S,
    switch: DeflateSwitch,
    state: Option<Box<Codec>>,
}

struct Codec {
    compress: Compress,
    decompress: Decompress,
    /// Compressed bytes read and not yet inflated.
    input: Vec<u8>,
    input_at: usize,
    /// Deflated bytes not yet written to the inner stream.
    output: Vec<u8>,
    output_at: usize,
    /// The inner stream ended.
    eof: bool,
    /// The last inflate filled the reader's buffer: more output may be waiting
    /// inside the inflater, with no input left to push it out.
    more_out: bool,
}

impl<S> Deflating<S> {
    pub fn new(inner: S, switch: DeflateSwitch) -> Deflating<S> {
        Deflating {
            inner,
            switch,
            state: None,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The codec, made when the switch is first seen on.
    fn codec(&mut self) -> Option<&mut Codec> {
        if self.state.is_none() && self.switch.is_on() {
            self.state = Some(Box::new(Codec {
                // Level 1: on a link slow enough to want compression, the CPU it
                // spends is far below the time the bytes take.
                compress: Compress::new(Compression::fast(), false),
                decompress: Decompress::new(false),
                input: Vec::new(),
                input_at: 0,
                output: Vec::new(),
                output_at: 0,
                eof: false,
                more_out: false,
            }));
        }
        self.state.as_deref_mut()
    }
}

fn corrupt(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("COMPRESS=DEFLATE: {e}"))
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflating<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.codec().is_none() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let codec = this.state.as_deref_mut().expect("the codec is made above");
            if codec.input_at < codec.input.len() || codec.more_out {
                let room = buf.remaining();
                let before_in = codec.decompress.total_in();
                let before_out = codec.decompress.total_out();
                let status = codec
                    .decompress
                    .decompress(
                        &codec.input[codec.input_at..],
                        buf.initialize_unfilled(),
                        FlushDecompress::Sync,
                    )
                    .map_err(corrupt)?;
                let used = (codec.decompress.total_in() - before_in) as usize;
                let made = (codec.decompress.total_out() - before_out) as usize;
                codec.input_at += used;
                buf.advance(made);
                codec.more_out = made == room;
                if made > 0 || status == Status::StreamEnd {
                    return Poll::Ready(Ok(()));
                }
                if used > 0 {
                    continue;
                }
                // Neither input taken nor output made: the rest of a block is
                // still on its way.
            }
            if codec.eof {
                return Poll::Ready(Ok(()));
            }
            // More compressed input (what is left of the last read is kept: a
            // block may end in the next read).
            codec.input.drain(..codec.input_at);
            codec.input_at = 0;
            let mut raw = [0u8; CHUNK];
            let mut rb = ReadBuf::new(&mut raw);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let codec = this.state.as_deref_mut().expect("the codec is made above");
            if rb.filled().is_empty() {
                codec.eof = true;
            } else {
                codec.input.extend_from_slice(rb.filled());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflating<S> {
    /// Writes out what is deflated and waiting.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(codec) = self.state.as_deref_mut() else {
            return Poll::Ready(Ok(()));
        };
        while codec.output_at < codec.output.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &codec.output[codec.output_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            codec.output_at += n;
        }
        codec.output.clear();
        codec.output_at = 0;
        Poll::Ready(Ok(()))
    }

    /// Deflates `data` (all of it) with `flush` into the waiting output.
    fn deflate(codec: &mut Codec, data: &[u8], flush: FlushCompress) -> io::Result<()> {
        let mut at = 0;
        loop {
            codec.output.reserve(data.len() / 2 + 64);
            let before = codec.compress.total_in();
            codec
                .compress
                .compress_vec(&data[at..], &mut codec.output, flush)
                .map_err(corrupt)?;
            at += (codec.compress.total_in() - before) as usize;
            // Done when all input is taken and the output had room to spare (a
            // full output buffer may hide more of the flush).
            if at >= data.len() && codec.output.len() < codec.output.capacity() {
                return Ok(());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflating<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.codec().is_none() {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        // Earlier output goes first, so the order of bytes is kept.
        ready!(this.poll_drain(cx))?;
        let codec = this.state.as_deref_mut().expect("the codec is made above");
        Self::deflate(codec, data, FlushCompress::None)?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(codec) = this.codec() {
            if codec.output_at == 0 {
                // A sync flush ends what was written on a byte boundary: the
                // server can inflate it all now.
                Self::deflate(codec, &[], FlushCompress::Sync)?;
            }
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn both_ends_read_what_the_other_wrote_before_and_after_the_switch() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (sa, sb) = (DeflateSwitch::default(), DeflateSwitch::default());
        let (mut a, mut b) = (Deflating::new(a, sa.clone()), Deflating::new(b, sb.clone()));
        a.write_all(b"a1 COMPRESS DEFLATE\r\n").await.unwrap();
        a.flush().await.unwrap();
        let mut line = [0u8; 21];
        b.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"a1 COMPRESS DEFLATE\r\n");
        sa.turn_on();
        sb.turn_on();
        // Text that compresses, and bytes that do not; large and small writes.
        let mut big = Vec::new();
        for i in 0..20_000u32 {
            big.extend_from_slice(format!("* {i} FETCH (UID {i} FLAGS (\\Seen))\r\n").as_bytes());
        }
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let (big2, noise2) = (big.clone(), noise.clone());
        let writer = tokio::spawn(async move {
            a.write_all(&big2).await.unwrap();
            a.flush().await.unwrap();
            a.write_all(b"x").await.unwrap();
            a.flush().await.unwrap();
            a.write_all(&noise2).await.unwrap();
            a.flush().await.unwrap();
            a
        });
        let mut got = vec![0u8; big.len() + 1 + noise.len()];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..big.len()], &big[..]);
        assert_eq!(got[big.len()], b'x');
        assert_eq!(&got[big.len() + 1..], &noise[..]);
        let mut a = writer.await.unwrap();
        // And back.
        b.write_all(b"a1 OK done\r\n").await.unwrap();
        b.flush().await.unwrap();
        let mut back = [0u8; 12];
        a.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"a1 OK done\r\n");
    }

    #[tokio::test]
    async fn a_reader_with_a_small_buffer_gets_everything_a_large_block_holds() {
        // One flush of much text inflates to far more than a small read takes:
        // what stays inside the inflater must come out without more input.
        let (a, b) = tokio::io::duplex(1 << 20);
        let s = DeflateSwitch::default();
        s.turn_on();
        let (mut a, mut b) = (Deflating::new(a, s.clone()), Deflating::new(b, s));
        let text: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("line {}\r\n", i % 7).into_bytes())
            .collect();
        a.write_all(&text).await.unwrap();
        a.flush().await.unwrap();
        let mut got = Vec::new();
        let mut small = [0u8; 97];
        while got.len() < text.len() {
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), b.read(&mut small))
                .await
                .expect("no stall")
                .unwrap();
            assert!(n > 0);
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, text);
    }

    #[tokio::test]
    async fn garbage_after_the_switch_is_an_error_not_a_panic() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let s = DeflateSwitch::default();
        s.turn_on();
        let mut a = Deflating::new(a, s);
        b.write_all(&[0xff; 64]).await.unwrap();
        let mut buf = [0u8; 64];
        assert!(a.read(&mut buf).await.is_err());
    }
}
