//! On-disk record format of the embedded log.
//!
//! A segment file is a sequence of frames `len: u32 LE | crc32(body): u32 LE | body`.
//! Each write of the writer (one group-committed batch) ends with a COMMIT
//! frame, so recovery can tell a batch that reached the disk whole from one that
//! was torn by a crash: everything after the last valid COMMIT of the last
//! segment was never acknowledged and is truncated. A bad frame followed by a
//! valid COMMIT is corruption of committed data and is reported, never dropped.
//!
//! Bodies start with a kind byte; integers are little-endian, strings and byte
//! strings are `u32 length | bytes`.

use std::path::Path;

use crate::backbone::{BackboneError, Outgoing};

/// Bytes before a frame's body: length and CRC32.
pub(crate) const FRAME_HEADER: usize = 8;
/// Largest body accepted; a larger length can only be corruption.
pub(crate) const MAX_BODY: usize = 256 << 20;

const PUBLISH: u8 = 1;
const CONSUMER: u8 = 2;
const ACK: u8 = 3;
const TERM: u8 = 4;
const FLOOR: u8 = 5;
const LAST_SEQ: u8 = 6;
const COMMIT: u8 = 7;
/// Body length of a COMMIT frame (kind + record count); the recovery scan looks for it.
const COMMIT_BODY: usize = 5;

/// A published message as stored, borrowing from the frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PublishRef<'a> {
    pub seq: u64,
    /// Unix milliseconds when it was stored.
    pub ts_ms: u64,
    pub subject: &'a str,
    /// Empty when the publisher gave none.
    pub dedupe_id: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub payload: &'a [u8],
}

/// A durable consumer's spec as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumerRec {
    pub id: u32,
    pub name: String,
    pub filter: String,
    pub ack_wait_ms: u64,
    pub max_deliver: u32,
    pub max_ack_pending: u64,
}

/// One log record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record<'a> {
    Publish(PublishRef<'a>),
    /// Consumer created or updated (also repeated in each segment's opening snapshot).
    Consumer(ConsumerRec),
    Ack {
        consumer: u32,
        seq: u64,
    },
    Term {
        consumer: u32,
        seq: u64,
    },
    /// Snapshot: every sequence up to `floor` is settled for `consumer`.
    Floor {
        consumer: u32,
        floor: u64,
    },
    /// Snapshot: the highest sequence ever assigned, so numbering survives compaction.
    LastSeq(u64),
    /// End of one batch; `records` frames precede it in the batch.
    Commit {
        records: u32,
    },
}

/// Appends one frame whose body `body` writes; returns the frame's offset in `buf`.
fn frame(buf: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER]);
    body(buf);
    let body_len = buf.len() - start - FRAME_HEADER;
    let crc = crc32fast::hash(&buf[start + FRAME_HEADER..]);
    buf[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    start
}

fn put_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s);
}

/// Appends a PUBLISH frame for `msg`; returns (offset in `buf`, frame length).
pub(crate) fn encode_publish(buf: &mut Vec<u8>, seq: u64, ts_ms: u64, msg: &Outgoing) -> (usize, u32) {
    let start = frame(buf, |b| {
        b.push(PUBLISH);
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&ts_ms.to_le_bytes());
        put_str(b, msg.subject.as_bytes());
        put_str(b, msg.dedupe_id.as_bytes());
        b.extend_from_slice(&(msg.headers.len() as u32).to_le_bytes());
        for (k, v) in &msg.headers {
            put_str(b, k.as_bytes());
            put_str(b, v.as_bytes());
        }
        put_str(b, &msg.payload);
    });
    (start, (buf.len() - start) as u32)
}

