//! The UCWA resources under `/ucwa/oauth/v1/applications`: which path is which resource
//! (by the shapes of PROTOCOL.md §1), which methods it takes, and what each request does.
//! Order of checks, as a front-end does them: token (401), injected error, resource (404),
//! method (405), scope (403), then the request itself.

use std::sync::Arc;

use http::{Method, StatusCode, header};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::Sim;
use super::auth;
use super::control;
use super::exchange::{Fail, Handled, Reply, Req};
use super::feed;
use super::im;
use super::resources as res;
use super::state::{APPS_PATH, App, State, Token, User};

/// A resource of one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRes {
    Application,
    Batch,
    Me,
    MeDetail(&'static str),
    Contact(String),
    ContactPresence(String),
    MakeMeAvailable,
    ReportMyActivity,
    People,
    OnlineMeetings,
    Policies,
    Events,
    Communication,
    Conversations,
    Conversation(String),
    Participants(String),
    Participant(String, String),
    ParticipantMessaging(String, String),
    Messaging(String),
    Messages(String),
    Message(String, String),
    Terminate(String),
    Typing(String),
    TypingParticipants(String),
    Invitations,
    Invitation(String),
    Accept(String),
    Decline(String),
}

/// A UCWA path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Applications,
    App(String, AppRes),
}

/// Parse a path; `None` when it names no resource the simulator has.
pub fn parse(path: &str) -> Option<Route> {
    let rest = strip_prefix_ci(path, APPS_PATH)?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Some(Route::Applications);
    }
    let rest = rest.strip_prefix('/')?;
    let segs: Vec<String> = rest
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    if segs.iter().any(String::is_empty) {
        return None;
    }
    let lc: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lc: Vec<&str> = lc.iter().map(String::as_str).collect();
    let s = |i: usize| segs[i].clone();
    use AppRes::*;
    let r = match lc.as_slice() {
        [_] => Application,
        [_, "me"] => Me,
        [_, "me", "makemeavailable"] => MakeMeAvailable,
        [_, "me", "presence"] => MeDetail("presence"),
        [_, "me", "note"] => MeDetail("note"),
        [_, "me", "location"] => MeDetail("location"),
        [_, "people", _] => Contact(lc[2].into()),
        [_, "people", _, "presence"] => ContactPresence(lc[2].into()),
        [_, "me", "reportmyactivity"] => ReportMyActivity,
        [_, "people"] => People,
        [_, "onlinemeetings"] => OnlineMeetings,
        [_, "policies"] => Policies,
        [_, "events"] => Events,
        [_, "batch"] => Batch,
        [_, "communication"] => Communication,
        [_, "communication", "conversations"] => Conversations,
        [_, "communication", "conversations", _] => Conversation(s(3)),
        [_, "communication", "conversations", _, "participants"] => Participants(s(3)),
        [_, "communication", "conversations", _, "participants", _] => {
            Participant(s(3), lc[5].into())
        }
        [
            _,
            "communication",
            "conversations",
            _,
            "participants",
            _,
            "messaging",
        ] => ParticipantMessaging(s(3), lc[5].into()),
        [_, "communication", "conversations", _, "messaging"] => Messaging(s(3)),
        [
            _,
            "communication",
            "conversations",
            _,
            "messaging",
            "messages",
        ] => Messages(s(3)),
        [
            _,
            "communication",
            "conversations",
            _,
            "messaging",
            "messages",
            _,
        ] => Message(s(3), s(6)),
        [
            _,
            "communication",
            "conversations",
            _,
            "messaging",
            "terminate",
        ] => Terminate(s(3)),
        [
            _,
            "communication",
            "conversations",
            _,
            "messaging",
            "typing",
        ] => Typing(s(3)),
        [
            _,
            "communication",
            "conversations",
            _,
            "messaging",
            "typingparticipants",
        ] => TypingParticipants(s(3)),
        [_, "communication", "messaginginvitations"] => Invitations,
        [_, "communication", "messaginginvitations", _] => Invitation(s(3)),
        [_, "communication", "messaginginvitations", _, "accept"] => Accept(s(3)),
        [_, "communication", "messaginginvitations", _, "decline"] => Decline(s(3)),
        _ => return None,
    };
    Some(Route::App(s(0), r))
}

fn strip_prefix_ci<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let head = path.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &path[prefix.len()..])
}

