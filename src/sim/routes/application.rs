//! The application and what hangs off it directly: the application resource itself
//! (created by `POST …/applications`, deleted by `DELETE`), `me` and its details, contacts,
//! people, meetings and policies.

use http::{StatusCode, header};

use super::{AppRes, input, str_field};
use crate::sim::exchange::{Fail, Handled, Reply, Req};
use crate::sim::feed;
use crate::sim::im;
use crate::sim::resources as res;
use crate::sim::state::{App, State, Token, User};

pub(super) fn create_application(state: &mut State, req: &Req, token: &Token) -> Handled {
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

/// A request for the application or one of its own resources.
/// (`DELETE` of the application itself is the dispatcher's: it removes `app`.)
pub(super) fn handle(app: &mut App, req: &Req, r: &AppRes) -> Handled {
    let neg = &req.neg;
    use AppRes::*;
    match r {
        Application => Ok(Reply::resource(neg, &res::application(app), "application")),
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
        _ => Err(Fail::not_found("The resource does not exist.")),
    }
}
