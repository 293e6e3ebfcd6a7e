//! What happened ([`Occurrence`]), which rules it fires, and the notification
//! records that makes (one per rule and recipient, not yet throttled).

use chrono::{DateTime, Utc};
use medbus_bus::canonical::{
    CodeableConcept, CriticalReason, CriticalResultEvent, DestinationStatusEvent, ObservationValue,
};
use medbus_bus::config::notifications::{NotificationsConfig, Recipient, RuleConfig, Trigger};
use serde_json::{json, Value};

use super::record::{notification_id, NotificationRecord, Status};

/// Something rules can fire on.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    /// What: `result.critical`, `deadletter`, `destination.down`.
    pub trigger: &'static str,
    /// Its stage (dead letters) or destination (destination.down), for rule filters.
    pub scope: Option<String>,
    /// The id of the event or dead letter; with rule and recipient it makes the notification id.
    pub event_id: String,
    /// What counts as "the same" for throttling.
    pub throttle_key: String,
    /// The patient (registration key), if any.
    pub patient_key: Option<String>,
    /// One line for people.
    pub summary: String,
    /// Structured details (no names, no birth dates: the patient by identifier only).
    pub details: Value,
    /// FHIR priority.
    pub priority: &'static str,
}

impl Occurrence {
    /// A critical result: the key is patient + observation code.
    pub fn critical(event_id: &str, e: &CriticalResultEvent) -> Occurrence {
        let patient = e.patient.key();
        let (code_token, code_text) = code_of(&e.observation.code);
        let value = e.observation.value.as_ref().map(value_text);
        let why = match &e.reason {
            CriticalReason::Flag(f) => format!("flag {f}"),
            CriticalReason::Threshold { low, high } => match (low, high) {
                (Some(l), Some(h)) => format!("outside {l}–{h}"),
                (Some(l), None) => format!("below {l}"),
                (None, Some(h)) => format!("above {h}"),
                (None, None) => "threshold".into(),
            },
        };
        let mrn = e
            .patient
            .identifier
            .iter()
            .find_map(|i| i.value.clone())
            .unwrap_or_else(|| "unknown".into());
        let summary = format!(
            "Critical result: {code_text} = {} ({why}), patient {mrn}",
            value.as_deref().unwrap_or("no value")
        );
        let reason = serde_json::to_value(&e.reason).unwrap_or(Value::Null);
        Occurrence {
            trigger: "result.critical",
            scope: None,
            event_id: event_id.to_string(),
            throttle_key: format!("{}/{code_token}", patient.as_deref().unwrap_or("?")),
            patient_key: patient.clone(),
            summary,
            details: json!({
                "patient": patient,
                "observation": e.observation.key(),
                "report": e.report.key(),
                "code": code_token,
                "test": code_text,
                "value": value,
                "reason": reason,
                "occurred": e.occurred.as_ref().map(|d| d.to_string()),
            }),
            priority: "stat",
        }
    }

    /// A dead letter of `stage`: the key is the stage.
    pub fn dead_letter(id: &str, stage: &str, subject: &str, reason: &str, deliveries: u32) -> Occurrence {
        Occurrence {
            trigger: "deadletter",
            scope: Some(stage.to_string()),
            event_id: id.to_string(),
            throttle_key: stage.to_string(),
            patient_key: None,
            summary: format!("Dead letter in {stage}: {}", first_line(reason, 200)),
            details: json!({
                "stage": stage,
                "subject": subject,
                "reason": reason,
                "deliveries": deliveries,
                "deadLetterId": id,
            }),
            priority: "urgent",
        }
    }

    /// A destination unreachable since `e.since`; the key is the destination.
    pub fn destination_down(event_id: &str, e: &DestinationStatusEvent, now: DateTime<Utc>) -> Occurrence {
        let minutes = (now - e.since).num_minutes().max(0);
        Occurrence {
            trigger: "destination.down",
            scope: Some(e.destination.clone()),
            event_id: event_id.to_string(),
            throttle_key: e.destination.clone(),
            patient_key: None,
            summary: format!(
                "Destination {} ({}) unreachable for {minutes} min: {}",
                e.destination,
                e.addr,
                e.reason.as_deref().unwrap_or("no answer")
            ),
            details: json!({
                "destination": e.destination,
                "protocol": e.protocol,
                "addr": e.addr,
                "since": super::record::rfc3339(e.since),
                "reason": e.reason,
            }),
            priority: "urgent",
        }
    }

    /// True when `trigger` fires on this.
    pub fn fires(&self, trigger: &Trigger) -> bool {
        let scope = self.scope.as_deref().unwrap_or_default();
        match self.trigger {
            "result.critical" => *trigger == Trigger::CriticalResult,
            "deadletter" => trigger.matches_dead_letter(scope),
            "destination.down" => trigger.matches_destination(scope),
            _ => false,
        }
    }
}

/// The rules `occ` fires, by name.
pub fn matching<'a>(
    cfg: &'a NotificationsConfig,
    occ: &'a Occurrence,
) -> impl Iterator<Item = (&'a str, &'a RuleConfig)> {
    cfg.rules
        .iter()
        .filter(move |(_, r)| r.trigger().is_ok_and(|t| occ.fires(&t)))
        .map(|(n, r)| (n.as_str(), r))
}

