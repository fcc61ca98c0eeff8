//! The UCWA resources of one application, as JSON values with the links real front-ends
//! give them (docs/UCWA.md, "Path shapes", the samples' link sets). Only links the simulator
//! can answer are given, so a client that follows links never walks into a 404.

use serde_json::{Map, Value, json};

use super::render::{link, titled_link, ucwa_date};
use super::state::{App, Conversation, Direction, Invitation, Message, User};

/// The hrefs of one application's resources.
pub struct Paths {
    base: String,
}

impl Paths {
    pub fn new(app: &App) -> Self {
        Paths { base: app.base() }
    }
    pub fn base(&self) -> &str {
        &self.base
    }
    pub fn events(&self, ack: u64) -> String {
        format!("{}/events?ack={ack}", self.base)
    }
    pub fn me(&self) -> String {
        format!("{}/me", self.base)
    }
    pub fn communication(&self) -> String {
        format!("{}/communication", self.base)
    }
    pub fn contact(&self, sip: &str) -> String {
        format!("{}/people/{sip}", self.base)
    }
    pub fn conversation(&self, c: &str) -> String {
        format!("{}/communication/conversations/{c}", self.base)
    }
    pub fn participants(&self, c: &str) -> String {
        format!("{}/participants", self.conversation(c))
    }
    pub fn participant(&self, c: &str, sip: &str) -> String {
        format!("{}/participants/{sip}", self.conversation(c))
    }
    pub fn participant_messaging(&self, c: &str, sip: &str) -> String {
        format!("{}/messaging", self.participant(c, sip))
    }
    pub fn messaging(&self, c: &str) -> String {
        format!("{}/messaging", self.conversation(c))
    }
    pub fn messages(&self, c: &str) -> String {
        format!("{}/messaging/messages", self.conversation(c))
    }
    pub fn message(&self, c: &str, n: u64) -> String {
        format!("{}/messaging/messages/{n}", self.conversation(c))
    }
    pub fn invitation(&self, i: &str) -> String {
        format!("{}/communication/messagingInvitations/{i}", self.base)
    }
}

