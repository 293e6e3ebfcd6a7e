//! The DICOM → canonical mapping: every field, absent fields, bad values.

use std::collections::BTreeMap;

use medbus_bus::canonical::{systems, DateTime, ImagingStudyStatus, StoredInstance};
use serde_json::json;

use super::*;

fn full() -> InstanceMetadata {
    InstanceMetadata {
        patient_id: Some("MRN123".into()),
        patient_name: Some("Doe^Jane^Q^Dr^III".into()),
        study_instance_uid: "1.2.3".into(),
        series_instance_uid: "1.2.3.4".into(),
        sop_instance_uid: "1.2.3.4.5".into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        modality: Some("CT".into()),
        accession_number: Some("ACC42".into()),
        study_date: Some("20261201".into()),
        study_time: Some("101530".into()),
        timezone_offset: Some("+0100".into()),
        study_description: Some("CT CHEST".into()),
        series_number: Some(3),
        instance_number: Some(7),
        body_part_examined: Some("CHEST".into()),
        number_of_frames: Some(2),
        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
    }
}

fn headers() -> BTreeMap<String, String> {
    BTreeMap::from([
        (raw_header::FILE.to_string(), "1.2.3/1.2.3.4/1.2.3.4.5.dcm".to_string()),
        (raw_header::FILE_BYTES.to_string(), "1234".to_string()),
        (raw_header::CALLING_AE.to_string(), "CT1 ".to_string()),
    ])
}

fn map(m: &InstanceMetadata, authority: Option<&str>) -> ImagingEvent {
    let stored = stored_instance("modalities", &headers(), m).unwrap();
    let options = MapOptions {
        patient_id_authority: authority,
        received: DateTime::parse("2026-12-02T04:00:00Z").ok(),
    };
    instance_stored(m, stored, &options).unwrap()
}

#[test]
fn every_field_lands_where_fhir_has_it() {
    let e = map(&full(), Some("HOSP"));
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(
        v["patient"]["identifier"],
        json!([{
            "type": {"coding": [{"system": systems::V2_0203, "code": "MR", "display": "Medical record number"}]},
            "system": "urn:medbus:authority:HOSP",
            "value": "MRN123"
        }])
    );
    assert_eq!(
        v["patient"]["name"],
        json!([{"family": "Doe", "given": ["Jane", "Q"], "prefix": ["Dr"], "suffix": ["III"]}])
    );
    let s = &v["imagingStudy"];
    assert_eq!(s["status"], json!("registered"));
    assert_eq!(
        s["identifier"][0],
        json!({"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"})
    );
    assert_eq!(s["identifier"][1]["system"], json!(systems::MEDBUS_ACCESSION));
    assert_eq!(s["identifier"][1]["value"], json!("ACC42"));
    assert_eq!(s["identifier"][1]["type"]["coding"][0]["code"], json!("ACSN"));
    assert_eq!(s["basedOn"][0]["type"], json!("ServiceRequest"));
    assert_eq!(s["basedOn"][0]["identifier"], s["identifier"][1]);
    assert_eq!(s["modality"], json!([{"system": systems::DICOM_DCM, "code": "CT"}]));
    assert_eq!(s["subject"]["identifier"]["value"], json!("MRN123"));
    assert_eq!(s["subject"]["display"], json!("Doe, Jane Q"), "{}", s["subject"]);
    assert_eq!(s["started"], json!("2026-12-01T10:15:30+01:00"));
    assert_eq!(s["description"], json!("CT CHEST"));
    assert_eq!(
        s["series"],
        json!([{
            "uid": "1.2.3.4",
            "number": 3,
            "modality": {"system": systems::DICOM_DCM, "code": "CT"},
            "bodySite": {"code": "CHEST", "display": "CHEST"},
            "instance": [{
                "uid": "1.2.3.4.5",
                "sopClass": {"system": systems::URI, "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"},
                "number": 7
            }]
        }])
    );
    assert_eq!(
        e.instance,
        Some(StoredInstance {
            channel: "modalities".into(),
            file: "1.2.3/1.2.3.4/1.2.3.4.5.dcm".into(),
            file_bytes: 1234,
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            calling_ae: Some("CT1".into()),
            number_of_frames: Some(2),
        })
    );
    assert_eq!(e.source_message_type.as_deref(), Some(C_STORE));
    assert_eq!(e.occurred.as_ref().map(DateTime::as_str), Some("2026-12-02T04:00:00Z"));
    assert_eq!(e.imaging_study.status, ImagingStudyStatus::Registered);
    assert_eq!(e.patient.key().as_deref(), Some("urn:medbus:authority:HOSP|MRN123"));
}

