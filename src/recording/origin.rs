//! Origins and origin rewriting: absolute URLs of the upstream origin(s) become the proxy's
//! (or the replayer's) public origin, and back. It is a substitution of
//! origin bytes in place, never a parse and re-serialise, so every other byte (whitespace, key
//! order, `\/` and `\u0026` escapes, a BOM) stays as it was.
//!
//! Other hosts of the deployment (`--also-upstream`, e.g. `lyncweb.contoso.com` for the token
//! service) are published under the proxy's own path prefix
//! `/_upstream/HOST[:PORT]`, so one listener carries a whole sign-in.

use std::borrow::Cow;
use std::fmt;

use crate::error::Error;

/// Path prefix under which an `--also-upstream` origin is published.
pub(crate) const ALSO_UPSTREAM_PREFIX: &str = "/_upstream/";

/// The one parser of published paths: `/_upstream/HOST[:PORT]/rest` → `("HOST[:PORT]",
/// "/rest")` (`"/"` when nothing follows the authority); `None` for any other path. The
/// authority is returned as written; compare it with [`Origin::is_authority`].
pub fn split_published(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(ALSO_UPSTREAM_PREFIX)?;
    Some(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// The path as the upstream sees it: a published path loses its `/_upstream/HOST` prefix,
/// any other path is returned as it is.
pub fn strip_published(path: &str) -> &str {
    split_published(path).map_or(path, |(_, rest)| rest)
}

/// The origin part of a URL: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host name or IP literal (IPv6 in brackets).
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parse `http(s)://host[:port][/...]`; the path is ignored.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Error::invalid_because("URL", format!("{url:?}"), e))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_string(),
            _ => {
                return Err(Error::invalid(
                    "URL",
                    format!("{url:?}: must start with http:// or https://"),
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| Error::invalid("URL", format!("{url:?}: no host")))?;
        let port = authority
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(Origin {
            host: authority.host().to_ascii_lowercase(),
            scheme,
            port,
        })
    }

    /// Whether the port is the scheme's default.
    pub fn default_port(&self) -> bool {
        (self.scheme == "https" && self.port == 443) || (self.scheme == "http" && self.port == 80)
    }

    /// `host` or `host:port` (port only when not the default).
    pub fn host_port(&self) -> String {
        if self.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The canonical origin text: `https://host` or `http://host:port`.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.host_port())
    }

    /// The ways this origin is written in the wild: with and without the default port.
    fn spellings(&self) -> Vec<String> {
        let mut out = vec![format!("{}://{}:{}", self.scheme, self.host, self.port)];
        if self.default_port() {
            out.push(format!("{}://{}", self.scheme, self.host));
        }
        out
    }

    /// Whether `authority` (`host` or `host:port`, as a client wrote it) names this origin:
    /// host names compare case-insensitively and the default port may be left out.
    pub fn is_authority(&self, authority: &str) -> bool {
        authority.eq_ignore_ascii_case(&self.host_port())
            || authority.eq_ignore_ascii_case(&format!("{}:{}", self.host, self.port))
    }

    /// Where an also-upstream origin is published under `public` (a base URL without a
    /// trailing slash): `{public}/_upstream/host[:port]`.
    pub fn published_under(&self, public: &str) -> String {
        format!(
            "{}{}{}",
            public.trim_end_matches('/'),
            ALSO_UPSTREAM_PREFIX,
            self.host_port()
        )
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base())
    }
}

/// The origins of one deployment: the main upstream (the pool, whose links the client
/// follows) and the `--also-upstream` hosts published under `/_upstream/HOST`. Every part
/// that turns a stored path into a URL or back (forwarding, HAR export and import) asks this
/// type, so they agree on the convention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstreams {
    pub main: Origin,
    pub also: Vec<Origin>,
}

