//! Borrowed views of the parts of a field: [`Field`] → [`Repetition`] →
//! [`Component`] → [`SubComponent`], and [`Value`], the level-less result of a
//! path lookup. Each is a slice of the input plus the delimiters; splitting
//! happens when asked, so reading one field costs nothing for the others.

use std::borrow::Cow;

use memchr::memchr;

use super::delimiters::Delimiters;
use super::escape;

/// Iterator over the parts of `bytes` between `sep` bytes (all of it when `sep`
/// is `None`). An empty input has one empty part, as in HL7 `||`.
#[derive(Debug, Clone)]
pub(crate) struct Parts<'a> {
    rest: Option<&'a [u8]>,
    sep: Option<u8>,
}

impl<'a> Parts<'a> {
    pub(crate) fn new(bytes: &'a [u8], sep: Option<u8>) -> Self {
        Parts { rest: Some(bytes), sep }
    }
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match self.sep.and_then(|sep| memchr(sep, rest)) {
            Some(i) => {
                self.rest = rest.get(i + 1..);
                rest.get(..i)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Part `n` (1-based) of `bytes` split on `sep`.
pub(crate) fn nth_part(bytes: &[u8], sep: Option<u8>, n: usize) -> Option<&[u8]> {
    Parts::new(bytes, sep).nth(n.checked_sub(1)?)
}

/// Number of parts of `bytes` split on `sep`.
fn count_parts(bytes: &[u8], sep: Option<u8>) -> usize {
    match sep {
        Some(sep) => memchr::memchr_iter(sep, bytes).count() + 1,
        None => 1,
    }
}

macro_rules! value_methods {
    ($view:ident) => {
        impl<'a> $view<'a> {
            /// The bytes exactly as in the message (escape sequences not decoded).
            pub fn raw(&self) -> &'a [u8] {
                self.raw
            }

            /// The value with escape sequences decoded; borrows unless there was
            /// one to decode. On a composite value the separators stay as they are.
            pub fn decoded(&self) -> Cow<'a, [u8]> {
                if self.literal {
                    Cow::Borrowed(self.raw)
                } else {
                    escape::decode(self.raw, &self.delims)
                }
            }

            /// [`decoded`](Self::decoded) as text, replacing bytes that are not
            /// UTF-8 (convert other MSH-18 charsets from [`decoded`](Self::decoded) instead).
            pub fn text(&self) -> Cow<'a, str> {
                bytes_to_text(self.decoded())
            }

            /// True when the value has no bytes (not present, in HL7 terms).
            pub fn is_empty(&self) -> bool {
                self.raw.is_empty()
            }

            /// True for the HL7 explicit null `""` ("delete this value").
            pub fn is_null(&self) -> bool {
                self.raw == b"\"\""
            }

            /// The delimiters of the message this view comes from.
            pub fn delimiters(&self) -> Delimiters {
                self.delims
            }

            /// This view without its level, as a path lookup returns it.
            pub fn as_value(&self) -> Value<'a> {
                Value {
                    raw: self.raw,
                    delims: self.delims,
                    literal: self.literal,
                }
            }
        }
    };
}

/// Decoded bytes as text, borrowing when they are already valid UTF-8.
pub(crate) fn bytes_to_text(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(v) => match String::from_utf8(v) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

/// A field: one or more repetitions separated by the repetition character.
///
/// MSH-1 and MSH-2 (and FHS/BHS-1, -2) are *literal*: they hold the delimiters,
/// so they are never split or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    raw: &'a [u8],
    delims: Delimiters,
    literal: bool,
}

/// One repetition of a field: components separated by the component character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repetition<'a> {
    raw: &'a [u8],
    delims: Delimiters,
    literal: bool,
}

/// One component: sub-components separated by the sub-component character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component<'a> {
    raw: &'a [u8],
    delims: Delimiters,
    literal: bool,
}

/// One sub-component: a leaf value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubComponent<'a> {
    raw: &'a [u8],
    delims: Delimiters,
    literal: bool,
}

/// What a field path resolves to: a field, repetition, component or
/// sub-component, read as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
    delims: Delimiters,
    literal: bool,
}

value_methods!(Field);
value_methods!(Repetition);
value_methods!(Component);
value_methods!(SubComponent);
value_methods!(Value);

impl<'a> Field<'a> {
    pub(crate) fn new(raw: &'a [u8], delims: Delimiters, literal: bool) -> Self {
        Field { raw, delims, literal }
    }

    fn sep(&self) -> Option<u8> {
        (!self.literal).then_some(self.delims.repetition())
    }

    /// The repetitions, in order (one, possibly empty, for a field without repetition characters).
    pub fn repetitions(&self) -> impl Iterator<Item = Repetition<'a>> + Clone + use<'a> {
        let (delims, literal) = (self.delims, self.literal);
        Parts::new(self.raw, self.sep()).map(move |raw| Repetition { raw, delims, literal })
    }

    /// Repetition `n`, 1-based.
    pub fn repetition(&self, n: usize) -> Option<Repetition<'a>> {
        let raw = nth_part(self.raw, self.sep(), n)?;
        Some(Repetition {
            raw,
            delims: self.delims,
            literal: self.literal,
        })
    }

    /// Number of repetitions (at least 1).
    pub fn repetition_count(&self) -> usize {
        count_parts(self.raw, self.sep())
    }

    /// The first repetition; most fields do not repeat.
    pub fn first(&self) -> Repetition<'a> {
        let raw = Parts::new(self.raw, self.sep()).next().unwrap_or_default();
        Repetition {
            raw,
            delims: self.delims,
            literal: self.literal,
        }
    }

    /// Component `n` (1-based) of the first repetition.
    pub fn component(&self, n: usize) -> Option<Component<'a>> {
        self.first().component(n)
    }
}

impl<'a> Repetition<'a> {
    fn sep(&self) -> Option<u8> {
        (!self.literal).then_some(self.delims.component())
    }

    /// The components, in order.
    pub fn components(&self) -> impl Iterator<Item = Component<'a>> + Clone + use<'a> {
        let (delims, literal) = (self.delims, self.literal);
        Parts::new(self.raw, self.sep()).map(move |raw| Component { raw, delims, literal })
    }

    /// Component `n`, 1-based.
    pub fn component(&self, n: usize) -> Option<Component<'a>> {
        let raw = nth_part(self.raw, self.sep(), n)?;
        Some(Component {
            raw,
            delims: self.delims,
            literal: self.literal,
        })
    }

    /// Number of components (at least 1).
    pub fn component_count(&self) -> usize {
        count_parts(self.raw, self.sep())
    }
}

impl<'a> Component<'a> {
    fn sep(&self) -> Option<u8> {
        (!self.literal).then_some(self.delims.subcomponent())
    }

    /// The sub-components, in order.
    pub fn subcomponents(&self) -> impl Iterator<Item = SubComponent<'a>> + Clone + use<'a> {
        let (delims, literal) = (self.delims, self.literal);
        Parts::new(self.raw, self.sep()).map(move |raw| SubComponent { raw, delims, literal })
    }

    /// Sub-component `n`, 1-based.
    pub fn subcomponent(&self, n: usize) -> Option<SubComponent<'a>> {
        let raw = nth_part(self.raw, self.sep(), n)?;
        Some(SubComponent {
            raw,
            delims: self.delims,
            literal: self.literal,
        })
    }

    /// Number of sub-components (at least 1).
    pub fn subcomponent_count(&self) -> usize {
        count_parts(self.raw, self.sep())
    }
}