impl Route {
    /// The rel a client followed to get here (what injected errors match on).
    pub fn rel(&self, method: &Method, local_sip: Option<&str>) -> &'static str {
        use AppRes::*;
        match self {
            Route::Applications => "applications",
            Route::App(_, r) => match r {
                Application => "application",
                Batch => "batch",
                Me => "me",
                MeDetail(rel) => rel,
                Contact(_) => "contact",
                ContactPresence(_) => "contactPresence",
                MakeMeAvailable => "makeMeAvailable",
                ReportMyActivity => "reportMyActivity",
                People => "people",
                OnlineMeetings => "onlineMeetings",
                Policies => "policies",
                Events => "events",
                Communication => "communication",
                Conversations => "conversations",
                Conversation(_) => "conversation",
                Participants(_) => "participants",
                Participant(_, sip) if Some(sip.as_str()) == local_sip => "localParticipant",
                Participant(..) => "participant",
                ParticipantMessaging(..) => "participantMessaging",
                Messaging(_) => "messaging",
                Messages(_) if method == Method::POST => "sendMessage",
                Messages(_) => "messages",
                Message(..) => "message",
                Terminate(_) => "stopMessaging",
                Typing(_) => "setIsTyping",
                TypingParticipants(_) => "typingParticipants",
                Invitations => "startMessaging",
                Invitation(_) => "messagingInvitation",
                Accept(_) => "accept",
                Decline(_) => "decline",
            },
        }
    }

    fn methods(&self) -> &'static [&'static str] {
        use AppRes::*;
        match self {
            Route::Applications => &["POST"],
            Route::App(_, r) => match r {
                Application | Conversation(_) => &["GET", "DELETE"],
                Batch | MakeMeAvailable | ReportMyActivity | Terminate(_) | Typing(_)
                | Invitations | Accept(_) | Decline(_) => &["POST"],
                Messages(_) => &["GET", "POST"],
                _ => &["GET"],
            },
        }
    }

    /// Conversation resources need a conversation scope.
    fn conversational(&self) -> bool {
        use AppRes::*;
        matches!(
            self,
            Route::App(
                _,
                Conversations
                    | Conversation(_)
                    | Participants(_)
                    | Participant(..)
                    | ParticipantMessaging(..)
                    | Messaging(_)
                    | Messages(_)
                    | Message(..)
                    | Terminate(_)
                    | Typing(_)
                    | TypingParticipants(_)
                    | Invitations
                    | Invitation(_)
                    | Accept(_)
                    | Decline(_)
            )
        )
    }
}

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
        Route::Applications => create_application(&mut sim.lock(), req, &token).map(Dispatch::Done),
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

fn create_application(state: &mut State, req: &Req, token: &Token) -> Handled {
    let body = input(req)?;
    let endpoint = str_field(&body, &["EndpointId", "instanceId"]);
    let user_agent = str_field(&body, &["UserAgent"]).unwrap_or_default();
    let culture = str_field(&body, &["Culture"]).unwrap_or_else(|| "en-US".into());
    let existing = endpoint.as_ref().and_then(|e| {
        state
            .apps
            .values()
            .find(|a| a.user == token.user && a.endpoint_id.as_deref() == Some(e.as_str()))
            .map(|a| a.id.clone())
    });
    let (status, app_id) = match existing {
        Some(id) => (StatusCode::OK, id),
        None => {
            let id = state.new_app_id();
            let comm_key = state.rng.guid();
            let comm_etag = (1_000_000_000 + state.rng.next_u64() % 3_000_000_000).to_string();
            let app = App {
                id: id.clone(),
                user: token.user.clone(),
                endpoint_id: endpoint,
                user_agent,
                culture,
                available: false,
                comm_key,
                comm_etag,
                feed: feed::Feed::default(),
                conversations: Default::default(),
                conversation_order: Vec::new(),
                invitations: Default::default(),
            };
            state.apps.insert(id.clone(), app);
            state.app_order.push(id.clone());
            (StatusCode::CREATED, id)
        }
    };
    let cookie = base64_cookie(state);
    let app = state.apps.get(&app_id).ok_or_else(Fail::app_not_found)?;
    let mut reply = Reply::resource(&req.neg, &res::application(app), "application");
    reply.status = status;
    Ok(reply.header(
        header::SET_COOKIE,
        format!(
            "cwt_ucwa={cookie}; path={}/photos; secure; HttpOnly",
            app.base()
        ),
    ))
}

