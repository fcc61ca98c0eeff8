//! What the proxy and the replayer cost per request, and how fast a replay server starts
//! (`cargo bench --bench serve`).
//!
//! Every figure is a median over several rounds and is printed next to a baseline measured in
//! the same run, as a ratio: absolute numbers on two shared cores mean little.
//! - request latency: the same GET (participantMessaging, JSON) sent sequentially to the
//!   simulator directly (baseline), through the recording proxy (forward + tee + redact +
//!   classify + key + SQLite writer), and to a replay of that recording;
//! - replay start-up for a 10 000-exchange session, against the baseline of just loading the
//!   session from SQLite.
//!
//! No assertions: a report.

use std::path::Path;
use std::time::{Duration, Instant};

use ucwa_replay::demo::{ScriptOptions, UcwaClient, record_session};
use ucwa_replay::proxy::{ProxyConfig, RecordingProxy};
use ucwa_replay::recording::{Exchange, HeaderList};
use ucwa_replay::recording::{KeyOptions, KeyRequest, Origin};
use ucwa_replay::replay::{FeedEnd, ReplayServer};
use ucwa_replay::serve::CancellationToken;
use ucwa_replay::sim::{SimConfig, SimServer};
use ucwa_replay::store::{NewSession, Recording, StoreWriter};
use ucwa_replay::ucwa::Representation;

mod common;
use common::{empty_exchange, median};

const REQUESTS: usize = 300;
const ROUNDS: usize = 5;
const STARTUP_EXCHANGES: u64 = 10_000;

/// Sign in and find a participantMessaging href on `base` (simulator or proxy).
async fn signed_in(base: &str) -> (UcwaClient, String) {
    let run = ucwa_replay::demo::run_im_session(base, &ScriptOptions::default())
        .await
        .expect("script");
    let href = run
        .events
        .iter()
        .find(|e| e.link_rel == "participantMessaging")
        .map(|e| e.link_href.clone())
        .expect("participantMessaging href");
    let mut client = UcwaClient::new(base, Representation::Json);
    client.set_token(Some(run.token));
    (client, href)
}

async fn time_gets(client: &mut UcwaClient, href: &str) -> Duration {
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let reply = client
            .send(http::Method::GET, href, None)
            .await
            .expect("GET");
        assert!(reply.status.is_success() || reply.status.as_u16() == 404);
    }
    start.elapsed() / REQUESTS as u32
}

fn startup_recording(db: &Path, rt: &tokio::runtime::Runtime) {
    let writer = StoreWriter::create(
        db,
        &NewSession {
            name: "big".into(),
            upstream: "https://fe1.contoso.com".into(),
            also_upstreams: vec![],
            replace: true,
        },
    )
    .unwrap();
    let sink = writer.sink();
    rt.block_on(async {
        for seq in 1..=STARTUP_EXCHANGES {
            let path = format!(
                "/ucwa/oauth/v1/applications/1/communication/conversations/{}/participants/u{}/messaging",
                seq / 20,
                seq % 20
            );
            let key = KeyRequest::new("GET", &path).key(&KeyOptions::default());
            sink.submit(Exchange {
                seq,
                method: "GET".into(),
                path: path.clone(),
                http_version: "HTTP/1.1".into(),
                request_headers: HeaderList::default(),
                status: Some(200),
                response_headers: HeaderList(vec![(
                    "content-type".into(),
                    b"application/json".to_vec(),
                )]),
                response_body: format!(
                    r#"{{"rel":"participantMessaging","_links":{{"self":{{"href":"{path}"}}}}}}"#
                )
                .into_bytes(),
                kind: "participantMessaging".into(),
                representation: Representation::Json,
                match_key: key,
                ..empty_exchange()
            });
        }
        drop(sink);
        writer.finish().await.unwrap();
    });
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.sqlite");

    // Request latency: simulator direct, through the recording proxy, from a replay.
    let sim = SimServer::start(SimConfig {
        seed: 3,
        time_scale: 0.001,
    })
    .unwrap();
    let (mut direct_rounds, mut proxy_rounds, mut replay_rounds) = (vec![], vec![], vec![]);
    rt.block_on(async {
        // A recording to replay: the IM script plus REQUESTS × ROUNDS GETs of one resource.
        record_session(&db, "script", 3, &ScriptOptions::default())
            .await
            .unwrap();
        let (mut direct, href) = signed_in(&sim.url()).await;
        let upstream = Origin::parse(&sim.url()).unwrap();
        let writer = StoreWriter::create(
            &db,
            &NewSession {
                name: "bench".into(),
                upstream: upstream.base(),
                also_upstreams: vec![],
                replace: true,
            },
        )
        .unwrap();
        let proxy = RecordingProxy::new(ProxyConfig::new(upstream)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let running = tokio::spawn(proxy.run(listener, None, writer.sink(), stop.clone()));
        let (mut via_proxy, proxy_href) = signed_in(&proxy_url).await;
        for _ in 0..ROUNDS {
            direct_rounds.push(time_gets(&mut direct, &href).await);
            proxy_rounds.push(time_gets(&mut via_proxy, &proxy_href).await);
        }
        stop.cancel();
        running.await.unwrap().unwrap();
        writer.finish().await.unwrap();

        let server = ReplayServer::builder(&db, "bench")
            .feed_end(FeedEnd::Empty)
            .start()
            .unwrap();
        let (mut replayed, replay_href) = signed_in(&server.url()).await;
        for _ in 0..ROUNDS {
            replay_rounds.push(time_gets(&mut replayed, &replay_href).await);
        }
        tokio::task::spawn_blocking(move || drop(server))
            .await
            .unwrap();
    });
    drop(sim);
    let direct = median(direct_rounds);
    let proxied = median(proxy_rounds);
    let replayed = median(replay_rounds);
    println!("request latency, {REQUESTS} sequential GETs × {ROUNDS} rounds (median per request):");
    println!("  simulator direct (baseline)  {direct:>10.2?}");
    println!(
        "  through the recording proxy  {proxied:>10.2?}  ratio {:.2}",
        proxied.as_secs_f64() / direct.as_secs_f64()
    );
    println!(
        "  from a replay                {replayed:>10.2?}  ratio {:.2}",
        replayed.as_secs_f64() / direct.as_secs_f64()
    );

    // Replay start-up against loading the same session.
    let big = dir.path().join("big.sqlite");
    startup_recording(&big, &rt);
    let mut load = vec![];
    let mut start = vec![];
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let rec = Recording::open(&big).unwrap();
        let s = rec.session(Some("big")).unwrap();
        let all = rec.exchanges(&s).unwrap();
        assert_eq!(all.len() as u64, STARTUP_EXCHANGES);
        load.push(t.elapsed());
        let t = Instant::now();
        let server = ReplayServer::builder(&big, "big").start().unwrap();
        start.push(t.elapsed());
        drop(server);
    }
    let load = median(load);
    let start = median(start);
    println!("replay start-up, {STARTUP_EXCHANGES} exchanges (median of {ROUNDS}):");
    println!("  load the session (baseline)  {load:>10.2?}");
    println!(
        "  start a replay server        {start:>10.2?}  ratio {:.2}",
        start.as_secs_f64() / load.as_secs_f64()
    );
}
