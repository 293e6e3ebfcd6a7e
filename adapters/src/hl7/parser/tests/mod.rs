//! Parser tests. Sample messages live in `samples`; each file tests one module.

mod batch;
mod escape;
mod parse;
mod path;
mod samples;
mod write;

use super::{Message, MessageWriter};

/// Rebuilds a message from its *decoded* values through the writer, the
/// strongest round trip: every value must survive decode → encode → parse → decode.
pub(super) fn rebuild(msg: &Message<'_>) -> Vec<u8> {
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
    w.finish().expect("rebuild writes fields in order")
}

/// A field's decoded leaves: repetitions → components → sub-components.
type Leaves = Vec<Vec<Vec<Vec<u8>>>>;

/// Every leaf value, decoded, in document order (for comparing two parses).
pub(super) fn leaves(msg: &Message<'_>) -> Vec<(String, usize, Leaves)> {
    msg.segments()
        .flat_map(|seg| {
            seg.fields()
                .filter(move |(n, _)| !(seg.is_header() && *n <= 2))
                .map(move |(n, f)| {
                    let reps = f
                        .repetitions()
                        .map(|r| {
                            r.components()
                                .map(|c| c.subcomponents().map(|s| s.decoded().into_owned()).collect())
                                .collect()
                        })
                        .collect();
                    (seg.name().to_string(), n, reps)
                })
        })
        .collect()
}
