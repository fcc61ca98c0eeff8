//! The control API under `/_sim/` (loopback peers only): what a test does to play the other
//! side of a conversation, and the errors it wants the next request to meet. Bodies are JSON;
//! every field is optional unless said otherwise (see the module docs of [`crate::sim`]).

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::exchange::{Fail, Handled, Reply, Req};
use super::im::{self, ParticipantChange};
use super::resources::Paths;
use super::state::{App, State, User};
use crate::ucwa::{ErrorBody, split_target, target_of};

/// An error waiting for the next matching request.
#[derive(Debug, Clone)]
pub struct Injection {
    method: Option<String>,
    rel: Option<String>,
    path: Option<String>,
    error: ErrorBody,
    remaining: u32,
}

/// Take the first injected error that matches this request, if any.
pub fn take_injection(
    state: &mut State,
    method: &Method,
    rel: Option<&str>,
    path: &str,
) -> Option<ErrorBody> {
    let pos = state.injections.iter().position(|i| {
        i.method
            .as_deref()
            .is_none_or(|m| m == "*" || m.eq_ignore_ascii_case(method.as_str()))
            && i.rel
                .as_deref()
                .is_none_or(|r| rel.is_some_and(|rel| rel.eq_ignore_ascii_case(r)))
            && i.path
                .as_deref()
                .is_none_or(|p| p.eq_ignore_ascii_case(path))
    })?;
    let inj = &mut state.injections[pos];
    let err = inj.error.clone();
    inj.remaining = inj.remaining.saturating_sub(1);
    if inj.remaining == 0 {
        state.injections.remove(pos);
    }
    Some(err)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorSpec {
    method: Option<String>,
    rel: Option<String>,
    path: Option<String>,
    status: u16,
    subcode: Option<String>,
    message: Option<String>,
    times: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Target {
    app: Option<String>,
    conversation: Option<String>,
    participant: Option<String>,
    from: Option<String>,
    name: Option<String>,
    subject: Option<String>,
    message: Option<String>,
    text: Option<String>,
    #[serde(default)]
    html: bool,
}

fn parse_body<T: for<'de> Deserialize<'de> + Default>(req: &Req) -> Result<T, Fail> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| Fail::bad_request(format!("Malformed control request: {e}")))
}

fn json_reply(v: Value) -> Reply {
    Reply::body(
        StatusCode::OK,
        "application/json; charset=utf-8",
        v.to_string(),
    )
}

fn person(sip: Option<&str>, name: Option<&str>, default: &str) -> Result<User, Fail> {
    let mut user = User::from_login(sip.unwrap_or(default))
        .ok_or_else(|| Fail::bad_request("Not a SIP address."))?;
    if let Some(n) = name {
        user.name = n.to_string();
    }
    Ok(user)
}

fn app_id(state: &State, t: &Target) -> Result<String, Fail> {
    match &t.app {
        Some(a) => state
            .apps
            .contains_key(a)
            .then(|| a.clone())
            .ok_or_else(Fail::app_not_found),
        None => state
            .latest_app()
            .map(str::to_string)
            .ok_or_else(Fail::app_not_found),
    }
}

/// A conversation named by id or href; the latest one by default.
fn conversation_id(app: &App, t: &Target) -> Result<String, Fail> {
    let id = match t.conversation.as_deref() {
        Some(c) => c
            .split("/conversations/")
            .nth(1)
            .unwrap_or(c)
            .split(['/', '?'])
            .next()
            .unwrap_or(c)
            .to_string(),
        None => app
            .latest_conversation()
            .map(str::to_string)
            .ok_or_else(|| Fail::not_found("The application has no conversation."))?,
    };
    if app.conversations.contains_key(&id) {
        Ok(id)
    } else {
        Err(Fail::not_found("The conversation does not exist."))
    }
}

/// The remote participant an action is about; defaults to the first one in messaging.
fn remote(app: &App, conv: &str, t: &Target, default: Option<&str>) -> Result<User, Fail> {
    let named = t.participant.as_deref().or(t.from.as_deref());
    if let Some(sip) = named {
        let user = person(Some(sip), t.name.as_deref(), sip)?;
        let known = app
            .conversations
            .get(conv)
            .and_then(|c| c.participant(&user.sip))
            .map(|p| p.user.clone());
        return Ok(match (known, &t.name) {
            (Some(k), None) => k,
            _ => user,
        });
    }
    if let Some(d) = default {
        return person(Some(d), t.name.as_deref(), d);
    }
    app.conversations
        .get(conv)
        .and_then(|c| c.participants.iter().find(|p| p.in_messaging))
        .map(|p| p.user.clone())
        .ok_or_else(|| Fail::conflict(None, "No remote participant is in messaging."))
}

fn view(state: &State) -> Value {
    let apps: Vec<Value> = state
        .app_order
        .iter()
        .filter_map(|id| state.apps.get(id))
        .map(|app| {
            let p = Paths::new(app);
            let convs: Vec<Value> = app
                .conversation_order
                .iter()
                .filter_map(|c| app.conversations.get(c))
                .map(|c| {
                    json!({
                        "id": c.id,
                        "href": p.conversation(&c.id),
                        "state": c.state,
                        "messaging": c.messaging,
                        "localInMessaging": c.local_in_messaging,
                        "participants": c.participants.iter().map(|r| json!({
                            "sip": r.user.sip, "name": r.user.name, "inMessaging": r.in_messaging,
                        })).collect::<Vec<_>>(),
                        "messages": c.messages.len(),
                    })
                })
                .collect();
            let invs: Vec<Value> = app
                .invitations
                .values()
                .map(|i| {
                    json!({
                        "id": i.id, "href": p.invitation(&i.id), "direction": i.direction.as_str(),
                        "state": i.state, "conversation": i.conversation,
                    })
                })
                .collect();
            json!({
                "id": app.id,
                "href": app.base(),
                "user": app.user.sip,
                "available": app.available,
                "heldPGet": app.feed.is_held(),
                "pendingUnits": app.feed.pending_units(),
                "conversations": convs,
                "invitations": invs,
            })
        })
        .collect();
    json!({ "applications": apps, "injectedErrors": state.injections.len() })
}

