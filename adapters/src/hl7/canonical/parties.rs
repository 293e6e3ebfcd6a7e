//! Who and where, for the message types after ADT: the patient (PID) with a
//! reference to them and to their visit (PV1), clinicians (XCN) and places
//! (PL) as references.

use medbus_bus::canonical::{Identifier, Patient, Reference};

use super::encounter::visit_identifier;
use super::error::MapError;
use super::patient;
use super::types::{comp, display_name, identifier, name, sub};
use super::Ctx;
use crate::hl7::parser::{Repetition, Segment};

/// The patient a part of a message is about, and how resources refer to them.
#[derive(Debug, Clone)]
pub(super) struct Subject {
    /// The patient as sent (PID).
    pub(super) patient: Patient,
    /// A logical reference to the patient, by key identifier.
    pub(super) reference: Reference,
    /// A logical reference to the visit, when PV1 (or PID-18) names one.
    pub(super) encounter: Option<Reference>,
}

/// A reference that names its target by identifier only.
fn by_identifier(type_: &str, id: &Identifier) -> Reference {
    Reference {
        type_: Some(type_.into()),
        identifier: Some(Identifier {
            // The reference names the target; the assigner's details live on the target.
            assigner: None,
            period: None,
            ..id.clone()
        }),
        ..Reference::default()
    }
}

/// PID (and PV1, when the message has one for this patient) → [`Subject`].
pub(super) fn subject(ctx: &Ctx<'_, '_>, pid: &Segment<'_>, pv1: Option<&Segment<'_>>) -> Result<Subject, MapError> {
    let patient = patient::patient(ctx, pid)?;
    let encounter = match pv1 {
        // The same identifier the encounter events key the visit by, so the two meet.
        Some(pv1) => visit_identifier(ctx, pv1, pid)?.map(|id| by_identifier("Encounter", &id)),
        None => None,
    };
    Ok(Subject {
        reference: patient.reference(),
        patient,
        encounter,
    })
}

/// XCN → a Practitioner reference: XCN-1 id with XCN-9 authority and XCN-13
/// type, the name as display. `None` without id or name.
pub(super) fn practitioner(rep: &Repetition<'_>) -> Option<Reference> {
    let id = identifier(comp(rep, 1), rep.component(9), comp(rep, 13), None);
    let display = name(rep, 1).as_ref().and_then(display_name);
    if id.is_none() && display.is_none() {
        return None;
    }
    Some(Reference {
        type_: Some("Practitioner".into()),
        identifier: id,
        display,
        ..Reference::default()
    })
}

/// PL → a Location reference with a display: PL-9 description, else point of
/// care / room / bed / facility. `None` when empty.
pub(super) fn location(rep: &Repetition<'_>) -> Option<Reference> {
    let display = comp(rep, 9).or_else(|| {
        let parts: Vec<String> = [
            comp(rep, 1),
            comp(rep, 2),
            comp(rep, 3),
            rep.component(4).and_then(|c| sub(c, 1)),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join(" / "))
    })?;
    Some(Reference {
        type_: Some("Location".into()),
        display: Some(display),
        ..Reference::default()
    })
}
