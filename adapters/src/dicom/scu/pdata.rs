//! P-DATA-TF framing (PS3.8 9.3.5): a command or data set cut into PDVs that fit the peer's
//! maximum PDU length. [`pdus`] yields each PDU as a 12-byte header and a slice of the data,
//! so a data set is sent straight from where it lies, never copied; [`frame`] writes them
//! into one buffer (the same bytes).

use std::io::IoSlice;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The largest PDV fragment sent even when the peer accepts unlimited PDUs (max length 0,
/// which dicom-ul reports as about 4 GiB): big enough that headers cost nothing.
pub const FRAGMENT_CAP: usize = 1 << 20;

/// Bytes before each fragment: PDU type, reserved, PDU length (4), PDV item length (4),
/// presentation context id, message control header.
pub const HEADER_LEN: usize = 12;

/// Appends `data` to `out` as P-DATA-TF PDUs of one PDV each, for presentation context `pc_id`.
/// `max_pdu` is the peer's Maximum Length Received: the largest PDU *length field* it takes
/// (the PDV item header of 6 bytes included). The last fragment carries the "last" bit.
pub fn frame(out: &mut Vec<u8>, pc_id: u8, command: bool, data: &[u8], max_pdu: u32) {
    for (header, chunk) in pdus(pc_id, command, data, max_pdu) {
        out.extend_from_slice(&header);
        out.extend_from_slice(chunk);
    }
}

/// The P-DATA-TF PDUs carrying `data` (as [`frame`] cuts them), each as its header and the
/// fragment of `data` that follows it. Empty data is one PDU with an empty last fragment.
pub fn pdus(pc_id: u8, command: bool, data: &[u8], max_pdu: u32) -> impl Iterator<Item = ([u8; HEADER_LEN], &[u8])> {
    // A PDU body holds one PDV item: 4 bytes of item length, context id, control header.
    let room = (max_pdu as usize).saturating_sub(6).clamp(2, FRAGMENT_CAP);
    // Fragments keep even lengths so no fragment splits a 16-bit value (not required, but
    // some receivers are happier).
    let room = room & !1;
    // `chunks` yields nothing for empty data, which still needs its one (last) PDV.
    let empty = data.is_empty().then_some(&data[..0]);
    let count = data.len().div_ceil(room).max(1);
    empty
        .into_iter()
        .chain(data.chunks(room))
        .enumerate()
        .map(move |(i, chunk)| (header(pc_id, command, i + 1 == count, chunk.len()), chunk))
}

fn header(pc_id: u8, command: bool, last: bool, len: usize) -> [u8; HEADER_LEN] {
    // len <= FRAGMENT_CAP, so it fits a u32 with room for the item header.
    let item_len = len as u32 + 2;
    let mut h = [0u8; HEADER_LEN];
    h[0] = 0x04; // P-DATA-TF; h[1] reserved
    h[2..6].copy_from_slice(&(item_len + 4).to_be_bytes());
    h[6..10].copy_from_slice(&item_len.to_be_bytes());
    h[10] = pc_id;
    h[11] = u8::from(command) | (u8::from(last) << 1);
    h
}

/// Why [`write()`] stopped.
#[derive(Debug)]
pub enum WriteError {
    /// One PDU was not taken whole within the limit: the peer stopped reading.
    Stalled,
    /// The connection failed.
    Io(std::io::Error),
}

/// Writes `data` to `w` as [`pdus`] cuts it, one PDU at a time from the slice (header and
/// fragment in one vectored write where the writer allows it; short writes are resumed).
/// `limit` applies to each PDU, not to the whole: a large data set over a slow link takes
/// as long as it needs while it keeps moving, and a peer that takes no PDU for `limit`
/// fails it.
pub async fn write<W: AsyncWrite + Unpin>(
    w: &mut W,
    pc_id: u8,
    command: bool,
    data: &[u8],
    max_pdu: u32,
    limit: Duration,
) -> Result<(), WriteError> {
    for (header, chunk) in pdus(pc_id, command, data, max_pdu) {
        match tokio::time::timeout(limit, write_pdu(w, &header, chunk)).await {
            Err(_) => return Err(WriteError::Stalled),
            Ok(Err(e)) => return Err(WriteError::Io(e)),
            Ok(Ok(())) => {}
        }
    }
    w.flush().await.map_err(WriteError::Io)
}

async fn write_pdu<W: AsyncWrite + Unpin>(w: &mut W, mut head: &[u8], mut body: &[u8]) -> std::io::Result<()> {
    while !head.is_empty() {
        // One write for both where possible: two would put a 12-byte segment on the wire
        // before each fragment (TCP_NODELAY is on).
        let n = w.write_vectored(&[IoSlice::new(head), IoSlice::new(body)]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    w.write_all(body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads PDUs back: (pc id, control header, payload) per PDU, checking the lengths.
    fn unframe(mut b: &[u8], max_pdu: u32) -> Vec<(u8, u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            assert_eq!(b[0], 4);
            let pdu_len = u32::from_be_bytes(b[2..6].try_into().unwrap());
            assert!(pdu_len <= max_pdu, "{pdu_len} > {max_pdu}");
            let item_len = u32::from_be_bytes(b[6..10].try_into().unwrap());
            assert_eq!(item_len + 4, pdu_len);
            out.push((b[10], b[11], b[12..6 + pdu_len as usize].to_vec()));
            b = &b[6 + pdu_len as usize..];
        }
        out
    }

    #[test]
    fn fragments_fit_the_peer_and_reassemble() {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        frame(&mut out, 3, false, &data, 16_384);
        let pdus = unframe(&out, 16_384);
        assert_eq!(pdus.len(), 100_000usize.div_ceil(16_378 & !1));
        assert!(pdus.iter().all(|p| p.0 == 3));
        assert!(pdus[..pdus.len() - 1].iter().all(|p| p.1 == 0));
        assert_eq!(pdus.last().unwrap().1, 2);
        assert_eq!(pdus.into_iter().flat_map(|p| p.2).collect::<Vec<_>>(), data);

        let mut cmd = Vec::new();
        frame(&mut cmd, 1, true, b"abcd", 0xFFFF_FFF0);
        assert_eq!(unframe(&cmd, u32::MAX), vec![(1, 3, b"abcd".to_vec())]);
    }

    /// The framing before PDUs were written from the slice (one buffer per message), kept
    /// as the reference the new writing must match byte for byte.
    fn old_frame(out: &mut Vec<u8>, pc_id: u8, command: bool, data: &[u8], max_pdu: u32) {
        let room = (max_pdu as usize).saturating_sub(6).clamp(2, FRAGMENT_CAP);
        let room = room & !1;
        let mut chunks = data.chunks(room).peekable();
        if data.is_empty() {
            old_push(out, pc_id, command, true, &[]);
            return;
        }
        while let Some(chunk) = chunks.next() {
            old_push(out, pc_id, command, chunks.peek().is_none(), chunk);
        }
    }

    fn old_push(out: &mut Vec<u8>, pc_id: u8, command: bool, last: bool, chunk: &[u8]) {
        let item_len = chunk.len() as u32 + 2;
        out.push(0x04);
        out.push(0x00);
        out.extend_from_slice(&(item_len + 4).to_be_bytes());
        out.extend_from_slice(&item_len.to_be_bytes());
        out.push(pc_id);
        out.push(u8::from(command) | (u8::from(last) << 1));
        out.extend_from_slice(chunk);
    }

    /// Takes at most `step` bytes per write (vectored or not): every short write is resumed.
    struct Trickle {
        got: Vec<u8>,
        step: usize,
        writes: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.got.extend_from_slice(&buf[..n]);
            self.writes += 1;
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.step - n);
                self.got.extend_from_slice(&b[..take]);
                n += take;
                if n == self.step {
                    break;
                }
            }
            self.writes += 1;
            std::task::Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn writing_from_the_slice_sends_what_one_buffer_did() {
        let max_pdu = 4096u32;
        let room = (4096 - 6) & !1;
        let data: Vec<u8> = (0..5 * room as u32 + 123).map(|i| (i * 7) as u8).collect();
        for len in [0, 1, 2, room - 1, room, room + 1, 3 * room, 5 * room + 123] {
            let part = &data[..len];
            for command in [false, true] {
                let mut want = Vec::new();
                old_frame(&mut want, 5, command, part, max_pdu);
                // Into a Vec (whole writes) and through a writer taking 7 bytes at a time
                // (short writes splitting headers and fragments anywhere).
                let mut whole = Vec::new();
                write(&mut whole, 5, command, part, max_pdu, Duration::from_secs(5))
                    .await
                    .unwrap();
                assert_eq!(whole, want, "len {len}, command {command}");
                let mut short = Trickle {
                    got: Vec::new(),
                    step: 7,
                    writes: 0,
                };
                write(&mut short, 5, command, part, max_pdu, Duration::from_secs(5))
                    .await
                    .unwrap();
                assert_eq!(short.got, want, "len {len}, command {command}, short writes");
                assert!(short.writes >= want.len() / 7);
                let mut framed = Vec::new();
                frame(&mut framed, 5, command, part, max_pdu);
                assert_eq!(framed, want);
            }
        }
        // Unlimited peer (max 0 reads as ~4 GiB): 1 MiB fragments, as before.
        let big = vec![9u8; FRAGMENT_CAP * 2 + 10];
        let mut want = Vec::new();
        old_frame(&mut want, 1, false, &big, u32::MAX);
        let mut got = Vec::new();
        write(&mut got, 1, false, &big, u32::MAX, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_stalls_the_write() {
        // A duplex whose other end is never read: the buffer fills, the PDU cannot finish.
        let (mut ours, _theirs) = tokio::io::duplex(1024);
        let data = vec![0u8; 64 * 1024];
        let r = write(&mut ours, 1, false, &data, 16_384, Duration::from_millis(200)).await;
        assert!(matches!(r, Err(WriteError::Stalled)), "{r:?}");
    }
}
