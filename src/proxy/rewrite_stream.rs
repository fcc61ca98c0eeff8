//! Origin rewriting of a body that arrives in pieces: large or unsized (chunked) text bodies
//! stream to the client instead of being buffered whole.
//!
//! A piece is cut just after a delimiter byte that no origin spelling contains (`"`, `<`,
//! whitespace, …): no match can span such a cut, and the byte after any match before it is
//! inside the piece, so rewriting the pieces one by one gives exactly the bytes that rewriting
//! the whole body would.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame};

use crate::body::{Body, BoxError};
use crate::recording::OriginRewriter;

/// Bytes after which a piece may be cut: none of them can occur in an origin.
const DELIMITERS: &[u8] = b"\"'<> \t\r\n,;{}()[]";

/// Most bytes held back while waiting for a delimiter; past it they are rewritten as they
/// are (a body with no delimiter for this long holds no URL a client would follow).
const MAX_HELD: usize = 64 * 1024;

/// Rewrites a body piece by piece.
#[derive(Debug)]
pub struct StreamRewriter {
    rewriter: OriginRewriter,
    held: BytesMut,
}

impl StreamRewriter {
    pub fn new(rewriter: OriginRewriter) -> Self {
        StreamRewriter {
            rewriter,
            held: BytesMut::new(),
        }
    }

    /// Take the next piece of the body; returns the bytes that can go to the client now.
    pub fn push(&mut self, piece: &[u8]) -> Bytes {
        self.held.extend_from_slice(piece);
        let cut = match self.held.iter().rposition(|b| DELIMITERS.contains(b)) {
            Some(last) => last + 1,
            None if self.held.len() > MAX_HELD => self.held.len(),
            None => 0,
        };
        if cut == 0 {
            return Bytes::new();
        }
        let ready = self.held.split_to(cut).freeze();
        match self.rewriter.rewrite(&ready) {
            std::borrow::Cow::Borrowed(_) => ready,
            std::borrow::Cow::Owned(bytes) => Bytes::from(bytes),
        }
    }

    /// The end of the body: whatever was held back, rewritten.
    pub fn finish(&mut self) -> Bytes {
        let rest = self.held.split().freeze();
        match self.rewriter.rewrite(&rest) {
            std::borrow::Cow::Borrowed(_) => rest,
            std::borrow::Cow::Owned(bytes) => Bytes::from(bytes),
        }
    }
}

/// A body whose data frames go through a [`StreamRewriter`] on their way to the client.
pub struct RewritingBody {
    inner: Body,
    rewriter: StreamRewriter,
    /// Trailers held back until the held bytes are out.
    trailers: Option<Frame<Bytes>>,
    done: bool,
}

impl RewritingBody {
    pub fn new(inner: Body, rewriter: OriginRewriter) -> Self {
        RewritingBody {
            inner,
            rewriter: StreamRewriter::new(rewriter),
            trailers: None,
            done: false,
        }
    }
}

impl HttpBody for RewritingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(trailers)));
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.rewriter.push(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(trailers) => {
                        this.done = true;
                        let rest = this.rewriter.finish();
                        if rest.is_empty() {
                            return Poll::Ready(Some(Ok(trailers)));
                        }
                        this.trailers = Some(trailers);
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                },
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => {
                    this.done = true;
                    let rest = this.rewriter.finish();
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.trailers.is_none()
            && (self.done || (self.inner.is_end_stream() && self.rewriter.held.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Origin;

    fn rewriter() -> OriginRewriter {
        let fe1 = Origin::parse("https://fe1.contoso.com").unwrap();
        let web = Origin::parse("https://lyncweb.contoso.com").unwrap();
        OriginRewriter::to_public(&fe1, &[web], "http://127.0.0.1:9")
    }

    #[test]
    fn any_split_gives_the_bytes_of_a_whole_rewrite() {
        let body = "\u{feff}{\"a\":\"https://fe1.contoso.com:443/ucwa/x\",\"b\":\"https:\\/\\/fe1.contoso.com\\/y\",\n\
            \"c\":\"https://lyncweb.contoso.com/WebTicket\", \"d\":\"https://fe1.contoso.com.evil.org/\"}\
            <link href=\"https://fe1.contoso.com/z\"/>https://fe1.contoso.com"
            .as_bytes();
        let whole = rewriter().rewrite(body).into_owned();
        // Every pair of cut points.
        for i in 0..body.len() {
            for j in i..body.len() {
                let mut s = StreamRewriter::new(rewriter());
                let mut out = Vec::new();
                out.extend_from_slice(&s.push(&body[..i]));
                out.extend_from_slice(&s.push(&body[i..j]));
                out.extend_from_slice(&s.push(&body[j..]));
                out.extend_from_slice(&s.finish());
                assert_eq!(out, whole, "cuts at {i} and {j}");
            }
        }
    }

    #[test]
    fn a_long_run_without_delimiters_is_not_held_forever() {
        let mut s = StreamRewriter::new(rewriter());
        let run = vec![b'x'; MAX_HELD + 1];
        assert_eq!(s.push(&run).len(), run.len());
        assert!(s.finish().is_empty());
    }
}
