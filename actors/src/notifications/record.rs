//! A notification as stored: a FHIR R4 `Communication` with medbus
//! extensions (channel, attempts, last error, acknowledgement, escalation),
//! kept in the clinical store under its id.
//!
//! The row's status (what the sweeps query) is the medbus delivery status
//! ([`Status`]); the resource's `status` is the FHIR one derived from it.

use base64::Engine;
use chrono::{DateTime, Utc};
use medbus_bus::config::notifications::Recipient;
use medbus_bus::store::{ResourceRow, ResourceWrite};
use serde_json::{json, Value};
use uuid::Uuid;

/// The resource type notifications are stored as.
pub const RESOURCE_TYPE: &str = "Communication";

/// Identifier system of notification ids.
pub const ID_SYSTEM: &str = "urn:medbus:notification";

/// Prefix of the medbus extension URLs.
const EXT: &str = "urn:medbus:notification:";

/// Ids are UUID v5 in this namespace, derived from (rule, event, recipient):
/// the same event for the same recipient always makes the same notification.
const NAMESPACE: Uuid = Uuid::from_u128(0x6d656462_7573_4e6f_7469_667963617469);

/// Where a notification is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Recorded; being delivered (or waiting for the retry sweep).
    Pending,
    /// Delivered; its rule does not escalate.
    Sent,
    /// Delivered; escalates unless acknowledged in time.
    AwaitingAck,
    /// Every attempt failed.
    Failed,
    /// A repeat inside the rule's throttle window: recorded, not sent.
    Suppressed,
    /// Someone acknowledged it.
    Acknowledged,
    /// Not acknowledged in time: the escalation recipients were notified.
    Escalated,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Sent,
        Status::AwaitingAck,
        Status::Failed,
        Status::Suppressed,
        Status::Acknowledged,
        Status::Escalated,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent => "sent",
            Status::AwaitingAck => "awaiting-ack",
            Status::Failed => "failed",
            Status::Suppressed => "suppressed",
            Status::Acknowledged => "acknowledged",
            Status::Escalated => "escalated",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Status> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// FHIR `Communication.status`.
    pub fn fhir(self) -> &'static str {
        match self {
            Status::Pending => "in-progress",
            Status::Failed | Status::Suppressed => "not-done",
            Status::Sent | Status::AwaitingAck | Status::Acknowledged | Status::Escalated => "completed",
        }
    }

    /// True once it went out (what acknowledging and throttling care about).
    pub fn delivered(self) -> bool {
        matches!(
            self,
            Status::Sent | Status::AwaitingAck | Status::Acknowledged | Status::Escalated
        )
    }
}

/// One notification to one recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRecord {
    /// Its id (also the store key and the acknowledge path segment).
    pub id: Uuid,
    /// The rule that made it.
    pub rule: String,
    /// What happened: `result.critical`, `deadletter`, `destination.down`.
    pub trigger: String,
    /// The id of what happened (event id, dead letter id).
    pub event_id: String,
    /// To whom.
    pub recipient: Recipient,
    /// Delivery status.
    pub status: Status,
    /// Why it is not done (suppressed, failed), if so.
    pub status_reason: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it went out.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was acknowledged, and by whom.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// True once its escalation was sent.
    pub escalated: bool,
    /// For an escalation: the notification it escalates.
    pub escalation_of: Option<Uuid>,
    /// The notifications of the same rule and event to its other recipients
    /// (acknowledging one acknowledges them all).
    pub siblings: Vec<Uuid>,
    /// The patient (registration key), if it is about one.
    pub patient_key: Option<String>,
    /// The throttle key (patient + code, stage, destination).
    pub throttle_key: String,
    /// FHIR priority: `stat` for critical results, `urgent` otherwise.
    pub priority: String,
    /// One line for people (the e-mail subject and webhook `summary`).
    pub summary: String,
    /// Structured details for webhooks (no more PHI than the summary).
    pub details: Value,
}

