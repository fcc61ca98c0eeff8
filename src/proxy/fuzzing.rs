//! What the fuzz targets in `fuzz/` drive that the public API does not offer: the origin
//! rewriter, whole and streamed. Compiled only by `cargo fuzz` (which sets `--cfg fuzzing`).

use super::rewrite_stream::StreamRewriter;
use crate::recording::{Origin, OriginRewriter};

/// The rewriter from `upstream` (and `also`) to `public`, and back.
pub fn rewriters(upstream: &str, also: &[&str], public: &str) -> (Rewriter, Rewriter) {
    let main = Origin::parse(upstream).expect("a valid upstream origin");
    let also: Vec<Origin> = also
        .iter()
        .map(|o| Origin::parse(o).expect("a valid origin"))
        .collect();
    (
        Rewriter(OriginRewriter::to_public(&main, &also, public)),
        Rewriter(OriginRewriter::to_upstream(&main, &also, public)),
    )
}

/// One direction of origin rewriting.
pub struct Rewriter(OriginRewriter);

impl Rewriter {
    /// The whole input rewritten at once.
    pub fn whole(&self, input: &[u8]) -> Vec<u8> {
        self.0.rewrite(input).into_owned()
    }

    /// The input rewritten as a body that arrives in pieces, cut at `cuts`.
    pub fn streamed(&self, input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut stream = StreamRewriter::new(self.0.clone());
        let mut out = Vec::new();
        let mut from = 0;
        for &cut in cuts {
            let cut = cut.clamp(from, input.len());
            out.extend_from_slice(&stream.push(&input[from..cut]));
            from = cut;
        }
        out.extend_from_slice(&stream.push(&input[from..]));
        out.extend_from_slice(&stream.finish());
        out
    }
}
