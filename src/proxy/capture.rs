//! Body wrappers that copy what streams through them, without ever holding the stream back:
//! [`Tee`] on the request body (which the upstream client polls), [`ResponseTap`] on the
//! response body (which the client's connection polls) — the latter also notices the end of
//! the exchange (last byte, upstream break, or the client hanging up) and finishes the record.
//!
//! hyper never polls a body that already reports end-of-stream, and stops at the last
//! `Content-Length` byte: so the end is checked with `is_end_stream()` at creation and after
//! every frame, not only when `poll_frame` returns `None` (docs/ARCHITECTURE.md, "Traps").

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::record::Pending;
use crate::body::{Body, BoxError};
use crate::upstream::UpstreamError;

/// What a [`Tee`] has copied so far.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    /// More bytes passed than the cap allowed to keep.
    pub truncated: bool,
    /// The body broke off on the client's side (it hung up while uploading).
    pub broken: bool,
}

impl Captured {
    /// Keep `data`, up to `max` bytes in total.
    pub fn keep(&mut self, data: &[u8], max: usize) {
        if keep_capped(&mut self.bytes, data, max) {
            self.truncated = true;
        }
    }
}

/// Append `data` to `buf` up to `max` bytes in total; whether some of it did not fit.
pub fn keep_capped(buf: &mut Vec<u8>, data: &[u8], max: usize) -> bool {
    let room = max.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
    data.len() > room
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
    pub fn new(inner: B, max: usize) -> (Self, CaptureHandle) {
        let copy = CaptureHandle::default();
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
        let (tee, copy) = Tee::new(body, 4);
        let all = tee.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"0123456789");
        let copy = copy.lock().unwrap();
        assert_eq!(copy.bytes, b"0123");
        assert!(copy.truncated);
    }
}
