//! The session being replayed and where sessions come from: a recording file, or exchanges
//! held in memory (an NDJSON export, a HAR, exchanges built by hand). `POST /_replay/session`
//! switches to another session of the same source.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::index::Index;
use crate::error::{Error, StoreError};
use crate::recording::headers::ResponseRules;
use crate::recording::{Exchange, KeyOptions, OriginRewriter, SessionInfo, Upstreams};
use crate::store::Recording;

/// Where the sessions of a replay come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A recording file, read again when another session is asked for.
    File(PathBuf),
    /// Sessions held in memory; `name` names them in reports.
    Memory {
        name: String,
        sessions: Vec<(SessionInfo, Vec<Exchange>)>,
    },
}

impl Source {
    /// How reports name the recording.
    pub fn name(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Memory { name, .. } => name.clone(),
        }
    }

    /// The session `name` (the only one when `None`) and its exchanges in `seq` order.
    pub fn read(&self, name: Option<&str>) -> Result<(SessionInfo, Vec<Exchange>), Error> {
        match self {
            Source::File(path) => {
                let recording = Recording::open(path)?;
                let info = recording.session(name)?;
                let exchanges = recording.exchanges(&info)?;
                Ok((info, exchanges))
            }
            Source::Memory {
                name: source,
                sessions,
            } => {
                let available = || sessions.iter().map(|(s, _)| s.name.clone()).collect();
                let found = match name {
                    Some(n) => sessions.iter().find(|(s, _)| s.name == n),
                    None if sessions.len() == 1 => sessions.first(),
                    None => {
                        return Err(StoreError::AmbiguousSession {
                            path: PathBuf::from(source),
                            available: available(),
                        }
                        .into());
                    }
                };
                found.cloned().ok_or_else(|| {
                    StoreError::NoSession {
                        path: PathBuf::from(source),
                        name: name.unwrap_or_default().to_string(),
                        available: available(),
                    }
                    .into()
                })
            }
        }
    }
}

/// One session, indexed and ready to answer.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub session: SessionInfo,
    pub index: Index,
    pub upstreams: Upstreams,
    /// The response-head rules for the last public base answered at (a replay is normally
    /// reached at one base, so they are built once rather than per response).
    head_rules: Mutex<Option<(String, Arc<ResponseRules>)>>,
}

impl Loaded {
    /// Index `exchanges`; `recompute` computes keys with `key_options` instead of reading
    /// the stored ones (`--ignore-body-field`).
    pub fn new(
        session: SessionInfo,
        exchanges: Vec<Exchange>,
        key_options: &KeyOptions,
        recompute: bool,
    ) -> Result<Self, Error> {
        let upstreams =
            Upstreams::parse(&session.upstream, &session.also_upstreams).map_err(|e| {
                Error::invalid_because(
                    "recording",
                    format!(
                        "session {:?} records an upstream that is not an origin",
                        session.name
                    ),
                    e,
                )
            })?;
        Ok(Loaded {
            session,
            index: Index::build(exchanges, key_options, recompute),
            upstreams,
            head_rules: Mutex::new(None),
        })
    }

    /// The origin rewriter for a replay reachable at `public_base`.
    pub fn rewriter(&self, public_base: &str) -> OriginRewriter {
        OriginRewriter::to_public(&self.upstreams.main, &self.upstreams.also, public_base)
    }

    /// The same head rewriting as the recording proxy (hop-by-hop fields, Via, origins in
    /// Location / WWW-Authenticate / …, cookie domains), built once per `public_base`.
    pub fn head_rules(&self, public_base: &str) -> Arc<ResponseRules> {
        let mut cached = self.head_rules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((base, rules)) = cached.as_ref()
            && base == public_base
        {
            return rules.clone();
        }
        let rules = Arc::new(ResponseRules {
            to_public: self.rewriter(public_base),
            upstream_hosts: self.upstreams.all().map(|o| o.host.clone()).collect(),
        });
        *cached = Some((public_base.to_string(), rules.clone()));
        rules
    }
}
