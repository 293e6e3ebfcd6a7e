//! Fuzz the MLLP framer: arbitrary bytes, in arbitrary reads, through `MllpCodec`.
//!
//! Input layout: byte 0 sets the frame limit (×4, so the limit is hit often), byte 1 seeds
//! the read sizes, the rest is the stream. Checked: no panic; every frame is within the limit
//! and holds no VT or FS; the result does not depend on how the stream is split into reads;
//! frames plus junk never exceed the input; re-encoding the frames and decoding them again
//! gives the same frames and nothing else.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use medbus_adapters::hl7::mllp_codec::{MllpCodec, MllpItem, FS, VT};
use tokio_util::codec::{Decoder, Encoder};

/// Items with adjacent junk merged (junk spanning reads comes in pieces), and the error text.
type Outcome = (Vec<MllpItem>, Option<String>);

/// Decodes `chunks` as `FramedRead` would, stopping at the first error as the listener does.
fn run<'a>(limit: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut codec = MllpCodec::with_max_frame(limit);
    let mut buf = BytesMut::new();
    let mut items: Vec<MllpItem> = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => push(&mut items, item),
                Ok(None) => break,
                Err(e) => return (items, Some(e.to_string())),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(item)) => push(&mut items, item),
            Ok(None) => return (items, None),
            Err(e) => return (items, Some(e.to_string())),
        }
    }
}

fn push(items: &mut Vec<MllpItem>, item: MllpItem) {
    match (items.last_mut(), item) {
        (Some(MllpItem::Junk { len }), MllpItem::Junk { len: more }) => *len += more,
        (_, item) => items.push(item),
    }
}

/// Splits `data` into reads of 1..=max bytes chosen by a xorshift generator seeded from `seed`.
fn split(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let max = u64::from(seed % 64) + 1;
    let mut state = u64::from(seed) | 0x1000;
    let mut rest = data;
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = usize::try_from(state % max + 1).unwrap_or(1).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

fuzz_target!(|data: &[u8]| {
    let Some((&[limit_byte, seed], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let limit = usize::from(limit_byte) * 4;

    let whole = run(limit, [stream]);
    let (items, _) = &whole;
    let mut accounted = 0;
    let mut frames = Vec::new();
    for item in items {
        match item {
            MllpItem::Frame(payload) => {
                assert!(
                    payload.len() <= limit,
                    "frame of {} bytes over limit {limit}",
                    payload.len()
                );
                assert!(
                    memchr::memchr2(VT, FS, payload).is_none(),
                    "framing byte inside a frame"
                );
                accounted += payload.len() + 2;
                frames.push(payload.clone());
            }
            MllpItem::Junk { len } => {
                assert!(*len > 0, "empty junk item");
                accounted += len;
            }
        }
    }
    assert!(
        accounted <= stream.len(),
        "{accounted} bytes reported from {} read",
        stream.len()
    );

    assert_eq!(run(limit, split(stream, seed)), whole, "result depends on read sizes");

    let mut encoded = BytesMut::new();
    let mut codec = MllpCodec::with_max_frame(limit);
    for frame in &frames {
        assert!(
            codec.encode(frame.clone(), &mut encoded).is_ok(),
            "a decoded frame does not encode"
        );
    }
    let again = run(limit, split(&encoded, seed.wrapping_add(1)));
    let expected: Vec<MllpItem> = frames.into_iter().map(MllpItem::Frame).collect();
    assert_eq!(again, (expected, None), "re-encoded frames decode differently");
});
