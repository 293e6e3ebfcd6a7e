//! Writes generated messages to a file, for other tools (python-hl7's `mllp_send`) and for
//! parser benchmarks.

use std::io::{self, Write};

use medbus_adapters::hl7::mllp_codec::{CR, FS, VT};

use super::generate::GeneratedMessage;

/// How messages are laid out in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Framing {
    /// `<VT> message <FS><CR>` per message, as on the wire (`mllp_send FILE`).
    #[default]
    Mllp,
    /// CR-terminated segments, one message after another, a LF between messages
    /// (`mllp_send --loose FILE`, and most HL7 file readers).
    Cr,
}

/// Writes each message to `out` in `framing`; returns how many bytes were written.
pub fn write<W: Write>(
    out: &mut W,
    messages: impl IntoIterator<Item = GeneratedMessage>,
    framing: Framing,
) -> io::Result<u64> {
    let mut written = 0u64;
    for m in messages {
        match framing {
            Framing::Mllp => {
                out.write_all(&[VT])?;
                out.write_all(&m.payload)?;
                out.write_all(&[FS, CR])?;
                written += m.payload.len() as u64 + 3;
            }
            Framing::Cr => {
                out.write_all(&m.payload)?;
                // A LF between messages keeps the file readable in a terminal; HL7 readers
                // treat it as an empty segment boundary.
                out.write_all(b"\n")?;
                written += m.payload.len() as u64 + 1;
            }
        }
    }
    out.flush()?;
    Ok(written)
}
