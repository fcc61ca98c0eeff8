//! Instant messaging: the `messaging` modality of a conversation, its `messages` (read, or
//! `POST` a `text/plain` or `text/html` message), `stopMessaging`, typing, and the
//! invitations that start a conversation (`startMessaging`, accept, decline).

use http::{Method, StatusCode, header};

use super::{AppRes, conv, input, str_field};
use crate::sim::clock::{Clock, Rng};
use crate::sim::exchange::{Fail, Handled, Reply, Req};
use crate::sim::im;
use crate::sim::resources as res;
use crate::sim::state::{App, Conversation, Invitation, User};

/// A request for a messaging resource of `app`.
pub(super) fn handle(
    rng: &mut Rng,
    clock: &Clock,
    app: &mut App,
    req: &Req,
    r: &AppRes,
) -> Handled {
    let neg = &req.neg;
    let get = req.method == Method::GET;
    use AppRes::*;
    match r {
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
        _ => Err(Fail::not_found("The resource does not exist.")),
    }
}

/// A stand-in for a conversation that ended, so its invitation can still be read.
fn closed_conversation(inv: &Invitation) -> Conversation {
    Conversation {
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
