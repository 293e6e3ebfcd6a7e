//! Unit tests of inbound FHIR: malformed input refused with the element
//! named, realistic resources mapped to the HL7 path's event kinds, Bundles,
//! and medbus's own outbound FHIR accepted again.

use std::collections::HashMap;

use medbus_bus::canonical::{CanonicalEvent, EventBody, EventKind};
use serde_json::{json, Value};

use super::*;

// ---------------------------------------------------------------- helpers

/// The issues `check_resource` raises (the test fails when there are none).
fn refused(v: &Value, expected: Option<&str>) -> Vec<Issue> {
    match check_resource(v, expected) {
        Ok(c) => panic!("accepted {v}: {c:?}"),
        Err(issues) => issues,
    }
}

/// Asserts that `issues` has one with `code` at `expression`.
fn has(issues: &[Issue], code: IssueCode, expression: Option<&str>) {
    assert!(
        issues
            .iter()
            .any(|i| i.code == code && i.expression.as_deref() == expression),
        "no {code:?} issue at {expression:?} in {issues:#?}"
    );
    // Every refusal is 4xx material.
    assert!((400..500).contains(&http_status(issues)), "{issues:?}");
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "1", "lastUpdated": "2024-03-15T08:30:00Z"},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jane Doe</div>"},
        "identifier": [
            {"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
             "system": "urn:oid:1.2.3.4", "value": "100001"},
            {"system": "urn:medbus:authority:EMPI", "value": "E1"}
        ],
        "active": true,
        "name": [{"use": "official", "family": "Doe", "given": ["Jane", "Q"], "_family": {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}}],
        "telecom": [{"system": "phone", "value": "+1 555 0100", "use": "home", "rank": 1}],
        "gender": "female",
        "birthDate": "1980-04-12",
        "address": [{"use": "home", "line": ["1 Main St"], "city": "Springfield", "postalCode": "12345", "country": "US"}],
        "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
        "communication": [{"language": {"text": "English"}, "preferred": true}],
        "generalPractitioner": [{"reference": "Practitioner/dr1", "display": "Dr Welby"}]
    })
}

fn encounter(status: &str) -> Value {
    json!({
        "resourceType": "Encounter",
        "id": "e1",
        "identifier": [{"system": "urn:medbus:authority:UCH", "value": "V100"}],
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
        "subject": {"reference": "Patient/p1"},
        "participant": [{"type": [{"text": "attender"}], "individual": {"reference": "Practitioner/dr1"}}],
        "period": {"start": "2024-03-15T08:30:00Z", "end": "2024-03-18T10:00:00Z"},
        "hospitalization": {"admitSource": {"text": "ER"}},
        "location": [{"location": {"display": "4W / 401 / A"}, "status": "active"}],
        "reasonCode": [{"text": "chest pain"}]
    })
}

fn service_request(status: &str) -> Value {
    json!({
        "resourceType": "ServiceRequest",
        "id": "sr1",
        "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
                        "system": "urn:medbus:authority:CPOE", "value": "PL1"}],
        "status": status,
        "intent": "order",
        "priority": "stat",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "authoredOn": "2024-03-15T09:00:00Z",
        "requester": {"reference": "Practitioner/dr1"},
        "specimen": [{"reference": "Specimen/s1"}]
    })
}

fn observation(id: &str, status: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation",
        "id": id,
        "identifier": [{"system": "urn:medbus:authority:LAB", "value": format!("OBX-{id}")}],
        "basedOn": [{"reference": "ServiceRequest/sr1"}],
        "status": status,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "effectiveDateTime": "2024-03-15T10:00:00Z",
        "issued": "2024-03-15T11:00:00Z",
        "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}],
        "referenceRange": [{"low": {"value": 3.5}, "high": {"value": 5.1}, "appliesTo": [{"text": "adults"}]}]
    })
}

fn diagnostic_report(status: &str) -> Value {
    json!({
        "resourceType": "DiagnosticReport",
        "id": "dr1",
        "identifier": [{"system": "urn:medbus:authority:LAB", "value": "F1"}],
        "basedOn": [{"reference": "ServiceRequest/sr1"}],
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "effectiveDateTime": "2024-03-15T10:00:00Z",
        "issued": "2024-03-15T11:00:00Z",
        "result": [{"reference": "Observation/o1"}, {"reference": "Observation/o2"}],
        "conclusion": "high potassium"
    })
}

fn charge_item(status: &str) -> Value {
    json!({
        "resourceType": "ChargeItem",
        "id": "c1",
        "identifier": [{"system": "urn:medbus:authority:BILL", "value": "T1"}],
        "status": status,
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "36415"}]},
        "subject": {"reference": "Patient/p1"},
        "context": {"reference": "Encounter/e1"},
        "occurrenceDateTime": "2024-03-15T09:30:00Z",
        "quantity": {"value": 1},
        "priceOverride": {"value": 12.5, "currency": "USD"},
        "enteredDate": "2024-03-15T12:00:00Z"
    })
}

fn imaging_study() -> Value {
    json!({
        "resourceType": "ImagingStudy",
        "id": "is1",
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.840.1"}],
        "status": "available",
        "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
        "subject": {"reference": "Patient/p1"},
        "started": "2024-03-15T10:00:00Z",
        "numberOfSeries": 1,
        "numberOfInstances": 2,
        "series": [{"uid": "1.2.840.1.1", "modality": {"code": "CT"}, "instance": [{"uid": "1.2.840.1.1.1", "sopClass": {"code": "1.2"}}]}]
    })
}

/// A store holding the patient, the encounter and two observations.
fn store() -> HashMap<(String, String), Value> {
    let mut s = HashMap::new();
    for r in [
        patient(),
        encounter("in-progress"),
        observation("o1", "final", 5.9),
        observation("o2", "final", 140.0),
    ] {
        let key = (
            r["resourceType"].as_str().unwrap().to_string(),
            r["id"].as_str().unwrap().to_string(),
        );
        s.insert(key, r);
    }
    s
}

