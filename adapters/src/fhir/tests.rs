//! Unit tests of the FHIR mapping: ids, references, and every kind, on the
//! hand-written edge cases and the simulator corpus. Validation by a real
//! validator is in adapters/tests/fhir_validate.rs.

use std::collections::{BTreeSet, HashSet};

use medbus_bus::canonical::{
    AppointmentEvent, CanonicalEvent, CriticalReason, CriticalResultEvent, EventKind, Identifier, Patient,
};
use serde_json::Value;

use super::*;
use crate::hl7::canonical::map_message;
use crate::hl7::parser::Message;

const EDGE_CASES: &str = include_str!("edge_cases.hl7");
const CORPUS: &[u8] = include_bytes!("../hl7/canonical/message_tests/sim_full_600.hl7");

fn map(raw: &[u8]) -> Vec<CanonicalEvent> {
    let msg = Message::parse(raw).unwrap();
    map_message(&msg).unwrap()
}

fn edge_events() -> Vec<CanonicalEvent> {
    EDGE_CASES
        .split("\n\n")
        .map(|b| {
            b.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .collect::<Vec<_>>()
                .join("\r")
        })
        .filter(|m| !m.is_empty())
        .flat_map(|m| map(m.as_bytes()))
        .collect()
}

fn corpus_events() -> Vec<CanonicalEvent> {
    CORPUS
        .split(|&b| b == b'\n')
        .filter(|m| !m.is_empty())
        .flat_map(map)
        .collect()
}

/// The results service's critical event for the edge cases' HH potassium.
fn critical() -> CanonicalEvent {
    let events = edge_events();
    let Some(CanonicalEvent::ResultReported(b)) = events.iter().find(|e| e.kind() == EventKind::ResultReported) else {
        panic!("the edge cases have a result.reported")
    };
    CanonicalEvent::ResultCritical(Box::new(CriticalResultEvent {
        observation: b.observations[0].clone(),
        report: b.report.clone(),
        reason: CriticalReason::Flag("HH".into()),
        patient: b.patient.clone(),
        source_message_type: b.source_message_type.clone(),
        occurred: b.occurred.clone(),
    }))
}

fn all_events() -> Vec<CanonicalEvent> {
    let mut all = edge_events();
    all.push(critical());
    all.extend(corpus_events());
    all.extend(imaging_events());
    all
}

/// An instance as the DICOM router maps it, and the study it completes (two series).
fn imaging_events() -> Vec<CanonicalEvent> {
    use crate::dicom::canonical::{instance_stored, MapOptions};
    use medbus_bus::canonical::{ImagingStudyStatus, StoredInstance};
    let m = crate::dicom::InstanceMetadata {
        patient_id: Some("MRN77".into()),
        patient_name: Some("Doe^Jane".into()),
        study_instance_uid: "1.2.826.0.1.3680043.10.99.1".into(),
        series_instance_uid: "1.2.826.0.1.3680043.10.99.1.1".into(),
        sop_instance_uid: "1.2.826.0.1.3680043.10.99.1.1.1".into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        modality: Some("CT".into()),
        accession_number: Some("ACC1".into()),
        study_date: Some("20261201".into()),
        series_number: Some(1),
        instance_number: Some(1),
        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
        ..Default::default()
    };
    let stored = StoredInstance {
        channel: "modalities".into(),
        file: "a.dcm".into(),
        file_bytes: 1,
        transfer_syntax: m.transfer_syntax_uid.clone(),
        calling_ae: None,
        number_of_frames: None,
    };
    let one = instance_stored(&m, stored, &MapOptions::default()).unwrap();
    let mut whole = one.clone();
    whole.instance = None;
    let s = &mut whole.imaging_study;
    s.status = ImagingStudyStatus::Available;
    let mut second = s.series[0].clone();
    second.uid.push_str(".2");
    second.instance[0].uid.push_str(".2");
    s.series.push(second);
    s.series.iter_mut().for_each(|x| x.number_of_instances = Some(1));
    s.number_of_series = Some(2);
    s.number_of_instances = Some(2);
    vec![
        CanonicalEvent::ImagingInstanceStored(one),
        CanonicalEvent::ImagingStudyCompleted(whole),
    ]
}

fn types(resources: &[Value]) -> Vec<&str> {
    resources.iter().map(|r| r["resourceType"].as_str().unwrap()).collect()
}