/// Appends one frame for `rec`; returns its offset in `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, rec: &Record<'_>) -> usize {
    frame(buf, |b| match rec {
        Record::Publish(p) => {
            b.push(PUBLISH);
            b.extend_from_slice(&p.seq.to_le_bytes());
            b.extend_from_slice(&p.ts_ms.to_le_bytes());
            put_str(b, p.subject.as_bytes());
            put_str(b, p.dedupe_id.as_bytes());
            b.extend_from_slice(&(p.headers.len() as u32).to_le_bytes());
            for (k, v) in &p.headers {
                put_str(b, k.as_bytes());
                put_str(b, v.as_bytes());
            }
            put_str(b, p.payload);
        }
        Record::Consumer(c) => {
            b.push(CONSUMER);
            b.extend_from_slice(&c.id.to_le_bytes());
            put_str(b, c.name.as_bytes());
            put_str(b, c.filter.as_bytes());
            b.extend_from_slice(&c.ack_wait_ms.to_le_bytes());
            b.extend_from_slice(&c.max_deliver.to_le_bytes());
            b.extend_from_slice(&c.max_ack_pending.to_le_bytes());
        }
        Record::Ack { consumer, seq } | Record::Term { consumer, seq } | Record::Floor { consumer, floor: seq } => {
            b.push(match rec {
                Record::Ack { .. } => ACK,
                Record::Term { .. } => TERM,
                _ => FLOOR,
            });
            b.extend_from_slice(&consumer.to_le_bytes());
            b.extend_from_slice(&seq.to_le_bytes());
        }
        Record::LastSeq(seq) => {
            b.push(LAST_SEQ);
            b.extend_from_slice(&seq.to_le_bytes());
        }
        Record::Commit { records } => {
            b.push(COMMIT);
            b.extend_from_slice(&records.to_le_bytes());
        }
    })
}

/// Reads fields off a body; every read is bounds-checked (the bytes come from disk).
struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| format!("body ends early (needs {n} bytes at {})", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let mut a = [0; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?).map_err(|_| "string is not UTF-8".to_string())
    }
}

/// Decodes one frame body.
pub(crate) fn decode(body: &[u8]) -> Result<Record<'_>, String> {
    let mut d = Dec { buf: body, pos: 0 };
    let rec = match d.u8()? {
        PUBLISH => {
            let seq = d.u64()?;
            let ts_ms = d.u64()?;
            let subject = d.str()?;
            let dedupe_id = d.str()?;
            let n = d.u32()? as usize;
            // Each header needs at least 8 bytes; cap the reservation by what is left.
            let mut headers = Vec::with_capacity(n.min(body.len() / 8));
            for _ in 0..n {
                headers.push((d.str()?, d.str()?));
            }
            let payload = d.bytes()?;
            Record::Publish(PublishRef {
                seq,
                ts_ms,
                subject,
                dedupe_id,
                headers,
                payload,
            })
        }
        CONSUMER => Record::Consumer(ConsumerRec {
            id: d.u32()?,
            name: d.str()?.to_string(),
            filter: d.str()?.to_string(),
            ack_wait_ms: d.u64()?,
            max_deliver: d.u32()?,
            max_ack_pending: d.u64()?,
        }),
        ACK => Record::Ack {
            consumer: d.u32()?,
            seq: d.u64()?,
        },
        TERM => Record::Term {
            consumer: d.u32()?,
            seq: d.u64()?,
        },
        FLOOR => Record::Floor {
            consumer: d.u32()?,
            floor: d.u64()?,
        },
        LAST_SEQ => Record::LastSeq(d.u64()?),
        COMMIT => Record::Commit { records: d.u32()? },
        k => return Err(format!("unknown record kind {k}")),
    };
    if d.pos != body.len() {
        return Err(format!("{} trailing bytes after the record", body.len() - d.pos));
    }
    Ok(rec)
}

