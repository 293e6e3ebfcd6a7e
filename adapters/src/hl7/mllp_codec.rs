//! MLLP framing (`<VT> payload <FS><CR>`, HL7 MLLP release 2) as a `tokio_util` codec.
//!
//! # Why our own codec and not the `hl7-mllp-codec` crate
//!
//! We checked hl7-mllp-codec 0.4.0 (the latest, 2022) in a scratch project before
//! writing this; observed on its `Decoder`:
//!
//! - Two frames in one read, `b"\x0bMSH|A\r\x1c\r\x0bMSH|B\r\x1c\r"`, come out as ONE item
//!   `b"MSH|A\r\x1c\r\x0bMSH|B\r"` (default "strict" mode searches the footer from the end of
//!   the buffer). Its `noncompliance` feature gives two items.
//! - It panics on peer input (both modes) when an FS CR comes before the first VT in a read:
//!   `b"MSH|A\r\x1c\r\x0bMSH|B\r"` and `b"\x1c\r\x0bMSH|B"` → "cannot advance past
//!   `remaining`" in `BytesMut::advance`.
//! - No maximum frame length: 20 MiB after a VT and no end, in 64 KiB reads, is all
//!   `Ok(None)` while RSS grows by 20 MiB; it took 3.8 s because every read rescans the
//!   whole buffer (quadratic). 20 MiB without any VT is buffered too.
//! - Bytes before the start byte are dropped silently: `b"JUNK\x0bMSH|A\r\x1c\r"` gives one
//!   item `b"MSH|A\r"` and nothing else.
//! - It moves bytes into a private buffer, so `FramedRead` sees an empty buffer at EOF and a
//!   truncated frame (`b"\x0bMSH|A\rPID|1"`, then EOF) vanishes without an error.
//!
//! # Behaviour
//!
//! - Each frame is a [`MllpItem::Frame`] sharing the read buffer (no copy). Several frames in
//!   one read come out in order; a frame split over many reads is found without rescanning.
//! - Bytes outside a frame are skipped and reported as [`MllpItem::Junk`] with their count,
//!   so the listener can log and count them with its channel and peer (the codec has
//!   neither). A trailing LF after `<FS><CR>` is one junk byte.
//! - A VT inside a frame means the sender abandoned that frame and started again: the
//!   abandoned bytes (with their VT) are reported as junk and the new frame is read.
//! - FS ends the frame whether or not CR follows: MLLP forbids FS inside content, and some
//!   senders omit the CR. The frame is returned at once (the sender may be waiting for
//!   its ACK); a CR that arrives next is taken as the rest of that trailer; any other byte
//!   is read as the start of the next frame or junk.
//! - A payload longer than the limit gives [`MllpError::FrameTooLarge`] as soon as limit + 1
//!   payload bytes are seen, so at most the limit plus one read is ever buffered.
//! - End of stream inside a frame gives [`MllpError::Truncated`].
//!
//! After an error the caller should close the connection; if it carries on, the partial
//! frame is gone and whatever follows is read as junk until the next VT.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Start of block (vertical tab).
pub const VT: u8 = 0x0B;
/// End of block (file separator).
pub const FS: u8 = 0x1C;
/// Carriage return, sent after [`FS`].
pub const CR: u8 = 0x0D;
/// Default largest payload accepted: 1 MiB, far above ordinary HL7 v2 messages.
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;

/// One decoded unit of an MLLP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MllpItem {
    /// The payload of one frame, without VT, FS and CR.
    Frame(Bytes),
    /// `len` bytes outside any frame were skipped (garbage between frames or an abandoned frame).
    Junk {
        /// Number of bytes skipped.
        len: usize,
    },
}

/// What can go wrong while framing. Both input errors are the peer's fault: close the connection.
#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    /// A payload grew past the configured limit.
    #[error("MLLP frame larger than the limit of {limit} bytes")]
    FrameTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside an MLLP frame after {got} payload bytes")]
    Truncated {
        /// Payload bytes received before the end.
        got: usize,
    },
    /// A payload to encode contains VT or FS, which would break the framing on the other side.
    #[error("payload byte {offset} is 0x{byte:02X}, not allowed inside an MLLP frame")]
    ForbiddenByte {
        /// The offending byte.
        byte: u8,
        /// Its offset in the payload.
        offset: usize,
    },
    /// Reading or writing the underlying stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside a frame. `after_fs`: the last frame's FS was the last byte read, so its CR may come next.
    Between { after_fs: bool },
    /// `src[0]` is this frame's VT and `src[1..=scanned]` holds neither FS nor VT.
    InFrame { scanned: usize },
}

