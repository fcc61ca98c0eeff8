//! What each instant-messaging action does to an application's state, and which events it
//! queues, following the receive-IM and send-IM sequences of the UCWA docs (docs/UCWA.md, "The
//! events feed"; tests/data/ucwa-samples/concept/receive-im and send-im). Handlers and the control API call these; they
//! only decide who asked.

use super::clock::{Clock, Rng};
use super::exchange::Fail;
use super::feed::{Event, EventKind, EventLink, UnitBuilder};
use super::resources::{self as res, Paths};
use super::state::{App, Conversation, Direction, Invitation, Message, Participant, User};
use crate::ucwa::ErrorBody;
use http::StatusCode;

const COMMUNICATION: &str = "communication";
const CONVERSATION: &str = "conversation";

fn conv<'a>(app: &'a App, id: &str) -> Result<&'a Conversation, Fail> {
    app.conversations
        .get(id)
        .ok_or_else(|| Fail::not_found("The conversation does not exist."))
}

/// `POST me/makeMeAvailable`: the user can now receive IMs.
pub fn make_me_available(app: &mut App) {
    if app.available {
        return;
    }
    app.available = true;
    let p = Paths::new(app);
    let me = p.me();
    let mut b = UnitBuilder::default();
    b.event(
        COMMUNICATION,
        &p.communication(),
        Event::new(
            EventKind::Updated,
            EventLink::new(COMMUNICATION, p.communication()),
        )
        .embed(res::communication(app)),
    );
    b.event(
        "me",
        &me,
        Event::new(EventKind::Updated, EventLink::new("me", &me)),
    );
    for rel in ["presence", "note", "location"] {
        b.event(
            "me",
            &me,
            Event::new(EventKind::Added, EventLink::new(rel, format!("{me}/{rel}"))),
        );
    }
    app.feed.push(b.build());
}

fn new_conversation(rng: &mut Rng, app: &App, subject: &str, importance: &str) -> Conversation {
    let mut id = rng.hex(4);
    while app.conversations.contains_key(&id) {
        id = rng.hex(4);
    }
    Conversation {
        id,
        thread_id: rng.hex(32),
        subject: subject.into(),
        importance: importance.into(),
        state: "Connecting",
        messaging: "Connecting",
        local_in_messaging: false,
        participants: Vec::new(),
        messages: Vec::new(),
        next_message: 1,
    }
}

fn new_invitation_id(rng: &mut Rng, app: &App) -> String {
    let mut id = rng.hex(32);
    while app.invitations.contains_key(&id) {
        id = rng.hex(32);
    }
    id
}

/// Events for the conversation becoming Connected with both sides in messaging.
fn connected_events(b: &mut UnitBuilder, app: &App, c: &Conversation, remote_added: bool) {
    let p = Paths::new(app);
    let ch = p.conversation(&c.id);
    b.event(
        CONVERSATION,
        &ch,
        Event::new(
            EventKind::Updated,
            EventLink::new("messaging", p.messaging(&c.id)),
        )
        .embed(res::messaging(app, c)),
    );
    b.event(
        COMMUNICATION,
        &p.communication(),
        Event::new(EventKind::Updated, EventLink::new(CONVERSATION, &ch))
            .embed(res::conversation(app, c)),
    );
    for r in c.participants.iter().filter(|r| r.in_messaging) {
        if remote_added {
            let plink = EventLink::new("participant", p.participant(&c.id, &r.user.sip))
                .titled(&r.user.name);
            b.event(CONVERSATION, &ch, Event::new(EventKind::Added, plink));
        }
        b.event(
            CONVERSATION,
            &ch,
            participant_messaging_event(&p, c, EventKind::Added, &r.user, false),
        );
    }
    let me = &app.user;
    b.event(
        CONVERSATION,
        &ch,
        participant_messaging_event(&p, c, EventKind::Added, me, true)
            .embed(res::participant_messaging(app, c, &me.sip)),
    );
}

/// An event on `user`'s `participantMessaging`, within their participant (or the local
/// participant).
fn participant_messaging_event(
    p: &Paths,
    c: &Conversation,
    kind: EventKind,
    user: &User,
    local: bool,
) -> Event {
    let within = if local {
        "localParticipant"
    } else {
        "participant"
    };
    Event::new(
        kind,
        EventLink::new(
            "participantMessaging",
            p.participant_messaging(&c.id, &user.sip),
        ),
    )
    .within(EventLink::new(within, p.participant(&c.id, &user.sip)).titled(&user.name))
}

