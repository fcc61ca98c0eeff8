//! The UCWA resource kind of an exchange, as a type: the proxy, diff, verify, HAR and the
//! inspect commands compare kinds, and a typo in a string (`"evnets"`) would compile.
//!
//! UCWA names resources by the `rel` of the link that leads to them, and a server may use rels
//! this crate has never heard of (`photo`, `contacts`, …): those are kept verbatim as
//! [`ResourceKind::Rel`]. The text form (stored in recordings, shown by `show`, written to
//! HAR) is the rel itself, so recordings written before this type existed read back the same.

use std::fmt;

/// What kind of UCWA resource a request was for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ResourceKind {
    /// Autodiscover root.
    Root,
    /// Autodiscover `user` (the 401 challenge, then the links to the pool).
    User,
    /// The OAuth token endpoint (`…/WebTicket/oauthtoken`).
    Token,
    Applications,
    Application,
    /// The events feed (P-GET).
    Events,
    Batch,
    Me,
    MakeMeAvailable,
    ReportMyActivity,
    Communication,
    /// `POST …/messagingInvitations`.
    StartMessaging,
    MessagingInvitations,
    MessagingInvitation,
    Accept,
    Decline,
    Conversations,
    Conversation,
    Participants,
    Participant,
    LocalParticipant,
    ParticipantMessaging,
    Messaging,
    /// `POST …/messaging/messages`.
    SendMessage,
    Messages,
    Message,
    StopMessaging,
    SetIsTyping,
    TypingParticipants,
    /// Nothing known about it.
    #[default]
    Other,
    /// A rel learned from the session that none of the above names (kept as written).
    Rel(String),
}

/// Every named kind with its text form, in one table so that parsing and printing agree.
const NAMED: &[(ResourceKind, &str)] = &[
    (ResourceKind::Root, "root"),
    (ResourceKind::User, "user"),
    (ResourceKind::Token, "token"),
    (ResourceKind::Applications, "applications"),
    (ResourceKind::Application, "application"),
    (ResourceKind::Events, "events"),
    (ResourceKind::Batch, "batch"),
    (ResourceKind::Me, "me"),
    (ResourceKind::MakeMeAvailable, "makeMeAvailable"),
    (ResourceKind::ReportMyActivity, "reportMyActivity"),
    (ResourceKind::Communication, "communication"),
    (ResourceKind::StartMessaging, "startMessaging"),
    (ResourceKind::MessagingInvitations, "messagingInvitations"),
    (ResourceKind::MessagingInvitation, "messagingInvitation"),
    (ResourceKind::Accept, "accept"),
    (ResourceKind::Decline, "decline"),
    (ResourceKind::Conversations, "conversations"),
    (ResourceKind::Conversation, "conversation"),
    (ResourceKind::Participants, "participants"),
    (ResourceKind::Participant, "participant"),
    (ResourceKind::LocalParticipant, "localParticipant"),
    (ResourceKind::ParticipantMessaging, "participantMessaging"),
    (ResourceKind::Messaging, "messaging"),
    (ResourceKind::SendMessage, "sendMessage"),
    (ResourceKind::Messages, "messages"),
    (ResourceKind::Message, "message"),
    (ResourceKind::StopMessaging, "stopMessaging"),
    (ResourceKind::SetIsTyping, "setIsTyping"),
    (ResourceKind::TypingParticipants, "typingParticipants"),
    (ResourceKind::Other, "other"),
];

impl ResourceKind {
    /// The kind a rel (or a stored kind) names; an unknown rel is kept as [`ResourceKind::Rel`],
    /// an empty one is [`ResourceKind::Other`].
    pub fn from_rel(rel: &str) -> Self {
        if rel.is_empty() {
            return ResourceKind::Other;
        }
        NAMED
            .iter()
            .find(|(_, name)| *name == rel)
            .map(|(kind, _)| kind.clone())
            .unwrap_or_else(|| ResourceKind::Rel(rel.to_string()))
    }

    /// The text form: the UCWA rel (`participantMessaging`, `events`, …).
    pub fn as_str(&self) -> &str {
        if let ResourceKind::Rel(rel) = self {
            return rel;
        }
        NAMED
            .iter()
            .find(|(kind, _)| kind == self)
            .map_or("other", |(_, name)| name)
    }
}

impl From<&str> for ResourceKind {
    fn from(rel: &str) -> Self {
        ResourceKind::from_rel(rel)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ResourceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_unknown_rels_are_kept() {
        for (kind, name) in NAMED {
            assert_eq!(kind.as_str(), *name);
            assert_eq!(&ResourceKind::from_rel(name), kind);
        }
        let photo = ResourceKind::from_rel("photo");
        assert_eq!(photo, ResourceKind::Rel("photo".into()));
        assert_eq!(photo.to_string(), "photo");
        assert_eq!(ResourceKind::from_rel(""), ResourceKind::Other);
    }
}
