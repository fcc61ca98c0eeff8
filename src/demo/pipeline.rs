//! The `demo` pipeline: simulator → record (through the real proxy, into SQLite) → replay
//! (driven by the same client) → diff. Each step is checked, not just run, and reported as
//! a [`Step`]; the command prints them as a table.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::script::{ScriptOptions, ScriptRun, normalise_transcript, run_im_session};
use crate::diff::{DiffOptions, NormalizeOptions, diff_sessions};
use crate::error::{Error, plural};
use crate::proxy::{ProxyConfig, RecordingProxy};
use crate::recording::Origin;
use crate::replay::{FeedEnd, ReplayServer};
use crate::serve::CancellationToken;
use crate::sim::{SimConfig, SimServer};
use crate::store::{NewSession, Recording, StoreWriter};
use crate::ucwa::Representation;

/// What the demo is run with.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The recording file (sessions `demo`, `demo-xml`, `demo-again` are replaced).
    pub db: PathBuf,
    /// Simulator seed of the first recording; the second uses `seed + 1`.
    pub seed: u64,
}

/// One checked step of the demo.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub step: String,
    pub detail: String,
    pub ok: bool,
    pub millis: u128,
}

/// Why the demo could not run at all (a failed check is a [`Step`] with `ok: false`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    #[error(transparent)]
    Lib(#[from] Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{step}")]
    Client {
        step: String,
        #[source]
        source: super::ClientError,
    },
    #[error("cannot start a server")]
    Io(#[from] std::io::Error),
}

fn sim(seed: u64) -> std::io::Result<SimServer> {
    SimServer::start(SimConfig {
        seed,
        // A 180 s P-GET timeout lasts 180 ms.
        time_scale: 0.001,
    })
}

/// Record one run of the IM script against a fresh simulator into `session`, the
/// simulator playing the remote side (whatever `opts.remote_side` says).
pub async fn record_session(
    db: &Path,
    session: &str,
    seed: u64,
    opts: &ScriptOptions,
) -> Result<(ScriptRun, u64), DemoError> {
    let simulator = sim(seed)?;
    let upstream = Origin::parse(&simulator.url())?;
    let writer = StoreWriter::create(
        db,
        &NewSession {
            name: session.to_string(),
            upstream: upstream.base(),
            also_upstreams: vec![],
            replace: true,
        },
    )?;
    let proxy = RecordingProxy::new(ProxyConfig::new(upstream))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let running = tokio::spawn(proxy.run(listener, None, writer.sink(), stop.clone()));
    // The client talks to the proxy; the remote side is played on the simulator itself, so
    // the recording holds only what a client sends.
    let opts = ScriptOptions {
        remote_side: super::RemoteSide::Simulator(simulator.url()),
        ..opts.clone()
    };
    let run = run_im_session(&base, &opts).await;
    stop.cancel();
    let stats = running
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    writer.finish().await?;
    let run = run.map_err(|source| DemoError::Client {
        step: format!("record {session}"),
        source,
    })?;
    Ok((run, stats.exchanges))
}

/// Run the whole demo; the steps say what was checked and whether it held.
pub async fn run_demo(options: &DemoOptions) -> Result<Vec<Step>, DemoError> {
    let mut steps = Vec::new();
    let json = ScriptOptions::default();
    let xml = ScriptOptions {
        representation: Representation::Xml,
        ..ScriptOptions::default()
    };

    // 1. Record: the same script in JSON and in XML, and once more on another seed.
    let t = Instant::now();
    let (recorded, exchanges) = record_session(&options.db, "demo", options.seed, &json).await?;
    let pm = recorded
        .events
        .iter()
        .filter(|e| e.link_rel == "participantMessaging")
        .count();
    steps.push(Step {
        step: "record demo (JSON)".into(),
        detail: format!(
            "{}, {} ({pm} participantMessaging) through the recording proxy",
            plural(exchanges, "exchange"),
            plural(recorded.events.len() as u64, "event"),
        ),
        ok: exchanges as usize == recorded.transcript.len() && pm >= 4,
        millis: t.elapsed().as_millis(),
    });
    let t = Instant::now();
    let (xml_run, xml_exchanges) =
        record_session(&options.db, "demo-xml", options.seed, &xml).await?;
    steps.push(Step {
        step: "record demo-xml (XML)".into(),
        detail: format!(
            "{}, {}",
            plural(xml_exchanges, "exchange"),
            plural(xml_run.events.len() as u64, "event")
        ),
        ok: xml_exchanges as usize == xml_run.transcript.len(),
        millis: t.elapsed().as_millis(),
    });
    let t = Instant::now();
    let (_, again) = record_session(&options.db, "demo-again", options.seed + 1, &json).await?;
    steps.push(Step {
        step: "record demo-again".into(),
        detail: format!(
            "{}, simulator seed {}",
            plural(again, "exchange"),
            options.seed + 1
        ),
        ok: again == exchanges,
        millis: t.elapsed().as_millis(),
    });

    // 2. Replay offline and drive the same client: same bytes, nothing missed or unplayed.
    let t = Instant::now();
    // The demo checks the report itself and says what failed: no panic on drop.
    let server = ReplayServer::builder(&options.db, "demo")
        .feed_end(FeedEnd::Empty)
        .verify_on_drop(false)
        .start()?;
    let replayed = run_im_session(&server.url(), &json).await;
    let report = server.report();
    let replay_url = server.url();
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let replayed = replayed.map_err(|source| DemoError::Client {
        step: "replay demo".into(),
        source,
    })?;
    let same = transcripts_match(&recorded, &replayed, &replay_url);
    steps.push(Step {
        step: "replay demo".into(),
        detail: format!(
            "{}, {same} byte-identical to the recorded ones (secrets masked), {}, {} unplayed",
            plural(replayed.transcript.len() as u64, "response"),
            plural(report.misses.len() as u64, "miss"),
            report.unplayed.len()
        ),
        ok: same == recorded.transcript.len()
            && replayed.transcript.len() == recorded.transcript.len()
            && report.is_clean(),
        millis: t.elapsed().as_millis(),
    });

    // 3. Diff: the two JSON recordings (other seed, so other ids) are equal once normalised,
    // and a recording against itself without normalisation too; JSON vs XML are not paired.
    let t = Instant::now();
    let rec = Recording::open(&options.db)?;
    let a = rec.session(Some("demo"))?;
    let b = rec.session(Some("demo-again"))?;
    let normalised = diff_sessions(&rec, &a, &rec, &b, &DiffOptions::default())?;
    let raw = DiffOptions {
        normalize: NormalizeOptions::none(),
        ..DiffOptions::default()
    };
    let raw_report = diff_sessions(&rec, &a, &rec, &b, &raw)?;
    steps.push(Step {
        step: "diff demo demo-again".into(),
        detail: format!(
            "normalised: {}; raw: {}",
            if normalised.is_equal() {
                format!(
                    "equal ({} paired, {} compared)",
                    plural(normalised.summary.paired as u64, "exchange"),
                    plural(normalised.summary.events.equal as u64, "event")
                )
            } else {
                normalised.summary()
            },
            if raw_report.is_equal() {
                "equal, which it should not be"
            } else {
                "the ids differ, as expected"
            }
        ),
        ok: normalised.is_equal() && !raw_report.is_equal(),
        millis: t.elapsed().as_millis(),
    });
    Ok(steps)
}

/// How many responses of the replay equal the recorded ones, byte for byte, once each
/// server's own origin and the secrets (which the replay serves as placeholders) are masked.
fn transcripts_match(recorded: &ScriptRun, replayed: &ScriptRun, replay_url: &str) -> usize {
    let a = normalise_transcript(&recorded.transcript, &recorded.base);
    let b = normalise_transcript(&replayed.transcript, replay_url);
    let secret =
        regex::bytes::Regex::new(r"(cwt=|cwt_ucwa=)[A-Za-z0-9_\-.%]+").expect("static regex");
    let mask = |s: &super::Seen| {
        let body = secret.replace_all(&s.body, &b"${1}SECRET"[..]).into_owned();
        let headers: Vec<(String, Vec<u8>)> = s
            .headers
            .iter()
            .filter(|(n, _)| n != "content-length")
            .map(|(n, v)| {
                (
                    n.clone(),
                    secret.replace_all(v, &b"${1}SECRET"[..]).into_owned(),
                )
            })
            .collect();
        (s.method.clone(), s.target.clone(), s.status, headers, body)
    };
    a.iter().zip(&b).filter(|(x, y)| mask(x) == mask(y)).count()
}
