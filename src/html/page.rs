//! The page shell: one HTML file that needs nothing else. The stylesheet and the script are
//! inlined, and a Content-Security-Policy allows exactly those two (by hash) and nothing
//! from anywhere (`default-src 'none'`): even a value that escaped escaping could neither
//! run a script nor load a URL. Opens from `file://` offline; readable without JavaScript.

use std::sync::OnceLock;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::escape::Html;

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = |s: &str| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
        };
        format!(
            "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; img-src 'none'; base-uri 'none'; form-action 'none'",
            hash(CSS),
            hash(JS)
        )
    })
}

/// What the top of a page says.
pub struct Head<'a> {
    /// The document title (the browser tab).
    pub title: &'a str,
    /// The big heading, after the tool name.
    pub heading: &'a str,
    /// One line under the heading (the file, the sessions).
    pub sub: &'a str,
    /// Sections to jump to: `(id, label)`.
    pub nav: &'a [(&'a str, &'a str)],
}

/// Everything up to the start of `<main>`.
pub fn open(h: &mut Html, head: &Head<'_>) {
    h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta http-equiv=\"Content-Security-Policy\"")
        .attr("content", csp())
        .raw("><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<meta name=\"referrer\" content=\"no-referrer\">")
        .raw("<meta name=\"generator\"")
        .attr("content", &format!("ucwa-replay {}", env!("CARGO_PKG_VERSION")))
        .raw("><title>")
        .text(head.title)
        .raw("</title><style>")
        .raw(CSS)
        .raw("</style></head><body><header class=\"top\"><h1><span class=\"tool\">ucwa-replay</span>")
        .text(head.heading)
        .raw("</h1><div class=\"sub\">")
        .text(head.sub)
        .raw("</div></header><nav class=\"toc\">");
    for (id, label) in head.nav {
        h.raw("<a")
            .attr("href", &format!("#{id}"))
            .raw(">")
            .text(label)
            .raw("</a>");
    }
    h.raw("</nav><main>");
}

/// The end of the page, the script last (it finds the whole document in place).
pub fn close(h: &mut Html) {
    h.raw("</main><footer>Written by ucwa-replay ")
        .text(env!("CARGO_PKG_VERSION"))
        .raw(". Everything on this page comes from the recording and is shown as text; nothing is loaded from anywhere.</footer><script>")
        .raw(JS)
        .raw("</script></body></html>\n");
}

/// Start a block of markup the browser does not build until asked: with JavaScript on, a
/// `<noscript>` is read as plain text (cheap, no elements), and the page script turns it
/// into elements when the reader asks (`note` says what is folded, with a button); with
/// JavaScript off the same `<noscript>` is ordinary markup and shows at once. This is how a
/// 10 000-exchange page opens fast and stays complete without script. The markup inside
/// must not hold another `<noscript>`.
pub fn lazy_open(h: &mut Html, note: &str, range: Option<(u64, u64)>) {
    h.raw("<div class=\"lazy\" data-lazy");
    if let Some((from, to)) = range {
        h.attr("data-from", &from.to_string())
            .attr("data-to", &to.to_string());
    }
    h.raw("><p class=\"lazy-note\" hidden>")
        .text(note)
        .raw(" <button type=\"button\" data-show>show</button></p><noscript>");
}

/// End a block started with [`lazy_open`].
pub fn lazy_close(h: &mut Html) {
    h.raw("</noscript></div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_only_the_inlined_style_and_script() {
        let mut h = Html::default();
        open(
            &mut h,
            &Head {
                title: "<t>",
                heading: "h",
                sub: "s",
                nav: &[("summary", "Summary")],
            },
        );
        close(&mut h);
        let page = h.into_string();
        assert!(page.contains("default-src &#39;none&#39;"), "{page:.400}");
        assert!(page.contains("<title>&lt;t&gt;</title>"));
        // The hashes are of the exact text inlined.
        let style = page
            .split("<style>")
            .nth(1)
            .unwrap()
            .split("</style>")
            .next()
            .unwrap();
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style));
        assert!(page.contains(&digest));
        assert!(!CSS.contains("url(") && !CSS.contains("@import"));
        assert!(!JS.contains("</script"));
    }
}
