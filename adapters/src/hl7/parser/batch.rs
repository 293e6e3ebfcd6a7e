//! Batches and files: `FHS BHS MSH… BTS BHS MSH… BTS FTS` (every envelope
//! segment optional) split into the byte ranges of their messages. Each
//! message is then parsed on its own with [`Message::parse`](super::Message::parse),
//! so one bad message does not hide the others.

use std::ops::Range;

use super::delimiters::Delimiters;
use super::error::{Location, ParseError};
use super::message::Lines;
use super::segment::Segment;

/// What the scanner found: an envelope segment or a whole message.
enum Part {
    Envelope {
        id: [u8; 3],
        start: usize,
        end: usize,
        sequence: usize,
    },
    Message(Range<usize>),
}

/// Scans segment ids only; message contents are left to `Message::parse`.
struct Scanner<'a> {
    input: &'a [u8],
    lines: Lines<'a>,
    sequence: usize,
    message_start: Option<usize>,
    /// An envelope segment seen while a message was open: reported after it.
    held: Option<Part>,
}

impl<'a> Scanner<'a> {
    fn new(input: &'a [u8]) -> Self {
        Scanner {
            input,
            lines: Lines::new(input),
            sequence: 0,
            message_start: None,
            held: None,
        }
    }
}

impl Iterator for Scanner<'_> {
    type Item = Result<Part, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(part) = self.held.take() {
            return Some(Ok(part));
        }
        loop {
            let Some(span) = self.lines.next() else {
                let start = self.message_start.take()?;
                return Some(Ok(Part::Message(start..self.input.len())));
            };
            self.sequence += 1;
            let raw = self.input.get(span.start..span.end).unwrap_or_default();
            let id = match raw.get(..3) {
                Some(&[a, b, c]) => [a, b, c],
                _ => [0; 3],
            };
            match &id {
                b"MSH" => {
                    if let Some(start) = self.message_start.replace(span.start) {
                        return Some(Ok(Part::Message(start..span.start)));
                    }
                }
                b"FHS" | b"BHS" | b"BTS" | b"FTS" => {
                    let envelope = Part::Envelope {
                        id,
                        start: span.start,
                        end: span.end,
                        sequence: self.sequence,
                    };
                    return match self.message_start.take() {
                        Some(start) => {
                            self.held = Some(envelope);
                            Some(Ok(Part::Message(start..span.start)))
                        }
                        None => Some(Ok(envelope)),
                    };
                }
                _ if self.message_start.is_none() => {
                    let location = Location::new(raw, self.sequence, None, span.start);
                    return Some(Err(ParseError::OutsideMessage { location }));
                }
                _ => {}
            }
        }
    }
}

/// The byte ranges of the messages in `input`, lazily; envelope segments are
/// skipped, and a segment outside any message is an `Err` item (the scan goes on).
pub fn message_ranges(input: &[u8]) -> impl Iterator<Item = Result<Range<usize>, ParseError>> + '_ {
    Scanner::new(input).filter_map(|part| match part {
        Ok(Part::Message(range)) => Some(Ok(range)),
        Ok(Part::Envelope { .. }) => None,
        Err(e) => Some(Err(e)),
    })
}

/// A batch file split into its envelope segments and messages.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    input: &'a [u8],
    file_header: Option<Segment<'a>>,
    file_trailer: Option<Segment<'a>>,
    batch_headers: Vec<Segment<'a>>,
    batch_trailers: Vec<Segment<'a>>,
    messages: Vec<Range<usize>>,
}

impl<'a> Batch<'a> {
    /// Splits a file or batch; also accepts plain concatenated messages.
    /// Fails on the first segment outside a message or bad FHS/BHS delimiters.
    pub fn split(input: &'a [u8]) -> Result<Self, ParseError> {
        let mut batch = Batch {
            input,
            file_header: None,
            file_trailer: None,
            batch_headers: Vec::new(),
            batch_trailers: Vec::new(),
            messages: Vec::new(),
        };
        // Trailers use the delimiters of the header before them.
        let mut delims = Delimiters::STANDARD;
        for part in Scanner::new(input) {
            match part? {
                Part::Message(range) => batch.messages.push(range),
                Part::Envelope {
                    id,
                    start,
                    end,
                    sequence,
                } => {
                    let raw = input.get(start..end).unwrap_or_default();
                    if id == *b"FHS" || id == *b"BHS" {
                        delims = Delimiters::from_header(raw, start).map_err(|e| renumber(e, sequence))?;
                    }
                    let seg = Segment::new(raw, delims, sequence, start);
                    match &id {
                        b"FHS" => batch.file_header = Some(seg),
                        b"BHS" => batch.batch_headers.push(seg),
                        b"BTS" => batch.batch_trailers.push(seg),
                        _ => batch.file_trailer = Some(seg),
                    }
                }
            }
        }
        Ok(batch)
    }

    /// The messages, each with its trailing segment terminator.
    pub fn messages(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let input = self.input;
        self.messages
            .iter()
            .map(move |r| input.get(r.clone()).unwrap_or_default())
    }

    /// Byte ranges of the messages in the input.
    pub fn message_ranges(&self) -> &[Range<usize>] {
        &self.messages
    }

    /// Number of messages found.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when the input holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// FHS, if the input is a file.
    pub fn file_header(&self) -> Option<Segment<'a>> {
        self.file_header
    }

    /// FTS, if present.
    pub fn file_trailer(&self) -> Option<Segment<'a>> {
        self.file_trailer
    }

    /// The BHS segments, one per batch.
    pub fn batch_headers(&self) -> &[Segment<'a>] {
        &self.batch_headers
    }

    /// The BTS segments, one per batch.
    pub fn batch_trailers(&self) -> &[Segment<'a>] {
        &self.batch_trailers
    }

    /// The message count the sender declared (sum of BTS-1), to compare with
    /// [`len`](Self::len); `None` without BTS or when a count is not a number.
    pub fn declared_message_count(&self) -> Option<usize> {
        if self.batch_trailers.is_empty() {
            return None;
        }
        self.batch_trailers.iter().try_fold(0usize, |sum, bts| {
            let count = std::str::from_utf8(bts.field(1)?.raw())
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()?;
            sum.checked_add(count)
        })
    }
}

/// Header errors are located as segment 1 by `Delimiters`; in a file the
/// header can be anywhere.
fn renumber(mut error: ParseError, sequence: usize) -> ParseError {
    if let ParseError::HeaderTooShort { location }
    | ParseError::EncodingCharacters { location, .. }
    | ParseError::DuplicateDelimiter { location, .. }
    | ParseError::IllegalDelimiter { location, .. } = &mut error
    {
        location.sequence = sequence;
    }
    error
}
