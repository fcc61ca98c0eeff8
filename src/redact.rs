//! INTERFACE STUB (to be replaced by the redaction work): signatures the proxy codes against.

use crate::store::Exchange;

/// What to redact beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct RedactConfig {
    /// Extra header names (`--redact-header`).
    pub headers: Vec<String>,
    /// Extra JSON / form field names (`--redact-field`).
    pub fields: Vec<String>,
    /// Extra regexes (`--redact-regex`).
    pub regexes: Vec<String>,
}

/// Redacts exchanges of one session; shared by all its connections.
#[derive(Debug)]
pub struct Redactor {}

impl Redactor {
    /// Build from a configuration (an invalid regex is an input error).
    pub fn new(_config: &RedactConfig) -> crate::Result<Self> {
        Ok(Redactor {})
    }

    /// Redact an exchange in place, before it is stored; sets `credential`.
    pub fn redact_exchange(&self, _exchange: &mut Exchange) {}
}