fn events(v: &Value, created: bool) -> Vec<CanonicalEvent> {
    let s = store();
    let lookup = move |t: &str, id: &str| s.get(&(t.to_string(), id.to_string())).cloned();
    check_resource(v, None).unwrap_or_else(|e| panic!("refused: {e:#?}"));
    to_events(v, created, &lookup).unwrap_or_else(|e| panic!("no events: {e:#?}"))
}

fn kinds(v: &Value, created: bool) -> Vec<EventKind> {
    events(v, created).iter().map(CanonicalEvent::kind).collect()
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

// ------------------------------------------------------ malformed: JSON

#[test]
fn invalid_json_says_where() {
    let issue = parse_json(b"{\"resourceType\": \"Patient\",\n \"gender\": }").unwrap_err();
    assert_eq!(issue.code, IssueCode::Structure);
    assert!(issue.diagnostics.starts_with("line 2 column 12: "), "{issue:?}");
    assert_eq!(issue.expression, None);
    assert_eq!(issue.code.http_status(), 400);
}

#[test]
fn an_empty_body_is_refused() {
    for body in [&b""[..], b"  \r\n"] {
        let issue = parse_json(body).unwrap_err();
        assert_eq!(issue.code, IssueCode::Structure);
        assert!(issue.diagnostics.contains("empty"), "{issue:?}");
    }
}

#[test]
fn json_that_is_not_an_object_is_refused() {
    for body in [
        &b"[{\"resourceType\": \"Patient\"}]"[..],
        b"\"Patient\"",
        b"42",
        b"null",
    ] {
        let v = parse_json(body).unwrap();
        has(&refused(&v, Some("Patient")), IssueCode::Structure, None);
    }
}

// ------------------------------------------------- malformed: resourceType

#[test]
fn a_missing_resource_type_is_required() {
    has(
        &refused(&without(patient(), "resourceType"), None),
        IssueCode::Required,
        Some("resourceType"),
    );
    has(
        &refused(&with(patient(), "resourceType", json!(1)), None),
        IssueCode::Structure,
        Some("resourceType"),
    );
}

#[test]
fn an_unknown_resource_type_is_not_supported_and_named() {
    let issues = refused(&json!({"resourceType": "Pateint"}), None);
    has(&issues, IssueCode::NotSupported, Some("resourceType"));
    assert!(issues[0].diagnostics.contains("\"Pateint\""), "{issues:?}");
    // A real R4 type medbus does not take is refused the same way.
    has(
        &refused(&json!({"resourceType": "Medication"}), None),
        IssueCode::NotSupported,
        Some("resourceType"),
    );
}

#[test]
fn a_type_other_than_the_url_s_is_refused() {
    has(
        &refused(&patient(), Some("Observation")),
        IssueCode::Invalid,
        Some("resourceType"),
    );
    assert!(check_resource(&patient(), Some("Patient")).is_ok());
}

// ------------------------------------------------------ malformed: elements

#[test]
fn an_unknown_top_level_element_is_named() {
    let issues = refused(&with(patient(), "favouriteColour", json!("blue")), None);
    has(&issues, IssueCode::Structure, Some("Patient.favouriteColour"));
    // An element of another type is unknown here too.
    has(
        &refused(&with(patient(), "status", json!("active")), None),
        IssueCode::Structure,
        Some("Patient.status"),
    );
}

#[test]
fn an_unknown_nested_element_is_named() {
    let mut p = patient();
    p["name"][0]["foo"] = json!("bar");
    has(&refused(&p, None), IssueCode::Structure, Some("Patient.name[0].foo"));
    let mut o = observation("o1", "final", 1.0);
    o["valueQuantity"]["vaule"] = json!(1);
    has(
        &refused(&o, None),
        IssueCode::Structure,
        Some("Observation.valueQuantity.vaule"),
    );
}

#[test]
fn wrong_json_types_are_named() {
    for (key, value, at) in [
        ("birthDate", json!(12), "Patient.birthDate"),
        ("gender", json!(1), "Patient.gender"),
        ("active", json!("yes"), "Patient.active"),
        ("name", json!("Jane Doe"), "Patient.name"),
        ("identifier", json!({"value": "100001"}), "Patient.identifier"),
        (
            "telecom",
            json!([{"system": "phone", "rank": "first"}]),
            "Patient.telecom[0].rank",
        ),
    ] {
        has(
            &refused(&with(patient(), key, value), None),
            IssueCode::Structure,
            Some(at),
        );
    }
    let mut p = patient();
    p["name"][0]["given"] = json!("Jane");
    has(&refused(&p, None), IssueCode::Structure, Some("Patient.name[0].given"));
}

#[test]
fn bad_dates_and_codes_are_values() {
    for (key, value, at) in [
        ("birthDate", json!("1980-13-01"), "Patient.birthDate"),
        ("birthDate", json!("12/04/1980"), "Patient.birthDate"),
        ("gender", json!("F"), "Patient.gender"),
        (
            "deceasedDateTime",
            json!("2024-03-15T08:30"),
            "Patient.deceasedDateTime",
        ),
    ] {
        has(&refused(&with(patient(), key, value), None), IssueCode::Value, Some(at));
    }
    has(
        &refused(&with(encounter("finished"), "status", json!("done")), None),
        IssueCode::Value,
        Some("Encounter.status"),
    );
    has(
        &refused(
            &with(observation("o1", "final", 1.0), "issued", json!("yesterday")),
            None,
        ),
        IssueCode::Value,
        Some("Observation.issued"),
    );
}

#[test]
fn elements_the_canonical_model_does_not_read_are_checked_too() {
    let o = observation("o1", "final", 1.0);
    has(
        &refused(&with(o.clone(), "category", json!({"text": "laboratory"})), None),
        IssueCode::Structure,
        Some("Observation.category"),
    );
    has(
        &refused(
            &with(
                o.clone(),
                "performer",
                json!([{"reference": "Organization/lab", "nmae": "x"}]),
            ),
            None,
        ),
        IssueCode::Structure,
        Some("Observation.performer[0].nmae"),
    );
    let b = with(without(o, "valueQuantity"), "valueBoolean", json!("yes"));
    has(
        &refused(&b, None),
        IssueCode::Structure,
        Some("Observation.valueBoolean"),
    );
    has(
        &refused(
            &with(
                service_request("active"),
                "note",
                json!([{"time": "2024-03-15T09:00:00Z"}]),
            ),
            None,
        ),
        IssueCode::Required,
        Some("ServiceRequest.note[0].text"),
    );
    has(
        &refused(
            &with(service_request("active"), "occurrenceDateTime", json!("tomorrow")),
            None,
        ),
        IssueCode::Value,
        Some("ServiceRequest.occurrenceDateTime"),
    );
}

#[test]
fn nulls_and_two_choices_are_structure_errors() {
    has(
        &refused(&with(patient(), "gender", Value::Null), None),
        IssueCode::Structure,
        Some("Patient.gender"),
    );
    let p = with(
        with(patient(), "deceasedBoolean", json!(true)),
        "deceasedDateTime",
        json!("2024"),
    );
    has(&refused(&p, None), IssueCode::Structure, Some("Patient.deceased[x]"));
}

#[test]
fn a_bad_id_is_refused() {
    has(
        &refused(&with(patient(), "id", json!("p_1")), None),
        IssueCode::Value,
        Some("Patient.id"),
    );
    has(
        &refused(&with(patient(), "id", json!("x".repeat(65))), None),
        IssueCode::Value,
        Some("Patient.id"),
    );
}

// ------------------------------------------------------ malformed: required

#[test]
fn a_patient_needs_an_identifier_with_a_value() {
    let issues = refused(&without(patient(), "identifier"), None);
    has(&issues, IssueCode::Required, Some("Patient.identifier"));
    assert!(
        issues[0].diagnostics.contains("keys patients by identifier"),
        "{issues:?}"
    );
    let no_value = with(patient(), "identifier", json!([{"system": "urn:oid:1.2.3.4"}]));
    has(
        &refused(&no_value, None),
        IssueCode::Required,
        Some("Patient.identifier"),
    );
}

#[test]
fn observation_status_and_code_are_required() {
    has(
        &refused(&without(observation("o1", "final", 1.0), "status"), None),
        IssueCode::Required,
        Some("Observation.status"),
    );
    has(
        &refused(&without(observation("o1", "final", 1.0), "code"), None),
        IssueCode::Required,
        Some("Observation.code"),
    );
    // Present but empty is missing too.
    has(
        &refused(&with(observation("o1", "final", 1.0), "code", json!({})), None),
        IssueCode::Required,
        Some("Observation.code"),
    );
}

#[test]
fn service_request_intent_is_required() {
    has(
        &refused(&without(service_request("active"), "intent"), None),
        IssueCode::Required,
        Some("ServiceRequest.intent"),
    );
}

#[test]
fn encounter_class_is_required() {
    let issues = refused(&without(encounter("finished"), "class"), None);
    has(&issues, IssueCode::Required, Some("Encounter.class"));
    // Reported once, not again by the typed read.
    assert_eq!(issues.len(), 1, "{issues:#?}");
}

#[test]
fn charge_item_subject_is_required() {
    has(
        &refused(&without(charge_item("billable"), "subject"), None),
        IssueCode::Required,
        Some("ChargeItem.subject"),
    );
}

#[test]
fn imaging_study_is_checked_too() {
    has(
        &refused(&without(imaging_study(), "subject"), None),
        IssueCode::Required,
        Some("ImagingStudy.subject"),
    );
    has(
        &refused(&with(imaging_study(), "status", json!("done")), None),
        IssueCode::Value,
        Some("ImagingStudy.status"),
    );
    has(
        &refused(&with(imaging_study(), "numberOfSeries", json!("one")), None),
        IssueCode::Structure,
        Some("ImagingStudy.numberOfSeries"),
    );
}

// ---------------------------------------------------- malformed: references

#[test]
fn bad_reference_syntax_is_a_value_error() {
    for bad in [
        "Patient 123",
        "Patient/",
        "Patinet/123",
        "Patient/a_b",
        "urn:uuid:not-a-uuid",
        "Patient/1/2",
    ] {
        let o = with(observation("o1", "final", 1.0), "subject", json!({"reference": bad}));
        let issues = refused(&o, None);
        has(&issues, IssueCode::Value, Some("Observation.subject.reference"));
        assert!(issues[0].diagnostics.contains("bad reference"), "{issues:?}");
    }
    let mut sr = service_request("active");
    sr["requester"] = json!({"reference": 12});
    has(
        &refused(&sr, None),
        IssueCode::Structure,
        Some("ServiceRequest.requester.reference"),
    );
    let abs = with(
        service_request("active"),
        "subject",
        json!({"reference": "https://x.org/fhir/Patient/1"}),
    );
    has(
        &refused(&abs, None),
        IssueCode::NotSupported,
        Some("ServiceRequest.subject.reference"),
    );
}

#[test]
fn a_subject_must_be_a_patient() {
    let o = with(
        observation("o1", "final", 1.0),
        "subject",
        json!({"reference": "Observation/o2"}),
    );
    has(
        &refused(&o, None),
        IssueCode::Value,
        Some("Observation.subject.reference"),
    );
    let g = with(
        charge_item("billable"),
        "subject",
        json!({"reference": "Group/g1", "type": "Group"}),
    );
    let issues = refused(&g, None);
    has(&issues, IssueCode::Value, Some("ChargeItem.subject.reference"));
    has(&issues, IssueCode::Value, Some("ChargeItem.subject.type"));
}

#[test]
fn a_contained_reference_must_name_a_contained_resource() {
    let o = with(
        observation("o1", "final", 1.0),
        "performer",
        json!([{"reference": "#lab"}]),
    );
    has(
        &refused(&o, None),
        IssueCode::Value,
        Some("Observation.performer[0].reference"),
    );
    let o = with(
        o,
        "contained",
        json!([{"resourceType": "Organization", "id": "lab", "name": "Lab"}]),
    );
    assert!(check_resource(&o, None).is_ok());
}

#[test]
fn a_modifier_extension_is_not_supported() {
    let p = with(
        patient(),
        "modifierExtension",
        json!([{"url": "http://x.org/ext", "valueBoolean": true}]),
    );
    has(
        &refused(&p, None),
        IssueCode::NotSupported,
        Some("Patient.modifierExtension"),
    );
    let mut e = encounter("finished");
    e["participant"][0]["modifierExtension"] = json!([{"url": "http://x.org/ext", "valueBoolean": true}]);
    has(
        &refused(&e, None),
        IssueCode::NotSupported,
        Some("Encounter.participant[0].modifierExtension"),
    );
}

// ------------------------------------------------------- malformed: bundles

fn bundle(kind: &str, entries: Value) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

fn post(full_url: &str, resource: Value) -> Value {
    let t = resource["resourceType"].as_str().unwrap().to_string();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": t}})
}

const P_UUID: &str = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a";
const E_UUID: &str = "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059";
const O_UUID: &str = "urn:uuid:a0b8bf4e-6a7f-4c49-9e76-1a07a0aee1b3";

/// A transaction of a new patient and an encounter and observation referring to it.
fn transaction() -> Value {
    let p = without(patient(), "id");
    let mut e = without(encounter("in-progress"), "id");
    e["subject"] = json!({"reference": P_UUID});
    let mut o = without(observation("o9", "final", 5.9), "id");
    o["subject"] = json!({"reference": P_UUID});
    o["encounter"] = json!({"reference": E_UUID});
    bundle(
        "transaction",
        json!([post(P_UUID, p), post(E_UUID, e), post(O_UUID, o)]),
    )
}

fn bundle_refused(v: &Value) -> Vec<Issue> {
    match parse_bundle(v) {
        Ok(ok) => panic!("accepted {v}: {ok:?}"),
        Err(issues) => issues,
    }
}

#[test]
fn only_transactions_and_batches_are_processed() {
    has(
        &bundle_refused(&bundle("collection", json!([]))),
        IssueCode::NotSupported,
        Some("Bundle.type"),
    );
    has(
        &bundle_refused(&bundle("bulk", json!([]))),
        IssueCode::Value,
        Some("Bundle.type"),
    );
    has(
        &bundle_refused(&without(bundle("batch", json!([])), "type")),
        IssueCode::Required,
        Some("Bundle.type"),
    );
    has(&bundle_refused(&patient()), IssueCode::Invalid, Some("resourceType"));
    let mut b = transaction();
    b["text"] = json!({"status": "generated", "div": "<div/>"});
    has(&bundle_refused(&b), IssueCode::Structure, Some("Bundle.text"));
}

#[test]
fn an_entry_without_request_is_refused() {
    let mut b = transaction();
    b["entry"][1].as_object_mut().unwrap().remove("request");
    has(
        &bundle_refused(&b),
        IssueCode::Required,
        Some("Bundle.entry[1].request"),
    );
    let mut b = transaction();
    b["entry"][0]["request"]["method"] = json!("PATCH");
    has(
        &bundle_refused(&b),
        IssueCode::NotSupported,
        Some("Bundle.entry[0].request.method"),
    );
    let mut b = transaction();
    b["entry"][0]["request"].as_object_mut().unwrap().remove("url");
    has(
        &bundle_refused(&b),
        IssueCode::Required,
        Some("Bundle.entry[0].request.url"),
    );
}

#[test]
fn a_post_entry_needs_its_resource() {
    let mut b = transaction();
    b["entry"][2].as_object_mut().unwrap().remove("resource");
    has(
        &bundle_refused(&b),
        IssueCode::Required,
        Some("Bundle.entry[2].resource"),
    );
}

#[test]
fn a_duplicate_full_url_is_refused() {
    let mut b = transaction();
    b["entry"][2]["fullUrl"] = json!(E_UUID);
    let issues = bundle_refused(&b);
    has(&issues, IssueCode::Duplicate, Some("Bundle.entry[2].fullUrl"));
}

#[test]
fn a_broken_entry_resource_is_named_within_the_bundle() {
    let mut b = transaction();
    b["entry"][2]["resource"]["subject"] = json!({"reference": "Patinet/1"});
    b["entry"][0]["resource"]["birthDate"] = json!("1980-02-30");
    let issues = bundle_refused(&b);
    has(
        &issues,
        IssueCode::Value,
        Some("Bundle.entry[2].resource.subject.reference"),
    );
    has(&issues, IssueCode::Value, Some("Bundle.entry[0].resource.birthDate"));
    let mut b = transaction();
    b["entry"][1]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("resourceType");
    has(
        &bundle_refused(&b),
        IssueCode::Required,
        Some("Bundle.entry[1].resource.resourceType"),
    );
}

#[test]
fn urn_uuid_references_must_resolve_within_a_transaction() {
    let mut b = transaction();
    b["entry"][2]["resource"]["subject"] = json!({"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"});
    has(
        &bundle_refused(&b),
        IssueCode::NotFound,
        Some("Bundle.entry[2].resource.subject.reference"),
    );
    // A subject that is another entry must be a Patient entry.
    let mut b = transaction();
    b["entry"][2]["resource"]["subject"] = json!({"reference": E_UUID});
    has(
        &bundle_refused(&b),
        IssueCode::Value,
        Some("Bundle.entry[2].resource.subject.reference"),
    );
    // A batch's entries are independent.
    let mut b = transaction();
    b["type"] = json!("batch");
    has(
        &bundle_refused(&b),
        IssueCode::Invalid,
        Some("Bundle.entry[1].resource.subject.reference"),
    );
}

#[test]
fn a_put_needs_the_url_s_id_and_type() {
    let entry = |url: &str, r: Value| json!({"resource": r, "request": {"method": "PUT", "url": url}});
    let b = bundle("batch", json!([entry("Patient/p2", patient())]));
    has(
        &bundle_refused(&b),
        IssueCode::Invalid,
        Some("Bundle.entry[0].resource.id"),
    );
    let b = bundle("batch", json!([entry("Observation/p1", patient())]));
    has(
        &bundle_refused(&b),
        IssueCode::Invalid,
        Some("Bundle.entry[0].request.url"),
    );
    let b = bundle(
        "batch",
        json!([
            entry("Patient/p1", patient()),
            entry("Patient?identifier=urn:oid:1.2.3.4|100001", patient())
        ]),
    );
    let (kind, entries) = parse_bundle(&b).unwrap();
    assert_eq!(kind, BundleKind::Batch);
    assert_eq!(entries[1].method, Method::Put);
    assert_eq!(entries[1].index, 1);
}

// ---------------------------------------------------------- the outcome

#[test]
fn the_operation_outcome_names_each_issue() {
    let issues = refused(&with(without(patient(), "identifier"), "birthDate", json!(12)), None);
    let oo = operation_outcome(&issues);
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let list = oo["issue"].as_array().unwrap();
    assert_eq!(list.len(), issues.len());
    assert!(list.iter().all(|i| i["severity"] == "error"));
    assert!(list
        .iter()
        .any(|i| i["code"] == "required" && i["expression"] == json!(["Patient.identifier"])));
    assert!(list
        .iter()
        .any(|i| i["code"] == "structure" && i["expression"] == json!(["Patient.birthDate"])));
    let whole = operation_outcome(&[Issue::whole(IssueCode::Structure, "x")]);
    assert!(whole["issue"][0].get("expression").is_none());
    assert_eq!(operation_outcome(&[])["issue"][0]["code"], "exception");
    assert_eq!(IssueCode::NotSupported.as_str(), "not-supported");
    assert_eq!(IssueCode::NotFound.as_str(), "not-found");
    assert_eq!(http_status(&[Issue::whole(IssueCode::Value, "")]), 400);
    assert_eq!(
        http_status(&[
            Issue::whole(IssueCode::Value, ""),
            Issue::whole(IssueCode::NotFound, "")
        ]),
        422
    );
}

// ------------------------------------------------------- positive: checks

#[test]
fn realistic_resources_pass_with_identifiers_and_references() {
    let c = check_resource(&patient(), Some("Patient")).unwrap();
    assert_eq!(c.resource_type, "Patient");
    assert_eq!(
        c.identifiers,
        vec![
            (Some("urn:oid:1.2.3.4".to_string()), "100001".to_string()),
            (Some("urn:medbus:authority:EMPI".to_string()), "E1".to_string()),
        ]
    );
    assert_eq!(
        c.references,
        vec![RefSite {
            expression: "Patient.generalPractitioner[0]".into(),
            reference: "Practitioner/dr1".into()
        }]
    );
    for v in [
        encounter("in-progress"),
        service_request("active"),
        observation("o1", "final", 5.9),
        diagnostic_report("final"),
        charge_item("billable"),
        imaging_study(),
    ] {
        let c = check_resource(&v, None).unwrap_or_else(|e| panic!("{v}: {e:#?}"));
        assert_eq!(c.resource_type, v["resourceType"].as_str().unwrap());
        assert_eq!(c.identifiers.len(), 1, "{c:?}");
        assert!(c
            .references
            .iter()
            .any(|r| r.expression.ends_with(".subject") && r.reference == "Patient/p1"));
    }
    let dr = check_resource(&diagnostic_report("final"), None).unwrap();
    assert!(dr
        .references
        .iter()
        .any(|r| r.expression == "DiagnosticReport.result[1]"));
}

// ------------------------------------------------------- positive: events

#[test]
fn a_patient_is_registered_then_updated() {
    let e = events(&patient(), true);
    let CanonicalEvent::PatientRegistered(b) = &e[0] else {
        panic!("{e:?}")
    };
    assert_eq!(b.patient.key().as_deref(), Some("urn:oid:1.2.3.4|100001"));
    assert_eq!(b.source_message_type.as_deref(), Some("FHIR Patient create"));
    assert_eq!(b.patient.name[0].given, ["Jane", "Q"]);
    assert_eq!(kinds(&patient(), false), [EventKind::PatientUpdated]);
    assert_eq!(e[0].source_message_type(), Some("FHIR Patient create"));
    assert_eq!(
        events(&patient(), false)[0].source_message_type(),
        Some("FHIR Patient update")
    );
}

#[test]
fn encounter_status_decides_the_kind_as_on_the_hl7_path() {
    for (status, created, kind) in [
        ("planned", true, EventKind::EncounterPlanned),
        ("arrived", true, EventKind::EncounterStarted),
        ("triaged", true, EventKind::EncounterStarted),
        ("in-progress", true, EventKind::EncounterStarted),
        ("in-progress", false, EventKind::EncounterUpdated),
        ("finished", false, EventKind::EncounterFinished),
        ("cancelled", false, EventKind::EncounterCancelled),
    ] {
        assert_eq!(kinds(&encounter(status), created), [kind], "{status} created={created}");
    }
    let e = events(&encounter("finished"), false);
    let CanonicalEvent::EncounterFinished(b) = &e[0] else {
        panic!("{e:?}")
    };
    assert_eq!(b.patient.key().as_deref(), Some("urn:oid:1.2.3.4|100001"));
    assert_eq!(b.encounter.key().as_deref(), Some("urn:medbus:authority:UCH|V100"));
    // The subject keeps its literal reference and gains the patient's key, as HL7's.
    let subject = b.encounter.subject.as_ref().unwrap();
    assert_eq!(subject.reference.as_deref(), Some("Patient/p1"));
    assert_eq!(
        subject.identifier.as_ref().and_then(|i| i.value.as_deref()),
        Some("100001")
    );
    assert_eq!(b.occurred.as_ref().map(|t| t.as_str()), Some("2024-03-18T10:00:00Z"));
    let started = events(&encounter("in-progress"), true);
    assert_eq!(started[0].occurred().map(|t| t.as_str()), Some("2024-03-15T08:30:00Z"));
}

#[test]
fn service_request_status_decides_the_order_kind() {
    for (status, created, kind) in [
        ("active", true, EventKind::OrderPlaced),
        ("draft", true, EventKind::OrderPlaced),
        ("active", false, EventKind::OrderUpdated),
        ("completed", false, EventKind::OrderCompleted),
        ("revoked", false, EventKind::OrderCancelled),
        ("entered-in-error", false, EventKind::OrderCancelled),
    ] {
        assert_eq!(
            kinds(&service_request(status), created),
            [kind],
            "{status} created={created}"
        );
    }
    let e = events(&service_request("active"), true);
    let CanonicalEvent::OrderPlaced(b) = &e[0] else {
        panic!("{e:?}")
    };
    assert_eq!(
        b.service_request.key().as_deref(),
        Some("urn:medbus:authority:CPOE|PL1")
    );
    assert_eq!(b.patient.key().as_deref(), Some("urn:oid:1.2.3.4|100001"));
    assert_eq!(b.occurred.as_ref().map(|t| t.as_str()), Some("2024-03-15T09:00:00Z"));
    // The visit is known, so the order names it by identifier as well.
    let enc = b.service_request.encounter.as_ref().unwrap();
    assert_eq!(enc.identifier.as_ref().and_then(|i| i.value.as_deref()), Some("V100"));
}

#[test]
fn a_report_carries_its_observations() {
    let e = events(&diagnostic_report("final"), true);
    let CanonicalEvent::ResultReported(b) = &e[0] else {
        panic!("{e:?}")
    };
    assert_eq!(b.report.key().as_deref(), Some("urn:medbus:authority:LAB|F1"));
    let keys: Vec<_> = b.observations.iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys,
        ["urn:medbus:authority:LAB|OBX-o1", "urn:medbus:authority:LAB|OBX-o2"]
    );
    assert_eq!(b.report.result[1].reference.as_deref(), Some("Observation/o2"));
    assert_eq!(
        b.report.result[1].identifier.as_ref().and_then(|i| i.value.as_deref()),
        Some("OBX-o2")
    );
    assert_eq!(b.patient.key().as_deref(), Some("urn:oid:1.2.3.4|100001"));
    assert_eq!(b.occurred.as_ref().map(|t| t.as_str()), Some("2024-03-15T11:00:00Z"));
    for status in ["preliminary", "registered", "final"] {
        assert_eq!(
            kinds(&diagnostic_report(status), false),
            [EventKind::ResultReported],
            "{status}"
        );
    }
    for status in ["corrected", "amended", "appended", "cancelled", "entered-in-error"] {
        assert_eq!(
            kinds(&diagnostic_report(status), false),
            [EventKind::ResultCorrected],
            "{status}"
        );
    }
}

