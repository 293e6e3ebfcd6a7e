//! Field paths, as interface teams write them in route files.
//!
//! ```text
//! path        = segment [ "(" occurrence ")" ] ( "-" | "." ) field
//!               [ "[" repetition "]" ] [ "." component [ "." subcomponent ] ]
//! segment     = 3 upper-case letters or digits        e.g. PID, OBX, ZPI
//! numbers     = 1-based decimal
//! ```
//!
//! `PID-3` is the whole field (all repetitions), `PID-3[2]` its second
//! repetition, `PID-3.1` component 1 of the first repetition, `PID-3[2].4.1`
//! a sub-component, `OBX(3)-5` field 5 of the third OBX.

use std::fmt;
use std::str::FromStr;

use super::error::PathError;
use super::message::Message;
use super::views::Value;

/// A parsed field path; parse once, query many messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    segment: [u8; 3],
    occurrence: usize,
    field: usize,
    repetition: Option<usize>,
    component: Option<usize>,
    subcomponent: Option<usize>,
}

/// Numbers beyond this are certainly not in any message and could overflow.
const MAX_NUMBER: usize = 1_000_000;

struct Cursor<'p> {
    path: &'p str,
    bytes: &'p [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn error(&self, reason: &'static str) -> PathError {
        PathError {
            path: self.path.to_string(),
            position: self.pos,
            reason,
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.bytes.get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn number(&mut self, what: &'static str) -> Result<usize, PathError> {
        let start = self.pos;
        let mut n: usize = 0;
        while let Some(d) = self.bytes.get(self.pos).filter(|b| b.is_ascii_digit()) {
            n = n * 10 + usize::from(d - b'0');
            self.pos += 1;
            if n > MAX_NUMBER {
                return Err(PathError {
                    path: self.path.to_string(),
                    position: start,
                    reason: "number too large",
                });
            }
        }
        if self.pos == start {
            return Err(self.error(what));
        }
        if n == 0 {
            return Err(PathError {
                path: self.path.to_string(),
                position: start,
                reason: "numbers start at 1",
            });
        }
        Ok(n)
    }
}

impl FieldPath {
    /// Parses a path such as `PID-3[2].1` (see the module docs for the grammar).
    pub fn parse(path: &str) -> Result<Self, PathError> {
        let mut c = Cursor {
            path,
            bytes: path.as_bytes(),
            pos: 0,
        };
        let segment = match c.bytes.get(..3) {
            Some(&[a, b, d]) if [a, b, d].iter().all(|x| x.is_ascii_uppercase() || x.is_ascii_digit()) => [a, b, d],
            _ => return Err(c.error("expected a 3-character segment id (upper-case letters or digits)")),
        };
        c.pos = 3;
        let mut occurrence = 1;
        if c.eat(b'(') {
            occurrence = c.number("expected the segment occurrence number")?;
            if !c.eat(b')') {
                return Err(c.error("expected ')'"));
            }
        }
        if !(c.eat(b'-') || c.eat(b'.')) {
            return Err(c.error("expected '-' and a field number"));
        }
        let field = c.number("expected a field number")?;
        let mut repetition = None;
        if c.eat(b'[') {
            repetition = Some(c.number("expected a repetition number")?);
            if !c.eat(b']') {
                return Err(c.error("expected ']'"));
            }
        }
        let (mut component, mut subcomponent) = (None, None);
        if c.eat(b'.') {
            component = Some(c.number("expected a component number")?);
            if c.eat(b'.') {
                subcomponent = Some(c.number("expected a sub-component number")?);
            }
        }
        if c.pos != c.bytes.len() {
            return Err(c.error("unexpected character"));
        }
        Ok(FieldPath {
            segment,
            occurrence,
            field,
            repetition,
            component,
            subcomponent,
        })
    }

    /// The segment id.
    pub fn segment(&self) -> &str {
        std::str::from_utf8(&self.segment).unwrap_or_default()
    }
    /// Which segment with that id, 1-based (1 when the path does not say).
    pub fn occurrence(&self) -> usize {
        self.occurrence
    }
    /// Field number (HL7 numbering: MSH-1 is the field separator).
    pub fn field(&self) -> usize {
        self.field
    }
    /// Repetition number, if given.
    pub fn repetition(&self) -> Option<usize> {
        self.repetition
    }
    /// Component number, if given.
    pub fn component(&self) -> Option<usize> {
        self.component
    }
    /// Sub-component number, if given.
    pub fn subcomponent(&self) -> Option<usize> {
        self.subcomponent
    }

    /// The value this path names in `msg`, or `None` when any part is absent.
    pub fn resolve<'a>(&self, msg: &Message<'a>) -> Option<Value<'a>> {
        let field = msg.segment(self.segment(), self.occurrence)?.field(self.field)?;
        let repetition = match (self.repetition, self.component) {
            (Some(r), _) => field.repetition(r)?,
            (None, Some(_)) => field.first(),
            (None, None) => return Some(field.as_value()),
        };
        let Some(c) = self.component else {
            return Some(repetition.as_value());
        };
        let component = repetition.component(c)?;
        match self.subcomponent {
            Some(s) => Some(component.subcomponent(s)?.as_value()),
            None => Some(component.as_value()),
        }
    }
}

impl FromStr for FieldPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, PathError> {
        FieldPath::parse(s)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.segment())?;
        if self.occurrence != 1 {
            write!(f, "({})", self.occurrence)?;
        }
        write!(f, "-{}", self.field)?;
        if let Some(r) = self.repetition {
            write!(f, "[{r}]")?;
        }
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        if let Some(s) = self.subcomponent {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}
