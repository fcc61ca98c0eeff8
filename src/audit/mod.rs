//! Audit: find secret-looking material (`secrets`) or personal data (`pii`, `audit --pii`)
//! that is still in a recording — the other side of the
//! redactor, with the same knowledge (its header, form and JSON field lists, its token regex,
//! its placeholder syntax), so that "redacted" means the same thing to both.
//!
//! A recording made by the proxy or `import` is clean by construction; audit catches files
//! written by older versions, by hand, by SQL, or recorded with a user-added secret the
//! defaults do not know (`--regex`). What counts as a finding:
//! - a `cwt=` / `psat=` token (also `cwt%3d`) whose value is not a `REDACTED-n` placeholder,
//!   and any JWT (`eyJ….eyJ….`), anywhere: path, query, any header, any body, the error text,
//!   the events' embedded resources;
//! - a secret header ([`DEFAULT_HEADERS`](crate::redact::DEFAULT_HEADERS): `Authorization`,
//!   `X-Ms-WebTicket` …) whose credentials are not a placeholder;
//! - a cookie value of a known secret cookie ([`SECRET_COOKIES`], or a name that says
//!   token / auth / session / ticket / secret) in `Cookie` / `Set-Cookie`;
//! - a secret field with a real value: JSON fields at any depth and XML `<property name>`s
//!   of [`DEFAULT_JSON_FIELDS`](crate::redact::DEFAULT_JSON_FIELDS), form fields (bodies and query) of
//!   [`DEFAULT_FORM_FIELDS`](crate::redact::DEFAULT_FORM_FIELDS);
//! - `password=VALUE` anywhere;
//! - a match of a user regex (group 1 if it has one), unless it is a placeholder.
//!
//! Findings never carry a secret in full: [`mask`] keeps at most its first 4 characters.
//!
//! With `--pii` ([`PiiAuditor`]) the findings are personal data instead: see `pii`.

mod pii;
mod secrets;

pub use pii::PiiAuditor;
pub use secrets::{Auditor, SECRET_COOKIES, mask};

use crate::recording::SessionInfo;
use crate::store::{Recording, StoreError};

/// The sessions an audit reads: `session` alone, or every one. Exchanges are then streamed
/// a page at a time (`Recording::stream_exchanges`), so an audit's memory does not grow with
/// the recording.
fn sessions_to_audit(
    rec: &Recording,
    session: Option<&str>,
) -> Result<Vec<SessionInfo>, StoreError> {
    match session {
        Some(name) => Ok(vec![rec.session(Some(name))?]),
        None => rec.sessions(),
    }
}

/// One finding: a piece of secret-looking material, or (`--pii`) of personal data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub session: String,
    pub seq: u64,
    /// Where: `path`, `query`, `request.header authorization`, `response.body /access_token`,
    /// `events[2].embedded`, `error`.
    pub location: String,
    /// What: `cwt token`, `psat token`, `JWT`, `secret header`, `secret cookie`,
    /// `secret field`, `password`, `regex`; with `--pii`: `e-mail address`, `SIP URI`,
    /// `tel: number`, `name`, `job field`, `phone number`, `note`, `message text`,
    /// `subject`, `photo`.
    pub rule: String,
    /// The secret masked: its first characters and `…`. Personal data is never shown, not
    /// even in part: only its length (`17 characters`).
    pub excerpt: String,
}

/// The result of auditing a recording.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuditReport {
    pub sessions: usize,
    pub exchanges: u64,
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}
