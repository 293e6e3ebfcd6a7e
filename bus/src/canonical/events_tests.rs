//! Tests of the event catalogue: subjects, JSON shape of each body, round trips.

use serde_json::json;

use super::*;
use crate::canonical::appointment::{Appointment, AppointmentParticipant, AppointmentStatus, ParticipationStatus};
use crate::canonical::charge_item::{ChargeItem, ChargeItemStatus};
use crate::canonical::datatypes::{CodeableConcept, Coding, Reference};
use crate::canonical::diagnostic_report::{DiagnosticReport, DiagnosticReportStatus};
use crate::canonical::encounter::EncounterStatus;
use crate::canonical::event_bodies::CriticalReason;
use crate::canonical::observation::{Observation, ObservationStatus, ObservationValue};
use crate::canonical::patient::{LinkType, PatientLink};
use crate::canonical::quantity::{Decimal, Money, Quantity};
use crate::canonical::service_request::{ServiceRequest, ServiceRequestIntent, ServiceRequestStatus};
use crate::canonical::systems;

fn mrn(value: &str) -> Identifier {
    Identifier {
        type_: Some(CodeableConcept::coded(Coding::new(systems::V2_0203, "MR", None))),
        system: Some("urn:oid:1.2.3.4".into()),
        value: Some(value.into()),
        ..Identifier::default()
    }
}

fn patient() -> Patient {
    Patient {
        identifier: vec![mrn("100001")],
        ..Patient::default()
    }
}

fn when() -> Option<DateTime> {
    DateTime::parse("2024-03-15T08:30:00-05:00").ok()
}

fn encounter_event() -> EncounterEvent {
    let mut encounter = Encounter::new(
        EncounterStatus::Finished,
        Coding::new(systems::V3_ACT_CODE, "IMP", Some("inpatient encounter")),
    );
    encounter.subject = Some(patient().reference());
    EncounterEvent {
        encounter,
        patient: patient(),
        source_message_type: Some("ADT^A03".into()),
        occurred: when(),
    }
}

fn order_number(system: &str, value: &str, type_code: &str) -> Identifier {
    Identifier {
        type_: Some(CodeableConcept::coded(Coding::new(systems::V2_0203, type_code, None))),
        system: Some(system.into()),
        value: Some(value.into()),
        ..Identifier::default()
    }
}

fn order_event(status: ServiceRequestStatus) -> OrderEvent {
    let mut sr = ServiceRequest::new(status, ServiceRequestIntent::Order, patient().reference());
    sr.identifier = vec![
        order_number("urn:medbus:authority:CPOE", "PL1", "PLAC"),
        order_number("urn:medbus:authority:LAB", "FL1", "FILL"),
    ];
    sr.code = Some(CodeableConcept::coded(Coding::new(systems::LOINC, "24323-8", None)));
    OrderEvent {
        service_request: sr,
        patient: patient(),
        source_message_type: Some("ORM^O01".into()),
        occurred: when(),
    }
}

fn appointment_event(status: AppointmentStatus) -> AppointmentEvent {
    let mut a = Appointment::new(status);
    a.identifier
        .push(order_number("urn:medbus:authority:SCHED", "SC1", "FILL"));
    a.participant.push(AppointmentParticipant {
        type_: Vec::new(),
        actor: Some(patient().reference()),
        status: ParticipationStatus::Accepted,
    });
    AppointmentEvent {
        appointment: a,
        patient: patient(),
        source_message_type: Some("SIU^S12".into()),
        occurred: when(),
    }
}

fn potassium(value: &str) -> Observation {
    let mut o = Observation::new(
        ObservationStatus::Final,
        CodeableConcept::coded(Coding::new(systems::LOINC, "2823-3", Some("Potassium"))),
    );
    o.identifier.push(Identifier {
        system: Some("urn:medbus:authority:LAB".into()),
        value: Some("FL1/2823-3".into()),
        ..Identifier::default()
    });
    o.value = Some(ObservationValue::Quantity(Quantity {
        value: Decimal::parse(value),
        unit: Some("mmol/L".into()),
        system: Some(systems::UCUM.into()),
        code: Some("mmol/L".into()),
        ..Quantity::default()
    }));
    o
}

fn report() -> DiagnosticReport {
    let mut r = DiagnosticReport::new(
        DiagnosticReportStatus::Final,
        CodeableConcept::coded(Coding::new(systems::LOINC, "24323-8", None)),
    );
    r.identifier
        .push(order_number("urn:medbus:authority:LAB", "FL1", "FILL"));
    r.result.push(potassium("6.8").reference());
    r
}

fn result_event() -> ResultEvent {
    ResultEvent {
        report: report(),
        observations: vec![potassium("6.8")],
        patient: patient(),
        source_message_type: Some("ORU^R01".into()),
        occurred: when(),
    }
}

