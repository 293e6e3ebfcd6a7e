//! Tests of the data types: FHIR JSON shapes and helpers.

use serde_json::json;

use super::*;
use crate::canonical::systems;

#[test]
fn identifier_json_uses_fhir_names_and_drops_empties() {
    let id = Identifier {
        type_: Some(CodeableConcept::coded(Coding::new(
            systems::V2_0203,
            "MR",
            Some("Medical record number"),
        ))),
        system: Some("urn:oid:1.2.3.4".into()),
        value: Some("100001".into()),
        assigner: Some(Box::new(Reference {
            display: Some("UCH".into()),
            ..Reference::default()
        })),
        ..Identifier::default()
    };
    let expected = json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number"}]},
        "system": "urn:oid:1.2.3.4",
        "value": "100001",
        "assigner": {"display": "UCH"}
    });
    assert_eq!(serde_json::to_value(&id).unwrap(), expected);
    let back: Identifier = serde_json::from_value(expected).unwrap();
    assert_eq!(back, id);
    assert_eq!(id.token().as_deref(), Some("urn:oid:1.2.3.4|100001"));
    assert!(id.has_type("MR") && !id.has_type("PI"));
    assert_eq!(Identifier::default().token(), None);
    assert_eq!(serde_json::to_value(Identifier::default()).unwrap(), json!({}));
}

#[test]
fn name_address_and_telecom_shapes() {
    let name = HumanName {
        use_: Some(NameUse::Official),
        family: Some("O'BRIEN".into()),
        given: vec!["MARY".into(), "ANNE".into()],
        prefix: vec!["MS".into()],
        ..HumanName::default()
    };
    assert_eq!(
        serde_json::to_value(&name).unwrap(),
        json!({"use": "official", "family": "O'BRIEN", "given": ["MARY", "ANNE"], "prefix": ["MS"]})
    );
    assert_eq!(name.display().as_deref(), Some("O'BRIEN, MARY ANNE"));
    let address = Address {
        use_: Some(AddressUse::Home),
        line: vec!["12 MAIN ST".into(), "APT 4B".into()],
        city: Some("SPRINGFIELD".into()),
        postal_code: Some("62701".into()),
        ..Address::default()
    };
    assert_eq!(
        serde_json::to_value(&address).unwrap(),
        json!({"use": "home", "line": ["12 MAIN ST", "APT 4B"], "city": "SPRINGFIELD", "postalCode": "62701"})
    );
    let phone = ContactPoint {
        system: Some(ContactPointSystem::Phone),
        value: Some("(217)555-0101".into()),
        use_: Some(ContactPointUse::Mobile),
        rank: Some(1),
        ..ContactPoint::default()
    };
    let v = serde_json::to_value(&phone).unwrap();
    assert_eq!(
        v,
        json!({"system": "phone", "value": "(217)555-0101", "use": "mobile", "rank": 1})
    );
    assert_eq!(serde_json::from_value::<ContactPoint>(v).unwrap(), phone);
}

#[test]
fn period_is_never_empty() {
    assert_eq!(Period::new(None, None), None);
    let p = Period::new(Some(DateTime::parse("2024-03-15T08:30:00Z").unwrap()), None).unwrap();
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({"start": "2024-03-15T08:30:00Z"})
    );
}