#[test]
fn a_report_whose_observation_is_unknown_is_not_found() {
    let dr = with(
        diagnostic_report("final"),
        "result",
        json!([{"reference": "Observation/o1"}, {"reference": "Observation/nope"}]),
    );
    let s = store();
    let lookup = move |t: &str, id: &str| s.get(&(t.to_string(), id.to_string())).cloned();
    let issues = to_events(&dr, true, &lookup).unwrap_err();
    has(
        &issues,
        IssueCode::NotFound,
        Some("DiagnosticReport.result[1].reference"),
    );
    let o = with(
        observation("o1", "final", 1.0),
        "subject",
        json!({"reference": "Patient/unknown"}),
    );
    has(
        &to_events(&o, true, &lookup).unwrap_err(),
        IssueCode::NotFound,
        Some("Observation.subject.reference"),
    );
    // A urn:uuid left unrewritten cannot be followed.
    let o = with(observation("o1", "final", 1.0), "subject", json!({"reference": P_UUID}));
    has(
        &to_events(&o, true, &lookup).unwrap_err(),
        IssueCode::NotFound,
        Some("Observation.subject.reference"),
    );
}

#[test]
fn a_lone_observation_is_reported_in_a_report_of_its_own() {
    let e = events(&observation("o1", "final", 5.9), true);
    let CanonicalEvent::ResultReported(b) = &e[0] else {
        panic!("{e:?}")
    };
    assert_eq!(b.observations.len(), 1);
    assert_eq!(b.report.key().as_deref(), Some("urn:medbus:authority:LAB|OBX-o1"));
    assert_eq!(b.report.code, b.observations[0].code);
    assert_eq!(b.report.result[0].reference.as_deref(), Some("Observation/o1"));
    assert_eq!(b.source_message_type.as_deref(), Some("FHIR Observation create"));
    assert_eq!(
        kinds(&observation("o1", "corrected", 5.9), false),
        [EventKind::ResultCorrected]
    );
}

