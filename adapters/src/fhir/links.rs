//! Turning the canonical model's logical references (by identifier) into
//! literal ones (`ResourceType/id`) wherever the target's id can be computed.

use medbus_bus::canonical::{Identifier, Patient, Reference};

use super::ids::literal;
use super::FhirError;

/// Adds `reference = Type/id` to a logical reference whose target medbus
/// writes itself and keys by that very identifier. Others (Practitioner,
/// Location, Organization; an order named only by its filler number) stay
/// logical: a literal reference to an id medbus never writes would dangle.
pub(super) fn resolve(r: &mut Reference) {
    if r.reference.is_some() {
        return;
    }
    let (Some(type_), Some(identifier)) = (r.type_.as_deref(), r.identifier.as_ref()) else {
        return;
    };
    let Some(token) = identifier.token() else {
        return;
    };
    let keyed = match type_ {
        "Patient" | "Encounter" | "Observation" | "DiagnosticReport" | "Appointment" | "ChargeItem" => true,
        // An order's key is its placer number whenever it has one (placer first).
        "ServiceRequest" => identifier.has_type("PLAC"),
        _ => false,
    };
    if keyed {
        r.reference = Some(literal(type_, &token));
    }
}

/// The reference every resource of an event uses for its patient: by key
/// identifier, name, and the literal `Patient/id`.
pub(super) fn patient_reference(patient: &Patient) -> Result<Reference, FhirError> {
    let key = patient.key().ok_or(FhirError::NoKey {
        resource_type: "Patient",
    })?;
    let mut r = patient.reference();
    r.reference = Some(literal("Patient", &key));
    Ok(r)
}

/// The first identifier with a value: the key identifier of every resource
/// but Patient (whose key prefers the MRN).
pub(super) fn first_with_value(identifiers: &[Identifier]) -> Option<&Identifier> {
    identifiers.iter().find(|i| i.value.is_some())
}
