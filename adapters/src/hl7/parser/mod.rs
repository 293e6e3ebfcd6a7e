//! HL7 v2 parser and writer, zero-copy over the received bytes.
//!
//! HL7 v2 is bytes, not text (MSH-18 may name any charset), so everything here
//! works on `&[u8]`: [`Message::parse`] indexes the segments of a borrowed
//! buffer and every view ([`Segment`], [`Field`], [`Repetition`],
//! [`Component`], [`SubComponent`]) is a slice of it. `raw()` gives the exact
//! bytes; `decoded()` / `text()` decode escape sequences, borrowing unless
//! there is one. Versions 2.3 to 2.8 parse alike: no version-specific
//! structure is needed to read fields.
//!
//! Module map:
//! - `delimiters`: [`Delimiters`] from MSH-1/MSH-2, any legal set;
//! - `message`: [`Message`], segment index (CR, LF or CRLF), lookup, round trip;
//! - `segment`: [`Segment`] and the MSH field numbering quirk;
//! - `views`: [`Field`] → [`Repetition`] → [`Component`] → [`SubComponent`], [`Value`];
//! - `escape`: escape sequence [`decode`] / [`encode`] (table in its docs);
//! - `path`: [`FieldPath`] (`PID-3[2].1`, `OBX(3)-5`);
//! - `header`: MSH helpers ([`MessageType`], [`AckType`], control id, version…);
//! - `batch`: [`Batch`] / [`message_ranges`] for FHS/BHS/BTS/FTS files;
//! - `write`: [`MessageWriter`] for new messages (ACKs) with escaping;
//! - `error`: [`ParseError`] with a [`Location`] (segment, field, byte offset).
//!
//! ```
//! use medbus_adapters::hl7::parser::{Message, MessageWriter};
//!
//! let raw = b"MSH|^~\\&|LAB|H1|MEDBUS|H1|20240101120000||ORU^R01|C42|P|2.5\r\
//!             PID|1||123^^^H1^MR~456^^^H2^MR||DOE^JOHN\r\
//!             OBX|1|NM|2345-7^GLUCOSE^LN||5.5|mmol/L\r\
//!             OBX|2|ST|NOTE^^L||high \\T\\ rising\r";
//! let msg = Message::parse(raw)?;
//! assert_eq!(msg.message_type().unwrap().trigger.as_deref(), Some("R01"));
//! assert_eq!(msg.get("PID-3[2].1")?.unwrap().text(), "456");
//! assert_eq!(msg.get("OBX(2)-5")?.unwrap().text(), "high & rising");
//! assert_eq!(msg.get("ZZZ-1")?, None);
//!
//! let mut ack = MessageWriter::new(msg.delimiters());
//! ack.segment("MSH").field(3, "MEDBUS").components(9, &["ACK", "R01", "ACK"]).field(10, "A1").field(12, "2.5");
//! ack.segment("MSA").field(1, "AA").raw_field(2, msg.control_id().unwrap().raw());
//! assert_eq!(ack.finish()?, b"MSH|^~\\&|MEDBUS||||||ACK^R01^ACK|A1||2.5\rMSA|AA|C42\r");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod delimiters;
mod error;
mod escape;
mod header;
mod message;
mod path;
mod segment;
mod views;
mod write;

#[cfg(test)]
mod tests;

pub use batch::{message_ranges, Batch};
pub use delimiters::Delimiters;
pub use error::{Location, ParseError, PathError, WriteError};
pub use escape::{decode, encode, encode_into};
pub use header::{AckType, MessageType};
pub use message::Message;
pub use path::FieldPath;
pub use segment::{Fields, Segment};
pub use views::{Component, Field, Repetition, SubComponent, Value};
pub use write::{FieldEncoder, MessageWriter};
