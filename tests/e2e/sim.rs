//! End-to-end tests of the UCWA simulator over real HTTP (the shared `UcwaClient`), on port
//! 0, with a shortened clock (`time_scale` 0.001: a 180 s P-GET timeout lasts 180 ms).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use ucwa_replay::demo::{Reply, UcwaClient};
use ucwa_replay::sim::{PASSWORD, SimConfig, SimServer};
use ucwa_replay::ucwa::Representation;

use crate::util::{ReplyExt, raw};

const NS: &str = "http://schemas.microsoft.com/rtc/2012/03/ucwa";
const XML: &str = "application/vnd.microsoft.com.ucwa+xml";

fn start(seed: u64) -> SimServer {
    SimServer::start(SimConfig {
        seed,
        time_scale: 0.001,
    })
    .expect("simulator starts")
}

/// A simulator on the real clock, for tests that need a P-GET to stay held while they make
/// other requests: with `time_scale` 0.001 a held P-GET times out after at most 1.8 s, which
/// a loaded machine can spend between two requests.
fn start_real_clock(seed: u64) -> SimServer {
    SimServer::start(SimConfig {
        seed,
        time_scale: 1.0,
    })
    .expect("simulator starts")
}

/// A user of the simulator: the shared UCWA client (asking for JSON unless told otherwise),
/// its application and its events cursor.
#[derive(Clone)]
struct User {
    ucwa: UcwaClient,
    app: String,
    events: String,
}

impl User {
    fn new(base: &str) -> Self {
        User {
            ucwa: UcwaClient::new(base, Representation::Json),
            app: String::new(),
            events: String::new(),
        }
    }

    fn base(&self) -> &str {
        self.ucwa.base()
    }

    /// Any request: `accept` instead of JSON, `body` as `(content type, bytes)`.
    async fn send(
        &mut self,
        method: Method,
        href: &str,
        accept: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let mut request = self.ucwa.request(method, href);
        if let Some(accept) = accept {
            request = request.accept(accept);
        }
        if let Some((content_type, bytes)) = body {
            request = request.body(content_type, bytes);
        }
        request.send().await.expect("request sent")
    }

    async fn get(&mut self, href: &str) -> Reply {
        self.send(Method::GET, href, None, None).await
    }

    async fn get_xml(&mut self, href: &str) -> Reply {
        self.send(Method::GET, href, Some(XML), None).await
    }

    async fn post_json(&mut self, href: &str, v: Value) -> Reply {
        self.send(
            Method::POST,
            href,
            None,
            Some(("application/json", v.to_string().into_bytes())),
        )
        .await
    }

    /// POST `body` as `content_type`.
    async fn post_bytes(&mut self, href: &str, content_type: &str, body: &[u8]) -> Reply {
        self.send(
            Method::POST,
            href,
            None,
            Some((content_type, body.to_vec())),
        )
        .await
    }

    async fn post_empty(&mut self, href: &str) -> Reply {
        self.send(Method::POST, href, None, None).await
    }

    /// The simulator's state dump (`GET /_sim/state`).
    async fn sim_state(&mut self) -> Value {
        self.ucwa
            .request(Method::GET, "/_sim/state")
            .no_token()
            .send()
            .await
            .unwrap()
            .expect_json()
    }

    /// The href of the first application's first conversation.
    async fn first_conversation(&mut self) -> String {
        self.sim_state().await["applications"][0]["conversations"][0]["href"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The control API (`POST /_sim/ACTION`), which plays the remote side.
    async fn control(&mut self, action: &str, v: Value) -> Reply {
        self.ucwa
            .request(Method::POST, &format!("/_sim/{action}"))
            .no_token()
            .body("application/json", v.to_string())
            .send()
            .await
            .expect("control request")
    }

    /// The token endpoint with a password grant.
    async fn token_for(&mut self, user: &str, password: &str, scope: Option<&str>) -> Reply {
        let mut form = format!("grant_type=password&username={user}&password={password}");
        if let Some(s) = scope {
            form.push_str(&format!("&scope={s}"));
        }
        self.ucwa
            .request(Method::POST, "/WebTicket/oauthtoken")
            .no_token()
            .body("application/x-www-form-urlencoded", form)
            .send()
            .await
            .expect("token request")
    }

    async fn sign_in(&mut self, scope: Option<&str>) {
        let r = self
            .token_for("alice@contoso.com", "Pa55w0rd%21", scope)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let token = r.expect_json()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        self.ucwa.set_token(Some(token));
    }

    async fn create_app(&mut self) -> Reply {
        let r = self
            .post_json(
                "/ucwa/oauth/v1/applications",
                json!({"UserAgent":"sim-test","EndpointId":"a917c6f4-976c-4cf3-847d-cdfffa28ccdf","Culture":"en-US"}),
            )
            .await;
        assert!(r.status == 201 || r.status == 200, "{}", r.text());
        let v = r.expect_json();
        self.app = v["_links"]["self"]["href"].as_str().unwrap().to_string();
        self.events = v["_links"]["events"]["href"].as_str().unwrap().to_string();
        r
    }

    /// Signed in, application created, available, first feed batch consumed.
    async fn ready(base: &str) -> User {
        let mut c = User::new(base);
        c.sign_in(None).await;
        c.create_app().await;
        let r = c
            .post_json(
                &format!("{}/me/makeMeAvailable", c.app),
                json!({"SupportedModalities":["Messaging"]}),
            )
            .await;
        assert_eq!(r.status, 204);
        let first = c.next_events().await;
        assert_eq!(
            flat(&first)[0],
            (
                "communication".into(),
                "communication".into(),
                "updated".into(),
                None,
                None
            )
        );
        c
    }

    /// GET the current events href and move to `_links.next`.
    async fn next_events(&mut self) -> Value {
        let r = self.get(&self.events.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.expect_json();
        self.follow_next(&v);
        v
    }

    /// Move the events cursor to the `_links.next` of `batch`.
    fn follow_next(&mut self, batch: &Value) {
        self.events = batch["_links"]["next"]["href"]
            .as_str()
            .unwrap_or_else(|| panic!("no next link: {batch}"))
            .to_string();
    }
}

type Flat = (String, String, String, Option<String>, Option<String>);

/// (sender rel, link rel, type, in rel, status) of every event in order.
fn flat(batch: &Value) -> Vec<Flat> {
    let mut out = Vec::new();
    for s in batch["sender"].as_array().into_iter().flatten() {
        for e in s["events"].as_array().into_iter().flatten() {
            out.push((
                s["rel"].as_str().unwrap().to_string(),
                e["link"]["rel"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
                e["in"]["rel"].as_str().map(str::to_string),
                e["status"].as_str().map(str::to_string),
            ));
        }
    }
    out
}

fn find_event<'a>(batch: &'a Value, link_rel: &str, kind: &str) -> Vec<&'a Value> {
    batch["sender"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["events"].as_array().into_iter().flatten())
        .filter(|e| e["link"]["rel"] == link_rel && e["type"] == kind)
        .collect()
}

/// The UCWA documentation samples, committed under `tests/data` (never skipped).
fn shared() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ucwa-samples");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    dir
}

/// A sample payload: the file without its `# ` header lines and the blank line after them.
fn sample(rel: &str) -> Option<String> {
    let text = std::fs::read_to_string(shared().join(rel)).ok()?;
    let mut lines = text.lines().skip_while(|l| l.starts_with("# "));
    let first = lines.next()?;
    let mut out = if first.is_empty() {
        String::new()
    } else {
        format!("{first}\n")
    };
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    Some(out)
}

/// Same keys and value types, recursively (hrefs differ between the docs and a server).
fn same_shape(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<&String> = x.keys().collect();
            let ky: Vec<&String> = y.keys().collect();
            let mut sx = kx.clone();
            let mut sy = ky.clone();
            sx.sort();
            sy.sort();
            assert_eq!(sx, sy, "keys differ at {path}");
            for k in kx {
                same_shape(&x[k], &y[k], &format!("{path}/{k}"));
            }
        }
        (Value::String(_), Value::String(_)) => {}
        (x, y) => assert_eq!(x, y, "values differ at {path}"),
    }
}

