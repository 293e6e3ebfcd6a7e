//! Malformed messages: the kinds of bad input a listener must answer with AE/AR (or a closed
//! connection) without falling over. Each is made from a well-formed message so that it is
//! otherwise realistic.

use super::rng::Rng;

/// How a malformed message is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformation {
    /// The MSH segment is missing; the message starts with EVN.
    NoMsh,
    /// MSH-1/MSH-2 are not a legal delimiter set (repeated, missing or absent).
    BadDelimiters,
    /// The message stops inside MSH, before MSH-12 (version), in a complete MLLP frame.
    Truncated,
    /// Random bytes, not HL7 at all (never VT or FS, which MLLP cannot carry).
    BinaryJunk,
}

impl Malformation {
    /// All kinds, in the order they are drawn from.
    pub const ALL: [Malformation; 4] = [
        Malformation::NoMsh,
        Malformation::BadDelimiters,
        Malformation::Truncated,
        Malformation::BinaryJunk,
    ];
}

/// Breaks `message` (a well-formed message starting `MSH|^~\&|`, CR-terminated segments) as
/// `how` says.
pub fn corrupt(how: Malformation, message: &str, rng: &mut Rng) -> Vec<u8> {
    const HEADER: &str = "MSH|^~\\&|";
    let after_header = message.get(HEADER.len()..).unwrap_or_default();
    match how {
        Malformation::NoMsh => match message.split_once('\r') {
            Some((_, rest)) => rest.as_bytes().to_vec(),
            None => b"EVN|A08\r".to_vec(),
        },
        Malformation::BadDelimiters => {
            let bad = match rng.below(3) {
                // Component separator repeated where the repetition separator belongs.
                0 => format!("MSH|^^\\&|{after_header}"),
                // MSH-2 empty: no encoding characters at all.
                1 => format!("MSH||{after_header}"),
                // "MSH" alone on its segment: no field separator.
                _ => match message.split_once('\r') {
                    Some((_, rest)) => format!("MSH\r{rest}"),
                    None => "MSH\r".to_string(),
                },
            };
            bad.into_bytes()
        }
        Malformation::Truncated => {
            // Cut after MSH-2 and before MSH-12 starts, so the header lacks required fields.
            let msh12 = message
                .match_indices('|')
                .nth(10)
                .map_or(message.len(), |(i, _)| i + 1)
                .max(HEADER.len() + 1);
            let cut = rng.range(HEADER.len() as u64, msh12 as u64 - 1) as usize;
            message.as_bytes()[..cut.min(message.len())].to_vec()
        }
        Malformation::BinaryJunk => {
            let len = rng.range(16, 256) as usize;
            let mut out = Vec::with_capacity(len);
            while out.len() < len {
                let b = rng.below(256) as u8;
                // VT and FS would break the MLLP framing itself, and an "MSH" start would
                // make it look like HL7; neither is what this case is for.
                if b != 0x0B && b != 0x1C && !(out.is_empty() && b == b'M') {
                    out.push(b);
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str =
        "MSH|^~\\&|REG|GENERAL_HOSP|MEDBUS|MEDBUS_GH|20240301080000||ADT^A08^ADT_A01|X1|P|2.5\rEVN|A08\rPID|1\r";

    #[test]
    fn every_kind_is_broken_in_its_way() {
        let mut rng = Rng::new(5);
        for _ in 0..200 {
            assert!(corrupt(Malformation::NoMsh, MSG, &mut rng).starts_with(b"EVN|"));
            let bad = corrupt(Malformation::BadDelimiters, MSG, &mut rng);
            assert!(bad.starts_with(b"MSH") && !bad.starts_with(b"MSH|^~\\&|"));
            let t = corrupt(Malformation::Truncated, MSG, &mut rng);
            assert!(t.len() >= 9 && !t.contains(&b'\r') && t.iter().filter(|b| **b == b'|').count() < 11);
            let j = corrupt(Malformation::BinaryJunk, MSG, &mut rng);
            assert!(!j.contains(&0x0B) && !j.contains(&0x1C) && !j.starts_with(b"MSH"));
        }
    }
}
