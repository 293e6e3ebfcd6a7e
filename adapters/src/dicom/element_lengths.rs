//! A walk over a data set's element headers, before dicom-rs reads it: every
//! defined length must fit in the bytes left in its container, and sequences
//! may nest only so deep.
//!
//! Why: dicom-parser allocates (and zero-fills) a value's declared length
//! before reading it, so a 16-byte data set declaring a 4 GiB element made
//! the process take 4 GiB; and nested sequences are read recursively, so deep
//! nesting could overflow the stack. Checked here, each allocation is bounded
//! by the bytes actually received. The walk reads headers only (no values)
//! and never allocates. Where it cannot read a header (the bytes end inside
//! one) it stops and leaves the error to the parser, which then fails on the
//! same short read without a large allocation.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

/// Deepest nesting of sequences accepted (real objects stay well under 10).
pub const MAX_DEPTH: usize = 32;

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: u16 = 0xE000;
const ITEM_END: u16 = 0xE00D;
const SEQUENCE_END: u16 = 0xE0DD;

/// How the bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// Explicit VR (else implicit).
    pub explicit_vr: bool,
    /// Big endian (else little).
    pub big_endian: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Holds items, each a nested data set.
    Sequence,
    /// Holds elements.
    Item,
    /// Encapsulated pixel data: holds fragment items (opaque bytes).
    Fragments,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: Kind,
    /// Where a defined-length container ends.
    end: Option<usize>,
    /// The tightest end of this container and all around it.
    limit: usize,
    /// Explicit VR inside (a UN of undefined length holds implicit VR items).
    explicit_vr: bool,
}

/// Ok when every declared length fits; else what is wrong and where.
pub fn check(bytes: &[u8], encoding: Encoding) -> Result<(), String> {
    let u16_at = |p: usize| {
        let b = [bytes[p], bytes[p + 1]];
        if encoding.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |p: usize| {
        let b = [bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3]];
        if encoding.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let top = Frame {
        kind: Kind::Item,
        end: None,
        limit: bytes.len(),
        explicit_vr: encoding.explicit_vr,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = 0usize;
    loop {
        // Close the defined-length containers that end here.
        while let Some(f) = stack.last() {
            if f.end == Some(pos) {
                stack.pop();
            } else {
                break;
            }
        }
        let frame = stack.last().copied().unwrap_or(top);
        if pos > frame.limit {
            return Err(format!("an element at byte {pos} runs past its container"));
        }
        if bytes.len() - pos < 8 {
            return Ok(());
        }
        // A header must end inside its item or sequence: the parser would otherwise
        // close the container mid-header and read on out of step.
        let header_end = |size: usize| {
            if pos + size > frame.limit {
                Err(format!(
                    "an element header at byte {pos} crosses the end of its container"
                ))
            } else {
                Ok(())
            }
        };
        header_end(8)?;
        let (group, element) = (u16_at(pos), u16_at(pos + 2));
        if group == 0xFFFE && matches!(element, ITEM | ITEM_END | SEQUENCE_END) {
            // Items and delimiters: no VR, a 4-byte length, in every transfer syntax.
            let len = u32_at(pos + 4);
            pos += 8;
            match (element, frame.kind) {
                (ITEM, Kind::Fragments) => {
                    pos = skip(pos, len, frame.limit, "fragment")?;
                }
                (ITEM, Kind::Sequence) => {
                    let end = end_of(pos, len, frame.limit, "item")?;
                    push(&mut stack, Kind::Item, end, frame, frame.explicit_vr)?;
                }
                (ITEM_END, Kind::Item) if frame.end.is_none() && !stack.is_empty() => {
                    stack.pop();
                }
                (SEQUENCE_END, Kind::Sequence | Kind::Fragments) if frame.end.is_none() => {
                    stack.pop();
                }
                // Outside any sequence an item or delimiter has no meaning, and the parser's
                // reading of it drifts from this walk: refused.
                _ if stack.is_empty() => {
                    return Err(format!("an item or delimiter at byte {} outside any sequence", pos - 8));
                }
                // A stray one inside a sequence: whatever the parser makes of it, its length
                // must fit too (it may read it as a value).
                _ => {
                    end_of(pos, len, frame.limit, "stray item or delimiter")?;
                }
            }
            continue;
        }
        let tag = Tag(group, element);
        let (vr, len, header) = if frame.explicit_vr {
            let vr = VR::from_binary([bytes[pos + 4], bytes[pos + 5]]).unwrap_or(VR::UN);
            if has_long_length(vr) {
                if bytes.len() - pos < 12 {
                    return Ok(());
                }
                header_end(12)?;
                (vr, u32_at(pos + 8), 12)
            } else {
                (vr, u32::from(u16_at(pos + 6)), 8)
            }
        } else {
            (dictionary_vr(tag), u32_at(pos + 4), 8)
        };
        pos += header;
        if len == UNDEFINED {
            if tag == Tag(0x7FE0, 0x0010) {
                push(&mut stack, Kind::Fragments, None, frame, frame.explicit_vr)?;
            } else {
                // SQ, or a UN holding an implicit VR sequence (PS3.5 6.2.2).
                let explicit = frame.explicit_vr && vr != VR::UN;
                push(&mut stack, Kind::Sequence, None, frame, explicit)?;
            }
        } else if vr == VR::SQ {
            let end = end_of(pos, len, frame.limit, "sequence")?;
            push(&mut stack, Kind::Sequence, end, frame, frame.explicit_vr)?;
        } else {
            // dicom-parser reads binary values in whole units and leaves the rest of the
            // declared length unread, which puts every later header out of step.
            let unit = value_unit(vr);
            if !(len as usize).is_multiple_of(unit) {
                return Err(format!(
                    "a {vr:?} value at byte {pos} is {len} bytes, not a multiple of {unit}"
                ));
            }
            pos = skip(pos, len, frame.limit, "value")?;
        }
    }
}

/// The size of one binary value of `vr` (1 for text and bytes).
fn value_unit(vr: VR) -> usize {
    use VR::*;
    match vr {
        US | SS | OW => 2,
        UL | SL | FL | AT | OF | OL => 4,
        FD | SV | UV | OD | OV => 8,
        _ => 1,
    }
}

/// Ok when `bytes` is a plausible command set: group 0000 elements only (no
/// sequences, no undefined lengths), each within the bytes and of whole units.
pub fn check_command(bytes: &[u8]) -> Result<(), String> {
    let mut pos = 0usize;
    while bytes.len() - pos >= 8 {
        let group = u16::from_le_bytes([bytes[pos], bytes[pos + 1]]);
        let element = u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]);
        let len = u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]);
        if group != 0x0000 {
            return Err(format!("element ({group:04X},{element:04X}) in a command set"));
        }
        pos += 8;
        let vr = dictionary_vr(Tag(group, element));
        if !(len as usize).is_multiple_of(value_unit(vr)) {
            return Err(format!("a {vr:?} value at byte {pos} is {len} bytes"));
        }
        pos = end_of(pos, len, bytes.len(), "command value")?.ok_or("undefined length in a command set")?;
    }
    Ok(())
}

