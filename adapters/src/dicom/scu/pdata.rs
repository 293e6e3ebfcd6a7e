//! P-DATA-TF framing (PS3.8 9.3.5): a command or data set cut into PDVs that fit the peer's
//! maximum PDU length, written into one buffer so a whole message goes out in one write.

/// The largest PDV fragment sent even when the peer accepts unlimited PDUs (max length 0,
/// which dicom-ul reports as about 4 GiB): big enough that headers cost nothing.
pub const FRAGMENT_CAP: usize = 1 << 20;

/// Appends `data` to `out` as P-DATA-TF PDUs of one PDV each, for presentation context `pc_id`.
/// `max_pdu` is the peer's Maximum Length Received: the largest PDU *length field* it takes
/// (the PDV item header of 6 bytes included). The last fragment carries the "last" bit.
pub fn frame(out: &mut Vec<u8>, pc_id: u8, command: bool, data: &[u8], max_pdu: u32) {
    // A PDU body holds one PDV item: 4 bytes of item length, context id, control header.
    let room = (max_pdu as usize).saturating_sub(6).clamp(2, FRAGMENT_CAP);
    // Fragments keep even lengths so no fragment splits a 16-bit value (not required, but
    // some receivers are happier).
    let room = room & !1;
    let mut chunks = data.chunks(room).peekable();
    if data.is_empty() {
        push(out, pc_id, command, true, &[]);
        return;
    }
    while let Some(chunk) = chunks.next() {
        push(out, pc_id, command, chunks.peek().is_none(), chunk);
    }
}

fn push(out: &mut Vec<u8>, pc_id: u8, command: bool, last: bool, chunk: &[u8]) {
    let item_len = chunk.len() as u32 + 2;
    out.push(0x04); // P-DATA-TF
    out.push(0x00);
    out.extend_from_slice(&(item_len + 4).to_be_bytes());
    out.extend_from_slice(&item_len.to_be_bytes());
    out.push(pc_id);
    out.push(u8::from(command) | (u8::from(last) << 1));
    out.extend_from_slice(chunk);
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
}