/// One pending record per matching rule (or only `only`) and recipient.
pub fn plan(
    cfg: &NotificationsConfig,
    occ: &Occurrence,
    only: Option<&str>,
    now: DateTime<Utc>,
) -> Vec<NotificationRecord> {
    matching(cfg, occ)
        .filter(|(name, _)| only.is_none_or(|o| o == *name))
        .flat_map(|(name, rule)| with_siblings(rule.to.iter().map(|r| record(name, occ, r, now)).collect()))
        .collect()
}

/// Records of one rule and event: each learns the ids of the others.
pub fn with_siblings(mut recs: Vec<NotificationRecord>) -> Vec<NotificationRecord> {
    let ids: Vec<_> = recs.iter().map(|r| r.id).collect();
    for r in &mut recs {
        r.siblings = ids.iter().copied().filter(|i| *i != r.id).collect();
    }
    recs
}

/// A pending record of `occ` by `rule` for `recipient`.
pub fn record(rule: &str, occ: &Occurrence, recipient: &Recipient, now: DateTime<Utc>) -> NotificationRecord {
    NotificationRecord {
        id: notification_id(rule, &occ.event_id, recipient),
        rule: rule.to_string(),
        trigger: occ.trigger.to_string(),
        event_id: occ.event_id.clone(),
        recipient: recipient.clone(),
        status: Status::Pending,
        status_reason: None,
        attempts: 0,
        last_error: None,
        created_at: now,
        sent_at: None,
        acknowledged_at: None,
        acknowledged_by: None,
        escalated: false,
        escalation_of: None,
        siblings: Vec::new(),
        patient_key: occ.patient_key.clone(),
        throttle_key: occ.throttle_key.clone(),
        priority: occ.priority.to_string(),
        summary: occ.summary.clone(),
        details: occ.details.clone(),
    }
}

/// `system|code` and a display text of the first coding.
fn code_of(c: &CodeableConcept) -> (String, String) {
    let coding = c.coding.iter().find(|c| c.code.is_some());
    let token = coding
        .map(|c| {
            format!(
                "{}|{}",
                c.system.as_deref().unwrap_or(""),
                c.code.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_else(|| c.text.clone().unwrap_or_default());
    let text = coding
        .and_then(|c| c.display.clone())
        .or_else(|| c.text.clone())
        .or_else(|| coding.and_then(|c| c.code.clone()))
        .unwrap_or_else(|| "unnamed test".into());
    (token, text)
}

fn value_text(v: &ObservationValue) -> String {
    match v {
        ObservationValue::Quantity(q) => {
            let comparator = q
                .comparator
                .and_then(|c| serde_json::to_value(c).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let value = q.value.map(|d| d.to_string()).unwrap_or_default();
            let unit = q.unit.as_deref().or(q.code.as_deref()).unwrap_or("");
            format!("{comparator}{value} {unit}").trim().to_string()
        }
        ObservationValue::CodeableConcept(c) => code_of(c).1,
        ObservationValue::String(s) => first_line(s, 80),
        ObservationValue::DateTime(d) => d.to_string(),
    }
}

/// The first line of `s`, at most `max` characters.
fn first_line(s: &str, max: usize) -> String {
    s.lines().next().unwrap_or("").chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use medbus_bus::config::notifications::WebhookChannel;

    use super::*;

    fn cfg() -> NotificationsConfig {
        let mut c = NotificationsConfig::default();
        c.webhooks.insert(
            "oncall".into(),
            WebhookChannel {
                url: "http://x/".into(),
                ..Default::default()
            },
        );
        let to = |c: &str| Recipient {
            channel: c.into(),
            address: None,
        };
        let rule = |on: &str| RuleConfig {
            on: on.into(),
            to: vec![to("oncall"), to("oncall2")],
            ..Default::default()
        };
        c.rules.insert("all_dlq".into(), rule("deadletter"));
        c.rules.insert("router_dlq".into(), rule("deadletter.router"));
        c.rules.insert("his_down".into(), rule("destination.down.his"));
        c
    }

    #[test]
    fn rules_fire_by_trigger_and_scope_with_one_record_per_recipient() {
        let c = cfg();
        let now = Utc::now();
        let occ = Occurrence::dead_letter("dlq:router:s:1", "router", "s", "bad", 1);
        let recs = plan(&c, &occ, None, now);
        assert_eq!(recs.len(), 4, "two rules, two recipients each");
        let occ = Occurrence::dead_letter("dlq:deliver_his:s:2", "deliver_his", "s", "bad", 5);
        let recs = plan(&c, &occ, None, now);
        assert_eq!(
            recs.iter().map(|r| r.rule.as_str()).collect::<Vec<_>>(),
            ["all_dlq", "all_dlq"]
        );
        assert_eq!(recs[0].siblings, [recs[1].id], "each knows the other recipient's");
        assert_eq!(recs[1].siblings, [recs[0].id]);
        assert_eq!(plan(&c, &occ, Some("router_dlq"), now).len(), 0);
        let down = DestinationStatusEvent {
            destination: "lab".into(),
            protocol: "hl7v2".into(),
            addr: "h:1".into(),
            since: now,
            reason: None,
            recovered_at: None,
        };
        assert!(plan(&c, &Occurrence::destination_down("e", &down, now), None, now).is_empty());
        let his = DestinationStatusEvent {
            destination: "his".into(),
            ..down
        };
        let recs = plan(&c, &Occurrence::destination_down("e", &his, now), None, now);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].throttle_key, "his");
        assert!(recs[0].summary.starts_with("Destination his (h:1) unreachable"));
    }
}
