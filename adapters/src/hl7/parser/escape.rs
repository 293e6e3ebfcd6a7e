//! Escape sequences: decoded when a value is read, encoded when one is written.
//!
//! Decoding (`\` stands for the message's escape character):
//!
//! | sequence | becomes |
//! |---|---|
//! | `\F\` `\S\` `\T\` `\R\` `\E\` | the field, component, sub-component, repetition, escape character |
//! | `\P\` | the truncation character (2.7+), when MSH-2 declares one |
//! | `\Xhh…\` | the bytes given in hex (an even number of digits) |
//! | `\.br\` | a line feed (`\n`) |
//! | `\H\` `\N\` | nothing: highlighting has no meaning in a decoded value, so it is dropped |
//! | anything else (`\Cxxyy\`, `\Zxx\`, `\.sp\`, an unclosed `\`) | kept verbatim |
//!
//! Encoding escapes every delimiter character (and the truncation character), and
//! writes CR and LF as `\X0D\` and `\X0A\`: hex is valid in every text data type,
//! whereas `\.br\` is only defined for FT. So `decode(encode(x)) == x` for any bytes.

use std::borrow::Cow;

use memchr::memchr;

use super::delimiters::Delimiters;

/// Decodes the escape sequences in one value (a leaf: component or sub-component).
/// Borrows when there is nothing to decode, which is the common case.
pub fn decode<'a>(raw: &'a [u8], delims: &Delimiters) -> Cow<'a, [u8]> {
    let esc = delims.escape();
    let Some(first) = memchr(esc, raw) else {
        return Cow::Borrowed(raw);
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut rest = &raw[first..];
    // Invariant: `rest` is empty or starts with the escape character.
    while let Some((_, after_open)) = rest.split_first() {
        let Some(close) = memchr(esc, after_open) else {
            out.extend_from_slice(rest);
            break;
        };
        let body = &after_open[..close];
        let after = &after_open[close + 1..];
        if !decode_sequence(body, delims, &mut out) {
            out.extend_from_slice(&rest[..close + 2]);
        }
        match memchr(esc, after) {
            Some(next) => {
                out.extend_from_slice(&after[..next]);
                rest = &after[next..];
            }
            None => {
                out.extend_from_slice(after);
                break;
            }
        }
    }
    Cow::Owned(out)
}

/// Appends what one escape sequence stands for; false when the sequence is not
/// one we decode, so that the caller keeps it verbatim.
fn decode_sequence(body: &[u8], d: &Delimiters, out: &mut Vec<u8>) -> bool {
    match body {
        b"F" => out.push(d.field()),
        b"S" => out.push(d.component()),
        b"T" => out.push(d.subcomponent()),
        b"R" => out.push(d.repetition()),
        b"E" => out.push(d.escape()),
        b"P" => match d.truncation() {
            Some(t) => out.push(t),
            None => return false,
        },
        b"H" | b"N" => {}
        b".br" => out.push(b'\n'),
        [b'X', hex @ ..] if !hex.is_empty() && hex.len() % 2 == 0 && hex.iter().all(u8::is_ascii_hexdigit) => {
            out.extend(
                hex.chunks_exact(2)
                    .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1])),
            );
        }
        _ => return false,
    }
    true
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// Appends `value` to `out` with every delimiter, the escape character, the
/// truncation character, CR and LF escaped.
pub fn encode_into(value: &[u8], delims: &Delimiters, out: &mut Vec<u8>) {
    let esc = delims.escape();
    let mut start = 0;
    for (i, &b) in value.iter().enumerate() {
        let code: &[u8] = if b == delims.field() {
            b"F"
        } else if b == delims.component() {
            b"S"
        } else if b == delims.subcomponent() {
            b"T"
        } else if b == delims.repetition() {
            b"R"
        } else if b == esc {
            b"E"
        } else if Some(b) == delims.truncation() {
            b"P"
        } else if b == b'\r' {
            b"X0D"
        } else if b == b'\n' {
            b"X0A"
        } else {
            continue;
        };
        out.extend_from_slice(&value[start..i]);
        out.push(esc);
        out.extend_from_slice(code);
        out.push(esc);
        start = i + 1;
    }
    out.extend_from_slice(&value[start..]);
}

/// [`encode_into`] into a new buffer; borrows when nothing needs escaping.
pub fn encode<'a>(value: &'a [u8], delims: &Delimiters) -> Cow<'a, [u8]> {
    let special = |b: &u8| {
        let b = *b;
        b == delims.field()
            || b == delims.component()
            || b == delims.subcomponent()
            || b == delims.repetition()
            || b == delims.escape()
            || Some(b) == delims.truncation()
            || b == b'\r'
            || b == b'\n'
    };
    if !value.iter().any(special) {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len() + 8);
    encode_into(value, delims, &mut out);
    Cow::Owned(out)
}