fn base64_cookie(state: &mut State) -> String {
    use base64::Engine;
    let noise = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(state.rng.bytes(24));
    format!("AAEB{noise}")
}

fn app_request(state: &mut State, req: &Req, app_id: &str, r: &AppRes) -> Handled {
    let State {
        rng, clock, apps, ..
    } = state;
    let app = apps.get_mut(app_id).ok_or_else(Fail::app_not_found)?;
    let neg = &req.neg;
    let get = req.method == Method::GET;
    let conv = |app: &App, c: &str| {
        app.conversations
            .get(c)
            .cloned()
            .ok_or_else(|| Fail::not_found("The conversation does not exist."))
    };
    use AppRes::*;
    match r {
        Application if get => Ok(Reply::resource(neg, &res::application(app), "application")),
        Application => {
            apps.remove(app_id);
            Ok(Reply::no_content())
        }
        Me => Ok(Reply::resource(neg, &res::me(app), "me")),
        MeDetail(rel) => Ok(Reply::resource(neg, &res::me_detail(app, rel), rel)),
        Contact(sip) | ContactPresence(sip) => {
            let user = User::from_login(sip)
                .filter(|u| u.sip == *sip)
                .ok_or_else(|| Fail::not_found("The contact does not exist."))?;
            // The name a conversation knows the contact by, if any.
            let user = app
                .conversations
                .values()
                .find_map(|c| c.participant(&user.sip).map(|p| p.user.clone()))
                .unwrap_or(user);
            let v = if matches!(r, Contact(_)) {
                res::contact(app, &user)
            } else {
                res::contact_presence(app, &user)
            };
            Ok(Reply::resource(neg, &v, "contact"))
        }
        MakeMeAvailable => {
            input(req)?;
            im::make_me_available(app);
            Ok(Reply::no_content())
        }
        ReportMyActivity => Ok(Reply::no_content()),
        People => Ok(Reply::resource(neg, &res::people(app), "people")),
        OnlineMeetings => Ok(Reply::resource(
            neg,
            &res::online_meetings(app),
            "onlineMeetings",
        )),
        Policies => Ok(Reply::resource(neg, &res::policies(app), "policies")),
        Communication => Ok(Reply::resource(
            neg,
            &res::communication(app),
            "communication",
        )),
        Conversations => Ok(Reply::resource(
            neg,
            &res::conversations(app),
            "conversations",
        )),
        Conversation(c) if get => {
            let c = conv(app, c)?;
            Ok(Reply::resource(
                neg,
                &res::conversation(app, &c),
                "conversation",
            ))
        }
        Conversation(c) => {
            im::delete_conversation(app, c)?;
            Ok(Reply::no_content())
        }
        Participants(c) => {
            let c = conv(app, c)?;
            Ok(Reply::resource(
                neg,
                &res::participants(app, &c),
                "participants",
            ))
        }
        Participant(c, sip) => {
            let c = conv(app, c)?;
            let v = if *sip == app.user.sip {
                res::local_participant(app, &c)
            } else {
                let p = c
                    .participant(sip)
                    .ok_or_else(|| Fail::not_found("The participant does not exist."))?;
                res::participant(app, &c, &p.user, p.in_messaging)
            };
            Ok(Reply::resource(neg, &v, "participant"))
        }
        ParticipantMessaging(c, sip) => {
            let c = conv(app, c)?;
            let in_messaging = if *sip == app.user.sip {
                c.local_in_messaging
            } else {
                c.participant(sip).is_some_and(|p| p.in_messaging)
            };
            if !in_messaging {
                return Err(Fail::not_found(
                    "The participant is not using instant messaging.",
                ));
            }
            let v = res::participant_messaging(app, &c, sip);
            Ok(Reply::resource(neg, &v, "participantMessaging"))
        }
        Messaging(c) => {
            let c = conv(app, c)?;
            Ok(Reply::resource(neg, &res::messaging(app, &c), "messaging"))
        }
        Messages(c) if get => {
            let c = conv(app, c)?;
            Ok(Reply::resource(neg, &res::messages(app, &c), "messages"))
        }
        Messages(c) => {
            let html = match req.content_mime().as_deref() {
                Some("text/plain") => false,
                Some("text/html") => true,
                other => return Err(Fail::unsupported_media(other)),
            };
            let text = String::from_utf8(req.body.to_vec())
                .map_err(|_| Fail::bad_request("The message is not UTF-8."))?;
            let op = req
                .query_param("operationId")
                .or_else(|| req.query_param("OperationContext"));
            let href = im::send_message(clock, app, c, None, text, html, op)?;
            Ok(Reply::new(StatusCode::CREATED).header(header::LOCATION, href))
        }
        Message(c, n) => {
            let c = conv(app, c)?;
            let msg = n
                .parse::<u64>()
                .ok()
                .and_then(|n| c.messages.iter().find(|m| m.n == n))
                .ok_or_else(|| Fail::not_found("The message does not exist."))?;
            Ok(Reply::resource(neg, &res::message(app, &c, msg), "message"))
        }
        Terminate(c) => {
            im::terminate(app, c)?;
            Ok(Reply::no_content())
        }
        Typing(c) => {
            conv(app, c)?;
            Ok(Reply::no_content())
        }
        TypingParticipants(c) => {
            let c = conv(app, c)?;
            let v = res::typing_participants(app, &c);
            Ok(Reply::resource(neg, &v, "typingParticipants"))
        }
        Invitations => {
            let body = input(req)?;
            let to = str_field(&body, &["to"])
                .as_deref()
                .and_then(User::from_login)
                .ok_or_else(|| Fail::bad_request("\"to\" must be a SIP URI."))?;
            let subject = str_field(&body, &["subject"]).unwrap_or_default();
            let importance = str_field(&body, &["importance"]).unwrap_or_else(|| "Normal".into());
            let op = str_field(&body, &["operationId"]);
            let href = im::start_messaging(rng, app, to, &subject, &importance, op);
            Ok(Reply::new(StatusCode::CREATED).header(header::LOCATION, href))
        }
        Invitation(i) => {
            let inv = app
                .invitations
                .get(i)
                .cloned()
                .ok_or_else(|| Fail::not_found("The invitation does not exist."))?;
            let c = app
                .conversations
                .get(&inv.conversation)
                .cloned()
                .unwrap_or_else(|| closed_conversation(&inv));
            let v = res::messaging_invitation(app, &c, &inv);
            Ok(Reply::resource(neg, &v, "messagingInvitation"))
        }
        Accept(i) => {
            im::accept(clock, app, i)?;
            Ok(Reply::no_content())
        }
        Decline(i) => {
            im::decline(app, i)?;
            Ok(Reply::no_content())
        }
        Events | Batch => Err(Fail::not_found("The resource does not exist.")),
    }
}