/// Everything under `/_sim/`.
pub fn handle(state: &mut State, req: &Req) -> Handled {
    let action = req.path.trim_start_matches("/_sim").trim_matches('/');
    let post = req.method == Method::POST;
    match (action, &req.method) {
        ("state", &Method::GET) => Ok(json_reply(view(state))),
        ("errors", &Method::POST) => inject(state, req),
        ("errors", &Method::DELETE) => {
            state.injections.clear();
            Ok(Reply::no_content())
        }
        ("invite", _) if post => invite(state, req),
        ("join", _) if post => change(state, req, ParticipantChange::Join),
        ("update", _) if post => change(state, req, ParticipantChange::Update),
        ("leave", _) if post => change(state, req, ParticipantChange::Leave),
        ("message", _) if post => message(state, req),
        ("state", _) => Err(Fail::Method(&["GET"])),
        ("errors", _) => Err(Fail::Method(&["POST", "DELETE"])),
        ("invite" | "join" | "update" | "leave" | "message", _) => Err(Fail::Method(&["POST"])),
        _ => Err(Fail::not_found("No such control endpoint.")),
    }
}

fn inject(state: &mut State, req: &Req) -> Handled {
    let spec: ErrorSpec = serde_json::from_slice(&req.body)
        .map_err(|e| Fail::bad_request(format!("Malformed error injection: {e}")))?;
    let status = StatusCode::from_u16(spec.status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .ok_or_else(|| Fail::bad_request("status must be a 4xx or 5xx code"))?;
    if spec.rel.is_none() && spec.path.is_none() {
        return Err(Fail::bad_request("give \"rel\" or \"path\""));
    }
    // A full URL is accepted for convenience: only its path is compared.
    let path = spec.path.map(|p| split_target(target_of(&p)).0.to_string());
    let mut error = ErrorBody::injected(status, spec.subcode.as_deref());
    if let Some(message) = spec.message {
        error.message = message;
    }
    state.injections.push(Injection {
        method: spec.method,
        rel: spec.rel,
        path,
        error,
        remaining: spec.times.unwrap_or(1).max(1),
    });
    Ok(json_reply(json!({ "injected": state.injections.len() })))
}

fn invite(state: &mut State, req: &Req) -> Handled {
    let t: Target = parse_body(req)?;
    let id = app_id(state, &t)?;
    let from = person(t.from.as_deref(), t.name.as_deref(), "bob@contoso.com")?;
    let State { rng, apps, .. } = state;
    let app = apps.get_mut(&id).ok_or_else(Fail::app_not_found)?;
    if !app.available {
        return Err(Fail::conflict(
            None,
            "The application has not called makeMeAvailable, so it cannot receive invitations.",
        ));
    }
    if from.sip == app.user.sip {
        return Err(Fail::bad_request("The user cannot invite themself."));
    }
    let (inv, conv) = im::incoming_invitation(
        rng,
        app,
        from,
        t.subject.as_deref().unwrap_or(""),
        t.message.or(t.text),
    );
    let p = Paths::new(app);
    Ok(json_reply(json!({
        // Hrefs, not bare ids, like every UCWA answer: diff normalises ids inside hrefs.
        "application": p.base(),
        "conversation": p.conversation(&conv),
        "invitation": p.invitation(&inv),
        "accept": format!("{}/accept", p.invitation(&inv)),
        "decline": format!("{}/decline", p.invitation(&inv)),
    })))
}

fn change(state: &mut State, req: &Req, change: ParticipantChange) -> Handled {
    let t: Target = parse_body(req)?;
    let id = app_id(state, &t)?;
    let app = state.apps.get_mut(&id).ok_or_else(Fail::app_not_found)?;
    let conv = conversation_id(app, &t)?;
    let default = (change == ParticipantChange::Join).then_some("carol@contoso.com");
    let who = remote(app, &conv, &t, default)?;
    if who.sip == app.user.sip {
        return Err(Fail::bad_request(
            "Use the UCWA API for the user's own messaging.",
        ));
    }
    let sip = who.sip.clone();
    im::participant_messaging_change(app, &conv, who, change)?;
    let p = Paths::new(app);
    Ok(json_reply(json!({
        "conversation": p.conversation(&conv),
        "participant": p.participant(&conv, &sip),
        "participantMessaging": p.participant_messaging(&conv, &sip),
    })))
}

fn message(state: &mut State, req: &Req) -> Handled {
    let t: Target = parse_body(req)?;
    let id = app_id(state, &t)?;
    let State { clock, apps, .. } = state;
    let app = apps.get_mut(&id).ok_or_else(Fail::app_not_found)?;
    let conv = conversation_id(app, &t)?;
    let who = remote(app, &conv, &t, None)?;
    let text = t
        .text
        .clone()
        .or(t.message.clone())
        .ok_or_else(|| Fail::bad_request("give \"text\""))?;
    let href = im::send_message(clock, app, &conv, Some(&who.sip), text, t.html, None)?;
    Ok(json_reply(json!({ "message": href })))
}
