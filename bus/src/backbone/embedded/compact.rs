//! Retention and compaction, run by the writer between batches.
//!
//! - Messages older than `max_age` leave the index (and so are never delivered).
//! - A sealed segment whose messages are all done (expired, or settled by every
//!   consumer that matches them) is deleted; one that is at least half done is
//!   rewritten with only its live messages. Consumer state needs no copying: the
//!   active segment always opens with a snapshot of it.
//! - A segment stays while it holds messages inside the duplicate window, so the
//!   window can be rebuilt from the log on open.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Instant;

use super::log::{self, Frame, Record};
use super::unix_ms;
use super::writer::{sync_dir, Writer};

/// What to do with one sealed segment.
enum Plan {
    Delete,
    /// Keep only these (sequence, offset, length).
    Rewrite(Vec<(u64, u64, u32)>),
}

impl Writer {
    /// Expires old messages; compacts every `compact_interval`.
    pub(super) fn housekeeping(&mut self) {
        let now_ms = unix_ms();
        let expire_before = now_ms.saturating_sub(self.settings.max_age_ms);
        {
            let mut guard = self.core.lock();
            let st = &mut *guard;
            let before = st.index.len();
            while let Some(entry) = st.index.first_entry() {
                if entry.get().ts_ms >= expire_before {
                    break;
                }
                entry.remove();
            }
            if st.index.len() != before {
                tracing::debug!(
                    expired = before - st.index.len(),
                    "embedded log: messages past max_age dropped"
                );
                for c in st.consumers.values_mut() {
                    c.advance(&st.index, st.last_seq);
                }
            }
        }
        if self.last_compaction.elapsed() >= self.settings.compact_interval {
            self.compact(now_ms);
        }
    }

    /// Deletes or rewrites sealed segments that hold no, or few, live messages.
    pub(super) fn compact(&mut self, now_ms: u64) {
        self.last_compaction = Instant::now();
        let expire_before = now_ms.saturating_sub(self.settings.max_age_ms);
        let dedupe_before = now_ms.saturating_sub(self.settings.duplicate_window_ms);
        let plans: Vec<(u64, Plan)> = {
            let st = self.core.lock();
            let mut plans = Vec::new();
            for (&id, seg) in st.segments.range(..self.active_id) {
                if seg.first_seq != 0 && seg.newest_ts >= dedupe_before {
                    continue;
                }
                let mut live = Vec::new();
                let mut live_bytes = 0u64;
                if seg.first_seq != 0 {
                    for (&seq, meta) in st.index.range(seg.first_seq..=seg.last_seq) {
                        if meta.segment == id && !st.done(seq, meta, expire_before) {
                            live.push((seq, meta.offset, meta.len));
                            live_bytes += u64::from(meta.len);
                        }
                    }
                }
                if live.is_empty() {
                    plans.push((id, Plan::Delete));
                } else if live_bytes * 2 <= seg.bytes {
                    plans.push((id, Plan::Rewrite(live)));
                }
            }
            plans
        };
        for (id, plan) in plans {
            match plan {
                Plan::Delete => self.delete_segment(id),
                Plan::Rewrite(live) => {
                    if let Err(e) = self.rewrite_segment(id, &live) {
                        // The original is untouched; try again next time.
                        tracing::warn!(segment = id, error = %e, "embedded log: segment rewrite failed");
                    }
                }
            }
        }
    }

    fn delete_segment(&mut self, id: u64) {
        let removed = {
            let mut st = self.core.lock();
            let Some(seg) = st.segments.remove(&id) else {
                return;
            };
            if seg.first_seq != 0 {
                let gone: Vec<u64> = st
                    .index
                    .range(seg.first_seq..=seg.last_seq)
                    .filter(|(_, m)| m.segment == id)
                    .map(|(&s, _)| s)
                    .collect();
                for s in gone {
                    st.index.remove(&s);
                }
            }
            seg
        };
        // A fetch may still hold the read handle; the file lives until it drops it.
        match fs::remove_file(&removed.path) {
            Ok(()) => tracing::debug!(segment = id, bytes = removed.bytes, "embedded log: segment deleted"),
            Err(e) => tracing::warn!(segment = id, error = %e, "embedded log: cannot delete segment"),
        }
    }

    /// Copies the live frames of segment `id` to a new file and renames it over the old one.
    fn rewrite_segment(&mut self, id: u64, live: &[(u64, u64, u32)]) -> std::io::Result<()> {
        let (path, old) = {
            let st = self.core.lock();
            match st.segments.get(&id) {
                Some(seg) => (seg.path.clone(), seg.file.clone()),
                None => return Ok(()),
            }
        };
        let mut out = Vec::new();
        let mut moved = Vec::with_capacity(live.len());
        for &(seq, offset, len) in live {
            let at = out.len();
            out.resize(at + len as usize, 0);
            old.read_exact_at(&mut out[at..], offset)?;
            // Never copy a frame that does not check out: keep the original instead.
            if !matches!(log::parse_frame(&out[at..], 0), Frame::Ok { next, .. } if next == len as usize) {
                return Err(std::io::Error::other(format!(
                    "frame of sequence {seq} at offset {offset} of {} is corrupt",
                    path.display()
                )));
            }
            moved.push((seq, at as u64));
        }
        log::encode(
            &mut out,
            &Record::Commit {
                records: live.len() as u32,
            },
        );
        let tmp = path.with_extension("compact");
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(&out)?;
        f.sync_data()?;
        fs::rename(&tmp, &path)?;
        sync_dir(&self.settings.dir)?;
        let reader = Arc::new(File::open(&path)?);
        let mut guard = self.core.lock();
        let st = &mut *guard;
        if let Some(seg) = st.segments.get_mut(&id) {
            // Messages done since the plan was made stay in the new file; those
            // not copied must leave the index in the same step as the file swap.
            let range = seg.first_seq..=seg.last_seq;
            let mut kept = moved.iter().peekable();
            let mut dropped = Vec::new();
            for (&seq, meta) in st.index.range_mut(range) {
                if meta.segment != id {
                    continue;
                }
                while kept.next_if(|(s, _)| *s < seq).is_some() {}
                match kept.peek() {
                    Some(&&(s, at)) if s == seq => meta.offset = at,
                    _ => dropped.push(seq),
                }
            }
            for seq in dropped {
                st.index.remove(&seq);
            }
            seg.file = reader;
            seg.bytes = out.len() as u64;
        }
        tracing::debug!(
            segment = id,
            kept = live.len(),
            bytes = out.len(),
            "embedded log: segment rewritten"
        );
        Ok(())
    }
}
