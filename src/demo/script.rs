//! The scripted IM session that `demo` and the end-to-end tests run: a client signs in from
//! autodiscover, creates an application, receives an invitation, talks, sees
//! participantMessaging added / updated / deleted on the events feed, and leaves.
//!
//! The remote side (Bob's invitation and messages, Carol joining and leaving) is played on
//! the simulator's control API (`/_sim/...`), directly, never through the URL the client
//! talks to: a recording then holds only what a real client sends. Against a replay nobody
//! plays it: the recorded events feed already holds what the remote side did, and the
//! client reads the invitation's `accept` link from its `started` event, as a real client
//! does. See [`RemoteSide`].

use http::Method;
use serde_json::json;

use super::client::{ClientError, Reply, Seen, UcwaClient};
use super::links::find_link;
use crate::recording::EventRow;
use crate::ucwa::Representation;
use crate::ucwa::feed::{feed_links, parse_events};

/// Who plays the other side of the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RemoteSide {
    /// Nobody: the script runs against a replay, whose events feed already holds what the
    /// remote side did (the default).
    #[default]
    Recorded,
    /// The control API of the simulator at this base URL (the upstream, when the script
    /// talks to a recording proxy in front of it).
    Simulator(String),
    /// The control API through the URL the client talks to: for replaying recordings made
    /// before the demo drove the simulator directly, which hold those requests.
    ThroughClientUrl,
}

/// Who signs in, how the script asks for resources, and who plays the remote side.
#[derive(Debug, Clone)]
pub struct ScriptOptions {
    pub username: String,
    pub password: String,
    /// Representation of resources and events after sign-in.
    pub representation: Representation,
    /// The `EndpointId` sent with `POST applications` (real clients send a fresh one).
    pub endpoint_id: String,
    /// The text of the message the user sends (`text/plain`).
    pub message: String,
    /// Who the remote side is and what is said.
    pub remote: RemoteScript,
    /// Who plays the other side: the simulator directly, or requests through the client's URL.
    pub remote_side: RemoteSide,
}

impl Default for ScriptOptions {
    fn default() -> Self {
        ScriptOptions {
            username: "alice@contoso.com".into(),
            password: crate::sim::PASSWORD.into(),
            representation: Representation::Json,
            endpoint_id: "6d1ec8f9-0c5b-4b8e-9d6e-1a2b3c4d5e6f".into(),
            message: "Fine, thanks!".into(),
            remote: RemoteScript::default(),
            remote_side: RemoteSide::Recorded,
        }
    }
}

/// The remote side of the conversation: who invites (address and display name), who joins
/// later, the invitation's message and the remote's message (the user's own is
/// [`ScriptOptions::message`]). A replay of an anonymised recording sets the pseudonyms they
/// were given (`anonymize --map`).
#[derive(Debug, Clone)]
pub struct RemoteScript {
    pub peer: String,
    pub peer_name: String,
    pub joiner: String,
    pub invitation_text: String,
    pub peer_text: String,
}

impl Default for RemoteScript {
    fn default() -> Self {
        RemoteScript {
            peer: "bob@contoso.com".into(),
            peer_name: "Bob".into(),
            joiner: "carol@contoso.com".into(),
            invitation_text: "Hi Alice".into(),
            peer_text: "How are you?".into(),
        }
    }
}

impl ScriptOptions {
    /// The defaults, with the simulator at `url` playing the remote side.
    pub fn against_simulator(url: &str) -> Self {
        ScriptOptions {
            remote_side: RemoteSide::Simulator(url.to_string()),
            ..ScriptOptions::default()
        }
    }
}

/// Sends what the remote side does.
struct Remote {
    side: RemoteSide,
    client: Option<UcwaClient>,
}

impl Remote {
    fn new(side: &RemoteSide) -> Self {
        let client = match side {
            RemoteSide::Simulator(url) => Some(UcwaClient::new(url, Representation::Json)),
            _ => None,
        };
        Remote {
            side: side.clone(),
            client,
        }
    }

