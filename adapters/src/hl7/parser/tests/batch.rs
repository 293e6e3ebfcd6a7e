//! Batch files: FHS/BHS/BTS/FTS envelopes split into messages.

use super::samples::{with_terminator, ADT_A01, ORU_R01};
use crate::hl7::parser::{message_ranges, Batch, Message, ParseError};

fn file(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn file_with_one_batch() {
    let input = file(&[
        b"FHS|^~\\&|LAB|UCH|||20240315\rBHS|^~\\&|LAB|UCH\r",
        ADT_A01,
        ORU_R01,
        ADT_A01,
        b"BTS|3\rFTS|1\r",
    ]);
    let batch = Batch::split(&input).unwrap();
    assert_eq!(batch.len(), 3);
    let messages: Vec<&[u8]> = batch.messages().collect();
    assert_eq!(messages, [ADT_A01, ORU_R01, ADT_A01]);
    let ids: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| Message::parse(m).unwrap().control_id().unwrap().raw().to_vec())
        .collect();
    assert_eq!(ids, [b"MSG00001".to_vec(), b"LAB0042".to_vec(), b"MSG00001".to_vec()]);
    assert_eq!(batch.declared_message_count(), Some(3));
    let fhs = batch.file_header().unwrap();
    assert_eq!(fhs.field(3).unwrap().raw(), b"LAB");
    assert_eq!(fhs.field(1).unwrap().raw(), b"|");
    assert_eq!(batch.batch_headers().len(), 1);
    assert_eq!(batch.file_trailer().unwrap().field(1).unwrap().raw(), b"1");
    let first = &batch.message_ranges()[0];
    assert_eq!(&input[first.clone()], ADT_A01);
    assert_eq!(
        message_ranges(&input).collect::<Result<Vec<_>, _>>().unwrap(),
        batch.message_ranges()
    );
}

#[test]
fn two_batches_lf_terminated() {
    let crlf = file(&[
        b"FHS|^~\\&\rBHS|^~\\&\r",
        ADT_A01,
        b"BTS|1\rBHS|^~\\&\r",
        ORU_R01,
        ORU_R01,
        b"BTS|2\rFTS|2\r",
    ]);
    let input = with_terminator(&crlf, b"\n");
    let batch = Batch::split(&input).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(batch.declared_message_count(), Some(3));
    assert_eq!(batch.batch_headers().len(), 2);
    assert_eq!(batch.batch_trailers().len(), 2);
    for m in batch.messages() {
        assert!(m.ends_with(b"\n"));
        Message::parse(m).unwrap();
    }
}

#[test]
fn concatenated_messages_without_envelope() {
    let input = file(&[ADT_A01, b"\r\n", ORU_R01]);
    let batch = Batch::split(&input).unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.declared_message_count(), None);
    assert!(batch.file_header().is_none());
    assert_eq!(
        Message::parse(batch.messages().nth(1).unwrap()).unwrap().as_bytes(),
        ORU_R01
    );
    assert!(Batch::split(b"").unwrap().is_empty());
    assert!(Batch::split(b"FHS|^~\\&\rFTS|0\r").unwrap().is_empty());
}

#[test]
fn segments_outside_messages_are_errors() {
    let input = file(&[b"BHS|^~\\&\rPID|1\r", ADT_A01, b"BTS|1\rNTE|1\r"]);
    let e = Batch::split(&input).unwrap_err();
    let ParseError::OutsideMessage { location } = &e else {
        panic!("{e}")
    };
    assert_eq!(
        (location.segment.as_str(), location.sequence, location.offset),
        ("PID", 2, 9)
    );
    // The lazy splitter reports the error and goes on.
    let items: Vec<_> = message_ranges(&input).collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_err() && items[2].is_err());
    assert_eq!(&input[items[1].clone().unwrap()], ADT_A01);
}

#[test]
fn bad_batch_header_delimiters() {
    let input = file(&[b"FHS|^~\\&\rBHS|^^\\&\r", ADT_A01]);
    let e = Batch::split(&input).unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::DuplicateDelimiter { .. } | ParseError::EncodingCharacters { .. }
        ),
        "{e}"
    );
    assert_eq!(e.location().unwrap().sequence, 2);
    assert_eq!(e.location().unwrap().segment, "BHS");
}

#[test]
fn declared_count_that_is_not_a_number() {
    let input = file(&[b"BHS|^~\\&\r", ADT_A01, b"BTS|x\r"]);
    assert_eq!(Batch::split(&input).unwrap().declared_message_count(), None);
}
