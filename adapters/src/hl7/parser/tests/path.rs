//! Field paths: grammar, errors, and what absent parts resolve to.

use super::samples::{ADT_A01, ORU_R01};
use crate::hl7::parser::{FieldPath, Message};

#[test]
fn parse_and_display() {
    for (input, shown) in [
        ("PID-3", "PID-3"),
        ("PID-3[2].1", "PID-3[2].1"),
        ("PID-3.1.2", "PID-3.1.2"),
        ("OBX(3)-5.1", "OBX(3)-5.1"),
        ("OBX(1)-5", "OBX-5"),
        ("PID.3.1", "PID-3.1"),
        ("ZP1-12[10].3.4", "ZP1-12[10].3.4"),
        ("PID-003", "PID-3"),
    ] {
        let path: FieldPath = input.parse().unwrap();
        assert_eq!(path.to_string(), shown, "{input}");
        assert_eq!(FieldPath::parse(shown).unwrap(), path);
    }
    let p = FieldPath::parse("OBX(3)-5[2].1.4").unwrap();
    assert_eq!(
        (
            p.segment(),
            p.occurrence(),
            p.field(),
            p.repetition(),
            p.component(),
            p.subcomponent()
        ),
        ("OBX", 3, 5, Some(2), Some(1), Some(4))
    );
}

#[test]
fn invalid_paths_are_errors_with_a_position() {
    for (input, position) in [
        ("", 0),
        ("PI-3", 0),
        ("pid-3", 0),
        ("PID", 3),
        ("PID-", 4),
        ("PID3", 3),
        ("PID-0", 4),
        ("PID-x", 4),
        ("PID-3[0]", 6),
        ("PID-3[", 6),
        ("PID-3[2", 7),
        ("PID-3[2]x", 8),
        ("PID-3.", 6),
        ("PID-3.1.", 8),
        ("PID-3.1.2.3", 9),
        ("PID-3 ", 5),
        (" PID-3", 0),
        ("OBX(0)-5", 4),
        ("OBX()-5", 4),
        ("OBX(2-5", 5),
        ("PID-99999999999999999999", 4),
        ("PÏD-3", 0),
    ] {
        let e = FieldPath::parse(input).unwrap_err();
        assert_eq!(e.position, position, "{input}: {e}");
        assert_eq!(e.path, input);
    }
    let msg = Message::parse(ADT_A01).unwrap();
    assert!(msg.get("PID-3[").is_err());
}

fn get(msg: &Message<'_>, path: &str) -> Option<String> {
    msg.get(path).unwrap().map(|v| v.text().into_owned())
}

#[test]
fn absent_parts_are_none_and_empty_parts_are_empty() {
    let msg = Message::parse(ADT_A01).unwrap();
    assert_eq!(
        get(&msg, "PID-3"),
        Some("100001^^^UCH&1.2.3.4&ISO^MR~999-88-7777^^^SSA^SS".into())
    );
    assert_eq!(get(&msg, "PID-3[1]"), Some("100001^^^UCH&1.2.3.4&ISO^MR".into()));
    assert_eq!(
        get(&msg, "PID-3.1"),
        Some("100001".into()),
        "component without repetition: first repetition"
    );
    assert_eq!(get(&msg, "PID-3[2].5"), Some("SS".into()));
    assert_eq!(get(&msg, "PID-3.4.3"), Some("ISO".into()));
    assert_eq!(
        get(&msg, "PID-3.1.1"),
        Some("100001".into()),
        "a component without sub-components is its own first"
    );
    // Present but empty.
    assert_eq!(get(&msg, "PID-2"), Some(String::new()));
    assert_eq!(get(&msg, "PID-3.2"), Some(String::new()));
    // Absent.
    for path in [
        "ZZZ-1",
        "PID(2)-3",
        "PID-19",
        "PID-99",
        "PID-3[3]",
        "PID-3[3].1",
        "PID-3.6",
        "PID-3.1.2",
        "PID-3.4.4",
        "PID-5[2]",
        "EVN-2.2",
    ] {
        assert_eq!(msg.get(path).unwrap(), None, "{path}");
    }
}

#[test]
fn header_paths() {
    let msg = Message::parse(ORU_R01).unwrap();
    assert_eq!(get(&msg, "MSH-1"), Some("|".into()));
    assert_eq!(get(&msg, "MSH-2"), Some("^~\\&".into()));
    assert_eq!(get(&msg, "MSH-2.1"), Some("^~\\&".into()), "MSH-2 is not split");
    assert_eq!(get(&msg, "MSH-2.2"), None);
    assert_eq!(get(&msg, "MSH-9.1"), Some("ORU".into()));
    assert_eq!(get(&msg, "MSH-9.2"), Some("R01".into()));
    assert_eq!(get(&msg, "MSH-10"), Some("LAB0042".into()));
    assert_eq!(get(&msg, "MSH(2)-1"), None);
    let obx3 = FieldPath::parse("OBX(3)-5").unwrap();
    assert_eq!(msg.query(&obx3).unwrap().raw(), b"45");
    assert_eq!(
        get(&msg, "OBX(4)-5"),
        Some("Fasting sample.\nRepeat in 3 months.".into())
    );
    assert_eq!(
        msg.get("OBX(4)-5").unwrap().unwrap().raw(),
        b"Fasting sample.\\.br\\Repeat in 3 months."
    );
}