#[test]
fn charge_status_decides_posted_or_reversed() {
    for (status, kind) in [
        ("billable", EventKind::ChargePosted),
        ("planned", EventKind::ChargePosted),
        ("aborted", EventKind::ChargeReversed),
        ("not-billable", EventKind::ChargeReversed),
        ("entered-in-error", EventKind::ChargeReversed),
    ] {
        assert_eq!(kinds(&charge_item(status), true), [kind], "{status}");
    }
    let e = events(&charge_item("billable"), true);
    let CanonicalEvent::ChargePosted(b) = &e[0] else {
        panic!("{e:?}")
    };
    assert_eq!(b.charge_item.key().as_deref(), Some("urn:medbus:authority:BILL|T1"));
    assert_eq!(b.occurred.as_ref().map(|t| t.as_str()), Some("2024-03-15T09:30:00Z"));
}

#[test]
fn an_imaging_study_checks_but_has_no_event_yet() {
    assert!(events(&imaging_study(), true).is_empty());
}

#[test]
fn a_resource_without_identifier_is_keyed_by_its_id() {
    let o = without(observation("o7", "final", 1.0), "identifier");
    let e = events(&o, true);
    let expected = format!("{FHIR_ID_SYSTEM}|o7");
    assert_eq!(e[0].patient_key().as_deref(), Some("urn:oid:1.2.3.4|100001"));
    let CanonicalEvent::ResultReported(b) = &e[0] else {
        panic!("{e:?}")
    };
    assert_eq!(b.observations[0].key(), Some(expected.clone()));
    assert_eq!(b.report.key(), Some(expected));
}

