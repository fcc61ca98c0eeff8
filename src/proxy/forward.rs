//! Turning a client's request into the upstream's: which upstream (the main one, or an
//! `--also-upstream` under `/_upstream/HOST`), refusing what would make this an open proxy,
//! and the header rules of a reverse proxy (RFC 9110 §7.6: hop-by-hop fields dropped, `Host`,
//! `Via`, `X-Forwarded-*`).

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};

use crate::recording::headers::strip_hop_by_hop;
use crate::recording::{Origin, OriginRewriter, Resolved, Upstreams};

/// Request headers that carry the public origin and go back to the upstream's.
const ORIGIN_HEADERS: &[&str] = &["origin", "referer", "x-ms-origin"];

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Index into the proxy's upstream list (0: the main upstream).
    pub upstream: usize,
    /// The path to send upstream (prefix stripped), with the query.
    pub upstream_path: String,
    /// The path as recorded: what a client of the proxy uses for it (an also-upstream's
    /// path under `/_upstream/HOST`, however the request named that host), without query.
    pub client_path: String,
}

/// Why a request is not forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub status: StatusCode,
    pub subcode: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, subcode: &'static str, message: String) -> Self {
        Refusal {
            status,
            subcode,
            message,
        }
    }
}

/// The upstreams and the names under which the proxy itself is reached.
#[derive(Debug, Clone)]
pub struct Router {
    /// `[main, also...]`.
    pub upstreams: Vec<Origin>,
    deployment: Upstreams,
    /// `host[:port]` spellings that mean "this proxy" in an absolute-form request.
    pub own_authorities: Vec<String>,
}

impl Router {
    /// Build from the upstreams, the public origin and the bound address.
    pub fn new(upstreams: Vec<Origin>, public: &Origin, local: SocketAddr) -> Self {
        let mut own = vec![
            public.host_port(),
            format!("{}:{}", public.host, public.port),
            local.to_string(),
        ];
        if local.ip().is_loopback() || local.ip().is_unspecified() {
            own.push(format!("localhost:{}", local.port()));
            own.push(format!("127.0.0.1:{}", local.port()));
            own.push(format!("[::1]:{}", local.port()));
        }
        let deployment = Upstreams {
            main: upstreams[0].clone(),
            also: upstreams[1..].to_vec(),
        };
        Router {
            upstreams,
            deployment,
            own_authorities: own,
        }
    }

    /// Decide where `method uri` goes; `h2` requests always carry an authority, which is
    /// then the client's `Host`, not a proxy target.
    pub fn route(&self, method: &Method, uri: &Uri, h2: bool) -> Result<Route, Refusal> {
        if method == Method::CONNECT {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "NotAProxy",
                "CONNECT is refused: ucwa-replay is a reverse proxy for one upstream, not an open proxy".into(),
            ));
        }
        let mut target = 0;
        if !h2 && let Some(authority) = uri.authority() {
            let named = authority.as_str().to_ascii_lowercase();
            let with_port = match authority.port_u16() {
                Some(_) => named.clone(),
                None => {
                    let port = if uri.scheme_str() == Some("https") {
                        443
                    } else {
                        80
                    };
                    format!("{}:{port}", authority.host().to_ascii_lowercase())
                }
            };
            let ours = self
                .own_authorities
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&named) || a.eq_ignore_ascii_case(&with_port));
            let upstream = self.upstreams.iter().position(|o| {
                o.host_port().eq_ignore_ascii_case(&named)
                    || format!("{}:{}", o.host, o.port).eq_ignore_ascii_case(&with_port)
            });
            match (ours, upstream) {
                (true, _) => {}
                (false, Some(i)) => target = i,
                (false, None) => {
                    return Err(Refusal::new(
                        StatusCode::FORBIDDEN,
                        "NotAProxy",
                        format!(
                            "request for {named} refused: ucwa-replay only forwards to its configured upstream"
                        ),
                    ));
                }
            }
        }
        let path = uri.path();
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        if target == 0 {
            return match self.deployment.resolve(path) {
                Resolved::Main => Ok(Route {
                    upstream: 0,
                    upstream_path: format!("{path}{query}"),
                    client_path: path.to_string(),
                }),
                Resolved::Also { index, path: rest } => Ok(Route {
                    upstream: index + 1,
                    upstream_path: format!("{rest}{query}"),
                    client_path: path.to_string(),
                }),
                Resolved::Unknown { authority } => Err(Refusal::new(
                    StatusCode::NOT_FOUND,
                    "UnknownUpstream",
                    format!("{authority} is not a configured --also-upstream"),
                )),
            };
        }
        // An absolute-form request naming an also-upstream directly.
        Ok(Route {
            upstream: target,
            upstream_path: format!("{path}{query}"),
            client_path: self.deployment.publish(&self.upstreams[target], path),
        })
    }
}

