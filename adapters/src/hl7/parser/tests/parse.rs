//! Parsing whole messages: header helpers, fields, delimiters, terminators, errors.

use super::samples::{with_terminator, ADT_A01, NONSTANDARD, ORU_R01};
use super::{leaves, rebuild};
use crate::hl7::parser::{AckType, Delimiters, Message, ParseError};

fn text(msg: &Message<'_>, path: &str) -> Option<String> {
    msg.get(path).expect("valid path").map(|v| v.text().into_owned())
}

#[test]
fn adt_a01_header_helpers() {
    let msg = Message::parse(ADT_A01).unwrap();
    let ty = msg.message_type().unwrap();
    assert_eq!(
        (ty.code.as_ref(), ty.trigger.as_deref(), ty.structure.as_deref()),
        ("ADT", Some("A01"), Some("ADT_A01"))
    );
    assert_eq!(msg.control_id().unwrap().raw(), b"MSG00001");
    assert_eq!(msg.version().as_deref(), Some("2.5.1"));
    assert_eq!(msg.processing_id().as_deref(), Some("P"));
    assert_eq!(msg.sending_application().unwrap().text(), "EPIC");
    assert_eq!(msg.sending_facility().unwrap().text(), "UCH");
    assert_eq!(msg.receiving_application().unwrap().text(), "MEDBUS");
    assert_eq!(msg.timestamp().unwrap().text(), "20240315083000");
    assert_eq!(msg.accept_ack_type(), Some(AckType::Always));
    assert_eq!(msg.application_ack_type(), Some(AckType::Never));
    assert!(msg.is_enhanced_mode());
    assert_eq!(msg.charset().as_deref(), Some("UNICODE UTF-8"));
    assert_eq!(msg.delimiters(), Delimiters::STANDARD);
    msg.check_header().unwrap();
}

#[test]
fn adt_a01_fields_repetitions_components() {
    let msg = Message::parse(ADT_A01).unwrap();
    assert_eq!(msg.segment_count(), 8);
    let names: Vec<_> = msg.segments().map(|s| s.name()).collect();
    assert_eq!(names, ["MSH", "EVN", "PID", "NK1", "PV1", "AL1", "DG1", "ZPI"]);
    let pid = msg.segment("PID", 1).unwrap();
    assert_eq!(pid.sequence(), 3);
    let ids = pid.field(3).unwrap();
    assert_eq!(ids.repetition_count(), 2);
    assert_eq!(ids.repetition(2).unwrap().component(1).unwrap().text(), "999-88-7777");
    assert_eq!(ids.component(4).unwrap().subcomponent(2).unwrap().text(), "1.2.3.4");
    assert_eq!(ids.component(4).unwrap().subcomponent_count(), 3);
    assert_eq!(text(&msg, "PID-5.2"), Some("MARY".into()));
    assert_eq!(text(&msg, "PID-13[2].4"), Some("mary@example.com".into()));
    assert_eq!(text(&msg, "PV1-44"), Some("20240315083000".into()));
    assert_eq!(pid.field_count(), 18);
    // A Z-segment is read like any other, escapes decoded.
    assert_eq!(
        text(&msg, "ZPI-3"),
        Some("pipe | caret ^ amp & tilde ~ backslash \\ end".into())
    );
    assert_eq!(text(&msg, "ZPI-2.2"), Some("Very important".into()));
}

#[test]
fn oru_r01_every_obx() {
    let msg = Message::parse(ORU_R01).unwrap();
    let values: Vec<String> = msg
        .segments_named("OBX")
        .filter_map(|s| s.field(5))
        .map(|f| f.text().into_owned())
        .collect();
    assert_eq!(values, ["195", "210", "45", "Fasting sample.\nRepeat in 3 months."]);
    assert_eq!(text(&msg, "OBX(3)-3.2"), Some("HDL".into()));
    assert_eq!(text(&msg, "OBX(2)-8"), Some("H".into()));
    assert_eq!(msg.get("OBX(5)-5").unwrap(), None);
    assert!(!msg.is_enhanced_mode());
    assert_eq!(msg.accept_ack_type(), None);
}

