//! Body wrappers that copy what streams through them, without ever holding the stream back:
//! [`Tee`] on the request body (which the upstream client polls), [`ResponseTap`] on the
//! response body (which the client's connection polls) — the latter also notices the end of
//! the exchange (last byte, upstream break, or the client hanging up) and finishes the record.
//!
//! Every copy draws on one [`CaptureBudget`] per proxy: `--max-body` caps one body, the
//! budget caps the bytes held for the recording across all exchanges in flight (six 200 MB
//! uploads at once must not hold six copies of 32 MiB). A copy the budget cannot grow is
//! truncated and flagged like one over `--max-body`; the client still gets every byte, and
//! nothing waits on the budget (a wait could deadlock uploads that each hold part of it).
//! The bytes go back to the budget when the exchange has been handed to the store's writer.
//! Drawing is one atomic compare-and-swap per frame: no lock, no per-byte work.
//!
//! hyper never polls a body that already reports end-of-stream, and stops at the last
//! `Content-Length` byte: so the end is checked with `is_end_stream()` at creation and after
//! every frame, not only when `poll_frame` returns `None` (docs/ARCHITECTURE.md, "Traps").

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::record::Pending;
use crate::body::{Body, BoxError};
use crate::upstream::UpstreamError;

/// The bytes of bodies the recording may hold in memory at once, shared by every capture.
#[derive(Debug)]
pub struct CaptureBudget {
    limit: usize,
    used: AtomicUsize,
    /// A refusal was logged; cleared once the budget is half free again.
    warned: AtomicBool,
}

impl CaptureBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(CaptureBudget {
            limit,
            used: AtomicUsize::new(0),
            warned: AtomicBool::new(false),
        })
    }

    /// Bytes held right now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Take up to `want` bytes; how many were granted.
    fn take(&self, want: usize) -> usize {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let granted = want.min(self.limit.saturating_sub(used));
            if granted == 0 {
                break;
            }
            match self.used.compare_exchange_weak(
                used,
                used + granted,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) if granted == want => return granted,
                Ok(_) => {
                    self.refused();
                    return granted;
                }
                Err(now) => used = now,
            }
        }
        if want > 0 {
            self.refused();
        }
        0
    }

    fn refused(&self) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limit = self.limit,
                "capture memory full: bodies are stored truncated until exchanges in flight \
                 are written (--max-capture-memory; clients still get every byte; logged once \
                 per burst)"
            );
        }
    }

    fn give_back(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::Relaxed);
        if before - bytes <= self.limit / 2 && self.warned.load(Ordering::Relaxed) {
            self.warned.store(false, Ordering::Relaxed);
        }
    }
}

/// Bytes one exchange holds of a [`CaptureBudget`]; they go back when this is dropped.
#[derive(Debug, Default)]
pub struct Held {
    budget: Option<Arc<CaptureBudget>>,
    bytes: usize,
}

impl Held {
    pub fn new(budget: &Arc<CaptureBudget>) -> Self {
        Held {
            budget: Some(budget.clone()),
            bytes: 0,
        }
    }

    /// Hold `want` more bytes, or as many as the budget has left (none without a budget).
    fn grow(&mut self, want: usize) -> usize {
        let granted = self.budget.as_ref().map_or(0, |b| b.take(want));
        self.bytes += granted;
        granted
    }

    /// Give every byte held back now.
    fn release(&mut self) {
        if let Some(budget) = &self.budget
            && self.bytes > 0
        {
            budget.give_back(self.bytes);
        }
        self.bytes = 0;
    }

    /// Take over what `other` holds (one exchange's request and response copies).
    pub fn absorb(&mut self, mut other: Held) {
        if self.budget.is_none() {
            self.budget = other.budget.take();
        }
        self.bytes += std::mem::take(&mut other.bytes);
    }

    /// Append `data` to `buf` up to `max` bytes in total, drawing on the budget; whether
    /// some of it did not fit.
    pub fn keep_capped(&mut self, buf: &mut Vec<u8>, data: &[u8], max: usize) -> bool {
        let room = max.saturating_sub(buf.len()).min(data.len());
        let granted = self.grow(room);
        buf.extend_from_slice(&data[..granted]);
        data.len() > granted
    }