/// The key identifier's token: the MRN first for a Patient, else the first identifier with a value.
fn key_token(r: &Value) -> String {
    let ids: Vec<Identifier> = serde_json::from_value(r["identifier"].clone()).unwrap();
    let chosen = if r["resourceType"] == "Patient" {
        Patient {
            identifier: ids.clone(),
            ..Patient::default()
        }
        .key_identifier()
        .cloned()
    } else {
        ids.iter().find(|i| i.value.is_some()).cloned()
    };
    chosen.and_then(|i| i.token()).unwrap()
}

/// Every `reference` element anywhere in `v`.
fn literal_references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                match (k.as_str(), item) {
                    ("reference", Value::String(s)) => out.push(s.clone()),
                    _ => literal_references(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| literal_references(i, out)),
        _ => {}
    }
}

#[test]
fn ids_are_stable_fhir_ids_that_differ_by_type_and_key() {
    let id = logical_id("Patient", "urn:oid:1.2.3|100001");
    assert_eq!(id, logical_id("Patient", "urn:oid:1.2.3|100001"));
    // Pinned: a changed namespace or recipe would re-key every resource already sent.
    assert_eq!(id, "94954451-26ff-545d-b260-243a23e76eb0");
    assert_ne!(id, logical_id("Encounter", "urn:oid:1.2.3|100001"));
    assert_ne!(id, logical_id("Patient", "urn:oid:1.2.3|100002"));
    assert!(id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    assert_eq!(literal("Patient", "urn:oid:1.2.3|100001"), format!("Patient/{id}"));
}

#[test]
fn conditional_urls_escape_and_encode() {
    let ident = |system: Option<&str>, value: Option<&str>| Identifier {
        system: system.map(str::to_string),
        value: value.map(str::to_string),
        ..Identifier::default()
    };
    assert_eq!(
        conditional_url("Patient", &ident(Some("urn:oid:1.2.3"), Some("MR1"))).as_deref(),
        Some("Patient?identifier=urn:oid:1.2.3|MR1")
    );
    assert_eq!(
        conditional_url("ChargeItem", &ident(Some("urn:x"), Some("A B&c|d,e"))).as_deref(),
        Some("ChargeItem?identifier=urn:x|A%20B%26c%5C%7Cd%5C%2Ce")
    );
    assert_eq!(
        conditional_url("Patient", &ident(None, Some("7"))).as_deref(),
        Some("Patient?identifier=|7")
    );
    assert_eq!(conditional_url("Patient", &ident(Some("urn:x"), None)), None);
}

#[test]
fn every_kind_becomes_its_resources() {
    let events = all_events();
    let kinds: BTreeSet<&str> = events.iter().map(|e| e.kind().as_str()).collect();
    assert_eq!(kinds.len(), EventKind::ALL.len(), "the samples cover every kind");
    for e in &events {
        let rs = to_fhir(e).unwrap();
        let t = types(&rs);
        let expected: &[&str] = match e.kind() {
            EventKind::PatientRegistered | EventKind::PatientUpdated => &["Patient"],
            EventKind::PatientMerged => &["Patient", "Patient"],
            EventKind::EncounterPlanned
            | EventKind::EncounterStarted
            | EventKind::EncounterUpdated
            | EventKind::EncounterFinished
            | EventKind::EncounterCancelled
            | EventKind::EncounterReopened => &["Patient", "Encounter"],
            EventKind::OrderPlaced
            | EventKind::OrderUpdated
            | EventKind::OrderCancelled
            | EventKind::OrderCompleted => &["Patient", "ServiceRequest"],
            EventKind::AppointmentBooked
            | EventKind::AppointmentRescheduled
            | EventKind::AppointmentCancelled
            | EventKind::AppointmentNoshow => &["Patient", "Appointment"],
            EventKind::ResultReported | EventKind::ResultCorrected => {
                assert_eq!(t.first(), Some(&"Patient"));
                assert_eq!(t.last(), Some(&"DiagnosticReport"));
                assert!(t[1..t.len() - 1].iter().all(|x| *x == "Observation"), "{t:?}");
                continue;
            }
            EventKind::ResultCritical => &["Patient", "Observation", "DiagnosticReport", "Communication"],
            EventKind::ChargePosted | EventKind::ChargeReversed => &["Patient", "ChargeItem"],
            EventKind::ImagingInstanceStored | EventKind::ImagingStudyCompleted => &["Patient", "ImagingStudy"],
        };
        assert_eq!(t, expected, "{}", e.kind().as_str());
    }
}

#[test]
fn each_id_derives_from_type_and_key_and_subjects_point_at_the_patient() {
    for e in all_events() {
        let rs = to_fhir(&e).unwrap();
        let ids: HashSet<&str> = rs.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), rs.len(), "{}: one id per resource", e.kind().as_str());
        for r in &rs {
            let t = r["resourceType"].as_str().unwrap();
            assert_eq!(r["id"].as_str().unwrap(), logical_id(t, &key_token(r)), "{t}");
        }
        let patient = format!("Patient/{}", rs[0]["id"].as_str().unwrap());
        for r in &rs[1..] {
            if let Some(subject) = r.get("subject") {
                assert_eq!(
                    subject["reference"].as_str(),
                    Some(patient.as_str()),
                    "{}",
                    r["resourceType"]
                );
            }
        }
        assert_eq!(to_fhir(&e).unwrap(), rs, "deterministic");
    }
}