fn critical_event() -> CriticalResultEvent {
    CriticalResultEvent {
        observation: potassium("6.8"),
        report: report(),
        reason: CriticalReason::Threshold {
            low: Decimal::parse("2.5"),
            high: Decimal::parse("6.5"),
        },
        patient: patient(),
        source_message_type: Some("ORU^R01".into()),
        occurred: when(),
    }
}

fn charge_event(status: ChargeItemStatus) -> ChargeEvent {
    let mut c = ChargeItem::new(
        status,
        CodeableConcept::coded(Coding::new(systems::CPT, "84132", None)),
        patient().reference(),
    );
    c.price_override = Some(Money {
        value: Decimal::parse("12.5"),
        currency: Some("USD".into()),
    });
    ChargeEvent {
        charge_item: c,
        patient: patient(),
        source_message_type: Some("DFT^P03".into()),
        occurred: when(),
    }
}

fn every_event() -> Vec<CanonicalEvent> {
    let pe = PatientEvent {
        patient: patient(),
        source_message_type: Some("ADT^A01".into()),
        occurred: when(),
    };
    let merge = MergeEvent {
        surviving: patient(),
        merged: vec![mrn("100002")],
        source_message_type: Some("ADT^A40".into()),
        occurred: None,
    };
    vec![
        CanonicalEvent::PatientRegistered(pe.clone()),
        CanonicalEvent::PatientUpdated(pe),
        CanonicalEvent::PatientMerged(merge),
        CanonicalEvent::EncounterPlanned(encounter_event()),
        CanonicalEvent::EncounterStarted(encounter_event()),
        CanonicalEvent::EncounterUpdated(encounter_event()),
        CanonicalEvent::EncounterFinished(encounter_event()),
        CanonicalEvent::EncounterCancelled(encounter_event()),
        CanonicalEvent::EncounterReopened(encounter_event()),
        CanonicalEvent::OrderPlaced(order_event(ServiceRequestStatus::Active)),
        CanonicalEvent::OrderUpdated(order_event(ServiceRequestStatus::OnHold)),
        CanonicalEvent::OrderCancelled(order_event(ServiceRequestStatus::Revoked)),
        CanonicalEvent::OrderCompleted(order_event(ServiceRequestStatus::Completed)),
        CanonicalEvent::AppointmentBooked(appointment_event(AppointmentStatus::Booked)),
        CanonicalEvent::AppointmentRescheduled(appointment_event(AppointmentStatus::Booked)),
        CanonicalEvent::AppointmentCancelled(appointment_event(AppointmentStatus::Cancelled)),
        CanonicalEvent::AppointmentNoshow(appointment_event(AppointmentStatus::Noshow)),
        CanonicalEvent::ResultReported(result_event()),
        CanonicalEvent::ResultCorrected(result_event()),
        CanonicalEvent::ResultCritical(Box::new(critical_event())),
        CanonicalEvent::ChargePosted(charge_event(ChargeItemStatus::Billable)),
        CanonicalEvent::ChargeReversed(charge_event(ChargeItemStatus::Aborted)),
        CanonicalEvent::ImagingInstanceStored(imaging_event(true)),
        CanonicalEvent::ImagingStudyCompleted(imaging_event(false)),
    ]
}

/// An instance-stored body (one series and instance, the file), or a
/// study-completed one (the study available, the counts, no file).
fn imaging_event(instance: bool) -> ImagingEvent {
    use crate::canonical::event_bodies::StoredInstance;
    use crate::canonical::imaging_study::{ImagingStudy, ImagingStudyInstance, ImagingStudySeries, ImagingStudyStatus};
    use crate::canonical::resource::ResourceType;
    let modality = Coding::new(systems::DICOM_DCM, "CT", None);
    ImagingEvent {
        imaging_study: ImagingStudy {
            resource_type: ResourceType::default(),
            id: None,
            identifier: vec![ImagingStudy::study_uid_identifier("1.2.3")],
            status: if instance {
                ImagingStudyStatus::Registered
            } else {
                ImagingStudyStatus::Available
            },
            modality: vec![modality.clone()],
            subject: patient().reference(),
            started: None,
            based_on: Vec::new(),
            number_of_series: (!instance).then_some(1),
            number_of_instances: (!instance).then_some(1),
            description: None,
            series: vec![ImagingStudySeries {
                uid: "1.2.3.4".into(),
                number: None,
                modality,
                body_site: None,
                number_of_instances: (!instance).then_some(1),
                instance: vec![ImagingStudyInstance {
                    uid: "1.2.3.4.5".into(),
                    sop_class: Coding::new(systems::URI, "urn:oid:1.2.840.10008.5.1.4.1.1.2", None),
                    number: None,
                }],
            }],
        },
        patient: patient(),
        instance: instance.then(|| StoredInstance {
            channel: "modalities".into(),
            file: "1.2.3/1.2.3.4/1.2.3.4.5.dcm".into(),
            file_bytes: 1024,
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            calling_ae: Some("CT1".into()),
            number_of_frames: None,
        }),
        source_message_type: instance.then(|| "C-STORE".to_string()),
        occurred: when(),
    }
}