    /// Replace `buf` with `data` cut to `max` bytes and to what the budget allows; whether
    /// it was cut.
    pub fn keep_whole(&mut self, buf: &mut Vec<u8>, data: &[u8], max: usize) -> bool {
        self.release();
        buf.clear();
        self.keep_capped(buf, data, max)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

/// What a [`Tee`] has copied so far.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    /// More bytes passed than the cap (or the budget) allowed to keep.
    pub truncated: bool,
    /// The body broke off on the client's side (it hung up while uploading).
    pub broken: bool,
    /// What the copy holds of the budget.
    pub held: Held,
}

impl Captured {
    /// Keep `data`, up to `max` bytes in total and what the budget allows.
    pub fn keep(&mut self, data: &[u8], max: usize) {
        if self.held.keep_capped(&mut self.bytes, data, max) {
            self.truncated = true;
        }
    }
}

/// Shared view of a [`Tee`]'s copy (the tee itself belongs to the upstream request).
pub type CaptureHandle = Arc<Mutex<Captured>>;

/// Streams `inner` unchanged while copying up to `max` bytes.
pub struct Tee<B> {
    inner: B,
    copy: CaptureHandle,
    max: usize,
}

impl<B> Tee<B> {
    pub fn new(inner: B, max: usize, budget: &Arc<CaptureBudget>) -> (Self, CaptureHandle) {
        let copy = Arc::new(Mutex::new(Captured {
            held: Held::new(budget),
            ..Captured::default()
        }));
        (
            Tee {
                inner,
                copy: copy.clone(),
                max,
            },
            copy,
        )
    }
}

impl<B> HttpBody for Tee<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref()
                    && let Ok(mut copy) = this.copy.lock()
                {
                    copy.keep(data, this.max);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => {
                if let Ok(mut copy) = this.copy.lock() {
                    copy.broken = true;
                }
                Poll::Ready(Some(Err(err.into())))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body on its way to the client. Owns the exchange's [`Pending`] record and
/// finishes it when the body ends, breaks, or is dropped early (client aborted).
pub struct ResponseTap {
    inner: Body,
    pending: Option<Pending>,
    /// Copy the bytes into the record (streamed bodies; buffered ones are stored already).
    tee: bool,
}

impl ResponseTap {
    pub fn new(inner: Body, pending: Pending, tee: bool) -> Self {
        let mut tap = ResponseTap {
            inner,
            pending: Some(pending),
            tee,
        };
        if tap.inner.is_end_stream() {
            tap.finish(None);
        }
        tap
    }

    fn finish(&mut self, error: Option<String>) {
        if let Some(mut pending) = self.pending.take() {
            pending.finish(error);
        }
    }
}

impl HttpBody for ResponseTap {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                if this.tee
                    && let (Some(data), Some(pending)) = (frame.data_ref(), this.pending.as_mut())
                {
                    pending.keep_response(data);
                }
                if this.inner.is_end_stream() {
                    this.finish(None);
                }
            }
            Some(Err(err)) => {
                let failure = UpstreamError::classify(&**err);
                tracing::warn!(error = %failure, "upstream response body broke off");
                this.finish(Some(format!("{failure} (mid-body)")));
            }
            None => this.finish(None),
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn tee_copies_up_to_the_cap_and_passes_everything() {
        let body = http_body_util::Full::new(Bytes::from_static(b"0123456789"));
        let budget = CaptureBudget::new(1 << 20);
        let (tee, copy) = Tee::new(body, 4, &budget);
        let all = tee.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"0123456789");
        let copy = copy.lock().unwrap();
        assert_eq!(copy.bytes, b"0123");
        assert!(copy.truncated);
        assert_eq!(budget.used(), 4);
    }

    /// Two uploads at once share the budget: the second copy is cut where the budget ends
    /// (each body passes whole), and the bytes come back when the copies are dropped.
    #[tokio::test]
    async fn the_budget_caps_copies_across_exchanges_and_refills() {
        let budget = CaptureBudget::new(10);
        let chunks = |n: usize| {
            let frames = (0..n).map(|_| {
                Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"abc")))
            });
            http_body_util::StreamBody::new(futures_util::stream::iter(frames.collect::<Vec<_>>()))
        };
        let (first, first_copy) = Tee::new(chunks(2), 100, &budget);
        let (second, second_copy) = Tee::new(chunks(3), 100, &budget);
        assert_eq!(first.collect().await.unwrap().to_bytes().len(), 6);
        assert_eq!(second.collect().await.unwrap().to_bytes().len(), 9);
        {
            let a = first_copy.lock().unwrap();
            let b = second_copy.lock().unwrap();
            assert_eq!((a.bytes.len(), a.truncated), (6, false));
            assert_eq!((b.bytes.as_slice(), b.truncated), (&b"abca"[..], true));
        }
        assert_eq!(budget.used(), 10);
        // The first exchange is handed over: its bytes are free for the next copy.
        let mut held = std::mem::take(&mut first_copy.lock().unwrap().held);
        drop(first_copy);
        assert_eq!(budget.used(), 10, "held until the holder goes");
        held.absorb(std::mem::take(&mut second_copy.lock().unwrap().held));
        let mut response = Vec::new();
        assert!(held.keep_capped(&mut response, b"xyz", 100), "still full");
        drop(held);
        assert_eq!(budget.used(), 0);
        let mut fresh = Held::new(&budget);
        let mut buf = Vec::new();
        assert!(!fresh.keep_whole(&mut buf, b"0123456789", 100));
        assert!(
            fresh.keep_whole(&mut buf, b"0123456789ab", 11),
            "cut at the cap"
        );
        assert_eq!(buf, b"0123456789");
        assert_eq!(budget.used(), 10);
    }
}
