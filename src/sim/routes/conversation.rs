//! Conversations and their participants: `communication`, `conversations`, a
//! `conversation` (read, or left with `DELETE`), its `participants`, one `participant` (the
//! local one included) and a participant's `participantMessaging`, which exists only while
//! that participant is in instant messaging.

use http::Method;

use super::{AppRes, conv};
use crate::sim::exchange::{Fail, Handled, Reply, Req};
use crate::sim::im;
use crate::sim::resources as res;
use crate::sim::state::App;

/// A request for a conversation resource of `app`.
pub(super) fn handle(app: &mut App, req: &Req, r: &AppRes) -> Handled {
    let neg = &req.neg;
    let get = req.method == Method::GET;
    use AppRes::*;
    match r {
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
        _ => Err(Fail::not_found("The resource does not exist.")),
    }
}