#[test]
fn catalogue_kinds_and_subjects() {
    for kind in EventKind::ALL {
        let (domain, event) = kind.tokens();
        assert_eq!(kind.as_str(), format!("{domain}.{event}"));
        assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        // The subject is valid by the subjects module's own rules.
        let subject = kind.subject();
        assert_eq!(Subject::parse(&subject.to_string()).unwrap(), subject);
        assert_eq!(subject.kind().as_deref(), Some(kind.as_str()));
    }
    assert_eq!(
        EventKind::EncounterFinished.subject().to_string(),
        "medbus.events.encounter.finished"
    );
    assert_eq!(
        EventKind::ChargeReversed.subject().to_string(),
        "medbus.events.billing.charge-reversed"
    );
    assert_eq!(
        EventKind::ResultCritical.subject().to_string(),
        "medbus.events.result.critical"
    );
    assert_eq!(EventKind::parse("patient.discharged"), None);
    let kinds: Vec<_> = every_event().iter().map(CanonicalEvent::kind).collect();
    assert_eq!(kinds, EventKind::ALL);
}

#[test]
fn patient_event_json() {
    let (subject, body) = every_event().remove(0).to_message().unwrap();
    assert_eq!(subject.to_string(), "medbus.events.patient.registered");
    assert_eq!(
        body,
        json!({
            "patient": {
                "resourceType": "Patient",
                "identifier": [{
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                    "system": "urn:oid:1.2.3.4",
                    "value": "100001"
                }]
            },
            "sourceMessageType": "ADT^A01",
            "occurred": "2024-03-15T08:30:00-05:00"
        })
    );
}

#[test]
fn merge_event_json() {
    let mut merge = MergeEvent {
        surviving: patient(),
        merged: vec![Identifier {
            system: Some("urn:oid:1.2.3.4".into()),
            value: Some("100002".into()),
            ..Identifier::default()
        }],
        source_message_type: Some("ADT^A40".into()),
        occurred: None,
    };
    merge.surviving.identifier = vec![Identifier {
        system: Some("urn:oid:1.2.3.4".into()),
        value: Some("100001".into()),
        ..Identifier::default()
    }];
    merge.surviving.link.push(PatientLink {
        other: Reference {
            type_: Some("Patient".into()),
            identifier: merge.merged.first().cloned(),
            ..Reference::default()
        },
        type_: LinkType::Replaces,
    });
    let event = CanonicalEvent::PatientMerged(merge);
    assert_eq!(event.subject().to_string(), "medbus.events.patient.merged");
    assert_eq!(
        event.to_json().unwrap(),
        json!({
            "surviving": {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:oid:1.2.3.4", "value": "100001"}],
                "link": [{
                    "other": {"type": "Patient", "identifier": {"system": "urn:oid:1.2.3.4", "value": "100002"}},
                    "type": "replaces"
                }]
            },
            "merged": [{"system": "urn:oid:1.2.3.4", "value": "100002"}],
            "sourceMessageType": "ADT^A40"
        })
    );
    assert_eq!(event.patient_key().as_deref(), Some("urn:oid:1.2.3.4|100001"));
}

#[test]
fn encounter_event_json() {
    let event = CanonicalEvent::EncounterFinished(encounter_event());
    let mr_type = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]});
    assert_eq!(
        event.to_json().unwrap(),
        json!({
            "encounter": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
                "subject": {
                    "type": "Patient",
                    "identifier": {"type": mr_type, "system": "urn:oid:1.2.3.4", "value": "100001"}
                }
            },
            "patient": {
                "resourceType": "Patient",
                "identifier": [{"type": mr_type, "system": "urn:oid:1.2.3.4", "value": "100001"}]
            },
            "sourceMessageType": "ADT^A03",
            "occurred": "2024-03-15T08:30:00-05:00"
        })
    );
}

#[test]
fn order_event_json() {
    let event = CanonicalEvent::OrderPlaced(order_event(ServiceRequestStatus::Active));
    let body = event.to_json().unwrap();
    assert_eq!(event.subject().to_string(), "medbus.events.order.placed");
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["occurred", "patient", "serviceRequest", "sourceMessageType"]);
    assert_eq!(body["serviceRequest"]["resourceType"], json!("ServiceRequest"));
    assert_eq!(body["serviceRequest"]["status"], json!("active"));
    assert_eq!(body["serviceRequest"]["intent"], json!("order"));
    assert_eq!(
        body["serviceRequest"]["subject"]["identifier"]["value"],
        json!("100001")
    );
    assert_eq!(body["serviceRequest"]["identifier"][1]["value"], json!("FL1"));
}