/// What the forwarding headers say about the client's connection.
#[derive(Debug, Clone)]
pub struct ClientSide<'a> {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The `Host` (or h2 `:authority`) the client used.
    pub host: Option<&'a str>,
    /// `1.1`, `2` … for `Via`.
    pub version: &'a str,
}

/// Prepare request headers for the upstream: hop-by-hop removed, `Host` set, `Origin` /
/// `Referer` mapped back to the upstream origin, `Via` and `X-Forwarded-*` appended.
pub fn upstream_request_headers(
    headers: &mut HeaderMap,
    upstream: &Origin,
    back: &OriginRewriter,
    client: &ClientSide<'_>,
) {
    strip_hop_by_hop(headers, true);
    if let Ok(host) = HeaderValue::from_str(&upstream.host_port()) {
        headers.insert(header::HOST, host);
    }
    for name in ORIGIN_HEADERS {
        let values: Vec<HeaderValue> = headers
            .get_all(*name)
            .iter()
            .map(|v| match back.rewrite(v.as_bytes()) {
                std::borrow::Cow::Borrowed(_) => v.clone(),
                std::borrow::Cow::Owned(b) => HeaderValue::from_bytes(&b).unwrap_or(v.clone()),
            })
            .collect();
        if !values.is_empty() {
            headers.remove(*name);
            for v in values {
                headers.append(*name, v);
            }
        }
    }
    append(
        headers,
        header::VIA,
        &format!("{} ucwa-replay", client.version),
    );
    append(
        headers,
        HeaderName::from_static("x-forwarded-for"),
        &client.peer.ip().to_string(),
    );
    if let Some(host) = client.host
        && let Ok(v) = HeaderValue::from_str(host)
    {
        headers.insert(HeaderName::from_static("x-forwarded-host"), v);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if client.tls { "https" } else { "http" }),
    );
}

/// Append to a list-valued header (`Via`, `X-Forwarded-For`) as one comma-joined line.
fn append(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    let joined = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.is_empty() => format!("{existing}, {value}"),
        _ => value.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&joined) {
        headers.insert(name, v);
    }
}

