//! `GET /fhir/metadata`: the CapabilityStatement. It lists exactly what the
//! handlers do: read, vread of the current version, create (with
//! If-None-Exist), update (also conditional, by identifier, and as create),
//! search by identifier, transaction and batch; no delete, history, patch
//! or other search parameters. JSON only.

use serde_json::{json, Value};

use crate::fhir::inbound::SUPPORTED;

/// The CapabilityStatement for a server whose base URL is `base`.
pub fn statement(base: &str) -> Value {
    let resources: Vec<Value> = SUPPORTED
        .iter()
        .map(|t| {
            json!({
                "type": t,
                "interaction": [
                    {"code": "read"},
                    {"code": "vread", "documentation": "Only the current version is kept."},
                    {"code": "update"},
                    {"code": "create"},
                    {"code": "search-type"}
                ],
                "versioning": "versioned-update",
                "readHistory": false,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "not-supported",
                "referencePolicy": ["literal", "local", "enforced"],
                "searchParam": [{
                    "name": "identifier",
                    "type": "token",
                    "documentation": "system|value, |value (no system) or value (any system)."
                }]
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        // Required by R4; the statement is built when asked, so it is dated then.
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "publisher": "medbus",
        "kind": "instance",
        "software": {"name": "medbus", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "medbus inbound FHIR R4 server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Every accepted resource is kept on the backbone before the answer and becomes the canonical events the HL7 v2 path produces. References must point at resources this server holds or at entries of the same Bundle. Patients need an identifier with a value.",
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}]
        }]
    })
}
