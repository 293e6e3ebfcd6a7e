//! FHIR R4 `ImagingStudy`: a DICOM study (the instances of one Study Instance
//! UID), known by that UID (`urn:dicom:uid` identifier) and, when the
//! modality or RIS gave one, its accession number (identifier type `ACSN`),
//! which links it to the order (the ServiceRequest with the same accession).

use serde::{Deserialize, Serialize};

use super::datatypes::{CodeableConcept, Coding, Identifier, Reference};
use super::primitives::DateTime;
use super::resource::{Resource, ResourceType};
use super::systems;

/// FHIR `ImagingStudy.status` (ImagingStudyStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImagingStudyStatus {
    /// The study is known, instances are still arriving (medbus: no
    /// `imaging.study-completed` yet since the last instance).
    Registered,
    /// The study's instances are available (medbus: it has been quiet for the
    /// configured time and `imaging.study-completed` was raised).
    Available,
    /// The study was cancelled.
    Cancelled,
    /// It should never have existed.
    EnteredInError,
    /// The source did not say.
    Unknown,
}

impl ImagingStudyStatus {
    /// The FHIR code (`registered`, `available` …).
    pub fn code(self) -> &'static str {
        match self {
            ImagingStudyStatus::Registered => "registered",
            ImagingStudyStatus::Available => "available",
            ImagingStudyStatus::Cancelled => "cancelled",
            ImagingStudyStatus::EnteredInError => "entered-in-error",
            ImagingStudyStatus::Unknown => "unknown",
        }
    }
}

/// One SOP instance of a series (`ImagingStudy.series.instance`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagingStudyInstance {
    /// SOP Instance UID (0008,0018), a plain UID (no `urn:oid:`).
    pub uid: String,
    /// SOP Class UID (0008,0016): system `urn:ietf:rfc:3986`, code `urn:oid:<uid>`.
    pub sop_class: Coding,
    /// Instance Number (0020,0013), when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
}

/// One series of the study (`ImagingStudy.series`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagingStudySeries {
    /// Series Instance UID (0020,000E), a plain UID.
    pub uid: String,
    /// Series Number (0020,0011), when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// Modality (0008,0060) in the DICOM code system
    /// (`http://dicom.nema.org/resources/ontology/DCM`); `OT` when not sent.
    pub modality: Coding,
    /// Body Part Examined (0018,0015) as a code of the sender's (DICOM defined terms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_site: Option<Coding>,
    /// How many instances of this series medbus holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_instances: Option<u32>,
    /// The instances, in the order first received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance: Vec<ImagingStudyInstance>,
}

/// FHIR R4 `ImagingStudy`.
///
/// In `imaging.instance-stored` it holds the one series and instance just
/// received; in `imaging.study-completed` and in the store, every series and
/// instance medbus holds for the study, with the counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagingStudy {
    /// Always `ImagingStudy`; refuses any other type when read.
    pub resource_type: ResourceType<ImagingStudy>,
    /// Resource id, when a store has assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The Study Instance UID (system `urn:dicom:uid`, value `urn:oid:<uid>`)
    /// first, then the accession number (type `ACSN`) when sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Where the study is (see [`ImagingStudyStatus`]).
    pub status: ImagingStudyStatus,
    /// The modalities of its series, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modality: Vec<Coding>,
    /// The patient (logical reference by the patient's key identifier).
    pub subject: Reference,
    /// Study Date (0008,0020) and Time (0008,0030) when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime>,
    /// The order: a logical reference to the ServiceRequest by accession number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub based_on: Vec<Reference>,
    /// How many series medbus holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_series: Option<u32>,
    /// How many instances medbus holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_instances: Option<u32>,
    /// Study Description (0008,1030).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<ImagingStudySeries>,
}

impl Resource for ImagingStudy {
    const TYPE: &'static str = "ImagingStudy";
}

/// The identifier system of DICOM UIDs (values `urn:oid:<uid>`).
pub const DICOM_UID_SYSTEM: &str = "urn:dicom:uid";

