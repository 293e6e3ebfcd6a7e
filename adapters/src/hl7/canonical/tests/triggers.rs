//! Which events each trigger yields, and the whole JSON of some of them.

use medbus_bus::canonical::{EncounterStatus, EventBody};
use serde_json::json;

use super::samples::*;
use super::{body, encounter_of, events, kinds};

#[test]
fn each_trigger_yields_its_events_in_order() {
    let cases: [(Vec<u8>, &[&str]); 13] = [
        (a01(), &["patient.registered", "encounter.started"]),
        (a04(), &["patient.registered", "encounter.started"]),
        (a05(), &["patient.registered", "encounter.planned"]),
        (a08(), &["patient.updated", "encounter.updated"]),
        (a08_no_visit(), &["patient.updated"]),
        (a03(), &["encounter.finished"]),
        (a03_no_discharge_time(), &["encounter.finished"]),
        (a11(), &["encounter.cancelled"]),
        (a13(), &["encounter.reopened"]),
        (a28(), &["patient.registered"]),
        (a31(), &["patient.updated"]),
        (a40(), &["patient.merged", "patient.merged"]),
        (a01_nonstandard(), &["patient.registered", "encounter.started"]),
    ];
    for (raw, expected) in cases {
        let evs = events(&raw);
        assert_eq!(kinds(&evs), expected, "{}", String::from_utf8_lossy(&raw));
        for e in &evs {
            assert!(e.subject().to_string().ends_with(e.kind().as_str()));
            assert!(e.patient_key().is_some(), "{}", e.kind().as_str());
            assert!(e.source_message_type().is_some_and(|t| t.starts_with("ADT^A")));
        }
    }
}

#[test]
fn an_admission_orders_both_events_by_the_same_patient_key() {
    let evs = events(&a01());
    let keys: Vec<_> = evs.iter().map(|e| e.patient_key()).collect();
    let mrn = Some("urn:oid:1.2.840.114350|100001".to_string());
    assert_eq!(keys, [mrn.clone(), mrn]);
}

#[test]
fn a04_in_full() {
    let evs = events(&a04());
    let patient = json!({
        "resourceType": "Patient",
        "identifier": [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number"}]},
            "system": "urn:medbus:authority:CLINIC",
            "value": "555",
            "assigner": {"display": "CLINIC"}
        }],
        "name": [{"family": "NGUYEN", "given": ["WEI"]}],
        "gender": "unknown",
        "birthDate": "1980"
    });
    assert_eq!(
        body(&evs[0]),
        json!({"patient": patient, "sourceMessageType": "ADT^A04", "occurred": "2024-03-16T09:15:00Z"})
    );
    assert_eq!(
        body(&evs[1]),
        json!({
            "encounter": {
                "resourceType": "Encounter",
                "identifier": [{
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN", "display": "Visit number"}]},
                    "value": "V555"
                }],
                "status": "in-progress",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
                "serviceType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0069", "code": "CAR"}]},
                "subject": {
                    "type": "Patient",
                    "identifier": {
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number"}]},
                        "system": "urn:medbus:authority:CLINIC",
                        "value": "555"
                    },
                    "display": "NGUYEN, WEI"
                },
                "period": {"start": "2024-03-16T09:10:00Z"},
                "location": [{"location": {"type": "Location", "display": "CARDIO CLINIC"}, "status": "active"}]
            },
            "patient": patient,
            "sourceMessageType": "ADT^A04",
            "occurred": "2024-03-16T09:15:00Z"
        })
    );
}

