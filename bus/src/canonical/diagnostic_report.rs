//! FHIR R4 `DiagnosticReport`: the report of an order (a lab panel) that
//! groups its Observations.

use serde::{Deserialize, Serialize};

use super::datatypes::{CodeableConcept, Identifier, Reference};
use super::primitives::DateTime;
use super::resource::{Resource, ResourceType};

/// FHIR `DiagnosticReport.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiagnosticReportStatus {
    /// Known to exist, nothing available yet.
    Registered,
    /// Some results are available.
    Partial,
    /// Early, unverified results.
    Preliminary,
    /// Complete and verified.
    Final,
    /// Changed after being final (new information).
    Amended,
    /// Changed after being final to fix an error.
    Corrected,
    /// Added to after being final.
    Appended,
    /// Not done.
    Cancelled,
    /// Should never have existed (withdrawn).
    EnteredInError,
    /// The source did not say.
    Unknown,
}

/// FHIR R4 `DiagnosticReport`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticReport {
    /// Always `DiagnosticReport`; refuses any other type when read.
    pub resource_type: ResourceType<DiagnosticReport>,
    /// Resource id, when a store has assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The filler order number (`FILL`) first — the report is the filler's —
    /// then the placer's (`PLAC`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// The order it answers: a ServiceRequest by placer and by filler number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub based_on: Vec<Reference>,
    /// Where the report is in its life.
    pub status: DiagnosticReportStatus,
    /// What was reported on (the ordered panel: LOINC or local code).
    pub code: CodeableConcept,
    /// The patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// The visit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    /// When the specimen was taken or the observations made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_date_time: Option<DateTime>,
    /// When the report was released (a FHIR `instant`: filled only with a full time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<DateTime>,
    /// The Observations, by identifier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<Reference>,
}

impl Resource for DiagnosticReport {
    const TYPE: &'static str = "DiagnosticReport";
}

impl DiagnosticReport {
    /// A new report with its required elements.
    pub fn new(status: DiagnosticReportStatus, code: CodeableConcept) -> Self {
        DiagnosticReport {
            resource_type: ResourceType::new(),
            id: None,
            identifier: Vec::new(),
            based_on: Vec::new(),
            status,
            code,
            subject: None,
            encounter: None,
            effective_date_time: None,
            issued: None,
            result: Vec::new(),
        }
    }

    /// The natural key, `system|value` of the first identifier with a value
    /// (the filler order number when mapped from HL7 v2, else the placer's).
    pub fn key(&self) -> Option<String> {
        self.identifier.iter().find_map(Identifier::token)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::datatypes::Coding;
    use crate::canonical::systems;

    #[test]
    fn json_is_a_fhir_diagnostic_report() {
        let mut r = DiagnosticReport::new(
            DiagnosticReportStatus::Preliminary,
            CodeableConcept::coded(Coding::new(systems::LOINC, "24323-8", None)),
        );
        r.identifier.push(Identifier {
            system: Some("urn:medbus:authority:LAB".into()),
            value: Some("FL1".into()),
            ..Identifier::default()
        });
        r.result.push(Reference {
            type_: Some("Observation".into()),
            identifier: Some(Identifier {
                system: Some("urn:medbus:authority:LAB".into()),
                value: Some("FL1/2823-3".into()),
                ..Identifier::default()
            }),
            ..Reference::default()
        });
        r.issued = DateTime::parse("2024-03-15T09:00:00Z").ok();
        let expected = json!({
            "resourceType": "DiagnosticReport",
            "identifier": [{"system": "urn:medbus:authority:LAB", "value": "FL1"}],
            "status": "preliminary",
            "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
            "issued": "2024-03-15T09:00:00Z",
            "result": [{"type": "Observation", "identifier": {"system": "urn:medbus:authority:LAB", "value": "FL1/2823-3"}}]
        });
        assert_eq!(serde_json::to_value(&r).unwrap(), expected);
        assert_eq!(serde_json::from_value::<DiagnosticReport>(expected).unwrap(), r);
        assert_eq!(r.key().as_deref(), Some("urn:medbus:authority:LAB|FL1"));
        assert_eq!(
            serde_json::to_value(DiagnosticReportStatus::EnteredInError).unwrap(),
            json!("entered-in-error")
        );
    }
}
