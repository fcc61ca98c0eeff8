//! Turning a client's request into the upstream's: which upstream (the main one, or an
//! `--also-upstream` under `/_upstream/HOST`), refusing what would make this an open proxy,
//! and the header rules of a reverse proxy (RFC 9110 §7.6: hop-by-hop fields dropped, `Host`,
//! `Via`, `X-Forwarded-*`).
//!
//! Only a configured upstream's `host:port` is ever contacted, whatever the request-target
//! form (RFC 9112 §3.2): origin-form goes to the main upstream (or the also-upstream its
//! `/_upstream/HOST` prefix names), absolute-form only when it names the proxy itself or a
//! configured upstream, authority-form (`CONNECT` or not) and asterisk-form never. The URI
//! sent upstream is built from the configured origin's parts with its port written out
//! ([`Router::upstream_uri`]), never by pasting the client's target after a base URL: a
//! target that is not a path (`*`) once turned `https://host` + `*` into an authority with
//! no port, and the request went to port 443 of that host with the client's `Authorization`.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
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
        if uri.path() == "*" {
            // The listener answers `OPTIONS *` itself (crate::serve); nothing else may name
            // the server as a whole, and nothing of the kind is forwarded.
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "BadRequestTarget",
                "an asterisk-form request target names no resource and is not forwarded".into(),
            ));
        }
        if !h2 {
            match uri.scheme_str() {
                None if uri.authority().is_some() => {
                    return Err(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "BadRequestTarget",
                        format!(
                            "authority-form request target {uri} refused: only CONNECT uses it, and ucwa-replay is not an open proxy"
                        ),
                    ));
                }
                None | Some("http" | "https") => {}
                Some(other) => {
                    return Err(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "BadRequestTarget",
                        format!("{other}: request targets are http or https URLs"),
                    ));
                }
            }
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
            // The port the target means (written, or its scheme's default) must be the
            // upstream's: `http://fe1.contoso.com` is port 80, not an https upstream's 443.
            let upstream = self
                .upstreams
                .iter()
                .position(|o| format!("{}:{}", o.host, o.port).eq_ignore_ascii_case(&with_port));
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

    /// The URI to send upstream for `route`: the configured origin's scheme, its host and
    /// its port (always written out, so that no parser can fall back to a default), and the
    /// route's path and query, which must be a path (`/…`).
    pub fn upstream_uri(&self, route: &Route) -> Result<Uri, Refusal> {
        let bad =
            |message: String| Refusal::new(StatusCode::BAD_REQUEST, "BadRequestTarget", message);
        let origin = &self.upstreams[route.upstream];
        if !route.upstream_path.starts_with('/') {
            return Err(bad(format!(
                "request target {:?} is not a path and is not forwarded",
                route.upstream_path
            )));
        }
        let scheme = if origin.scheme == "https" {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let authority = Authority::try_from(format!("{}:{}", origin.host, origin.port))
            .map_err(|e| bad(format!("upstream {origin}: {e}")))?;
        let path = PathAndQuery::try_from(route.upstream_path.as_str())
            .map_err(|e| bad(format!("cannot forward this request target: {e}")))?;
        Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|e| bad(format!("cannot forward this request target: {e}")))
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

    /// Every request-target form: only a configured upstream's host and port ever end up
    /// in the URI sent upstream, with the port written out.
    #[test]
    fn every_request_target_form_reaches_only_a_configured_host_and_port() {
        let r = router();
        let uri_of = |method: Method, target: &str| {
            let uri: Uri = target.parse().unwrap();
            r.route(&method, &uri, false)
                .and_then(|route| r.upstream_uri(&route))
        };
        // Origin-form and absolute-form naming the proxy or an upstream.
        for (target, expected) in [
            ("/ucwa/x?y=1", "https://fe1.contoso.com:443/ucwa/x?y=1"),
            (
                "http://127.0.0.1:4781/ucwa/x",
                "https://fe1.contoso.com:443/ucwa/x",
            ),
            ("http://127.0.0.1:4781", "https://fe1.contoso.com:443/"),
            (
                "https://fe1.contoso.com/ucwa/x",
                "https://fe1.contoso.com:443/ucwa/x",
            ),
            (
                "https://FE1.contoso.com:443/ucwa/x",
                "https://fe1.contoso.com:443/ucwa/x",
            ),
            (
                "/_upstream/lyncweb.contoso.com/WebTicket/oauthtoken",
                "https://lyncweb.contoso.com:443/WebTicket/oauthtoken",
            ),
            (
                "/_upstream/lyncweb.contoso.com",
                "https://lyncweb.contoso.com:443/",
            ),
            (
                "//evil.example/x",
                "https://fe1.contoso.com:443//evil.example/x",
            ),
            (
                "/@evil.example/x",
                "https://fe1.contoso.com:443/@evil.example/x",
            ),
        ] {
            let uri = uri_of(Method::GET, target).unwrap_or_else(|e| panic!("{target}: {e}"));
            assert_eq!(uri.to_string(), expected, "{target}");
            assert!(
                uri.port_u16().is_some(),
                "{target}: the port is written out"
            );
        }
        // Absolute-form naming another host, or a configured host on another port.
        for target in [
            "http://evil.example/x",
            "https://fe1.contoso.com:8443/x",
            "http://fe1.contoso.com/x",
            "http://127.0.0.1/x",
            "http://127.0.0.1:4781@evil.example/x",
        ] {
            let err = uri_of(Method::GET, target).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN, "{target}");
        }
        // Authority-form, with or without CONNECT, and asterisk-form, for any method.
        for (method, target) in [
            (Method::GET, "fe1.contoso.com:443"),
            (Method::OPTIONS, "127.0.0.1:4781"),
            (Method::GET, "evil.example:80"),
            (Method::OPTIONS, "*"),
            (Method::GET, "*"),
        ] {
            let err = uri_of(method.clone(), target).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{method} {target}");
            assert_eq!(err.subcode, "BadRequestTarget");
        }
        let err = uri_of(Method::CONNECT, "fe1.contoso.com:443").unwrap_err();
        assert_eq!(err.status, StatusCode::METHOD_NOT_ALLOWED);
        // An h2 request's authority is the client's Host; an asterisk is still refused.
        let h2: Uri = "https://127.0.0.1:4781/ucwa/x".parse().unwrap();
        let route = r.route(&Method::GET, &h2, true).unwrap();
        assert_eq!(
            r.upstream_uri(&route).unwrap().to_string(),
            "https://fe1.contoso.com:443/ucwa/x"
        );
        assert!(
            r.route(&Method::OPTIONS, &"*".parse().unwrap(), true)
                .is_err()
        );
    }

    #[test]
    fn the_upstream_port_is_always_written_out() {
        let plain = Origin::parse("http://127.0.0.1:8080").unwrap();
        let default = Origin::parse("http://fe1.contoso.com").unwrap();
        let public = Origin::parse("http://127.0.0.1:4781").unwrap();
        let r = Router::new(
            vec![plain, default],
            &public,
            "127.0.0.1:4781".parse().unwrap(),
        );
        let route = r
            .route(&Method::GET, &"/x".parse().unwrap(), false)
            .unwrap();
        assert_eq!(
            r.upstream_uri(&route).unwrap().to_string(),
            "http://127.0.0.1:8080/x"
        );
        let route = r
            .route(
                &Method::GET,
                &"/_upstream/fe1.contoso.com/x".parse().unwrap(),
                false,
            )
            .unwrap();
        assert_eq!(
            r.upstream_uri(&route).unwrap().to_string(),
            "http://fe1.contoso.com:80/x"
        );
        let odd = Route {
            upstream: 0,
            upstream_path: "*".into(),
            client_path: "*".into(),
        };
        assert_eq!(
            r.upstream_uri(&odd).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
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
