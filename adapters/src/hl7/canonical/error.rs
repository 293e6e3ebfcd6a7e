//! [`MapError`]: why an HL7 v2 message could not be mapped to canonical
//! events. Every variant is bad input — the sender must fix the message — so
//! the router dead-letters it (or answers AE), never retries it. `NotAdt` and
//! `NotMapped` are the exception in practice: a type nobody maps is filtered.

use std::fmt;

use crate::hl7::ack::AckError;

/// Where in the message a mapping problem is, for ERR-2 and for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLocation {
    /// Segment id (`PID`).
    pub segment: &'static str,
    /// 1-based position of the segment in the message; 0 when it is absent.
    pub sequence: usize,
    /// Field number.
    pub field: usize,
    /// Repetition (1-based), when the problem is in one repetition.
    pub repetition: Option<usize>,
    /// Component (1-based), when the problem is in one component.
    pub component: Option<usize>,
}

impl FieldLocation {
    /// A whole field of the segment at `sequence`.
    pub(super) fn new(segment: &'static str, sequence: usize, field: usize) -> Self {
        FieldLocation {
            segment,
            sequence,
            field,
            repetition: None,
            component: None,
        }
    }

    /// The same field, narrowed to a repetition and component.
    pub(super) fn at(mut self, repetition: usize, component: usize) -> Self {
        self.repetition = Some(repetition);
        self.component = Some(component);
        self
    }
}

impl fmt::Display for FieldLocation {
    /// `PID-3[2].7`: the path syntax the parser and the routes use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.segment, self.field)?;
        if let Some(r) = self.repetition {
            write!(f, "[{r}]")?;
        }
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        Ok(())
    }
}

/// Why a message could not be mapped. Messages never include field values:
/// those are patient data, and errors reach logs. Codes of HL7 tables that
/// steer the mapping (order control, result status, transaction type) are
/// named in [`UnknownCode`](MapError::UnknownCode): they are not patient data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// MSH-9.1 is not `ADT`.
    #[error("MSH-9 message type is {found:?}: only ADT maps to patient and encounter events")]
    NotAdt {
        /// MSH-9.1 as found (empty when absent).
        found: String,
    },
    /// Neither MSH-9.2 nor EVN-1 names the trigger event.
    #[error("no trigger event: MSH-9.2 is empty and there is no EVN-1")]
    MissingTrigger,
    /// A trigger this mapping does not handle.
    #[error("ADT^{trigger} is not mapped (supported: A01, A03, A04, A05, A08, A11, A13, A28, A31, A40)")]
    UnsupportedTrigger {
        /// The trigger event, e.g. `A17`.
        trigger: String,
    },
    /// A segment the trigger needs is absent.
    #[error("ADT^{trigger} has no {segment} segment")]
    MissingSegment {
        /// The trigger event.
        trigger: String,
        /// The missing segment id.
        segment: &'static str,
    },
    /// A field the mapping needs is empty.
    #[error("{location} is empty: {why}")]
    MissingField {
        /// Where.
        location: FieldLocation,
        /// Why it is needed.
        why: &'static str,
    },
    /// A field holds a value the mapping cannot read.
    #[error("{location} is invalid: {why}")]
    InvalidField {
        /// Where.
        location: FieldLocation,
        /// What is wrong (never the value itself).
        why: String,
    },
    /// MSH-9.1 is a message type [`map_message`](super::map_message) does not map.
    #[error(
        "MSH-9 message type is {found:?}: not mapped to canonical events (mapped: {})",
        super::MAPPED_TYPES
    )]
    NotMapped {
        /// MSH-9.1 as found (empty when absent).
        found: String,
    },
    /// A trigger event of a mapped type (other than ADT) this mapping does not handle.
    #[error("{message_type} is not mapped (mapped: {})", super::MAPPED_TYPES)]
    UnsupportedEvent {
        /// Message code and trigger, e.g. `ORM^O02`.
        message_type: String,
    },
    /// A segment the message (other than ADT) needs is absent, or not where the structure puts it.
    #[error("{message_type} has no {segment} segment {context}")]
    NoSegment {
        /// Message code and trigger, e.g. `ORU^R01`.
        message_type: String,
        /// The missing segment id.
        segment: &'static str,
        /// Where it was expected, e.g. `before OBX`.
        context: &'static str,
    },
    /// A field holds a code its HL7 table does not define (or the mapping does not know).
    #[error("{location} holds {code:?}, not a code of HL7 table {table} that this mapping knows")]
    UnknownCode {
        /// Where.
        location: FieldLocation,
        /// The table, e.g. `0119`.
        table: &'static str,
        /// The code as sent, when it looks like one (see `MapError::unknown_code`).
        code: String,
    },
}

impl MapError {
    /// [`MapError::UnknownCode`], keeping the code only when it looks like a
    /// table code (up to 8 letters, digits or `-`): anything else could be
    /// patient data put in the wrong field, and errors reach logs.
    pub(super) fn unknown_code(location: FieldLocation, table: &'static str, code: String) -> Self {
        let looks_like_code = code.len() <= 8 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        MapError::UnknownCode {
            location,
            table,
            code: if looks_like_code { code } else { "(not a code)".into() },
        }
    }

    /// True for every mapping error: they are all the sender's to fix, so the
    /// consumer dead-letters the message instead of retrying it.
    pub fn is_bad_input(&self) -> bool {
        true
    }

    /// Where the problem is, when it is in a field.
    pub fn location(&self) -> Option<&FieldLocation> {
        match self {
            MapError::MissingField { location, .. }
            | MapError::InvalidField { location, .. }
            | MapError::UnknownCode { location, .. } => Some(location),
            _ => None,
        }
    }

    /// HL7 table 0357 code for ERR-3: 100 segment sequence, 101 required field
    /// missing, 102 data type error, 103 table value not found, 200
    /// unsupported message type, 201 unsupported event.
    pub fn hl7_error_code(&self) -> u16 {
        match self {
            MapError::NotAdt { .. } | MapError::NotMapped { .. } => 200,
            MapError::MissingTrigger | MapError::UnsupportedTrigger { .. } | MapError::UnsupportedEvent { .. } => 201,
            MapError::MissingSegment { .. } | MapError::NoSegment { .. } => 100,
            MapError::MissingField { .. } => 101,
            MapError::InvalidField { .. } => 102,
            MapError::UnknownCode { .. } => 103,
        }
    }

    /// The ERR segment content for an application acknowledgment (AE).
    pub fn to_ack_error(&self) -> AckError {
        AckError {
            code: self.hl7_error_code(),
            location: self
                .location()
                .map(|l| (l.segment.to_string(), l.sequence, Some(l.field))),
            text: self.to_string(),
        }
    }
}