#[test]
fn without_an_authority_the_patient_id_has_no_system() {
    let e = map(&full(), None);
    assert_eq!(e.patient.identifier[0].system, None);
    assert_eq!(e.patient.key().as_deref(), Some("|MRN123"));
}

#[test]
fn absent_fields_are_absent_and_the_study_still_names_the_patient() {
    let bare = InstanceMetadata {
        study_instance_uid: "1.2.3".into(),
        series_instance_uid: "1.2.3.4".into(),
        sop_instance_uid: "1.2.3.4.5".into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(),
        transfer_syntax_uid: "1.2.840.10008.1.2".into(),
        ..InstanceMetadata::default()
    };
    let e = map(&bare, Some("HOSP"));
    assert!(e.patient.identifier.is_empty());
    assert!(e.patient.name.is_empty());
    assert_eq!(e.patient.key(), None);
    let s = serde_json::to_value(&e.imaging_study).unwrap();
    assert_eq!(s["subject"], json!({"type": "Patient"}));
    assert_eq!(s["identifier"].as_array().map(Vec::len), Some(1), "no accession");
    assert!(s.get("basedOn").is_none() && s.get("started").is_none() && s.get("description").is_none());
    assert_eq!(s["modality"][0]["code"], json!("OT"), "modality not sent");
    assert!(s["series"][0].get("bodySite").is_none() && s["series"][0].get("number").is_none());
    assert!(s["series"][0]["instance"][0].get("number").is_none());
    // A name alone still says who it is about.
    let named = InstanceMetadata {
        patient_name: Some("Roe^Richard".into()),
        ..bare
    };
    let e = map(&named, None);
    assert_eq!(e.imaging_study.subject.display.as_deref(), Some("Roe, Richard"));
    assert_eq!(e.imaging_study.subject.identifier, None);
}

#[test]
fn bad_dates_are_absent_not_errors() {
    for (date, time) in [("2026-12-01", "101530"), ("20261345", "101530"), ("yesterday", "")] {
        let m = InstanceMetadata {
            study_date: Some(date.into()),
            study_time: Some(time.into()),
            ..full()
        };
        assert_eq!(map(&m, None).imaging_study.started, None, "{date}");
    }
    let no_zone = InstanceMetadata {
        timezone_offset: None,
        ..full()
    };
    assert_eq!(
        map(&no_zone, None).imaging_study.started.as_ref().map(DateTime::as_str),
        Some("2026-12-01")
    );
}

#[test]
fn values_that_are_not_uids_are_refused() {
    let stored = stored_instance("m", &headers(), &full()).unwrap();
    for m in [
        InstanceMetadata {
            study_instance_uid: "1.2.x".into(),
            ..full()
        },
        InstanceMetadata {
            series_instance_uid: "../1".into(),
            ..full()
        },
        InstanceMetadata {
            sop_instance_uid: "1..2".into(),
            ..full()
        },
        InstanceMetadata {
            sop_class_uid: String::new(),
            ..full()
        },
    ] {
        let err = instance_stored(&m, stored.clone(), &MapOptions::default()).unwrap_err();
        assert!(matches!(err, DicomMapError::BadUid(_)), "{err}");
    }
}

#[test]
fn headers_and_body_that_do_not_read_are_errors() {
    let mut h = headers();
    h.remove(raw_header::FILE);
    assert_eq!(
        stored_instance("m", &h, &full()),
        Err(DicomMapError::Header(raw_header::FILE))
    );
    let mut h = headers();
    h.insert(raw_header::FILE_BYTES.into(), "-1".into());
    assert_eq!(
        stored_instance("m", &h, &full()),
        Err(DicomMapError::Header(raw_header::FILE_BYTES))
    );
    let mut h = headers();
    h.insert(raw_header::CALLING_AE.into(), "  ".into());
    assert_eq!(stored_instance("m", &h, &full()).unwrap().calling_ae, None);
    assert!(matches!(
        read_metadata(b"{\"patient_id\": 1}"),
        Err(DicomMapError::Metadata(_))
    ));
    assert!(matches!(read_metadata(b"not json"), Err(DicomMapError::Metadata(_))));
    let body = serde_json::to_vec(&full()).unwrap();
    assert_eq!(read_metadata(&body).unwrap(), full());
}

#[test]
fn person_names_read_the_alphabetic_group() {
    let n = person_name("Yamada^Tarou=山田^太郎").unwrap();
    assert_eq!(n.family.as_deref(), Some("Yamada"));
    assert_eq!(n.given, ["Tarou"]);
    assert_eq!(person_name("^^^Dr"), None);
    assert_eq!(person_name("").map(|n| n.given), None);
    assert_eq!(person_name("^Cher").unwrap().given, ["Cher"]);
}