    /// POST `body` to the control API's `path`; nothing when nobody plays the remote side.
    async fn act(
        &mut self,
        c: &mut UcwaClient,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(), ClientError> {
        let accepted = [200, 201, 204];
        match (&self.side, &mut self.client) {
            (RemoteSide::Simulator(_), Some(sim)) => {
                sim.post_json(path, body, &accepted).await?;
            }
            (RemoteSide::ThroughClientUrl, _) => {
                c.post_json(path, body, &accepted).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// What the script saw.
#[derive(Debug, Clone)]
pub struct ScriptRun {
    /// Every response, in order.
    pub transcript: Vec<Seen>,
    /// Every event received on the feed, in order.
    pub events: Vec<EventRow>,
    /// The bearer token the server issued (a `REDACTED-n` placeholder under replay).
    pub token: String,
    /// The base URL the script ran against.
    pub base: String,
}

fn protocol(context: &str, message: impl Into<String>) -> ClientError {
    ClientError::Protocol {
        context: context.to_string(),
        message: message.into(),
    }
}

/// The events feed as the client walks it: always the `next` (or `resync`/`resume`) link.
struct Feed {
    next: String,
    events: Vec<EventRow>,
}

/// Empty batches one [`Feed::until`] accepts besides its `max` batches with events. A P-GET
/// that times out is answered with an empty batch: normal UCWA behaviour, and with the
/// simulator's shortened clock (180 ms) it can happen on a loaded machine whenever an event
/// is not yet queued when the P-GET arrives. This only bounds a feed that never delivers.
const MAX_EMPTY_BATCHES: usize = 20;

impl Feed {
    /// GET the feed until an event `(link rel, type)` arrives: at most `max` batches that
    /// carry events, plus up to [`MAX_EMPTY_BATCHES`] empty ones (timed-out P-GETs).
    async fn until(
        &mut self,
        client: &mut UcwaClient,
        repr: Representation,
        rel: &str,
        event_type: &str,
        max: usize,
    ) -> Result<Vec<EventRow>, ClientError> {
        let mut seen = Vec::new();
        let (mut with_events, mut empty) = (0, 0);
        while with_events < max && empty < MAX_EMPTY_BATCHES {
            let reply = client.get(&self.next.clone()).await?;
            let rows = parse_events(repr, &reply.body, None)
                .map_err(|e| protocol("events", e.to_string()))?;
            self.next = feed_links(repr, &reply.body)
                .ok()
                .and_then(|l| l.follow().map(str::to_string))
                .ok_or_else(|| protocol("events", "no next link"))?;
            if rows.is_empty() {
                empty += 1;
                continue;
            }
            with_events += 1;
            let done = rows
                .iter()
                .any(|e| e.link_rel == rel && e.event_type == event_type);
            seen.extend(rows.iter().cloned());
            self.events.extend(rows);
            if done {
                return Ok(seen);
            }
        }
        Err(protocol(
            "events",
            format!(
                "no {rel} {event_type} event in {with_events} batches with events \
                 (and {empty} empty ones)"
            ),
        ))
    }
}

fn link(
    repr: Representation,
    reply: &Reply,
    rel: &str,
    context: &str,
) -> Result<String, ClientError> {
    find_link(repr, &reply.body, rel).ok_or_else(|| protocol(context, format!("no {rel} link")))
}

/// Run the IM script against `base` (the simulator, the recording proxy or a replay).
pub async fn run_im_session(base: &str, opts: &ScriptOptions) -> Result<ScriptRun, ClientError> {
    let json = Representation::Json;
    let repr = opts.representation;
    let mut c = UcwaClient::new(base, json);

    // Sign-in: autodiscover → 401 challenge → token → user → applications.
    let root = c.get("/autodiscover/autodiscoverservice.svc/root").await?;
    let user = link(json, &root, "user", "autodiscover")?;
    let challenge = c.expect(Method::GET, &user, None, &[401]).await?;
    let token_url = challenge
        .headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(msrtc_href)
        .ok_or_else(|| protocol("sign-in", "no MsRtcOAuth href in the 401"))?;
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "password")
        .append_pair("username", &opts.username)
        .append_pair("password", &opts.password)
        .finish();
    let token_reply = c
        .expect(
            Method::POST,
            &token_url,
            Some(("application/x-www-form-urlencoded", form.into_bytes())),
            &[200],
        )
        .await?;
    let token = token_reply
        .json()
        .and_then(|v| v.get("access_token")?.as_str().map(str::to_string))
        .ok_or_else(|| protocol("sign-in", "no access_token"))?;
    c.set_token(Some(token.clone()));
    let user_reply = c.get(&user).await?;
    let applications = link(json, &user_reply, "applications", "user")?;
    let app = c
        .post_json(
            &applications,
            &json!({"UserAgent": "ucwa-replay-demo/1.0", "EndpointId": opts.endpoint_id, "Culture": "en-US"}),
            &[201, 200],
        )
        .await?;
    let app_href = link(json, &app, "self", "application")?;
    let events = link(json, &app, "events", "application")?;
    let make_me_available = link(json, &app, "makeMeAvailable", "application")?;

    // From here on, resources and events in the chosen representation.
    c.set_representation(repr);
    c.post_json(
        &make_me_available,
        &json!({"SupportedModalities": ["Messaging"]}),
        &[204],
    )
    .await?;
    let mut feed = Feed {
        next: events,
        events: Vec::new(),
    };
    feed.until(&mut c, repr, "communication", "updated", 3)
        .await?;

    // Bob invites; accept (the link is in the invitation the event embeds); wait until
    // messaging is connected.
    let r = &opts.remote;
    let mut remote = Remote::new(&opts.remote_side);
    remote
        .act(
            &mut c,
            "/_sim/invite",
            &json!({"from": r.peer, "name": r.peer_name, "message": r.invitation_text}),
        )
        .await?;
    let started = feed
        .until(&mut c, repr, "messagingInvitation", "started", 3)
        .await?;
    let accept = started
        .iter()
        .find(|e| e.link_rel == "messagingInvitation" && e.event_type == "started")
        .and_then(|e| e.embedded.as_deref())
        .and_then(|embedded| find_link(repr, embedded.as_bytes(), "accept"))
        .ok_or_else(|| protocol("invitation", "no accept link in the started event"))?;
    c.expect(Method::POST, &accept, None, &[204]).await?;
    let connected = feed
        .until(&mut c, repr, "participantMessaging", "added", 3)
        .await?;
    // The invitation's first message ("Hi Alice") is delivered once connected.
    feed.until(&mut c, repr, "message", "completed", 3).await?;
    let participant_messaging = connected
        .iter()
        .find(|e| e.link_rel == "participantMessaging" && e.event_type == "added")
        .map(|e| e.link_href.clone())
        .ok_or_else(|| protocol("events", "no participantMessaging href"))?;
    let conversation = feed
        .events
        .iter()
        .find(|e| e.link_rel == "conversation")
        .map(|e| e.link_href.clone())
        .ok_or_else(|| protocol("events", "no conversation href"))?;

    // The seed resource, in both representations.
    c.get(&participant_messaging).await?;
    c.set_representation(if repr == json {
        Representation::Xml
    } else {
        json
    });
    c.get(&participant_messaging).await?;
    c.set_representation(repr);

    // Messages both ways.
    let conv = c.get(&conversation).await?;
    let messaging = link(repr, &conv, "messaging", "conversation")?;
    let messaging_reply = c.get(&messaging).await?;
    let send = link(repr, &messaging_reply, "sendMessage", "messaging")?;
    let stop = link(repr, &messaging_reply, "stopMessaging", "messaging")?;
    remote
        .act(
            &mut c,
            "/_sim/message",
            &json!({"from": r.peer, "text": r.peer_text}),
        )
        .await?;
    feed.until(&mut c, repr, "message", "completed", 3).await?;
    let sent = c
        .expect(
            Method::POST,
            &send,
            Some(("text/plain", opts.message.clone().into_bytes())),
            &[201],
        )
        .await?;
    let location = sent
        .headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let delivered = feed.until(&mut c, repr, "message", "completed", 3).await?;
    // The completion is that of the message just sent, not of an earlier one.
    if !delivered.iter().any(|e| {
        e.link_rel == "message" && !e.link_href.is_empty() && location.ends_with(&e.link_href)
    }) {
        return Err(protocol(
            "sendMessage",
            format!("no completed event for the sent message {location}"),
        ));
    }

    // Carol joins, changes and leaves messaging: the seed's three events.
    let carol = json!({"participant": r.joiner});
    remote.act(&mut c, "/_sim/join", &carol).await?;
    feed.until(&mut c, repr, "participantMessaging", "added", 3)
        .await?;
    remote.act(&mut c, "/_sim/update", &carol).await?;
    feed.until(&mut c, repr, "participantMessaging", "updated", 3)
        .await?;
    remote.act(&mut c, "/_sim/leave", &carol).await?;
    feed.until(&mut c, repr, "participantMessaging", "deleted", 3)
        .await?;

    // Leave the conversation and sign out.
    c.expect(Method::POST, &stop, None, &[204]).await?;
    feed.until(&mut c, repr, "participantMessaging", "deleted", 3)
        .await?;
    c.expect(Method::DELETE, &app_href, None, &[204]).await?;

    Ok(ScriptRun {
        transcript: c.transcript().to_vec(),
        events: feed.events,
        token,
        base: c.base().to_string(),
    })
}

/// The `href` of a `MsRtcOAuth` challenge (quoted or not, possibly folded with others).
fn msrtc_href(header: &str) -> Option<String> {
    let at = header.find("MsRtcOAuth")?;
    let rest = &header[at..];
    let start = rest.find("href=")? + 5;
    let rest = rest[start..].trim_start_matches('"');
    let end = rest
        .find(|c: char| c == '"' || c == ',' || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// A transcript with the server's own base URL replaced by `{base}` in bodies and headers,
/// so transcripts from servers on different ports compare byte for byte.
pub fn normalise_transcript(transcript: &[Seen], base: &str) -> Vec<Seen> {
    let escaped = base.replace('/', "\\/");
    let fix = |bytes: &[u8]| -> Vec<u8> {
        let text = String::from_utf8_lossy(bytes);
        text.replace(base, "{base}")
            .replace(&escaped, "{base}")
            .into_bytes()
    };
    transcript
        .iter()
        .map(|s| Seen {
            method: s.method.clone(),
            target: s.target.clone(),
            status: s.status,
            headers: s.headers.iter().map(|(n, v)| (n.clone(), fix(v))).collect(),
            body: fix(&s.body).into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_msrtc_href_in_every_spelling() {
        assert_eq!(
            msrtc_href(r#"MsRtcOAuth href="https://x/WebTicket/oauthtoken",grant_type="password""#)
                .as_deref(),
            Some("https://x/WebTicket/oauthtoken")
        );
        assert_eq!(
            msrtc_href(r#"Bearer trusted_issuers="", client_id="1", MsRtcOAuth href=https://x/t, grant_type="password""#).as_deref(),
            Some("https://x/t")
        );
        assert_eq!(msrtc_href("Bearer realm=x"), None);
    }
}
