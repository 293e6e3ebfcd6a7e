//! [`MessageWriter`]: builds new messages (ACKs, test messages) with a given
//! delimiter set, escaping every value it is given as text.
//!
//! Methods chain and never fail on the spot; the first misuse (a field written
//! twice, a bad segment id) is kept and returned by [`MessageWriter::finish`],
//! so building code stays linear.

use super::delimiters::Delimiters;
use super::error::WriteError;
use super::escape::encode_into;
use super::segment::is_header_name;

/// Writes segments and fields into a buffer; segments end with CR.
#[derive(Debug, Clone)]
pub struct MessageWriter {
    buf: Vec<u8>,
    delims: Delimiters,
    /// Id of the open segment, if any.
    segment: Option<[u8; 3]>,
    /// Last field number written in the open segment.
    field: usize,
    error: Option<WriteError>,
}

impl MessageWriter {
    /// A writer using `delims` (take them from the message being answered).
    pub fn new(delims: Delimiters) -> Self {
        MessageWriter {
            buf: Vec::with_capacity(256),
            delims,
            segment: None,
            field: 0,
            error: None,
        }
    }

    fn fail(&mut self, error: WriteError) {
        self.error.get_or_insert(error);
    }

    fn close_segment(&mut self) {
        if self.segment.take().is_some() {
            self.buf.push(b'\r');
        }
    }

    /// Starts a segment. For MSH, FHS and BHS the field separator and encoding
    /// characters are written too, so the next field is number 3.
    pub fn segment(&mut self, id: &str) -> &mut Self {
        self.close_segment();
        let name = match id.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase() || x.is_ascii_digit()) => [a, b, c],
            _ => {
                self.fail(WriteError::InvalidSegmentId(id.to_string()));
                return self;
            }
        };
        self.buf.extend_from_slice(&name);
        self.segment = Some(name);
        self.field = 0;
        if is_header_name(&name) {
            self.buf.push(self.delims.field());
            self.buf.extend_from_slice(&self.delims.encoding_characters());
            self.field = 2;
        }
        self
    }

    /// Appends a whole segment as given (without terminator), e.g. one copied
    /// from a parsed message with the same delimiters.
    pub fn raw_segment(&mut self, raw: &[u8]) -> &mut Self {
        self.close_segment();
        self.buf.extend_from_slice(raw);
        self.buf.push(b'\r');
        self
    }

    /// Moves to field `n` of the open segment, writing the separators before it.
    fn start_field(&mut self, n: usize) -> bool {
        let Some(name) = self.segment else {
            self.fail(WriteError::NoSegment);
            return false;
        };
        let segment = String::from_utf8_lossy(&name).into_owned();
        if n == 0 || (is_header_name(&name) && n <= 2) {
            self.fail(WriteError::InvalidField { segment, field: n });
            return false;
        }
        if n <= self.field {
            self.fail(WriteError::FieldOutOfOrder {
                segment,
                field: n,
                after: self.field,
            });
            return false;
        }
        let sep = self.delims.field();
        self.buf.extend(std::iter::repeat_n(sep, n - self.field));
        self.field = n;
        true
    }

    /// Writes field `n` as one escaped text value.
    pub fn field(&mut self, n: usize, text: impl AsRef<[u8]>) -> &mut Self {
        if self.start_field(n) {
            encode_into(text.as_ref(), &self.delims, &mut self.buf);
        }
        self
    }

    /// Writes field `n` as components, each escaped (`ACK^A01^ACK`).
    pub fn components<T: AsRef<[u8]>>(&mut self, n: usize, components: &[T]) -> &mut Self {
        self.field_with(n, |f| {
            for (i, c) in components.iter().enumerate() {
                if i > 0 {
                    f.component();
                }
                f.text(c);
            }
        })
    }

    /// Writes field `n` exactly as given (already encoded with these delimiters).
    pub fn raw_field(&mut self, n: usize, raw: &[u8]) -> &mut Self {
        if self.start_field(n) {
            self.buf.extend_from_slice(raw);
        }
        self
    }

    /// Writes field `n` through a [`FieldEncoder`], for repetitions and sub-components.
    pub fn field_with(&mut self, n: usize, build: impl FnOnce(&mut FieldEncoder<'_>)) -> &mut Self {
        if self.start_field(n) {
            build(&mut FieldEncoder {
                buf: &mut self.buf,
                delims: self.delims,
            });
        }
        self
    }

    /// The message bytes, every segment ended by CR; or the first misuse.
    pub fn finish(mut self) -> Result<Vec<u8>, WriteError> {
        self.close_segment();
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.buf),
        }
    }
}

/// Writes the inside of one field: text (escaped) and separators.
#[derive(Debug)]
pub struct FieldEncoder<'w> {
    buf: &'w mut Vec<u8>,
    delims: Delimiters,
}

impl FieldEncoder<'_> {
    /// Appends escaped text.
    pub fn text(&mut self, text: impl AsRef<[u8]>) -> &mut Self {
        encode_into(text.as_ref(), &self.delims, self.buf);
        self
    }

    /// Appends bytes as they are (already encoded).
    pub fn raw(&mut self, raw: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(raw);
        self
    }

    /// Starts the next repetition.
    pub fn repetition(&mut self) -> &mut Self {
        self.buf.push(self.delims.repetition());
        self
    }

    /// Starts the next component.
    pub fn component(&mut self) -> &mut Self {
        self.buf.push(self.delims.component());
        self
    }

    /// Starts the next sub-component.
    pub fn subcomponent(&mut self) -> &mut Self {
        self.buf.push(self.delims.subcomponent());
        self
    }
}
