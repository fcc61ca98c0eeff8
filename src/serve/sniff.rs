//! A read tap on a connection that keeps the start of the request being read, so that a
//! request the HTTP layer refuses on its own (`414`, `431`: no handler sees it) can still be
//! named in the replay report.

use std::sync::Arc;

/// What [`Sniff`] saw of the request being read.
#[derive(Debug, Clone, Default)]
pub(super) struct Sniffed {
    pub(super) head: Vec<u8>,
    pub(super) line_len: usize,
    pub(super) line_done: bool,
    /// The connection wrote since the last read: the next read starts a new request.
    fresh: bool,
}

/// How much of a request's start [`Sniff`] keeps.
const SNIFF_BYTES: usize = 512;

pub(super) type SniffHandle = Arc<std::sync::Mutex<Sniffed>>;

/// A connection that keeps the first bytes of the request being read (the start of its
/// request line), so that a request the HTTP layer refuses on its own can still be named.
/// A response written marks the next bytes read as a new request.
pub(super) struct Sniff<S> {
    inner: S,
    seen: SniffHandle,
}

impl<S> Sniff<S> {
    pub(super) fn new(inner: S, seen: SniffHandle) -> Self {
        Sniff { inner, seen }
    }

    fn note_read(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let Ok(mut s) = self.seen.lock() else {
            return;
        };
        if s.fresh {
            *s = Sniffed::default();
        }
        let room = SNIFF_BYTES.saturating_sub(s.head.len());
        s.head.extend_from_slice(&data[..data.len().min(room)]);
        if !s.line_done {
            match data.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    s.line_len += at;
                    s.line_done = true;
                }
                None => s.line_len += data.len(),
            }
        }
    }

    fn note_write(&self) {
        if let Ok(mut s) = self.seen.lock() {
            s.fresh = true;
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Sniff<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled {
            self.note_read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Sniff<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.note_write();
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.note_write();
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