#[test]
fn a40_merges_each_pid_mrg_pair() {
    let evs = events(&a40());
    let mr = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number"}]});
    let id = |value: &str| json!({"type": mr, "system": "urn:oid:1.2.840.114350", "value": value, "assigner": {"display": "UCH"}});
    assert_eq!(
        body(&evs[1]),
        json!({
            "surviving": {
                "resourceType": "Patient",
                "identifier": [id("100003")],
                "name": [{"family": "ROE", "given": ["RICHARD"]}],
                "link": [{"other": {"type": "Patient", "identifier": id("100004")}, "type": "replaces"}]
            },
            "merged": [id("100004")],
            "sourceMessageType": "ADT^A40",
            "occurred": "2024-03-15T08:30:00-05:00"
        })
    );
    let EventBody::Merge(first) = evs[0].body() else {
        panic!("not a merge")
    };
    let merged: Vec<_> = first.merged.iter().filter_map(|i| i.token()).collect();
    assert_eq!(
        merged,
        ["urn:oid:1.2.840.114350|100009", "urn:medbus:authority:EMPI|E777"]
    );
    assert_eq!(first.surviving.link.len(), 2);
    assert_eq!(evs[0].patient_key().as_deref(), Some("urn:oid:1.2.840.114350|100001"));
}

#[test]
fn a05_plans_the_visit() {
    let evs = events(&a05());
    let e = &encounter_of(&evs[1]).encounter;
    assert_eq!(e.status, EncounterStatus::Planned);
    assert_eq!(e.class.code.as_deref(), Some("PRENC"));
    assert_eq!(body(&evs[1])["encounter"]["location"][0]["status"], json!("planned"));
}

#[test]
fn a03_ends_the_visit_at_the_discharge_time_or_else_the_event_time() {
    let evs = events(&a03());
    let b = body(&evs[0]);
    assert_eq!(b["encounter"]["status"], json!("finished"));
    assert_eq!(
        b["encounter"]["period"],
        json!({"start": "2024-03-15T08:00:00-05:00", "end": "2024-03-18T11:30:00-05:00"})
    );
    assert_eq!(
        b["encounter"]["hospitalization"]["dischargeDisposition"],
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0112", "code": "01", "display": "Discharged to home"}]})
    );
    assert_eq!(b["encounter"]["location"][0]["status"], json!("completed"));
    let b = body(&events(&a03_no_discharge_time())[0]);
    assert_eq!(b["encounter"]["period"]["end"], json!("2024-03-18T12:00:00-05:00"));
}

#[test]
fn a11_cancels_and_a13_reopens() {
    let a11 = events(&a11());
    let cancelled = &encounter_of(&a11[0]).encounter;
    assert_eq!(cancelled.status, EncounterStatus::Cancelled);
    assert_eq!(cancelled.key().as_deref(), Some("urn:oid:1.2.840.114350.1|V100"));
    let a13 = events(&a13());
    let reopened = &encounter_of(&a13[0]).encounter;
    assert_eq!(reopened.status, EncounterStatus::InProgress);
    // The discharge it cancels is gone, though PV1-45 and PV1-36 still carry it.
    let period = reopened.period.as_ref().unwrap();
    assert!(period.start.is_some() && period.end.is_none());
    assert!(reopened
        .hospitalization
        .as_ref()
        .is_some_and(|h| h.discharge_disposition.is_none()));
}

#[test]
fn a08_updates_the_visit_only_when_there_is_one() {
    let evs = events(&a08());
    let e = &encounter_of(&evs[1]).encounter;
    // No discharge time, an admit time: still in progress.
    assert_eq!(e.status, EncounterStatus::InProgress);
    assert_eq!(kinds(&events(&a08_no_visit())), ["patient.updated"]);
}

#[test]
fn other_delimiters_map_alike() {
    let standard = events(&a01());
    let other = events(&a01_nonstandard());
    assert_eq!(standard[0].patient_key(), other[0].patient_key());
    // `\T\` / `@T@` stand for each message's own sub-component separator.
    assert_eq!(standard[0].patient().name[0].family.as_deref(), Some("O'BRIEN&SMITH"));
    assert_eq!(other[0].patient().name[0].family.as_deref(), Some("O'BRIEN!SMITH"));
    assert_eq!(encounter_of(&other[1]).encounter.key(), Some("|V100".into()));
}
