//! [`MapError`]: why an ADT message could not be mapped to canonical events.
//! Every variant is bad input — the sender must fix the message — so the
//! router dead-letters it (or answers AE), never retries it.

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

/// Why an ADT message could not be mapped. Messages never include field
/// values: those are patient data, and errors reach logs.
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
}

impl MapError {
    /// True for every mapping error: they are all the sender's to fix, so the
    /// consumer dead-letters the message instead of retrying it.
    pub fn is_bad_input(&self) -> bool {
        true
    }

    /// Where the problem is, when it is in a field.
    pub fn location(&self) -> Option<&FieldLocation> {
        match self {
            MapError::MissingField { location, .. } | MapError::InvalidField { location, .. } => Some(location),
            _ => None,
        }
    }

    /// HL7 table 0357 code for ERR-3: 100 segment sequence, 101 required field
    /// missing, 102 data type error, 200 unsupported message type, 201 unsupported event.
    pub fn hl7_error_code(&self) -> u16 {
        match self {
            MapError::NotAdt { .. } => 200,
            MapError::MissingTrigger | MapError::UnsupportedTrigger { .. } => 201,
            MapError::MissingSegment { .. } => 100,
            MapError::MissingField { .. } => 101,
            MapError::InvalidField { .. } => 102,
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
