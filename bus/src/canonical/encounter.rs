//! FHIR R4 `Encounter`: a visit — an inpatient stay, an outpatient or
//! emergency visit — with its class, period, location and clinicians.

use serde::{Deserialize, Serialize};

use super::datatypes::{CodeableConcept, Coding, Identifier, Period, Reference};
use super::resource::{Resource, ResourceType};

/// FHIR `Encounter.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncounterStatus {
    /// Not yet started (pre-admission).
    Planned,
    /// The patient is present but not yet seen.
    Arrived,
    /// The patient has been triaged.
    Triaged,
    /// Under way.
    InProgress,
    /// Temporarily away (leave of absence).
    Onleave,
    /// Ended.
    Finished,
    /// Ended before it began (cancelled admission).
    Cancelled,
    /// Should never have existed.
    EnteredInError,
    /// The source did not say.
    Unknown,
}

/// FHIR `Encounter.location.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncounterLocationStatus {
    /// The patient will be there.
    Planned,
    /// The patient is there.
    Active,
    /// Held for the patient, who is elsewhere.
    Reserved,
    /// The patient has left.
    Completed,
}

/// FHIR `Encounter.participant`: a clinician and their role (attending, admitting …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncounterParticipant {
    /// Role, from v3 ParticipationType (`ATND`, `ADM`, `REF`, `CON`).
    #[serde(rename = "type", default, skip_serializing_if = "Vec::is_empty")]
    pub type_: Vec<CodeableConcept>,
    /// When they took part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Who (a Practitioner, by identifier and name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub individual: Option<Reference>,
}

/// FHIR `Encounter.hospitalization`: admission and discharge details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncounterHospitalization {
    /// Where the patient came from (HL7 table 0023 codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admit_source: Option<CodeableConcept>,
    /// Where the patient went (HL7 table 0112 codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discharge_disposition: Option<CodeableConcept>,
}

impl EncounterHospitalization {
    /// True when nothing is set (FHIR forbids an empty object).
    pub fn is_empty(&self) -> bool {
        self.admit_source.is_none() && self.discharge_disposition.is_none()
    }
}

/// FHIR `Encounter.location`: where the patient was (ward, room, bed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncounterLocation {
    /// The Location (medbus fills the display: `4W / 401 / A`).
    pub location: Reference,
    /// Whether the patient is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EncounterLocationStatus>,
    /// When the patient was there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

/// FHIR R4 `Encounter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Encounter {
    /// Always `Encounter`; refuses any other type when read.
    pub resource_type: ResourceType<Encounter>,
    /// Resource id, when a store has assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Business identifiers: the visit number first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Where the encounter is in its life.
    pub status: EncounterStatus,
    /// Inpatient, ambulatory, emergency … (v3 ActCode; the source's code when there is no v3 one).
    pub class: Coding,
    /// The service (HL7 table 0069: MED, SUR …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<CodeableConcept>,
    /// The patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// Clinicians involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participant: Vec<EncounterParticipant>,
    /// Start (admission) and end (discharge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Admission and discharge details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hospitalization: Option<EncounterHospitalization>,
    /// Where the patient is or was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub location: Vec<EncounterLocation>,
    /// The organisation responsible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_provider: Option<Reference>,
}

impl Resource for Encounter {
    const TYPE: &'static str = "Encounter";
}

impl Encounter {
    /// A new encounter with its two required elements.
    pub fn new(status: EncounterStatus, class: Coding) -> Self {
        Encounter {
            resource_type: ResourceType::new(),
            id: None,
            identifier: Vec::new(),
            status,
            class,
            service_type: None,
            subject: None,
            participant: Vec::new(),
            period: None,
            hospitalization: None,
            location: Vec::new(),
            service_provider: None,
        }
    }

    /// The natural key, `system|value` of the first identifier with a value
    /// (the visit number when mapped from HL7 v2).
    pub fn key(&self) -> Option<String> {
        self.identifier.iter().find_map(Identifier::token)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::primitives::DateTime;
    use crate::canonical::systems;

    fn sample() -> Encounter {
        let mut e = Encounter::new(
            EncounterStatus::InProgress,
            Coding::new(systems::V3_ACT_CODE, "IMP", Some("inpatient encounter")),
        );
        e.identifier.push(Identifier {
            system: Some("urn:medbus:authority:UCH".into()),
            value: Some("V100".into()),
            ..Identifier::default()
        });
        e.subject = Some(Reference {
            type_: Some("Patient".into()),
            display: Some("DOE, JANE".into()),
            ..Reference::default()
        });
        e.participant.push(EncounterParticipant {
            type_: vec![CodeableConcept::coded(Coding::new(
                systems::V3_PARTICIPATION_TYPE,
                "ATND",
                Some("attender"),
            ))],
            individual: Some(Reference {
                display: Some("DR MARCUS WELBY".into()),
                ..Reference::default()
            }),
            ..EncounterParticipant::default()
        });
        e.period = Period::new(Some(DateTime::parse("2024-03-15T08:30:00Z").unwrap()), None);
        e.location.push(EncounterLocation {
            location: Reference {
                display: Some("4W / 401 / A".into()),
                ..Reference::default()
            },
            status: Some(EncounterLocationStatus::Active),
            period: None,
        });
        e
    }

    #[test]
    fn json_is_a_fhir_encounter() {
        let expected = json!({
            "resourceType": "Encounter",
            "identifier": [{"system": "urn:medbus:authority:UCH", "value": "V100"}],
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
            "subject": {"type": "Patient", "display": "DOE, JANE"},
            "participant": [{
                "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "ATND", "display": "attender"}]}],
                "individual": {"display": "DR MARCUS WELBY"}
            }],
            "period": {"start": "2024-03-15T08:30:00Z"},
            "location": [{"location": {"display": "4W / 401 / A"}, "status": "active"}]
        });
        assert_eq!(serde_json::to_value(sample()).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Encounter>(expected).unwrap(), sample());
        assert_eq!(sample().key().as_deref(), Some("urn:medbus:authority:UCH|V100"));
    }

    #[test]
    fn status_codes_are_fhir_codes() {
        for (s, code) in [
            (EncounterStatus::InProgress, "in-progress"),
            (EncounterStatus::EnteredInError, "entered-in-error"),
            (EncounterStatus::Onleave, "onleave"),
            (EncounterStatus::Cancelled, "cancelled"),
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(code));
        }
    }

    #[test]
    fn status_and_class_are_required_on_the_way_in() {
        let v = json!({"resourceType": "Encounter", "status": "finished"});
        assert!(serde_json::from_value::<Encounter>(v).is_err());
    }
}
