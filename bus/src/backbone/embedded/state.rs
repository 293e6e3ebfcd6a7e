//! In-memory index of the embedded log: where each retained message is, and
//! each durable consumer's position. Rebuilt from the log on open; guarded by
//! one mutex whose critical sections never do I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::filter::Filter;
use super::log::ConsumerRec;
use crate::backbone::{BackboneError, ConsumerSpec};

/// Where a retained message is.
#[derive(Debug, Clone)]
pub(crate) struct MsgMeta {
    /// Interned: many messages share few subjects.
    pub subject: Arc<str>,
    pub ts_ms: u64,
    pub segment: u64,
    /// Offset and length of the whole frame in the segment file.
    pub offset: u64,
    pub len: u32,
}

/// One segment file.
#[derive(Debug)]
pub(crate) struct SegmentInfo {
    pub path: PathBuf,
    /// Read handle; an Arc so a fetch can read after the segment is compacted away.
    pub file: Arc<File>,
    /// Range of the messages it holds (0, 0 when none).
    pub first_seq: u64,
    pub last_seq: u64,
    /// Newest message timestamp: the dedupe window needs the segment until this leaves it.
    pub newest_ts: u64,
    pub bytes: u64,
}

impl SegmentInfo {
    pub fn new(path: PathBuf, file: Arc<File>, bytes: u64) -> Self {
        SegmentInfo {
            path,
            file,
            first_seq: 0,
            last_seq: 0,
            newest_ts: 0,
            bytes,
        }
    }

    pub fn add(&mut self, seq: u64, ts_ms: u64) {
        if self.first_seq == 0 {
            self.first_seq = seq;
        }
        self.last_seq = seq;
        self.newest_ts = self.newest_ts.max(ts_ms);
    }
}

/// Consumer `id`'s spec as stored in the log.
pub(crate) fn consumer_record(id: u32, spec: &ConsumerSpec) -> ConsumerRec {
    ConsumerRec {
        id,
        name: spec.name.clone(),
        filter: spec.filter.clone(),
        ack_wait_ms: spec.ack_wait.as_millis().min(u64::MAX as u128) as u64,
        max_deliver: spec.max_deliver,
        max_ack_pending: spec.max_ack_pending as u64,
    }
}

/// `now + d`, saturating: a configured duration of years must not panic.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(d).unwrap_or_else(|| now + CENTURY)
}

/// A delivery not yet settled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    /// When it may be delivered again (ack wait, nak delay).
    pub deadline: Instant,
    /// Deliveries so far.
    pub delivered: u32,
}

/// One durable consumer.
#[derive(Debug)]
pub(crate) struct ConsumerState {
    pub id: u32,
    pub spec: ConsumerSpec,
    pub filter: Filter,
    /// Every sequence up to here is settled (acked, termed, not matching, or gone).
    pub floor: u64,
    /// Settled sequences above the floor.
    pub acked: BTreeSet<u64>,
    /// First sequence not yet considered for a first delivery (memory only).
    pub next: u64,
    pub pending: BTreeMap<u64, Pending>,
    /// Woken when a settle or nak may let a waiting fetch proceed.
    pub notify: Arc<Notify>,
}

impl ConsumerState {
    pub fn new(id: u32, spec: ConsumerSpec, filter: Filter) -> Self {
        ConsumerState {
            id,
            spec,
            filter,
            floor: 0,
            acked: BTreeSet::new(),
            next: 1,
            pending: BTreeMap::new(),
            notify: Arc::new(Notify::new()),
        }
    }

    /// A spec back from a stored record.
    pub fn spec_of(rec: &ConsumerRec) -> ConsumerSpec {
        ConsumerSpec {
            name: rec.name.clone(),
            filter: rec.filter.clone(),
            ack_wait: Duration::from_millis(rec.ack_wait_ms),
            max_deliver: rec.max_deliver,
            max_ack_pending: usize::try_from(rec.max_ack_pending).unwrap_or(usize::MAX),
        }
    }

    /// True when `seq` is settled for this consumer.
    pub fn settled(&self, seq: u64) -> bool {
        seq <= self.floor || self.acked.contains(&seq)
    }

    /// Marks `seq` settled without moving the floor (replay); true when it was not already.
    pub fn mark(&mut self, seq: u64) -> bool {
        self.pending.remove(&seq);
        seq > self.floor && self.acked.insert(seq)
    }