#[test]
fn msh_field_numbering() {
    let msg = Message::parse(ORU_R01).unwrap();
    let msh = msg.msh();
    assert_eq!(msh.field(1).unwrap().raw(), b"|");
    assert_eq!(msh.field(2).unwrap().raw(), b"^~\\&");
    // MSH-2 holds the delimiters: never split, never decoded.
    assert_eq!(msh.field(2).unwrap().first().component_count(), 1);
    assert_eq!(msh.field(2).unwrap().decoded().as_ref(), b"^~\\&");
    assert_eq!(msh.field(3).unwrap().raw(), b"LAB");
    assert_eq!(msh.field(12).unwrap().raw(), b"2.4");
    assert_eq!(msh.field(13), None);
    assert_eq!(msh.field(0), None);
    assert_eq!(msh.field_count(), 12);
    for (n, field) in msh.fields() {
        assert_eq!(msh.field(n), Some(field), "MSH-{n}");
    }
    assert_eq!(msh.fields().count(), 12);
    let pid = msg.segment("PID", 1).unwrap();
    assert_eq!(pid.fields().map(|(n, _)| n).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(pid.field(1).unwrap().raw(), b"1");
}

#[test]
fn nonstandard_delimiters() {
    let msg = Message::parse(NONSTANDARD).unwrap();
    let d = msg.delimiters();
    assert_eq!(
        [d.field(), d.component(), d.repetition(), d.escape(), d.subcomponent()],
        *b"#$*@!"
    );
    assert_eq!(msg.message_type().unwrap().trigger.as_deref(), Some("O01"));
    assert_eq!(msg.control_id().unwrap().raw(), b"X1");
    assert_eq!(msg.version().as_deref(), Some("2.3"));
    assert_eq!(text(&msg, "PID-3[2].1"), Some("B2".into()));
    assert_eq!(text(&msg, "PID-3[2].4"), Some("H2".into()));
    assert_eq!(text(&msg, "PID-5.2.2"), Some("X".into()));
    assert_eq!(text(&msg, "PID-5.3"), Some("Q".into()));
    assert_eq!(text(&msg, "OBX-5"), Some("a#b$c*d!e@f".into()));
    assert_eq!(text(&msg, "OBX-6"), Some("x|y^z~w\\v&u".into()));
    assert_eq!(leaves(&Message::parse(&rebuild(&msg)).unwrap()), leaves(&msg));
}

#[test]
fn truncation_character_in_2_7() {
    let raw = b"MSH|^~\\&#|A|B|C|D|20240101||ADT^A08|T1|P|2.7\rOBX|1|ST|X||abc\\P\\|d#e\r";
    let msg = Message::parse(raw).unwrap();
    assert_eq!(msg.delimiters().truncation(), Some(b'#'));
    assert_eq!(msg.msh().field(2).unwrap().raw(), b"^~\\&#");
    assert_eq!(text(&msg, "OBX-5"), Some("abc#".into()));
    assert_eq!(text(&msg, "OBX-6"), Some("d#e".into()));
}

#[test]
fn versions_2_3_to_2_8() {
    for v in ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8"] {
        let raw = format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A04|V{v}|P|{v}\rPID|1||42^^^H^MR\r");
        let msg = Message::parse(raw.as_bytes()).unwrap();
        assert_eq!(msg.version().as_deref(), Some(v));
        assert_eq!(text(&msg, "PID-3.1"), Some("42".into()));
    }
}

#[test]
fn terminators_cr_lf_crlf_mixed() {
    let reference = Message::parse(ADT_A01).unwrap();
    let expected: Vec<&[u8]> = reference.segments().map(|s| s.raw()).collect();
    let mut mixed = with_terminator(ADT_A01, b"\r");
    mixed.extend_from_slice(b"\r\n\n");
    let variants = [
        with_terminator(ADT_A01, b"\n"),
        with_terminator(ADT_A01, b"\r\n"),
        mixed,
        {
            let mut v = with_terminator(ADT_A01, b"\r\n");
            v.truncate(v.len() - 2); // no terminator after the last segment
            v
        },
    ];
    for raw in &variants {
        let msg = Message::parse(raw).unwrap();
        let got: Vec<&[u8]> = msg.segments().map(|s| s.raw()).collect();
        assert_eq!(got, expected);
        assert_eq!(leaves(&msg), leaves(&reference));
        let mut out = Vec::new();
        msg.write_to(&mut out);
        assert_eq!(&out, raw, "round trip keeps the sender's terminators");
        assert_eq!(msg.to_normalized(), ADT_A01);
    }
    let lf = with_terminator(ADT_A01, b"\n");
    let pid = Message::parse(&lf).unwrap().segment("PID", 1).unwrap();
    let after_evn = lf.iter().enumerate().filter(|(_, &b)| b == b'\n').nth(1).unwrap().0 + 1;
    assert_eq!(pid.offset(), after_evn);
    assert_eq!(&lf[pid.offset()..pid.offset() + 4], b"PID|");
}

#[test]
fn round_trip_identity_and_rebuild() {
    for sample in [ADT_A01, ORU_R01, NONSTANDARD] {
        let msg = Message::parse(sample).unwrap();
        assert_eq!(msg.as_bytes(), sample);
        let rebuilt = rebuild(&msg);
        // The samples use canonical escapes, except `\.br\`, which the writer spells `\X0A\`.
        let canonical = String::from_utf8_lossy(sample).replace("\\.br\\", "\\X0A\\");
        assert_eq!(String::from_utf8_lossy(&rebuilt), canonical);
        assert_eq!(leaves(&Message::parse(&rebuilt).unwrap()), leaves(&msg));
    }
}

