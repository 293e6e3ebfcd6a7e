//! Parse and path errors. Every parse error carries a [`Location`] so that the
//! ACK generator can fill ERR-2 (segment, sequence, field) and an operator can
//! find the byte in the stored raw message.

use std::fmt;

/// Where in the input a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Segment name as found in the input (lossy for non-ASCII bytes; empty
    /// when there is no segment, e.g. an empty message).
    pub segment: String,
    /// 1-based position of the segment in the message (ERR-2.2 counts this way).
    pub sequence: usize,
    /// HL7 field number (MSH-1 is the field separator), when the problem is in a field.
    pub field: Option<usize>,
    /// Byte offset from the start of the input.
    pub offset: usize,
}

impl Location {
    pub(crate) fn new(segment: &[u8], sequence: usize, field: Option<usize>, offset: usize) -> Self {
        let name = segment.get(..3).unwrap_or(segment);
        Location {
            segment: String::from_utf8_lossy(name).into_owned(),
            sequence,
            field,
            offset,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segment.is_empty() {
            write!(f, "segment {}", self.sequence)?;
        } else {
            write!(f, "segment {} ({})", self.sequence, self.segment)?;
        }
        if let Some(field) = self.field {
            write!(f, ", field {}-{field}", self.segment)?;
        }
        write!(f, ", byte {}", self.offset)
    }
}

/// Why an HL7 v2 message (or batch) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input has no bytes besides segment terminators.
    #[error("empty message: no segments")]
    Empty,
    /// The first segment is not MSH (a batch starts with FHS/BHS: use `Batch::split`).
    #[error("{location}: a message must start with an MSH segment, found {found:?}")]
    MissingMsh {
        /// What was found (lossy text, shortened).
        found: String,
        /// Where it is.
        location: Location,
    },
    /// The header segment ends before its encoding characters.
    #[error("{location}: header segment too short, it ends before the encoding characters (MSH-2)")]
    HeaderTooShort {
        /// Where it is.
        location: Location,
    },
    /// MSH-2 is not 4 characters (5 with the 2.7+ truncation character).
    #[error("{location}: encoding characters {found:?} must be 4 or 5 characters (component, repetition, escape, sub-component[, truncation])")]
    EncodingCharacters {
        /// What was found (lossy text, shortened).
        found: String,
        /// Where it is.
        location: Location,
    },
    /// The same character is used for two delimiters.
    #[error("{location}: delimiter {delimiter:?} is used twice in MSH-1/MSH-2")]
    DuplicateDelimiter {
        /// The offending character.
        delimiter: char,
        /// Where it is.
        location: Location,
    },
    /// A delimiter is a letter, digit, CR or LF.
    #[error("{location}: {delimiter:?} cannot be a delimiter (letters, digits, CR and LF are not allowed)")]
    IllegalDelimiter {
        /// The offending character.
        delimiter: char,
        /// Where it is.
        location: Location,
    },
    /// A segment does not start with a 3-character upper-case segment id.
    #[error(
        "{location}: invalid segment id {found:?} (expected 3 upper-case letters or digits, then the field separator)"
    )]
    InvalidSegmentId {
        /// What was found (lossy text, shortened).
        found: String,
        /// Where it is.
        location: Location,
    },
    /// A header or batch segment where only message segments may be.
    #[error("{location}: unexpected {found} segment inside a message (several messages or a batch? split it with `Batch::split`)")]
    UnexpectedSegment {
        /// What was found (lossy text, shortened).
        found: String,
        /// Where it is.
        location: Location,
    },
    /// A segment in a batch file that is neither a batch envelope segment nor part of a message.
    #[error("{location}: segment outside of any message (each message must start with MSH)")]
    OutsideMessage {
        /// Where it is.
        location: Location,
    },
    /// A field the caller requires (see `Message::check_header`) is absent or empty.
    #[error("{location}: required field is missing or empty")]
    MissingField {
        /// Where it is.
        location: Location,
    },
}

impl ParseError {
    /// Where the problem is; `None` only for [`ParseError::Empty`].
    pub fn location(&self) -> Option<&Location> {
        match self {
            ParseError::Empty => None,
            ParseError::MissingMsh { location, .. }
            | ParseError::HeaderTooShort { location }
            | ParseError::EncodingCharacters { location, .. }
            | ParseError::DuplicateDelimiter { location, .. }
            | ParseError::IllegalDelimiter { location, .. }
            | ParseError::InvalidSegmentId { location, .. }
            | ParseError::UnexpectedSegment { location, .. }
            | ParseError::OutsideMessage { location }
            | ParseError::MissingField { location } => Some(location),
        }
    }

    /// The HL7 table 0357 error code for ERR-3: 100 segment sequence error,
    /// 101 required field missing, 102 data type error.
    pub fn hl7_error_code(&self) -> u16 {
        match self {
            ParseError::Empty
            | ParseError::MissingMsh { .. }
            | ParseError::InvalidSegmentId { .. }
            | ParseError::UnexpectedSegment { .. }
            | ParseError::OutsideMessage { .. } => 100,
            ParseError::MissingField { .. } | ParseError::HeaderTooShort { .. } => 101,
            ParseError::EncodingCharacters { .. }
            | ParseError::DuplicateDelimiter { .. }
            | ParseError::IllegalDelimiter { .. } => 102,
        }
    }
}

/// A field path string (`PID-3[2].1`) that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field path {path:?} at character {position}: {reason}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// 0-based character position of the problem.
    pub position: usize,
    /// What was expected there.
    pub reason: &'static str,
}

/// A misuse of [`MessageWriter`](super::MessageWriter), reported by `finish`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Segment ids are 3 upper-case ASCII letters or digits.
    #[error("invalid segment id {0:?}")]
    InvalidSegmentId(String),
    /// Fields must be written in increasing order, each at most once.
    #[error("field {segment}-{field} written after field {segment}-{after}")]
    FieldOutOfOrder {
        /// Segment id.
        segment: String,
        /// The field asked for.
        field: usize,
        /// The field written before it.
        after: usize,
    },
    /// Field numbers start at 1 (3 for header segments, whose 1 and 2 are the delimiters).
    #[error("field {segment}-{field} cannot be written")]
    InvalidField {
        /// Segment id.
        segment: String,
        /// Field number.
        field: usize,
    },
    /// A field was written before any segment was started.
    #[error("field written before any segment")]
    NoSegment,
}
