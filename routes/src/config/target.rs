//! A field path as a route uses it: read for filters (any occurrence), and
//! located as a byte range inside a segment for transforms, with the separators
//! needed to create it when the message does not have it yet.

use std::fmt;

use medbus_adapters::hl7::parser::{FieldPath, Message, Segment, Value};

/// How deep a path goes; a value copied deeper than it came from must be escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A whole field, all repetitions.
    Field,
    /// One repetition.
    Repetition,
    /// One component.
    Component,
    /// One sub-component.
    SubComponent,
}

/// A parsed path and whether it names one segment occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    path: FieldPath,
    /// `OBX(2)-5` names one OBX; `OBX-5` every one.
    pinned: bool,
}

impl Target {
    /// Parses a path as written in a route file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let path = FieldPath::parse(text.trim()).map_err(|e| e.to_string())?;
        Ok(Target {
            pinned: text.contains('('),
            path,
        })
    }

    /// The parsed path.
    pub fn path(&self) -> &FieldPath {
        &self.path
    }

    /// The segment id.
    pub fn segment(&self) -> &str {
        self.path.segment()
    }

    /// True when the path names one occurrence of its segment.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// How deep the path goes.
    pub fn level(&self) -> Level {
        match (self.path.repetition(), self.path.component(), self.path.subcomponent()) {
            (_, Some(_), Some(_)) => Level::SubComponent,
            (_, Some(_), None) => Level::Component,
            (Some(_), None, _) => Level::Repetition,
            (None, None, _) => Level::Field,
        }
    }

    /// MSH-1 and MSH-2 (and FHS/BHS) hold the delimiters themselves.
    pub fn is_delimiter_field(&self) -> bool {
        matches!(self.segment(), "MSH" | "FHS" | "BHS") && self.path.field() <= 2
    }

    /// The segments the path names: the pinned one, or every one with the id.
    pub fn segments<'a, 's>(&'s self, msg: &'s Message<'a>) -> impl Iterator<Item = (usize, Segment<'a>)> + 's {
        let pinned = self.pinned.then_some(self.path.occurrence());
        msg.segments_named(self.segment())
            .enumerate()
            .map(|(i, s)| (i + 1, s))
            .filter(move |(n, _)| pinned.is_none_or(|p| p == *n))
    }

    /// True when `test` holds for some value the path names (any occurrence, and
    /// any repetition when a component is asked without one).
    pub fn any_value<'a>(&self, msg: &Message<'a>, mut test: impl FnMut(Value<'a>) -> bool) -> bool {
        let p = &self.path;
        for (_, seg) in self.segments(msg) {
            let Some(field) = seg.field(p.field()) else { continue };
            let Some(c) = p.component() else {
                let value = match p.repetition() {
                    Some(r) => field.repetition(r).map(|r| r.as_value()),
                    None => Some(field.as_value()),
                };
                if value.is_some_and(&mut test) {
                    return true;
                }
                continue;
            };
            let pinned_rep = p.repetition().map(|r| r - 1);
            for (i, rep) in field.repetitions().enumerate() {
                if pinned_rep.is_some_and(|r| r != i) {
                    continue;
                }
                let Some(comp) = rep.component(c) else { continue };
                let value = match p.subcomponent() {
                    Some(s) => comp.subcomponent(s).map(|s| s.as_value()),
                    None => Some(comp.as_value()),
                };
                if value.is_some_and(&mut test) {
                    return true;
                }
            }
        }
        false
    }

    /// Where the path is inside `seg` (first repetition when a component is
    /// asked without one).
    pub fn locate(&self, seg: &Segment<'_>) -> Spot {
        let raw = seg.raw();
        let d = seg.delimiters();
        let p = &self.path;
        // In MSH the separator itself is field 1, so field n is the (n-1)th piece after the id.
        let index = if seg.is_header() {
            p.field().saturating_sub(1)
        } else {
            p.field()
        };
        let whole = Spot {
            start: 0,
            end: raw.len(),
            pad: Vec::new(),
        };
        let mut spot = whole.narrow(raw, d.field(), index);
        match (p.repetition(), p.component()) {
            (Some(r), _) => spot = spot.narrow(raw, d.repetition(), r - 1),
            (None, Some(_)) => spot = spot.narrow(raw, d.repetition(), 0),
            (None, None) => {}
        }
        if let Some(c) = p.component() {
            spot = spot.narrow(raw, d.component(), c - 1);
            if let Some(s) = p.subcomponent() {
                spot = spot.narrow(raw, d.subcomponent(), s - 1);
            }
        }
        spot
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path.fmt(f)
    }
}