/// Where a path the client used goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// To `also[index]`, at `path` (the prefix removed).
    Also { index: usize, path: &'a str },
    /// To the main upstream, at the path as it is.
    Main,
    /// A published path naming a host that is not configured.
    Unknown { authority: &'a str },
}

impl Upstreams {
    /// From the origins a session recorded (`upstream`, `also_upstreams`).
    pub fn parse(main: &str, also: &[String]) -> Result<Self, Error> {
        Ok(Upstreams {
            main: Origin::parse(main)?,
            also: also
                .iter()
                .map(|o| Origin::parse(o))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Which upstream a client path is for.
    pub fn resolve<'a>(&self, path: &'a str) -> Resolved<'a> {
        match split_published(path) {
            None => Resolved::Main,
            Some((authority, rest)) => {
                match self.also.iter().position(|o| o.is_authority(authority)) {
                    Some(index) => Resolved::Also { index, path: rest },
                    None => Resolved::Unknown { authority },
                }
            }
        }
    }

    /// The absolute upstream URL of a stored path and query. A published path naming an
    /// unknown host stays on the main upstream, as written.
    pub fn url_of(&self, path: &str, query: Option<&str>) -> String {
        let mut url = match self.resolve(path) {
            Resolved::Also { index, path } => format!("{}{path}", self.also[index].base()),
            Resolved::Main | Resolved::Unknown { .. } => format!("{}{path}", self.main.base()),
        };
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        url
    }

    /// The path a client of the proxy uses for `path` on `origin`: an also-upstream's path
    /// gets its `/_upstream/HOST` prefix; the main upstream's (and an unknown host's, which
    /// could not have passed the proxy) stays as it is.
    pub fn publish(&self, origin: &Origin, path: &str) -> String {
        if *origin != self.main && split_published(path).is_none() && self.also.contains(origin) {
            format!("{ALSO_UPSTREAM_PREFIX}{}{path}", origin.host_port())
        } else {
            path.to_string()
        }
    }

    /// Every origin, the main one first.
    pub fn all(&self) -> impl Iterator<Item = &Origin> {
        std::iter::once(&self.main).chain(&self.also)
    }
}

/// One substitution: any of `from` (already including the `\/` spellings) becomes `to`.
#[derive(Debug, Clone)]
struct Rule {
    from: Vec<u8>,
    to: Vec<u8>,
}

/// A set of origin substitutions applied in one pass, longest match first.
#[derive(Debug, Clone, Default)]
pub struct OriginRewriter {
    rules: Vec<Rule>,
}

impl OriginRewriter {
    /// Upstream → public: `upstream` becomes `public`, each of `also` becomes
    /// `public/_upstream/HOST`.
    pub fn to_public(upstream: &Origin, also: &[Origin], public: &str) -> Self {
        let public = public.trim_end_matches('/');
        let mut rw = OriginRewriter::default();
        for spelling in upstream.spellings() {
            rw.add(&spelling, public);
        }
        for origin in also {
            let published = origin.published_under(public);
            for spelling in origin.spellings() {
                rw.add(&spelling, &published);
            }
        }
        rw.finish()
    }

    /// Public → upstream: the reverse of [`OriginRewriter::to_public`], for request headers
    /// such as `Origin` and `Referer`.
    pub fn to_upstream(upstream: &Origin, also: &[Origin], public: &str) -> Self {
        let public = public.trim_end_matches('/');
        let mut rw = OriginRewriter::default();
        rw.add(public, &upstream.base());
        if let Ok(public_origin) = Origin::parse(public) {
            for spelling in public_origin.spellings() {
                rw.add(&spelling, &upstream.base());
            }
        }
        for origin in also {
            rw.add(&origin.published_under(public), &origin.base());
        }
        rw.finish()
    }

    /// Add a substitution (and its JSON `\/` spelling).
    fn add(&mut self, from: &str, to: &str) {
        self.rules.push(Rule {
            from: from.as_bytes().to_vec(),
            to: to.as_bytes().to_vec(),
        });
        if from.contains('/') {
            self.rules.push(Rule {
                from: from.replace('/', "\\/").into_bytes(),
                to: to.replace('/', "\\/").into_bytes(),
            });
        }
    }

    fn finish(mut self) -> Self {
        self.rules.sort_by_key(|r| std::cmp::Reverse(r.from.len()));
        self.rules.dedup_by(|a, b| a.from == b.from);
        self
    }

    /// True when there is nothing to substitute.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Substitute every origin in `input`; borrows when nothing matched.
    pub fn rewrite<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut i = 0;
        while i < input.len() {
            // Every spelling starts with "http"; skip quickly to the next candidate.
            let c = input[i];
            if c != b'h' && c != b'H' {
                i += 1;
                continue;
            }
            let hit = self.rules.iter().find(|r| {
                input.len() - i >= r.from.len()
                    && input[i..i + r.from.len()].eq_ignore_ascii_case(&r.from)
                    && ends_at_boundary(input, i + r.from.len())
            });
            match hit {
                Some(rule) => {
                    let buf = out.get_or_insert_with(|| Vec::with_capacity(input.len() + 64));
                    buf.extend_from_slice(&input[copied..i]);
                    buf.extend_from_slice(&rule.to);
                    i += rule.from.len();
                    copied = i;
                }
                None => i += 1,
            }
        }
        match out {
            None => Cow::Borrowed(input),
            Some(mut buf) => {
                buf.extend_from_slice(&input[copied..]);
                Cow::Owned(buf)
            }
        }
    }

    /// [`OriginRewriter::rewrite`] for text.
    pub fn rewrite_str<'a>(&self, input: &'a str) -> Cow<'a, str> {
        match self.rewrite(input.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(input),
            // Substituting whole ASCII origins inside UTF-8 keeps it UTF-8.
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }
}

