//! Sign-in as a front-end does it (docs/UCWA.md, "Sign-in"): the autodiscover root, the user resource
//! behind a 401 with both `WWW-Authenticate` challenges, and the `/WebTicket/oauthtoken`
//! password grant that issues `cwt=` tokens with scopes.

use base64::Engine;
use http::{StatusCode, header};
use serde_json::json;

use super::exchange::{Fail, Handled, Reply, Req};
use super::render::link;
use super::state::{State, Token, User};

/// The one password every simulated user has.
pub const PASSWORD: &str = "Pa55w0rd!";

/// Scopes a token gets when the token request names none.
pub const DEFAULT_SCOPES: [&str; 4] = [
    "Conversations.Initiate",
    "Conversations.Receive",
    "Contacts.ReadWrite",
    "User.ReadWrite",
];

/// Lifetime reported in `expires_in` (8 h, as for `cwt=` tokens).
const EXPIRES_IN: u64 = 28_800;

const UNAUTHORIZED_HTML: &str = "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\r\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\r\n<head>\r\n<title>401 - Unauthorized: Access is denied due to invalid credentials.</title>\r\n</head>\r\n<body>\r\n<div id=\"header\"><h1>Server Error</h1></div>\r\n<div id=\"content\">\r\n <h2>401 - Unauthorized: Access is denied due to invalid credentials.</h2>\r\n <h3>You do not have permission to view this directory or page using the credentials that you supplied.</h3>\r\n</div>\r\n</body>\r\n</html>\r\n";

/// Where autodiscover lives: `GET /` (lyncdiscover) or the autodiscover service root.
pub fn is_root_path(path: &str) -> bool {
    path == "/"
        || path.eq_ignore_ascii_case("/autodiscover/autodiscoverservice.svc/root")
        || path.eq_ignore_ascii_case("/autodiscover/autodiscoverservice.svc/root/")
}

pub fn is_user_path(path: &str) -> bool {
    path.eq_ignore_ascii_case("/autodiscover/autodiscoverservice.svc/root/oauth/user")
        || path.eq_ignore_ascii_case("/autodiscover/autodiscoverservice.svc/root/user")
}

pub fn is_token_path(path: &str) -> bool {
    path.eq_ignore_ascii_case("/webticket/oauthtoken")
}

fn resource_reply(req: &Req, value: &serde_json::Value, rel: &str) -> Reply {
    Reply::resource(&req.neg, value, rel)
}

/// The autodiscover root: absolute links built from the Host the client used.
pub fn root(req: &Req) -> Handled {
    let o = &req.origin;
    let v = json!({
        "_links": {
            "self": link(format!("{o}/Autodiscover/AutodiscoverService.svc/root?originalDomain=contoso.com")),
            "user": link(format!("{o}/Autodiscover/AutodiscoverService.svc/root/oauth/user?originalDomain=contoso.com")),
            "xframe": link(format!("{o}/Autodiscover/XFrame/XFrame.html")),
        }
    });
    Ok(resource_reply(req, &v, "root"))
}

/// The user resource: 401 without a token, `_links.applications` with one.
pub fn user(state: &State, req: &Req) -> Handled {
    let Some(_token) = bearer(state, req) else {
        return Ok(unauthorized(req, true));
    };
    let o = &req.origin;
    let v = json!({
        "_links": {
            "self": link(format!("{o}/Autodiscover/AutodiscoverService.svc/root/oauth/user")),
            "applications": link(format!("{o}{}", super::state::APPS_PATH)),
            "xframe": link(format!("{o}/Autodiscover/XFrame/XFrame.html")),
        },
        "rel": "user",
    });
    Ok(resource_reply(req, &v, "user"))
}

/// The token of the request's `Authorization: Bearer cwt=…`, if the simulator issued it.
pub fn bearer(state: &State, req: &Req) -> Option<Token> {
    let value = req.header(&header::AUTHORIZATION)?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    state.tokens.get(token.trim()).cloned()
}

/// A 401 with the two challenges real front-ends send; an HTML body like IIS's for the
/// user resource, a UCWA error body for UCWA resources.
pub fn unauthorized(req: &Req, html: bool) -> Reply {
    let o = &req.origin;
    let reply = if html {
        Reply::body(StatusCode::UNAUTHORIZED, "text/html", UNAUTHORIZED_HTML)
    } else {
        Reply::error(
            &req.neg,
            &crate::ucwa::ErrorBody::new(
                StatusCode::UNAUTHORIZED,
                None,
                "A valid bearer token is required.",
            ),
        )
    };
    reply
        .header(
            header::WWW_AUTHENTICATE,
            "Bearer trusted_issuers=\"00000002-0000-0ff1-ce00-000000000000@contoso.com\", client_id=\"00000004-0000-0ff1-ce00-000000000000\"",
        )
        .header(
            header::WWW_AUTHENTICATE,
            format!("MsRtcOAuth href=\"{o}/WebTicket/oauthtoken\",grant_type=\"urn:microsoft.rtc:windows,urn:microsoft.rtc:anonmeeting,password\""),
        )
}

fn token_error(code: &str) -> Reply {
    Reply::body(
        StatusCode::BAD_REQUEST,
        "application/json",
        json!({ "error": code }).to_string(),
    )
    .header(header::CACHE_CONTROL, "no-store")
}

/// `POST /WebTicket/oauthtoken` with `grant_type=password&username=…&password=…`
/// (optionally `scope=` space-separated scopes: a reduced-scope token for tests).
pub fn issue_token(state: &mut State, req: &Req) -> Handled {
    if req.content_mime().as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(Fail::unsupported_media(req.content_mime().as_deref()));
    }
    let mut grant = None;
    let mut username = None;
    let mut password = None;
    let mut scope = None;
    for (k, v) in form_urlencoded::parse(&req.body) {
        match k.as_ref() {
            "grant_type" => grant = Some(v.into_owned()),
            "username" => username = Some(v.into_owned()),
            "password" => password = Some(v.into_owned()),
            "scope" => scope = Some(v.into_owned()),
            _ => {}
        }
    }
    match grant.as_deref() {
        Some("password") => {}
        None => return Ok(token_error("invalid_request")),
        Some(_) => return Ok(token_error("unsupported_grant_type")),
    }
    let user = username.as_deref().and_then(User::from_login);
    let (Some(user), Some(PASSWORD)) = (user, password.as_deref()) else {
        return Ok(token_error("invalid_grant"));
    };
    let scopes: Vec<String> = match scope {
        Some(s) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
    };
    // `AAEB` is how cwt tokens start on the wire; the rest is seeded noise, URL-safe so
    // that the token survives being pasted into a query string.
    let noise = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(state.rng.bytes(48));
    let token = format!("cwt=AAEB{noise}");
    state.tokens.insert(token.clone(), Token { user, scopes });
    let body = json!({
        "access_token": token,
        "expires_in": EXPIRES_IN,
        "ms_rtc_identityscope": "local",
        "token_type": "Bearer",
    });
    Ok(
        Reply::body(StatusCode::OK, "application/json", body.to_string())
            .header(header::CACHE_CONTROL, "no-store")
            .header(header::PRAGMA, "no-cache"),
    )
}