/// A stand-in for a conversation that ended, so its invitation can still be read.
fn closed_conversation(inv: &super::state::Invitation) -> super::state::Conversation {
    super::state::Conversation {
        id: inv.conversation.clone(),
        thread_id: String::new(),
        subject: String::new(),
        importance: "Normal".into(),
        state: "Disconnected",
        messaging: "Disconnected",
        local_in_messaging: false,
        participants: Vec::new(),
        messages: Vec::new(),
        next_message: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        let base = "/ucwa/oauth/v1/applications/105";
        assert_eq!(
            parse("/ucwa/oauth/v1/applications"),
            Some(Route::Applications)
        );
        assert_eq!(
            parse(&format!(
                "{base}/communication/conversations/ab12/participants/bob@contoso.com/messaging"
            )),
            Some(Route::App(
                "105".into(),
                AppRes::ParticipantMessaging("ab12".into(), "bob@contoso.com".into())
            ))
        );
        assert_eq!(
            parse(&format!("{base}/ME/makeMeAvailable")),
            Some(Route::App("105".into(), AppRes::MakeMeAvailable))
        );
        assert_eq!(
            parse(&format!(
                "{base}/communication/conversations/ab12/participants/bob%40contoso.com"
            )),
            Some(Route::App(
                "105".into(),
                AppRes::Participant("ab12".into(), "bob@contoso.com".into())
            ))
        );
        assert_eq!(parse(&format!("{base}/nothing")), None);
        assert_eq!(parse(&format!("{base}//me")), None);
        assert_eq!(parse("/ucwa/oauth/v1/applicationsX"), None);
    }
}
