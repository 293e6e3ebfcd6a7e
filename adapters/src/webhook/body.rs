//! The JSON a subscriber receives: the event's envelope fields and its body,
//! `{id, kind, subject, correlationId, occurredAt, body}`.

use bytes::Bytes;
use medbus_bus::backbone::Headers;
use medbus_bus::envelope::{header, Body, Envelope};
use serde_json::json;

/// The JSON of the event stored on `subject` with `headers` and `payload`, and
/// its event id; or why the message is not an event. The SSE endpoint sends the same JSON.
pub fn event_json(subject: &str, headers: &Headers, payload: &Bytes) -> Result<(Vec<u8>, String), String> {
    let env = Envelope::from_wire(headers, payload.clone()).map_err(|e| format!("not a medbus event: {e}"))?;
    let Body::Json { value } = env.body else {
        return Err("not a medbus event: the body is raw bytes, not JSON".into());
    };
    let id = env.id.to_string();
    let b = json!({
        "id": id,
        "kind": env.kind,
        "subject": subject,
        "correlationId": env.correlation_id.to_string(),
        // The header as sent, so a receiver sees the same text as a NATS subscriber.
        "occurredAt": headers.get(header::OCCURRED_AT).cloned().unwrap_or_default(),
        "body": value,
    });
    serde_json::to_vec(&b)
        .map(|bytes| (bytes, id))
        .map_err(|e| format!("cannot encode the event: {e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use medbus_bus::envelope::Source;

    use super::*;

    #[test]
    fn the_json_names_the_event_and_carries_its_body() {
        let source = Source {
            channel: "adt".into(),
            protocol: "hl7v2".into(),
            peer: None,
        };
        let raw = Envelope::ingress(source, "hl7v2.raw", BTreeMap::new(), Bytes::from_static(b"MSH|"));
        let ev = raw.derive_event("patient.registered", json!({"patient": {"resourceType": "Patient"}}));
        let out = ev
            .to_outgoing("medbus.events.patient.registered".into(), ev.id.to_string())
            .unwrap();
        let (bytes, id) = event_json(&out.subject, &out.headers, &out.payload).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(id, ev.id.to_string());
        assert_eq!(v["id"], id);
        assert_eq!(v["kind"], "patient.registered");
        assert_eq!(v["subject"], "medbus.events.patient.registered");
        assert_eq!(v["correlationId"], raw.id.to_string());
        assert_eq!(v["occurredAt"], out.headers[header::OCCURRED_AT]);
        assert_eq!(v["body"]["patient"]["resourceType"], "Patient");
        let raw_out = raw.to_outgoing("medbus.events.x.y".into(), "d".into()).unwrap();
        let err = event_json(&raw_out.subject, &raw_out.headers, &raw_out.payload).unwrap_err();
        assert!(err.contains("raw bytes"), "{err}");
    }
}
