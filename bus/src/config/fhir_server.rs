//! `[fhir]`: the inbound FHIR R4 REST server under `/fhir` on the HTTP address.

use serde::{Deserialize, Serialize};

/// The inbound FHIR R4 server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FhirServerConfig {
    /// Serve `/fhir` (on `http.addr`). On by default.
    pub enabled: bool,
    /// Channel name: accepted resources are kept on `medbus.ingress.fhir.<channel>`.
    pub channel: String,
    /// Largest request body accepted, in bytes (a larger one gets 413).
    pub max_body_bytes: usize,
    /// At most this many results in one search Bundle (`_count` may ask for fewer).
    pub max_search_results: u32,
}

impl Default for FhirServerConfig {
    fn default() -> Self {
        FhirServerConfig {
            enabled: true,
            channel: "fhir".into(),
            max_body_bytes: 16 * 1024 * 1024,
            max_search_results: 100,
        }
    }
}

/// Problems with `[fhir]`, as (key, message).
pub fn validate(c: &FhirServerConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if crate::subjects::check_token(&c.channel).is_err() {
        out.push((
            "fhir.channel".to_string(),
            format!(
                "{:?} is not usable in a subject (letters, digits, - and _ only)",
                c.channel
            ),
        ));
    }
    if c.max_body_bytes < 1024 {
        out.push(("fhir.max_body_bytes".to_string(), "must be at least 1024".to_string()));
    }
    if c.max_search_results == 0 {
        out.push(("fhir.max_search_results".to_string(), "must be at least 1".to_string()));
    }
    out
}