#[test]
fn results_reference_their_observations_orders_and_visits() {
    let mut produced: HashSet<String> = HashSet::new();
    let mut referenced: Vec<(String, String)> = Vec::new();
    for e in corpus_events().iter().chain(edge_events().iter()) {
        let rs = to_fhir(e).unwrap();
        for r in &rs {
            produced.insert(format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            ));
            let mut refs = Vec::new();
            literal_references(r, &mut refs);
            referenced.extend(refs.into_iter().map(|x| (e.kind().as_str().to_string(), x)));
        }
        if let CanonicalEvent::ResultReported(_) | CanonicalEvent::ResultCorrected(_) = e {
            let report = rs.last().unwrap();
            let results: Vec<&str> = report["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["reference"].as_str().unwrap())
                .collect();
            let observations: Vec<String> = rs[1..rs.len() - 1]
                .iter()
                .map(|o| format!("Observation/{}", o["id"].as_str().unwrap()))
                .collect();
            assert_eq!(results, observations);
            for r in &rs[1..] {
                let based_on = r["basedOn"].as_array().unwrap();
                assert!(based_on.iter().any(|b| b["reference"]
                    .as_str()
                    .is_some_and(|x| x.starts_with("ServiceRequest/"))));
            }
        }
    }
    // Every literal reference lands on a resource some event of the corpus produced:
    // orders on the order, visits on the ADT's encounter, results on observations.
    let dangling: Vec<&(String, String)> = referenced.iter().filter(|(_, r)| !produced.contains(r)).collect();
    assert!(
        dangling.is_empty(),
        "{} dangling, e.g. {:?}",
        dangling.len(),
        &dangling[..dangling.len().min(5)]
    );
    for prefix in ["Patient/", "Encounter/", "ServiceRequest/", "Observation/"] {
        assert!(
            referenced.iter().any(|(_, r)| r.starts_with(prefix)),
            "no reference to {prefix}"
        );
    }
}

#[test]
fn logical_only_references_stay_logical() {
    for e in edge_events() {
        for r in to_fhir(&e).unwrap() {
            let mut refs = Vec::new();
            literal_references(&r, &mut refs);
            for x in refs {
                assert!(!x.starts_with("Practitioner/") && !x.starts_with("Location/"), "{x}");
            }
            // The cancelled order known only by its filler number, and the charge naming it so.
            if r["resourceType"] == "ChargeItem" {
                for s in r["supportingInformation"].as_array().into_iter().flatten() {
                    assert!(s.get("reference").is_none(), "a filler number is not the order's key");
                }
            }
        }
    }
}

#[test]
fn a_merge_links_both_ways_and_retires_the_merged_record() {
    let e = edge_events()
        .into_iter()
        .find(|e| e.kind() == EventKind::PatientMerged)
        .unwrap();
    let rs = to_fhir(&e).unwrap();
    let (survivor, old) = (&rs[0], &rs[1]);
    assert_eq!(survivor["link"][0]["type"], "replaces");
    assert_eq!(
        survivor["link"][0]["other"]["reference"],
        format!("Patient/{}", old["id"].as_str().unwrap())
    );
    assert_eq!(old["active"], false);
    assert_eq!(old["link"][0]["type"], "replaced-by");
    assert_eq!(
        old["link"][0]["other"]["reference"],
        format!("Patient/{}", survivor["id"].as_str().unwrap())
    );
    assert!(old.get("name").is_none(), "the stub carries no demographics");
    // A merge into itself makes no second resource.
    let CanonicalEvent::PatientMerged(mut b) = e else {
        unreachable!()
    };
    b.merged = vec![b.surviving.key_identifier().unwrap().clone()];
    b.surviving.link.clear();
    assert_eq!(types(&to_fhir(&CanonicalEvent::PatientMerged(b)).unwrap()), ["Patient"]);
}