    /// Moves the floor over every settled, non-matching or vanished sequence.
    pub fn advance(&mut self, index: &BTreeMap<u64, MsgMeta>, last_seq: u64) {
        while self.floor < last_seq {
            let n = self.floor + 1;
            if self.acked.remove(&n) {
                self.floor = n;
                continue;
            }
            match index.range(n..).next() {
                // Nothing retained from n on: all of it is gone.
                None => self.floor = last_seq,
                // A gap (compacted or expired): jump it.
                Some((&m, _)) if m > n => self.floor = m - 1,
                Some((_, meta)) if self.filter.matches(&meta.subject) => break,
                Some(_) => self.floor = n,
            }
        }
        // Entries at or below the floor (skipped by a jump, or from replay) are redundant.
        if self.acked.first().is_some_and(|&f| f <= self.floor) {
            self.acked = self.acked.split_off(&(self.floor + 1));
        }
        self.next = self.next.max(self.floor + 1);
    }
}

/// A message chosen for delivery: what to read, and its attempt number.
#[derive(Debug)]
pub(crate) struct Picked {
    pub seq: u64,
    pub delivered: u32,
    pub file: Arc<File>,
    pub segment: u64,
    pub offset: u64,
    pub len: u32,
}

/// Everything the embedded backbone knows in memory.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub index: BTreeMap<u64, MsgMeta>,
    /// Highest sequence committed.
    pub last_seq: u64,
    pub segments: BTreeMap<u64, SegmentInfo>,
    pub consumers: HashMap<u32, ConsumerState>,
    pub names: HashMap<String, u32>,
    subjects: HashSet<Arc<str>>,
}

impl State {
    /// The shared copy of `subject`.
    pub fn intern(&mut self, subject: &str) -> Arc<str> {
        if let Some(s) = self.subjects.get(subject) {
            return s.clone();
        }
        let s: Arc<str> = Arc::from(subject);
        self.subjects.insert(s.clone());
        s
    }

    /// Creates consumer `id` or replaces its spec, keeping its position.
    pub fn upsert_consumer(&mut self, id: u32, spec: ConsumerSpec) -> Result<(), String> {
        let filter = Filter::parse(&spec.filter)?;
        self.names.insert(spec.name.clone(), id);
        match self.consumers.get_mut(&id) {
            Some(c) => {
                if c.filter != filter {
                    // Messages skipped under the old filter may match the new one.
                    c.next = c.floor + 1;
                }
                c.spec = spec;
                c.filter = filter;
            }
            None => {
                self.consumers.insert(id, ConsumerState::new(id, spec, filter));
            }
        }
        Ok(())
    }

    /// Settles `seq` for consumer `id`; true when this changed anything (so it must be logged).
    pub fn settle(&mut self, id: u32, seq: u64) -> bool {
        let State {
            index,
            consumers,
            last_seq,
            ..
        } = self;
        let Some(c) = consumers.get_mut(&id) else {
            return false;
        };
        let changed = c.mark(seq);
        if changed {
            c.advance(index, *last_seq);
        }
        c.notify.notify_waiters();
        changed
    }

    /// True when no consumer will ever need `seq` again: expired, or matched by at
    /// least one consumer and settled by every consumer it matches. A message no
    /// consumer matches (a dead letter, say) is kept until it expires.
    pub fn done(&self, seq: u64, meta: &MsgMeta, expire_before_ms: u64) -> bool {
        if meta.ts_ms < expire_before_ms {
            return true;
        }
        let mut matched = false;
        for c in self.consumers.values() {
            if c.filter.matches(&meta.subject) {
                if !c.settled(seq) {
                    return false;
                }
                matched = true;
            }
        }
        matched
    }