/// MLLP decoder and encoder with a payload size limit; see the module docs.
#[derive(Debug, Clone)]
pub struct MllpCodec {
    max_frame: usize,
    state: State,
}

impl Default for MllpCodec {
    fn default() -> Self {
        Self::with_max_frame(DEFAULT_MAX_FRAME)
    }
}

impl MllpCodec {
    /// A codec with the [`DEFAULT_MAX_FRAME`] limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// A codec that rejects payloads longer than `max_frame` bytes.
    pub fn with_max_frame(max_frame: usize) -> Self {
        Self {
            max_frame,
            state: State::Between { after_fs: false },
        }
    }

    /// The largest payload this codec accepts, in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl Decoder for MllpCodec {
    type Item = MllpItem;
    type Error = MllpError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<MllpItem>, MllpError> {
        loop {
            match self.state {
                State::Between { after_fs } => {
                    if src.is_empty() {
                        return Ok(None);
                    }
                    self.state = State::Between { after_fs: false };
                    if after_fs && src[0] == CR {
                        src.advance(1);
                        continue;
                    }
                    match memchr::memchr(VT, src) {
                        Some(0) => self.state = State::InFrame { scanned: 0 },
                        // Junk is dropped as it is found, so a stream of it is never buffered.
                        Some(len) => return Ok(Some(skip(src, len))),
                        None => return Ok(Some(skip(src, src.len()))),
                    }
                }
                State::InFrame { scanned } => {
                    // Never look further than limit + 1 payload bytes: that is enough to decide.
                    let window = src.len().saturating_sub(1).min(self.max_frame.saturating_add(1));
                    let Some(unscanned) = src.get(1 + scanned..1 + window) else {
                        // Only if the caller changed the buffer between calls: start afresh.
                        self.state = State::Between { after_fs: false };
                        return Ok(None);
                    };
                    match memchr::memchr2(FS, VT, unscanned) {
                        Some(i) if src[1 + scanned + i] == VT => {
                            self.state = State::Between { after_fs: false };
                            return Ok(Some(skip(src, 1 + scanned + i)));
                        }
                        Some(i) => {
                            src.advance(1);
                            let frame = src.split_to(scanned + i).freeze();
                            src.advance(1);
                            let cr_follows = src.first() == Some(&CR);
                            if cr_follows {
                                src.advance(1);
                            }
                            self.state = State::Between {
                                after_fs: !cr_follows && src.is_empty(),
                            };
                            return Ok(Some(MllpItem::Frame(frame)));
                        }
                        None if window > self.max_frame => {
                            src.advance(1 + window);
                            self.state = State::Between { after_fs: false };
                            return Err(MllpError::FrameTooLarge { limit: self.max_frame });
                        }
                        None => {
                            self.state = State::InFrame { scanned: window };
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<MllpItem>, MllpError> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        match self.state {
            State::InFrame { .. } => {
                let got = src.len().saturating_sub(1);
                src.clear();
                self.state = State::Between { after_fs: false };
                Err(MllpError::Truncated { got })
            }
            State::Between { .. } => Ok(None),
        }
    }
}

/// Drops `len` bytes from the front of `src` and reports them.
fn skip(src: &mut BytesMut, len: usize) -> MllpItem {
    src.advance(len);
    MllpItem::Junk { len }
}

impl Encoder<&[u8]> for MllpCodec {
    type Error = MllpError;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), MllpError> {
        if let Some(offset) = memchr::memchr2(VT, FS, payload) {
            return Err(MllpError::ForbiddenByte {
                byte: payload[offset],
                offset,
            });
        }
        dst.reserve(payload.len() + 3);
        dst.put_u8(VT);
        dst.put_slice(payload);
        dst.put_slice(&[FS, CR]);
        Ok(())
    }
}

impl Encoder<Bytes> for MllpCodec {
    type Error = MllpError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), MllpError> {
        self.encode(&payload[..], dst)
    }
}

#[cfg(test)]
mod tests;
