//! FHIR R4 `Appointment`: a booking of a patient with clinicians at a place
//! and time, known by its placer and filler appointment ids.

use serde::{Deserialize, Serialize};

use super::datatypes::{CodeableConcept, Identifier, Reference};
use super::primitives::DateTime;
use super::resource::{Resource, ResourceType};

/// FHIR `Appointment.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppointmentStatus {
    /// Being planned; no time agreed.
    Proposed,
    /// Some participants have not yet accepted.
    Pending,
    /// Agreed by everyone.
    Booked,
    /// The patient has arrived.
    Arrived,
    /// It took place.
    Fulfilled,
    /// It was cancelled.
    Cancelled,
    /// The patient did not turn up.
    Noshow,
    /// Should never have existed.
    EnteredInError,
    /// The patient has checked in.
    CheckedIn,
    /// On the waiting list.
    Waitlist,
}

/// FHIR `Appointment.participant.status` (ParticipationStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParticipationStatus {
    /// Will take part.
    Accepted,
    /// Will not take part.
    Declined,
    /// May take part.
    Tentative,
    /// Has not answered.
    NeedsAction,
}

/// FHIR `Appointment.participant`: the patient, a clinician or a place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentParticipant {
    /// Role (v3 ParticipationType, or the source's resource role).
    #[serde(rename = "type", default, skip_serializing_if = "Vec::is_empty")]
    pub type_: Vec<CodeableConcept>,
    /// Who or where (Patient, Practitioner, Location).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Reference>,
    /// Whether they take part.
    pub status: ParticipationStatus,
}

/// FHIR R4 `Appointment`.
///
/// `start` and `end` are FHIR `instant`s: medbus fills them only with a full
/// time and zone, and both or neither (FHIR invariant app-2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    /// Always `Appointment`; refuses any other type when read.
    pub resource_type: ResourceType<Appointment>,
    /// Resource id, when a store has assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The placer appointment id (`PLAC`) first, then the filler's (`FILL`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Where the appointment is in its life.
    pub status: AppointmentStatus,
    /// Why it was cancelled (HL7 SCH-6 on a cancellation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelation_reason: Option<CodeableConcept>,
    /// The services to be performed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_type: Vec<CodeableConcept>,
    /// The kind of appointment (HL7 table 0277: normal, tentative …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_type: Option<CodeableConcept>,
    /// Why it is booked (HL7 table 0276: routine, walk-in, follow-up …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason_code: Vec<CodeableConcept>,
    /// When it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime>,
    /// When it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime>,
    /// How long it lasts, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes_duration: Option<u32>,
    /// The patient, clinicians and places (FHIR requires at least one: HL7 v2
    /// mapping always adds the patient).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participant: Vec<AppointmentParticipant>,
}

impl Resource for Appointment {
    const TYPE: &'static str = "Appointment";
}

impl Appointment {
    /// A new appointment with its status; participants are added after.
    pub fn new(status: AppointmentStatus) -> Self {
        Appointment {
            resource_type: ResourceType::new(),
            id: None,
            identifier: Vec::new(),
            status,
            cancelation_reason: None,
            service_type: Vec::new(),
            appointment_type: None,
            reason_code: Vec::new(),
            start: None,
            end: None,
            minutes_duration: None,
            participant: Vec::new(),
        }
    }

    /// The natural key, `system|value` of the first identifier with a value
    /// (the placer appointment id when mapped from HL7 v2, else the filler's).
    pub fn key(&self) -> Option<String> {
        self.identifier.iter().find_map(Identifier::token)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Appointment {
        let mut a = Appointment::new(AppointmentStatus::Booked);
        a.identifier.push(Identifier {
            system: Some("urn:medbus:authority:SCHED".into()),
            value: Some("SC1".into()),
            ..Identifier::default()
        });
        a.start = DateTime::parse("2024-03-16T12:00:00Z").ok();
        a.end = DateTime::parse("2024-03-16T12:30:00Z").ok();
        a.minutes_duration = Some(30);
        a.participant.push(AppointmentParticipant {
            type_: Vec::new(),
            actor: Some(Reference {
                type_: Some("Patient".into()),
                display: Some("DOE, JANE".into()),
                ..Reference::default()
            }),
            status: ParticipationStatus::Accepted,
        });
        a
    }

    #[test]
    fn json_is_a_fhir_appointment() {
        let expected = json!({
            "resourceType": "Appointment",
            "identifier": [{"system": "urn:medbus:authority:SCHED", "value": "SC1"}],
            "status": "booked",
            "start": "2024-03-16T12:00:00Z",
            "end": "2024-03-16T12:30:00Z",
            "minutesDuration": 30,
            "participant": [{"actor": {"type": "Patient", "display": "DOE, JANE"}, "status": "accepted"}]
        });
        assert_eq!(serde_json::to_value(sample()).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Appointment>(expected).unwrap(), sample());
        assert_eq!(sample().key().as_deref(), Some("urn:medbus:authority:SCHED|SC1"));
    }

    #[test]
    fn status_codes_are_fhir_codes() {
        for (s, code) in [
            (AppointmentStatus::Noshow, "noshow"),
            (AppointmentStatus::CheckedIn, "checked-in"),
            (AppointmentStatus::EnteredInError, "entered-in-error"),
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(code));
        }
        assert_eq!(
            serde_json::to_value(ParticipationStatus::NeedsAction).unwrap(),
            json!("needs-action")
        );
    }
}