#[test]
fn an_appointment_without_the_patient_gets_it_as_participant() {
    let e = edge_events()
        .into_iter()
        .find(|e| e.kind() == EventKind::AppointmentNoshow)
        .unwrap();
    let CanonicalEvent::AppointmentNoshow(AppointmentEvent {
        mut appointment,
        patient,
        ..
    }) = e
    else {
        unreachable!()
    };
    appointment.participant.clear();
    let e = CanonicalEvent::AppointmentNoshow(AppointmentEvent {
        appointment,
        patient,
        source_message_type: None,
        occurred: None,
    });
    let rs = to_fhir(&e).unwrap();
    let participant = &rs[1]["participant"];
    assert_eq!(participant.as_array().map(Vec::len), Some(1));
    assert_eq!(participant[0]["status"], "accepted");
    assert_eq!(
        participant[0]["actor"]["reference"],
        format!("Patient/{}", rs[0]["id"].as_str().unwrap())
    );
    assert_eq!(rs[1]["status"], "noshow");
}

#[test]
fn a_critical_value_is_an_alert_about_the_observation_and_report() {
    let rs = to_fhir(&critical()).unwrap();
    let alert = &rs[3];
    assert_eq!(alert["category"][0]["coding"][0]["code"], "alert");
    assert_eq!(
        alert["about"][0]["reference"],
        format!("Observation/{}", rs[1]["id"].as_str().unwrap())
    );
    assert_eq!(
        alert["about"][1]["reference"],
        format!("DiagnosticReport/{}", rs[2]["id"].as_str().unwrap())
    );
    assert_eq!(alert["identifier"], rs[1]["identifier"]);
    assert_eq!(
        alert["payload"][0]["contentString"],
        "Critical result: Potassium = 6.8 mmol/L (flagged HH)"
    );
    // The observation and report are the very resources result.reported gave.
    let reported = edge_events()
        .into_iter()
        .find(|e| e.kind() == EventKind::ResultReported)
        .unwrap();
    let before = to_fhir(&reported).unwrap();
    assert_eq!(rs[1], before[1]);
    assert_eq!(rs[2], before[2]);
}

#[test]
fn resources_without_a_key_are_refused() {
    let mut events = edge_events();
    let CanonicalEvent::PatientRegistered(mut b) = events.remove(0) else {
        panic!("first is the A05 patient")
    };
    b.patient.identifier.clear();
    let err = to_fhir(&CanonicalEvent::PatientRegistered(b)).unwrap_err();
    assert!(
        matches!(
            err,
            FhirError::NoKey {
                resource_type: "Patient"
            }
        ),
        "{err}"
    );
    let Some(CanonicalEvent::ResultCorrected(mut b)) =
        events.into_iter().find(|e| e.kind() == EventKind::ResultCorrected)
    else {
        panic!("a corrected result")
    };
    b.observations[1].identifier.clear();
    let err = to_bundle(&CanonicalEvent::ResultCorrected(b)).unwrap_err();
    assert!(
        matches!(
            err,
            FhirError::NoKey {
                resource_type: "Observation"
            }
        ),
        "{err}"
    );
}

#[test]
fn bundles_are_transactions_of_conditional_updates() {
    for e in all_events().iter().take(200) {
        let rs = to_fhir(e).unwrap();
        let b = to_bundle(e).unwrap();
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "transaction");
        let entries = b["entry"].as_array().unwrap();
        assert_eq!(entries.len(), rs.len());
        for (entry, r) in entries.iter().zip(&rs) {
            let t = r["resourceType"].as_str().unwrap();
            assert_eq!(&entry["resource"], r);
            assert_eq!(entry["fullUrl"], format!("urn:uuid:{}", r["id"].as_str().unwrap()));
            assert_eq!(entry["request"]["method"], "PUT");
            let url = entry["request"]["url"].as_str().unwrap();
            assert!(url.starts_with(&format!("{t}?identifier=")), "{url}");
            assert!(url.ends_with(key_token(r).rsplit('|').next().unwrap()), "{url}");
        }
    }
}

#[test]
fn a_study_without_patient_id_is_pushed_alone_naming_the_patient_by_name() {
    let CanonicalEvent::ImagingInstanceStored(mut b) = imaging_events().remove(0) else {
        panic!("the first imaging sample is an instance-stored")
    };
    b.patient.identifier.clear();
    b.imaging_study.subject = b.patient.reference();
    let rs = to_fhir(&CanonicalEvent::ImagingInstanceStored(b)).unwrap();
    assert_eq!(types(&rs), ["ImagingStudy"]);
    assert_eq!(
        rs[0]["subject"],
        serde_json::json!({"type": "Patient", "display": "Doe, Jane"})
    );
}