#[test]
fn a_subject_by_identifier_only_is_a_patient_of_that_identifier() {
    let sr = with(
        service_request("active"),
        "subject",
        json!({"identifier": {"system": "urn:oid:1.2.3.4", "value": "100001"}}),
    );
    let e = events(&sr, true);
    assert_eq!(e[0].patient_key().as_deref(), Some("urn:oid:1.2.3.4|100001"));
}

// ------------------------------------------------------- positive: bundles

#[test]
fn a_transaction_s_uuid_references_are_rewritten_and_resolve() {
    let (kind, mut entries) = parse_bundle(&transaction()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(kind, BundleKind::Transaction);
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e.method == Method::Post));
    assert_eq!(entries[2].full_url.as_deref(), Some(O_UUID));
    let obs_refs = &entries[2].checked.as_ref().unwrap().references;
    assert!(obs_refs
        .iter()
        .any(|r| r.expression == "Observation.subject" && r.reference == P_UUID));

    // What the server does: assign ids, rewrite, store, map.
    let map: HashMap<String, String> = [
        (P_UUID.to_string(), "Patient/np1".to_string()),
        (E_UUID.to_string(), "Encounter/ne1".to_string()),
        (O_UUID.to_string(), "Observation/no1".to_string()),
    ]
    .into();
    let mut stored: HashMap<(String, String), Value> = HashMap::new();
    for e in &mut entries {
        let r = e.resource.as_mut().unwrap();
        rewrite_references(r, &map);
        let (t, id) = map[e.full_url.as_deref().unwrap()].split_once('/').unwrap();
        r["id"] = json!(id);
        stored.insert((t.to_string(), id.to_string()), r.clone());
    }
    let obs = entries[2].resource.as_ref().unwrap();
    assert_eq!(obs["subject"]["reference"], "Patient/np1");
    assert_eq!(obs["encounter"]["reference"], "Encounter/ne1");
    // Still a valid resource after the rewrite.
    assert!(check_resource(obs, Some("Observation")).is_ok());
    let lookup = move |t: &str, id: &str| stored.get(&(t.to_string(), id.to_string())).cloned();
    let all: Vec<EventKind> = entries
        .iter()
        .flat_map(|e| to_events(e.resource.as_ref().unwrap(), true, &lookup).unwrap())
        .map(|e| e.kind())
        .collect();
    assert_eq!(
        all,
        [
            EventKind::PatientRegistered,
            EventKind::EncounterStarted,
            EventKind::ResultReported
        ]
    );
}