/// `Via` version token for an HTTP version.
pub fn via_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// The deadline of an events-feed P-GET: the client's `timeout` (UCWA default 180 s, at most
/// 1800 s) plus slack, so the proxy never cuts a P-GET the server may legitimately hold.
pub fn pget_deadline(query: Option<&str>) -> std::time::Duration {
    let asked = crate::ucwa::feed::query_value(query, "timeout")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(180);
    std::time::Duration::from_secs(asked.clamp(1, 1800) + 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let main = Origin::parse("https://fe1.contoso.com").unwrap();
        let web = Origin::parse("https://lyncweb.contoso.com").unwrap();
        let public = Origin::parse("http://127.0.0.1:4781").unwrap();
        Router::new(vec![main, web], &public, "127.0.0.1:4781".parse().unwrap())
    }

    #[test]
    fn routes_prefix_and_refuses_foreign_hosts() {
        let r = router();
        let get = Method::GET;
        let route = r
            .route(
                &get,
                &"/ucwa/oauth/v1/applications?x=1".parse().unwrap(),
                false,
            )
            .unwrap();
        assert_eq!(route.upstream, 0);
        assert_eq!(route.upstream_path, "/ucwa/oauth/v1/applications?x=1");
        let route = r
            .route(
                &get,
                &"/_upstream/lyncweb.contoso.com/WebTicket/oauthtoken"
                    .parse()
                    .unwrap(),
                false,
            )
            .unwrap();
        assert_eq!(route.upstream, 1);
        assert_eq!(route.upstream_path, "/WebTicket/oauthtoken");
        // Any case of the host, and an absolute-form request naming the host itself, are
        // recorded under the one published path.
        let mixed = r
            .route(
                &get,
                &"/_upstream/LyncWeb.contoso.com/WebTicket/oauthtoken"
                    .parse()
                    .unwrap(),
                false,
            )
            .unwrap();
        assert_eq!(mixed.upstream, 1);
        assert_eq!(
            mixed.client_path,
            "/_upstream/LyncWeb.contoso.com/WebTicket/oauthtoken"
        );
        let absolute = r
            .route(
                &get,
                &"https://lyncweb.contoso.com/WebTicket/oauthtoken"
                    .parse()
                    .unwrap(),
                false,
            )
            .unwrap();
        assert_eq!(absolute.upstream, 1);
        assert_eq!(
            absolute.client_path,
            "/_upstream/lyncweb.contoso.com/WebTicket/oauthtoken"
        );
        assert_eq!(
            r.route(&get, &"/_upstream/evil.com/x".parse().unwrap(), false)
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
        let err = r
            .route(&get, &"http://evil.com/x".parse().unwrap(), false)
            .unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert!(
            r.route(&get, &"http://127.0.0.1:4781/x".parse().unwrap(), false)
                .is_ok()
        );
        assert!(
            r.route(&get, &"http://evil.com/x".parse().unwrap(), true)
                .is_ok()
        );
        let connect = r
            .route(&Method::CONNECT, &"evil.com:443".parse().unwrap(), false)
            .unwrap_err();
        assert_eq!(connect.status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn hop_by_hop_fields_go_and_forwarding_fields_come() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers, deflate"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.append("x-repeat", HeaderValue::from_static("a"));
        h.append("x-repeat", HeaderValue::from_static("b"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert(
            "referer",
            HeaderValue::from_static("http://127.0.0.1:4781/ucwa/XFrame.html"),
        );
        let main = Origin::parse("https://fe1.contoso.com").unwrap();
        let back = OriginRewriter::to_upstream(&main, &[], "http://127.0.0.1:4781");
        let client = ClientSide {
            peer: "127.0.0.9:5555".parse().unwrap(),
            tls: false,
            host: Some("127.0.0.1:4781"),
            version: "1.1",
        };
        upstream_request_headers(&mut h, &main, &back, &client);
        assert!(h.get("connection").is_none());
        assert!(h.get("x-secret-hop").is_none());
        assert!(h.get("keep-alive").is_none());
        assert!(h.get("upgrade").is_none());
        assert_eq!(h["te"], "trailers");
        assert_eq!(h.get_all("x-repeat").iter().count(), 2);
        assert_eq!(h["host"], "fe1.contoso.com");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.9");
        assert_eq!(h["x-forwarded-host"], "127.0.0.1:4781");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["via"], "1.1 ucwa-replay");
        assert_eq!(h["referer"], "https://fe1.contoso.com/ucwa/XFrame.html");
    }

    #[test]
    fn pget_deadline_follows_the_client_timeout() {
        use std::time::Duration;
        assert_eq!(pget_deadline(Some("ack=1")), Duration::from_secs(240));
        assert_eq!(
            pget_deadline(Some("ack=1&timeout=900")),
            Duration::from_secs(960)
        );
        assert_eq!(
            pget_deadline(Some("timeout=99999")),
            Duration::from_secs(1860)
        );
    }
}
