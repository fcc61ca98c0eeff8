//! The replay options, shared by the CLI flags and the library builder so that both behave
//! the same. Each parses from the flag's text form (`FromStr`) and prints back to it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::fault::FaultRule;
use crate::error::Error;
use crate::recording::KeyOptions;
use crate::redact::RedactConfig;

/// What a repeated request gets once its recorded answers are used up (`--exhausted`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Exhausted {
    /// Serve the last recorded answer again (default): polling clients keep working.
    #[default]
    RepeatLast,
    /// Answer with a UCWA 404 `ReplayExhausted`, counted as a miss: the test sees that the
    /// client asked more often than when it was recorded.
    Error,
}

/// What an events-feed request beyond the recording gets (`--feed-end`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FeedEnd {
    /// Hold it like a quiet server until the request's `timeout` parameter (180 s when
    /// absent), then send an empty batch (default). Released at once on shutdown.
    #[default]
    Hold,
    /// Send the empty batch at once.
    Empty,
}

/// How long to wait before answering (`--pace`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Pace {
    /// Answer at once (default).
    #[default]
    Instant,
    /// Take as long as the recorded exchange took.
    Recorded,
    /// Take the recorded duration times the factor (`scaled:0.5` is twice as fast).
    Scaled(f64),
}

impl Pace {
    /// How long to wait for an exchange that took `recorded_us` when recorded.
    pub fn delay(self, recorded_us: i64) -> Duration {
        let us = recorded_us.max(0) as f64;
        let factor = match self {
            Pace::Instant => return Duration::ZERO,
            Pace::Recorded => 1.0,
            Pace::Scaled(f) => f,
        };
        Duration::from_secs_f64((us * factor / 1e6).clamp(0.0, 86_400.0))
    }
}

/// Whether a request that differs only by its body may be served anyway (`--body-match`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BodyMatch {
    /// Serve it when exactly one recorded request has the same method, path, query and
    /// representation (default). It is a *near miss*: logged, listed in the report with
    /// where the bodies differ, and a failure of the verdict unless near misses are allowed.
    #[default]
    Lenient,
    /// Bodies must match; anything else is a miss.
    Strict,
}

fn invalid(what: &'static str, message: String) -> Error {
    Error::invalid(what, message)
}

impl FromStr for Exhausted {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "repeat-last" => Ok(Exhausted::RepeatLast),
            "error" => Ok(Exhausted::Error),
            _ => Err(invalid(
                "--exhausted",
                format!("{s:?} (expected repeat-last or error)"),
            )),
        }
    }
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Exhausted::RepeatLast => "repeat-last",
            Exhausted::Error => "error",
        })
    }
}

impl FromStr for FeedEnd {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hold" => Ok(FeedEnd::Hold),
            "empty" => Ok(FeedEnd::Empty),
            _ => Err(invalid(
                "--feed-end",
                format!("{s:?} (expected hold or empty)"),
            )),
        }
    }
}

impl fmt::Display for FeedEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeedEnd::Hold => "hold",
            FeedEnd::Empty => "empty",
        })
    }
}

impl FromStr for Pace {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "instant" => Ok(Pace::Instant),
            "recorded" => Ok(Pace::Recorded),
            _ => {
                let factor = s
                    .strip_prefix("scaled:")
                    .and_then(|f| f.parse::<f64>().ok())
                    .filter(|f| f.is_finite() && *f >= 0.0);
                match factor {
                    Some(f) => Ok(Pace::Scaled(f)),
                    None => Err(invalid(
                        "--pace",
                        format!(
                            "{s:?} (expected instant, recorded or scaled:F with F a number >= 0)"
                        ),
                    )),
                }
            }
        }
    }
}

impl fmt::Display for Pace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pace::Instant => f.write_str("instant"),
            Pace::Recorded => f.write_str("recorded"),
            Pace::Scaled(x) => write!(f, "scaled:{x}"),
        }
    }
}

impl FromStr for BodyMatch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lenient" => Ok(BodyMatch::Lenient),
            "strict" => Ok(BodyMatch::Strict),
            _ => Err(invalid(
                "--body-match",
                format!("{s:?} (expected strict or lenient)"),
            )),
        }
    }
}

impl fmt::Display for BodyMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyMatch::Lenient => "lenient",
            BodyMatch::Strict => "strict",
        })
    }
}

/// Every replay option; `Default` (or [`ReplayConfig::new`]) is what the CLI does without
/// flags. The in-process test server starts from [`ReplayConfig::for_tests`] instead.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReplayConfig {
    pub exhausted: Exhausted,
    pub feed_end: FeedEnd,
    pub pace: Pace,
    pub body_match: BodyMatch,
    /// Body fields left out of the match key beyond the defaults (`--ignore-body-field`).
    /// When non-empty the keys of the recording are recomputed from the stored requests
    /// (the stored keys were computed without them).
    pub ignore_body_fields: Vec<String>,
    /// Where to write the JSON report on shutdown (`--report`).
    pub report_path: Option<PathBuf>,
    /// Injected faults (`--inject`), in the order they are tried.
    pub faults: Vec<FaultRule>,
    /// Redaction beyond the defaults, for what clients send (it is matched, logged and
    /// reported redacted) and, in spy mode, for what is forwarded and stored.
    pub redact: RedactConfig,
}

impl ReplayConfig {
    /// The CLI's defaults: `--body-match lenient`, `--feed-end hold`.
    pub fn new() -> Self {
        ReplayConfig::default()
    }

    /// What a test wants by default: a changed request body is a miss
    /// ([`BodyMatch::Strict`]) and the feed ends at once ([`FeedEnd::Empty`]), so a test
    /// never waits for a 180 s long poll.
    pub fn for_tests() -> Self {
        ReplayConfig {
            body_match: BodyMatch::Strict,
            feed_end: FeedEnd::Empty,
            ..ReplayConfig::default()
        }
    }

    /// The key options the recording's keys and the incoming requests' keys are computed with.
    pub fn key_options(&self) -> KeyOptions {
        KeyOptions::with_extra_fields(self.ignore_body_fields.iter().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_print_back() {
        for s in ["instant", "recorded", "scaled:0.5"] {
            assert_eq!(s.parse::<Pace>().unwrap().to_string(), s);
        }
        assert!("scaled:-1".parse::<Pace>().is_err());
        assert!("fast".parse::<Pace>().is_err());
        assert_eq!("error".parse::<Exhausted>().unwrap(), Exhausted::Error);
        assert_eq!("empty".parse::<FeedEnd>().unwrap(), FeedEnd::Empty);
        assert_eq!("strict".parse::<BodyMatch>().unwrap(), BodyMatch::Strict);
        let err = "sometimes".parse::<FeedEnd>().unwrap_err().to_string();
        assert!(err.contains("--feed-end"), "{err}");
    }

    #[test]
    fn pace_scales_the_recorded_duration() {
        assert_eq!(Pace::Instant.delay(1_000_000), Duration::ZERO);
        assert_eq!(Pace::Recorded.delay(250_000), Duration::from_millis(250));
        assert_eq!(Pace::Scaled(2.0).delay(250_000), Duration::from_millis(500));
        assert_eq!(Pace::Recorded.delay(-5), Duration::ZERO);
    }
}
