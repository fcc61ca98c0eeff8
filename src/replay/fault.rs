//! Injected faults (`--inject`, `POST /_replay/faults`): a rule names the requests it applies
//! to and what they get instead of, or before, their recorded answer, so a test can see its
//! client handle a UCWA error, a slow answer, a dropped connection or a cut body.
//!
//! A rule is one line, `METHOD PATH-GLOB [#N] => ACTION`:
//! - `METHOD` is an HTTP method or `*`; `PATH-GLOB` a glob (`*` also crosses `/`) tried on the
//!   request's path and on `/REL`, the rel of the resource the recording says the request
//!   reaches, so `*/participantMessaging` fires on `…/participants/bob@contoso.com/messaging`;
//!   `#N` limits it to the N-th request it matches (1-based), else it fires on every one;
//! - `ACTION` is `STATUS [CODE[/SUBCODE]]` (a UCWA error in the representation the client
//!   asked for: `409 Conflict/AlreadyExists`), `delay DURATION` (`delay 2s`, then the recorded
//!   answer), `reset` (the connection is closed without a response) or `truncate` (half the
//!   answer's body, then the connection is closed).
//!
//! Every rule counts the requests it matches, whether or not another rule answered them, and
//! the first rule that fires answers: the same rules and the same requests always give the
//! same answers. An error, `reset` or `truncate` does not consume the recorded answer (the
//! client's retry gets it); `delay` serves it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use globset::{GlobBuilder, GlobMatcher};
use http::StatusCode;
use serde::Serialize;

use crate::error::Error;
use crate::ucwa::error::code_for_status;

/// HTTP statuses UCWA gives an error code (docs/UCWA.md, "Errors").
const UCWA_STATUSES: &[u16] = &[
    400, 401, 403, 404, 405, 406, 408, 409, 410, 412, 413, 415, 428, 429, 500, 502, 503, 504,
];

/// What a rule does to the requests it fires on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer this UCWA error instead of the recorded answer.
    Error {
        status: StatusCode,
        subcode: Option<String>,
    },
    /// Wait, then serve the recorded answer.
    Delay(Duration),
    /// Close the connection without a response.
    Reset,
    /// Send half of the answer's body (with the full `Content-Length`), then close.
    Truncate,
}

impl FaultAction {
    /// Whether the recorded answer is served (and so consumed) after the fault.
    pub fn serves_recorded(&self) -> bool {
        matches!(self, FaultAction::Delay(_))
    }
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultAction::Error { status, subcode } => {
                write!(f, "{} {}", status.as_u16(), code_for_status(*status))?;
                if let Some(sub) = subcode {
                    write!(f, "/{sub}")?;
                }
                Ok(())
            }
            FaultAction::Delay(d) => write!(f, "delay {}", humantime::format_duration(*d)),
            FaultAction::Reset => f.write_str("reset"),
            FaultAction::Truncate => f.write_str("truncate"),
        }
    }
}

/// One `--inject` rule.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// `None` for `*`.
    method: Option<String>,
    glob: String,
    matcher: GlobMatcher,
    nth: Option<u32>,
    action: FaultAction,
}

impl PartialEq for FaultRule {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl FaultRule {
    /// What the rule does.
    pub fn action(&self) -> &FaultAction {
        &self.action
    }

    /// Whether the rule is about this request: `rel` is the rel of the resource the
    /// recording says the request reaches, when it knows.
    pub fn applies_to(&self, method: &str, path: &str, rel: Option<&str>) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && (self.matcher.is_match(path)
                || rel.is_some_and(|r| self.matcher.is_match(format!("/{r}"))))
    }

    /// Whether the rule fires on the `seen`-th request it applies to (1-based).
    pub fn fires_on(&self, seen: u32) -> bool {
        self.nth.is_none_or(|n| n == seen)
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method.as_deref().unwrap_or("*"), self.glob)?;
        if let Some(n) = self.nth {
            write!(f, " #{n}")?;
        }
        write!(f, " => {}", self.action)
    }
}

