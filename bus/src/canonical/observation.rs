//! FHIR R4 `Observation`: one result (a potassium value, a culture finding)
//! with its code, value, reference range and interpretation flags.

use serde::{Deserialize, Serialize};

use super::annotation::Annotation;
use super::datatypes::{CodeableConcept, Identifier, Reference};
use super::primitives::DateTime;
use super::quantity::Quantity;
use super::resource::{Resource, ResourceType};
use super::systems;

/// FHIR `Observation.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObservationStatus {
    /// Known to exist, no result yet.
    Registered,
    /// Early, unverified result.
    Preliminary,
    /// Complete and verified.
    Final,
    /// Changed after being final (new information).
    Amended,
    /// Changed after being final to fix an error.
    Corrected,
    /// Not done, or cannot be obtained.
    Cancelled,
    /// Should never have existed (withdrawn).
    EnteredInError,
    /// The source did not say.
    Unknown,
}

/// FHIR `Observation.value[x]`: the kinds of value medbus maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObservationValue {
    /// `valueQuantity`: a number with its unit (HL7 NM, SN).
    #[serde(rename = "valueQuantity")]
    Quantity(Quantity),
    /// `valueCodeableConcept`: a coded finding (HL7 CE, CWE, CNE).
    #[serde(rename = "valueCodeableConcept")]
    CodeableConcept(CodeableConcept),
    /// `valueString`: text (HL7 ST, TX, FT).
    #[serde(rename = "valueString")]
    String(String),
    /// `valueDateTime`: a date or time (HL7 DT, DTM, TS).
    #[serde(rename = "valueDateTime")]
    DateTime(DateTime),
}

/// FHIR `Observation.referenceRange`: what is normal for this value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationReferenceRange {
    /// Lowest normal value (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<Quantity>,
    /// Highest normal value (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<Quantity>,
    /// The range as the source wrote it, when low and high do not say it all
    /// (`<5` is exclusive; `negative` has no numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// FHIR R4 `Observation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// Always `Observation`; refuses any other type when read.
    pub resource_type: ResourceType<Observation>,
    /// Resource id, when a store has assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Business identifiers; the first one stays the same across preliminary,
    /// final and corrected results, so that a correction replaces what it corrects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// The order(s) it answers: a ServiceRequest by placer and by filler number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub based_on: Vec<Reference>,
    /// Where the result is in its life.
    pub status: ObservationStatus,
    /// What was observed (LOINC, or the sender's local code).
    pub code: CodeableConcept,
    /// The patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// The visit it was made in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    /// When it was observed (specimen collection, measurement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_date_time: Option<DateTime>,
    /// When it was released (a FHIR `instant`: filled only with a full time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<DateTime>,
    /// The result.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ObservationValue>,
    /// High, low, critical … (v3 ObservationInterpretation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interpretation: Vec<CodeableConcept>,
    /// Comments on the result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<Annotation>,
    /// What is normal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_range: Vec<ObservationReferenceRange>,
}

impl Resource for Observation {
    const TYPE: &'static str = "Observation";
}

impl Observation {
    /// A new observation with its required elements.
    pub fn new(status: ObservationStatus, code: CodeableConcept) -> Self {
        Observation {
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
            value: None,
            interpretation: Vec::new(),
            note: Vec::new(),
            reference_range: Vec::new(),
        }
    }

    /// The natural key, `system|value` of the first identifier with a value.
    pub fn key(&self) -> Option<String> {
        self.identifier.iter().find_map(Identifier::token)
    }

    /// A logical reference to this observation, by its first identifier.
    pub fn reference(&self) -> Reference {
        Reference {
            type_: Some(Self::TYPE.into()),
            identifier: self.identifier.iter().find(|i| i.value.is_some()).map(|i| Identifier {
                assigner: None,
                period: None,
                ..i.clone()
            }),
            ..Reference::default()
        }
    }

    /// True when an interpretation is `code` of v3 ObservationInterpretation
    /// (`HH`, `LL`, `AA` are the critical ones).
    pub fn has_interpretation(&self, code: &str) -> bool {
        self.interpretation
            .iter()
            .any(|i| i.has_code(systems::V3_OBSERVATION_INTERPRETATION, code))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::datatypes::Coding;
    use crate::canonical::quantity::Decimal;

    fn mmol(v: &str) -> Quantity {
        Quantity {
            value: Decimal::parse(v),
            unit: Some("mmol/L".into()),
            system: Some(systems::UCUM.into()),
            code: Some("mmol/L".into()),
            ..Quantity::default()
        }
    }

    fn sample() -> Observation {
        let mut o = Observation::new(
            ObservationStatus::Final,
            CodeableConcept::coded(Coding::new(systems::LOINC, "2823-3", Some("Potassium"))),
        );
        o.identifier.push(Identifier {
            system: Some("urn:medbus:authority:LAB".into()),
            value: Some("FL1/2823-3".into()),
            ..Identifier::default()
        });
        o.value = Some(ObservationValue::Quantity(mmol("6.8")));
        o.interpretation.push(CodeableConcept::coded(Coding::new(
            systems::V3_OBSERVATION_INTERPRETATION,
            "HH",
            Some("Critical high"),
        )));
        o.reference_range.push(ObservationReferenceRange {
            low: Some(mmol("3.5")),
            high: Some(mmol("5.1")),
            text: None,
        });
        o
    }

    #[test]
    fn json_is_a_fhir_observation() {
        let unit = json!({"unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"});
        let with = |v: f64| {
            let mut q = unit.clone();
            q["value"] = json!(v);
            q
        };
        let expected = json!({
            "resourceType": "Observation",
            "identifier": [{"system": "urn:medbus:authority:LAB", "value": "FL1/2823-3"}],
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
            "valueQuantity": with(6.8),
            "interpretation": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                "code": "HH",
                "display": "Critical high"
            }]}],
            "referenceRange": [{"low": with(3.5), "high": with(5.1)}]
        });
        assert_eq!(serde_json::to_value(sample()).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Observation>(expected).unwrap(), sample());
        assert!(sample().has_interpretation("HH") && !sample().has_interpretation("H"));
        assert_eq!(
            sample().reference().identifier.and_then(|i| i.value).as_deref(),
            Some("FL1/2823-3")
        );
    }

    #[test]
    fn each_kind_of_value_has_its_element() {
        let mut o = sample();
        for (value, key) in [
            (ObservationValue::String("no growth".into()), "valueString"),
            (
                ObservationValue::CodeableConcept(CodeableConcept::coded(Coding::new(
                    systems::SNOMED_CT,
                    "260385009",
                    None,
                ))),
                "valueCodeableConcept",
            ),
            (
                ObservationValue::DateTime(DateTime::parse("2024-03-15").unwrap()),
                "valueDateTime",
            ),
        ] {
            o.value = Some(value);
            let v = serde_json::to_value(&o).unwrap();
            assert!(v.get(key).is_some() && v.get("valueQuantity").is_none(), "{key}");
            assert_eq!(serde_json::from_value::<Observation>(v).unwrap(), o);
        }
        o.value = None;
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(serde_json::from_value::<Observation>(v).unwrap(), o);
    }

    #[test]
    fn status_codes_are_fhir_codes() {
        assert_eq!(
            serde_json::to_value(ObservationStatus::EnteredInError).unwrap(),
            json!("entered-in-error")
        );
        assert_eq!(
            serde_json::to_value(ObservationStatus::Corrected).unwrap(),
            json!("corrected")
        );
    }
}