/// `POST communication/messagingInvitations` (startMessaging). The remote side accepts at
/// once, so two units follow: the invitation `started`, then Connected and `completed`.
/// Returns the invitation's href (for `Location`).
pub fn start_messaging(
    rng: &mut Rng,
    app: &mut App,
    to: User,
    subject: &str,
    importance: &str,
    operation_id: Option<String>,
) -> String {
    let mut c = new_conversation(rng, app, subject, importance);
    let inv = Invitation {
        id: new_invitation_id(rng, app),
        conversation: c.id.clone(),
        direction: Direction::Outgoing,
        state: "Connecting",
        operation_id,
        remote: to.clone(),
        message: None,
    };
    let p = Paths::new(app);

    let mut b = UnitBuilder::default();
    invitation_started_events(&mut b, app, &c, &inv);
    b.event(
        CONVERSATION,
        &p.conversation(&c.id),
        Event::new(
            EventKind::Updated,
            EventLink::new("messaging", p.messaging(&c.id)),
        )
        .embed(res::messaging(app, &c)),
    );
    app.feed.push(b.build());

    // The remote side accepts.
    c.state = "Connected";
    c.messaging = "Connected";
    c.local_in_messaging = true;
    c.participants.push(Participant {
        user: to,
        in_messaging: true,
    });
    let mut inv = inv;
    inv.state = "Connected";
    let mut b = UnitBuilder::default();
    connected_events(&mut b, app, &c, true);
    invitation_succeeded_event(&mut b, app, &c, &inv);
    app.feed.push(b.build());

    let href = p.invitation(&inv.id);
    insert_new(app, c, inv);
    href
}

/// A remote user invites the user to IM (control API). Returns (invitation, conversation) ids.
pub fn incoming_invitation(
    rng: &mut Rng,
    app: &mut App,
    from: User,
    subject: &str,
    message: Option<String>,
) -> (String, String) {
    let mut c = new_conversation(rng, app, subject, "Normal");
    c.state = "Incoming";
    c.messaging = "Disconnected";
    let inv = Invitation {
        id: new_invitation_id(rng, app),
        conversation: c.id.clone(),
        direction: Direction::Incoming,
        state: "Connecting",
        operation_id: None,
        remote: from.clone(),
        message,
    };
    let p = Paths::new(app);
    let (ch, comm) = (p.conversation(&c.id), p.communication());
    let mut b = UnitBuilder::default();
    invitation_started_events(&mut b, app, &c, &inv);
    app.feed.push(b.build());

    c.participants.push(Participant {
        user: from.clone(),
        in_messaging: false,
    });
    let mut b = UnitBuilder::default();
    b.event(
        CONVERSATION,
        &ch,
        Event::new(
            EventKind::Added,
            EventLink::new("participant", p.participant(&c.id, &from.sip)).titled(&from.name),
        ),
    );
    b.event(
        COMMUNICATION,
        &comm,
        Event::new(
            EventKind::Updated,
            EventLink::new("messagingInvitation", p.invitation(&inv.id)),
        )
        .embed(res::messaging_invitation(app, &c, &inv)),
    );
    app.feed.push(b.build());

    let ids = (inv.id.clone(), c.id.clone());
    insert_new(app, c, inv);
    ids
}

/// The first unit of a new invitation: it has started, its conversation is added, and the
/// user is the conversation's local participant.
fn invitation_started_events(b: &mut UnitBuilder, app: &App, c: &Conversation, inv: &Invitation) {
    let p = Paths::new(app);
    let (ch, comm) = (p.conversation(&c.id), p.communication());
    let me = &app.user;
    b.event(
        COMMUNICATION,
        &comm,
        Event::new(
            EventKind::Started,
            EventLink::new("messagingInvitation", p.invitation(&inv.id)),
        )
        .embed(res::messaging_invitation(app, c, inv)),
    );
    b.event(
        COMMUNICATION,
        &comm,
        Event::new(EventKind::Added, EventLink::new(CONVERSATION, &ch))
            .embed(res::conversation(app, c)),
    );
    b.event(
        CONVERSATION,
        &ch,
        Event::new(
            EventKind::Added,
            EventLink::new("localParticipant", p.participant(&c.id, &me.sip)).titled(&me.name),
        )
        .embed(res::local_participant(app, c)),
    );
}

/// The invitation has completed successfully (the conversation is connected).
fn invitation_succeeded_event(b: &mut UnitBuilder, app: &App, c: &Conversation, inv: &Invitation) {
    let p = Paths::new(app);
    b.event(
        COMMUNICATION,
        &p.communication(),
        Event::new(
            EventKind::Completed,
            EventLink::new("messagingInvitation", p.invitation(&inv.id)),
        )
        .status("Success")
        .embed(res::messaging_invitation(app, c, inv)),
    );
}

