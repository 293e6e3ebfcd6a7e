//! UIDs derived from the seed, so that a rerun with the same arguments produces the same
//! instances (a PACS then sees resends, not new images), and a check that a UID is valid.
//!
//! The root is `2.25`, the arc for UIDs made from a 128-bit number (PS3.5 B.2): no
//! organisation root is needed, and `2.25.` plus at most 39 digits stays within 64 characters.

/// A namespace for [`derive()`]: a 64-bit digest of everything that names a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Namespace(u64);

impl Namespace {
    /// The FNV-1a digest of `text` (stable across Rust versions, unlike `DefaultHasher`).
    pub fn of(text: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Namespace(h)
    }

    /// 64 well-mixed bits for (`kind`, `index`) in this namespace.
    pub fn bits(self, kind: u64, index: u64) -> u64 {
        mix(mix(mix(self.0) ^ kind) ^ index)
    }

    /// 128 bits for (`kind`, `index`): two independent 64-bit draws.
    pub fn bits128(self, kind: u64, index: u64) -> u128 {
        (u128::from(self.bits(kind, index)) << 64) | u128::from(self.bits(kind ^ 0x5555_5555_5555_5555, index))
    }
}

/// The SplitMix64 finaliser: every input bit affects every output bit.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `2.25.<n>` for the 128-bit value of (`kind`, `index`) in `ns`. Never `2.25.0`, whose
/// single zero is valid but would be the same for every kind.
pub fn derive(ns: Namespace, kind: u64, index: u64) -> String {
    format!("2.25.{}", ns.bits128(kind, index).max(1))
}

/// True when `uid` is a valid DICOM UID (PS3.5 9.1): at most 64 characters, components of
/// digits separated by single dots, no component empty or starting with 0 unless it is `0`.
pub fn is_valid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid
            .split('.')
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) && (c == "0" || !c.starts_with('0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uids_are_valid_stable_and_distinct() {
        let ns = Namespace::of("seed=1");
        let a = derive(ns, 1, 0);
        assert!(is_valid(&a), "{a}");
        assert_eq!(a, derive(Namespace::of("seed=1"), 1, 0));
        assert_ne!(a, derive(ns, 1, 1));
        assert_ne!(a, derive(ns, 2, 0));
        assert_ne!(a, derive(Namespace::of("seed=2"), 1, 0));
        // The longest possible one still fits.
        assert!(is_valid(&format!("2.25.{}", u128::MAX)));
    }

    #[test]
    fn invalid_uids_are_refused() {
        for bad in ["", "1..2", "1.02", ".1", "1.", "1.2a", &format!("1.{}", "2".repeat(63))] {
            assert!(!is_valid(bad), "{bad:?}");
        }
        assert!(is_valid("1.2.840.10008.5.1.4.1.1.2"));
        assert!(is_valid("1.0.3"));
    }
}
