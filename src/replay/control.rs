//! The control API on the replay's own listener, under `/_replay/`, for test suites in any
//! language (loopback clients only; JSON in, JSON out, UCWA-shaped errors):
//!
//! | request | what it does |
//! | --- | --- |
//! | `GET /_replay/report` | the [`ReplayReport`](super::ReplayReport) so far (and writes `--report`) |
//! | `GET /_replay/requests` | `{"requests":[…],"dropped":0}`: every request received, in order, with what answered it |
//! | `POST /_replay/reset` | cursors, counts, findings and the request log back to the start |
//! | `POST /_replay/session` `{"session":"NAME"}` | replay another session of the same recording (a reset included) |
//! | `GET /_replay/faults` | the fault rules, with how often each applied and fired |
//! | `POST /_replay/faults` `{"rules":["GET */events #2 => reset"]}` (or `{"rule":…}`) | add rules |
//! | `DELETE /_replay/faults` | remove every rule |

use std::net::SocketAddr;

use http::{HeaderValue, Method, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::fault::FaultRule;
use super::replayer::Replayer;
use crate::body::{Body, full};
use crate::error::{Chain, Error, StoreError};
use crate::ucwa::{ErrorBody, Representation, error_response};

/// Where the control API lives.
pub const PREFIX: &str = "/_replay/";

/// Largest control request body read.
const MAX_BODY: usize = 1024 * 1024;

/// Answer a control request. `peer` is `None` for an in-process caller.
pub(super) fn handle(
    replayer: &Replayer,
    parts: &http::request::Parts,
    body: &[u8],
    peer: Option<SocketAddr>,
) -> Response<Body> {
    let repr = Representation::from_accept(
        parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let fail = |status: StatusCode, subcode: Option<&str>, message: String| {
        error_response(&ErrorBody::new(status, subcode, message), repr)
    };
    if peer.is_some_and(|p| !p.ip().is_loopback()) {
        return fail(
            StatusCode::FORBIDDEN,
            Some("ControlFromLoopbackOnly"),
            "the replay's control API answers loopback clients only".into(),
        );
    }
    if body.len() > MAX_BODY {
        return fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            "control requests are small JSON bodies".into(),
        );
    }
    let name = parts.uri.path().trim_start_matches(PREFIX);
    let method = &parts.method;
    let allowed: &[&str] = match name {
        "report" | "requests" => &["GET"],
        "reset" | "session" => &["POST"],
        "faults" => &["GET", "POST", "DELETE"],
        _ => {
            return fail(
                StatusCode::NOT_FOUND,
                Some("NoSuchControl"),
                format!(
                    "no control {:?}; the replay's control API has /_replay/report, requests, reset, session, faults",
                    parts.uri.path()
                ),
            );
        }
    };
    if !allowed.contains(&method.as_str()) {
        let mut resp = fail(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            format!("{} takes {}", parts.uri.path(), allowed.join(", ")),
        );
        if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
            resp.headers_mut().insert(header::ALLOW, v);
        }
        return resp;
    }
    match (name, method) {
        ("report", _) => {
            if let Err(err) = replayer.write_report() {
                tracing::error!(error = %Chain(&err), "cannot write the replay report");
            }
            json_response(serde_json::to_value(replayer.report()).unwrap_or(Value::Null))
        }
        ("requests", _) => json_response(json!({
            "requests": replayer.received(),
            "dropped": replayer.received_dropped(),
        })),
        ("reset", _) => {
            replayer.reset();
            tracing::info!("replay: reset by the control API");
            json_response(json!({"reset": true, "session": replayer.session().name}))
        }
        ("session", _) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Switch {
                session: String,
            }
            let switch: Switch = match serde_json::from_slice(body) {
                Ok(s) => s,
                Err(e) => {
                    return fail(
                        StatusCode::BAD_REQUEST,
                        Some("MalformedControl"),
                        format!("expected {{\"session\": \"NAME\"}}: {e}"),
                    );
                }
            };
            match replayer.switch_session(&switch.session) {
                Ok(info) => {
                    tracing::info!(session = %info.name, "replay: session switched by the control API");
                    json_response(json!({
                        "session": info.name,
                        "recorded": replayer.report().recorded,
                    }))
                }
                Err(Error::Store(e @ StoreError::NoSession { .. })) => {
                    fail(StatusCode::NOT_FOUND, Some("NoSuchSession"), e.to_string())
                }
                Err(e) => fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    format!("{}", Chain(&e)),
                ),
            }
        }
        ("faults", &Method::GET) => json_response(json!({"rules": replayer.faults()})),
        ("faults", &Method::DELETE) => {
            replayer.clear_faults();
            json_response(json!({"rules": replayer.faults()}))
        }
        ("faults", _) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Add {
                rule: Option<String>,
                #[serde(default)]
                rules: Vec<String>,
            }
            let add: Add = match serde_json::from_slice(body) {
                Ok(a) => a,
                Err(e) => {
                    return fail(
                        StatusCode::BAD_REQUEST,
                        Some("MalformedControl"),
                        format!(
                            "expected {{\"rules\": [\"METHOD PATH-GLOB [#N] => ACTION\", …]}}: {e}"
                        ),
                    );
                }
            };
            let texts: Vec<String> = add.rule.into_iter().chain(add.rules).collect();
            if texts.is_empty() {
                return fail(
                    StatusCode::BAD_REQUEST,
                    Some("MalformedControl"),
                    "no rule given: send {\"rules\": [\"METHOD PATH-GLOB [#N] => ACTION\", …]}"
                        .into(),
                );
            }
            // All or nothing: a bad rule adds none.
            let parsed: Result<Vec<FaultRule>, Error> = texts.iter().map(|t| t.parse()).collect();
            match parsed {
                Ok(rules) => {
                    for r in &rules {
                        tracing::info!(rule = %r, "replay: fault rule added by the control API");
                    }
                    replayer.add_faults(rules);
                    json_response(json!({"rules": replayer.faults()}))
                }
                Err(e) => fail(StatusCode::BAD_REQUEST, Some("BadFaultRule"), e.to_string()),
            }
        }
        _ => unreachable!("methods checked above"),
    }
}

fn json_response(value: Value) -> Response<Body> {
    let text = serde_json::to_vec_pretty(&value).unwrap_or_default();
    let mut resp = Response::new(full(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
