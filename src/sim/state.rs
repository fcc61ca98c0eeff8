//! Everything the simulator remembers: issued tokens, applications and, per application, its
//! conversations, invitations and events feed. One `Mutex<State>` guards it all; handlers
//! lock it briefly and never across an `.await`, which keeps the order of effects (and so
//! every id and date) a pure function of the order of requests.

use std::collections::{BTreeMap, HashMap};

use super::clock::{Clock, Rng};
use super::control::Injection;
use super::feed::Feed;

/// The application path prefix real front-ends use for OAuth clients.
pub const APPS_PATH: &str = "/ucwa/oauth/v1/applications";

/// A signed-in user (or a remote participant), known by SIP address without `sip:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub sip: String,
    pub name: String,
}

impl User {
    /// A user from any of the spellings a client may send (`alice`, `sip:alice@contoso.com`,
    /// `CONTOSO\alice`); the display name is derived from the local part.
    pub fn from_login(login: &str) -> Option<User> {
        let login = login.trim();
        let login = login
            .strip_prefix("sip:")
            .or_else(|| login.strip_prefix("SIP:"))
            .unwrap_or(login);
        let login = login.rsplit('\\').next().unwrap_or(login);
        if login.is_empty()
            || !login
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "@._-+".contains(c))
        {
            return None;
        }
        let sip = if login.contains('@') {
            login.to_ascii_lowercase()
        } else {
            format!("{}@contoso.com", login.to_ascii_lowercase())
        };
        let local = sip.split('@').next().unwrap_or("");
        let name = local
            .split(['.', '_', '-'])
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        Some(User { sip, name })
    }
}

/// An access token the simulator issued.
#[derive(Debug, Clone)]
pub struct Token {
    pub user: User,
    pub scopes: Vec<String>,
}

impl Token {
    /// Conversation resources need `Conversations.Initiate` or `Conversations.Receive`.
    pub fn may_converse(&self) -> bool {
        self.scopes
            .iter()
            .any(|s| s == "Conversations.Initiate" || s == "Conversations.Receive")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Incoming,
    Outgoing,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "Incoming",
            Direction::Outgoing => "Outgoing",
        }
    }
}

/// A remote participant of a conversation.
#[derive(Debug, Clone)]
pub struct Participant {
    pub user: User,
    pub in_messaging: bool,
}

/// One instant message.
#[derive(Debug, Clone)]
pub struct Message {
    pub n: u64,
    pub direction: Direction,
    /// SIP of the remote sender (incoming only).
    pub from: Option<User>,
    pub text: String,
    pub html: bool,
    pub timestamp_ms: u64,
    pub operation_id: Option<String>,
}

/// A conversation with its messaging modality.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub thread_id: String,
    pub subject: String,
    pub importance: String,
    /// `Incoming`, `Connecting`, `Connected`, `Disconnected`.
    pub state: &'static str,
    /// `Connecting`, `Connected`, `Disconnected`.
    pub messaging: &'static str,
    pub local_in_messaging: bool,
    pub participants: Vec<Participant>,
    pub messages: Vec<Message>,
    pub next_message: u64,
}

impl Conversation {
    pub fn participant(&self, sip: &str) -> Option<&Participant> {
        self.participants.iter().find(|p| p.user.sip == sip)
    }

    pub fn participant_mut(&mut self, sip: &str) -> Option<&mut Participant> {
        self.participants.iter_mut().find(|p| p.user.sip == sip)
    }
}

/// A messagingInvitation operation.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: String,
    pub conversation: String,
    pub direction: Direction,
    /// `Connecting`, `Connected`, `Failed`.
    pub state: &'static str,
    pub operation_id: Option<String>,
    pub remote: User,
    /// The first message of an incoming invitation.
    pub message: Option<String>,
}

/// One UCWA application (an endpoint of the signed-in user).
#[derive(Debug)]
pub struct App {
    pub id: String,
    pub user: User,
    pub endpoint_id: Option<String>,
    pub user_agent: String,
    pub culture: String,
    pub available: bool,
    /// The per-application GUID key of communication ("please pass this in a PUT request").
    pub comm_key: String,
    pub comm_etag: String,
    pub feed: Feed,
    pub conversations: BTreeMap<String, Conversation>,
    /// Conversation ids in creation order (the control API's default is the latest).
    pub conversation_order: Vec<String>,
    pub invitations: BTreeMap<String, Invitation>,
}

impl App {
    pub fn base(&self) -> String {
        format!("{APPS_PATH}/{}", self.id)
    }

    pub fn latest_conversation(&self) -> Option<&str> {
        self.conversation_order
            .iter()
            .rev()
            .find(|c| self.conversations.contains_key(*c))
            .map(String::as_str)
    }
}

/// The whole simulated front-end.
#[derive(Debug)]
pub struct State {
    /// Ids, tokens and etags: drawn only by state-changing requests, in their order.
    pub rng: Rng,
    seed: u64,
    /// How often each request (method + URI) was seen, for correlation ids.
    seen: HashMap<String, u64>,
    pub clock: Clock,
    pub tokens: HashMap<String, Token>,
    pub apps: BTreeMap<String, App>,
    /// Application ids in creation order.
    pub app_order: Vec<String>,
    pub injections: Vec<Injection>,
    next_app: u64,
    next_waiter: u64,
}

impl State {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        // Application ids are small numbers like a real pool's (`/applications/105`).
        let next_app = 100 + rng.next_u64() % 900;
        State {
            rng,
            seed,
            seen: HashMap::new(),
            clock: Clock::default(),
            tokens: HashMap::new(),
            apps: BTreeMap::new(),
            app_order: Vec::new(),
            injections: Vec::new(),
            next_app,
            next_waiter: 0,
        }
    }

    pub fn new_app_id(&mut self) -> String {
        let id = self.next_app;
        self.next_app += 1 + self.rng.next_u64() % 7;
        id.to_string()
    }

    /// A correlation id for the n-th occurrence of a request: the same script gets the same
    /// ids whatever the interleaving of its concurrent requests.
    pub fn correlation_id(&mut self, request: &str) -> String {
        let n = self.seen.entry(request.to_string()).or_insert(0);
        *n += 1;
        let mut rng = Rng::new(self.seed ^ fnv1a(request.as_bytes()) ^ n.rotate_left(32));
        rng.hex(8)
    }

    pub fn new_waiter_id(&mut self) -> u64 {
        self.next_waiter += 1;
        self.next_waiter
    }

    pub fn latest_app(&self) -> Option<&str> {
        self.app_order
            .iter()
            .rev()
            .find(|a| self.apps.contains_key(*a))
            .map(String::as_str)
    }
}

/// FNV-1a: a stable hash (std's hasher may change between Rust releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_normalise() {
        let u = User::from_login("sip:Alice.Jones@Contoso.com").unwrap();
        assert_eq!(u.sip, "alice.jones@contoso.com");
        assert_eq!(u.name, "Alice Jones");
        assert_eq!(
            User::from_login("CONTOSO\\bob").unwrap().sip,
            "bob@contoso.com"
        );
        assert!(User::from_login("a b").is_none());
        assert!(User::from_login("").is_none());
    }
}