/// Keep a new conversation and its invitation.
fn insert_new(app: &mut App, c: Conversation, inv: Invitation) {
    app.conversation_order.push(c.id.clone());
    app.conversations.insert(c.id.clone(), c);
    app.invitations.insert(inv.id.clone(), inv);
}

fn pending_incoming<'a>(app: &'a App, inv_id: &str) -> Result<&'a Invitation, Fail> {
    let inv = app
        .invitations
        .get(inv_id)
        .ok_or_else(|| Fail::not_found("The invitation does not exist."))?;
    if inv.direction != Direction::Incoming || inv.state != "Connecting" {
        return Err(Fail::conflict(
            Some("InvalidState"),
            "The invitation is no longer pending.",
        ));
    }
    Ok(inv)
}

/// `POST messagingInvitations/{id}/accept`.
pub fn accept(clock: &Clock, app: &mut App, inv_id: &str) -> Result<(), Fail> {
    let mut inv = pending_incoming(app, inv_id)?.clone();
    let mut c = conv(app, &inv.conversation)?.clone();
    c.state = "Connected";
    c.messaging = "Connected";
    c.local_in_messaging = true;
    for r in &mut c.participants {
        r.in_messaging = true;
    }
    inv.state = "Connected";
    let mut b = UnitBuilder::default();
    connected_events(&mut b, app, &c, false);
    invitation_succeeded_event(&mut b, app, &c, &inv);
    app.feed.push(b.build());
    if let Some(text) = inv.message.clone() {
        let msg = Message {
            n: c.next_message,
            direction: Direction::Incoming,
            from: Some(inv.remote.clone()),
            text,
            html: false,
            timestamp_ms: clock.now_millis(),
            operation_id: None,
        };
        c.next_message += 1;
        push_message_completed(app, &c, &msg);
        c.messages.push(msg);
    }
    app.conversations.insert(c.id.clone(), c);
    app.invitations.insert(inv.id.clone(), inv);
    Ok(())
}

/// `POST messagingInvitations/{id}/decline`: the invitation fails and the conversation ends.
pub fn decline(app: &mut App, inv_id: &str) -> Result<(), Fail> {
    let mut inv = pending_incoming(app, inv_id)?.clone();
    let c = conv(app, &inv.conversation)?.clone();
    inv.state = "Failed";
    let p = Paths::new(app);
    let mut b = UnitBuilder::default();
    b.event(
        COMMUNICATION,
        &p.communication(),
        Event::new(
            EventKind::Completed,
            EventLink::new("messagingInvitation", p.invitation(&inv.id)),
        )
        .status("Failure")
        .reason(ErrorBody::new(
            StatusCode::GONE,
            Some("Declined"),
            "The invitation was declined.",
        ))
        .embed(res::messaging_invitation(app, &c, &inv)),
    );
    b.event(
        COMMUNICATION,
        &p.communication(),
        Event::new(
            EventKind::Deleted,
            EventLink::new(CONVERSATION, p.conversation(&c.id)),
        ),
    );
    app.feed.push(b.build());
    app.conversations.remove(&c.id);
    app.invitations.insert(inv.id.clone(), inv);
    Ok(())
}

fn push_message_completed(app: &mut App, c: &Conversation, msg: &Message) {
    let p = Paths::new(app);
    let mut b = UnitBuilder::default();
    b.event(
        CONVERSATION,
        &p.conversation(&c.id),
        Event::new(
            EventKind::Completed,
            EventLink::new("message", p.message(&c.id, msg.n)),
        )
        .status("Success")
        .embed(res::message(app, c, msg)),
    );
    app.feed.push(b.build());
}

/// `POST messaging/messages` (sendMessage) or a remote message (control API). Returns the
/// message's href.
pub fn send_message(
    clock: &Clock,
    app: &mut App,
    conv_id: &str,
    from: Option<&str>,
    text: String,
    html: bool,
    operation_id: Option<String>,
) -> Result<String, Fail> {
    let mut c = conv(app, conv_id)?.clone();
    if c.messaging != "Connected" {
        return Err(Fail::conflict(
            Some("InvalidState"),
            "Messaging is not connected in this conversation.",
        ));
    }
    let (direction, from) = match from {
        None => (Direction::Outgoing, None),
        Some(sip) => {
            let r = c
                .participant(sip)
                .filter(|r| r.in_messaging)
                .ok_or_else(|| Fail::conflict(None, "That participant is not in messaging."))?;
            (Direction::Incoming, Some(r.user.clone()))
        }
    };
    let msg = Message {
        n: c.next_message,
        direction,
        from,
        text,
        html,
        timestamp_ms: clock.now_millis(),
        operation_id,
    };
    c.next_message += 1;
    let href = Paths::new(app).message(&c.id, msg.n);
    push_message_completed(app, &c, &msg);
    c.messages.push(msg);
    app.conversations.insert(c.id.clone(), c);
    Ok(href)
}

