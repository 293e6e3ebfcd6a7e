//! One segment of a message, and the HL7 field numbering with its header quirk.

use super::delimiters::Delimiters;
use super::views::{nth_part, Field, Parts};

/// A segment: its id, then fields separated by the field separator.
///
/// In header segments (MSH, FHS, BHS) field 1 is the field separator itself
/// and field 2 the encoding characters, so `MSH-3` is the second piece after
/// the id, not the third as in every other segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    raw: &'a [u8],
    delims: Delimiters,
    sequence: usize,
    offset: usize,
}

impl<'a> Segment<'a> {
    pub(crate) fn new(raw: &'a [u8], delims: Delimiters, sequence: usize, offset: usize) -> Self {
        Segment {
            raw,
            delims,
            sequence,
            offset,
        }
    }

    /// The segment id (`PID`, `ZPI`, …); the parser checked it is 3 ASCII characters.
    pub fn name(&self) -> &'a str {
        self.raw
            .get(..3)
            .and_then(|n| std::str::from_utf8(n).ok())
            .unwrap_or_default()
    }

    /// The segment bytes without the terminator.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// 1-based position in the message.
    pub fn sequence(&self) -> usize {
        self.sequence
    }

    /// Byte offset of the segment in the input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The delimiters of the message.
    pub fn delimiters(&self) -> Delimiters {
        self.delims
    }

    /// MSH, FHS and BHS number their fields from the separator itself.
    pub fn is_header(&self) -> bool {
        is_header_name(self.raw)
    }

    /// Field `n` (1-based, HL7 numbering); `None` past the last field or for 0.
    pub fn field(&self, n: usize) -> Option<Field<'a>> {
        let sep = Some(self.delims.field());
        if self.is_header() {
            match n {
                0 => None,
                1 => Some(Field::new(self.raw.get(3..4)?, self.delims, true)),
                2 => Some(Field::new(nth_part(self.raw, sep, 2)?, self.delims, true)),
                _ => Some(Field::new(nth_part(self.raw, sep, n)?, self.delims, false)),
            }
        } else {
            Some(Field::new(
                nth_part(self.raw, sep, n.checked_add(1)?)?,
                self.delims,
                false,
            ))
        }
    }

    /// The fields in order, starting at field 1.
    pub fn fields(&self) -> Fields<'a> {
        let mut parts = Parts::new(self.raw, Some(self.delims.field()));
        parts.next(); // the segment id
        Fields {
            parts,
            delims: self.delims,
            number: 0,
            header: self.is_header(),
            separator: self.raw.get(3..4),
        }
    }

    /// Number of fields (the highest field number present).
    pub fn field_count(&self) -> usize {
        let separators = memchr::memchr_iter(self.delims.field(), self.raw).count();
        if self.is_header() && separators > 0 {
            separators + 1
        } else {
            separators
        }
    }
}

pub(crate) fn is_header_name(raw: &[u8]) -> bool {
    matches!(raw.get(..3), Some(b"MSH" | b"FHS" | b"BHS"))
}

/// Iterator over a segment's fields, yielding `(number, field)`.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    parts: Parts<'a>,
    delims: Delimiters,
    number: usize,
    header: bool,
    separator: Option<&'a [u8]>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (usize, Field<'a>);

    fn next(&mut self) -> Option<(usize, Field<'a>)> {
        if self.header && self.number == 0 {
            self.number = 1;
            return Some((1, Field::new(self.separator?, self.delims, true)));
        }
        let raw = self.parts.next()?;
        self.number += 1;
        let literal = self.header && self.number == 2;
        Some((self.number, Field::new(raw, self.delims, literal)))
    }
}
