//! Fuzzes the HL7 v2 parser: parse, every accessor, paths, batch splitting,
//! and three round trips (raw bytes, normalized terminators, decoded values
//! rebuilt through the writer). A panic or a failed assertion is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use medbus_adapters::hl7::parser::{decode, encode, message_ranges, Batch, FieldPath, Message, MessageWriter, Segment};

fuzz_target!(|data: &[u8]| {
    fuzz_path(data);
    match Message::parse(data) {
        Ok(msg) => exercise(&msg, data),
        Err(e) => {
            let _ = (e.to_string(), e.location(), e.hl7_error_code());
            if let Some(loc) = e.location() {
                assert!(loc.offset <= data.len(), "error offset {} past the input", loc.offset);
            }
        }
    }
    let ranges: Vec<_> = message_ranges(data).collect();
    if let Ok(batch) = Batch::split(data) {
        let ok: Vec<_> = ranges.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        assert_eq!(ok.as_slice(), batch.message_ranges());
        let _ = batch.declared_message_count();
        for seg in batch
            .file_header()
            .into_iter()
            .chain(batch.batch_headers().iter().copied())
        {
            exercise_segment(&seg);
        }
        for m in batch.messages() {
            if let Ok(msg) = Message::parse(m) {
                exercise(&msg, m);
            }
        }
    }
});

/// A short UTF-8 input is also tried as a field path: Display must re-parse to the same path.
fn fuzz_path(data: &[u8]) {
    if data.len() <= 40 {
        if let Ok(s) = std::str::from_utf8(data) {
            if let Ok(p) = FieldPath::parse(s) {
                assert_eq!(FieldPath::parse(&p.to_string()), Ok(p));
            }
        }
    }
}

fn exercise(msg: &Message<'_>, data: &[u8]) {
    let _ = (msg.message_type(), msg.control_id(), msg.version(), msg.processing_id());
    let _ = (
        msg.sending_application(),
        msg.sending_facility(),
        msg.receiving_application(),
    );
    let _ = (
        msg.receiving_facility(),
        msg.timestamp(),
        msg.charset(),
        msg.is_enhanced_mode(),
    );
    let _ = (
        msg.accept_ack_type(),
        msg.application_ack_type(),
        msg.check_header().map_err(|e| e.to_string()),
    );

    // Round trip 1: the raw bytes.
    let mut out = Vec::new();
    msg.write_to(&mut out);
    assert_eq!(out, data);

    let d = msg.delimiters();
    for (i, seg) in msg.segments().enumerate() {
        assert_eq!(seg.sequence(), i + 1);
        assert_eq!(data.get(seg.offset()..seg.offset() + seg.raw().len()), Some(seg.raw()));
        assert_eq!(msg.offset_of(seg.raw()), Some(seg.offset()));
        exercise_segment(&seg);
        check_paths(msg, &seg);
        if i > 16 {
            break;
        }
    }

    // Round trip 2: CR terminators.
    let normalized = msg.to_normalized();
    let again = Message::parse(&normalized).expect("normalized message parses");
    assert!(msg.segments().map(|s| s.raw()).eq(again.segments().map(|s| s.raw())));

    // Round trip 3: decoded values, re-encoded by the writer, decode to the same values.
    let rebuilt = rebuild(msg);
    let again = Message::parse(&rebuilt).expect("rebuilt message parses");
    assert_eq!(leaves(&again), leaves(msg));
    assert_eq!(again.delimiters(), d);
}

fn exercise_segment(seg: &Segment<'_>) {
    let d = seg.delimiters();
    let _ = (seg.name(), seg.is_header(), seg.field(0));
    let count = seg.field_count();
    assert_eq!(seg.fields().count(), count);
    assert_eq!(seg.field(count + 1), None);
    for (n, field) in seg.fields() {
        assert_eq!(seg.field(n), Some(field));
        assert_eq!(field.repetitions().count(), field.repetition_count());
        let _ = (field.text(), field.is_null(), field.first(), field.component(1));
        for (r, rep) in field.repetitions().enumerate() {
            assert_eq!(field.repetition(r + 1), Some(rep));
            assert_eq!(rep.components().count(), rep.component_count());
            for (c, comp) in rep.components().enumerate() {
                assert_eq!(rep.component(c + 1), Some(comp));
                assert_eq!(comp.subcomponents().count(), comp.subcomponent_count());
                for sub in comp.subcomponents() {
                    let value = sub.decoded();
                    let _ = sub.text();
                    assert_eq!(decode(&encode(&value, &d), &d), value);
                }
            }
        }
        if n > 40 {
            break;
        }
    }
}

/// Paths must find exactly what navigating the views finds.
fn check_paths(msg: &Message<'_>, seg: &Segment<'_>) {
    let occurrence = msg
        .segments_named(seg.name())
        .position(|s| s.sequence() == seg.sequence())
        .map_or(1, |p| p + 1);
    for n in 1..=seg.field_count().min(6) + 1 {
        let field = seg.field(n);
        let base = format!("{}({occurrence})-{n}", seg.name());
        let get = |p: String| msg.get(&p).expect("generated path is valid").map(|v| v.raw());
        assert_eq!(get(base.clone()), field.map(|f| f.raw()));
        assert_eq!(
            get(format!("{base}[2]")),
            field.and_then(|f| f.repetition(2)).map(|r| r.raw())
        );
        assert_eq!(
            get(format!("{base}.2")),
            field.and_then(|f| f.component(2)).map(|c| c.raw())
        );
        assert_eq!(
            get(format!("{base}[1].1.2")),
            field
                .and_then(|f| f.repetition(1)?.component(1)?.subcomponent(2))
                .map(|s| s.raw())
        );
    }
}

fn rebuild(msg: &Message<'_>) -> Vec<u8> {
    let mut w = MessageWriter::new(msg.delimiters());
    for seg in msg.segments() {
        w.segment(seg.name());
        for (n, field) in seg.fields() {
            if seg.is_header() && n <= 2 {
                continue;
            }
            w.field_with(n, |f| {
                for (r, rep) in field.repetitions().enumerate() {
                    if r > 0 {
                        f.repetition();
                    }
                    for (c, comp) in rep.components().enumerate() {
                        if c > 0 {
                            f.component();
                        }
                        for (s, sub) in comp.subcomponents().enumerate() {
                            if s > 0 {
                                f.subcomponent();
                            }
                            f.text(sub.decoded());
                        }
                    }
                }
            });
        }
    }
    w.finish().expect("writer accepts a parsed message's segments")
}

type Leaves = Vec<(String, usize, Vec<Vec<Vec<Vec<u8>>>>)>;

fn leaves(msg: &Message<'_>) -> Leaves {
    let mut out = Vec::new();
    for seg in msg.segments() {
        for (n, f) in seg.fields() {
            if seg.is_header() && n <= 2 {
                continue;
            }
            let reps = f
                .repetitions()
                .map(|r| {
                    r.components()
                        .map(|c| c.subcomponents().map(|s| s.decoded().into_owned()).collect())
                        .collect()
                })
                .collect();
            out.push((seg.name().to_string(), n, reps));
        }
    }
    out
}