/// `POST messaging/terminate` (stopMessaging): everyone leaves messaging.
pub fn terminate(app: &mut App, conv_id: &str) -> Result<(), Fail> {
    let mut c = conv(app, conv_id)?.clone();
    if c.messaging == "Disconnected" {
        return Ok(());
    }
    let p = Paths::new(app);
    let ch = p.conversation(&c.id);
    let mut b = UnitBuilder::default();
    for r in c.participants.iter().filter(|r| r.in_messaging) {
        b.event(
            CONVERSATION,
            &ch,
            participant_messaging_event(&p, &c, EventKind::Deleted, &r.user, false),
        );
    }
    if c.local_in_messaging {
        b.event(
            CONVERSATION,
            &ch,
            participant_messaging_event(&p, &c, EventKind::Deleted, &app.user, true),
        );
    }
    c.messaging = "Disconnected";
    c.state = "Disconnected";
    c.local_in_messaging = false;
    for r in &mut c.participants {
        r.in_messaging = false;
    }
    b.event(
        CONVERSATION,
        &ch,
        Event::new(
            EventKind::Updated,
            EventLink::new("messaging", p.messaging(&c.id)),
        )
        .embed(res::messaging(app, &c)),
    );
    app.feed.push(b.build());
    app.conversations.insert(c.id.clone(), c);
    Ok(())
}

/// `DELETE` a conversation: leave messaging, then the conversation is `deleted`.
pub fn delete_conversation(app: &mut App, conv_id: &str) -> Result<(), Fail> {
    terminate(app, conv_id)?;
    let p = Paths::new(app);
    let mut b = UnitBuilder::default();
    b.event(
        COMMUNICATION,
        &p.communication(),
        Event::new(
            EventKind::Deleted,
            EventLink::new(CONVERSATION, p.conversation(conv_id)),
        ),
    );
    app.feed.push(b.build());
    app.conversations.remove(conv_id);
    Ok(())
}

/// How a remote participant's messaging changes (control API): the seed's three events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantChange {
    Join,
    Update,
    Leave,
}

/// A remote participant joins, changes or leaves messaging.
pub fn participant_messaging_change(
    app: &mut App,
    conv_id: &str,
    who: User,
    change: ParticipantChange,
) -> Result<(), Fail> {
    let mut c = conv(app, conv_id)?.clone();
    if c.messaging != "Connected" {
        return Err(Fail::conflict(
            Some("InvalidState"),
            "Messaging is not connected in this conversation.",
        ));
    }
    let p = Paths::new(app);
    let ch = p.conversation(&c.id);
    let plink = EventLink::new("participant", p.participant(&c.id, &who.sip)).titled(&who.name);
    let pm = EventLink::new(
        "participantMessaging",
        p.participant_messaging(&c.id, &who.sip),
    );
    let mut b = UnitBuilder::default();
    let known = c.participant(&who.sip).map(|r| r.in_messaging);
    match (change, known) {
        (ParticipantChange::Join, Some(true)) => {
            return Err(Fail::conflict(
                Some("AlreadyExists"),
                "Already in messaging.",
            ));
        }
        (ParticipantChange::Join, _) => {
            if known.is_none() {
                c.participants.push(Participant {
                    user: who.clone(),
                    in_messaging: false,
                });
                b.event(
                    CONVERSATION,
                    &ch,
                    Event::new(EventKind::Added, plink.clone()),
                );
            }
            if let Some(r) = c.participant_mut(&who.sip) {
                r.in_messaging = true;
            }
            b.event(
                CONVERSATION,
                &ch,
                Event::new(EventKind::Added, pm)
                    .within(plink)
                    .embed(res::participant_messaging(app, &c, &who.sip)),
            );
        }
        (_, None | Some(false)) => {
            return Err(Fail::conflict(
                None,
                "That participant is not in messaging.",
            ));
        }
        (ParticipantChange::Update, Some(true)) => {
            b.event(
                CONVERSATION,
                &ch,
                Event::new(EventKind::Updated, pm)
                    .within(plink)
                    .embed(res::participant_messaging(app, &c, &who.sip)),
            );
        }
        (ParticipantChange::Leave, Some(true)) => {
            if let Some(r) = c.participant_mut(&who.sip) {
                r.in_messaging = false;
            }
            b.event(
                CONVERSATION,
                &ch,
                Event::new(EventKind::Deleted, pm).within(plink),
            );
        }
    }
    app.feed.push(b.build());
    app.conversations.insert(c.id.clone(), c);
    Ok(())
}
