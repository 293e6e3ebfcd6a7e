//! One POST of one transaction Bundle to a FHIR server, and what its answer means.

use std::time::Duration;

use chrono::{DateTime, Utc};
use medbus_bus::config::fhir_destinations::FhirDestinationConfig;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;

use super::outcome;
use crate::webhook::send::retryable_status;

/// The FHIR JSON media type, sent and accepted.
pub const FHIR_JSON: &str = "application/fhir+json";

/// Most bytes of an answer read: a transaction-response Bundle has one small
/// entry per resource, an error page needs only its start.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status (of the entry that failed, when the Bundle as a whole was 2xx).
    pub status: Option<u16>,
    /// What happened, with the server's OperationOutcome when it sent one.
    pub message: String,
    /// True when another attempt may succeed (5xx, 408, 429, timeout, no connection).
    pub retryable: bool,
    /// How long the server asked to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

/// POSTs `bundle` (an encoded transaction Bundle) to the server's base URL
/// once; the HTTP status when the server applied all of it.
pub async fn post(http: &reqwest::Client, cfg: &FhirDestinationConfig, bundle: &[u8]) -> Result<u16, Failure> {
    let mut req = http
        .post(&cfg.url)
        .timeout(cfg.timeout)
        .header(CONTENT_TYPE, FHIR_JSON)
        .header(ACCEPT, FHIR_JSON)
        .body(bundle.to_vec());
    if !cfg.bearer_token.is_empty() {
        req = req.bearer_auth(cfg.bearer_token.expose());
    }
    let unreachable = |e: reqwest::Error| Failure {
        status: None,
        message: if e.is_timeout() {
            format!("no answer within {:?}", cfg.timeout)
        } else {
            // Without the URL: it may carry credentials.
            format!("cannot reach the FHIR server: {}", e.without_url())
        },
        retryable: true,
        retry_after: None,
    };
    let mut resp = req.send().await.map_err(unreachable)?;
    let status = resp.status();
    let retry_after = retry_after(resp.headers(), Utc::now());
    // The whole answer is read within the request's timeout, and only its start is kept.
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - body.len())]);
        if body.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    let code = status.as_u16();
    if !status.is_success() {
        return Err(Failure {
            status: Some(code),
            message: format!("HTTP {status}: {}", outcome::explain(&body)),
            retryable: retryable_status(code),
            retry_after,
        });
    }
    if let Some(kind) = not_a_transaction_response(&body) {
        return Err(Failure {
            status: Some(code),
            message: format!(
                "HTTP {status}, but the answer is {kind}, not a transaction-response Bundle: is the url the server's FHIR base?"
            ),
            retryable: false,
            retry_after,
        });
    }
    match first_failed_entry(&body) {
        None => Ok(code),
        Some((index, entry_status, why)) => Err(Failure {
            status: Some(entry_status),
            message: format!("HTTP {status}, but entry {index} of the Bundle answered {entry_status}: {why}"),
            retryable: retryable_status(entry_status),
            retry_after,
        }),
    }
}

/// What a 2xx answer is when it is a FHIR resource other than a
/// transaction-response (or batch-response) Bundle, e.g. a searchset from a
/// GET; None for that Bundle, an empty body, or one that is not FHIR JSON.
fn not_a_transaction_response(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let rt = v.get("resourceType")?.as_str()?;
    let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
    match (rt, ty) {
        ("Bundle", "transaction-response" | "batch-response") => None,
        ("Bundle", ty) => Some(format!("a {ty:?} Bundle")),
        (rt, _) => Some(format!("a {rt}")),
    }
}

/// The first entry of a response Bundle whose `response.status` is not 2xx:
/// its index, status and explanation. None when all succeeded, or when the
/// answer is no Bundle (a server may answer 200 with no body).
fn first_failed_entry(body: &[u8]) -> Option<(usize, u16, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return None;
    }
    v.get("entry")?.as_array()?.iter().enumerate().find_map(|(i, e)| {
        let text = e.pointer("/response/status").and_then(Value::as_str)?;
        // "201 Created": the code is the first three characters.
        let code = text.get(..3).and_then(|c| c.parse::<u16>().ok()).unwrap_or(0);
        if (200..300).contains(&code) {
            return None;
        }
        let why = e
            .pointer("/response/outcome")
            .and_then(outcome::summary)
            .map(|s| outcome::one_line(&format!("{text}; OperationOutcome: {s}"), outcome::KEPT_BYTES))
            .unwrap_or_else(|| outcome::one_line(text, outcome::KEPT_BYTES));
        Some((i, code, why))
    })
}

/// `Retry-After` as a delay: seconds, or an HTTP date (a past date is no delay).
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    #[test]
    fn a_2xx_must_be_a_transaction_response() {
        let is = |v: serde_json::Value| super::not_a_transaction_response(v.to_string().as_bytes());
        assert_eq!(
            is(json!({"resourceType": "Bundle", "type": "transaction-response"})),
            None
        );
        assert_eq!(is(json!({"resourceType": "Bundle", "type": "batch-response"})), None);
        assert_eq!(
            is(json!({"resourceType": "Bundle", "type": "searchset"})).as_deref(),
            Some("a \"searchset\" Bundle")
        );
        assert_eq!(is(json!({"resourceType": "Patient"})).as_deref(), Some("a Patient"));
        assert_eq!(super::not_a_transaction_response(b""), None, "an empty 2xx is accepted");
    }

    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:30 GMT"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:27:00 GMT"));
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn a_failed_entry_fails_the_event() {
        let ok = json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [
            {"response": {"status": "201 Created"}}, {"response": {"status": "200"}}, {}
        ]});
        assert_eq!(first_failed_entry(ok.to_string().as_bytes()), None);
        assert_eq!(first_failed_entry(b""), None);
        assert_eq!(first_failed_entry(b"{\"resourceType\":\"OperationOutcome\"}"), None);
        let bad = json!({"resourceType": "Bundle", "entry": [
            {"response": {"status": "200 OK"}},
            {"response": {"status": "412 Precondition Failed", "outcome": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "conflict", "diagnostics": "2 matches"}]}}}
        ]});
        let (i, code, why) = first_failed_entry(bad.to_string().as_bytes()).unwrap();
        assert_eq!((i, code), (1, 412));
        assert_eq!(
            why,
            "412 Precondition Failed; OperationOutcome: error conflict: 2 matches"
        );
    }
}
