//! Escape sequences: decoding table, encoding, and the decode(encode(x)) == x property.

use std::borrow::Cow;

use crate::hl7::parser::{decode, encode, Delimiters};

fn dec(raw: &[u8]) -> Vec<u8> {
    decode(raw, &Delimiters::STANDARD).into_owned()
}

#[test]
fn decodes_the_standard_sequences() {
    assert_eq!(dec(b"a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"), b"a|b^c&d~e\\f");
    assert_eq!(dec(b"\\X0D0A\\"), b"\r\n");
    assert_eq!(dec(b"x\\X41bc\\y"), b"xA\xbcy");
    assert_eq!(dec(b"line1\\.br\\line2"), b"line1\nline2");
    assert_eq!(dec(b"\\H\\bold\\N\\ text"), b"bold text", "highlighting is dropped");
    assert_eq!(dec(b"\\F\\\\F\\"), b"||", "adjacent sequences");
}

#[test]
fn unknown_or_broken_sequences_are_kept_verbatim() {
    for raw in [
        &b"\\Z12\\"[..],
        b"\\C2842\\",
        b"\\.sp2\\",
        b"abc\\F",
        b"trailing\\",
        b"\\X4\\",
        b"\\X4G\\",
        b"\\X\\",
        b"\\x41\\",
        b"\\\\",
        b"\\P\\",
        b"\\FF\\",
    ] {
        assert_eq!(dec(raw), raw, "{}", String::from_utf8_lossy(raw));
    }
    assert_eq!(dec(b"a\\Z1\\b\\F\\c"), b"a\\Z1\\b|c");
}

#[test]
fn decode_borrows_without_escapes() {
    assert!(matches!(
        decode(b"plain value", &Delimiters::STANDARD),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        encode(b"plain value", &Delimiters::STANDARD),
        Cow::Borrowed(_)
    ));
}

#[test]
fn encodes_delimiters_and_line_breaks() {
    let enc = encode(b"a|b^c&d~e\\f\rg\nh", &Delimiters::STANDARD);
    assert_eq!(enc.as_ref(), b"a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\g\\X0A\\h");
    let custom = Delimiters::new(b'#', b"$*@!%").unwrap();
    assert_eq!(encode(b"#$*@!%|^", &custom).as_ref(), b"@F@@S@@R@@E@@T@@P@|^");
    assert_eq!(decode(b"@F@@S@@R@@E@@T@@P@|^", &custom).as_ref(), b"#$*@!%|^");
}

#[test]
fn decode_of_encode_is_identity() {
    let sets = [
        Delimiters::STANDARD,
        Delimiters::new(b'#', b"$*@!").unwrap(),
        Delimiters::new(b'|', b"^~\\&#").unwrap(),
        Delimiters::new(0xfe, b"\x01\x02\x03\x04\x05").unwrap(),
    ];
    // Every string of length <= 3 over an alphabet holding all the special bytes.
    let alphabet: Vec<u8> = b"|^~\\&#$*@!\r\nXF.a\x01\x02\x03\x04\x05\xfe\xff".to_vec();
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
    for len in 1..=3 {
        let mut idx = vec![0usize; len];
        loop {
            inputs.push(idx.iter().map(|&i| alphabet[i]).collect());
            let mut k = 0;
            while k < len {
                idx[k] += 1;
                if idx[k] < alphabet.len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
            if k == len {
                break;
            }
        }
    }
    assert!(inputs.len() > 10_000);
    for d in &sets {
        for x in &inputs {
            let e = encode(x, d);
            assert!(
                !e.contains(&b'\r') && !e.contains(&b'\n'),
                "no line breaks in an encoded value"
            );
            assert_eq!(decode(&e, d).as_ref(), x.as_slice(), "{x:?}");
        }
    }
}

#[test]
fn encode_of_canonical_decode_is_identity() {
    for raw in [
        &b"a\\F\\b\\S\\c"[..],
        b"\\E\\\\T\\\\R\\",
        b"\\X0D\\\\X0A\\",
        b"no escapes",
    ] {
        let d = Delimiters::STANDARD;
        assert_eq!(encode(&decode(raw, &d), &d).as_ref(), raw);
    }
}
