//! FHIR R4 `Patient`: demographics and identifiers of a person receiving care.

use serde::{Deserialize, Serialize};

use super::datatypes::{Address, CodeableConcept, ContactPoint, HumanName, Identifier, Reference};
use super::primitives::{Date, DateTime};
use super::resource::{Resource, ResourceType};

/// FHIR `Patient.gender` (AdministrativeGender).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdministrativeGender {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Other.
    Other,
    /// Unknown.
    Unknown,
}

/// FHIR `Patient.deceased[x]`: a flag or the date/time of death.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Deceased {
    /// `deceasedBoolean`.
    #[serde(rename = "deceasedBoolean")]
    Boolean(bool),
    /// `deceasedDateTime`.
    #[serde(rename = "deceasedDateTime")]
    DateTime(DateTime),
}

/// FHIR `Patient.link.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkType {
    /// This record is inactive; the other one replaces it.
    ReplacedBy,
    /// This record replaces the other one (the survivor of a merge).
    Replaces,
    /// The other record holds more information about the same person.
    Refer,
    /// The other record is about the same person.
    Seealso,
}

/// FHIR `Patient.link`: another patient record about the same person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientLink {
    /// The other record (by identifier when medbus has no resource id).
    pub other: Reference,
    /// How the two relate.
    #[serde(rename = "type")]
    pub type_: LinkType,
}

/// FHIR R4 `Patient`.
///
/// In events the patient is a snapshot of what the source sent: an absent
/// element means "not sent", not "removed".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    /// Always `Patient`; refuses any other type when read.
    pub resource_type: ResourceType<Patient>,
    /// Resource id, when a store has assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Business identifiers (MRN, enterprise id, national id …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Whether the record is in active use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Names, the legal (official) one usually first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    /// Phone numbers, e-mail addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    /// Administrative gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<AdministrativeGender>,
    /// Date of birth, as precise as known (`1980`, `1980-04`, `1980-04-12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<Date>,
    /// Death flag or date/time.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub deceased: Option<Deceased>,
    /// Addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    /// Marital status (v3 MaritalStatus, with the source's own coding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marital_status: Option<CodeableConcept>,
    /// Other records about the same person (merges).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<PatientLink>,
}

impl Resource for Patient {
    const TYPE: &'static str = "Patient";
}

impl Patient {
    /// The identifier used as the patient's natural key: the first medical
    /// record number (table 0203 `MR`) with a value, else the first identifier with one.
    pub fn key_identifier(&self) -> Option<&Identifier> {
        let with_value = || self.identifier.iter().filter(|i| i.value.is_some());
        with_value().find(|i| i.has_type("MR")).or_else(|| with_value().next())
    }

    /// The natural key, `system|value` of [`key_identifier`](Self::key_identifier):
    /// what events about one patient are ordered by.
    pub fn key(&self) -> Option<String> {
        self.key_identifier().and_then(Identifier::token)
    }

    /// A logical reference to this patient: its key identifier and its first name.
    pub fn reference(&self) -> Reference {
        Reference {
            type_: Some("Patient".into()),
            identifier: self.key_identifier().map(|i| Identifier {
                // The reference names the target; the assigner's details live on the patient.
                assigner: None,
                period: None,
                ..i.clone()
            }),
            display: self.name.first().and_then(HumanName::display),
            ..Reference::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::datatypes::{Coding, NameUse};
    use crate::canonical::systems;

    fn identifier(system: &str, value: &str, type_code: &str) -> Identifier {
        Identifier {
            type_: Some(CodeableConcept::coded(Coding::new(systems::V2_0203, type_code, None))),
            system: Some(system.into()),
            value: Some(value.into()),
            ..Identifier::default()
        }
    }

    fn sample() -> Patient {
        Patient {
            identifier: vec![
                identifier("urn:medbus:authority:EMPI", "E1", "PI"),
                identifier("urn:oid:1.2.3.4", "100001", "MR"),
            ],
            name: vec![HumanName {
                use_: Some(NameUse::Official),
                family: Some("DOE".into()),
                given: vec!["JANE".into()],
                ..HumanName::default()
            }],
            gender: Some(AdministrativeGender::Female),
            birth_date: Some(Date::parse("1980-04").unwrap()),
            deceased: Some(Deceased::DateTime(DateTime::parse("2024-03-15T08:30:00Z").unwrap())),
            ..Patient::default()
        }
    }

    #[test]
    fn json_is_a_fhir_patient() {
        let expected = json!({
            "resourceType": "Patient",
            "identifier": [
                {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PI"}]},
                 "system": "urn:medbus:authority:EMPI", "value": "E1"},
                {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                 "system": "urn:oid:1.2.3.4", "value": "100001"}
            ],
            "name": [{"use": "official", "family": "DOE", "given": ["JANE"]}],
            "gender": "female",
            "birthDate": "1980-04",
            "deceasedDateTime": "2024-03-15T08:30:00Z"
        });
        assert_eq!(serde_json::to_value(sample()).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Patient>(expected).unwrap(), sample());
    }

    #[test]
    fn an_empty_patient_is_only_its_type() {
        let v = serde_json::to_value(Patient::default()).unwrap();
        assert_eq!(v, json!({"resourceType": "Patient"}));
        assert_eq!(serde_json::from_value::<Patient>(v).unwrap(), Patient::default());
    }

    #[test]
    fn deceased_boolean_and_links_round_trip() {
        let p = Patient {
            deceased: Some(Deceased::Boolean(true)),
            link: vec![PatientLink {
                other: Reference {
                    identifier: Some(identifier("urn:oid:1.2.3.4", "100002", "MR")),
                    ..Reference::default()
                },
                type_: LinkType::Replaces,
            }],
            ..Patient::default()
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["deceasedBoolean"], json!(true));
        assert_eq!(v["link"][0]["type"], json!("replaces"));
        assert_eq!(serde_json::from_value::<Patient>(v).unwrap(), p);
    }

    #[test]
    fn other_resource_types_are_refused() {
        assert!(serde_json::from_value::<Patient>(json!({"resourceType": "Encounter"})).is_err());
        assert!(serde_json::from_value::<Patient>(json!({"gender": "female"})).is_err());
    }

    #[test]
    fn key_prefers_the_medical_record_number() {
        let p = sample();
        assert_eq!(p.key().as_deref(), Some("urn:oid:1.2.3.4|100001"));
        let mut no_mr = sample();
        no_mr.identifier.remove(1);
        assert_eq!(no_mr.key().as_deref(), Some("urn:medbus:authority:EMPI|E1"));
        assert_eq!(Patient::default().key(), None);
        let r = p.reference();
        assert_eq!(r.display.as_deref(), Some("DOE, JANE"));
        assert_eq!(r.identifier.and_then(|i| i.value).as_deref(), Some("100001"));
    }
}
