//! PV1 → Encounter: class, visit number, location, clinicians, admit and
//! discharge times.

use medbus_bus::canonical::{
    systems, CodeableConcept, Coding, DateTime, Encounter, EncounterHospitalization, EncounterLocation,
    EncounterLocationStatus, EncounterParticipant, EncounterStatus, Identifier, Patient, Period, Reference,
};

use super::error::MapError;
use super::types::{coded, comp, cx, date_time, display_name, identifier, loc, name, reps, sub};
use super::Ctx;
use crate::hl7::parser::{Repetition, Segment};

/// HL7 table 0004 patient class → Encounter.class, as the HL7 v2-to-FHIR
/// concept map has it: v3 ActCode where there is one, the v2 code otherwise.
fn class(code: &str) -> Coding {
    match code {
        "E" => Coding::new(systems::V3_ACT_CODE, "EMER", Some("emergency")),
        "I" => Coding::new(systems::V3_ACT_CODE, "IMP", Some("inpatient encounter")),
        "O" => Coding::new(systems::V3_ACT_CODE, "AMB", Some("ambulatory")),
        "P" => Coding::new(systems::V3_ACT_CODE, "PRENC", Some("pre-admission")),
        "R" => Coding::new(systems::V2_0004, "R", Some("Recurring patient")),
        "B" => Coding::new(systems::V2_0004, "B", Some("Obstetrics")),
        "C" => Coding::new(systems::V2_0004, "C", Some("Commercial Account")),
        "N" => Coding::new(systems::V2_0004, "N", Some("Not Applicable")),
        "U" => Coding::new(systems::V2_0004, "U", Some("Unknown")),
        other => Coding::new(systems::V2_0004, other, None),
    }
}

/// PV1-2, the patient class code, if sent.
pub(super) fn patient_class(pv1: &Segment<'_>) -> Option<String> {
    super::types::code(reps(pv1, 2).next().and_then(|(_, r)| comp(&r, 1)))
}

/// The visit's identifier: PV1-19 visit number, else PV1-50 alternate visit
/// id, else PID-18 patient account number (some systems key visits by account).
pub(super) fn visit_identifier(
    ctx: &Ctx<'_, '_>,
    pv1: &Segment<'_>,
    pid: &Segment<'_>,
) -> Result<Option<Identifier>, MapError> {
    for (seg, segment, field, type_) in [(pv1, "PV1", 19, "VN"), (pv1, "PV1", 50, "VN"), (pid, "PID", 18, "AN")] {
        let at = loc(seg, segment, field);
        if let Some((r, rep)) = reps(seg, field).next() {
            if let Some(id) = cx(&rep, &at, r, Some(type_), ctx.zone)? {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

/// XCN → a participant in `role` (v3 ParticipationType); `None` without id or name.
fn participant(rep: &Repetition<'_>, role: (&str, &str)) -> Option<EncounterParticipant> {
    // XCN-1 is the id, XCN-2..7 are the name in XPN order, XCN-9 the authority, XCN-13 the type.
    let id = identifier(comp(rep, 1), rep.component(9), comp(rep, 13), None);
    let display = name(rep, 1).as_ref().and_then(display_name);
    if id.is_none() && display.is_none() {
        return None;
    }
    Some(EncounterParticipant {
        type_: vec![CodeableConcept::coded(Coding::new(
            systems::V3_PARTICIPATION_TYPE,
            role.0,
            Some(role.1),
        ))],
        period: None,
        individual: Some(Reference {
            type_: Some("Practitioner".into()),
            identifier: id,
            display,
            ..Reference::default()
        }),
    })
}

/// PL → a display: PL-9 description, else point of care / room / bed / facility.
fn location_display(rep: &Repetition<'_>) -> Option<String> {
    if let Some(description) = comp(rep, 9) {
        return Some(description);
    }
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
}

/// What the trigger says about the visit, beyond PV1 itself.
pub(super) struct VisitState<'a> {
    /// The status the trigger implies.
    pub(super) status: EncounterStatus,
    /// The event time, the end of the visit when a discharge has no PV1-45.
    pub(super) occurred: Option<&'a DateTime>,
}

/// PV1 (with PID-18 as the last resort for the visit number) → Encounter.
pub(super) fn encounter(
    ctx: &Ctx<'_, '_>,
    pv1: &Segment<'_>,
    pid: &Segment<'_>,
    patient: &Patient,
    state: VisitState<'_>,
) -> Result<Encounter, MapError> {
    let class_code = patient_class(pv1).ok_or(MapError::MissingField {
        location: loc(pv1, "PV1", 2),
        why: "the patient class gives the encounter class",
    })?;
    let visit = visit_identifier(ctx, pv1, pid)?.ok_or(MapError::MissingField {
        location: loc(pv1, "PV1", 19),
        why: "a visit number (or PV1-50 or PID-18) is needed to identify the encounter",
    })?;
    let mut e = Encounter::new(state.status, class(&class_code));
    e.identifier.push(visit);
    e.subject = Some(patient.reference());
    e.service_type = reps(pv1, 10).next().and_then(|(_, r)| coded(&r, systems::V2_0069));
    for (field, role) in [
        (7, ("ATND", "attender")),
        (8, ("REF", "referrer")),
        (9, ("CON", "consultant")),
        (17, ("ADM", "admitter")),
    ] {
        e.participant
            .extend(reps(pv1, field).filter_map(|(_, r)| participant(&r, role)));
    }
    let time = |field: usize| {
        let value = reps(pv1, field).next().and_then(|(_, r)| comp(&r, 1));
        date_time(value, loc(pv1, "PV1", field), ctx.zone)
    };
    let start = time(44)?;
    // A cancelled discharge reopens the visit: whatever end was sent no longer holds.
    let reopened = ctx.trigger == "A13";
    let end = match state.status {
        _ if reopened => None,
        EncounterStatus::Finished => time(45)?.or_else(|| state.occurred.cloned()),
        _ => time(45)?,
    };
    e.period = Period::new(start, end);
    let hospitalization = EncounterHospitalization {
        admit_source: reps(pv1, 14).next().and_then(|(_, r)| coded(&r, systems::V2_0023)),
        discharge_disposition: reps(pv1, 36)
            .next()
            .filter(|_| !reopened)
            .and_then(|(_, r)| coded(&r, systems::V2_0112)),
    };
    e.hospitalization = (!hospitalization.is_empty()).then_some(hospitalization);
    let location_status = match state.status {
        EncounterStatus::Planned => Some(EncounterLocationStatus::Planned),
        EncounterStatus::Finished => Some(EncounterLocationStatus::Completed),
        EncounterStatus::InProgress | EncounterStatus::Arrived => Some(EncounterLocationStatus::Active),
        _ => None,
    };
    e.location = reps(pv1, 3)
        .filter_map(|(_, r)| location_display(&r))
        .map(|display| EncounterLocation {
            location: Reference {
                type_: Some("Location".into()),
                display: Some(display),
                ..Reference::default()
            },
            status: location_status,
            period: None,
        })
        .collect();
    Ok(e)
}

/// Status for an update (A08), from PV1 alone: a discharge time means
/// finished, an admit time in progress; otherwise the source did not say.
pub(super) fn status_from_times(pv1: &Segment<'_>) -> EncounterStatus {
    let has = |field| reps(pv1, field).next().and_then(|(_, r)| comp(&r, 1)).is_some();
    if has(45) {
        EncounterStatus::Finished
    } else if has(44) {
        EncounterStatus::InProgress
    } else {
        EncounterStatus::Unknown
    }
}