/// The outcome of reading one frame at an offset.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame<'a> {
    /// A whole frame with a matching checksum; `next` is the offset after it.
    Ok { body: &'a [u8], next: usize },
    /// Clean end of data.
    End,
    /// Not a valid frame here (torn, or corrupt), and why.
    Bad(&'static str),
}

/// Reads the frame at `pos` of `data`.
pub(crate) fn parse_frame(data: &[u8], pos: usize) -> Frame<'_> {
    if pos == data.len() {
        return Frame::End;
    }
    let Some(header) = data.get(pos..pos + FRAME_HEADER) else {
        return Frame::Bad("incomplete frame header");
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_BODY {
        return Frame::Bad("impossible frame length");
    }
    let Some(body) = data.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len) else {
        return Frame::Bad("frame runs past the end of the file");
    };
    if crc32fast::hash(body) != crc {
        return Frame::Bad("checksum mismatch");
    }
    Frame::Ok {
        body,
        next: pos + FRAME_HEADER + len,
    }
}

/// How many valid COMMIT frames start after `from`, counting at most `limit`.
fn commits_after(data: &[u8], from: usize, limit: usize) -> usize {
    let want = (COMMIT_BODY as u32).to_le_bytes();
    let mut found = 0;
    let mut pos = from;
    // Only offsets whose length field reads COMMIT_BODY can hold a COMMIT: cheap to test.
    while let Some(i) = data.get(pos..).and_then(|rest| rest.windows(4).position(|w| w == want)) {
        let at = pos + i;
        if data.get(at + FRAME_HEADER) == Some(&COMMIT) {
            if let Frame::Ok { next, .. } = parse_frame(data, at) {
                found += 1;
                if found >= limit {
                    break;
                }
                pos = next;
                continue;
            }
        }
        pos = at + 1;
    }
    found
}

/// What a segment scan found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// End of the last committed batch: the length the file should have.
    pub valid_end: usize,
    /// Set when bytes after `valid_end` must be dropped: (where reading stopped, why).
    pub torn: Option<(usize, &'static str)>,
}

/// Reads every committed record of a segment, in order, handing each to
/// `apply(offset, frame_len, record)`. `last` says whether this is the newest
/// segment: only there may a torn tail be cut; anywhere else a bad frame is an error.
pub(crate) fn scan(
    path: &Path,
    data: &[u8],
    last: bool,
    mut apply: impl FnMut(u64, u32, Record<'_>) -> Result<(), BackboneError>,
) -> Result<Scan, BackboneError> {
    let at = |pos: usize, why: &str| {
        BackboneError::Storage(format!(
            "corrupt embedded log {} at offset {pos}: {why}",
            path.display()
        ))
    };
    let mut pos = 0;
    let mut valid_end = 0;
    // Frames of the batch being read; applied only once its COMMIT is seen.
    let mut batch: Vec<(usize, usize, usize)> = Vec::new();
    let stop = loop {
        match parse_frame(data, pos) {
            Frame::End => break None,
            Frame::Bad(why) => break Some((pos, why)),
            Frame::Ok { body, next } => {
                if body.first() == Some(&COMMIT) {
                    for &(off, start, end) in &batch {
                        let rec = decode(&data[start..end]).map_err(|e| at(off, &e))?;
                        apply(off as u64, (end - off) as u32, rec)?;
                    }
                    batch.clear();
                    decode(body).map_err(|e| at(pos, &e))?;
                    valid_end = next;
                } else {
                    batch.push((pos, pos + FRAME_HEADER, next));
                }
                pos = next;
            }
        }
    };
    let torn = match stop {
        // Only the newest batch can be torn (the writer syncs one batch before it
        // writes the next): a second COMMIT after the bad frame means committed
        // data follows it, so this is corruption, not a crash.
        Some((bad, why)) if !last || commits_after(data, bad + 1, 2) >= 2 => return Err(at(bad, why)),
        Some((bad, why)) => Some((bad, why)),
        None if valid_end < data.len() && !last => return Err(at(valid_end, "batch without a commit marker")),
        None if valid_end < data.len() => Some((valid_end, "batch without a commit marker")),
        None => None,
    };
    Ok(Scan { valid_end, torn })
}

#[cfg(test)]
mod tests;