impl Serialize for FaultRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn invalid(rule: &str, why: impl fmt::Display) -> Error {
    Error::invalid("--inject rule", format!("{rule:?}: {why}"))
}

const SHAPE: &str = "expected METHOD PATH-GLOB [#N] => ACTION, e.g. \"GET */participantMessaging #1 => 409 Conflict/AlreadyExists\"";

impl FromStr for FaultRule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (request, action) = text
            .split_once("=>")
            .ok_or_else(|| invalid(text, format!("no \"=>\" ({SHAPE})")))?;
        let words: Vec<&str> = request.split_whitespace().collect();
        let (method, glob, nth) = match words[..] {
            [m, g] => (m, g, None),
            [m, g, n] => (m, g, Some(n)),
            _ => return Err(invalid(text, SHAPE)),
        };
        let method = match method {
            "*" => None,
            m if http::Method::from_bytes(m.as_bytes()).is_ok() => Some(m.to_ascii_uppercase()),
            m => return Err(invalid(text, format!("{m:?} is not an HTTP method or *"))),
        };
        let nth = match nth {
            None => None,
            Some(n) => Some(
                n.strip_prefix('#')
                    .and_then(|d| d.parse::<u32>().ok())
                    .filter(|d| *d > 0)
                    .ok_or_else(|| {
                        invalid(text, format!("{n:?}: give the occurrence as #N, N from 1"))
                    })?,
            ),
        };
        let matcher = GlobBuilder::new(glob)
            .literal_separator(false)
            .build()
            .map_err(|e| invalid(text, format!("bad path glob: {e}")))?
            .compile_matcher();
        Ok(FaultRule {
            method,
            glob: glob.to_string(),
            matcher,
            nth,
            action: parse_action(text, action.trim())?,
        })
    }
}

fn parse_action(rule: &str, action: &str) -> Result<FaultAction, Error> {
    if let Some(d) = action
        .strip_prefix("delay")
        .filter(|d| d.starts_with(char::is_whitespace))
    {
        let d = d.trim();
        return humantime::parse_duration(d)
            .map(FaultAction::Delay)
            .map_err(|e| {
                invalid(
                    rule,
                    format!("delay {d:?}: {e} (e.g. delay 2s, delay 500ms)"),
                )
            });
    }
    let words: Vec<&str> = action.split_whitespace().collect();
    match words[..] {
        ["reset"] => Ok(FaultAction::Reset),
        ["truncate"] => Ok(FaultAction::Truncate),
        [status] | [status, _] if status.bytes().all(|b| b.is_ascii_digit()) => {
            let code = status
                .parse::<u16>()
                .ok()
                .filter(|s| UCWA_STATUSES.contains(s))
                .and_then(|s| StatusCode::from_u16(s).ok())
                .ok_or_else(|| {
                    invalid(
                        rule,
                        format!(
                            "UCWA has no error code for status {status} (known: {UCWA_STATUSES:?})"
                        ),
                    )
                })?;
            let subcode = match words.get(1) {
                None => None,
                Some(cs) => {
                    let (given, sub) = match cs.split_once('/') {
                        Some((c, s)) => (c, Some(s)),
                        None => (*cs, None),
                    };
                    let expected = code_for_status(code);
                    if !given.eq_ignore_ascii_case(expected) {
                        return Err(invalid(
                            rule,
                            format!(
                                "the UCWA code of {} is {expected}, not {given}",
                                code.as_u16()
                            ),
                        ));
                    }
                    match sub {
                        Some("") => return Err(invalid(rule, "empty subcode after '/'")),
                        Some(s) => Some(s.to_string()),
                        None => None,
                    }
                }
            };
            Ok(FaultAction::Error {
                status: code,
                subcode,
            })
        }
        _ => Err(invalid(
            rule,
            format!(
                "unknown action {action:?} (expected STATUS CODE[/SUBCODE], delay DURATION, reset or truncate)"
            ),
        )),
    }
}

/// A rule and what it has done so far.
#[derive(Debug, Clone)]
pub(crate) struct RuleState {
    pub rule: FaultRule,
    /// Requests it applied to.
    pub seen: u32,
    /// Times it fired.
    pub fired: u32,
}