/// Structure of an XML resource: (element, rel/name attribute, text) in document order.
fn xml_outline(text: &str) -> Vec<(String, String, String)> {
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("bad XML ({e}): {text}"));
    doc.root_element()
        .descendants()
        .filter(|n| n.is_element())
        .map(|n| {
            assert_eq!(n.tag_name().namespace(), Some(NS));
            (
                n.tag_name().name().to_string(),
                n.attribute("rel")
                    .or(n.attribute("name"))
                    .unwrap_or("")
                    .to_string(),
                n.text().unwrap_or("").trim().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn sign_in_flow() {
    let sim = start(1);
    let base = sim.url();
    let mut c = User::new(&base);

    let root = c.get("/").await;
    assert_eq!(root.status, 200);
    assert!(
        root.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let user_href = root.expect_json()["_links"]["user"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        user_href,
        format!(
            "{base}/Autodiscover/AutodiscoverService.svc/root/oauth/user?originalDomain=contoso.com"
        )
    );
    assert!(
        root.expect_json()["_links"]["xframe"]["href"]
            .as_str()
            .unwrap()
            .starts_with(&base)
    );
    let root2 = c.get("/autodiscover/autodiscoverservice.svc/root").await;
    assert_eq!(root2.expect_json()["_links"], root.expect_json()["_links"]);
    let root_xml = c.get_xml("/").await;
    assert_eq!(
        root_xml.header("content-type").unwrap_or_default(),
        format!("{XML}; charset=utf-8")
    );
    assert!(xml_outline(&root_xml.text()).contains(&("link".into(), "user".into(), String::new())));

    let unauth = c.get(&user_href).await;
    assert_eq!(unauth.status, 401);
    assert!(
        unauth
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(unauth.text().contains("<html"));
    let challenges = unauth.header_all("www-authenticate");
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(challenges[0].starts_with("Bearer trusted_issuers="));
    assert!(challenges[0].contains("client_id=\"00000004-0000-0ff1-ce00-000000000000\""));
    assert_eq!(
        challenges[1],
        format!(
            "MsRtcOAuth href=\"{base}/WebTicket/oauthtoken\",grant_type=\"urn:microsoft.rtc:windows,urn:microsoft.rtc:anonmeeting,password\""
        )
    );

    let wrong = c.token_for("alice@contoso.com", "nope", None).await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.expect_json(), json!({"error":"invalid_grant"}));
    let grant = c
        .ucwa
        .request(Method::POST, "/WebTicket/oauthtoken")
        .no_token()
        .body(
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status, 400);

    let ok = c
        .token_for("alice@contoso.com", &PASSWORD.replace('!', "%21"), None)
        .await;
    assert_eq!(ok.status, 200);
    let t = ok.expect_json();
    assert!(t["access_token"].as_str().unwrap().starts_with("cwt=AAEB"));
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["ms_rtc_identityscope"], "local");
    assert!(t["expires_in"].as_u64().unwrap() > 0);
    assert_eq!(
        t.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "access_token",
            "expires_in",
            "ms_rtc_identityscope",
            "token_type"
        ]
    );
    c.ucwa
        .set_token(Some(t["access_token"].as_str().unwrap().to_string()));
    let user = c.get(&user_href).await;
    assert_eq!(user.status, 200);
    assert_eq!(
        user.expect_json()["_links"]["applications"]["href"],
        format!("{base}/ucwa/oauth/v1/applications")
    );

    // A token the simulator did not issue is no token.
    c.ucwa.set_token(Some("cwt=AAEBforged".into()));
    assert_eq!(c.get(&user_href).await.status, 401);
    let r = c.get("/ucwa/oauth/v1/applications/1/me").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header_all("www-authenticate").len(), 2);
}

#[tokio::test]
async fn application_lifecycle() {
    let sim = start(2);
    let mut c = User::new(&sim.url());
    let r = c
        .post_json(
            "/ucwa/oauth/v1/applications",
            json!({"UserAgent":"x","EndpointId":"e"}),
        )
        .await;
    assert_eq!(r.status, 401, "no token, no application");
    c.sign_in(None).await;
    let created = c.create_app().await;
    assert_eq!(created.status, 201);
    let app = created.expect_json();
    assert_eq!(app["rel"], "application");
    for l in ["self", "policies", "batch", "events"] {
        assert!(app["_links"][l]["href"].is_string(), "link {l}");
    }
    assert!(c.events.ends_with("/events?ack=1"));
    assert!(c.app.starts_with("/ucwa/oauth/v1/applications/"));
    for e in ["me", "people", "onlineMeetings", "communication"] {
        assert_eq!(app["_embedded"][e]["rel"], e);
    }
    let cookie = created.header("set-cookie").unwrap_or_default();
    assert!(cookie.starts_with("cwt_ucwa="));
    assert!(cookie.ends_with(&format!("; path={}/photos; secure; HttpOnly", c.app)));

    let again = c.create_app().await;
    assert_eq!(
        again.status, 200,
        "same EndpointId gives the existing application"
    );
    assert_eq!(again.expect_json()["_links"]["self"], app["_links"]["self"]);

    let got = c.get(&c.app.clone()).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.expect_json()["_links"], app["_links"]);
    let xml = c.get_xml(&c.app.clone()).await;
    let outline = xml_outline(&xml.text());
    assert_eq!(
        outline[0],
        ("resource".into(), "application".into(), String::new())
    );
    assert!(outline.contains(&("resource".into(), "communication".into(), String::new())));

    let early = c.control("invite", json!({})).await;
    assert_eq!(early.status, 409, "no invitations before makeMeAvailable");
    assert_eq!(early.expect_json()["code"], "Conflict");
    let me = &app["_embedded"]["me"]["_links"];
    let mma = me["makeMeAvailable"]["href"].as_str().unwrap();
    assert_eq!(
        c.post_json(mma, json!({"SupportedModalities":["Messaging"]}))
            .await
            .status,
        204
    );
    let me_now = c.get(&format!("{}/me", c.app)).await.expect_json();
    let rma = me_now["_links"]["reportMyActivity"]["href"]
        .as_str()
        .unwrap();
    assert_eq!(c.post_empty(rma).await.status, 204);
    for rel in ["presence", "note", "location"] {
        let r = c.get(me_now["_links"][rel]["href"].as_str().unwrap()).await;
        assert_eq!(r.status, 200, "{rel}");
        assert_eq!(r.expect_json()["rel"], rel);
    }
    assert_eq!(c.get(&format!("{}/people/search", c.app)).await.status, 404);
    for rel in ["people", "onlineMeetings", "communication"] {
        let href = app["_embedded"][rel]["_links"]["self"]["href"]
            .as_str()
            .unwrap();
        assert_eq!(c.get(href).await.status, 200, "{rel}");
    }
    assert_eq!(
        c.get(app["_links"]["policies"]["href"].as_str().unwrap())
            .await
            .status,
        200
    );

    let del = c.send(Method::DELETE, &c.app.clone(), None, None).await;
    assert_eq!(del.status, 204);
    let gone = c.get(&c.app.clone()).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.expect_json()["subcode"], "ApplicationNotFound");
    let feed = c.get(&c.events.clone()).await;
    assert_eq!(feed.status, 404);
    assert_eq!(feed.expect_json()["subcode"], "ApplicationNotFound");
}

