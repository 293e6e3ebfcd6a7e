//! [`to_bundle`]: an event's resources as one transaction Bundle.

use medbus_bus::canonical::CanonicalEvent;
use serde_json::{json, Value};

use super::FhirError;

/// A `transaction` Bundle of the event's resources, each a conditional update
/// by its key identifier (`PUT Patient?identifier=system|value`), so that a
/// resend updates what the first send created, and the whole event is applied
/// or none of it.
///
/// `fullUrl` is `urn:uuid:<id>` (the ids are UUIDs). Each resource keeps its
/// id: a server creates an unmatched resource under that id (update as
/// create), so the references between the entries, and to resources earlier
/// events created, hold.
pub fn to_bundle(event: &CanonicalEvent) -> Result<Value, FhirError> {
    let entry: Vec<Value> = super::mapped(event)?
        .into_iter()
        .map(|m| {
            json!({
                "fullUrl": format!("urn:uuid:{}", m.id),
                "resource": m.json,
                "request": {"method": "PUT", "url": m.url},
            })
        })
        .collect();
    Ok(json!({"resourceType": "Bundle", "type": "transaction", "entry": entry}))
}