/// A place in a segment: replace `start..end` with `pad` and then the value.
/// `pad` holds the separators that create the place when the segment lacks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    /// Start, relative to the segment.
    pub start: usize,
    /// End (exclusive).
    pub end: usize,
    /// Separators to write first; empty when the place exists.
    pub pad: Vec<u8>,
}

impl Spot {
    /// True when the segment has this place (possibly empty).
    pub fn exists(&self) -> bool {
        self.pad.is_empty()
    }

    /// The bytes at this place (empty when it does not exist).
    pub fn raw<'a>(&self, segment: &'a [u8]) -> &'a [u8] {
        segment.get(self.start..self.end).unwrap_or_default()
    }

    /// Part `index` (0-based) of this place split on `sep`.
    fn narrow(self, raw: &[u8], sep: u8, index: usize) -> Spot {
        let inner = raw.get(self.start..self.end).unwrap_or_default();
        let mut part_start = self.start;
        let mut part = 0;
        for at in inner.iter().enumerate().filter(|(_, &b)| b == sep).map(|(i, _)| i) {
            if part == index {
                return Spot {
                    start: part_start,
                    end: self.start + at,
                    pad: self.pad,
                };
            }
            part += 1;
            part_start = self.start + at + 1;
        }
        if part == index {
            return Spot {
                start: part_start,
                end: self.end,
                pad: self.pad,
            };
        }
        let mut pad = self.pad;
        pad.extend(std::iter::repeat_n(sep, index - part));
        Spot {
            start: self.end,
            end: self.end,
            pad,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spot(msg: &[u8], path: &str) -> (String, String) {
        let m = Message::parse(msg).unwrap();
        let t = Target::parse(path).unwrap();
        let (_, seg) = t.segments(&m).next().unwrap();
        let s = t.locate(&seg);
        (
            String::from_utf8_lossy(s.raw(seg.raw())).into_owned(),
            String::from_utf8_lossy(&s.pad).into_owned(),
        )
    }

    const MSG: &[u8] = b"MSH|^~\\&|APP|FAC|||20240101||ADT^A01|1|P|2.5\rPID|1||123^^^H^MR~456^^^H2^PI||DOE^JOHN\r";

    #[test]
    fn finds_existing_places() {
        assert_eq!(spot(MSG, "MSH-3"), ("APP".into(), "".into()));
        assert_eq!(spot(MSG, "MSH-9.2"), ("A01".into(), "".into()));
        assert_eq!(spot(MSG, "PID-3"), ("123^^^H^MR~456^^^H2^PI".into(), "".into()));
        assert_eq!(spot(MSG, "PID-3[2]"), ("456^^^H2^PI".into(), "".into()));
        assert_eq!(spot(MSG, "PID-3.5"), ("MR".into(), "".into()));
        assert_eq!(spot(MSG, "PID-3[2].4"), ("H2".into(), "".into()));
        assert_eq!(spot(MSG, "PID-5.2.1"), ("JOHN".into(), "".into()));
    }

    #[test]
    fn missing_places_come_with_the_separators_that_create_them() {
        assert_eq!(spot(MSG, "PID-8"), ("".into(), "|||".into()));
        assert_eq!(spot(MSG, "PID-5.4"), ("".into(), "^^".into()));
        assert_eq!(spot(MSG, "PID-3[3].2"), ("".into(), "~^".into()));
        assert_eq!(spot(MSG, "PID-7.1.2"), ("".into(), "||&".into()));
        assert_eq!(spot(MSG, "MSH-13"), ("".into(), "|".into()));
    }

    #[test]
    fn filters_read_any_occurrence_and_repetition() {
        let m = Message::parse(MSG).unwrap();
        let t = Target::parse("PID-3.5").unwrap();
        assert!(t.any_value(&m, |v| v.text() == "PI"));
        let t = Target::parse("PID-3[1].5").unwrap();
        assert!(!t.any_value(&m, |v| v.text() == "PI"));
        assert_eq!(t.level(), Level::Component);
    }
}
