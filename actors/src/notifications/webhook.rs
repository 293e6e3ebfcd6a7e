//! Webhook delivery: one JSON POST per attempt.
//!
//! The body names the rule, the event kind, the notification id and its
//! acknowledge link, with a one-line summary and a few structured details —
//! the patient only by identifier, never by name. `Idempotency-Key` carries
//! the notification id, so a receiver can drop a repeat after a lost answer.

use medbus_bus::config::notifications::WebhookChannel;
use serde_json::{json, Value};

use super::record::{acknowledge_path, rfc3339, NotificationRecord};
use super::Failure;

/// The JSON a webhook receives for `rec`; `base` prefixes the acknowledge path.
pub fn body(rec: &NotificationRecord, base: &str, attempt: u32) -> Value {
    let mut b = json!({
        "id": rec.id.to_string(),
        "rule": rec.rule,
        "event": rec.trigger,
        "eventId": rec.event_id,
        "priority": rec.priority,
        "summary": rec.summary,
        "details": rec.details,
        "acknowledgeUrl": format!("{}{}", base.trim_end_matches('/'), acknowledge_path(rec.id)),
        "createdAt": rfc3339(rec.created_at),
        "attempt": attempt,
        "escalation": rec.escalation_of.is_some(),
    });
    if let Some(p) = &rec.patient_key {
        b["patient"] = json!(p);
    }
    if let Some(o) = rec.escalation_of {
        b["escalationOf"] = json!(o.to_string());
    }
    b
}

/// One attempt: POSTs `body` to the channel.
pub async fn send(
    http: &reqwest::Client,
    ch: &WebhookChannel,
    rec: &NotificationRecord,
    body: &Value,
) -> Result<(), Failure> {
    let mut req = http
        .post(&ch.url)
        .timeout(ch.timeout)
        .header("Idempotency-Key", rec.id.to_string())
        .json(body);
    for (name, value) in &ch.headers {
        req = req.header(name.as_str(), header_value(value)?);
    }
    let resp = req.send().await.map_err(|e| Failure {
        // Without the URL: it may carry a token in its query.
        message: e.without_url().to_string(),
        retryable: true,
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    Err(Failure {
        message: format!("HTTP {status}"),
        // 4xx other than timeouts and rate limits will not pass by retrying.
        retryable: status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429,
    })
}

/// A configured header value; `env:NAME` reads the environment variable NAME.
fn header_value(v: &str) -> Result<String, Failure> {
    match v.strip_prefix("env:") {
        Some(var) => std::env::var(var).map_err(|_| Failure {
            message: format!("header value from the environment variable {var}: not set"),
            retryable: false,
        }),
        None => Ok(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use medbus_bus::config::notifications::Recipient;

    use super::super::rules::{record, Occurrence};
    use super::*;

    #[test]
    fn the_body_names_everything_needed_to_act_and_acknowledge() {
        let occ = Occurrence::dead_letter("dlq:router:s:1", "router", "medbus.ingress.hl7v2.adt", "no MSH", 2);
        let to = Recipient {
            channel: "oncall".into(),
            address: None,
        };
        let mut rec = record("dlq", &occ, &to, Utc::now());
        let b = body(&rec, "https://medbus.example/", 2);
        assert_eq!(b["id"], rec.id.to_string());
        assert_eq!(b["event"], "deadletter");
        assert_eq!(b["eventId"], "dlq:router:s:1");
        assert_eq!(
            b["acknowledgeUrl"],
            format!("https://medbus.example/api/v1/notifications/{}/acknowledge", rec.id)
        );
        assert_eq!(b["details"]["deliveries"], 2);
        assert_eq!(b["attempt"], 2);
        assert!(b.get("patient").is_none() && b.get("escalationOf").is_none());
        rec.escalation_of = Some(rec.id);
        assert_eq!(body(&rec, "", 1)["escalationOf"], rec.id.to_string());
        assert_eq!(header_value("plain").unwrap(), "plain");
        assert!(!header_value("env:MEDBUS_SURELY_UNSET_VARIABLE").unwrap_err().retryable);
    }
}
