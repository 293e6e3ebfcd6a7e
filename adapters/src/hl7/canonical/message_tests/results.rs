//! ORU^R01: the report and its observations, each kind of value, ranges and
//! flags, corrections, several patients, and the errors.

use medbus_bus::canonical::{systems, DiagnosticReportStatus, ObservationStatus, ObservationValue, QuantityComparator};
use serde_json::json;

use super::samples::*;
use super::{body, events, kinds, location, refused, result_of};
use crate::hl7::canonical::MapError;

#[test]
fn a_final_report_with_its_observations() {
    let evs = events(&oru_final());
    assert_eq!(kinds(&evs), ["result.reported"]);
    let r = result_of(&evs[0]);
    assert_eq!(r.source_message_type.as_deref(), Some("ORU^R01"));
    assert_eq!(r.report.status, DiagnosticReportStatus::Final);
    assert_eq!(r.observations.len(), 9);
    assert!(r.observations.iter().all(|o| o.status == ObservationStatus::Final));
    // The report lists exactly its observations, by their identifiers.
    let listed: Vec<_> = r.report.result.iter().filter_map(|x| x.identifier.clone()).collect();
    let own: Vec<_> = r.observations.iter().map(|o| o.identifier[0].clone()).collect();
    assert_eq!(listed, own);
    assert_eq!(r.report.key().as_deref(), Some("urn:medbus:authority:LAB|FL2001"));
    assert_eq!(body(&evs[0])["occurred"], json!("2024-03-15T09:15:00-05:00"));
}

#[test]
fn the_report_and_a_critical_potassium_in_full() {
    let v = body(&events(&oru_final())[0]);
    let based_on = json!([
        {"type": "ServiceRequest", "identifier": {
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
            "system": "urn:oid:2.16.840.1.113883.19.1", "value": "PL1001"}},
        {"type": "ServiceRequest", "identifier": {
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "FILL"}]},
            "system": "urn:medbus:authority:LAB", "value": "FL2001"}}
    ]);
    let report = &v["report"];
    assert_eq!(report["basedOn"], based_on);
    assert_eq!(report["status"], json!("final"));
    assert_eq!(report["effectiveDateTime"], json!("2024-03-15T08:20:00-05:00"));
    assert_eq!(report["issued"], json!("2024-03-15T09:15:00-05:00"));
    assert_eq!(report["identifier"][0]["value"], json!("FL2001"));
    assert_eq!(report["identifier"][1]["value"], json!("PL1001"));
    let mmol =
        |value: f64| json!({"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"});
    let mut potassium = v["observations"][0].clone();
    // Subject and encounter are the report's; checked there.
    assert_eq!(potassium["subject"], report["subject"]);
    assert_eq!(potassium["encounter"], report["encounter"]);
    potassium.as_object_mut().unwrap().remove("subject");
    potassium.as_object_mut().unwrap().remove("encounter");
    assert_eq!(
        potassium,
        json!({
            "resourceType": "Observation",
            "identifier": [{"system": "urn:medbus:authority:LAB", "value": "FL2001/2823-3"}],
            "basedOn": based_on,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium [Moles/volume] in Serum or Plasma"}]},
            "effectiveDateTime": "2024-03-15T08:20:00-05:00",
            "issued": "2024-03-15T09:15:00-05:00",
            "valueQuantity": mmol(6.8),
            "interpretation": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                "code": "HH",
                "display": "Critical high"
            }]}],
            "note": [{"text": "Called to Dr Welby at 09:20."}],
            "referenceRange": [{"low": mmol(3.5), "high": mmol(5.1)}]
        })
    );
}

#[test]
fn each_value_type() {
    let evs = events(&oru_final());
    let obs = &result_of(&evs[0]).observations;
    let quantity = |i: usize| match &obs[i].value {
        Some(ObservationValue::Quantity(q)) => q.clone(),
        other => panic!("observation {i}: {other:?}"),
    };
    // NM with a comparator, and a unit that names UCUM without a display.
    let chol = quantity(2);
    assert_eq!(chol.comparator, Some(QuantityComparator::Less));
    assert_eq!(chol.value.map(|d| d.value()), Some(50.0));
    let sodium = quantity(1);
    assert_eq!(
        (sodium.unit.as_deref(), sodium.code.as_deref()),
        (Some("mmol/L"), Some("mmol/L"))
    );
    // SN `>^60`.
    let egfr = quantity(3);
    assert_eq!(egfr.comparator, Some(QuantityComparator::Greater));
    assert_eq!(egfr.value.map(|d| d.value()), Some(60.0));
    assert_eq!(
        obs[3].reference_range[0].text, None,
        ">= is inclusive, as FHIR ranges are"
    );
    assert_eq!(obs[2].reference_range[0].text.as_deref(), Some("<200"));
    assert_eq!(obs[4].value, Some(ObservationValue::String("Straw".into())));
    match &obs[5].value {
        Some(ObservationValue::CodeableConcept(c)) => assert!(c.has_code(systems::SNOMED_CT, "3092008")),
        other => panic!("{other:?}"),
    }
    assert!(obs[5].has_interpretation("A"));
    assert!(obs[0].has_interpretation("HH") && obs[1].has_interpretation("N"));
}

#[test]
fn repeated_lines_of_a_text_report_keep_distinct_identifiers() {
    let evs = events(&oru_final());
    let ids: Vec<_> = result_of(&evs[0]).observations[6..]
        .iter()
        .map(|o| o.identifier[0].value.clone().unwrap())
        .collect();
    assert_eq!(ids, ["FL2001/11526-1", "FL2001/11526-1/2", "FL2001/11526-1/3"]);
}