#[test]
fn rewriting_touches_only_mapped_reference_strings() {
    let mut v = json!({
        "subject": {"reference": "urn:uuid:1", "display": "urn:uuid:1"},
        "result": [{"reference": "urn:uuid:2"}, {"reference": "Observation/x"}],
        "note": [{"text": "urn:uuid:1"}]
    });
    let map: HashMap<String, String> = [("urn:uuid:1".to_string(), "Patient/a".to_string())].into();
    rewrite_references(&mut v, &map);
    assert_eq!(v["subject"]["reference"], "Patient/a");
    assert_eq!(v["subject"]["display"], "urn:uuid:1");
    assert_eq!(v["result"][0]["reference"], "urn:uuid:2");
    assert_eq!(v["note"][0]["text"], "urn:uuid:1");
}

// -------------------------------------------- medbus's own FHIR comes back in

/// Every resource medbus sends (canonical → FHIR, from the HL7 edge cases
/// and the simulator corpus)
/// passes the inbound checks, and maps back to the event kind it came from.
#[test]
fn medbus_s_outbound_fhir_is_accepted_and_maps_back_to_its_kind() {
    let map = |m: &[u8]| {
        let msg = crate::hl7::parser::Message::parse(m).unwrap();
        crate::hl7::canonical::map_message(&msg).unwrap()
    };
    let edge_cases = include_str!("../edge_cases.hl7")
        .split("\n\n")
        .map(|b| {
            b.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .collect::<Vec<_>>()
                .join("\r")
        })
        .filter(|m| !m.is_empty())
        .flat_map(|m| map(m.as_bytes()));
    let corpus = include_bytes!("../../hl7/canonical/message_tests/sim_full_600.hl7")
        .split(|&b| b == b'\n')
        .filter(|m| !m.is_empty())
        .flat_map(map);
    let events: Vec<CanonicalEvent> = edge_cases.chain(corpus).collect();
    let mut compared = 0;
    for event in &events {
        let resources = super::super::to_fhir(event).unwrap();
        for r in &resources {
            let t = r["resourceType"].as_str().unwrap();
            if SUPPORTED.contains(&t) {
                check_resource(r, Some(t))
                    .unwrap_or_else(|e| panic!("{} refused {r:#}: {e:#?}", event.kind().as_str()));
            }
        }
        let lookup = |t: &str, id: &str| {
            resources
                .iter()
                .find(|r| r["resourceType"] == t && r["id"] == id)
                .cloned()
        };
        let (main, created) = match event.kind() {
            EventKind::PatientRegistered => ("Patient", true),
            EventKind::PatientUpdated => ("Patient", false),
            EventKind::EncounterPlanned | EventKind::EncounterStarted | EventKind::OrderPlaced => (
                if event.kind() == EventKind::OrderPlaced {
                    "ServiceRequest"
                } else {
                    "Encounter"
                },
                true,
            ),
            EventKind::EncounterFinished | EventKind::EncounterCancelled => ("Encounter", false),
            EventKind::OrderCancelled | EventKind::OrderCompleted => ("ServiceRequest", false),
            EventKind::ResultReported | EventKind::ResultCorrected => ("DiagnosticReport", false),
            EventKind::ChargePosted | EventKind::ChargeReversed => ("ChargeItem", false),
            // Updates may carry any status; merges and appointments have no inbound path.
            _ => continue,
        };
        let Some(r) = resources.iter().find(|r| r["resourceType"] == main) else {
            continue;
        };
        let back = to_events(r, created, &lookup).unwrap_or_else(|e| panic!("{r:#}: {e:#?}"));
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].kind(), event.kind(), "{r:#}");
        assert_eq!(back[0].patient_key(), event.patient_key(), "{r:#}");
        compared += 1;
    }
    eprintln!("compared {compared} of {} events", events.len());
    assert!(compared >= 100, "only {compared} events compared");
}