#[tokio::test]
async fn reduced_scope_token_is_forbidden_on_conversations() {
    let sim = start(3);
    let mut full = User::ready(&sim.url()).await;
    full.control("invite", json!({"from":"bob@contoso.com"}))
        .await;
    let started = full.next_events().await;
    let accept = find_event(&started, "messagingInvitation", "started")[0]["_embedded"]["messagingInvitation"]["_links"]["accept"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(full.post_empty(&accept).await.status, 204);
    let conv = full.first_conversation().await;
    let pm = format!("{conv}/participants/bob@contoso.com/messaging");
    assert_eq!(full.get(&pm).await.status, 200);

    // The same user with a token lacking both conversation scopes.
    let mut narrow = User::new(&sim.url());
    narrow
        .sign_in(Some("User.ReadWrite%20Contacts.ReadWrite"))
        .await;
    narrow.create_app().await;
    assert_eq!(
        narrow.app, full.app,
        "same user, same EndpointId: same application"
    );
    for href in [
        pm.clone(),
        conv.clone(),
        format!("{}/communication/conversations", full.app),
    ] {
        let r = narrow.get(&href).await;
        assert_eq!(r.status, 403, "{href}");
        assert_eq!(r.expect_json()["code"], "Forbidden");
    }
    let r = narrow.get_xml(&pm).await;
    assert_eq!(r.status, 403);
    assert!(xml_outline(&r.text()).contains(&("code".into(), String::new(), "Forbidden".into())));
    let start_im = narrow
        .post_json(
            &format!("{}/communication/messagingInvitations", full.app),
            json!({"to":"sip:bob@contoso.com"}),
        )
        .await;
    assert_eq!(start_im.status, 403);
    // Non-conversation resources stay open to it.
    assert_eq!(narrow.get(&format!("{}/me", full.app)).await.status, 200);
    // One conversation scope is enough.
    let mut receive = User::new(&sim.url());
    receive.sign_in(Some("Conversations.Receive")).await;
    receive.create_app().await;
    assert_eq!(receive.get(&pm).await.status, 200);
}

#[tokio::test]
async fn incoming_im_and_the_seed_resource() {
    let sim = start(4);
    let mut c = User::ready(&sim.url()).await;
    let inv = c
        .control(
            "invite",
            json!({"from":"sip:lene.aaling@contoso.com","message":"Hi Tosh\r\n"}),
        )
        .await;
    assert_eq!(inv.status, 200, "{}", inv.text());

    let b2 = c.next_events().await;
    assert_eq!(
        flat(&b2),
        vec![
            (
                "communication".into(),
                "messagingInvitation".into(),
                "started".into(),
                None,
                None
            ),
            (
                "communication".into(),
                "conversation".into(),
                "added".into(),
                None,
                None
            ),
            (
                "conversation".into(),
                "localParticipant".into(),
                "added".into(),
                None,
                None
            ),
        ]
    );
    let started =
        &find_event(&b2, "messagingInvitation", "started")[0]["_embedded"]["messagingInvitation"];
    assert_eq!(started["direction"], "Incoming");
    assert_eq!(
        started["_links"]["message"]["href"],
        "data:text/plain;charset=utf-8,Hi+Tosh%0D%0A"
    );
    assert_eq!(
        started["_embedded"]["from"]["uri"],
        "sip:lene.aaling@contoso.com"
    );
    assert_eq!(started["_embedded"]["from"]["name"], "Lene Aaling");
    assert_eq!(
        find_event(&b2, "localParticipant", "added")[0]["_embedded"]["localParticipant"]["rel"],
        "participant"
    );
    let accept = started["_links"]["accept"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let invitation = started["_links"]["self"]["href"]
        .as_str()
        .unwrap()
        .to_string();

    let b3 = c.next_events().await;
    assert_eq!(flat(&b3)[0].1, "participant");
    assert_eq!(
        flat(&b3)[1],
        (
            "communication".into(),
            "messagingInvitation".into(),
            "updated".into(),
            None,
            None
        )
    );

    assert_eq!(c.post_empty(&accept).await.status, 204);
    assert_eq!(c.post_empty(&accept).await.status, 409, "accepting twice");
    let b4 = c.next_events().await;
    let f4 = flat(&b4);
    assert_eq!(
        f4[0],
        (
            "conversation".into(),
            "messaging".into(),
            "updated".into(),
            None,
            None
        )
    );
    assert_eq!(
        f4[1],
        (
            "communication".into(),
            "conversation".into(),
            "updated".into(),
            None,
            None
        )
    );
    assert_eq!(
        f4[2],
        (
            "conversation".into(),
            "participantMessaging".into(),
            "added".into(),
            Some("participant".into()),
            None
        )
    );
    assert_eq!(
        f4[3],
        (
            "conversation".into(),
            "participantMessaging".into(),
            "added".into(),
            Some("localParticipant".into()),
            None
        )
    );
    assert_eq!(
        f4[4],
        (
            "communication".into(),
            "messagingInvitation".into(),
            "completed".into(),
            None,
            Some("Success".into())
        )
    );
    assert_eq!(
        find_event(&b4, "messaging", "updated")[0]["_embedded"]["messaging"]["state"],
        "Connected"
    );
    // Several senders per response, in order (conversation, communication, conversation, communication).
    let senders: Vec<&str> = b4["sender"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rel"].as_str().unwrap())
        .collect();
    assert_eq!(
        senders,
        [
            "conversation",
            "communication",
            "conversation",
            "communication"
        ]
    );
    let remote_pm = find_event(&b4, "participantMessaging", "added")[0]["link"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(remote_pm.ends_with("/participants/lene.aaling@contoso.com/messaging"));

    let b5 = c.next_events().await;
    let msg = &find_event(&b5, "message", "completed")[0];
    assert_eq!(msg["status"], "Success");
    assert_eq!(msg["_embedded"]["message"]["direction"], "Incoming");
    assert_eq!(
        msg["_embedded"]["message"]["_links"]["plainMessage"]["href"],
        "data:text/plain;charset=utf-8,Hi+Tosh%0D%0A"
    );
    let message_href = msg["link"]["href"].as_str().unwrap();
    let m = c.get(message_href).await;
    assert!(m.text().contains(r#""timeStamp":"\/Date("#), "{}", m.text());
    assert_eq!(c.get(&invitation).await.expect_json()["state"], "Connected");

    // participantMessaging, JSON and XML, in the seed's shape.
    let pm = c.get(&remote_pm).await;
    assert_eq!(pm.status, 200);
    assert_eq!(
        pm.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let pm_json = pm.expect_json();
    assert_eq!(pm_json["rel"], "participantMessaging");
    assert_eq!(pm_json["_links"]["self"]["href"], remote_pm.as_str());
    assert_eq!(
        pm_json["_links"]["participant"]["href"],
        remote_pm.trim_end_matches("/messaging")
    );
    if let Some(seed) = sample("ref/participantMessaging/get-json-response.body.json") {
        let seed: Value = serde_json::from_str(&seed).unwrap();
        same_shape(&pm_json, &seed, "");
        assert_eq!(
            pm_json.as_object().unwrap().keys().collect::<Vec<_>>(),
            seed.as_object().unwrap().keys().collect::<Vec<_>>()
        );
    } else {
        panic!("the shared samples are missing: {}", shared().display());
    }
    for accept in ["application/xml", XML] {
        let x = c.send(Method::GET, &remote_pm, Some(accept), None).await;
        assert_eq!(x.status, 200);
        assert_eq!(
            x.header("content-type").unwrap_or_default(),
            format!("{accept}; charset=utf-8")
        );
        let text = x.text();
        let doc = roxmltree::Document::parse(&text).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("href"), Some(remote_pm.as_str()));
        let seed = sample("ref/participantMessaging/get-xml-response.body.xml").unwrap();
        assert_eq!(xml_outline(&x.text()), xml_outline(&seed));
        let seed_doc = roxmltree::Document::parse(&seed).unwrap();
        let attrs = |n: roxmltree::Node| {
            n.attributes()
                .map(|a| a.name().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(attrs(root), attrs(seed_doc.root_element()));
    }

    // The seed's three events through the feed: added (above), updated, deleted.
    c.control("join", json!({"participant":"carol@contoso.com"}))
        .await;
    let b6 = c.next_events().await;
    assert_eq!(
        flat(&b6),
        vec![
            (
                "conversation".into(),
                "participant".into(),
                "added".into(),
                None,
                None
            ),
            (
                "conversation".into(),
                "participantMessaging".into(),
                "added".into(),
                Some("participant".into()),
                None
            ),
        ]
    );
    let added = &find_event(&b6, "participantMessaging", "added")[0];
    assert_eq!(
        added["_embedded"]["participantMessaging"]["rel"],
        "participantMessaging"
    );
    let r = c
        .control("update", json!({"participant":"carol@contoso.com"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b7 = c.next_events().await;
    assert_eq!(
        flat(&b7),
        vec![(
            "conversation".into(),
            "participantMessaging".into(),
            "updated".into(),
            Some("participant".into()),
            None
        )]
    );
    let carol_pm = r.expect_json()["participantMessaging"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(c.get(&carol_pm).await.status, 200);
    c.control("leave", json!({"participant":"carol@contoso.com"}))
        .await;
    let b8_xml = c.get_xml(&c.events.clone()).await;
    let outline = xml_outline(&b8_xml.text());
    assert_eq!(outline[0].0, "events");
    assert!(outline.contains(&(
        "deleted".into(),
        "participantMessaging".into(),
        String::new()
    )));
    assert!(outline.contains(&("in".into(), "participant".into(), String::new())));
    let b8 = c.next_events().await;
    assert_eq!(
        flat(&b8),
        vec![(
            "conversation".into(),
            "participantMessaging".into(),
            "deleted".into(),
            Some("participant".into()),
            None
        )]
    );
    assert_eq!(c.get(&carol_pm).await.status, 404);
    assert_eq!(
        c.control("leave", json!({"participant":"carol@contoso.com"}))
            .await
            .status,
        409
    );

    // A message from the remote side.
    let r = c
        .control("message", json!({"text":"<b>hi</b>","html":true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b9 = c.next_events().await;
    let m = &find_event(&b9, "message", "completed")[0]["_embedded"]["message"];
    assert!(
        m["_links"]["htmlMessage"]["href"]
            .as_str()
            .unwrap()
            .starts_with("data:text/html;charset=utf-8,")
    );
    assert_eq!(m["_links"]["participant"]["title"], "Lene Aaling");
}

#[tokio::test]
async fn decline_ends_the_conversation() {
    let sim = start(5);
    let mut c = User::ready(&sim.url()).await;
    let inv = c.control("invite", json!({})).await.expect_json();
    c.next_events().await;
    c.next_events().await;
    assert_eq!(
        c.post_empty(inv["decline"].as_str().unwrap()).await.status,
        204
    );
    let b = c.next_events().await;
    let done = &find_event(&b, "messagingInvitation", "completed")[0];
    assert_eq!(done["status"], "Failure");
    assert_eq!(done["reason"]["subcode"], "Declined");
    assert_eq!(find_event(&b, "conversation", "deleted").len(), 1);
    assert_eq!(
        c.get(inv["conversation"].as_str().unwrap()).await.status,
        404
    );
}

#[tokio::test]
async fn outgoing_im_flow() {
    let sim = start(6);
    let mut c = User::ready(&sim.url()).await;
    let comm = c
        .get(&format!("{}/communication", c.app))
        .await
        .expect_json();
    let start_href = comm["_links"]["startMessaging"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .post_json(
            &start_href,
            json!({"importance":"Normal","sessionContext":"33dc","subject":"Task Sample","telemetryId":null,"to":"sip:lenea@contoso.com","operationId":"5028e824-2268-4b14-9e59-1abad65ff393"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let location = r.header("location").unwrap_or_default().to_string();
    assert!(location.starts_with(&format!("{start_href}/")));

    let b2 = c.next_events().await;
    let st = &find_event(&b2, "messagingInvitation", "started")[0];
    assert_eq!(st["link"]["href"], location.as_str());
    assert_eq!(
        st["_embedded"]["messagingInvitation"]["operationId"],
        "5028e824-2268-4b14-9e59-1abad65ff393"
    );
    assert_eq!(
        st["_embedded"]["messagingInvitation"]["direction"],
        "Outgoing"
    );
    assert_eq!(
        find_event(&b2, "messaging", "updated")[0]["_embedded"]["messaging"]["state"],
        "Connecting"
    );

    let b3 = c.next_events().await;
    assert_eq!(find_event(&b3, "participantMessaging", "added").len(), 2);
    let done = &find_event(&b3, "messagingInvitation", "completed")[0];
    assert_eq!(done["status"], "Success");
    assert_eq!(
        done["_embedded"]["messagingInvitation"]["operationId"],
        "5028e824-2268-4b14-9e59-1abad65ff393"
    );
    assert_eq!(
        done["_embedded"]["messagingInvitation"]["_embedded"]["acceptedByParticipant"][0]["uri"],
        "sip:lenea@contoso.com"
    );
    let messaging = &find_event(&b3, "messaging", "updated")[0]["_embedded"]["messaging"];
    assert_eq!(messaging["state"], "Connected");
    let send = messaging["_links"]["sendMessage"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let stop = messaging["_links"]["stopMessaging"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let conv_href = messaging["_links"]["conversation"]["href"]
        .as_str()
        .unwrap()
        .to_string();

    // Walk the resources linked from the conversation.
    let conv = c.get(&conv_href).await.expect_json();
    assert_eq!(conv["state"], "Connected");
    assert_eq!(conv["activeModalities"], json!(["Messaging"]));
    let parts = c
        .get(conv["_links"]["participants"]["href"].as_str().unwrap())
        .await
        .expect_json();
    let lp = c
        .get(
            parts["_links"]["localParticipant"]["href"]
                .as_str()
                .unwrap(),
        )
        .await
        .expect_json();
    assert_eq!(lp["uri"], "sip:alice@contoso.com");
    let remote = c
        .get(parts["_links"]["participant"][0]["href"].as_str().unwrap())
        .await
        .expect_json();
    let own_pm = c
        .get(
            lp["_links"]["participantMessaging"]["href"]
                .as_str()
                .unwrap(),
        )
        .await;
    assert_eq!(own_pm.status, 200);
    let remote_pm_href = remote["_links"]["participantMessaging"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        c.get(&remote_pm_href).await.expect_json()["rel"],
        "participantMessaging"
    );
    let convs = c
        .get(&format!(
            "{}/communication/conversations?filter=active",
            c.app
        ))
        .await
        .expect_json();
    assert_eq!(
        convs["_links"]["conversation"][0]["href"],
        conv_href.as_str()
    );

    let sent = c.post_bytes(&send, "text/plain", b"What's up?").await;
    assert_eq!(sent.status, 201);
    let msg_href = sent.header("location").unwrap_or_default().to_string();
    let b4 = c.next_events().await;
    let done = &find_event(&b4, "message", "completed")[0];
    assert_eq!(done["link"]["href"], msg_href.as_str());
    assert_eq!(done["status"], "Success");
    assert_eq!(done["_embedded"]["message"]["direction"], "Outgoing");
    let m = c.get(&msg_href).await.expect_json();
    assert_eq!(
        m["_links"]["plainMessage"]["href"],
        "data:text/plain;charset=utf-8,What%27s+up%3F"
    );
    let html = c
        .post_bytes(&send, "text/html; charset=utf-8", b"<p>hi</p>")
        .await;
    assert_eq!(html.status, 201);
    c.next_events().await;
    let hm = c
        .get(html.header("location").unwrap_or_default())
        .await
        .expect_json();
    assert!(hm["_links"]["htmlMessage"]["href"].is_string());
    let list = c.get(&send).await.expect_json();
    assert_eq!(list["_links"]["message"].as_array().unwrap().len(), 2);

    let term = c.post_empty(&stop).await;
    assert_eq!(term.status, 204);
    let b6 = c.next_events().await;
    let deleted = find_event(&b6, "participantMessaging", "deleted");
    assert_eq!(deleted.len(), 2);
    assert_eq!(deleted[0]["in"]["rel"], "participant");
    assert_eq!(deleted[1]["in"]["rel"], "localParticipant");
    assert_eq!(
        find_event(&b6, "messaging", "updated")[0]["_embedded"]["messaging"]["state"],
        "Disconnected"
    );
    assert_eq!(c.get(&remote_pm_href).await.status, 404);
    let again = c.post_bytes(&send, "text/plain", b"late").await;
    assert_eq!(again.status, 409);

    assert_eq!(
        c.send(Method::DELETE, &conv_href, None, None).await.status,
        204
    );
    let b7 = c.next_events().await;
    assert_eq!(find_event(&b7, "conversation", "deleted").len(), 1);
    assert_eq!(c.get(&conv_href).await.status, 404);
}

#[tokio::test]
async fn injected_errors_in_both_representations() {
    let sim = start(7);
    let mut c = User::ready(&sim.url()).await;
    c.control("invite", json!({})).await;
    let b = c.next_events().await;
    let accept = find_event(&b, "messagingInvitation", "started")[0]["_embedded"]["messagingInvitation"]["_links"]["accept"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    c.post_empty(&accept).await;
    let conv = c.first_conversation().await;
    let pm = format!("{conv}/participants/bob@contoso.com/messaging");

    let table: [(u16, Option<&str>, &str); 6] = [
        (500, Some("InvalidExchangeServerVersion"), "ServiceFailure"),
        (409, Some("AlreadyExists"), "Conflict"),
        (409, Some("TooManyGroups"), "Conflict"),
        (409, Some("None"), "Conflict"),
        (410, Some("CannotRedirect"), "Gone"),
        (404, Some("ApplicationNotFound"), "NotFound"),
    ];
    for (status, subcode, code) in table {
        for xml in [false, true] {
            let r = c
                .control("errors", json!({"method":"GET","rel":"participantMessaging","status":status,"subcode":subcode}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            let got = if xml {
                c.get_xml(&pm).await
            } else {
                c.get(&pm).await
            };
            assert_eq!(got.status.as_u16(), status);
            if xml {
                assert_eq!(
                    got.header("content-type").unwrap_or_default(),
                    format!("{XML}; charset=utf-8")
                );
                let o = xml_outline(&got.text());
                assert_eq!(o[0].0, "reason");
                assert!(
                    o.contains(&("code".into(), String::new(), code.into())),
                    "{o:?}"
                );
                assert!(o.contains(&("subcode".into(), String::new(), subcode.unwrap().into())));
            } else {
                assert_eq!(
                    got.header("content-type").unwrap_or_default(),
                    "application/json; charset=utf-8"
                );
                let v = got.expect_json();
                assert_eq!(v["code"], code);
                assert_eq!(v["subcode"], subcode.unwrap());
                assert!(v["message"].is_string());
            }
            // Only the next matching request.
            assert_eq!(c.get(&pm).await.status, 200);
        }
    }
    // By path, for a POST, and with a count.
    let r = c
        .control("errors", json!({"path": format!("{}{}", c.base(), c.app) + "/me/reportMyActivity", "status":503, "times":2}))
        .await;
    assert_eq!(r.status, 200);
    let rma = format!("{}/me/reportMyActivity", c.app);
    assert_eq!(c.get(&pm).await.status, 200, "path does not match");
    assert_eq!(c.post_empty(&rma).await.status, 503);
    assert_eq!(c.post_empty(&rma).await.status, 503);
    assert_eq!(c.post_empty(&rma).await.status, 204);
    // Bad injections are refused.
    assert_eq!(
        c.control("errors", json!({"status":200,"rel":"me"}))
            .await
            .status,
        400
    );
    assert_eq!(c.control("errors", json!({"status":500})).await.status, 400);
    assert_eq!(c.control("errors", json!({"status":"x"})).await.status, 400);
    assert_eq!(c.control("nothing", json!({})).await.status, 404);
}

#[tokio::test]
async fn pget_semantics() {
    let sim = start(8);
    let mut c = User::ready(&sim.url()).await;

    // Timeout: an empty batch with just the links, after timeout × time_scale.
    let t0 = Instant::now();
    let r = c.get(&format!("{}&timeout=300", c.events)).await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "{waited:?} {} {}",
        r.status,
        r.text()
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let v = r.expect_json();
    assert_eq!(v["sender"], json!([]));
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["_links", "sender"]
    );
    assert!(
        v["_links"]["self"]["href"]
            .as_str()
            .unwrap()
            .ends_with("/events?ack=2")
    );
    assert!(
        v["_links"]["next"]["href"]
            .as_str()
            .unwrap()
            .ends_with("/events?ack=3")
    );
    c.follow_next(&v);
    // Clamped below to 180 s (180 ms here), and remembered.
    let t0 = Instant::now();
    let again = c.get(&format!("{}&timeout=1", c.events)).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    // The same pending ack gets the same batch (that it comes at once, unheld, is checked
    // on the real clock in `pget_held_until_events_or_replaced`).
    let same = c.get(&format!("{}&timeout=1800", c.events)).await;
    assert_eq!(same.text(), again.text());
    c.follow_next(&again.expect_json());

    // A timed-out XML batch is empty too.
    let x = c.get_xml(&format!("{}&timeout=180", c.events)).await;
    assert_eq!(x.status, 200);
    let o = xml_outline(&x.text());
    assert_eq!(o[0].0, "events");
    assert!(o.contains(&("link".into(), "next".into(), String::new())));
    assert!(
        !o.iter().any(|e| e.0 == "sender"),
        "timed-out XML batch is empty: {o:?}"
    );

    // Wrong ack: only _links.resync, pointing at the first unacknowledged batch.
    let wrong = c
        .get(&format!("{}/events?ack=999", c.app))
        .await
        .expect_json();
    assert_eq!(
        wrong.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["_links"]
    );
    assert_eq!(
        wrong["_links"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["resync"]
    );
    let resync = wrong["_links"]["resync"]["href"].as_str().unwrap();
    assert_eq!(resync, c.events.as_str());
    let stale = c
        .get(&format!("{}/events?ack=1", c.app))
        .await
        .expect_json();
    assert_eq!(stale["_links"]["resync"]["href"], c.events.as_str());
    let xml = c.get_xml(&format!("{}/events?ack=0", c.app)).await;
    assert!(xml_outline(&xml.text()).contains(&("link".into(), "resync".into(), String::new())));
}

/// Holding, waking and replacing P-GETs on the real clock: a held P-GET here lasts its full
/// `timeout` (1800 s), so no amount of load between two requests of the test can time it out
/// and turn the batch the test waits for into an empty one. Events, a newer P-GET or the
/// simulator's shutdown (when `sim` drops) release it.
#[tokio::test]
async fn pget_held_until_events_or_replaced() {
    let sim = start_real_clock(8);
    let mut c = User::ready(&sim.url()).await;

    // Hold until events are due.
    let held = {
        let mut c = c.clone();
        tokio::spawn(async move { c.get(&format!("{}&timeout=1800", c.events)).await })
    };
    wait_held(&mut c, true).await;
    assert_eq!(c.control("invite", json!({})).await.status, 200);
    let r = held.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        find_event(&r.expect_json(), "messagingInvitation", "started").len(),
        1
    );
    let pending_ack = c.events.clone();
    c.follow_next(&r.expect_json());
    // The ack of that batch asked again: the same batch, identical bytes, at once (held,
    // it would wait 1800 s).
    let replay = c.get(&pending_ack).await;
    assert_eq!(replay.text(), r.text());

    // Replacement: a second P-GET releases the first with 409 PGetReplaced.
    let next = c.next_events().await; // participant added (queued unit)
    assert_eq!(flat(&next)[0].1, "participant");
    let first = {
        let mut c = c.clone();
        tokio::spawn(async move { c.get(&format!("{}&timeout=1800", c.events)).await })
    };
    wait_held(&mut c, true).await;
    let second = {
        let mut c = c.clone();
        tokio::spawn(async move { c.get_xml(&c.events.clone()).await })
    };
    let r1 = first.await.unwrap();
    assert_eq!(r1.status, 409);
    assert_eq!(r1.expect_json()["subcode"], "PGetReplaced");
    // The first was released because the second took its place: events release that one.
    wait_held(&mut c, true).await;
    assert_eq!(
        c.control("invite", json!({"from":"dave@contoso.com"}))
            .await
            .status,
        200
    );
    let r2 = second.await.unwrap();
    assert_eq!(r2.status, 200);
    let o = xml_outline(&r2.text());
    assert_eq!(o[0].0, "events");
    assert!(o.contains(&("link".into(), "next".into(), String::new())));
    assert!(
        o.iter()
            .any(|e| e.0 == "started" && e.1 == "messagingInvitation"),
        "{o:?}"
    );
    let text = r2.text();
    let doc = roxmltree::Document::parse(&text).unwrap();
    c.events = doc
        .descendants()
        .find(|n| n.has_tag_name((NS, "link")) && n.attribute("rel") == Some("next"))
        .and_then(|n| n.attribute("href"))
        .unwrap()
        .to_string();
    let rest = c.next_events().await; // dave's participant added (queued unit)
    assert_eq!(flat(&rest)[0].1, "participant");

    // A client hanging up during a held P-GET breaks nothing.
    let impatient = c
        .ucwa
        .request(Method::GET, &format!("{}&timeout=1800", c.events))
        .send();
    let err = tokio::time::timeout(Duration::from_millis(30), impatient).await;
    assert!(
        err.is_err(),
        "the request should have timed out on the client side"
    );
    assert_eq!(
        c.control("invite", json!({"from":"erin@contoso.com"}))
            .await
            .status,
        200
    );
    let after = c.next_events().await;
    assert_eq!(
        find_event(&after, "messagingInvitation", "started").len(),
        1
    );
}

/// Wait (polling the control API) until the simulator does or does not hold a P-GET.
async fn wait_held(c: &mut User, held: bool) {
    // Generous: on a loaded machine the spawned P-GET may take a while to arrive.
    for _ in 0..4000 {
        let s = c.sim_state().await;
        if s["applications"][0]["heldPGet"] == held {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the P-GET was never held");
}

#[tokio::test]
async fn bad_input_gets_ucwa_errors() {
    let sim = start(9);
    let mut c = User::ready(&sim.url()).await;
    let r = c.get(&format!("{}/nothing/here", c.app)).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.expect_json()["code"], "NotFound");
    let r = c.get_xml("/no/such/thing").await;
    assert_eq!(r.status, 404);
    assert_eq!(xml_outline(&r.text())[0].0, "reason");

    let r = c
        .post_bytes(
            "/ucwa/oauth/v1/applications",
            "application/json",
            b"{\"UserAgent\":",
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.expect_json()["code"], "BadRequest");
    let r = c
        .post_bytes("/ucwa/oauth/v1/applications", "text/csv", b"a,b")
        .await;
    assert_eq!(r.status, 415);
    assert_eq!(r.expect_json()["code"], "UnsupportedMediaType");
    let r = c.get(&format!("{}/me/makeMeAvailable", c.app)).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.expect_json()["code"], "MethodNotAllowed");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = c.send(Method::PUT, &c.app.clone(), None, None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, DELETE"));

    let r = c
        .post_json(
            &format!("{}/communication/messagingInvitations", c.app),
            json!({"to": 5}),
        )
        .await;
    assert_eq!(r.status, 400);
    c.post_json(
        &format!("{}/communication/messagingInvitations", c.app),
        json!({"to":"sip:bob@contoso.com"}),
    )
    .await;
    let conv = c.first_conversation().await;
    let r = c
        .post_bytes(
            &format!("{conv}/messaging/messages"),
            "application/octet-stream",
            &[0, 1],
        )
        .await;
    assert_eq!(r.status, 415);
    let r = c.get(&format!("{conv}/messaging/messages/77")).await;
    assert_eq!(r.status, 404);
    let r = c
        .get(&format!("{conv}/participants/nobody@contoso.com"))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(c.control("invite", json!({"from": 3})).await.status, 400);
    let raw = c
        .ucwa
        .request(Method::POST, "/_sim/join")
        .no_token()
        .untyped_body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status, 400);

    // XML request bodies (UCWA 1.0 `<input>`) are understood.
    let xml_app = c
        .send(
            Method::POST,
            "/ucwa/oauth/v1/applications",
            Some(XML),
            Some((XML, br#"<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="culture">en-US</property><property name="endpointId">xml-1</property><property name="userAgent">x</property></input>"#.to_vec())),
        )
        .await;
    assert_eq!(xml_app.status, 201, "{}", xml_app.text());
    assert_eq!(xml_outline(&xml_app.text())[0].1, "application");
}

/// Every response of a fixed script, as bytes with the listener's origin replaced.
async fn script(seed: u64) -> Vec<String> {
    // The real clock: the P-GET held across a POST below must not time out first.
    let sim = start_real_clock(seed);
    let base = sim.url();
    let mut out = Vec::new();
    let mut record = |r: &Reply| {
        let mut s = format!("{}\n", r.status);
        // `connection` is hyper's, not the simulator's: a response written after the
        // shutdown began (the last P-GET below) may carry `connection: close`.
        for (k, v) in r.headers.iter().filter(|(k, _)| *k != "connection") {
            s.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
        }
        s.push('\n');
        s.push_str(&r.text());
        out.push(s.replace(&base, "ORIGIN"));
    };
    let mut c = User::new(&base);
    record(&c.get("/").await);
    record(
        &c.get("/Autodiscover/AutodiscoverService.svc/root/oauth/user")
            .await,
    );
    let t = c.token_for("alice@contoso.com", "Pa55w0rd%21", None).await;
    record(&t);
    c.ucwa.set_token(Some(
        t.expect_json()["access_token"]
            .as_str()
            .unwrap()
            .to_string(),
    ));
    record(&c.create_app().await);
    record(
        &c.post_json(&format!("{}/me/makeMeAvailable", c.app), json!({}))
            .await,
    );
    let feed = |c: &User| {
        let href = c.events.clone();
        let mut c = c.clone();
        async move { c.get(&href).await }
    };
    let r = feed(&c).await;
    c.follow_next(&r.expect_json());
    record(&r);
    let r = c
        .post_json(
            &format!("{}/communication/messagingInvitations", c.app),
            json!({"to":"sip:bob@contoso.com","operationId":"op-1"}),
        )
        .await;
    record(&r);
    for _ in 0..2 {
        let r = feed(&c).await;
        c.follow_next(&r.expect_json());
        record(&r);
    }
    let conv = c.first_conversation().await;
    let m = c
        .post_bytes(
            &format!("{conv}/messaging/messages"),
            "text/plain",
            b"hello",
        )
        .await;
    record(&m);
    let r = feed(&c).await;
    c.follow_next(&r.expect_json());
    record(&r);
    record(&c.get(m.header("location").unwrap_or_default()).await);
    record(
        &c.get_xml(&format!("{conv}/participants/bob@contoso.com/messaging"))
            .await,
    );
    c.control(
        "errors",
        json!({"rel":"conversation","status":409,"subcode":"TooManyGroups"}),
    )
    .await;
    record(&c.get(&conv).await);
    record(&c.post_empty(&format!("{conv}/messaging/terminate")).await);
    let r = feed(&c).await;
    c.follow_next(&r.expect_json());
    record(&r);
    // A P-GET held while another request changes state, as real clients do.
    let held = {
        let mut c = c.clone();
        tokio::spawn(async move { c.get(&format!("{}&timeout=1800", c.events)).await })
    };
    wait_held(&mut c, true).await;
    let r = c
        .post_json(
            &format!("{}/communication/messagingInvitations", c.app),
            json!({"to":"sip:carol@contoso.com"}),
        )
        .await;
    let pget = held.await.unwrap();
    assert_eq!(
        find_event(&pget.expect_json(), "messagingInvitation", "started").len(),
        1
    );
    record(&r);
    record(&pget);
    c.follow_next(&pget.expect_json());
    // The carol invitation's second unit, then a P-GET with nothing due, released empty by
    // the simulator's shutdown (the same release as a timeout, without racing one).
    let r = feed(&c).await;
    c.follow_next(&r.expect_json());
    record(&r);
    let held = {
        let mut c = c.clone();
        tokio::spawn(async move { c.get(&format!("{}&timeout=180", c.events)).await })
    };
    wait_held(&mut c, true).await;
    tokio::task::spawn_blocking(move || drop(sim))
        .await
        .unwrap();
    let empty = held.await.unwrap();
    assert_eq!(empty.expect_json()["sender"], json!([]), "{}", empty.text());
    record(&empty);
    out
}

#[tokio::test]
async fn same_seed_same_bytes() {
    let (a, b) = tokio::join!(script(42), script(42));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    assert!(
        a.iter().all(|r| r.contains("\ndate: Mon, 01 Jan 2024 ")),
        "simulated Date on every response"
    );
    let c = script(43).await;
    assert_ne!(a, c, "another seed gives other ids");
}

#[cfg(unix)]
#[test]
fn simulate_command_prints_its_url_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_ucwa-replay"))
        .args(["-q", "simulate", "--listen", "127.0.0.1:0", "--seed", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary runs");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);

    let resp = raw::request(
        ([127, 0, 0, 1], port).into(),
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((resp.version.as_str(), resp.status), ("HTTP/1.1", 200));
    assert!(
        resp.text().contains("http://x/Autodiscover/"),
        "{}",
        resp.text()
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "{code:?}");
            break;
        }
        assert!(Instant::now() < deadline, "simulate did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn shutdown_releases_held_pgets_at_once() {
    // Real clock: without the release, this P-GET would be held for 1800 s.
    let sim = SimServer::start(SimConfig {
        seed: 10,
        time_scale: 1.0,
    })
    .unwrap();
    let mut c = User::ready(&sim.url()).await;
    c.events = format!("{}&timeout=1800", c.events);
    let held = {
        let mut c = c.clone();
        tokio::spawn(async move { c.get(&c.events.clone()).await })
    };
    wait_held(&mut c, true).await;
    let t0 = Instant::now();
    tokio::task::spawn_blocking(move || drop(sim))
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("released")
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(r.status, 200);
    assert_eq!(r.expect_json()["sender"], json!([]));
}

#[tokio::test]
async fn batch_answers_each_part() {
    let sim = start(11);
    let mut c = User::ready(&sim.url()).await;
    let app_id = c.app.rsplit('/').next().unwrap().to_string();
    let b = "77f2569d-c005-442b-b856-782305305e5f";
    let body = format!(
        "--{b}\r\nContent-Type: application/http; msgtype=request\r\n\r\nGET {app}/me HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n\
         --{b}\r\nContent-Type: application/http; msgtype=request\r\n\r\nGET {app}/communication HTTP/1.1\r\nHost: x\r\nAccept: application/xml\r\n\r\n\
         --{b}\r\nContent-Type: application/http; msgtype=request\r\n\r\nGET {app}/events?ack=2 HTTP/1.1\r\nHost: x\r\n\r\n\
         --{b}--\r\n",
        app = c.app
    );
    let r = c
        .send(
            Method::POST,
            &format!("{}/batch", c.app),
            Some("multipart/batching"),
            Some((
                &format!("multipart/batching;boundary={b}"),
                body.into_bytes(),
            )),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ct = r.header("content-type").unwrap_or_default().to_string();
    assert!(ct.starts_with("multipart/batching; boundary=\""), "{ct}");
    let out_b = ct.split('"').nth(1).unwrap();
    let text = r.text();
    let parts: Vec<&str> = text.split(&format!("--{out_b}")).skip(1).collect();
    assert_eq!(parts.len(), 4, "{}", r.text());
    assert!(parts[3].starts_with("--"));
    assert!(parts[0].contains("msgtype=response"));
    assert!(parts[0].contains("HTTP/1.1 200 OK\r\n"));
    assert!(parts[0].contains(&format!(
        "\"self\":{{\"href\":\"/ucwa/oauth/v1/applications/{app_id}/me\"}}"
    )));
    assert!(parts[1].contains("Content-Type: application/xml; charset=utf-8"));
    assert!(parts[1].contains("<resource rel=\"communication\""));
    assert!(parts[2].contains("HTTP/1.1 400 Bad Request"));
    // Wrong content type for a batch.
    let r = c
        .post_bytes(&format!("{}/batch", c.app), "application/json", b"{}")
        .await;
    assert_eq!(r.status, 415);
}

#[tokio::test]
async fn pget_priority_decides_which_request_stays() {
    // The real clock: the held P-GETs must stay held until the test releases them.
    let sim = start_real_clock(12);
    let mut c = User::ready(&sim.url()).await;
    let high = {
        let mut c = c.clone();
        tokio::spawn(async move {
            c.get(&format!("{}&timeout=1800&priority=5", c.events))
                .await
        })
    };
    wait_held(&mut c, true).await;
    let low = c.get(&format!("{}&priority=1", c.events)).await;
    assert_eq!(low.status, 409);
    assert_eq!(low.expect_json()["subcode"], "PGetReplaced");
    let higher = {
        let mut c = c.clone();
        tokio::spawn(async move { c.get(&format!("{}&timeout=180&priority=9", c.events)).await })
    };
    let r = high.await.unwrap();
    assert_eq!(r.status, 409, "the higher priority replaces the held one");
    // The higher one is held now: events release it.
    wait_held(&mut c, true).await;
    assert_eq!(c.control("invite", json!({})).await.status, 200);
    let r = higher.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        find_event(&r.expect_json(), "messagingInvitation", "started").len(),
        1
    );
}