impl RuleState {
    pub fn new(rule: FaultRule) -> Self {
        RuleState {
            rule,
            seen: 0,
            fired: 0,
        }
    }
}

/// Count the request against every rule and return the first that fires.
pub(crate) fn evaluate(
    rules: &mut [RuleState],
    method: &str,
    path: &str,
    rel: Option<&str>,
) -> Option<FaultRule> {
    let mut chosen = None;
    for state in rules.iter_mut() {
        if !state.rule.applies_to(method, path, rel) {
            continue;
        }
        state.seen += 1;
        if chosen.is_none() && state.rule.fires_on(state.seen) {
            state.fired += 1;
            chosen = Some(state.rule.clone());
        }
    }
    chosen
}

/// A rule as `GET /_replay/faults` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleStatus {
    pub rule: String,
    /// Requests it applied to so far.
    pub seen: u32,
    /// Times it fired so far.
    pub fired: u32,
}

impl From<&RuleState> for RuleStatus {
    fn from(s: &RuleState) -> Self {
        RuleStatus {
            rule: s.rule.to_string(),
            seen: s.seen,
            fired: s.fired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> FaultRule {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_error_row_of_the_reference_page_parses_and_prints_back() {
        for text in [
            "GET */participantMessaging => 500 ServiceFailure/InvalidExchangeServerVersion",
            "GET */participantMessaging => 409 Conflict/AlreadyExists",
            "GET */participantMessaging => 409 Conflict/TooManyGroups",
            "GET */participantMessaging => 409 Conflict",
            "GET */participantMessaging => 410 Gone/CannotRedirect",
            "* */events #2 => 409 Conflict/PGetReplaced",
            "POST /ucwa/*/messages => delay 1s 500ms",
            "GET */events => reset",
            "GET */events #3 => truncate",
        ] {
            assert_eq!(rule(text).to_string(), text);
        }
        assert_eq!(
            rule("get   /x  =>  404").to_string(),
            "GET /x => 404 NotFound",
            "spacing and case are forgiven; the code follows the status"
        );
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (text, needle) in [
            ("GET /x", "no \"=>\""),
            ("GET => 404", "expected METHOD PATH-GLOB"),
            ("GET /x #0 => 404", "#N, N from 1"),
            ("GET /x => 418", "no error code for status 418"),
            (
                "GET /x => 409 Gone",
                "the UCWA code of 409 is Conflict, not Gone",
            ),
            ("GET /x => delay soon", "delay \"soon\""),
            ("GET /x => explode", "unknown action"),
            ("GET /x[ => reset", "bad path glob"),
            ("G@T /x => reset", "not an HTTP method"),
        ] {
            let err = text.parse::<FaultRule>().unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn globs_match_the_path_or_the_rel_and_occurrences_count_per_rule() {
        let pm = rule("GET */participantMessaging => 409 Conflict");
        let real = "/ucwa/oauth/v1/applications/1/communication/conversations/c/participants/bob@contoso.com/messaging";
        assert!(pm.applies_to("GET", real, Some("participantMessaging")));
        assert!(!pm.applies_to("GET", real, Some("messaging")));
        assert!(!pm.applies_to("POST", real, Some("participantMessaging")));
        assert!(pm.applies_to("get", "/ucwa/v1/x/participantMessaging", None));

        let mut rules = vec![
            RuleState::new(rule("GET */events #2 => reset")),
            RuleState::new(rule("* */events => delay 1ms")),
        ];
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(evaluate(&mut rules, "GET", "/a/events", None).map(|r| r.action().clone()));
        }
        assert_eq!(
            got,
            [
                Some(FaultAction::Delay(Duration::from_millis(1))),
                Some(FaultAction::Reset),
                Some(FaultAction::Delay(Duration::from_millis(1))),
            ]
        );
        assert_eq!((rules[0].seen, rules[0].fired), (3, 1));
        assert_eq!((rules[1].seen, rules[1].fired), (3, 2));
    }
}