    /// Chooses up to `max` deliveries for consumer `id`: due redeliveries first,
    /// then new messages, within max_ack_pending. Returns them and the earliest
    /// time a pending one becomes due. Sequences that used up their deliveries go
    /// to `exhausted` (settled here; the caller logs them as terminated).
    pub fn pick(
        &mut self,
        id: u32,
        max: usize,
        now: Instant,
        exhausted: &mut Vec<u64>,
    ) -> Result<(Vec<Picked>, Option<Instant>), BackboneError> {
        let State {
            index,
            segments,
            consumers,
            last_seq,
            ..
        } = self;
        let c = consumers
            .get_mut(&id)
            .ok_or_else(|| BackboneError::Invalid(format!("consumer {id} is not bound")))?;
        let ack_wait = c.spec.ack_wait;
        // JetStream is configured with max_deliver + 1 so the Consumer wrapper sees the
        // over-limit attempt and dead-letters it; the embedded log does the same.
        let allowed = c.spec.max_deliver.saturating_add(1);
        let mut out = Vec::new();
        let mut wake: Option<Instant> = None;
        let mut gone = Vec::new();
        let locate = |seq: u64| {
            let meta = index.get(&seq)?;
            let seg = segments.get(&meta.segment)?;
            Some((seg.file.clone(), meta.segment, meta.offset, meta.len))
        };
        for (&seq, p) in c.pending.iter_mut() {
            if p.deadline > now {
                wake = Some(wake.map_or(p.deadline, |w| w.min(p.deadline)));
                continue;
            }
            if out.len() >= max {
                continue;
            }
            let Some((file, segment, offset, len)) = locate(seq) else {
                gone.push(seq);
                continue;
            };
            if p.delivered >= allowed {
                exhausted.push(seq);
                continue;
            }
            p.delivered += 1;
            p.deadline = after(now, ack_wait);
            out.push(Picked {
                seq,
                delivered: p.delivered,
                file,
                segment,
                offset,
                len,
            });
        }
        for seq in gone {
            c.pending.remove(&seq);
        }
        for &seq in exhausted.iter() {
            c.mark(seq);
        }
        if !exhausted.is_empty() {
            c.advance(index, *last_seq);
        }
        let start = c.next;
        for (&seq, meta) in index.range(start..) {
            if out.len() >= max || c.pending.len() >= c.spec.max_ack_pending {
                break;
            }
            c.next = seq + 1;
            if c.settled(seq) || c.pending.contains_key(&seq) || !c.filter.matches(&meta.subject) {
                continue;
            }
            let Some(seg) = segments.get(&meta.segment) else {
                continue;
            };
            c.pending.insert(
                seq,
                Pending {
                    deadline: after(now, ack_wait),
                    delivered: 1,
                },
            );
            out.push(Picked {
                seq,
                delivered: 1,
                file: seg.file.clone(),
                segment: meta.segment,
                offset: meta.offset,
                len: meta.len,
            });
        }
        Ok((out, wake))
    }

    /// Moves the deadline of the pending `seq` (nak, in-progress) if it is still
    /// the delivery `delivered`; a stale handle changes nothing.
    pub fn reschedule(&mut self, id: u32, seq: u64, delivered: u32, deadline: impl FnOnce(&ConsumerSpec) -> Instant) {
        if let Some(c) = self.consumers.get_mut(&id) {
            let spec = &c.spec;
            if let Some(p) = c.pending.get_mut(&seq).filter(|p| p.delivered == delivered) {
                p.deadline = deadline(spec);
            }
            c.notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(subject: &str) -> MsgMeta {
        MsgMeta {
            subject: Arc::from(subject),
            ts_ms: 1,
            segment: 1,
            offset: 0,
            len: 0,
        }
    }

    #[test]
    fn floor_skips_settled_foreign_and_missing() {
        let mut index = BTreeMap::new();
        index.insert(1, meta("a.x"));
        index.insert(2, meta("b.x"));
        index.insert(3, meta("a.x"));
        index.insert(6, meta("a.x"));
        let spec = ConsumerSpec {
            name: "c".into(),
            filter: "a.>".into(),
            ack_wait: Duration::from_secs(1),
            max_deliver: 1,
            max_ack_pending: 10,
        };
        let mut c = ConsumerState::new(1, spec, Filter::parse("a.>").unwrap());
        assert!(c.mark(3));
        c.advance(&index, 6);
        assert_eq!(c.floor, 0, "1 is unsettled");
        assert!(c.mark(1));
        c.advance(&index, 6);
        assert_eq!(c.floor, 5, "2 is foreign, 3 acked, 4 and 5 gone");
        assert!(c.acked.is_empty());
        assert!(!c.mark(3), "already settled");
        assert!(c.mark(6));
        c.advance(&index, 6);
        assert_eq!((c.floor, c.next), (6, 7));
    }
}
