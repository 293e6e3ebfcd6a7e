//! The writer: ACK-like messages, escaping, field positions, misuse.

use super::leaves;
use super::samples::NONSTANDARD;
use crate::hl7::parser::{Delimiters, Message, MessageWriter, WriteError};

#[test]
fn builds_an_ack_that_parses_back() {
    let original = Message::parse(NONSTANDARD).unwrap();
    let mut w = MessageWriter::new(original.delimiters());
    w.segment("MSH")
        .field(3, "MEDBUS")
        .field(4, "H1")
        .raw_field(5, original.sending_application().unwrap().raw())
        .field(7, "20240101120001")
        .components(9, &["ACK", "O01", "ACK"])
        .field(10, "ACK-X1")
        .field(11, "P")
        .field(12, "2.3");
    w.segment("MSA")
        .field(1, "AE")
        .raw_field(2, original.control_id().unwrap().raw());
    w.segment("ERR").field_with(1, |f| {
        f.text("PID")
            .component()
            .text("1")
            .component()
            .text("5")
            .component()
            .component()
            .text("bad # $ value");
    });
    let bytes = w.finish().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        "MSH#$*@!#MEDBUS#H1#ORDERS##20240101120001##ACK$O01$ACK#ACK-X1#P#2.3\rMSA#AE#X1\rERR#PID$1$5$$bad @F@ @S@ value\r"
    );
    let ack = Message::parse(&bytes).unwrap();
    assert_eq!(ack.message_type().unwrap().code, "ACK");
    assert_eq!(ack.get("MSA-2").unwrap().unwrap().raw(), b"X1");
    assert_eq!(ack.get("ERR-1.5").unwrap().unwrap().text(), "bad # $ value");
    ack.check_header().unwrap();
}

#[test]
fn escapes_every_special_character() {
    let nasty = b"a|b^c~d\\e&f\rg\nh\xff";
    let mut w = MessageWriter::new(Delimiters::STANDARD);
    w.segment("MSH").field(10, nasty);
    w.segment("ZX1").field(1, nasty).field(4, "");
    let bytes = w.finish().unwrap();
    assert_eq!(
        bytes.iter().filter(|&&b| b == b'\r').count(),
        2,
        "only the two segment terminators"
    );
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.control_id().unwrap().decoded().as_ref(), nasty);
    let zx1 = msg.segment("ZX1", 1).unwrap();
    assert_eq!(zx1.field(1).unwrap().decoded().as_ref(), nasty);
    assert_eq!(zx1.field_count(), 4);
}

#[test]
fn repetitions_and_subcomponents() {
    let mut w = MessageWriter::new(Delimiters::STANDARD);
    w.segment("MSH");
    w.segment("PID").field_with(3, |f| {
        f.text("1")
            .component()
            .component()
            .component()
            .text("H1")
            .subcomponent()
            .text("1.2&3");
        f.repetition().text("2");
    });
    let bytes = w.finish().unwrap();
    assert_eq!(bytes, b"MSH|^~\\&\rPID|||1^^^H1&1.2\\T\\3~2\r");
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.get("PID-3.4.2").unwrap().unwrap().text(), "1.2&3");
    assert_eq!(msg.get("PID-3[2]").unwrap().unwrap().text(), "2");
}

#[test]
fn raw_segments_copy_a_parsed_message() {
    let original = Message::parse(NONSTANDARD).unwrap();
    let mut w = MessageWriter::new(original.delimiters());
    for seg in original.segments() {
        w.raw_segment(seg.raw());
    }
    let bytes = w.finish().unwrap();
    assert_eq!(bytes, NONSTANDARD);
    assert_eq!(leaves(&Message::parse(&bytes).unwrap()), leaves(&original));
}

#[test]
fn misuse_is_reported_by_finish() {
    let finish = |build: &dyn Fn(&mut MessageWriter)| {
        let mut w = MessageWriter::new(Delimiters::STANDARD);
        build(&mut w);
        w.finish().unwrap_err()
    };
    assert_eq!(
        finish(&|w| {
            w.segment("PID").field(5, "a").field(3, "b");
        }),
        WriteError::FieldOutOfOrder {
            segment: "PID".into(),
            field: 3,
            after: 5
        }
    );
    assert_eq!(
        finish(&|w| {
            w.segment("PID").field(2, "a").field(2, "b");
        }),
        WriteError::FieldOutOfOrder {
            segment: "PID".into(),
            field: 2,
            after: 2
        }
    );
    assert_eq!(
        finish(&|w| {
            w.segment("MSH").field(2, "x");
        }),
        WriteError::InvalidField {
            segment: "MSH".into(),
            field: 2
        }
    );
    assert_eq!(
        finish(&|w| {
            w.segment("PID").field(0, "x");
        }),
        WriteError::InvalidField {
            segment: "PID".into(),
            field: 0
        }
    );
    assert_eq!(
        finish(&|w| {
            w.segment("pid");
        }),
        WriteError::InvalidSegmentId("pid".into())
    );
    assert_eq!(
        finish(&|w| {
            w.field(1, "x");
        }),
        WriteError::NoSegment
    );
}

#[test]
fn delimiters_new_validates() {
    assert!(Delimiters::new(b'|', b"^~\\&").is_ok());
    assert!(Delimiters::new(b'|', b"^~\\").is_err());
    assert!(Delimiters::new(b'|', b"^~\\&#!").is_err());
    assert!(Delimiters::new(b'|', b"^~\\|").is_err());
    assert!(Delimiters::new(b'\r', b"^~\\&").is_err());
    assert!(Delimiters::new(b'|', b"^~\\\n").is_err());
    assert!(Delimiters::new(b'|', b"^~a&").is_err());
    assert_eq!(
        Delimiters::new(b'|', b"^~\\&#").unwrap().encoding_characters(),
        b"^~\\&#"
    );
}
