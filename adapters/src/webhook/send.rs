//! One POST of one event to a subscriber, and what its answer means.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use medbus_bus::config::subscriptions::SubscriptionConfig;

use super::sign::signature;

/// Headers of every request.
pub mod header {
    /// The event's envelope id; a receiver drops a repeat by it.
    pub const EVENT_ID: &str = "Medbus-Event-Id";
    /// `sha256=<hex HMAC-SHA256 of the body>`.
    pub const SIGNATURE: &str = "Medbus-Signature";
    /// When this attempt was sent (RFC 3339, UTC).
    pub const TIMESTAMP: &str = "Medbus-Timestamp";
    /// The subscription's name.
    pub const SUBSCRIPTION: &str = "Medbus-Subscription";
}

/// Most bytes of a refusing receiver's answer kept in the dead letter.
pub const KEPT_ANSWER_BYTES: usize = 512;

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What happened, with the start of the receiver's answer.
    pub message: String,
    /// True when another attempt may succeed (5xx, 408, 429, timeout, no connection).
    pub retryable: bool,
}

/// True for answers worth retrying: server errors, timeouts and rate limits.
/// Not 501 (Not Implemented) and 505 (HTTP Version Not Supported): they say
/// the receiver will never take the request, so retrying only delays the dead letter.
pub fn retryable_status(status: u16) -> bool {
    (status >= 500 && status != 501 && status != 505) || status == 408 || status == 429
}

/// POSTs `body` (already encoded) once.
pub async fn post(
    http: &reqwest::Client,
    name: &str,
    cfg: &SubscriptionConfig,
    event_id: &str,
    body: &[u8],
) -> Result<u16, Failure> {
    let resp = http
        .post(&cfg.url)
        .timeout(cfg.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(header::EVENT_ID, event_id)
        .header(header::SIGNATURE, signature(cfg.secret.expose().as_bytes(), body))
        .header(
            header::TIMESTAMP,
            Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        )
        .header(header::SUBSCRIPTION, name)
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| Failure {
            status: None,
            // Without the URL: it may carry a token in its query.
            message: e.without_url().to_string(),
            retryable: true,
        })?;
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Ok(status);
    }
    // Bounded: a receiver's error page is kept only in part, and read for at most a second.
    let text = match tokio::time::timeout(Duration::from_secs(1), resp.bytes()).await {
        Ok(Ok(b)) => truncate(&b),
        _ => String::new(),
    };
    Err(Failure {
        status: Some(status),
        message: format!("HTTP {status}: {text}"),
        retryable: retryable_status(status),
    })
}

/// The start of an answer as text, cut on a character boundary.
fn truncate(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(&b[..b.len().min(KEPT_ANSWER_BYTES)]).into_owned();
    let mut t = text.trim().to_string();
    if b.len() > KEPT_ANSWER_BYTES {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passing_troubles_are_retried() {
        for s in [500, 502, 503, 408, 429] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 410, 422] {
            assert!(!retryable_status(s), "{s}");
        }
        let long = vec![b'x'; 2000];
        assert_eq!(truncate(&long).chars().count(), KEPT_ANSWER_BYTES + 1);
        assert_eq!(truncate(b" no \n"), "no");
    }
}