#[test]
fn not_utf8_bytes_are_kept() {
    let raw = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|L1|P|2.5||||||8859/1\rPID|1||7||M\xdcLLER^J\xc9R\xd4ME\r";
    let msg = Message::parse(raw).unwrap();
    assert_eq!(msg.charset().as_deref(), Some("8859/1"));
    let name = msg.get("PID-5.1").unwrap().unwrap();
    assert_eq!(name.raw(), b"M\xdcLLER");
    assert_eq!(name.text(), "M\u{fffd}LLER");
}

fn err(raw: &[u8]) -> ParseError {
    Message::parse(raw).unwrap_err()
}

#[test]
fn errors_name_segment_field_and_offset() {
    assert_eq!(err(b""), ParseError::Empty);
    assert_eq!(err(b"\r\n\r"), ParseError::Empty);

    let e = err(b"PID|1||42\rMSH|^~\\&\r");
    assert!(
        matches!(&e, ParseError::MissingMsh { found, .. } if found == "PID|1||4"),
        "{e}"
    );
    assert_eq!(e.location().unwrap().offset, 0);
    assert_eq!(e.hl7_error_code(), 100);
    assert!(matches!(err(b"FHS|^~\\&\rMSH|^~\\&\r"), ParseError::MissingMsh { found, .. } if found.starts_with("FHS")));

    let e = err(b"MSH|");
    assert!(matches!(e, ParseError::HeaderTooShort { .. }), "{e}");
    assert!(matches!(err(b"MSH"), ParseError::HeaderTooShort { .. }));
    assert!(matches!(err(b"MSH\rPID|1"), ParseError::HeaderTooShort { .. }));

    let e = err(b"MSH|^~|&|A\r");
    let ParseError::EncodingCharacters { found, location } = &e else {
        panic!("{e}")
    };
    assert_eq!((found.as_str(), location.field, location.offset), ("^~", Some(2), 4));
    assert_eq!(e.hl7_error_code(), 102);
    assert!(matches!(err(b"MSH|^~\\&#!|A\r"), ParseError::EncodingCharacters { .. }));

    let e = err(b"MSH|^~\\^|A\r");
    let ParseError::DuplicateDelimiter { delimiter, location } = &e else {
        panic!("{e}")
    };
    assert_eq!((*delimiter, location.offset), ('^', 7));
    assert!(matches!(err(b"MSH|^|\\&|A\r"), ParseError::EncodingCharacters { .. }));

    let e = err(b"MSHA^~\\&A\r");
    assert!(matches!(e, ParseError::IllegalDelimiter { delimiter: 'A', .. }), "{e}");
    assert!(matches!(
        err(b"MSH|^~1&\r"),
        ParseError::IllegalDelimiter { delimiter: '1', .. }
    ));

    let raw = b"MSH|^~\\&|A\rPID|1\rpid|2\r";
    let e = err(raw);
    let loc = e.location().unwrap();
    assert_eq!((loc.segment.as_str(), loc.sequence, loc.offset), ("pid", 3, 17));
    assert_eq!(e.to_string(), "segment 3 (pid), byte 17: invalid segment id \"pid|2\" (expected 3 upper-case letters or digits, then the field separator)");
    assert!(matches!(err(b"MSH|^~\\&\rPI|1\r"), ParseError::InvalidSegmentId { .. }));
    assert!(matches!(
        err(b"MSH|^~\\&\rPIDX|1\r"),
        ParseError::InvalidSegmentId { .. }
    ));
    assert!(matches!(err(b"MSH|^~\\&\r \r"), ParseError::InvalidSegmentId { .. }));

    let e = err(b"MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\r");
    let ParseError::UnexpectedSegment { found, location } = &e else {
        panic!("{e}")
    };
    assert_eq!((found.as_str(), location.sequence, location.offset), ("MSH", 3, 17));
    assert!(matches!(
        err(b"MSH|^~\\&|A\rBTS|1\r"),
        ParseError::UnexpectedSegment { .. }
    ));
}

#[test]
fn a_segment_without_fields_is_valid() {
    let msg = Message::parse(b"MSH|^~\\&|A\rZZZ\rPID|1\r").unwrap();
    let zzz = msg.segment("ZZZ", 1).unwrap();
    assert_eq!(zzz.field_count(), 0);
    assert_eq!(zzz.field(1), None);
    assert_eq!(zzz.fields().count(), 0);
}

#[test]
fn check_header_reports_the_missing_field() {
    let raw = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01||P|2.5\r";
    let e = Message::parse(raw).unwrap().check_header().unwrap_err();
    let loc = e.location().unwrap();
    assert_eq!((loc.segment.as_str(), loc.sequence, loc.field), ("MSH", 1, Some(10)));
    assert_eq!(&raw[loc.offset..loc.offset + 3], b"|P|");
    assert_eq!(e.hl7_error_code(), 101);
    let e = Message::parse(b"MSH|^~\\&|A\r").unwrap().check_header().unwrap_err();
    assert_eq!(e.location().unwrap().field, Some(9));
    assert_eq!(e.location().unwrap().offset, 10);
}