/// The id of the notification of `event_id` by `rule` to `recipient`.
pub fn notification_id(rule: &str, event_id: &str, recipient: &Recipient) -> Uuid {
    let name = format!("{rule}\n{event_id}\n{}", recipient.label());
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

/// The acknowledge path of notification `id`.
pub fn acknowledge_path(id: Uuid) -> String {
    format!("/api/v1/notifications/{id}/acknowledge")
}

/// The identifier token a notification is found by.
pub fn id_token(id: Uuid) -> String {
    format!("{ID_SYSTEM}|{id}")
}

/// The identifier token the newest delivered notification of a rule and key carries.
pub fn throttle_token(rule: &str, key: &str) -> String {
    format!("urn:medbus:notification-throttle|{rule}|{key}")
}

impl NotificationRecord {
    /// The store write; `throttled` adds the throttle token (only when it is
    /// recorded for sending, so the token stays with the newest one sent).
    pub fn to_write(&self, throttled: bool) -> ResourceWrite {
        let mut identifiers = vec![id_token(self.id)];
        if throttled {
            identifiers.push(throttle_token(&self.rule, &self.throttle_key));
        }
        ResourceWrite {
            resource_type: RESOURCE_TYPE.into(),
            key: self.id.to_string(),
            patient_key: self.patient_key.clone(),
            status: self.status.as_str().into(),
            identifiers,
            order_tokens: Vec::new(),
            resource: self.to_resource(),
        }
    }

    /// The FHIR Communication.
    pub fn to_resource(&self) -> Value {
        let mut ext = vec![
            ext_s("rule", &self.rule),
            ext_s("trigger", &self.trigger),
            ext_s("event-id", &self.event_id),
            ext_s("channel", &self.recipient.channel),
            ext_s("delivery-status", self.status.as_str()),
            ext_s("throttle-key", &self.throttle_key),
            json!({"url": format!("{EXT}attempts"), "valueInteger": self.attempts}),
            json!({"url": format!("{EXT}escalated"), "valueBoolean": self.escalated}),
            ext_t("created-at", self.created_at),
        ];
        if let Some(a) = &self.recipient.address {
            ext.push(ext_s("address", a));
        }
        if let Some(e) = &self.last_error {
            ext.push(ext_s("last-error", e));
        }
        if let Some(t) = self.acknowledged_at {
            ext.push(ext_t("acknowledged-at", t));
        }
        if let Some(b) = &self.acknowledged_by {
            ext.push(ext_s("acknowledged-by", b));
        }
        if let Some(o) = self.escalation_of {
            ext.push(ext_s("escalation-of", &o.to_string()));
        }
        ext.extend(self.siblings.iter().map(|s| ext_s("sibling", &s.to_string())));
        let details = serde_json::to_vec(&self.details).unwrap_or_default();
        let mut r = json!({
            "resourceType": "Communication",
            "id": self.id.to_string(),
            "extension": ext,
            "identifier": [{"system": ID_SYSTEM, "value": self.id.to_string()}],
            "status": self.status.fhir(),
            "category": [{"coding": [{"system": "urn:medbus:notification-rule", "code": self.rule}]}],
            "priority": self.priority,
            "topic": {"text": self.trigger},
            "recipient": [{"display": self.recipient.address.as_deref().unwrap_or(&self.recipient.channel)}],
            "payload": [
                {"contentString": self.summary},
                {"contentAttachment": {
                    "contentType": "application/json",
                    "data": base64::engine::general_purpose::STANDARD.encode(details),
                }},
            ],
        });
        if let Some(reason) = &self.status_reason {
            r["statusReason"] = json!({"text": reason});
        }
        if let Some(subject) = self.patient_key.as_deref().and_then(patient_reference) {
            r["subject"] = subject;
        }
        if let Some(t) = self.sent_at {
            r["sent"] = json!(rfc3339(t));
        }
        r
    }

    /// Reads a stored notification back; `None` when the row is not one of ours.
    pub fn from_row(row: &ResourceRow) -> Option<NotificationRecord> {
        let r = &row.resource;
        let ext = |name: &str| -> Option<&Value> {
            let url = format!("{EXT}{name}");
            r["extension"]
                .as_array()?
                .iter()
                .find(|e| e["url"] == url.as_str())
                .and_then(|e| e.as_object())
                .and_then(|o| o.iter().find(|(k, _)| k.starts_with("value")).map(|(_, v)| v))
        };
        let s = |name: &str| ext(name).and_then(Value::as_str).map(str::to_string);
        let t = |name: &str| {
            s(name)
                .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
                .map(|d| d.with_timezone(&Utc))
        };
        let details = r["payload"]
            .as_array()
            .and_then(|p| p.iter().find_map(|x| x["contentAttachment"]["data"].as_str()))
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        Some(NotificationRecord {
            id: Uuid::parse_str(&row.key).ok()?,
            rule: s("rule")?,
            trigger: s("trigger")?,
            event_id: s("event-id")?,
            recipient: Recipient {
                channel: s("channel")?,
                address: s("address"),
            },
            status: Status::parse(&row.status)?,
            status_reason: r["statusReason"]["text"].as_str().map(str::to_string),
            attempts: ext("attempts").and_then(Value::as_u64).unwrap_or(0) as u32,
            last_error: s("last-error"),
            created_at: t("created-at").unwrap_or(row.updated_at),
            sent_at: r["sent"]
                .as_str()
                .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                .map(|d| d.with_timezone(&Utc)),
            acknowledged_at: t("acknowledged-at"),
            acknowledged_by: s("acknowledged-by"),
            escalated: ext("escalated").and_then(Value::as_bool).unwrap_or(false),
            escalation_of: s("escalation-of").and_then(|v| Uuid::parse_str(&v).ok()),
            siblings: r["extension"]
                .as_array()
                .map(|a| {
                    let url = format!("{EXT}sibling");
                    a.iter()
                        .filter(|e| e["url"] == url.as_str())
                        .filter_map(|e| e["valueString"].as_str().and_then(|v| Uuid::parse_str(v).ok()))
                        .collect()
                })
                .unwrap_or_default(),
            patient_key: row.patient_key.clone(),
            throttle_key: s("throttle-key").unwrap_or_default(),
            priority: r["priority"].as_str().unwrap_or("routine").to_string(),
            summary: r["payload"][0]["contentString"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            details,
        })
    }
}

fn ext_s(name: &str, v: &str) -> Value {
    json!({"url": format!("{EXT}{name}"), "valueString": v})
}

fn ext_t(name: &str, t: DateTime<Utc>) -> Value {
    json!({"url": format!("{EXT}{name}"), "valueDateTime": rfc3339(t)})
}

/// RFC 3339 in UTC with milliseconds (a FHIR dateTime).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A Patient reference by identifier from a registration key `system|value`.
fn patient_reference(key: &str) -> Option<Value> {
    let identifier = match key.rsplit_once('|') {
        Some((system, value)) if !system.is_empty() => json!({"system": system, "value": value}),
        Some((_, value)) => json!({"value": value}),
        None => json!({"value": key}),
    };
    Some(json!({"type": "Patient", "identifier": identifier}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NotificationRecord {
        let recipient = Recipient {
            channel: "mail".into(),
            address: Some("lab@hospital.example".into()),
        };
        NotificationRecord {
            id: notification_id("critical", "e1", &recipient),
            rule: "critical".into(),
            trigger: "result.critical".into(),
            event_id: "e1".into(),
            recipient,
            status: Status::AwaitingAck,
            status_reason: None,
            attempts: 2,
            last_error: Some("503".into()),
            created_at: DateTime::parse_from_rfc3339("2026-12-01T10:00:00.000Z")
                .unwrap()
                .to_utc(),
            sent_at: Some(
                DateTime::parse_from_rfc3339("2026-12-01T10:00:01.500Z")
                    .unwrap()
                    .to_utc(),
            ),
            acknowledged_at: None,
            acknowledged_by: None,
            escalated: false,
            escalation_of: None,
            siblings: vec![Uuid::now_v7(), Uuid::now_v7()],
            patient_key: Some("urn:oid:1.2|MRN1".into()),
            throttle_key: "urn:oid:1.2|MRN1/http://loinc.org|2823-3".into(),
            priority: "stat".into(),
            summary: "Critical result".into(),
            details: json!({"code": "2823-3"}),
        }
    }

    #[test]
    fn round_trips_through_the_store_shape() {
        let rec = sample();
        let w = rec.to_write(true);
        assert_eq!(w.status, "awaiting-ack");
        assert_eq!(w.identifiers.len(), 2);
        assert_eq!(w.resource["status"], "completed");
        assert_eq!(w.resource["subject"]["identifier"]["value"], "MRN1");
        let row = ResourceRow {
            resource_type: w.resource_type,
            key: w.key,
            patient_key: w.patient_key,
            status: w.status,
            order_key: None,
            resource: w.resource,
            version: 1,
            updated_at: Utc::now(),
        };
        assert_eq!(NotificationRecord::from_row(&row), Some(rec));
    }

    #[test]
    fn ids_are_stable_per_rule_event_and_recipient() {
        let a = Recipient {
            channel: "oncall".into(),
            address: None,
        };
        assert_eq!(notification_id("r", "e", &a), notification_id("r", "e", &a));
        assert_ne!(notification_id("r", "e", &a), notification_id("r", "e2", &a));
        assert_ne!(notification_id("r", "e", &a), notification_id("r2", "e", &a));
    }
}
