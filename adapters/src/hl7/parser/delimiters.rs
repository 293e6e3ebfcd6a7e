//! The delimiter set of a message, read from MSH-1 and MSH-2 (or FHS/BHS in a
//! batch). Senders may choose any set, so nothing else in the parser assumes `|^~\&`.

use super::error::{Location, ParseError};

/// The six delimiter characters of a message.
///
/// Built only through [`Delimiters::new`] or parsing, so a value always holds
/// distinct, legal characters and the writer can rely on that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    field: u8,
    component: u8,
    repetition: u8,
    escape: u8,
    subcomponent: u8,
    truncation: Option<u8>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Self::STANDARD
    }
}

impl Delimiters {
    /// `|^~\&`, what nearly every sender uses.
    pub const STANDARD: Delimiters = Delimiters {
        field: b'|',
        component: b'^',
        repetition: b'~',
        escape: b'\\',
        subcomponent: b'&',
        truncation: None,
    };

    /// A delimiter set from the field separator and the MSH-2 encoding characters
    /// (component, repetition, escape, sub-component and optionally truncation).
    pub fn new(field: u8, encoding: &[u8]) -> Result<Self, ParseError> {
        Self::build(field, encoding, b"MSH", 0)
    }

    /// Reads the delimiters from a header segment (`MSH`, `FHS` or `BHS`) that
    /// starts at `input[0]`; `offset` is where `input` starts in the whole buffer,
    /// for error locations.
    pub(crate) fn from_header(input: &[u8], offset: usize) -> Result<Self, ParseError> {
        let too_short = || ParseError::HeaderTooShort {
            location: Location::new(input, 1, Some(2), offset),
        };
        let field = match input.get(3) {
            Some(&b) if b != b'\r' && b != b'\n' => b,
            _ => return Err(too_short()),
        };
        let rest = input.get(4..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == field || b == b'\r' || b == b'\n')
            .unwrap_or(rest.len());
        let encoding = rest.get(..len).unwrap_or_default();
        if encoding.is_empty() {
            return Err(too_short());
        }
        Self::build(field, encoding, input, offset)
    }

    fn build(field: u8, encoding: &[u8], segment: &[u8], offset: usize) -> Result<Self, ParseError> {
        let at = |field_no: usize, extra: usize| Location::new(segment, 1, Some(field_no), offset + extra);
        check_legal(field, at(1, 3))?;
        let &[component, repetition, escape, subcomponent, ref tail @ ..] = encoding else {
            return Err(ParseError::EncodingCharacters {
                found: String::from_utf8_lossy(encoding).into_owned(),
                location: at(2, 4),
            });
        };
        let truncation = match tail {
            [] => None,
            [t] => Some(*t),
            _ => {
                return Err(ParseError::EncodingCharacters {
                    found: String::from_utf8_lossy(encoding).into_owned(),
                    location: at(2, 4),
                })
            }
        };
        let mut seen = vec![field];
        for (i, &c) in encoding.iter().enumerate() {
            check_legal(c, at(2, 4 + i))?;
            if seen.contains(&c) {
                return Err(ParseError::DuplicateDelimiter {
                    delimiter: char::from(c),
                    location: at(2, 4 + i),
                });
            }
            seen.push(c);
        }
        Ok(Delimiters {
            field,
            component,
            repetition,
            escape,
            subcomponent,
            truncation,
        })
    }

    /// Field separator (MSH-1).
    pub fn field(&self) -> u8 {
        self.field
    }
    /// Component separator (MSH-2, 1st character).
    pub fn component(&self) -> u8 {
        self.component
    }
    /// Repetition separator (MSH-2, 2nd character).
    pub fn repetition(&self) -> u8 {
        self.repetition
    }
    /// Escape character (MSH-2, 3rd character).
    pub fn escape(&self) -> u8 {
        self.escape
    }
    /// Sub-component separator (MSH-2, 4th character).
    pub fn subcomponent(&self) -> u8 {
        self.subcomponent
    }
    /// Truncation character (MSH-2, 5th character, HL7 2.7+), if the sender declared one.
    pub fn truncation(&self) -> Option<u8> {
        self.truncation
    }

    /// MSH-2 as it is written: 4 or 5 bytes.
    pub fn encoding_characters(&self) -> Vec<u8> {
        let mut out = vec![self.component, self.repetition, self.escape, self.subcomponent];
        out.extend(self.truncation);
        out
    }
}

/// Letters and digits would make segment ids ambiguous; CR and LF end segments.
fn check_legal(c: u8, location: Location) -> Result<(), ParseError> {
    if c.is_ascii_alphanumeric() || c == b'\r' || c == b'\n' {
        return Err(ParseError::IllegalDelimiter {
            delimiter: char::from(c),
            location,
        });
    }
    Ok(())
}
