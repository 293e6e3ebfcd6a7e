use super::*;
use futures::StreamExt;
use tokio_util::codec::FramedRead;

fn frame(payload: &[u8]) -> MllpItem {
    MllpItem::Frame(Bytes::copy_from_slice(payload))
}

/// Feeds `chunks` the way `FramedRead` does: append a read, decode until `None`; at the end
/// `decode_eof` until `None`. Stops at the first error and returns it with the items so far.
fn feed<'a>(codec: &mut MllpCodec, chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<MllpItem>, Option<MllpError>) {
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => return (items, Some(e)),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, None),
            Err(e) => return (items, Some(e)),
        }
    }
}

fn feed_all(input: &[u8]) -> (Vec<MllpItem>, Option<MllpError>) {
    feed(&mut MllpCodec::new(), [input])
}

#[test]
fn one_frame() {
    let (items, err) = feed_all(b"\x0bMSH|A\r\x1c\r");
    assert_eq!(items, [frame(b"MSH|A\r")]);
    assert!(err.is_none());
}

#[test]
fn two_frames_in_one_read_come_out_in_order() {
    // The input hl7-mllp-codec 0.4.0 returns as one item.
    let (items, err) = feed_all(b"\x0bMSH|A\r\x1c\r\x0bMSH|B\r\x1c\r");
    assert_eq!(items, [frame(b"MSH|A\r"), frame(b"MSH|B\r")]);
    assert!(err.is_none());
}

#[test]
fn crates_md_variant_is_junk_then_truncated() {
    // hl7-mllp-codec 0.4.0 panics on this read.
    let (items, err) = feed_all(b"MSH|A\r\x1c\r\x0bMSH|B\r");
    assert_eq!(items, [MllpItem::Junk { len: 8 }]);
    assert!(matches!(err, Some(MllpError::Truncated { got: 6 })), "{err:?}");
}

#[test]
fn frame_split_byte_by_byte() {
    let input = b"\x0bMSH|A\r\x1c\r\x0bMSH|B\r\x1c\r";
    let (items, err) = feed(&mut MllpCodec::new(), input.chunks(1));
    assert_eq!(items, [frame(b"MSH|A\r"), frame(b"MSH|B\r")]);
    assert!(err.is_none());
}

#[test]
fn junk_before_start_byte_is_reported() {
    let (items, err) = feed_all(b"JUNK\x0bMSH|A\r\x1c\r\n\n\x0bMSH|B\r\x1c\r");
    assert_eq!(
        items,
        [
            MllpItem::Junk { len: 4 },
            frame(b"MSH|A\r"),
            MllpItem::Junk { len: 2 },
            frame(b"MSH|B\r")
        ]
    );
    assert!(err.is_none());
}

#[test]
fn junk_without_start_byte_is_not_buffered() {
    let mut codec = MllpCodec::new();
    let chunk = vec![b'x'; 64 * 1024];
    let mut buf = BytesMut::new();
    for _ in 0..320 {
        buf.extend_from_slice(&chunk);
        assert_eq!(
            codec.decode(&mut buf).ok().flatten(),
            Some(MllpItem::Junk { len: chunk.len() })
        );
        assert!(buf.is_empty());
    }
}

#[test]
fn frame_at_the_limit_is_accepted_one_more_byte_is_not() {
    let (items, err) = feed(&mut MllpCodec::with_max_frame(4), [&b"\x0bABCD\x1c\r"[..]]);
    assert_eq!(items, [frame(b"ABCD")]);
    assert!(err.is_none());
    let (items, err) = feed(&mut MllpCodec::with_max_frame(4), [&b"\x0bABCDE\x1c\r"[..]]);
    assert!(items.is_empty());
    assert!(matches!(err, Some(MllpError::FrameTooLarge { limit: 4 })), "{err:?}");
}