/// An origin ends where the host (and port) cannot go on: `https://fe1.contoso.com` must not
/// match inside `https://fe1.contoso.com.evil` or `https://fe1.contoso.com:8443`.
fn ends_at_boundary(input: &[u8], at: usize) -> bool {
    match input.get(at) {
        None => true,
        Some(c) => !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'@')),
    }
}

/// Drop a `Domain=` attribute naming one of `hosts` from a `Set-Cookie` value: behind the
/// proxy the cookie belongs to the proxy's host, which a host-only cookie gets right.
pub fn strip_cookie_domain<'a>(set_cookie: &'a str, hosts: &[impl AsRef<str>]) -> Cow<'a, str> {
    let parts: Vec<&str> = set_cookie.split(';').collect();
    let keep: Vec<&str> = parts
        .iter()
        .copied()
        .filter(|part| {
            let Some((name, value)) = part.split_once('=') else {
                return true;
            };
            if !name.trim().eq_ignore_ascii_case("domain") {
                return true;
            }
            let domain = value.trim().trim_start_matches('.');
            !hosts.iter().map(AsRef::as_ref).any(|h| {
                h.eq_ignore_ascii_case(domain)
                    || h.to_ascii_lowercase()
                        .ends_with(&format!(".{}", domain.to_ascii_lowercase()))
            })
        })
        .collect();
    if keep.len() == parts.len() {
        Cow::Borrowed(set_cookie)
    } else {
        Cow::Owned(keep.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fe1() -> Origin {
        Origin::parse("https://fe1.contoso.com").unwrap()
    }

    #[test]
    fn parses_origins() {
        let o = Origin::parse("https://FE1.contoso.com:443/ucwa").unwrap();
        assert_eq!(o.base(), "https://fe1.contoso.com");
        let o = Origin::parse("http://127.0.0.1:4780").unwrap();
        assert_eq!(o.base(), "http://127.0.0.1:4780");
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("not a url").is_err());
    }

    #[test]
    fn rewrites_every_spelling_and_keeps_other_bytes() {
        let lyncweb = Origin::parse("https://lyncweb.contoso.com").unwrap();
        let rw = OriginRewriter::to_public(&fe1(), &[lyncweb], "http://127.0.0.1:9");
        let body = "\u{feff}{ \"a\" : \"https://fe1.contoso.com:443/ucwa/x?a=1\\u0026b=2\",\n\"b\":\"https:\\/\\/fe1.contoso.com\\/ucwa\",\"c\":\"https://lyncweb.contoso.com/WebTicket/oauthtoken\",\"d\":\"https://fe1.contoso.com.evil.com/\",\"e\":\"https://fe1.contoso.com:8443/\"}";
        let out = rw.rewrite_str(body);
        assert_eq!(
            out,
            "\u{feff}{ \"a\" : \"http://127.0.0.1:9/ucwa/x?a=1\\u0026b=2\",\n\"b\":\"http:\\/\\/127.0.0.1:9\\/ucwa\",\"c\":\"http://127.0.0.1:9/_upstream/lyncweb.contoso.com/WebTicket/oauthtoken\",\"d\":\"https://fe1.contoso.com.evil.com/\",\"e\":\"https://fe1.contoso.com:8443/\"}"
        );
        let xml = r#"<link rel="self" href="https://fe1.contoso.com/ucwa/a?x=1&amp;y=2"/>"#;
        assert_eq!(
            rw.rewrite_str(xml),
            r#"<link rel="self" href="http://127.0.0.1:9/ucwa/a?x=1&amp;y=2"/>"#
        );
        assert!(matches!(rw.rewrite(b"nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn reverse_maps_public_back() {
        let lyncweb = Origin::parse("https://lyncweb.contoso.com").unwrap();
        let rw = OriginRewriter::to_upstream(&fe1(), &[lyncweb], "http://127.0.0.1:9");
        assert_eq!(
            rw.rewrite_str("http://127.0.0.1:9/_upstream/lyncweb.contoso.com/XFrame.html"),
            "https://lyncweb.contoso.com/XFrame.html"
        );
        assert_eq!(
            rw.rewrite_str("http://127.0.0.1:9/ucwa/XFrame.html"),
            "https://fe1.contoso.com/ucwa/XFrame.html"
        );
    }

    #[test]
    fn published_paths_have_one_parser_and_hosts_ignore_case() {
        assert_eq!(
            split_published("/_upstream/lyncweb.contoso.com/WebTicket/oauthtoken"),
            Some(("lyncweb.contoso.com", "/WebTicket/oauthtoken"))
        );
        assert_eq!(split_published("/_upstream/h"), Some(("h", "/")));
        assert_eq!(split_published("/ucwa/x"), None);
        assert_eq!(strip_published("/_upstream/h:8443/a?b"), "/a?b");
        let ups = Upstreams::parse(
            "https://fe1.contoso.com",
            &["https://lyncweb.contoso.com".to_string()],
        )
        .unwrap();
        // Forwarding and export agree on a host written in another case.
        let mixed = "/_upstream/LyncWeb.Contoso.COM/WebTicket/oauthtoken";
        assert_eq!(
            ups.resolve(mixed),
            Resolved::Also {
                index: 0,
                path: "/WebTicket/oauthtoken"
            }
        );
        assert_eq!(
            ups.url_of(mixed, Some("a=1")),
            "https://lyncweb.contoso.com/WebTicket/oauthtoken?a=1"
        );
        assert_eq!(
            ups.url_of("/_upstream/lyncweb.contoso.com:443/x", None),
            "https://lyncweb.contoso.com/x"
        );
        assert_eq!(
            ups.resolve("/_upstream/evil.com/x"),
            Resolved::Unknown {
                authority: "evil.com"
            }
        );
        assert_eq!(
            ups.url_of("/ucwa/x", None),
            "https://fe1.contoso.com/ucwa/x"
        );
        assert_eq!(
            ups.publish(&ups.also[0], "/WebTicket/oauthtoken"),
            "/_upstream/lyncweb.contoso.com/WebTicket/oauthtoken"
        );
        assert_eq!(ups.publish(&ups.main, "/ucwa"), "/ucwa");
    }

    #[test]
    fn cookie_domains_of_upstream_hosts_are_dropped() {
        assert_eq!(
            strip_cookie_domain(
                "cwt_ucwa=x; Domain=.contoso.com; path=/",
                &["fe1.contoso.com"]
            ),
            "cwt_ucwa=x; path=/"
        );
        assert_eq!(
            strip_cookie_domain("a=1; Domain=other.org", &["fe1.contoso.com"]),
            "a=1; Domain=other.org"
        );
    }
}

#[cfg(test)]
mod proptests;
