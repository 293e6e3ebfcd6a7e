//! The JSON a subscriber receives: the event's envelope fields and its body,
//! `{id, kind, subject, correlationId, occurredAt, body}`.

use medbus_bus::backbone::Delivery;
use medbus_bus::envelope::{header, Body, Envelope};
use serde_json::json;

/// The request body for `d` and the event id, or why the message is not an event.
pub fn event_body(d: &Delivery) -> Result<(Vec<u8>, String), String> {
    let env = Envelope::from_wire(&d.headers, d.payload.clone()).map_err(|e| format!("not a medbus event: {e}"))?;
    let Body::Json { value } = env.body else {
        return Err("not a medbus event: the body is raw bytes, not JSON".into());
    };
    let id = env.id.to_string();
    let b = json!({
        "id": id,
        "kind": env.kind,
        "subject": d.subject,
        "correlationId": env.correlation_id.to_string(),
        // The header as sent, so a receiver sees the same text as a NATS subscriber.
        "occurredAt": d.headers.get(header::OCCURRED_AT).cloned().unwrap_or_default(),
        "body": value,
    });
    serde_json::to_vec(&b)
        .map(|bytes| (bytes, id))
        .map_err(|e| format!("cannot encode the event: {e}"))
}