#[test]
fn oversized_frame_fails_early_without_unbounded_buffering() {
    // 20 MiB after a VT and never an FS, in 64 KiB reads, against the default 1 MiB limit.
    let mut codec = MllpCodec::new();
    let chunk = vec![b'x'; 64 * 1024];
    let mut buf = BytesMut::from(&[VT][..]);
    let mut fed = 1;
    let result = loop {
        assert!(fed < 20 * 1024 * 1024, "no error after 20 MiB");
        buf.extend_from_slice(&chunk);
        fed += chunk.len();
        assert!(buf.len() <= DEFAULT_MAX_FRAME + 1 + chunk.len());
        match codec.decode(&mut buf) {
            Ok(None) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(
            result,
            Err(MllpError::FrameTooLarge {
                limit: DEFAULT_MAX_FRAME
            })
        ),
        "{result:?}"
    );
    assert!(fed <= DEFAULT_MAX_FRAME + 2 + chunk.len(), "fed {fed}");
}

#[test]
fn fs_without_cr_ends_the_frame() {
    let (items, err) = feed_all(b"\x0bA\x1cX\x0bB\x1c\x0bC\x1c\r");
    assert_eq!(
        items,
        [frame(b"A"), MllpItem::Junk { len: 1 }, frame(b"B"), frame(b"C")]
    );
    assert!(err.is_none());
}

#[test]
fn cr_in_the_read_after_fs_completes_the_trailer() {
    // The frame is returned before its CR arrives: a sender may wait for the ACK after FS.
    let mut codec = MllpCodec::new();
    let mut buf = BytesMut::from(&b"\x0bA\x1c"[..]);
    assert_eq!(codec.decode(&mut buf).ok().flatten(), Some(frame(b"A")));
    buf.extend_from_slice(b"\r\x0bB\x1c");
    assert_eq!(codec.decode(&mut buf).ok().flatten(), Some(frame(b"B")));
    buf.extend_from_slice(b"\n");
    assert_eq!(codec.decode(&mut buf).ok().flatten(), Some(MllpItem::Junk { len: 1 }));
    assert!(matches!(codec.decode_eof(&mut buf), Ok(None)));
}

#[test]
fn start_byte_inside_a_frame_abandons_it() {
    let (items, err) = feed_all(b"\x0bMSH|partial\x0bMSH|B\r\x1c\r");
    assert_eq!(items, [MllpItem::Junk { len: 12 }, frame(b"MSH|B\r")]);
    assert!(err.is_none());
}

#[test]
fn end_of_stream() {
    assert!(feed_all(b"").0.is_empty());
    let (items, err) = feed_all(b"\x0bMSH|A\rPID|1");
    assert!(items.is_empty());
    assert!(matches!(err, Some(MllpError::Truncated { got: 11 })), "{err:?}");
    let (_, err) = feed_all(b"\x0b");
    assert!(matches!(err, Some(MllpError::Truncated { got: 0 })), "{err:?}");
    let (items, err) = feed_all(b"\x0bA\x1c\rtrailing");
    assert_eq!(items, [frame(b"A"), MllpItem::Junk { len: 8 }]);
    assert!(err.is_none());
}

#[test]
fn empty_frame_is_a_frame() {
    assert_eq!(feed_all(b"\x0b\x1c\r").0, [frame(b"")]);
}

#[test]
fn frames_share_the_read_buffer() {
    let mut buf = BytesMut::from(&b"\x0bMSH|A\r\x1c\r"[..]);
    let start = buf.as_ptr() as usize;
    let item = MllpCodec::new().decode(&mut buf).ok().flatten();
    let Some(MllpItem::Frame(payload)) = item else {
        panic!("no frame: {item:?}")
    };
    assert_eq!(payload.as_ptr() as usize, start + 1);
}

#[test]
fn encoder_wraps_and_rejects_framing_bytes() {
    let mut codec = MllpCodec::new();
    let mut dst = BytesMut::new();
    assert!(codec.encode(Bytes::from_static(b"MSA|AA|1\r"), &mut dst).is_ok());
    assert!(codec.encode(&b"x"[..], &mut dst).is_ok());
    assert_eq!(&dst[..], b"\x0bMSA|AA|1\r\x1c\r\x0bx\x1c\r");
    let err = codec.encode(&b"ab\x1c"[..], &mut dst);
    assert!(
        matches!(err, Err(MllpError::ForbiddenByte { byte: FS, offset: 2 })),
        "{err:?}"
    );
}

#[tokio::test]
async fn framed_read_reports_frames_then_truncation() {
    let input: &[u8] = b"\x0bMSH|A\r\x1c\rjunk\x0bMSH|B\r\x1c\r\x0bMSH|C";
    let mut framed = FramedRead::new(input, MllpCodec::new());
    let mut items = Vec::new();
    while let Some(item) = framed.next().await {
        items.push(item.map_err(|e| e.to_string()));
    }
    let want = [
        Ok(frame(b"MSH|A\r")),
        Ok(MllpItem::Junk { len: 4 }),
        Ok(frame(b"MSH|B\r")),
        Err("stream ended inside an MLLP frame after 5 payload bytes".to_string()),
    ];
    assert_eq!(items, want);
}

/// xorshift64*: deterministic, so a failure reproduces from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A byte that is neither VT nor FS; CR and LF are common, as in HL7.
    fn content_byte(&mut self) -> u8 {
        match self.next() as u8 {
            VT | FS => b'\r',
            b => b,
        }
    }
}

#[test]
fn random_splits_of_a_multi_frame_stream_give_the_same_frames() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut stream = Vec::new();
        let mut want = Vec::new();
        let mut bare_fs = false;
        for _ in 0..rng.below(20) {
            // Junk between frames, never starting with CR after a bare FS (that CR ends the trailer).
            let junk = rng.below(4);
            for j in 0..junk {
                let b = rng.content_byte();
                stream.push(if j == 0 && bare_fs && b == CR { b'x' } else { b });
            }
            if junk > 0 {
                want.push(MllpItem::Junk { len: junk });
            }
            let payload: Vec<u8> = (0..rng.below(300)).map(|_| rng.content_byte()).collect();
            stream.push(VT);
            stream.extend_from_slice(&payload);
            bare_fs = rng.below(8) == 0;
            stream.extend_from_slice(if bare_fs { &[FS][..] } else { &[FS, CR][..] });
            want.push(MllpItem::Frame(payload.into()));
        }
        let mut chunks = Vec::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(1 + rng.below(rest.len().min(64)));
            chunks.push(chunk);
            rest = tail;
        }
        let (got, err) = feed(&mut MllpCodec::new(), chunks);
        assert!(err.is_none(), "seed {seed}: {err:?}");
        assert_eq!(merge_junk(got), want, "seed {seed}");
    }
}

/// Junk in one place may be reported in several items when it spans reads.
fn merge_junk(items: Vec<MllpItem>) -> Vec<MllpItem> {
    let mut out: Vec<MllpItem> = Vec::new();
    for item in items {
        match (out.last_mut(), item) {
            (Some(MllpItem::Junk { len }), MllpItem::Junk { len: more }) => *len += more,
            (_, item) => out.push(item),
        }
    }
    out
}