#[test]
fn a_correction_replaces_by_the_same_identifiers() {
    let first = events(&oru_final());
    let corrected = events(&oru_corrected());
    assert_eq!(kinds(&corrected), ["result.corrected"]);
    let r = result_of(&corrected[0]);
    assert_eq!(r.report.status, DiagnosticReportStatus::Corrected);
    assert_eq!(r.observations[0].status, ObservationStatus::Corrected);
    assert_eq!(r.observations[1].status, ObservationStatus::Final);
    assert_eq!(r.report.key(), result_of(&first[0]).report.key());
    assert_eq!(r.observations[0].key(), result_of(&first[0]).observations[0].key());
    assert!(r.observations[0].note[0].text.contains("Previously reported"));
    // The correction alone in OBX-11 (OBR-25 final) is still a correction.
    let only_obx = String::from_utf8(oru_corrected())
        .unwrap()
        .replace("202403151030|||C", "202403151030|||F");
    let evs = events(only_obx.as_bytes());
    assert_eq!(kinds(&evs), ["result.corrected"]);
    assert_eq!(result_of(&evs[0]).report.status, DiagnosticReportStatus::Final);
}

#[test]
fn several_patients_and_a_status_from_the_observations() {
    let evs = events(&oru_two_patients());
    assert_eq!(kinds(&evs), ["result.reported", "result.reported"]);
    let keys: Vec<_> = evs.iter().map(|e| e.patient_key()).collect();
    assert_eq!(
        keys,
        [
            Some("urn:oid:1.2.840.114350|100001".to_string()),
            Some("urn:oid:1.2.840.114350|100002".to_string())
        ]
    );
    let (a, b) = (result_of(&evs[0]), result_of(&evs[1]));
    // No OBR-25: final from the OBX, preliminary from the OBX.
    assert_eq!(a.report.status, DiagnosticReportStatus::Final);
    assert_eq!(b.report.status, DiagnosticReportStatus::Preliminary);
    // Only the filler number, only the placer number.
    assert_eq!(a.report.based_on.len(), 1);
    assert_eq!(b.report.key().as_deref(), Some("urn:medbus:authority:CPOE|PL9"));
    assert_eq!(
        b.observations[0].key().as_deref(),
        Some("urn:medbus:authority:CPOE|PL9/718-7")
    );
    assert!(b.observations[0].has_interpretation("LL"));
    // The second patient's visit, not the first's (who had none).
    assert_eq!(a.report.encounter, None);
    let visit = b.report.encounter.as_ref().and_then(|e| e.identifier.as_ref());
    assert_eq!(visit.and_then(|i| i.value.as_deref()), Some("V200"));
}

#[test]
fn observation_without_its_status_takes_the_reports() {
    let raw = msg(&[
        &msh("ORU^R01"),
        PID,
        "OBR|1||FL7^LAB|2823-3^K^LN|||||||||||||||||||||P",
        "OBX|1|NM|2823-3^K^LN||4.0",
        "OBX|2|NM|2951-2^Na^LN||",
    ]);
    let evs = events(&raw);
    let r = result_of(&evs[0]);
    assert_eq!(r.report.status, DiagnosticReportStatus::Preliminary);
    assert_eq!(r.observations[0].status, ObservationStatus::Preliminary);
    assert_eq!(r.observations[1].value, None, "an empty OBX-5 is no value");
}

#[test]
fn bad_results_name_the_field_and_code() {
    let err = |segments: &[&str]| {
        let mut all = vec![msh("ORU^R01"), PID.to_string()];
        all.extend(segments.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        refused(&msg(&refs))
    };
    let obr = "OBR|1||FL1^LAB|2823-3^K^LN";
    let e = err(&[obr, "OBX|1|NM|2823-3^K^LN||high|mmol/L"]);
    assert_eq!((location(&e).as_deref(), e.hl7_error_code()), (Some("OBX-5"), 102));
    assert!(
        e.to_string().contains("decimal") && !e.to_string().contains("high"),
        "{e}"
    );
    let e = err(&[obr, "OBX|1|NM|2823-3^K^LN||4||||||Q"]);
    assert_eq!((location(&e).as_deref(), e.hl7_error_code()), (Some("OBX-11"), 103));
    let e = err(&[obr, "OBX|1|NM|||4"]);
    assert_eq!((location(&e).as_deref(), e.hl7_error_code()), (Some("OBX-3"), 101));
    let e = err(&[obr, "OBX|1||2823-3^K^LN||4"]);
    assert_eq!(location(&e).as_deref(), Some("OBX-2"));
    let e = err(&["OBR|1||FL1^LAB", "OBX|1|NM|2823-3^K^LN||4"]);
    assert_eq!(location(&e).as_deref(), Some("OBR-4"));
    let e = err(&["OBR|1|||2823-3^K^LN"]);
    assert_eq!(location(&e).as_deref(), Some("OBR-3"));
    let e = err(&["OBR|1||FL1^LAB|2823-3^K^LN|||||||||||||||||||||Q"]);
    assert_eq!(
        e,
        MapError::UnknownCode {
            location: crate::hl7::canonical::FieldLocation::new("OBR", 3, 25),
            table: "0123",
            code: "Q".into()
        }
    );
    let e = err(&["OBX|1|NM|2823-3^K^LN||4"]);
    assert_eq!(e.to_string(), "ORU^R01 has no OBR segment before OBX");
    let e = err(&[obr, "PID|2||7^^^H^MR", "OBX|1|NM|2823-3^K^LN||4"]);
    assert!(matches!(e, MapError::NoSegment { segment: "OBR", .. }), "{e}");
    let e = refused(&msg(&[&msh("ORU^R01"), obr]));
    assert!(matches!(e, MapError::NoSegment { segment: "PID", .. }), "{e}");
    let e = err(&[]);
    assert!(matches!(e, MapError::NoSegment { segment: "OBR", .. }), "{e}");
}
