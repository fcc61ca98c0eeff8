//! Interchange: a session as an HTTP Archive (HAR 1.2) or as NDJSON, and HAR files (our own
//! exports, or browser devtools captures of a UCWA web app) imported as sessions.
//!
//! - `export`: exchanges → HAR 1.2 document / NDJSON lines;
//! - `import`: HAR document → exchanges (redacted, classified, keyed, events indexed) →
//!   a new session, the file read as a stream (`stream`) twice: checked, then imported;
//! - `ndjson`: NDJSON lines read back into sessions (a replay held in memory);
//! - `time`: the RFC 3339 timestamps HAR uses.
//!
//! # HAR mapping
//! Standard fields carry what any HAR viewer understands: `startedDateTime` (RFC 3339, from
//! the exchange's start), `time` (ms), `request.method/url/httpVersion/headers` (in order,
//! repeated names kept), `queryString`, `postData` (`mimeType` + `text`), `response.status`
//! (`0` when no response came), `statusText`, `headers`, `content` (`size`, `mimeType`,
//! `text`, with `encoding: "base64"` for bytes that are not UTF-8), `redirectURL`, `cookies`.
//! Bodies in HAR are decoded (as in the store): `content.text` never holds gzip bytes.
//!
//! The URL is the session's upstream origin + path + query; an exchange recorded under the
//! proxy's `/_upstream/HOST` prefix is written with that host's origin (as a browser would have
//! seen it), and import maps it back.
//!
//! UCWA fields that HAR has no room for are custom fields (HAR allows `_`-prefixed names):
//! `log._ucwa` = `{session, upstream, alsoUpstreams, startedAt, toolVersion}` and per entry
//! `_ucwa` = `{seq, kind, representation, matchKey, ordinal, credential, upstream, error,
//! requestTruncated, responseTruncated, contentEncoding, requestBodyBase64, binaryHeaders,
//! events}` (`binaryHeaders`: `{"request"|"response": {"INDEX": "base64"}}` for header values
//! that are not UTF-8; `events`: the number of indexed feed events). With them, export →
//! import is lossless for every stored field (events are re-derived from the body).
//!
//! # NDJSON
//! One JSON object per exchange per line, in `seq` order, the store's columns in snake case:
//! `session`, `seq`, `started` (RFC 3339), `started_us`, `duration_us`, `method`, `url`,
//! `path`, `query`, `http_version`, `request_headers` (`[[name, value], …]`),
//! `request_body` (text) or `request_body_base64`, `request_truncated`, `status` (null without
//! a response), `response_headers`, `response_body` or `response_body_base64`,
//! `response_truncated`, `content_encoding`, `error`, `kind`, `representation`, `match_key`,
//! `ordinal`, `credential`, `upstream`, `events` (`[{ack, position, sender_rel, sender_href,
//! type, link_rel, link_href, link_title, in_rel, in_href, status, reason, embedded}]`, with
//! `reason` / `embedded` as JSON when they parse, else text). Header values that are not UTF-8
//! are written lossily (NDJSON is for reading and `jq`, HAR for round trips).

pub use crate::error::HarError;

mod entry;
mod export;
mod import;
mod ndjson;
mod stream;
mod time;

pub use export::{export_har, export_ndjson, to_har, write_har, write_ndjson};
pub use import::{
    Converted, ImportOptions, ImportPlan, ImportStats, convert_slice, import_har, plan_from_slice,
    plan_import,
};
pub use ndjson::sessions_from_ndjson;

/// The HAR version written and read.
pub const HAR_VERSION: &str = "1.2";

/// The `_ucwa` custom field name.
pub(crate) const CUSTOM: &str = "_ucwa";

#[cfg(test)]
mod tests;
