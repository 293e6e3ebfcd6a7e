//! Canonical events → FHIR R4 resources ([`to_fhir`]) and transaction
//! Bundles ([`to_bundle`]), what the outbound FHIR destination sends.
//!
//! | events                       | resources (in this order)                               |
//! |------------------------------|---------------------------------------------------------|
//! | `patient.registered/updated` | Patient                                                 |
//! | `patient.merged`             | Patient (survivor, `link` replaces), Patient per merged record (inactive, `link` replaced-by) |
//! | `encounter.*`                | Patient, Encounter                                      |
//! | `order.*`                    | Patient, ServiceRequest                                 |
//! | `appointment.*`              | Patient, Appointment                                    |
//! | `result.reported/corrected`  | Patient, Observation per value, DiagnosticReport        |
//! | `result.critical`            | Patient, Observation, DiagnosticReport, Communication (`alert`) |
//! | `billing.charge-*`           | Patient, ChargeItem                                     |
//!
//! The canonical resources are already R4-shaped (status and class follow the
//! event); this adds what a FHIR server needs to link them: each resource's
//! stable `id` ([`logical_id`] of its type and natural key), literal
//! references `Type/id` next to the logical ones (subject → Patient,
//! encounter → Encounter, basedOn → ServiceRequest by placer number, result
//! → Observation), and the patient in every resource that has a subject.
//! docs/fhir.md has the details and how the output is validated.
//!
//! Files: `ids` (ids, conditional URLs), `links` (references),
//! `resources` (patient, encounter, order, appointment, charge), `results`
//! (results, critical values), `bundle` ([`to_bundle`]).

mod bundle;
pub mod destination;
mod ids;
pub mod inbound;
mod links;
mod resources;
mod results;
pub mod server;

#[cfg(test)]
mod tests;

use medbus_bus::canonical::CanonicalEvent;
use serde_json::Value;

pub use bundle::to_bundle;
pub use ids::{conditional_url, literal, logical_id};

use resources::Mapped;

/// Why an event could not become FHIR resources.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// A resource has no identifier with a value, so no stable id can be made.
    #[error("{resource_type} has no identifier with a value: no stable id can be derived for it")]
    NoKey {
        /// The resource type.
        resource_type: &'static str,
    },
    /// A resource did not serialise (a bug: canonical types always do).
    #[error("{resource_type} did not serialise: {source}")]
    Json {
        /// The resource type.
        resource_type: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A resource serialised to something other than a JSON object (a bug).
    #[error("{resource_type} did not serialise to a JSON object")]
    NotAnObject {
        /// The resource type.
        resource_type: &'static str,
    },
}

/// The FHIR R4 resources `event` describes, each with its stable `id`; the
/// patient comes first, targets before the resources referring to them.
pub fn to_fhir(event: &CanonicalEvent) -> Result<Vec<Value>, FhirError> {
    Ok(mapped(event)?.into_iter().map(|m| m.json).collect())
}

/// Every kind is named, with no wildcard, so that a new kind does not compile
/// until it has a mapping.
fn mapped(event: &CanonicalEvent) -> Result<Vec<Mapped>, FhirError> {
    let all = match event {
        CanonicalEvent::PatientRegistered(b) | CanonicalEvent::PatientUpdated(b) => {
            vec![resources::patient(&b.patient)?]
        }
        CanonicalEvent::PatientMerged(b) => resources::merge(b)?,
        CanonicalEvent::EncounterPlanned(b)
        | CanonicalEvent::EncounterStarted(b)
        | CanonicalEvent::EncounterUpdated(b)
        | CanonicalEvent::EncounterFinished(b)
        | CanonicalEvent::EncounterCancelled(b)
        | CanonicalEvent::EncounterReopened(b) => resources::encounter(b)?,
        CanonicalEvent::OrderPlaced(b)
        | CanonicalEvent::OrderUpdated(b)
        | CanonicalEvent::OrderCancelled(b)
        | CanonicalEvent::OrderCompleted(b) => resources::order(b)?,
        CanonicalEvent::AppointmentBooked(b)
        | CanonicalEvent::AppointmentRescheduled(b)
        | CanonicalEvent::AppointmentCancelled(b)
        | CanonicalEvent::AppointmentNoshow(b) => resources::appointment(b)?,
        CanonicalEvent::ResultReported(b) | CanonicalEvent::ResultCorrected(b) => results::result(b)?,
        CanonicalEvent::ResultCritical(b) => results::critical(b)?,
        CanonicalEvent::ChargePosted(b) | CanonicalEvent::ChargeReversed(b) => resources::charge(b)?,
        CanonicalEvent::ImagingInstanceStored(b) | CanonicalEvent::ImagingStudyCompleted(b) => resources::imaging(b)?,
    };
    Ok(dedupe(all))
}

/// One resource per id (the last one sent wins, in the first one's place):
/// a Bundle may not hold two entries for one resource, and a source that
/// repeats an observation means the same one.
fn dedupe(all: Vec<Mapped>) -> Vec<Mapped> {
    let mut out: Vec<Mapped> = Vec::with_capacity(all.len());
    for m in all {
        match out.iter_mut().find(|o| o.id == m.id) {
            Some(existing) => *existing = m,
            None => out.push(m),
        }
    }
    out
}