// ------------------------------------------------- events of one request

fn request_kinds(resources: &[(Value, bool)]) -> Vec<EventKind> {
    let s = store();
    let lookup = move |t: &str, id: &str| s.get(&(t.to_string(), id.to_string())).cloned();
    request_events(resources, &lookup)
        .unwrap_or_else(|e| panic!("no events: {e:#?}"))
        .iter()
        .map(CanonicalEvent::kind)
        .collect()
}

#[test]
fn a_report_carries_the_observations_of_its_request() {
    // A report and its two observations in one transaction: one result event, not three.
    let request = [
        (observation("o1", "final", 5.9), true),
        (observation("o2", "final", 140.0), true),
        (diagnostic_report("final"), true),
    ];
    assert_eq!(request_kinds(&request), [EventKind::ResultReported]);
    let s = store();
    let lookup = move |t: &str, id: &str| s.get(&(t.to_string(), id.to_string())).cloned();
    let events = request_events(&request, &lookup).unwrap();
    let EventBody::Result(body) = events[0].body() else {
        panic!("{events:?}")
    };
    assert_eq!(body.observations.len(), 2);
    // An observation the report does not list keeps its own event, as does one sent alone.
    let request = [
        (observation("o1", "final", 5.9), true),
        (observation("o3", "final", 4.0), true),
        (
            with(
                diagnostic_report("final"),
                "result",
                json!([{"reference": "Observation/o1"}]),
            ),
            true,
        ),
    ];
    assert_eq!(
        request_kinds(&request),
        [EventKind::ResultReported, EventKind::ResultReported]
    );
    assert_eq!(
        request_kinds(&[(observation("o1", "final", 5.9), true)]),
        [EventKind::ResultReported]
    );
}