#[test]
fn result_and_critical_event_json() {
    let body = CanonicalEvent::ResultReported(result_event()).to_json().unwrap();
    assert_eq!(body["report"]["resourceType"], json!("DiagnosticReport"));
    assert_eq!(body["observations"][0]["valueQuantity"]["value"], json!(6.8));
    assert_eq!(
        body["report"]["result"][0],
        json!({"type": "Observation", "identifier": {"system": "urn:medbus:authority:LAB", "value": "FL1/2823-3"}})
    );
    let critical = CanonicalEvent::ResultCritical(Box::new(critical_event()))
        .to_json()
        .unwrap();
    assert_eq!(critical["reason"], json!({"threshold": {"low": 2.5, "high": 6.5}}));
    assert_eq!(critical["observation"]["code"]["coding"][0]["code"], json!("2823-3"));
    let mut flagged = critical_event();
    flagged.reason = CriticalReason::Flag("HH".into());
    let v = serde_json::to_value(&flagged).unwrap();
    assert_eq!(v["reason"], json!({"flag": "HH"}));
    assert_eq!(serde_json::from_value::<CriticalResultEvent>(v).unwrap(), flagged);
}

#[test]
fn appointment_and_charge_event_json() {
    let body = CanonicalEvent::AppointmentCancelled(appointment_event(AppointmentStatus::Cancelled))
        .to_json()
        .unwrap();
    assert_eq!(body["appointment"]["status"], json!("cancelled"));
    assert_eq!(body["appointment"]["participant"][0]["status"], json!("accepted"));
    let body = CanonicalEvent::ChargeReversed(charge_event(ChargeItemStatus::Aborted))
        .to_json()
        .unwrap();
    assert_eq!(body["chargeItem"]["status"], json!("aborted"));
    assert_eq!(
        body["chargeItem"]["priceOverride"],
        json!({"value": 12.5, "currency": "USD"})
    );
}

#[test]
fn every_event_round_trips_through_json() {
    for event in every_event() {
        let (subject, body) = event.to_message().unwrap();
        let kind = subject.kind().and_then(|k| EventKind::parse(&k)).unwrap();
        let text = serde_json::to_string(&body).unwrap();
        let back = CanonicalEvent::from_json(kind, serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, event, "{}", kind.as_str());
        assert_eq!(back.patient_key().as_deref(), Some("urn:oid:1.2.3.4|100001"));
    }
}

#[test]
fn a_body_of_the_wrong_shape_is_refused() {
    let patient_body = every_event().remove(0).to_json().unwrap();
    assert!(CanonicalEvent::from_json(EventKind::EncounterStarted, patient_body.clone()).is_err());
    assert!(CanonicalEvent::from_json(EventKind::PatientMerged, patient_body.clone()).is_err());
    for kind in [
        EventKind::OrderPlaced,
        EventKind::AppointmentBooked,
        EventKind::ResultReported,
        EventKind::ResultCritical,
        EventKind::ChargePosted,
    ] {
        assert!(
            CanonicalEvent::from_json(kind, patient_body.clone()).is_err(),
            "{}",
            kind.as_str()
        );
    }
    let order_body = CanonicalEvent::OrderPlaced(order_event(ServiceRequestStatus::Active))
        .to_json()
        .unwrap();
    assert!(CanonicalEvent::from_json(EventKind::ChargePosted, order_body).is_err());
}

#[test]
fn occurred_and_source() {
    let event = CanonicalEvent::EncounterFinished(encounter_event());
    assert_eq!(event.source_message_type(), Some("ADT^A03"));
    let utc = event.occurred().and_then(DateTime::to_utc).unwrap();
    assert_eq!(utc.to_rfc3339(), "2024-03-15T13:30:00+00:00");
}

#[test]
fn the_documented_examples_read_as_their_kind() {
    let doc = include_str!("../../../docs/subjects.md");
    let (mut kind, mut in_code, mut checked) = (None, false, 0);
    for line in doc.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if let Some(k) = line.strip_prefix("Medbus-Kind: ") {
            kind = EventKind::parse(k);
        } else if !in_code && line.starts_with('`') {
            kind = line.split('`').nth(1).and_then(EventKind::parse).or(kind);
        } else if in_code && line.starts_with('{') {
            let kind = kind.unwrap();
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let event = CanonicalEvent::from_json(kind, value.clone()).unwrap();
            assert_eq!(
                event.to_json().unwrap(),
                value,
                "{} example is not in canonical form",
                kind.as_str()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 7);
}
