//! Bad input: each error names the segment or field, carries the right HL7
//! error code, and never repeats the patient data it complains about.

use super::samples::*;
use super::{events, kinds, map};
use crate::hl7::canonical::MapError;

fn err(segments: &[&str]) -> MapError {
    map(&msg(segments)).unwrap_err()
}

#[test]
fn only_adt_with_a_known_trigger() {
    let e = err(&["MSH|^~\\&|LAB|H|M|H|20240101||ORU^R01|1|P|2.5", "PID|1||1^^^H^MR"]);
    assert_eq!(e, MapError::NotAdt { found: "ORU".into() });
    assert_eq!(e.hl7_error_code(), 200);
    let e = err(&["MSH|^~\\&|A|H|M|H|20240101||ADT|1|P|2.5", "PID|1||1^^^H^MR"]);
    assert_eq!(e, MapError::MissingTrigger);
    let e = err(&[&msh("A17", "ADT_A17"), "PID|1||1^^^H^MR"]);
    assert_eq!(e, MapError::UnsupportedTrigger { trigger: "A17".into() });
    assert_eq!(e.hl7_error_code(), 201);
    assert!(e.to_string().contains("ADT^A17"), "{e}");
    // Named as unsupported even when it has a field that would not map.
    let e = err(&[&msh("A17", "ADT_A17"), "EVN|A17|yesterday", "PID|1||1^^^H^MR"]);
    assert!(matches!(e, MapError::UnsupportedTrigger { .. }), "{e}");
    // A 2.3 sender without MSH-9.2: EVN-1 names the trigger.
    let evs = events(&msg(&[
        "MSH|^~\\&|A|H|M|H|20240101||ADT|1|P|2.3",
        "EVN|A28|20240101",
        "PID|1||1^^^H^MR",
    ]));
    assert_eq!(kinds(&evs), ["patient.registered"]);
}

#[test]
fn missing_segments() {
    let e = err(&[&msh("A01", "ADT_A01"), "EVN|A01|20240101"]);
    assert_eq!(
        e,
        MapError::MissingSegment {
            trigger: "A01".into(),
            segment: "PID"
        }
    );
    assert_eq!(e.to_string(), "ADT^A01 has no PID segment");
    assert_eq!(e.hl7_error_code(), 100);
    let e = err(&[&msh("A03", "ADT_A03"), "PID|1||1^^^H^MR"]);
    assert!(matches!(e, MapError::MissingSegment { segment: "PV1", .. }), "{e}");
    // Person-level triggers need no PV1.
    assert_eq!(
        kinds(&events(&msg(&[&msh("A31", "ADT_A05"), "PID|1||1^^^H^MR"]))),
        ["patient.updated"]
    );
}

#[test]
fn a_patient_needs_an_identifier() {
    for pid3 in ["", "^^^UCH^MR", "\"\"", "~"] {
        let e = err(&[
            &msh("A28", "ADT_A05"),
            "EVN|A28",
            &seg("PID", &[(3, pid3), (5, "DOE^JANE")]),
        ]);
        assert_eq!(
            e.location().map(ToString::to_string).as_deref(),
            Some("PID-3"),
            "{pid3:?}"
        );
        assert_eq!(e.location().map(|l| l.sequence), Some(3));
        assert_eq!(e.hl7_error_code(), 101);
        assert!(e.to_string().starts_with("PID-3 is empty"), "{e}");
    }
}

#[test]
fn a_visit_needs_a_class_and_a_number() {
    let e = err(&[&msh("A01", "ADT_A01"), "PID|1||1^^^H^MR", "PV1|1||4W||||||||||||||||V1"]);
    assert_eq!(e.location().map(ToString::to_string).as_deref(), Some("PV1-2"));
    let e = err(&[&msh("A01", "ADT_A01"), "PID|1||1^^^H^MR", "PV1|1|I|4W"]);
    assert_eq!(e.location().map(ToString::to_string).as_deref(), Some("PV1-19"));
    assert!(e.to_string().contains("visit number"), "{e}");
}

#[test]
fn invalid_dates_name_the_field_not_the_value() {
    let e = err(&[&msh("A28", "ADT_A05"), &seg("PID", &[(3, "1^^^H^MR"), (7, "19801340")])]);
    assert_eq!(e.location().map(ToString::to_string).as_deref(), Some("PID-7"));
    assert_eq!(e.hl7_error_code(), 102);
    assert!(
        e.to_string().contains("month") && !e.to_string().contains("1980"),
        "{e}"
    );
    let e = err(&[&msh("A28", "ADT_A05"), &seg("PID", &[(3, "1^^^H^MR"), (7, "19800230")])]);
    assert!(e.to_string().contains("day"), "{e}");
    let e = err(&[
        &msh("A01", "ADT_A01"),
        "PID|1||1^^^H^MR",
        &seg("PV1", &[(2, "I"), (19, "V1"), (44, "2024-03-15")]),
    ]);
    assert_eq!(e.location().map(ToString::to_string).as_deref(), Some("PV1-44"));
    let e = err(&[&msh("A28", "ADT_A05"), "PID|1||1^^^H^MR~2^^^H^PI^^2024X"]);
    assert_eq!(e.location().map(ToString::to_string).as_deref(), Some("PID-3[2].7"));
    let e = err(&[&msh("A28", "ADT_A05"), "EVN|A28|yesterday", "PID|1||1^^^H^MR"]);
    assert_eq!(e.location().map(ToString::to_string).as_deref(), Some("EVN-2"));
}

#[test]
fn merges_need_pairs_and_prior_identifiers() {
    let e = err(&[&msh("A40", "ADT_A39"), "PID|1||1^^^H^MR", "MRG|"]);
    assert_eq!(e.location().map(ToString::to_string).as_deref(), Some("MRG-1"));
    let e = err(&[&msh("A40", "ADT_A39"), "PID|1||1^^^H^MR"]);
    assert!(matches!(e, MapError::MissingSegment { segment: "MRG", .. }), "{e}");
    let e = err(&[&msh("A40", "ADT_A39"), "MRG|2^^^H^MR", "PID|1||1^^^H^MR"]);
    assert!(matches!(e, MapError::MissingSegment { segment: "PID", .. }), "{e}");
    let e = err(&[
        &msh("A40", "ADT_A39"),
        "PID|1||1^^^H^MR",
        "PID|2||3^^^H^MR",
        "MRG|2^^^H^MR",
    ]);
    assert!(matches!(e, MapError::MissingSegment { segment: "MRG", .. }), "{e}");
}

#[test]
fn errors_become_err_segments() {
    let e = err(&[&msh("A28", "ADT_A05"), "EVN|A28", &seg("PID", &[(5, "DOE")])]);
    assert!(e.is_bad_input());
    let ack = e.to_ack_error();
    assert_eq!(ack.code, 101);
    assert_eq!(ack.location, Some(("PID".to_string(), 3, Some(3))));
    assert_eq!(ack.text, e.to_string());
}