#[test]
fn a_carried_observation_that_does_not_map_is_still_refused() {
    let s = store();
    let lookup = move |t: &str, id: &str| s.get(&(t.to_string(), id.to_string())).cloned();
    let broken = with(
        observation("o1", "final", 5.9),
        "subject",
        json!({"reference": "Patient/nobody"}),
    );
    let failed = request_events(&[(broken, true), (diagnostic_report("final"), true)], &lookup).unwrap_err();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, 0);
    has(&failed[0].1, IssueCode::NotFound, Some("Observation.subject.reference"));
}

#[test]
fn one_status_mapping_for_issue_codes() {
    // FHIR R4 REST: 400 bad content (also a fullUrl twice), 422 unprocessable, 409 conflict, 503 retry.
    assert_eq!(IssueCode::NotSupported.http_status(), 400);
    assert_eq!(IssueCode::Duplicate.http_status(), 400);
    assert_eq!(IssueCode::NotFound.http_status(), 422);
    assert_eq!(IssueCode::Conflict.http_status(), 409);
    assert_eq!(IssueCode::Exception.http_status(), 500);
    assert_eq!(IssueCode::Transient.http_status(), 503);
    assert_eq!(IssueCode::Transient.as_str(), "transient");
    assert_eq!(
        http_status(&[
            Issue::whole(IssueCode::Value, ""),
            Issue::whole(IssueCode::Transient, "")
        ]),
        503
    );
}

#[test]
fn an_accession_number_on_an_order_is_kept_for_the_study_to_find() {
    let acsn = json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]},
        "system": "urn:oid:1.2.3.99", "value": "ACC77"
    });
    let mut sr = service_request("active");
    sr["identifier"].as_array_mut().unwrap().push(acsn);
    let evs = events(&sr, true);
    let CanonicalEvent::OrderPlaced(b) = &evs[0] else {
        panic!("a new active order is placed: {evs:?}")
    };
    let kept: Vec<_> = b
        .service_request
        .identifier
        .iter()
        .filter(|i| i.has_type("ACSN"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].value.as_deref(), Some("ACC77"));
    assert_eq!(
        kept[0].system.as_deref(),
        Some("urn:oid:1.2.3.99"),
        "its own system: the orders service indexes the accession token besides"
    );
}