/// VRs with a reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2).
fn has_long_length(vr: VR) -> bool {
    use VR::*;
    matches!(vr, OB | OD | OF | OL | OV | OW | SQ | SV | UC | UN | UR | UT | UV)
}

/// The VR an implicit VR reader gives `tag`: the dictionary's, UN when unknown.
fn dictionary_vr(tag: Tag) -> VR {
    // US-or-SS and OB-or-OW relax to US and OW: the stricter unit is checked.
    StandardDataDictionary.by_tag(tag).map_or(VR::UN, |e| e.vr().relaxed())
}

fn skip(pos: usize, len: u32, limit: usize, what: &str) -> Result<usize, String> {
    end_of(pos, len, limit, what).map(|end| end.unwrap_or(pos))
}

/// The end of a value of `len` bytes at `pos` (None for undefined), checked against `limit`.
fn end_of(pos: usize, len: u32, limit: usize, what: &str) -> Result<Option<usize>, String> {
    if len == UNDEFINED {
        return Ok(None);
    }
    let end = pos.saturating_add(len as usize);
    if end > limit {
        return Err(format!(
            "a {what} at byte {pos} declares {len} bytes; only {} are left",
            limit.saturating_sub(pos)
        ));
    }
    Ok(Some(end))
}

fn push(
    stack: &mut Vec<Frame>,
    kind: Kind,
    end: Option<usize>,
    parent: Frame,
    explicit_vr: bool,
) -> Result<(), String> {
    if stack.len() >= MAX_DEPTH * 2 {
        return Err(format!("sequences nested deeper than {MAX_DEPTH}"));
    }
    stack.push(Frame {
        kind,
        end,
        limit: end.unwrap_or(parent.limit).min(parent.limit),
        explicit_vr,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPLICIT: Encoding = Encoding {
        explicit_vr: true,
        big_endian: false,
    };
    const IMPLICIT: Encoding = Encoding {
        explicit_vr: false,
        big_endian: false,
    };

    #[test]
    fn a_length_past_the_end_is_refused_before_any_allocation() {
        let mut explicit = vec![0x40, 0x00, 0x60, 0xA1, b'U', b'T', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF];
        explicit.extend_from_slice(b"abcd");
        assert!(check(&explicit, EXPLICIT).is_err());
        let mut implicit = vec![0x10, 0x00, 0x10, 0x00, 0xF0, 0xFF, 0xFF, 0x7F];
        implicit.extend_from_slice(b"abcd");
        assert!(check(&implicit, IMPLICIT).is_err());
        // A short header is left to the parser.
        assert!(check(&[0x10, 0x00, 0x10], EXPLICIT).is_ok());
    }

    #[test]
    fn nested_sequences_and_fragments_pass_and_deep_nesting_does_not() {
        // (0008,1110) SQ undefined { item undefined { (0008,1155) UI "1.2" } item-end } seq-end
        let mut v = vec![0x08, 0x00, 0x10, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        v.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        v.extend_from_slice(&[0x08, 0x00, 0x55, 0x11, b'U', b'I', 4, 0]);
        v.extend_from_slice(b"1.2\0");
        v.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        v.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        // Encapsulated pixel data: an empty offset table, one 4-byte fragment whose bytes look like a header.
        v.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        v.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        v.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        v.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        assert_eq!(check(&v, EXPLICIT), Ok(()));

        let mut deep = Vec::new();
        for _ in 0..(MAX_DEPTH + 1) {
            deep.extend_from_slice(&[0x08, 0x00, 0x10, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
            deep.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        assert!(check(&deep, EXPLICIT).unwrap_err().contains("deeper"));
    }

    #[test]
    fn other_elements_of_group_fffe_and_stray_items_are_bounded_too() {
        // Found by the fuzzer: (FFFE,03FF) declaring 0xFFFFFF00 bytes, read as a plain value.
        let v = [0xFE, 0xFF, 0xFF, 0x03, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(check(&v, IMPLICIT).is_err());
        let v = [0xFE, 0xFF, 0xFF, 0x03, b'O', b'B', 0, 0, 0x00, 0xFF, 0xFF, 0xFF, 1, 2];
        assert!(check(&v, EXPLICIT).is_err());
        // An item outside any sequence, declaring more than is left.
        let v = [0xFE, 0xFF, 0x00, 0xE0, 0x00, 0x00, 0x00, 0x10, 1, 2, 3, 4];
        assert!(check(&v, EXPLICIT).is_err());
    }

    #[test]
    fn a_binary_value_of_a_partial_unit_is_refused() {
        // Found by the fuzzer: a group length (UL) of 1 byte; the parser reads no UL and
        // takes the unread byte as the start of the next header.
        let v = [
            0x2A, 0x78, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xAA, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert!(check(&v, IMPLICIT).unwrap_err().contains("multiple of 4"));
        let v = [0x28, 0x00, 0x10, 0x00, b'U', b'S', 3, 0, 1, 2, 3, 0];
        assert!(check(&v, EXPLICIT).is_err());
        let v = [0x28, 0x00, 0x10, 0x00, b'U', b'S', 2, 0, 1, 2];
        assert_eq!(check(&v, EXPLICIT), Ok(()));
    }

    #[test]
    fn a_header_crossing_the_end_of_its_item_is_refused() {
        // Found by the fuzzer: an item of 18 bytes whose second element header starts at
        // byte 16 of it; the parser closed the item there and read a 3.8 GB length.
        let mut v = vec![0x08, 0x00, 0x10, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        v.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 18, 0, 0, 0]);
        v.extend_from_slice(&[0x08, 0x00, 0x55, 0x11, b'U', b'I', 8, 0]);
        v.extend_from_slice(b"1.2.3.4\0");
        v.extend_from_slice(&[0x08, 0x00, 0x50, 0x00, b'S', b'H', 0, 0xE5, 0, 0]);
        assert!(check(&v, EXPLICIT).unwrap_err().contains("crosses"));
    }

    #[test]
    fn command_sets_are_flat_group_0000_elements() {
        let ok = [0x00, 0x00, 0x00, 0x01, 2, 0, 0, 0, 0x01, 0x00];
        assert_eq!(check_command(&ok), Ok(()));
        let other_group = [0x08, 0x00, 0x00, 0x01, 2, 0, 0, 0, 0x01, 0x00];
        assert!(check_command(&other_group).is_err());
        let undefined = [0x00, 0x00, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(check_command(&undefined).is_err());
        // Found by the fuzzer: an item outside any sequence sent the parser out of step.
        let stray = [0xFE, 0xFF, 0x00, 0xE0, 18, 0, 0, 0, 0, 0, 0x17, 0, 32, 0, 0, 0];
        assert!(check_command(&stray).is_err());
        assert!(check(&stray, IMPLICIT).unwrap_err().contains("outside any sequence"));
    }

    #[test]
    fn an_item_longer_than_its_sequence_is_refused() {
        // SQ of 8 bytes holding an item that claims 100.
        let mut v = vec![0x08, 0x00, 0x10, 0x11, b'S', b'Q', 0, 0, 8, 0, 0, 0];
        v.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 100, 0, 0, 0]);
        v.extend_from_slice(&[0u8; 120]);
        assert!(check(&v, EXPLICIT).is_err());
    }
}
