//! Which UCWA path is which resource of the simulator, and which methods each takes.

use http::Method;
use percent_encoding::percent_decode_str;

use crate::sim::state::APPS_PATH;

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

    pub(super) fn methods(&self) -> &'static [&'static str] {
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
    pub(super) fn conversational(&self) -> bool {
        match self {
            Route::App(_, r) => {
                matches!(r.family(), Family::Conversation | Family::Messaging)
                    && *r != AppRes::Communication
            }
            Route::Applications => false,
        }
    }
}

/// Which part of the simulator answers a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The application and what hangs off it directly (`me`, contacts, people, policies).
    Application,
    /// `communication`, conversations and their participants.
    Conversation,
    /// Messaging, messages and invitations.
    Messaging,
    /// The events feed and batches, answered outside the state lock.
    Feed,
}

impl AppRes {
    /// The family of this resource.
    pub fn family(&self) -> Family {
        use AppRes::*;
        match self {
            Application | Me | MeDetail(_) | Contact(_) | ContactPresence(_) | MakeMeAvailable
            | ReportMyActivity | People | OnlineMeetings | Policies => Family::Application,
            Communication
            | Conversations
            | Conversation(_)
            | Participants(_)
            | Participant(..)
            | ParticipantMessaging(..) => Family::Conversation,
            Messaging(_)
            | Messages(_)
            | Message(..)
            | Terminate(_)
            | Typing(_)
            | TypingParticipants(_)
            | Invitations
            | Invitation(_)
            | Accept(_)
            | Decline(_) => Family::Messaging,
            Events | Batch => Family::Feed,
        }
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
