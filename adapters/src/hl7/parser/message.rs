//! [`Message`]: the parsed form of one HL7 v2 message, an index of segment
//! boundaries over the borrowed input.
//!
//! Parsing finds the segments (one `memchr2` pass for CR/LF) and checks each
//! segment id; fields are found when read. Measured on the bench corpus,
//! indexing every field up front costs more than it saves when a consumer
//! reads a handful of fields, which is what the listener and router do.

use memchr::memchr2;

use super::delimiters::Delimiters;
use super::error::{Location, ParseError};
use super::path::FieldPath;
use super::segment::{is_header_name, Segment};
use super::views::Value;

/// Byte range of one segment (without its terminator) in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Iterator over the segments of a buffer: segments end at CR, LF or CRLF (a
/// sender may even mix them); empty lines are skipped.
#[derive(Debug, Clone)]
pub(crate) struct Lines<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Lines { input, pos: 0 }
    }
}

impl Iterator for Lines<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        loop {
            let rest = self.input.get(self.pos..)?;
            if rest.is_empty() {
                return None;
            }
            let start = self.pos;
            let len = memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
            self.pos = start + len + 1;
            if len > 0 {
                return Some(Span {
                    start,
                    end: start + len,
                });
            }
        }
    }
}

/// Checks the segment id: 3 upper-case ASCII letters or digits, then the field
/// separator or the end of the segment.
pub(crate) fn check_segment_id(raw: &[u8], field_sep: u8, sequence: usize, offset: usize) -> Result<(), ParseError> {
    let ok = match raw {
        [a, b, c, rest @ ..] => {
            [a, b, c]
                .iter()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit())
                && rest.first().is_none_or(|&s| s == field_sep)
        }
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let shown = raw.get(..raw.len().min(8)).unwrap_or_default();
    Err(ParseError::InvalidSegmentId {
        found: String::from_utf8_lossy(shown).into_owned(),
        location: Location::new(raw, sequence, None, offset),
    })
}

/// A parsed HL7 v2 message borrowing its input.
///
/// `Message::parse` indexes segments and reads the delimiters; everything else
/// is read on demand from the input, which is never copied.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    raw: &'a [u8],
    delims: Delimiters,
    segments: Vec<Span>,
}

impl<'a> Message<'a> {
    /// Parses one message. It must start with MSH; segments may end with CR, LF
    /// or CRLF. A batch (FHS/BHS) or several messages are an error here: split
    /// them with [`Batch::split`](super::Batch::split) first.
    pub fn parse(raw: &'a [u8]) -> Result<Self, ParseError> {
        let mut lines = Lines::new(raw);
        let first = lines.next().ok_or(ParseError::Empty)?;
        let first_raw = raw.get(first.start..first.end).unwrap_or_default();
        if !first_raw.starts_with(b"MSH") {
            let shown = first_raw.get(..first_raw.len().min(8)).unwrap_or_default();
            return Err(ParseError::MissingMsh {
                found: String::from_utf8_lossy(shown).into_owned(),
                location: Location::new(first_raw, 1, None, first.start),
            });
        }
        let delims = Delimiters::from_header(first_raw, first.start)?;
        // Typical segments are 50-100 bytes; a guess avoids most regrowth.
        let mut segments = Vec::with_capacity(raw.len() / 64 + 4);
        segments.push(first);
        for span in lines {
            let seg = raw.get(span.start..span.end).unwrap_or_default();
            let sequence = segments.len() + 1;
            check_segment_id(seg, delims.field(), sequence, span.start)?;
            if is_header_name(seg) || matches!(seg.get(..3), Some(b"BTS" | b"FTS")) {
                return Err(ParseError::UnexpectedSegment {
                    found: String::from_utf8_lossy(seg.get(..3).unwrap_or_default()).into_owned(),
                    location: Location::new(seg, sequence, None, span.start),
                });
            }
            segments.push(span);
        }
        Ok(Message { raw, delims, segments })
    }

    /// The input, byte for byte: a parsed message written back is its input.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Appends the message exactly as received (same terminators, same bytes).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.raw);
    }

    /// The segments joined with CR, the standard terminator, dropping empty
    /// lines: the form to forward when a sender used LF or CRLF.
    pub fn to_normalized(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len() + 1);
        for seg in self.segments() {
            out.extend_from_slice(seg.raw());
            out.push(b'\r');
        }
        out
    }

    /// The delimiters from MSH-1/MSH-2.
    pub fn delimiters(&self) -> Delimiters {
        self.delims
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    fn view(&self, index: usize, span: Span) -> Segment<'a> {
        let raw = self.raw.get(span.start..span.end).unwrap_or_default();
        Segment::new(raw, self.delims, index + 1, span.start)
    }

    /// The segments in order, MSH first.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + '_ {
        self.segments.iter().enumerate().map(|(i, &span)| self.view(i, span))
    }

    /// Segment at 1-based position `sequence`.
    pub fn segment_at(&self, sequence: usize) -> Option<Segment<'a>> {
        let index = sequence.checked_sub(1)?;
        self.segments.get(index).map(|&span| self.view(index, span))
    }

    /// The segments with id `name`, in order.
    pub fn segments_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = Segment<'a>> + 's {
        let name = name.as_bytes();
        self.segments
            .iter()
            .enumerate()
            .filter(move |(_, span)| {
                self.raw
                    .get(span.start..span.end)
                    .and_then(|s| s.get(..3))
                    .is_some_and(|id| id == name)
            })
            .map(|(i, &span)| self.view(i, span))
    }

    /// The `occurrence`-th (1-based) segment with id `name`.
    pub fn segment(&self, name: &str, occurrence: usize) -> Option<Segment<'a>> {
        self.segments_named(name).nth(occurrence.checked_sub(1)?)
    }

    /// The MSH segment.
    pub fn msh(&self) -> Segment<'a> {
        let span = self.segments.first().copied().unwrap_or(Span { start: 0, end: 0 });
        self.view(0, span)
    }

    /// Reads a value by path (`PID-3`, `PID-3[2].1`, `OBX(3)-5.1`). `Ok(None)`
    /// when the message has no such part; `Err` when the path is not a path.
    /// Parse paths used repeatedly once, with [`FieldPath::parse`], and call [`query`](Self::query).
    pub fn get(&self, path: &str) -> Result<Option<Value<'a>>, super::error::PathError> {
        Ok(self.query(&FieldPath::parse(path)?))
    }

    /// Reads a value by a parsed path; `None` when the message has no such part.
    pub fn query(&self, path: &FieldPath) -> Option<Value<'a>> {
        path.resolve(self)
    }

    /// Byte offset of a slice borrowed from this message (for error locations).
    pub fn offset_of(&self, part: &[u8]) -> Option<usize> {
        let start = self.raw.as_ptr() as usize;
        let at = (part.as_ptr() as usize).checked_sub(start)?;
        (at + part.len() <= self.raw.len()).then_some(at)
    }
}
