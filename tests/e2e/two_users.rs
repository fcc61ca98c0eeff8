//! Two users in one recorded session (a sender and a receiver, two bots): recorded through
//! the real `record` binary against the simulator, replayed by the real `replay` binary;
//! each user gets back the answers recorded for them.

use std::time::Duration;

use http::Method;
use serde_json::json;
use ucwa_replay::demo::UcwaClient;
use ucwa_replay::ucwa::Representation;

use crate::util::{ReplyExt, Server};

struct User {
    name: &'static str,
    endpoint: &'static str,
}

const USERS: [User; 2] = [
    User {
        name: "alice@contoso.com",
        endpoint: "0b5cf6a2-2c2f-4a4c-9d7e-6f1d9a0c1e11",
    },
    User {
        name: "bob@contoso.com",
        endpoint: "9d2e41b0-7e55-4f0e-8a1b-2c3d4e5f6a7b",
    },
];

/// Sign in from autodiscover and create an application; returns (token, transcript of
/// (status, body) of every step).
async fn sign_in(base: &str, user: &User) -> (String, Vec<(u16, String)>) {
    let mut c = UcwaClient::new(base, Representation::Json);
    let mut seen = Vec::new();
    let root = c
        .request(Method::GET, "/")
        .send()
        .await
        .unwrap()
        .expect_json();
    let user_href = root["_links"]["user"]["href"].as_str().unwrap().to_string();
    let form = format!(
        "grant_type=password&username={}&password={}",
        user.name.replace('@', "%40"),
        ucwa_replay::sim::PASSWORD.replace('!', "%21")
    );
    let r = c
        .request(Method::POST, "/WebTicket/oauthtoken")
        .body("application/x-www-form-urlencoded", form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.expect_json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    c.set_token(Some(token.clone()));
    let r = c.request(Method::GET, &user_href).send().await.unwrap();
    let doc = r.expect_json();
    seen.push((r.status.as_u16(), doc.to_string()));
    let apps = doc["_links"]["applications"]["href"].as_str().unwrap();
    let r = c
        .request(Method::POST, apps)
        .body(
            "application/json",
            json!({"UserAgent":"two-users","EndpointId":user.endpoint,"Culture":"en-US"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let app = r.expect_json();
    assert_eq!(r.status, 201, "{app}");
    let me = app["_embedded"]["me"]["_links"]["self"]["href"]
        .as_str()
        .unwrap();
    seen.push((r.status.as_u16(), app.to_string()));
    let r = c.request(Method::GET, me).send().await.unwrap();
    seen.push((r.status.as_u16(), r.text()));
    (token, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_gets_their_own_answers_on_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("two.sqlite");
    let mut sim = Server::start(&["simulate", "--listen", "127.0.0.1:0", "--seed", "21"]);
    let mut rec = Server::record(&sim.url, &db, "two", &[]);
    let mut recorded = Vec::new();
    for user in &USERS {
        recorded.push(sign_in(&rec.url, user).await);
    }
    assert_ne!(recorded[0].0, recorded[1].0, "two tokens");
    assert!(rec.terminate(Duration::from_secs(20)).success());
    assert!(sim.terminate(Duration::from_secs(20)).success());
    // The `me` of each user names that user.
    assert!(
        recorded[0].1[2].1.contains("alice"),
        "{}",
        recorded[0].1[2].1
    );
    assert!(recorded[1].1[2].1.contains("bob"), "{}", recorded[1].1[2].1);

    // Replay: each user gets the placeholder token recorded for them and, with it, their
    // own answers. The usernames are secrets (redacted), so the two token POSTs are told
    // apart by recorded order only: users sign in again in the order they did then.
    let mut replay = Server::replay(&db, &[]);
    for (i, user) in USERS.iter().enumerate() {
        let (token, seen) = sign_in(&replay.url, user).await;
        assert!(token.starts_with("cwt=REDACTED-"), "{token}");
        let origin = |s: &str, from: &str| s.replace(from, "BASE");
        let want: Vec<(u16, String)> = recorded[i]
            .1
            .iter()
            .map(|(st, b)| (*st, origin(b, &rec.url)))
            .collect();
        let got: Vec<(u16, String)> = seen
            .iter()
            .map(|(st, b)| (*st, origin(b, &replay.url)))
            .collect();
        assert_eq!(got, want, "{}", user.name);
    }
    assert!(replay.terminate(Duration::from_secs(20)).success());
    assert!(replay.stderr().contains("0 misses"), "{}", replay.stderr());
}