impl ImagingStudy {
    /// The Study Instance UID identifier: system `urn:dicom:uid`, value `urn:oid:<uid>`.
    pub fn study_uid_identifier(study_uid: &str) -> Identifier {
        Identifier {
            system: Some(DICOM_UID_SYSTEM.into()),
            value: Some(format!("urn:oid:{study_uid}")),
            ..Identifier::default()
        }
    }

    /// An accession number identifier (type `ACSN` of table 0203), in
    /// `system` when the issuer is known.
    pub fn accession_identifier(accession: &str, system: Option<&str>) -> Identifier {
        Identifier {
            type_: Some(CodeableConcept {
                coding: vec![Coding::new(systems::V2_0203, "ACSN", Some("Accession ID"))],
                ..CodeableConcept::default()
            }),
            system: system.map(str::to_string),
            value: Some(accession.to_string()),
            ..Identifier::default()
        }
    }

    /// The Study Instance UID (plain), read back from the identifiers.
    pub fn study_uid(&self) -> Option<&str> {
        self.identifier
            .iter()
            .find(|i| i.system.as_deref() == Some(DICOM_UID_SYSTEM))
            .and_then(|i| i.value.as_deref())
            .and_then(|v| v.strip_prefix("urn:oid:"))
    }

    /// The accession number, when sent.
    pub fn accession(&self) -> Option<&str> {
        self.identifier
            .iter()
            .find(|i| i.has_type("ACSN"))
            .and_then(|i| i.value.as_deref())
    }

    /// The token an accession number links by, whatever system it came in:
    /// `urn:medbus:accession|<value>`. The orders service indexes every
    /// `ACSN` identifier of a ServiceRequest under it too, and the imaging
    /// service names the order of a study by it.
    pub fn accession_token(accession: &str) -> String {
        format!("{}|{accession}", systems::MEDBUS_ACCESSION)
    }

    /// The natural key: the Study Instance UID identifier's token
    /// (`urn:dicom:uid|urn:oid:<uid>`).
    pub fn key(&self) -> Option<String> {
        self.identifier
            .iter()
            .find(|i| i.system.as_deref() == Some(DICOM_UID_SYSTEM))
            .and_then(Identifier::token)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn study() -> ImagingStudy {
        ImagingStudy {
            resource_type: ResourceType::default(),
            id: None,
            identifier: vec![
                ImagingStudy::study_uid_identifier("1.2.3"),
                ImagingStudy::accession_identifier("ACC1", None),
            ],
            status: ImagingStudyStatus::Registered,
            modality: vec![Coding::new(systems::DICOM_DCM, "CT", None)],
            subject: Reference {
                type_: Some("Patient".into()),
                ..Reference::default()
            },
            started: DateTime::parse("2026-12-01").ok(),
            based_on: Vec::new(),
            number_of_series: Some(1),
            number_of_instances: Some(1),
            description: None,
            series: vec![ImagingStudySeries {
                uid: "1.2.3.4".into(),
                number: Some(1),
                modality: Coding::new(systems::DICOM_DCM, "CT", None),
                body_site: None,
                number_of_instances: Some(1),
                instance: vec![ImagingStudyInstance {
                    uid: "1.2.3.4.5".into(),
                    sop_class: Coding::new(systems::URI, "urn:oid:1.2.840.10008.5.1.4.1.1.2", None),
                    number: Some(1),
                }],
            }],
        }
    }

    #[test]
    fn serialises_as_fhir_and_reads_back() {
        let s = study();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["resourceType"], json!("ImagingStudy"));
        assert_eq!(v["status"], json!("registered"));
        assert_eq!(
            v["series"][0]["instance"][0]["sopClass"]["system"],
            json!("urn:ietf:rfc:3986")
        );
        assert_eq!(v["numberOfInstances"], json!(1));
        let back: ImagingStudy = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn key_uid_and_accession() {
        let s = study();
        assert_eq!(s.key().as_deref(), Some("urn:dicom:uid|urn:oid:1.2.3"));
        assert_eq!(s.study_uid(), Some("1.2.3"));
        assert_eq!(s.accession(), Some("ACC1"));
    }

    #[test]
    fn refuses_another_resource_type() {
        let mut v = serde_json::to_value(study()).unwrap();
        v["resourceType"] = json!("Patient");
        assert!(serde_json::from_value::<ImagingStudy>(v).is_err());
    }
}
