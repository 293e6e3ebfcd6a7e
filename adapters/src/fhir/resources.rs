//! The resources of the patient, encounter, order, appointment, charge and
//! imaging events: each a clone of the canonical resource with its id and literal
//! references added.

use medbus_bus::canonical::{
    AppointmentEvent, AppointmentParticipant, ChargeEvent, EncounterEvent, Identifier, ImagingEvent, LinkType,
    MergeEvent, OrderEvent, ParticipationStatus, Patient, PatientLink,
};
use serde::Serialize;
use serde_json::Value;

use super::ids::{conditional_url, logical_id};
use super::links::{first_with_value, patient_reference, resolve};
use super::FhirError;

/// One resource as produced, with what a transaction entry needs.
#[derive(Debug, Clone)]
pub(super) struct Mapped {
    /// Its logical id.
    pub id: String,
    /// `Type?identifier=system|value`, for a conditional update.
    pub url: String,
    /// The resource JSON, `id` included.
    pub json: Value,
}

/// Serialises `resource` and gives it the id derived from `key`.
pub(super) fn keyed<R: Serialize>(
    resource_type: &'static str,
    key: Option<&Identifier>,
    resource: &R,
) -> Result<Mapped, FhirError> {
    let no_key = FhirError::NoKey { resource_type };
    let key = key.ok_or(no_key)?;
    let (Some(token), Some(url)) = (key.token(), conditional_url(resource_type, key)) else {
        return Err(FhirError::NoKey { resource_type });
    };
    let id = logical_id(resource_type, &token);
    let mut json = serde_json::to_value(resource).map_err(|source| FhirError::Json { resource_type, source })?;
    match json.as_object_mut() {
        Some(object) => {
            object.insert("id".into(), Value::String(id.clone()));
        }
        None => return Err(FhirError::NotAnObject { resource_type }),
    }
    Ok(Mapped { id, url, json })
}

/// The Patient: links to other records get literal references.
pub(super) fn patient(p: &Patient) -> Result<Mapped, FhirError> {
    let mut p = p.clone();
    p.link.iter_mut().for_each(|l| resolve(&mut l.other));
    keyed("Patient", p.key_identifier(), &p)
}

/// The survivor (`link` = `replaces` each merged record), then each merged
/// record as an inactive Patient with `link` = `replaced-by` the survivor.
///
/// The merged record is written as a stub (identifier, `active: false`,
/// link): a PUT replaces it whole, and its demographics now live in the survivor.
pub(super) fn merge(b: &MergeEvent) -> Result<Vec<Mapped>, FhirError> {
    let survivor_ref = patient_reference(&b.surviving)?;
    let survivor_key = b.surviving.key();
    let mut surviving = b.surviving.clone();
    let mut stubs = Vec::new();
    for merged in &b.merged {
        let Some(token) = merged.token() else { continue };
        // A merge into itself (same key) would make two resources with one id.
        if Some(&token) == survivor_key.as_ref() {
            continue;
        }
        let other = Patient::reference(&Patient {
            identifier: vec![merged.clone()],
            ..Patient::default()
        });
        let linked = surviving
            .link
            .iter()
            .any(|l| l.other.identifier.as_ref().and_then(Identifier::token).as_ref() == Some(&token));
        if !linked {
            surviving.link.push(PatientLink {
                other,
                type_: LinkType::Replaces,
            });
        }
        let stub = Patient {
            identifier: vec![merged.clone()],
            active: Some(false),
            link: vec![PatientLink {
                other: survivor_ref.clone(),
                type_: LinkType::ReplacedBy,
            }],
            ..Patient::default()
        };
        stubs.push(patient(&stub)?);
    }
    let mut out = vec![patient(&surviving)?];
    out.extend(stubs);
    Ok(out)
}

/// The patient and the encounter.
pub(super) fn encounter(b: &EncounterEvent) -> Result<Vec<Mapped>, FhirError> {
    let mut e = b.encounter.clone();
    e.subject = Some(patient_reference(&b.patient)?);
    let key = first_with_value(&e.identifier).cloned();
    Ok(vec![patient(&b.patient)?, keyed("Encounter", key.as_ref(), &e)?])
}

/// The patient and the order.
pub(super) fn order(b: &OrderEvent) -> Result<Vec<Mapped>, FhirError> {
    let mut sr = b.service_request.clone();
    sr.subject = patient_reference(&b.patient)?;
    sr.encounter.iter_mut().for_each(resolve);
    let key = first_with_value(&sr.identifier).cloned();
    Ok(vec![patient(&b.patient)?, keyed("ServiceRequest", key.as_ref(), &sr)?])
}

/// The patient and the appointment, whose patient participant refers to it
/// (one is added when the source named none: FHIR requires a participant).
pub(super) fn appointment(b: &AppointmentEvent) -> Result<Vec<Mapped>, FhirError> {
    let subject = patient_reference(&b.patient)?;
    let mut a = b.appointment.clone();
    let mut has_patient = false;
    for p in &mut a.participant {
        if let Some(actor) = p.actor.as_mut() {
            if actor.type_.as_deref() == Some("Patient") {
                *actor = subject.clone();
                has_patient = true;
            }
        }
    }
    if !has_patient {
        a.participant.push(AppointmentParticipant {
            type_: Vec::new(),
            actor: Some(subject),
            status: ParticipationStatus::Accepted,
        });
    }
    let key = first_with_value(&a.identifier).cloned();
    Ok(vec![patient(&b.patient)?, keyed("Appointment", key.as_ref(), &a)?])
}

/// The patient and the charge.
pub(super) fn charge(b: &ChargeEvent) -> Result<Vec<Mapped>, FhirError> {
    let mut c = b.charge_item.clone();
    c.subject = patient_reference(&b.patient)?;
    c.context.iter_mut().for_each(resolve);
    c.supporting_information.iter_mut().for_each(resolve);
    let key = first_with_value(&c.identifier).cloned();
    Ok(vec![patient(&b.patient)?, keyed("ChargeItem", key.as_ref(), &c)?])
}

/// The patient and the imaging study, keyed by its Study Instance UID. The
/// order stays a logical reference by accession number: the ServiceRequest's
/// id derives from its placer number, which the study does not know.
///
/// A data set without Patient ID names a patient that cannot be found again:
/// the study alone is produced, its subject a reference by display name (the
/// images exist and are worth listing; a Patient without an identifier would
/// be a new one on every push).
pub(super) fn imaging(b: &ImagingEvent) -> Result<Vec<Mapped>, FhirError> {
    let mut study = b.imaging_study.clone();
    let key = study
        .identifier
        .iter()
        .find(|i| i.system.as_deref() == Some(medbus_bus::canonical::DICOM_UID_SYSTEM))
        .cloned();
    if b.patient.key().is_none() {
        study.subject = b.patient.reference();
        return Ok(vec![keyed("ImagingStudy", key.as_ref(), &study)?]);
    }
    study.subject = patient_reference(&b.patient)?;
    Ok(vec![patient(&b.patient)?, keyed("ImagingStudy", key.as_ref(), &study)?])
}
