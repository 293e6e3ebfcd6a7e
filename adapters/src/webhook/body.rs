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