fn links(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

pub fn application(app: &App) -> Value {
    let p = Paths::new(app);
    json!({
        "rel": "application",
        "culture": app.culture,
        "userAgent": app.user_agent,
        "_links": {
            "self": link(p.base()),
            "policies": link(format!("{}/policies", p.base())),
            "batch": link(format!("{}/batch", p.base())),
            "events": link(p.events(1)),
        },
        "_embedded": {
            "me": me(app),
            "people": people(app),
            "onlineMeetings": online_meetings(app),
            "communication": communication(app),
        },
    })
}

pub fn me(app: &App) -> Value {
    let p = Paths::new(app);
    let me = p.me();
    let mut l = vec![("self", link(&me))];
    if app.available {
        l.push(("note", link(format!("{me}/note"))));
        l.push(("presence", link(format!("{me}/presence"))));
        l.push(("location", link(format!("{me}/location"))));
        l.push(("reportMyActivity", link(format!("{me}/reportMyActivity"))));
    } else {
        l.push(("makeMeAvailable", link(format!("{me}/makeMeAvailable"))));
    }
    l.push((
        "photo",
        link(format!("{}/photos/{}", p.base(), app.user.sip)),
    ));
    json!({
        "rel": "me",
        "name": app.user.name,
        "uri": format!("sip:{}", app.user.sip),
        "emailAddresses": [app.user.sip],
        "_links": links(l),
    })
}

pub fn people(app: &App) -> Value {
    let b = format!("{}/people", app.base());
    json!({
        "rel": "people",
        "_links": {
            "self": link(&b),
            "presenceSubscriptions": link(format!("{b}/presenceSubscriptions")),
            "subscribedContacts": link(format!("{b}/subscribedContacts")),
            "myGroups": link(format!("{b}/groups")),
            "myContacts": link(format!("{b}/contacts")),
            "search": link(format!("{b}/search")),
        },
    })
}

pub fn online_meetings(app: &App) -> Value {
    let b = format!("{}/onlineMeetings", app.base());
    json!({
        "rel": "onlineMeetings",
        "_links": {
            "self": link(&b),
            "myOnlineMeetings": link(format!("{b}/myOnlineMeetings")),
            "onlineMeetingDefaultValues": link(format!("{b}/defaultValues")),
            "onlineMeetingPolicies": link(format!("{b}/policies")),
        },
    })
}

pub fn policies(app: &App) -> Value {
    json!({
        "rel": "policies",
        "audioOnlyOnWifi": false,
        "conversationHistory": "Disabled",
        "customizedPresence": "Enabled",
        "emergencyCallingEnabled": false,
        "photos": "Enabled",
        "sharingOnlyOnWifi": false,
        "_links": { "self": link(format!("{}/policies", app.base())) },
    })
}

pub fn communication(app: &App) -> Value {
    let p = Paths::new(app);
    let c = p.communication();
    let mut m = Map::new();
    m.insert("rel".into(), json!("communication"));
    m.insert(
        app.comm_key.clone(),
        json!("please pass this in a PUT request"),
    );
    let modalities: Vec<&str> = if app.available {
        vec!["Messaging"]
    } else {
        vec![]
    };
    m.insert("supportedModalities".into(), json!(modalities));
    m.insert("supportedMessageFormats".into(), json!(["Plain", "Html"]));
    m.insert(
        "_links".into(),
        json!({
            "self": link(&c),
            "conversations": link(format!("{c}/conversations?filter=active")),
            "startMessaging": link(format!("{c}/messagingInvitations")),
        }),
    );
    m.insert("etag".into(), json!(app.comm_etag));
    Value::Object(m)
}

pub fn conversations(app: &App) -> Value {
    let p = Paths::new(app);
    let items: Vec<Value> = app
        .conversation_order
        .iter()
        .filter(|c| app.conversations.contains_key(*c))
        .map(|c| link(p.conversation(c)))
        .collect();
    json!({
        "rel": "conversations",
        "_links": {
            "self": link(format!("{}/conversations", p.communication())),
            "conversation": items,
        },
    })
}

pub fn conversation(app: &App, conv: &Conversation) -> Value {
    let p = Paths::new(app);
    let c = &conv.id;
    let modalities: Vec<&str> = if conv.messaging == "Connected" {
        vec!["Messaging"]
    } else {
        vec![]
    };
    json!({
        "rel": "conversation",
        "state": conv.state,
        "threadId": conv.thread_id,
        "subject": conv.subject,
        "activeModalities": modalities,
        "importance": conv.importance,
        "recording": false,
        "_links": {
            "self": link(p.conversation(c)),
            "messaging": link(p.messaging(c)),
            "participants": link(p.participants(c)),
            "localParticipant": titled_link(p.participant(c, &app.user.sip), &app.user.name),
        },
    })
}

pub fn participants(app: &App, conv: &Conversation) -> Value {
    let p = Paths::new(app);
    let remote: Vec<Value> = conv
        .participants
        .iter()
        .map(|r| titled_link(p.participant(&conv.id, &r.user.sip), &r.user.name))
        .collect();
    json!({
        "rel": "participants",
        "_links": {
            "self": link(p.participants(&conv.id)),
            "localParticipant": titled_link(p.participant(&conv.id, &app.user.sip), &app.user.name),
            "participant": remote,
        },
    })
}

/// A remote participant (`rel` participant).
pub fn participant(app: &App, conv: &Conversation, user: &User, in_messaging: bool) -> Value {
    let p = Paths::new(app);
    let mut l = vec![
        ("self", link(p.participant(&conv.id, &user.sip))),
        ("conversation", link(p.conversation(&conv.id))),
        ("contact", link(p.contact(&user.sip))),
        (
            "contactPresence",
            link(format!("{}/presence", p.contact(&user.sip))),
        ),
    ];
    if in_messaging {
        l.push((
            "participantMessaging",
            link(p.participant_messaging(&conv.id, &user.sip)),
        ));
    }
    json!({
        "rel": "participant",
        "sourceNetwork": "SameEnterprise",
        "anonymous": false,
        "name": user.name,
        "uri": format!("sip:{}", user.sip),
        "_links": links(l),
    })
}

/// The user in a conversation (linked as `localParticipant`, `rel` participant).
pub fn local_participant(app: &App, conv: &Conversation) -> Value {
    let p = Paths::new(app);
    let sip = &app.user.sip;
    let mut l = vec![
        ("self", link(p.participant(&conv.id, sip))),
        ("conversation", link(p.conversation(&conv.id))),
        ("me", link(p.me())),
    ];
    if conv.local_in_messaging {
        l.push((
            "participantMessaging",
            link(p.participant_messaging(&conv.id, sip)),
        ));
    }
    json!({
        "rel": "participant",
        "sourceNetwork": "SameEnterprise",
        "anonymous": false,
        "name": app.user.name,
        "uri": format!("sip:{sip}"),
        "_links": links(l),
    })
}

/// The seed resource: no properties, links `self` and `participant` (seed shape exactly).
pub fn participant_messaging(app: &App, conv: &Conversation, sip: &str) -> Value {
    let p = Paths::new(app);
    json!({
        "rel": "participantMessaging",
        "_links": {
            "self": link(p.participant_messaging(&conv.id, sip)),
            "participant": link(p.participant(&conv.id, sip)),
        },
    })
}

pub fn messaging(app: &App, conv: &Conversation) -> Value {
    let p = Paths::new(app);
    let c = &conv.id;
    let mut l = vec![
        ("self", link(p.messaging(c))),
        ("conversation", link(p.conversation(c))),
    ];
    let mut m = Map::new();
    m.insert("rel".into(), json!("messaging"));
    m.insert("state".into(), json!(conv.messaging));
    match conv.messaging {
        "Connected" => {
            m.insert("negotiatedMessageFormats".into(), json!(["Plain", "Html"]));
            l.push((
                "stopMessaging",
                link(format!("{}/terminate", p.messaging(c))),
            ));
            l.push(("sendMessage", link(p.messages(c))));
            l.push(("setIsTyping", link(format!("{}/typing", p.messaging(c)))));
            l.push((
                "typingParticipants",
                link(format!("{}/typingParticipants", p.messaging(c))),
            ));
        }
        "Connecting" => {
            l.push((
                "stopMessaging",
                link(format!("{}/terminate", p.messaging(c))),
            ));
        }
        _ => {}
    }
    m.insert("_links".into(), links(l));
    Value::Object(m)
}

pub fn typing_participants(app: &App, conv: &Conversation) -> Value {
    let p = Paths::new(app);
    json!({
        "rel": "typingParticipants",
        "_links": { "self": link(format!("{}/typingParticipants", p.messaging(&conv.id))) },
    })
}

pub fn messages(app: &App, conv: &Conversation) -> Value {
    let p = Paths::new(app);
    let items: Vec<Value> = conv
        .messages
        .iter()
        .map(|m| link(p.message(&conv.id, m.n)))
        .collect();
    json!({
        "rel": "messages",
        "_links": { "self": link(p.messages(&conv.id)), "message": items },
    })
}

/// A `data:` URI holding message text, form-encoded as UCWA writes it (`Hi+Tosh%0D%0A`).
pub fn data_uri(text: &str, html: bool) -> String {
    let mime = if html { "text/html" } else { "text/plain" };
    let enc: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
    format!("data:{mime};charset=utf-8,{enc}")
}

pub fn message(app: &App, conv: &Conversation, msg: &Message) -> Value {
    let p = Paths::new(app);
    let c = &conv.id;
    let mut l = vec![("self", link(p.message(c, msg.n)))];
    if let Some(from) = &msg.from {
        l.push(("contact", link(p.contact(&from.sip))));
        l.push((
            "participant",
            titled_link(p.participant(c, &from.sip), &from.name),
        ));
    }
    l.push(("messaging", link(p.messaging(c))));
    let rel = if msg.html {
        "htmlMessage"
    } else {
        "plainMessage"
    };
    l.push((rel, link(data_uri(&msg.text, msg.html))));
    let mut m = Map::new();
    m.insert("rel".into(), json!("message"));
    m.insert("direction".into(), json!(msg.direction.as_str()));
    if let Some(op) = &msg.operation_id {
        m.insert("operationId".into(), json!(op));
    }
    m.insert("status".into(), json!("Succeeded"));
    m.insert("timeStamp".into(), ucwa_date(msg.timestamp_ms));
    m.insert("_links".into(), links(l));
    Value::Object(m)
}

pub fn messaging_invitation(app: &App, conv: &Conversation, inv: &Invitation) -> Value {
    let p = Paths::new(app);
    let c = &conv.id;
    let mut m = Map::new();
    m.insert("rel".into(), json!("messagingInvitation"));
    m.insert("direction".into(), json!(inv.direction.as_str()));
    m.insert("importance".into(), json!(conv.importance));
    m.insert("threadId".into(), json!(conv.thread_id));
    m.insert("state".into(), json!(inv.state));
    if let Some(op) = &inv.operation_id {
        m.insert("operationId".into(), json!(op));
    }
    m.insert("subject".into(), json!(conv.subject));
    let pending = inv.state == "Connecting";
    let mut l = vec![("self", link(p.invitation(&inv.id)))];
    let mut embedded = Map::new();
    match inv.direction {
        Direction::Incoming => {
            l.push(("to", link(p.contact(&app.user.sip))));
            l.push(("conversation", link(p.conversation(c))));
            if pending {
                l.push(("accept", link(format!("{}/accept", p.invitation(&inv.id)))));
                l.push((
                    "decline",
                    link(format!("{}/decline", p.invitation(&inv.id))),
                ));
            }
            l.push(("messaging", link(p.messaging(c))));
            if let Some(text) = &inv.message {
                l.push(("message", link(data_uri(text, false))));
            }
            embedded.insert("from".into(), participant(app, conv, &inv.remote, false));
        }
        Direction::Outgoing => {
            l.push((
                "from",
                titled_link(p.participant(c, &app.user.sip), &app.user.name),
            ));
            l.push(("to", link(p.contact(&inv.remote.sip))));
            if pending {
                l.push(("cancel", link(format!("{}/terminate", p.messaging(c)))));
            }
            l.push(("conversation", link(p.conversation(c))));
            l.push(("messaging", link(p.messaging(c))));
            if inv.state == "Connected" {
                embedded.insert(
                    "acceptedByParticipant".into(),
                    json!([participant(app, conv, &inv.remote, true)]),
                );
            }
        }
    }
    m.insert("_links".into(), links(l));
    if !embedded.is_empty() {
        m.insert("_embedded".into(), Value::Object(embedded));
    }
    Value::Object(m)
}

/// `me/presence`, `me/note`, `me/location`: the user's own state, constant here.
pub fn me_detail(app: &App, rel: &str) -> Value {
    let href = format!("{}/me/{rel}", app.base());
    match rel {
        "presence" => json!({
            "rel": "presence",
            "availability": if app.available { "Online" } else { "Offline" },
            "_links": { "self": link(href) },
        }),
        "note" => json!({
            "rel": "note",
            "message": "",
            "type": "personal",
            "_links": { "self": link(href) },
        }),
        _ => json!({
            "rel": "location",
            "location": "",
            "_links": { "self": link(href) },
        }),
    }
}

/// A contact (`people/{sip}`), linked from participants and invitations.
pub fn contact(app: &App, user: &User) -> Value {
    let p = Paths::new(app);
    let c = p.contact(&user.sip);
    json!({
        "rel": "contact",
        "uri": format!("sip:{}", user.sip),
        "emailAddresses": [user.sip],
        "type": "User",
        "name": user.name,
        "sourceNetwork": "SameEnterprise",
        "_links": {
            "self": link(&c),
            "contactPresence": link(format!("{c}/presence")),
        },
    })
}

/// A contact's presence: every simulated colleague is online.
pub fn contact_presence(app: &App, user: &User) -> Value {
    json!({
        "rel": "contactPresence",
        "availability": "Online",
        "_links": { "self": link(format!("{}/presence", Paths::new(app).contact(&user.sip))) },
    })
}
