//! SIU: each trigger's event and status, times from SCH-11, TQ1 or a
//! duration, participants, and the errors.

use medbus_bus::canonical::AppointmentStatus;
use serde_json::json;

use super::samples::*;
use super::{appointment_of, body, events, kinds, location, refused};
use crate::hl7::canonical::MapError;

#[test]
fn each_trigger_gives_its_event_and_status() {
    use AppointmentStatus as S;
    let cases = [
        ("S12", "Booked", "appointment.booked", S::Booked),
        ("S12", "", "appointment.booked", S::Booked),
        ("S12", "WAITLIST", "appointment.booked", S::Waitlist),
        ("S12", "local-code", "appointment.booked", S::Booked),
        ("S13", "Booked", "appointment.rescheduled", S::Booked),
        ("S14", "Booked", "appointment.rescheduled", S::Booked),
        ("S15", "Cancelled", "appointment.cancelled", S::Cancelled),
        // The trigger wins over a filler status that contradicts it.
        ("S15", "Booked", "appointment.cancelled", S::Cancelled),
        ("S26", "Noshow", "appointment.noshow", S::Noshow),
    ];
    for (trigger, status, kind, expected) in cases {
        let evs = events(&siu(trigger, status));
        assert_eq!(kinds(&evs), [kind], "{trigger}/{status}");
        let a = &appointment_of(&evs[0]).appointment;
        assert_eq!(a.status, expected, "{trigger}/{status}");
        assert_eq!(a.cancelation_reason.is_some(), expected == S::Cancelled, "{trigger}");
        assert_eq!(evs[0].source_message_type(), Some(format!("SIU^{trigger}").as_str()));
    }
}

#[test]
fn a_booking_in_full() {
    let v = body(&events(&siu("S12", "Booked"))[0]);
    let mut a = v["appointment"].clone();
    assert_eq!(a["participant"][0]["actor"]["identifier"]["value"], json!("100001"));
    a["participant"][0] = json!("the patient");
    assert_eq!(
        a,
        json!({
            "resourceType": "Appointment",
            "identifier": [
                {
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
                    "system": "urn:medbus:authority:CPOE", "value": "AP100", "assigner": {"display": "CPOE"}
                },
                {
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "FILL"}]},
                    "system": "urn:medbus:authority:SCHED", "value": "SC100", "assigner": {"display": "SCHED"}
                }
            ],
            "status": "booked",
            "serviceType": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "93000", "display": "ECG"}]}],
            "appointmentType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0277", "code": "Normal"}]},
            "reasonCode": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "FOLLOWUP", "display": "Follow-up"}]}],
            "start": "2024-03-20T14:00:00-05:00",
            "end": "2024-03-20T14:30:00-05:00",
            "minutesDuration": 30,
            "participant": [
                "the patient",
                {
                    "type": [{"coding": [{"code": "D", "display": "Doctor"}]}],
                    "actor": {"type": "Practitioner", "identifier": {"system": "urn:medbus:authority:NPI", "value": "1234", "assigner": {"display": "NPI"}}, "display": "DR MARCUS WELBY"},
                    "status": "accepted"
                },
                {"actor": {"type": "Location", "display": "CARDIO / UCH"}, "status": "accepted"}
            ]
        })
    );
    assert_eq!(v["occurred"], json!("2024-03-15T08:30:00-05:00"));
}

#[test]
fn times_from_tq1_and_a_duration() {
    let evs = events(&siu_tq1());
    let a = &appointment_of(&evs[0]).appointment;
    assert_eq!(a.start.as_ref().map(|t| t.as_str()), Some("2024-03-22T10:15:00-05:00"));
    assert_eq!(a.end.as_ref().map(|t| t.as_str()), Some("2024-03-22T10:30:00-05:00"));
    assert_eq!(a.key().as_deref(), Some("urn:medbus:authority:SCHED|SC200"));
    assert_eq!(a.reason_code[0].coding[0].code.as_deref(), Some("ROUTINE"));
}

#[test]
fn a_booking_needs_times_a_cancellation_does_not() {
    let without_times = |trigger: &str| {
        let raw = String::from_utf8(siu(trigger, "")).unwrap();
        let raw = raw
            .replace("^^30^202403201400^202403201430", "")
            .replace("|202403201400|", "||")
            .replace("|30|min", "||");
        raw.into_bytes()
    };
    let e = refused(&without_times("S12"));
    assert_eq!((location(&e).as_deref(), e.hl7_error_code()), (Some("SCH-11"), 101));
    let evs = events(&without_times("S15"));
    let a = &appointment_of(&evs[0]).appointment;
    assert_eq!((a.start.as_ref(), a.end.as_ref()), (None, None));
    // A start without an end or a duration is not enough for a booking.
    let raw = String::from_utf8(siu("S12", ""))
        .unwrap()
        .replace("^202403201430", "")
        .replace("|30|min", "||");
    let e = refused(raw.as_bytes());
    assert!(e.to_string().contains("end time"), "{e}");
}

#[test]
fn bad_appointments() {
    let e = refused(&siu("S17", "Deleted"));
    assert_eq!(
        e,
        MapError::UnsupportedEvent {
            message_type: "SIU^S17".into()
        }
    );
    assert_eq!(e.hl7_error_code(), 201);
    let e = refused(&msg(&[&msh("SIU^S12"), PID]));
    assert!(matches!(e, MapError::NoSegment { segment: "SCH", .. }), "{e}");
    let e = refused(&msg(&[
        &msh("SIU^S12"),
        "SCH|||||||||||^^30^202403201400^202403201430",
        PID,
    ]));
    assert_eq!(location(&e).as_deref(), Some("SCH-2"));
    let e = refused(&msg(&[&msh("SIU^S12"), "SCH|A1||||||||half an hour|min", PID]));
    assert_eq!((location(&e).as_deref(), e.hl7_error_code()), (Some("SCH-9"), 102));
}
