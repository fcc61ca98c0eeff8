//! The UCWA resources under `/ucwa/oauth/v1/applications`: which path is which resource
//! (by the path shapes a real front-end uses), which methods it takes, and to which part each
//! request goes: [`application`] (the application, `me`, contacts), [`conversation`]
//! (conversations and participants, participantMessaging) and [`messaging`] (messages,
//! invitations). Order of checks, as a front-end does them: token (401), injected error,
//! resource (404), method (405), scope (403), then the request itself.

mod application;
mod conversation;
mod messaging;
mod path;

pub use path::{AppRes, Family, Route, parse};

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Map, Value};

use super::Sim;
use super::auth;
use super::control;
use super::exchange::{Fail, Handled, Reply, Req};
use super::feed;
use super::state::{App, Conversation, State, Token};

/// A request body as a JSON object: JSON, or XML `<input><property name>…` (UCWA 1.0 style).
/// An empty body is an empty object.
pub fn input(req: &Req) -> Result<Map<String, Value>, Fail> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let mime = req.content_mime();
    let body = crate::ucwa::media::strip_bom(&req.body);
    match mime.as_deref() {
        Some(m) if m == "application/json" || m.ends_with("+json") => {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(Fail::bad_request("The request body must be a JSON object.")),
                Err(e) => Err(Fail::bad_request(format!("Malformed JSON body: {e}"))),
            }
        }
        Some(m) if m == "application/xml" || m == "text/xml" || m.ends_with("+xml") => {
            let text = std::str::from_utf8(body)
                .map_err(|_| Fail::bad_request("The XML body is not UTF-8."))?;
            let doc = roxmltree::Document::parse(text)
                .map_err(|e| Fail::bad_request(format!("Malformed XML body: {e}")))?;
            let mut map = Map::new();
            for p in doc
                .root_element()
                .children()
                .filter(|n| n.has_tag_name("property") || n.tag_name().name() == "property")
            {
                if let Some(name) = p.attribute("name") {
                    map.insert(
                        name.to_string(),
                        Value::String(p.text().unwrap_or("").to_string()),
                    );
                }
            }
            Ok(map)
        }
        other => Err(Fail::unsupported_media(other)),
    }
}

fn str_field(map: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_string)
    })
}

/// What a UCWA request turned into: an answer, or a P-GET to hold (async, outside the lock).
pub enum Dispatch {
    Done(Reply),
    Events(String),
}

/// Everything under `/ucwa/`.
pub async fn handle(sim: &Arc<Sim>, req: &Req) -> Handled {
    match dispatch(sim, req, false)? {
        Dispatch::Done(reply) => Ok(reply),
        Dispatch::Events(app_id) => feed::pget(sim, req, &app_id).await,
    }
}

/// Check and answer a UCWA request (`in_batch`: a part of a batch, where the events feed and
/// nested batches are refused).
pub fn dispatch(sim: &Sim, req: &Req, in_batch: bool) -> Result<Dispatch, Fail> {
    let (token, route) = {
        let mut state = sim.lock();
        let token = auth::bearer(&state, req).ok_or(Fail::Unauthorized)?;
        let route = parse(&req.path);
        let rel = route
            .as_ref()
            .map(|r| r.rel(&req.method, Some(&token.user.sip)));
        if let Some(err) = control::take_injection(&mut state, &req.method, rel, &req.path) {
            return Err(Fail::Ucwa(Box::new(err)));
        }
        let route = route.ok_or_else(|| Fail::not_found("The resource does not exist."))?;
        let allowed = route.methods();
        if !allowed.contains(&req.method.as_str()) {
            return Err(Fail::Method(allowed));
        }
        if route.conversational() && !token.may_converse() {
            return Err(Fail::new(
                StatusCode::FORBIDDEN,
                None,
                "The token lacks the Conversations.Initiate and Conversations.Receive scopes.",
            ));
        }
        own_route(&state, &route, &token)?;
        (token, route)
    };
    match &route {
        Route::App(_, AppRes::Events | AppRes::Batch) if in_batch => Err(Fail::bad_request(
            "The events feed and batches cannot be part of a batch.",
        )),
        Route::App(app_id, AppRes::Events) => Ok(Dispatch::Events(app_id.clone())),
        Route::App(_, AppRes::Batch) => super::batch::handle(sim, req).map(Dispatch::Done),
        Route::Applications => {
            application::create_application(&mut sim.lock(), req, &token).map(Dispatch::Done)
        }
        Route::App(app_id, r) => {
            let mut state = sim.lock();
            app_request(&mut state, req, app_id, r).map(Dispatch::Done)
        }
    }
}

fn own_route(state: &State, route: &Route, token: &Token) -> Result<(), Fail> {
    match route {
        Route::Applications => Ok(()),
        Route::App(app_id, _) => own_app(state, app_id, token),
    }
}

fn own_app(state: &State, app_id: &str, token: &Token) -> Result<(), Fail> {
    match state.apps.get(app_id) {
        Some(app) if app.user == token.user => Ok(()),
        _ => Err(Fail::app_not_found()),
    }
}

/// A request for a resource of application `app_id`: to the part of the simulator that owns
/// that resource.
fn app_request(state: &mut State, req: &Req, app_id: &str, r: &AppRes) -> Handled {
    if *r == AppRes::Application && req.method == Method::DELETE {
        state.apps.remove(app_id).ok_or_else(Fail::app_not_found)?;
        return Ok(Reply::no_content());
    }
    let State {
        rng, clock, apps, ..
    } = state;
    let app = apps.get_mut(app_id).ok_or_else(Fail::app_not_found)?;
    match r.family() {
        Family::Application => application::handle(app, req, r),
        Family::Conversation => conversation::handle(app, req, r),
        Family::Messaging => messaging::handle(rng, clock, app, req, r),
        Family::Feed => Err(Fail::not_found("The resource does not exist.")),
    }
}

/// The conversation a path names, as it is now.
fn conv(app: &App, c: &str) -> Result<Conversation, Fail> {
    app.conversations
        .get(c)
        .cloned()
        .ok_or_else(|| Fail::not_found("The conversation does not exist."))
}
